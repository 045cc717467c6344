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
import string
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from itertools import islice
from typing import Any, ClassVar, Final, Literal, Protocol, Self, TypeVar

import attrs
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ._faults import FaultPlan, arena_error_body
from ._item_search import ASSEMBLY_TYPES, BadQuery, Category, criteria_filter, item_filter
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


class _Named(Protocol):
    @property
    def guid(self) -> str: ...

    @property
    def name(self) -> str: ...


_N = TypeVar("_N", bound=_Named)

ResetFormat = Literal["arena", "rfc1123", "iso"]

#: Remaining requests announced when the fake has no quota limit.
UNLIMITED_QUOTA: Final = 1_000_000_000
#: Largest ``limit`` the list endpoints accept.
MAX_LIMIT: Final = 400
#: Default ``limit`` of the training-records list.
DEFAULT_LIMIT: Final = 20
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

_GUID_ALPHABET: Final = string.ascii_uppercase + string.digits
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
_DATE_BASE: Final = datetime(2022, 1, 1, tzinfo=UTC)
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


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


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


def _named(table: Mapping[str, _N], name_or_guid: str) -> _N | None:
    """The entry with this GUID, else the first with this name, else None."""
    found = table.get(name_or_guid)
    if found is None:
        found = next((v for v in table.values() if v.name == name_or_guid), None)
    return found


def _unique_guid(rng: random.Random, taken: set[str]) -> str:
    """A new 20-character GUID from ``rng``, added to ``taken``."""
    while True:
        guid = "".join(rng.choices(_GUID_ALPHABET, k=20))
        if guid not in taken:
            taken.add(guid)
            return guid


def _error_response(status: int, code: int, message: str) -> web.Response:
    return web.json_response(arena_error_body(status, code, message), status=status)


@attrs.define(slots=True)
class _Ticket:
    guid: str
    number: str


@attrs.define(slots=True)
class _TicketRef:
    guid: str
    ticket: _Ticket


@attrs.define(slots=True)
class _Reference:
    guid: str
    a: str
    b: str
    note: str | None


@attrs.define(slots=True)
class _TrainingRecord:
    guid: str
    plan_guid: str
    plan_number: str
    due_date: str | None
    signed_date_time: str | None


@attrs.define(slots=True)
class _Item:
    guid: str
    #: The item's own wire fields (``ItemFullVo`` without ``guid`` and ``url``), in order.
    data: dict[str, Any] = attrs.field(factory=dict)
    tickets: dict[str, _TicketRef] = attrs.field(factory=dict)
    references: dict[str, _Reference] = attrs.field(factory=dict)
    records: dict[str, _TrainingRecord] = attrs.field(factory=dict)


@attrs.define(slots=True)
class _Phase:
    guid: str
    name: str
    stage: str


#: What ``add_item()`` picks from, by the item's sequence number, when not told.
_AUTO_CATEGORIES: Final = (
    ("Resistors", "Electrical"),
    ("Capacitors", "Electrical"),
    ("Fasteners", "Mechanical"),
    ("Assemblies", None),
)
_AUTO_PHASES: Final = (
    ("In Design", "IN_DESIGN"),
    ("In Production", "IN_PRODUCTION"),
    ("Obsolete", "OBSOLETE"),
)
_AUTO_USERS: Final = ("Ann Lee", "Bob Roe", "Chen Wu")


@attrs.define(slots=True)
class _Session:
    email: str
    last_used: float


_SESSION_KEY: Final = web.RequestKey("arena_session", str)
_QUOTA_KEY: Final = web.RequestKey[tuple[int, str]]("arena_quota")


