"""FakeArena: an in-memory Arena PLM REST server on a real loopback port.

It speaks the endpoints arena_async uses (login/logout, item search ``GET /items`` and
``GET /items/{guid}``, an item's ticket references, item-to-item references, training
records, and an OAuth 2.0 token endpoint), keeps the workspace request quota with its
headers, expires sessions the way the real server does, records every request, and
injects faults from a :class:`~arena_async.testing.FaultPlan`.

Example::

    async with FakeArena.seeded(items=200, seed=1, quota_limit=1000) as fake:
        async with ArenaClient(email=fake.email, password=fake.password,
                               workspace_id=fake.workspace_id, base_url=fake.url) as arena:
            guid = fake.item_guids[0]
            refs = await arena.items.tickets.list(guid)
            assert [r.guid for r in refs] == [t["guid"] for t in fake.ticket_refs(guid)]
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import re
import secrets
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from itertools import islice
from typing import Any, ClassVar, Final, Literal, TypeVar

import attrs
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ._arena_workspace import DEFAULT_LIMIT, ArenaWorkspace, ChildKind, _Item, _Reference
from ._faults import FaultPlan, arena_error_body
from ._item_search import BadQuery, criteria_filter, item_filter
from ._oauth import OAuthTokens
from ._server import FakeServer, FakeServerStats, RecordedRequest, _bearer

__all__ = [
    "FakeArena",
    "FakeArenaStats",
    "RecordedRequest",
    "format_reset",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


ResetFormat = Literal["arena", "rfc1123", "iso"]

#: Remaining requests announced when the fake has no quota limit.
UNLIMITED_QUOTA: Final = 1_000_000_000
#: Largest ``limit`` the list endpoints accept.
MAX_LIMIT: Final = 400
#: Longest request line (``GET <path?query> HTTP/1.1``, bytes) the front ends let through;
#: a longer one gets 414 before it reaches Arena (not counted against the quota).
MAX_REQUEST_LINE: Final = 8192

SESSION_HEADER: Final = "arena_session_id"
#: Path of the OAuth 2.0 token endpoint (outside ``/v1``, like a separate auth server).
TOKEN_PATH: Final = "/oauth/token"
REMAINING_HEADER: Final = "X-Arena-Requests-Remaining"
RESET_HEADER: Final = "X-Arena-Next-Request-Limit-Reset"

CODE_BAD_FORMAT: Final = 400
CODE_UNAUTHORIZED: Final = 401
CODE_INVALID_GUID: Final = 3011
CODE_BAD_OFFSET: Final = 3041
CODE_BAD_LIMIT: Final = 3220
#: The fake's choice inside the documented 3276-3280 "reference rules" range.
CODE_SELF_REFERENCE: Final = 3276
CODE_DUPLICATE_REFERENCE: Final = 3277
CODE_BAD_LOGIN: Final = 4001

_DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
_PDT: Final = timezone(timedelta(hours=-7))
_INT_RE: Final = re.compile(r"[+-]?\d+")
_BAD_FORMAT_MESSAGE: Final = "The format of the request is not valid. Please check the syntax."


def format_reset(moment: datetime, style: ResetFormat = "arena") -> str:
    """Format a quota reset time as the fake sends it in ``X-Arena-Next-Request-Limit-Reset``.

    ``"arena"`` is the documented odd form, always in a fixed -0700 offset:
    ``Fri, 02-May-2014 14:22:13 GMT-0700 (PDT)``; ``"rfc1123"`` is
    ``Fri, 02 May 2014 21:22:13 GMT``; ``"iso"`` is ``2014-05-02T21:22:13Z``.

    Example: ``format_reset(datetime(2014, 5, 2, 21, 22, 13, tzinfo=UTC))``
    → ``"Fri, 02-May-2014 14:22:13 GMT-0700 (PDT)"``.
    """
    utc = moment.astimezone(UTC).replace(microsecond=0)
    if style == "rfc1123":
        return email.utils.format_datetime(utc, usegmt=True)
    if style == "iso":
        return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    local = utc.astimezone(_PDT)
    return (
        f"{_DAYS[local.weekday()]}, {local.day:02d}-{_MONTHS[local.month - 1]}-{local.year}"
        f" {local:%H:%M:%S} GMT-0700 (PDT)"
    )


def _int_query(
    query: Mapping[str, str], name: str, low: int, high: int | None, code: int
) -> int | None:
    """The integer query field ``name`` (``low`` to ``high``), None when absent; else
    Arena's 400 with ``code``."""
    text = query.get(name)
    if text is None:
        return None
    if not _INT_RE.fullmatch(text) or int(text) < low or (high is not None and int(text) > high):
        expected = f"an integer >= {low}" if high is None else f"an integer from {low} to {high}"
        raise _ApiError(400, code, f'The {name} "{text}" is not valid: use {expected}.')
    return int(text)


@attrs.define(slots=True)
class FakeArenaStats(FakeServerStats):
    """Counters of what the fake served; ``reset()`` zeroes them (not the gauge).

    The counters of every fake (:class:`~arena_async.testing.FakeServerStats`:
    ``requests`` every request received, login and token requests included;
    ``by_route`` per route key (``"GET /items/{item}/tickets"``, ``"POST /oauth/token"``,
    ``"unmatched"``); ``statuses``; ``unauthorized`` the 401s served, refused token
    requests included; ``faults_fired``; ``in_flight`` / ``max_in_flight``), and:
    ``logins``, ``failed_logins``, ``logouts``; ``quota_exhausted`` the quota 429s;
    ``sessions_expired`` sessions ended by idle timeout, ``expire_sessions_every``, a
    newer login or an ``expire_session`` fault; ``token_requests`` every request to the
    OAuth token endpoint, ``tokens_issued`` the access tokens granted,
    ``failed_token_requests`` the refused ones (bad client, bad grant, bad form);
    ``tokens_expired`` bearer tokens ended by their lifetime (seen on use),
    :meth:`FakeArena.expire_tokens`, ``expire_sessions_every`` or an ``expire_session``
    fault; ``bearer_requests`` API requests that came with a valid bearer token;
    ``uri_too_long`` requests refused with 414 (a request line over ``max_request_line``).

    Example: ``assert fake.stats.max_in_flight <= 8``
    """

    logins: int = 0
    failed_logins: int = 0
    logouts: int = 0
    quota_exhausted: int = 0
    sessions_expired: int = 0
    token_requests: int = 0
    tokens_issued: int = 0
    failed_token_requests: int = 0
    tokens_expired: int = 0
    bearer_requests: int = 0
    uri_too_long: int = 0


class _ApiError(Exception):
    """An Arena error answer, raised by handlers and turned into JSON by a middleware."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _invalid_guid(guid: str) -> _ApiError:
    return _ApiError(400, CODE_INVALID_GUID, f'The guid "{guid}" is not valid.')


def _bad_format() -> _ApiError:
    return _ApiError(400, CODE_BAD_FORMAT, _BAD_FORMAT_MESSAGE)


def _found(table: Mapping[str, _T], guid: str) -> _T:
    """``table[guid]``; an unknown GUID is Arena's invalid-GUID 400."""
    found = table.get(guid)
    if found is None:
        raise _invalid_guid(guid)
    return found


def _error_response(status: int, code: int, message: str) -> web.Response:
    return web.json_response(arena_error_body(status, code, message), status=status)


@attrs.define(slots=True)
class _Session:
    email: str
    last_used: float


_SESSION_KEY: Final = web.RequestKey("arena_session", str)
_QUOTA_KEY: Final = web.RequestKey[tuple[int, str]]("arena_quota")