class FakeArena(FakeServer):
    """An in-memory Arena REST server on ``127.0.0.1`` (a real port), for tests.

    Start it with ``async with`` (or ``await start()`` / ``await close()``); point the
    client at :attr:`url` with :attr:`email`, :attr:`password`, :attr:`workspace_id`.
    :meth:`seeded` builds a deterministic workspace; :meth:`add_item` (number, name,
    category, lifecycle phase, owner, creator, assembly type, ...), :meth:`add_category`,
    :meth:`add_lifecycle_phase`, :meth:`add_ticket_refs`, :meth:`add_reference`,
    :meth:`add_training_records` add exact data; :meth:`item`, :meth:`ticket_refs`,
    :meth:`references`, :meth:`training_records` read the truth back in server order.
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
        for name, value, allowed in (
            ("login_session_key", login_session_key, ("arenaSessionId", "arena_session_id")),
            ("note_key", note_key, ("note", "notes")),
            ("trainingplan_key", trainingplan_key, ("trainingplan", "traningplan")),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {value!r}")
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
        self.note_key = note_key
        self.trainingplan_key = trainingplan_key
        self.item_url = item_url
        super().__init__(host=host, port=port, latency=latency, faults=faults, clock=clock,
                         ssl_context=ssl_context)
        self._rng = random.Random(seed)
        self._guids: set[str] = set()
        self._items: dict[str, _Item] = {}
        self._tickets: list[_Ticket] = []
        self._ticket_numbers: Counter[str] = Counter()
        self._plans: list[tuple[str, str]] = []
        # Item metadata (categories, phases, users) draws from its own generator, so the
        # GUIDs and data made from ``seed`` stay what they were before items had any.
        self._meta_rng = random.Random(f"{seed}:items")
        self._categories: dict[str, Category] = {}
        self._phases: dict[str, _Phase] = {}
        self._users: dict[str, dict[str, str]] = {}
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

    @classmethod
    def seeded(
        cls,
        items: int = 2000,
        seed: int = 1,
        *,
        max_ticket_refs: int = 4,
        max_item_refs: int = 3,
        max_training_records: int = 12,
        **kwargs: Any,
    ) -> Self:
        """A fake whose workspace holds ``items`` items made from ``random.Random(seed)``.

        Each item gets 0..``max_ticket_refs`` ticket references, 0..``max_item_refs``
        references to other items (bidirectional, so an item may show more) and
        0..``max_training_records`` training records. Other keywords go to the constructor.
        The same ``items`` and ``seed`` always give the same GUIDs and data.

        Example: ``async with FakeArena.seeded(items=50, seed=1) as fake: ...``
        """
        fake = cls(seed=seed, **kwargs)
        rng = fake._rng
        guids = [fake.add_item() for _ in range(items)]
        for _ in range(max(1, items // 2)):
            fake._new_ticket(rng.choice(("REQ", "DEF", "CHG")))
        for _ in range(max(1, items // 20)):
            fake._new_plan()
        for guid in guids:
            item = fake._items[guid]
            picks = min(rng.randint(0, max_ticket_refs), len(fake._tickets))
            for ticket in rng.sample(fake._tickets, picks):
                ref = _TicketRef(fake._new_guid(), ticket)
                item.tickets[ref.guid] = ref
            fake._add_records(item, rng.randint(0, max_training_records))
        if items > 1:
            for guid in guids:
                for _ in range(rng.randint(0, max_item_refs)):
                    other = rng.choice(guids)
                    if other != guid and not fake._linked(guid, other):
                        fake.add_reference(guid, other, note=rng.choice((None, "seeded note")))
        return fake

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

    # ------------------------------------------------------------------ data: write

    def _new_guid(self) -> str:
        return _unique_guid(self._rng, self._guids)

    def _new_ticket(self, prefix: str) -> _Ticket:
        self._ticket_numbers[prefix] += 1
        ticket = _Ticket(self._new_guid(), f"{prefix}-{self._ticket_numbers[prefix]:06d}")
        self._tickets.append(ticket)
        return ticket

    def _new_plan(self) -> tuple[str, str]:
        plan = (self._new_guid(), f"TRP-{len(self._plans) + 1:06d}")
        self._plans.append(plan)
        return plan

    def _random_date(self, chance: float) -> str | None:
        if self._rng.random() >= chance:
            return None
        return _iso(_DATE_BASE + timedelta(seconds=self._rng.randrange(4 * 365 * 86400)))

    def _add_records(self, item: _Item, n: int) -> list[str]:
        if not self._plans:
            self._new_plan()
        added = []
        for _ in range(n):
            plan_guid, plan_number = self._rng.choice(self._plans)
            record = _TrainingRecord(
                self._new_guid(),
                plan_guid,
                plan_number,
                due_date=self._random_date(0.85),
                signed_date_time=self._random_date(0.7),
            )
            item.records[record.guid] = record
            added.append(record.guid)
        return added

    def _linked(self, a: str, b: str) -> bool:
        return any(b in (ref.a, ref.b) for ref in self._items[a].references.values())

    def _new_meta_guid(self) -> str:
        return _unique_guid(self._meta_rng, self._guids)

    def add_category(self, name: str, parent: str | None = None) -> str:
        """Add an item category under ``parent`` (a category name or GUID, created at the top
        when unknown); returns its GUID. An existing name returns the existing GUID.

        Example: ``fake.add_category("Thin film", parent="Resistors")``
        """
        found = _named(self._categories, name)
        if found is not None:
            return found.guid
        parent_guid = None if parent is None else self.add_category(parent)
        category = Category(self._new_meta_guid(), name, parent_guid)
        self._categories[category.guid] = category
        return category.guid

    def add_lifecycle_phase(self, name: str, stage: str) -> str:
        """Add a lifecycle phase (``stage`` such as ``"IN_PRODUCTION"``); returns its GUID.
        An existing name returns the existing GUID (its stage unchanged).

        Example: ``fake.add_lifecycle_phase("Prototype", "IN_DESIGN")``
        """
        found = _named(self._phases, name)
        if found is not None:
            return found.guid
        phase = _Phase(self._new_meta_guid(), name, stage)
        self._phases[phase.guid] = phase
        return phase.guid

    def _user(self, full_name: str) -> dict[str, str]:
        user = self._users.get(full_name)
        if user is None:
            local = ".".join(full_name.lower().split()) or "user"
            user = {
                "email": f"{local}@example.com",
                "fullName": full_name,
                "guid": self._new_meta_guid(),
            }
            self._users[full_name] = user
        return user

    def add_item(
        self,
        guid: str | None = None,
        *,
        number: str | None = None,
        name: str | None = None,
        description: str | None = None,
        revision_number: str | None = None,
        category: str | None = None,
        lifecycle_phase: str | None = None,
        lifecycle_stage: str | None = None,
        owner: str | None = None,
        creator: str | None = None,
        assembly_type: str | None = None,
        in_assembly: bool | None = None,
        effective_date_time: str | datetime | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> str:
        """Add an item with no references or records; returns its GUID.

        What is not given is made up from the item's sequence number ``n`` (the same for
        the same calls): number ``PN-{n:06d}``, name ``Part {n}``, revision ``A``, a
        category among Resistors and Capacitors (under Electrical), Fasteners (under
        Mechanical) and Assemblies, a lifecycle phase among In Design (``IN_DESIGN``), In
        Production (``IN_PRODUCTION``) and Obsolete (``OBSOLETE``), owner and creator among
        three users, dates, costs. ``category`` is a category name or GUID (an unknown
        name is created at the top: see :meth:`add_category`); ``lifecycle_phase`` a phase
        name or GUID (an unknown name is created with ``lifecycle_stage``, default
        ``IN_DESIGN``; with only ``lifecycle_stage``, the auto phase of that stage);
        ``owner`` and ``creator`` full names (a user is made up for each: GUID, email).
        ``fields`` sets wire fields as given, last (``{"modifiedBom": True,
        "additionalAttributes": [...]}``); several items may share a number (revisions).

        Example: ``guid = fake.add_item(number="PN-100200", category="Resistors")``
        """
        if guid is None:
            guid = self._new_guid()
        elif guid in self._items:
            raise ValueError(f"item {guid} exists")
        else:
            self._guids.add(guid)
        if assembly_type is not None and assembly_type not in ASSEMBLY_TYPES:
            raise ValueError(f"assembly_type must be one of {ASSEMBLY_TYPES}")
        n = len(self._items) + 1
        if category is None:
            auto_name, auto_parent = _AUTO_CATEGORIES[n % len(_AUTO_CATEGORIES)]
            cat = self._categories[self.add_category(auto_name, auto_parent)]
        else:
            cat = self._categories[self.add_category(category)]
        phase = None if lifecycle_phase is None else _named(self._phases, lifecycle_phase)
        if phase is None:
            if lifecycle_phase is not None:
                made = self.add_lifecycle_phase(lifecycle_phase, lifecycle_stage or "IN_DESIGN")
            elif lifecycle_stage is not None:
                auto = next((a for a in _AUTO_PHASES if a[1] == lifecycle_stage), None)
                phase_name, stage = auto if auto else (lifecycle_stage.title(), lifecycle_stage)
                made = self.add_lifecycle_phase(phase_name, stage)
            else:
                made = self.add_lifecycle_phase(*_AUTO_PHASES[(n // 4) % len(_AUTO_PHASES)])
            phase = self._phases[made]
        if assembly_type is None:
            assembly_type = "TOP_LEVEL_ASSEMBLY" if cat.name == "Assemblies" else "NOT_AN_ASSEMBLY"
        created = _DATE_BASE + timedelta(hours=n)
        if isinstance(effective_date_time, datetime):
            effective: str | None = _iso(effective_date_time.astimezone(UTC))
        elif effective_date_time is not None:
            effective = effective_date_time
        else:
            effective = None if phase.stage == "IN_DESIGN" else _iso(created + timedelta(days=1))
        data: dict[str, Any] = {
            "number": f"PN-{n:06d}" if number is None else number,
            "name": f"Part {n}" if name is None else name,
            "description": f"Made-up part number {n}." if description is None else description,
            "revisionNumber": "A" if revision_number is None else revision_number,
            "revisionStatus": "WORKING" if effective is None else "EFFECTIVE",
            "status": 0 if effective is None else 1,
            "category": {"guid": cat.guid, "name": cat.name},
            "lifecyclePhase": {"guid": phase.guid, "name": phase.name, "stage": phase.stage},
            "owner": {"fullName": owner or _AUTO_USERS[n % len(_AUTO_USERS)]},
            "creator": dict(self._user(creator or _AUTO_USERS[(n + 1) % len(_AUTO_USERS)])),
            "assemblyType": assembly_type,
            "isAssembly": assembly_type != "NOT_AN_ASSEMBLY",
            "inAssembly": (assembly_type == "SUB_ASSEMBLY" or n % 2 == 0)
            if in_assembly is None
            else in_assembly,
            "creationDateTime": _iso(created),
            "effectiveDateTime": effective,
            "uom": "each",
            "procurementType": "OTS",
            "offTheShelf": True,
            "standardCost": round(0.05 * n, 2),
            "targetCost": round(0.04 * n, 2),
            "modifiedBom": False,
            "modifiedFiles": False,
            "modifiedSourcing": False,
            "modifiedSpecs": False,
            "deviated": False,
            "shared": False,
            "isLocked": False,
            "additionalAttributes": [],
        }
        if effective is None:
            del data["effectiveDateTime"]
        if fields:
            data.update(fields)
        self._items[guid] = _Item(guid, data)
        return guid

    def add_ticket_refs(self, item_guid: str, n: int, *, prefix: str = "REQ") -> list[str]:
        """Reference ``n`` new tickets (numbered ``<prefix>-000001``...) from an item.

        Returns the new association GUIDs, in server order.
        """
        item = self._items[item_guid]
        added = []
        for _ in range(n):
            ref = _TicketRef(self._new_guid(), self._new_ticket(prefix))
            item.tickets[ref.guid] = ref
            added.append(ref.guid)
        return added

    def add_reference(self, item_guid: str, other_guid: str, note: str | None = None) -> str:
        """Reference ``other_guid`` from ``item_guid`` (and back); returns the reference GUID.

        Raises ``ValueError`` for a reference to itself or a duplicate, ``KeyError`` for an
        unknown item.
        """
        item, other = self._items[item_guid], self._items[other_guid]
        if item_guid == other_guid:
            raise ValueError("an item cannot reference itself")
        if self._linked(item_guid, other_guid):
            raise ValueError(f"{item_guid} and {other_guid} are already referenced")
        ref = _Reference(self._new_guid(), item_guid, other_guid, note)
        item.references[ref.guid] = ref
        other.references[ref.guid] = ref
        return ref.guid

    def add_training_records(self, item_guid: str, n: int) -> list[str]:
        """Add ``n`` training records to an item; returns their GUIDs in server order.

        Dates are random and sometimes absent, as in seeded data.
        """
        return self._add_records(self._items[item_guid], n)

    # ------------------------------------------------------------------ data: read

    @property
    def item_guids(self) -> list[str]:
        """Every item GUID, in creation order."""
        return list(self._items)

    def item(self, item_guid: str, *, view: Literal["full", "minimum"] = "full") -> dict[str, Any]:
        """An item as ``GET /items/{guid}`` sends it (``view="minimum"``: guid, number, url).

        Example: ``fake.item(guid)["number"]``
        """
        return self._render_item(self._items[item_guid], minimum=view == "minimum")

    def ticket_refs(self, item_guid: str) -> list[dict[str, Any]]:
        """An item's ticket references as the server sends them, in server order."""
        return [self._render_ticket_ref(r) for r in self._items[item_guid].tickets.values()]

    def references(self, item_guid: str) -> list[dict[str, Any]]:
        """An item's references (seen from this item) as sent, in server order."""
        return [
            self._render_reference(item_guid, r) for r in self._items[item_guid].references.values()
        ]

    def training_records(self, item_guid: str, *, detail: bool = False) -> list[dict[str, Any]]:
        """An item's training records in server order: the list form, or with ``detail``
        the single-record form (with ``dueDate`` / ``signedDateTime`` when present)."""
        return [
            self._render_record(r, detail=detail) for r in self._items[item_guid].records.values()
        ]

    def training_record(self, item_guid: str, record_guid: str) -> dict[str, Any]:
        """One training record in its single-record form."""
        return self._render_record(self._items[item_guid].records[record_guid], detail=True)

    # ------------------------------------------------------------------ rendering

    def _item_url(self, guid: str) -> dict[str, str]:
        base = self._url or "http://127.0.0.1/v1"
        return {
            "api": f"{base}/items/{guid}",
            "app": f"https://app.arenasolutions.com/items/detail-spec?item_id={guid}",
        }

    def _render_item(self, item: _Item, *, minimum: bool) -> dict[str, Any]:
        if minimum:
            return {
                "guid": item.guid,
                "number": item.data.get("number"),
                "url": self._item_url(item.guid),
            }
        return {"guid": item.guid, **item.data, "url": self._item_url(item.guid)}

    def _render_ticket_ref(self, ref: _TicketRef) -> dict[str, Any]:
        return {"guid": ref.guid, "ticket": {"guid": ref.ticket.guid, "number": ref.ticket.number}}

    def _render_reference(self, item_guid: str, ref: _Reference) -> dict[str, Any]:
        other = ref.b if ref.a == item_guid else ref.a
        item: dict[str, Any] = {"guid": other}
        if self.item_url:
            item["url"] = self._item_url(other)
        return {"guid": ref.guid, "item": item, self.note_key: ref.note}

    def _render_record(self, record: _TrainingRecord, *, detail: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "guid": record.guid,
            self.trainingplan_key: {"guid": record.plan_guid, "number": record.plan_number},
        }
        if detail:
            if record.due_date is not None:
                data["dueDate"] = record.due_date
            if record.signed_date_time is not None:
                data["signedDateTime"] = record.signed_date_time
        return data

    # ------------------------------------------------------------------ the app

    def _setup_app(self, app: web.Application) -> None:
        app.on_response_prepare.append(self._add_quota_headers)
        route = app.router
        route.add_post("/v1/login", self._login)
        route.add_put("/v1/logout", self._logout)
        route.add_post(TOKEN_PATH, self._oauth.handle)
        route.add_get("/v1/items", self._list_items)
        route.add_get("/v1/items/{item:[^/]+}", self._get_item)
        route.add_get("/v1/items/{item:[^/]+}/tickets", self._list_ticket_refs)
        route.add_get("/v1/items/{item:[^/]+}/tickets/{ref:[^/]+}", self._get_ticket_ref)
        route.add_get("/v1/items/{item:[^/]+}/items", self._list_references)
        route.add_post("/v1/items/{item:[^/]+}/items", self._create_reference)
        route.add_get("/v1/items/{item:[^/]+}/items/{ref:[^/]+}", self._get_reference)
        route.add_put("/v1/items/{item:[^/]+}/items/{ref:[^/]+}", self._update_reference)
        route.add_delete("/v1/items/{item:[^/]+}/items/{ref:[^/]+}", self._delete_reference)
        route.add_get("/v1/items/{item:[^/]+}/trainingrecords", self._list_records)
        route.add_get("/v1/items/{item:[^/]+}/trainingrecords/{ref:[^/]+}", self._get_record)

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

    async def _list_ticket_refs(self, request: web.Request) -> web.StreamResponse:
        refs = self._paginate(request, self._item(request).tickets.values(), None)
        return self._page([self._render_ticket_ref(r) for r in refs])

    async def _get_ticket_ref(self, request: web.Request) -> web.StreamResponse:
        ref = _found(self._item(request).tickets, request.match_info["ref"])
        return web.json_response(self._render_ticket_ref(ref))

    async def _list_references(self, request: web.Request) -> web.StreamResponse:
        item = self._item(request)
        refs = self._paginate(request, item.references.values(), None)
        return self._page([self._render_reference(item.guid, r) for r in refs])

    def _reference(self, request: web.Request) -> tuple[_Item, _Reference]:
        item = self._item(request)
        return item, _found(item.references, request.match_info["ref"])

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
            self._render_reference(item.guid, item.references[ref_guid]), status=201
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
        del self._items[ref.a].references[ref.guid]
        del self._items[ref.b].references[ref.guid]
        return web.Response(status=204)

    async def _list_records(self, request: web.Request) -> web.StreamResponse:
        records = self._paginate(request, self._item(request).records.values(), DEFAULT_LIMIT)
        return self._page([self._render_record(r, detail=False) for r in records])

    async def _get_record(self, request: web.Request) -> web.StreamResponse:
        record = _found(self._item(request).records, request.match_info["ref"])
        return web.json_response(self._render_record(record, detail=True))