class FakeArena(ArenaWorkspace, FakeServer):
    """An in-memory Arena REST server on ``127.0.0.1`` (a real port), for tests.

    Start it with ``async with`` (or ``await start()`` / ``await close()``); point the
    client at :attr:`url` with :attr:`email`, :attr:`password`, :attr:`workspace_id`.
    :meth:`seeded` builds a deterministic workspace; :meth:`add_item` (number, name,
    category, lifecycle phase, owner, creator, assembly type, ...), :meth:`add_category`,
    :meth:`add_lifecycle_phase`, :meth:`add_ticket_refs`, :meth:`add_reference`,
    :meth:`add_training_records` add exact data; :meth:`item`, :meth:`ticket_refs`,
    :meth:`references`, :meth:`training_records` read the truth back in server order
    (these come from its base :class:`~arena_async.testing._arena_workspace.ArenaWorkspace`,
    which also holds the table of an item's children served by one handler:
    ``GET /items/{guid}/<segment>`` and ``GET /items/{guid}/<segment>/{id}``).
    ``GET /items`` matches text filters case-insensitively (a trailing ``*`` is a prefix),
    and evaluates ``criteria``, the vendor's export-criteria list (groups joined by
    ``"AND"`` / ``"OR"``, the vendor table's operators for each attribute; see
    :func:`~arena_async.testing._item_search.criteria_filter`), ANDed with the other
    filters; criteria Arena would refuse get 400 with the vendor's code (3004 unknown
    attribute, 3114 operator not valid for the attribute, 3003 / 3020 / 4323 bad, empty or
    non-Zulu value, 3294 a ``guid`` criterion not alone, 400 a malformed list). Its default
    ``limit`` is 20 (the documented default).

    Tests count requests per route with ``fake.stats.by_route`` (``{"GET /items": 6,
    "POST /login": 1, ...}``) and read each request line's query in :attr:`requests`.

    Keyword arguments (all optional):

    - ``email``, ``password``, ``workspace_id``, ``workspace_name``: the one account and
      workspace (login with a ``workspaceId`` other than ``workspace_id`` is refused).
    - ``host``, ``port``: where to listen (default ``127.0.0.1``, a free port).
    - ``quota_limit``: requests per window (None: unlimited, headers announce
      ``UNLIMITED_QUOTA`` and count down from it). ``quota_window``: window length in
      seconds (default 86400); when it passes, the count refills and the reset time moves
      on by one window. ``quota_error_code``: code of the quota 429 (4084; older 4014).
    - ``reset_header_format``: ``"arena"`` (``Fri, 02-May-2014 14:22:13 GMT-0700 (PDT)``),
      ``"rfc1123"`` or ``"iso"``.
    - ``latency``: seconds added to every request (real sleep).
    - ``expire_sessions_every``: every Nth request that brings a valid session finds it
      expired (401). ``session_idle_timeout``: seconds without a request before a session
      dies (default 5400, the real 90 minutes; None: never). ``single_session``: a new
      login of the same user ends the earlier session (default True, as the real server).
    - ``login_session_key``: ``"arenaSessionId"`` (spec, default) or ``"arena_session_id"``
      (doc sample). ``note_key``: ``"note"`` (docs, default) or ``"notes"`` (spec).
      ``trainingplan_key``: ``"trainingplan"`` (docs, default) or ``"traningplan"``
      (spec, sic). ``item_url``: add ``"url": {"api", "app"}`` to referenced items.
    - ``client_id``, ``client_secret``: an OAuth 2.0 client registered from the start
      (:meth:`add_oauth_client` adds more). ``token_lifetime``: seconds an access token
      from :attr:`token_url` lives (default 3600; None: forever); the answer's
      ``expires_in`` says the same (an integer when the lifetime is whole).
    - ``faults``: a :class:`FaultPlan` (a fresh one by default); see :attr:`faults`.
    - ``clock``: ``() -> epoch seconds`` for quota windows, idle timeouts, token expiry
      and the reset header (default ``time.time``).
    - ``seed``: seeds the GUIDs and data of later ``add_*`` calls.
    - ``max_request_line``: the longest request line (bytes) let through, default
      :data:`MAX_REQUEST_LINE` (8192, as front ends); longer ones get 414, are recorded
      and not counted against the quota (None: no limit).
    - ``ssl_context``: serve HTTPS with this server-side ``ssl.SSLContext`` (see
      :class:`~arena_async.testing.FakeServer`); :attr:`url` is then ``https://``.

    Quota rules: one budget for the whole fake, shared by every session and token; every
    request but login and token requests counts, failed ones too; at 0 a request gets 429
    and is not processed. Readings that are not the truth (fault injection):
    ``fake.reset_jitter = 1`` moves each answer's reset header by up to that many whole
    seconds either way; :meth:`poison_quota` makes the next answers announce a made-up
    count and reset.

    OAuth 2.0 (client credentials, RFC 6749 4.4): ``POST`` :attr:`token_url` with the form
    ``grant_type=client_credentials`` and the client authenticated by HTTP Basic (id and
    secret form-urlencoded as RFC 6749 2.3.1 says, or verbatim) *or* the ``client_id`` /
    ``client_secret`` form fields answers ``{"access_token", "token_type":
    "bearer", "expires_in"}``; a bad client gets 401 ``{"error": "invalid_client",
    "error_description"}`` (RFC 6749 5.2; ``invalid_request`` / ``unsupported_grant_type``
    are 400). Every API endpoint then accepts ``Authorization: Bearer <token>`` instead
    of ``arena_session_id`` (when both are sent the bearer token decides); an unknown or
    expired token gets the same 401 as an expired session.
    ``GET /_fake/stats`` (outside ``/v1``, not counted or recorded) returns :attr:`stats`
    as JSON for tests that run the fake in another process.

    Example::

        async with FakeArena(quota_limit=3, quota_window=0.3) as fake:
            guid = fake.add_item()
            fake.add_training_records(guid, 45)
            ...
            assert fake.stats.quota_exhausted == 0
    """

    base_path: ClassVar[str] = "/v1"
    _route_prefix: ClassVar[str] = "/v1"

    def __init__(
        self,
        *,
        email: str = "user@example.com",
        password: str = "fake-password",
        workspace_id: int = 123456789,
        workspace_name: str = "Fake Workspace",
        host: str = "127.0.0.1",
        port: int = 0,
        quota_limit: int | None = None,
        quota_window: float = 86400.0,
        reset_header_format: ResetFormat = "arena",
        quota_error_code: int = 4084,
        latency: float = 0.0,
        expire_sessions_every: int | None = None,
        session_idle_timeout: float | None = 5400.0,
        single_session: bool = True,
        login_session_key: Literal["arenaSessionId", "arena_session_id"] = "arenaSessionId",
        note_key: Literal["note", "notes"] = "note",
        trainingplan_key: Literal["trainingplan", "traningplan"] = "trainingplan",
        item_url: bool = False,
        client_id: str = "fake-client-id",
        client_secret: str = "fake-client-secret",
        token_lifetime: float | None = 3600.0,
        faults: FaultPlan | None = None,
        clock: Callable[[], float] = time.time,
        seed: int = 0,
        max_request_line: int | None = MAX_REQUEST_LINE,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if quota_limit is not None and quota_limit < 0:
            raise ValueError("quota_limit must be >= 0 or None")
        if quota_window <= 0:
            raise ValueError("quota_window must be > 0")
        if reset_header_format not in ("arena", "rfc1123", "iso"):
            raise ValueError(f"unknown reset_header_format {reset_header_format!r}")
        if expire_sessions_every is not None and expire_sessions_every < 1:
            raise ValueError("expire_sessions_every must be >= 1 or None")
        if max_request_line is not None and max_request_line < 64:
            raise ValueError("max_request_line must be >= 64 or None")
        self.max_request_line = max_request_line
        if token_lifetime is not None and not token_lifetime > 0:
            raise ValueError("token_lifetime must be > 0 or None")
        allowed = ("arenaSessionId", "arena_session_id")
        if login_session_key not in allowed:
            raise ValueError(f"login_session_key must be one of {allowed}, not "
                             f"{login_session_key!r}")
        ArenaWorkspace.__init__(self, seed=seed, note_key=note_key,
                                trainingplan_key=trainingplan_key, item_url=item_url)
        self.email = email
        self.password = password
        self.workspace_id = workspace_id
        self.workspace_name = workspace_name
        self.quota_limit = quota_limit
        self.quota_window = quota_window
        self.reset_header_format: ResetFormat = reset_header_format
        self.quota_error_code = quota_error_code
        self.expire_sessions_every = expire_sessions_every
        self.session_idle_timeout = session_idle_timeout
        self.single_session = single_session
        self.login_session_key = login_session_key
        FakeServer.__init__(self, host=host, port=port, latency=latency, faults=faults,
                            clock=clock, ssl_context=ssl_context)
        self._sessions: dict[str, _Session] = {}
        self.stats: FakeArenaStats = FakeArenaStats()
        self.client_id = client_id
        self.client_secret = client_secret
        self._oauth = OAuthTokens(
            lifetime=token_lifetime, clock=clock, stats=self.stats, logger=logger
        )
        self._oauth.add_client(client_id, client_secret)
        self._authenticated = 0
        self._remaining = self._limit
        self._reset_at = clock() + quota_window
        #: Whole seconds each answer's reset header may be off the true reset, either way
        #: (fault injection: a server whose reset header jitters between answers).
        self.reset_jitter: int = 0
        self._jitter_rng = random.Random(f"{seed}:jitter")
        self._poisoned: list[tuple[int, float]] = []

    # ------------------------------------------------------------------ lifecycle

    def __repr__(self) -> str:
        return f"FakeArena(url={self._url!r}, items={len(self._items)})"

    @property
    def token_url(self) -> str:
        """The OAuth 2.0 token endpoint, ``http://127.0.0.1:<port>/oauth/token``; only once
        started.

        Example: ``ArenaClient(client_id=fake.client_id, client_secret=fake.client_secret,
        token_url=fake.token_url, base_url=fake.url)``
        """
        return self.url.removesuffix("/v1") + TOKEN_PATH

    # ------------------------------------------------------------------ recording

    def clear_requests(self) -> None:
        """Forget the recorded requests and zero :attr:`stats` (data and quota are kept)."""
        super().clear_requests()
        self.stats.reset()

    # ------------------------------------------------------------------ quota

    @property
    def _limit(self) -> int:
        return UNLIMITED_QUOTA if self.quota_limit is None else self.quota_limit

    def _roll_window(self, now: float) -> None:
        if now >= self._reset_at:
            windows = math.floor((now - self._reset_at) / self.quota_window) + 1
            self._reset_at += windows * self.quota_window
            self._remaining = self._limit

    @property
    def quota_remaining(self) -> int:
        """Requests left in the current window (as the next response will count down from)."""
        self._roll_window(self._clock())
        return self._remaining

    @property
    def quota_resets_at(self) -> datetime:
        """When the current window ends, in whole seconds (rounded up), aware UTC."""
        self._roll_window(self._clock())
        return datetime.fromtimestamp(math.ceil(self._reset_at), UTC)

    def set_quota(self, *, remaining: int | None = None, resets_in: float | None = None) -> None:
        """Set the requests left now and/or the seconds until the window resets.

        Example: ``fake.set_quota(remaining=0, resets_in=0.3)``
        """
        if resets_in is not None:
            self._reset_at = self._clock() + resets_in
        if remaining is not None:
            if remaining < 0:
                raise ValueError("remaining must be >= 0")
            self._remaining = remaining

    def poison_quota(self, *, remaining: int, resets_in: float, times: int = 1) -> None:
        """Fault injection: the next ``times`` counted answers announce ``remaining`` and a
        reset ``resets_in`` seconds from now instead of the truth (the real count goes on).

        Example: ``fake.poison_quota(remaining=10**9, resets_in=30 * 86400)``
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        self._poisoned.extend([(remaining, resets_in)] * times)

    def _reset_header(self) -> str:
        moment = self.quota_resets_at
        if self.reset_jitter:
            jitter = self._jitter_rng.randint(-self.reset_jitter, self.reset_jitter)
            moment += timedelta(seconds=jitter)
        return format_reset(moment, self.reset_header_format)

    def _announced(self) -> tuple[int, str]:
        """What a counted answer's quota headers say: the truth, unless poisoned."""
        if self._poisoned:
            remaining, resets_in = self._poisoned.pop(0)
            moment = datetime.fromtimestamp(math.ceil(self._clock() + resets_in), UTC)
            return remaining, format_reset(moment, self.reset_header_format)
        return self._remaining, self._reset_header()

    # ------------------------------------------------------------------ sessions

    @property
    def active_sessions(self) -> int:
        """How many sessions are currently live."""
        return len(self._sessions)

    def expire_sessions(self) -> int:
        """End every live session (their next request gets 401); returns how many."""
        count = len(self._sessions)
        self._sessions.clear()
        self.stats.sessions_expired += count
        return count

    def _expire_request_session(self, request: web.Request) -> None:
        token = _bearer(request.headers)
        if token is not None:
            self._oauth.end(token)
            return
        session_id = request.headers.get(SESSION_HEADER)
        if session_id is not None and self._sessions.pop(session_id, None) is not None:
            self.stats.sessions_expired += 1

    # ------------------------------------------------------------------ OAuth

    @property
    def token_lifetime(self) -> float | None:
        """Seconds an access token lives (None: forever); settable, for later tokens."""
        return self._oauth.lifetime

    @token_lifetime.setter
    def token_lifetime(self, lifetime: float | None) -> None:
        self._oauth.lifetime = lifetime

    def add_oauth_client(self, client_id: str, client_secret: str) -> None:
        """Register (or re-key) an OAuth 2.0 client that may ask :attr:`token_url` for tokens.

        Example: ``fake.add_oauth_client("etl-machine", "s3cret")``
        """
        self._oauth.add_client(client_id, client_secret)

    @property
    def active_tokens(self) -> int:
        """How many access tokens are live (issued and not yet expired or ended)."""
        return self._oauth.active

    def expire_tokens(self) -> int:
        """End every access token (their next request gets 401); returns how many were live.

        Example: ``fake.expire_tokens()`` before a request tests the client's refresh.
        """
        return self._oauth.expire_all()

    def _forced_expiry(self) -> bool:
        """Count a request that brings a live session or token: True for every Nth one
        (``expire_sessions_every``), which finds it expired."""
        self._authenticated += 1
        every = self.expire_sessions_every
        return every is not None and self._authenticated % every == 0

    def _authenticate_bearer(self, token: str) -> str:
        refused = _ApiError(401, CODE_UNAUTHORIZED, "The access token is not valid or has expired.")
        if not self._oauth.known(token):
            raise refused
        if self._forced_expiry() or self._oauth.expired(token):
            self._oauth.end(token)
            raise refused
        self.stats.bearer_requests += 1
        return token

    def _authenticate(self, request: web.Request) -> str:
        token = _bearer(request.headers)
        if token is not None:
            return self._authenticate_bearer(token)
        session_id = request.headers.get(SESSION_HEADER)
        if not session_id:
            raise _ApiError(401, CODE_UNAUTHORIZED, "No session: log in and send arena_session_id.")
        session = self._sessions.get(session_id)
        expired = _ApiError(
            401, CODE_UNAUTHORIZED, "The session is not valid or has expired. Please log in again."
        )
        if session is None:
            raise expired
        now = self._clock()
        idle = self.session_idle_timeout
        if self._forced_expiry() or (idle is not None and now - session.last_used > idle):
            del self._sessions[session_id]
            self.stats.sessions_expired += 1
            raise expired
        session.last_used = now
        return session_id

    # ------------------------------------------------------------------ the app

    def _setup_app(self, app: web.Application) -> None:
        app.on_response_prepare.append(self._add_quota_headers)
        route = app.router
        route.add_post("/v1/login", self._login)
        route.add_put("/v1/logout", self._logout)
        route.add_post(TOKEN_PATH, self._oauth.handle)
        route.add_get("/v1/items", self._list_items)
        route.add_get("/v1/items/{item:[^/]+}", self._get_item)
        for segment in self.CHILDREN:  # one route pair per kind, one handler for all
            route.add_get(f"/v1/items/{{item:[^/]+}}/{segment}", self._list_children)
            route.add_get(f"/v1/items/{{item:[^/]+}}/{segment}/{{ref:[^/]+}}",
                          self._get_child)
        route.add_post("/v1/items/{item:[^/]+}/items", self._create_reference)
        route.add_put("/v1/items/{item:[^/]+}/items/{ref:[^/]+}", self._update_reference)
        route.add_delete("/v1/items/{item:[^/]+}/items/{ref:[^/]+}", self._delete_reference)

    def _handler_args(self) -> dict[str, Any]:
        # aiohttp's parser answers 400 past 8190 bytes; the fake answers as a front end does.
        return {"max_line_size": 1 << 20, "max_field_size": 1 << 16}

    def _outer_middlewares(self) -> list[Middleware]:
        return [self._front_end_middleware, self._quota_middleware]

    @web.middleware
    async def _front_end_middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        """414 for a request line over ``max_request_line`` bytes, as front ends answer."""
        limit = self.max_request_line
        if limit is not None:
            line = len(request.method) + len(request.raw_path.encode()) + len(" HTTP/1.1") + 1
            if line > limit:
                self.stats.uri_too_long += 1
                return web.Response(status=414, text="414 Request-URI Too Large",
                                    content_type="text/html")
        return await handler(request)

    def _inner_middlewares(self) -> list[Middleware]:
        return [self._api_middleware]

    def _has_session(self, request: web.Request) -> bool:
        return SESSION_HEADER in request.headers

    @staticmethod
    def _is_free(request: web.Request) -> bool:
        """Login and token requests: not counted against the quota, need no session."""
        return (request.method == "POST" and request.path == "/v1/login") or (
            request.path == TOKEN_PATH
        )

    @web.middleware
    async def _quota_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self._is_free(request):
            return await handler(request)
        self._roll_window(self._clock())
        if self._remaining <= 0:
            self.stats.quota_exhausted += 1
            request[_QUOTA_KEY] = (0, self._reset_header())
            return _error_response(
                429,
                self.quota_error_code,
                "The API request limit for this workspace has been reached."
                f" It will be reset at {self._reset_header()}.",
            )
        self._remaining -= 1
        request[_QUOTA_KEY] = self._announced()
        return await handler(request)

    async def _add_quota_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        quota = request.get(_QUOTA_KEY)
        if quota is not None:
            response.headers[REMAINING_HEADER] = str(quota[0])
            response.headers[RESET_HEADER] = quota[1]

    @web.middleware
    async def _api_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Innermost: JSON errors for unknown routes, session check, ``_ApiError`` → JSON."""
        http_exception = request.match_info.http_exception
        if http_exception is not None:
            response = _error_response(
                http_exception.status, http_exception.status, http_exception.reason
            )
            if "Allow" in http_exception.headers:
                response.headers["Allow"] = http_exception.headers["Allow"]
            return response
        try:
            if not self._is_free(request):
                request[_SESSION_KEY] = self._authenticate(request)
            return await handler(request)
        except _ApiError as exc:
            return _error_response(exc.status, exc.code, exc.message)
        except BadQuery as exc:
            return _error_response(400, exc.code, exc.message)

    # ------------------------------------------------------------------ handlers

    async def _json_body(self, request: web.Request) -> Any:
        raw = await request.read()
        if raw and request.content_type != "application/json":
            raise _ApiError(415, 415, "The content type must be application/json.")
        try:
            return json.loads(raw)
        except ValueError:
            raise _bad_format() from None

    async def _login(self, request: web.Request) -> web.StreamResponse:
        body = await self._json_body(request)
        if not isinstance(body, dict):
            raise _bad_format()
        workspace = body.get("workspaceId")
        if (
            body.get("email") != self.email
            or body.get("password") != self.password
            or (workspace is not None and workspace != self.workspace_id)
        ):
            self.stats.failed_logins += 1
            logger.debug("FakeArena refused a login")
            raise _ApiError(
                400,
                CODE_BAD_LOGIN,
                "The username, password or workspace ID is not valid or you are not allowed"
                " to log in due to IP restriction.",
            )
        if self.single_session:
            ended = [k for k, s in self._sessions.items() if s.email == self.email]
            for key in ended:
                del self._sessions[key]
            self.stats.sessions_expired += len(ended)
        session_id = f"FAKE-{secrets.token_urlsafe(24)}|"
        self._sessions[session_id] = _Session(self.email, self._clock())
        self.stats.logins += 1
        logger.debug("FakeArena login: %d live sessions", len(self._sessions))
        return web.json_response(
            {
                self.login_session_key: session_id,
                "workspaceId": self.workspace_id,
                "workspaceName": self.workspace_name,
                "workspaceRequestLimit": self._limit,
            }
        )

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        self._sessions.pop(request[_SESSION_KEY], None)
        self.stats.logouts += 1
        return web.Response(status=200)

    def _item(self, request: web.Request) -> _Item:
        return _found(self._items, request.match_info["item"])

    @staticmethod
    def _paginate(
        request: web.Request, values: Iterable[_T], default_limit: int | None
    ) -> list[_T]:
        query = request.query
        offset = _int_query(query, "offset", 0, None, CODE_BAD_OFFSET) or 0
        limit = _int_query(query, "limit", 1, MAX_LIMIT, CODE_BAD_LIMIT) or default_limit
        return list(islice(values, offset, None if limit is None else offset + limit))

    @staticmethod
    def _page(results: list[dict[str, Any]]) -> web.Response:
        return web.json_response({"count": len(results), "results": results})

    @staticmethod
    def _view(request: web.Request) -> bool:
        """True for ``responseview=minimum``; ``full`` or none is the full view."""
        view = request.query.get("responseview")
        if view is None or view.lower() == "full":
            return False
        if view.lower() == "minimum":
            return True
        raise BadQuery("responseview", view, "use minimum or full")

    async def _list_items(self, request: web.Request) -> web.StreamResponse:
        minimum = self._view(request)
        query = dict(request.query)
        criteria = query.pop("criteria", None)
        tests = [item_filter(query, self._categories)]
        if criteria is not None:
            tests.append(criteria_filter(criteria))
        found = (item for item in self._items.values()
                 if all(t({"guid": item.guid, **item.data}) for t in tests))
        page = self._paginate(request, found, DEFAULT_LIMIT)
        return self._page([self._render_item(item, minimum=minimum) for item in page])

    async def _get_item(self, request: web.Request) -> web.StreamResponse:
        minimum = self._view(request)
        return web.json_response(self._render_item(self._item(request), minimum=minimum))

    def _kind(self, request: web.Request) -> ChildKind:
        """The kind of child a request is for: the segment after the item's GUID."""
        return self.CHILDREN[request.path.split("/")[4]]

    async def _list_children(self, request: web.Request) -> web.StreamResponse:
        """``GET /items/{guid}/<segment>``: a page of the item's children of that kind."""
        kind, item = self._kind(request), self._item(request)
        found = self._paginate(request, item.of(kind.segment).values(), kind.default_limit)
        return self._page([kind.render(self, item.guid, record, False) for record in found])

    async def _get_child(self, request: web.Request) -> web.StreamResponse:
        """``GET /items/{guid}/<segment>/{id}``: one child, in its single form."""
        kind, item = self._kind(request), self._item(request)
        record = _found(item.of(kind.segment), request.match_info["ref"])
        return web.json_response(kind.render(self, item.guid, record, True))

    def _reference(self, request: web.Request) -> tuple[_Item, _Reference]:
        item = self._item(request)
        return item, _found(item.of("items"), request.match_info["ref"])

    def _render_reference(self, item_guid: str, ref: _Reference) -> dict[str, Any]:
        return self.CHILDREN["items"].render(self, item_guid, ref, True)

    @staticmethod
    def _note_in(body: Mapping[str, Any]) -> tuple[bool, Any]:
        for key in ("note", "notes"):
            if key in body:
                value = body[key]
                if value is not None and not isinstance(value, str):
                    raise _bad_format()
                return True, value
        return False, None

    async def _create_reference(self, request: web.Request) -> web.StreamResponse:
        body = await self._json_body(request)
        item = self._item(request)
        target = body.get("item") if isinstance(body, dict) else None
        other_guid = target.get("guid") if isinstance(target, dict) else None
        if not isinstance(other_guid, str):
            raise _bad_format()
        _, note = self._note_in(body)
        if other_guid not in self._items:
            raise _invalid_guid(other_guid)
        if other_guid == item.guid:
            raise _ApiError(400, CODE_SELF_REFERENCE, "An item cannot reference itself.")
        if self._linked(item.guid, other_guid):
            raise _ApiError(
                400, CODE_DUPLICATE_REFERENCE, f'The item "{other_guid}" is already referenced.'
            )
        ref_guid = self.add_reference(item.guid, other_guid, note)
        return web.json_response(
            self._render_reference(item.guid, item.of("items")[ref_guid]), status=201
        )

    async def _get_reference(self, request: web.Request) -> web.StreamResponse:
        item, ref = self._reference(request)
        return web.json_response(self._render_reference(item.guid, ref))

    async def _update_reference(self, request: web.Request) -> web.StreamResponse:
        body = await self._json_body(request)
        item, ref = self._reference(request)
        if not isinstance(body, dict):
            raise _bad_format()
        present, note = self._note_in(body)
        if present and (note is not None or request.query.get("setnull", "").lower() == "true"):
            ref.note = note
        return web.json_response(self._render_reference(item.guid, ref))

    async def _delete_reference(self, request: web.Request) -> web.StreamResponse:
        _, ref = self._reference(request)
        del self._items[ref.a].of("items")[ref.guid]
        del self._items[ref.b].of("items")[ref.guid]
        return web.Response(status=204)
