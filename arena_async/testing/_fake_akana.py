"""FakeAkana: an in-memory Akana API Platform (Community Manager) on a real loopback port.

The fake speaks enough of the platform for a client's tests to run over real HTTP:

* ``POST /api/login`` with ``{"email", "password"}`` answers a LoginResponse and sets the
  ``AtmoAuthToken_{tenant}`` cookie and, when CSRF prevention is on, the
  ``Csrf-Token_{tenant}`` cookie (URL-encoded, as the platform sends it).
* Every other ``/api`` call needs a live token cookie; writes (and reads, with
  ``csrf_on_reads=True``) need the header ``X-Csrf-Token_{tenant}`` equal to the CSRF
  cookie's value *as is*. A missing, unknown or expired token, or a bad CSRF header, gets
  401. Tokens live ``token_lifetime`` seconds on the injectable ``clock``;
  ``POST /api/login/renewToken`` extends a live one, ``GET /api/login/endsession`` ends it,
  and :meth:`FakeAkana.expire_tokens` expires them all on demand.
* ``/api/tickets*`` wants ``Accept: application/vnd.soa.{v}+json`` with ``v`` one of
  ``versions``; anything else (plain ``application/json`` too) gets 404, as on the real
  platform. ``GET /api/tickets`` implements every documented filter and ``start``/``count``
  paging; ``GET /api/tickets/{TicketID}``, ``POST /api/tickets`` and
  ``POST /api/tickets/{TicketID}/actions`` are minimal but honest.
* Users see what their visibility allows: fewer (or no) tickets, never an error.
* Every request is recorded in :attr:`FakeAkana.requests`; counters are in
  :attr:`FakeAkana.stats`; a :class:`~arena_async.testing._faults.FaultPlan` can inject
  failures.

Nothing here logs passwords, tokens or CSRF values.

Example::

    async with FakeAkana.seeded(tickets=1001, seed=1) as fake:
        async with AkanaClient(base_url=fake.url, email=fake.email,
                               password=fake.password) as akana:
            got = [t.ticket_id async for t in akana.tickets.iter()]
        assert got == [t["TicketID"] for t in fake.tickets]
        assert all(r.headers.get(fake.csrf_header) for r in fake.requests[1:]
                   if r.method == "POST")
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import logging
import random
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, Self
from urllib.parse import quote

import attrs
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from multidict import MultiMapping

from ._faults import FaultPlan
from ._server import RECORD_KEY, FakeServer, FakeServerStats

__all__ = [
    "DEFAULT_PASSWORD",
    "LABELS",
    "SORT_ORDERS",
    "STATES",
    "TICKET_PARAMS",
    "FakeAkana",
    "FakeAkanaStats",
    "FakeUser",
]

logger = logging.getLogger(__name__)

#: The password of the default users (the fake is for tests: this is not a secret).
DEFAULT_PASSWORD = "Akana-Passw0rd!"
#: Ticket priority labels the platform documents.
LABELS = (
    "com.soa.ticket.label.priority.high",
    "com.soa.ticket.label.priority.medium",
    "com.soa.ticket.label.priority.low",
)
#: Ticket states the fake uses (the real list is unconfirmed).
STATES = ("OPEN", "RESOLVED", "CLOSED", "REOPEN")
#: ``SortBy`` values the fake understands; anything else falls back to the default order
#: (newest ``Created`` first), as an unknown value does on a lenient server.
SORT_ORDERS = (
    "com.soa.sort.order.updated",
    "com.soa.sort.order.date",
    "com.soa.sort.order.alphabetical",
)
#: The query parameters of ``GET /api/tickets``, spelled exactly as the platform does.
TICKET_PARAMS = (
    "APIID", "AppID", "RetrievingUserID", "AuthorID", "ItemID", "Tag", "Label", "State",
    "IncludeComments", "NumberOfComments", "IncludeActions", "SortBy", "start", "count",
)
_WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
_DEFAULT_COUNT = 100
_DEFAULT_COMMENTS = 2
_ACTIONS = {
    "OPEN": ("ticket.action.resolve", "ticket.action.close"),
    "REOPEN": ("ticket.action.resolve", "ticket.action.close"),
    "RESOLVED": ("ticket.action.reopen", "ticket.action.close"),
    "CLOSED": ("ticket.action.reopen",),
}
_DELETE_ACTION = "discussion.action.delete"
_NEXT_STATE = {
    "ticket.action.resolve": "RESOLVED",
    "ticket.action.close": "CLOSED",
    "ticket.action.reopen": "REOPEN",
}
_EPOCH_2015 = datetime(2015, 5, 12, 17, 27, 6, tzinfo=UTC)



@attrs.frozen(slots=True)
class FakeUser:
    """A user of the fake platform.

    ``admin`` users see every ticket; other users see ``Public`` tickets and the tickets
    they wrote (a simplification of Akana's visibility rules that is enough to prove a
    client copes with "fewer tickets, not an error"). A user with ``pending_tasks``
    (strings or objects, sent as given) logs in with 200 and a non-empty
    ``pendingTasks``, and the token it gets is refused (401) by every other call.

    Example: ``FakeUser("jo@example.com", "pw", user_id="u1.acme", name="jo", admin=False)``
    """

    email: str
    password: str = attrs.field(repr=False)
    user_id: str
    name: str
    admin: bool = True
    pending_tasks: tuple[str | Mapping[str, Any], ...] = ()


@attrs.define(slots=True)
class FakeAkanaStats(FakeServerStats):
    """Counters of what the fake has seen; ``reset()`` zeroes them (not the gauge).

    The counters of every fake (:class:`~arena_async.testing.FakeServerStats`:
    ``requests``, ``by_route`` like ``"GET /api/tickets/{ticket_id}"``, ``statuses``,
    ``unauthorized`` every 401 answered (login refusals included), ``faults_fired``,
    ``in_flight`` / ``max_in_flight``), and: ``logins``, ``failed_logins``,
    ``renewals``, ``endsessions``; ``csrf_failures`` the 401s for a missing or wrong
    CSRF header; ``not_acceptable`` the 404s given for a wrong ``Accept``;
    ``tickets_served`` the tickets listed.

    Example: ``assert fake.stats.csrf_failures == 0; fake.stats.reset()``
    """

    logins: int = 0
    failed_logins: int = 0
    renewals: int = 0
    endsessions: int = 0
    csrf_failures: int = 0
    not_acceptable: int = 0
    tickets_served: int = 0


@attrs.define(slots=True)
class _Session:
    user: FakeUser
    token_id: str
    csrf: str | None
    expires_at: float
    pending: bool
    ended: bool = False


@attrs.frozen(slots=True)
class _Params:
    filters: dict[str, str]
    include_comments: bool
    number_of_comments: int
    include_actions: bool
    sort_by: str | None
    start: int
    count: int


class _BadParam(Exception):
    pass


class FakeAkana(FakeServer):
    """An Akana API Platform on ``http://127.0.0.1:<port>``, in memory. See the module doc.

    Parameters:

    * ``tickets`` — ticket objects shaped like the platform's (PascalCase, with
      ``TargetResources``/``BoardItemArtifacts`` wrappers); each needs a ``TicketID``.
      They are served newest ``Created`` first. Use :meth:`seeded` for generated data.
    * ``users`` — the :class:`FakeUser` accounts; by default an admin (``email``), a
      restricted user (``restricted_email``) and a user with a pending
      ``ChangePassword`` task (``pending_email``), all with :data:`DEFAULT_PASSWORD`.
    * ``pending_tasks`` — ``{email: [task, ...]}`` added to those users.
    * ``tenant`` — the fedmemberid: cookie/header suffix and id suffix.
    * ``csrf`` / ``csrf_on_reads`` — CSRF prevention on writes / on reads too.
    * ``token_lifetime`` (seconds) and ``clock`` (epoch seconds, injectable).
    * ``latency`` — seconds slept before each answer.
    * ``faults`` — a :class:`FaultPlan`; exposed as :attr:`faults`.
    * ``versions`` — accepted ``application/vnd.soa.{v}+json`` versions.
    * ``error_body`` — ``"json"`` (``{"code", "message"}``), ``"text"`` or ``"html"``:
      the shape of error bodies (the real one is unconfirmed). Settable later.
    * ``login_key_case`` — ``"camel"`` (``userName``), ``"pascal"`` (``UserName``) or
      ``"lower"`` keys in the LoginResponse; ``valid_until_format`` — ``"iso"`` or
      ``"epoch_ms"`` for ``authTokenValidUntil``.
    * ``host`` / ``port`` — where to listen (port 0: any free port).

    * ``host`` may be ``"::1"`` (IPv6 loopback; :attr:`url` brackets it).

    Use as ``async with FakeAkana(...) as fake`` or ``fake = await FakeAkana().start()`` /
    ``await fake.close()``. Lifecycle, :attr:`url`, :attr:`requests` (each a
    :class:`~arena_async.testing.RecordedRequest`), :meth:`requests_to`, latency, faults
    and ``GET /_fake/stats`` come from :class:`~arena_async.testing.FakeServer`.
    """

    # Deprecated: this fake's records answer ``body`` with the raw bytes for one release.
    _bytes_body: ClassVar[bool] = True

    def __init__(
        self,
        *,
        tickets: Iterable[Mapping[str, Any]] | None = None,
        users: Sequence[FakeUser] | None = None,
        pending_tasks: Mapping[str, Sequence[str | Mapping[str, Any]]] | None = None,
        tenant: str = "acmepaymentscorp",
        csrf: bool = True,
        csrf_on_reads: bool = False,
        token_lifetime: float = 1800.0,
        clock: Callable[[], float] = time.time,
        latency: float = 0.0,
        faults: FaultPlan | None = None,
        versions: Sequence[str] = ("v72", "v80", "v81"),
        error_body: Literal["json", "text", "html"] = "json",
        login_key_case: Literal["camel", "pascal", "lower"] = "camel",
        valid_until_format: Literal["iso", "epoch_ms"] = "iso",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not tenant or "." in tenant:
            raise ValueError("tenant must be a non-empty name without dots")
        super().__init__(host=host, port=port, latency=latency, faults=faults, clock=clock)
        self.tenant = tenant
        self.csrf = csrf
        self.csrf_on_reads = csrf_on_reads
        self.token_lifetime = float(token_lifetime)
        self.versions = tuple(versions)
        self.error_body: Literal["json", "text", "html"] = error_body
        self.login_key_case: Literal["camel", "pascal", "lower"] = login_key_case
        self.valid_until_format: Literal["iso", "epoch_ms"] = valid_until_format
        base_users = list(users) if users is not None else _default_users(tenant)
        if pending_tasks:
            base_users = [
                attrs.evolve(u, pending_tasks=(*u.pending_tasks, *pending_tasks[u.email]))
                if u.email in pending_tasks else u
                for u in base_users
            ]
        if not base_users:
            raise ValueError("FakeAkana needs at least one user")
        self.users: list[FakeUser] = base_users
        #: Counters; see :class:`FakeAkanaStats`.
        self.stats: FakeAkanaStats = FakeAkanaStats()
        #: Query parameter names ``GET /api/tickets`` ignored, across all requests.
        self.unknown_params: list[str] = []
        self._tickets: dict[str, dict[str, Any]] = {}
        self._updated: dict[str, float] = {}
        self._sessions: dict[str, _Session] = {}  # AtmoAuthToken cookie value -> session
        self._next_number = 10000
        for ticket in tickets or ():
            self.add_ticket(ticket)

    # ------------------------------------------------------------------ construction

    @classmethod
    def seeded(cls, tickets: int = 1001, seed: int = 1, **kwargs: Any) -> Self:
        """A fake holding ``tickets`` generated tickets, the same for the same ``seed``.

        Ticket ids run ``ticket11000.{tenant}`` upwards (higher is newer); API and app
        ids are ``<uuid>.{tenant}``; states, labels, tags, authors, environments and
        visibility are spread; some tickets omit ``AppID``, ``PubDate``, ``Image`` or
        ``UserName`` so clients meet omissions. The restricted user wrote about one
        ticket in ten and sees those plus the ``Public`` ones.

        Example: ``async with FakeAkana.seeded(tickets=50, seed=7, csrf_on_reads=True)``
        """
        if tickets < 0:
            raise ValueError("tickets must be >= 0")
        tenant = kwargs.get("tenant", "acmepaymentscorp")
        rng = random.Random(seed)
        if "users" not in kwargs:
            kwargs["users"] = _default_users(tenant)
        users: Sequence[FakeUser] = kwargs["users"]
        generated = _generate_tickets(rng, tickets, tenant, users)
        kwargs["tickets"] = generated
        fake = cls(**kwargs)
        # Last activity: some time after creation, so "updated" order differs from "date".
        for ticket in generated:
            created = _created_ts(ticket)
            fake._updated[ticket["TicketID"]] = created + rng.randint(0, 90 * 86400)
        return fake

    def add_ticket(self, ticket: Mapping[str, Any], *, updated: float | None = None) -> None:
        """Store a ticket (a deep copy); ``updated`` (epoch seconds) drives
        ``SortBy=com.soa.sort.order.updated`` and defaults to its ``Created``."""
        ticket_id = ticket.get("TicketID")
        if not isinstance(ticket_id, str) or not ticket_id:
            raise ValueError("a ticket needs a string TicketID")
        self._tickets[ticket_id] = copy.deepcopy(dict(ticket))
        self._updated[ticket_id] = updated if updated is not None else _created_ts(ticket)
        number = _ticket_number(ticket_id)
        if number is not None:
            self._next_number = max(self._next_number, number + 1)

    # ------------------------------------------------------------------ lifecycle

    def _setup_app(self, app: web.Application) -> None:
        app.router.add_post("/api/login", self._login)
        app.router.add_post("/api/login/renewToken", self._renew)
        app.router.add_get("/api/login/endsession", self._endsession)
        app.router.add_get("/api/tickets", self._list_tickets)
        app.router.add_post("/api/tickets", self._create_ticket)
        app.router.add_get("/api/tickets/labels", self._labels)
        app.router.add_get("/api/tickets/{ticket_id}", self._get_ticket)
        app.router.add_post("/api/tickets/{ticket_id}/actions", self._ticket_action)

    def _inner_middlewares(self) -> list[Middleware]:
        return [self._http_error_middleware]

    def _has_session(self, request: web.Request) -> bool:
        return self.auth_cookie in request.cookies

    def _fault_error_body(self, status: int) -> Any:
        return {"code": status, "message": f"Injected fault: HTTP {status}."}

    # ------------------------------------------------------------------ test-facing API

    @property
    def email(self) -> str:
        """The first (unrestricted) user's email."""
        return self.users[0].email

    @property
    def password(self) -> str:
        """The first user's password."""
        return self.users[0].password

    @property
    def user(self) -> FakeUser:
        """The first user."""
        return self.users[0]

    @property
    def restricted_user(self) -> FakeUser:
        """The first non-admin user without pending tasks (``LookupError`` if none)."""
        for user in self.users:
            if not user.admin and not user.pending_tasks:
                return user
        raise LookupError("no restricted user configured")

    @property
    def restricted_email(self) -> str:
        """The restricted user's email: logs in fine, sees fewer tickets."""
        return self.restricted_user.email

    @property
    def restricted_password(self) -> str:
        """The restricted user's password."""
        return self.restricted_user.password

    @property
    def pending_user(self) -> FakeUser:
        """The first user with pending tasks (``LookupError`` if none)."""
        for user in self.users:
            if user.pending_tasks:
                return user
        raise LookupError("no user with pending tasks configured")

    @property
    def pending_email(self) -> str:
        """The email of a user whose login answers non-empty ``pendingTasks``."""
        return self.pending_user.email

    @property
    def pending_password(self) -> str:
        """That user's password."""
        return self.pending_user.password

    @property
    def auth_cookie(self) -> str:
        """The token cookie's name, ``AtmoAuthToken_{tenant}``."""
        return f"AtmoAuthToken_{self.tenant}"

    @property
    def csrf_cookie(self) -> str:
        """The CSRF cookie's name, ``Csrf-Token_{tenant}``."""
        return f"Csrf-Token_{self.tenant}"

    @property
    def csrf_header(self) -> str:
        """The CSRF header's name, ``X-Csrf-Token_{tenant}``."""
        return f"X-Csrf-Token_{self.tenant}"

    def media_type(self, version: str | None = None) -> str:
        """``application/vnd.soa.{version}+json`` (the newest version by default)."""
        return f"application/vnd.soa.{version or self.versions[-1]}+json"

    @property
    def tickets(self) -> list[dict[str, Any]]:
        """Every ticket as ``GET /api/tickets`` with default parameters shows it to an
        unrestricted user, in that order (newest ``Created`` first). Deep copies."""
        return self.tickets_for(None)

    def tickets_for(
        self,
        email: str | None,
        *,
        include_comments: bool = True,
        number_of_comments: int = _DEFAULT_COMMENTS,
        include_actions: bool = True,
        sort_by: str | None = None,
    ) -> list[dict[str, Any]]:
        """The tickets the user with ``email`` sees (everything for None), rendered with
        the given options, in server order."""
        user = self._user_by_email(email) if email is not None else None
        rows = [t for t in self._tickets.values() if user is None or _visible(t, user)]
        rows = self._sorted(rows, sort_by)
        return [
            self._render(t, include_comments, number_of_comments, include_actions)
            for t in rows
        ]

    def get_stored_ticket(self, ticket_id: str) -> dict[str, Any]:
        """The stored ticket (a deep copy, every comment included); ``KeyError`` if absent."""
        return copy.deepcopy(self._tickets[ticket_id])

    def updated_at(self, ticket_id: str) -> float:
        """When the ticket last changed (epoch seconds): the key of
        ``SortBy=com.soa.sort.order.updated``, which is not on the wire."""
        return self._updated[ticket_id]

    def expire_tokens(self) -> None:
        """Expire every issued token now: the next call with one gets 401."""
        now = self._clock()
        for session in self._sessions.values():
            session.expires_at = min(session.expires_at, now)

    def clear_requests(self) -> None:
        """Forget the recorded requests and ignored parameters (stats are kept)."""
        super().clear_requests()
        self.unknown_params.clear()

    @property
    def live_sessions(self) -> int:
        """How many issued tokens are still usable."""
        now = self._clock()
        return len({
            s.token_id for s in self._sessions.values()
            if not s.ended and not s.pending and s.expires_at > now
        })

    # ------------------------------------------------------------------ middlewares

    @web.middleware
    async def _http_error_middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            # The platform answers a wrong verb with 404, not 405.
            status = 404 if exc.status == 405 else exc.status
            return self._error(status, "Not Found" if status == 404 else exc.reason)

    def _expire_request_session(self, request: web.Request) -> None:
        session = self._sessions.get(request.cookies.get(self.auth_cookie, ""))
        if session is not None:
            session.expires_at = min(session.expires_at, self._clock())

    # ------------------------------------------------------------------ responses

    def _error(self, status: int, message: str) -> web.Response:
        if self.error_body == "text":
            return web.Response(status=status, text=message, content_type="text/plain")
        if self.error_body == "html":
            html = (f"<html><head><title>Error {status}</title></head>"
                    f"<body><h1>HTTP Status {status}</h1><p>{message}</p></body></html>")
            return web.Response(status=status, text=html, content_type="text/html")
        return web.json_response({"code": status, "message": message}, status=status)

    def _json(self, data: Any, content_type: str, status: int = 200) -> web.Response:
        return web.Response(
            status=status,
            body=json.dumps(data).encode(),
            headers={"Content-Type": content_type},
        )

    # ------------------------------------------------------------------ auth helpers

    def _authenticate(
        self, request: web.Request, *, allow_pending: bool = False
    ) -> _Session | web.Response:
        value = request.cookies.get(self.auth_cookie)
        if not value:
            return self._error(401, "Login required")
        session = self._sessions.get(value)
        if session is None or session.ended:
            return self._error(401, "Invalid or ended authentication token")
        if session.expires_at <= self._clock():
            return self._error(401, "Authentication token expired")
        if session.pending and not allow_pending:
            return self._error(401, "Account has pending tasks; complete them in the portal")
        needs_csrf = self.csrf and (request.method in _WRITE_METHODS or self.csrf_on_reads)
        if needs_csrf and request.headers.get(self.csrf_header) != session.csrf:
            self.stats.csrf_failures += 1
            return self._error(401, "Missing or invalid CSRF token")
        return session

    def _check_accept(self, request: web.Request) -> str | web.Response:
        wanted = {f"application/vnd.soa.{v}+json" for v in self.versions}
        for part in request.headers.get("Accept", "").split(","):
            media = part.split(";", 1)[0].strip().lower()
            if media in wanted:
                return media
        self.stats.not_acceptable += 1
        return self._error(404, "Not Found")

    def _user_by_email(self, email: str) -> FakeUser:
        for user in self.users:
            if user.email.lower() == email.lower():
                return user
        raise LookupError(f"no user {email!r}")

    def _login_body(self, session: _Session) -> dict[str, Any]:
        user = session.user
        until: Any
        if self.valid_until_format == "epoch_ms":
            until = round(session.expires_at * 1000)
        else:
            until = _iso(session.expires_at)
        body = {
            "userName": user.name,
            "userFDN": f"{_bare_id(user.user_id)}.{self.tenant}",
            "loginDomainID": f"{self.tenant}-domain.{self.tenant}",
            "pendingTasks": [copy.deepcopy(t) for t in user.pending_tasks],
            "authTokenValidUntil": until,
        }
        if self.login_key_case == "pascal":
            return {k[0].upper() + k[1:]: v for k, v in body.items()}
        if self.login_key_case == "lower":
            return {k.lower(): v for k, v in body.items()}
        return body

    def _auth_cookie_value(self, session: _Session, issued: float) -> str:
        raw = (
            f"TokenID={session.token_id},"
            f"claimed_id=urn:atmosphere:user:{self.tenant}:{_bare_id(session.user.user_id)},"
            f"issueTime={round(issued * 1000)},expirationTime={round(session.expires_at * 1000)},"
            f"UserName={session.user.name},"
            f"UserFDN={session.user.user_id.replace('.', '%2E')},AttributesIncluded=false,"
            f"sig={base64.urlsafe_b64encode(uuid.uuid4().bytes * 3).decode().rstrip('=')}"
        )
        return quote(raw, safe="")

    def _set_session_cookies(self, response: web.Response, session: _Session) -> None:
        value = self._auth_cookie_value(session, self._clock())
        self._sessions[value] = session
        response.set_cookie(self.auth_cookie, value, path="/", httponly=True)
        if session.csrf is not None:
            response.set_cookie(self.csrf_cookie, session.csrf, path="/")

    # ------------------------------------------------------------------ /api/login

    async def _login(self, request: web.Request) -> web.StreamResponse:
        try:
            payload = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return self._error(400, "Request body is not valid JSON")
        if not isinstance(payload, dict):
            return self._error(400, "Request body must be a JSON object")
        email, password = payload.get("email"), payload.get("password")
        if not isinstance(email, str) or not isinstance(password, str):
            return self._error(400, "email and password are required")
        user = next((u for u in self.users if u.email.lower() == email.lower()), None)
        if user is None or user.password != password:
            self.stats.failed_logins += 1
            logger.debug("FakeAkana refused a login")
            return self._error(401, "Invalid email or password")
        now = self._clock()
        csrf = None
        if self.csrf:
            # Base64 with padding, URL-encoded: the value always holds %3D escapes.
            raw = f"TokenID={uuid.uuid4()},expirationTime={round((now + 86400) * 1000)}"
            csrf = quote(f"{raw},sig={base64.b64encode(uuid.uuid4().bytes).decode()}", safe="")
        session = _Session(
            user=user,
            token_id=str(uuid.uuid4()),
            csrf=csrf,
            expires_at=now + self.token_lifetime,
            pending=bool(user.pending_tasks),
        )
        self.stats.logins += 1
        response = self._json(self._login_body(session), "application/json")
        self._set_session_cookies(response, session)
        return response

    async def _renew(self, request: web.Request) -> web.StreamResponse:
        session = self._authenticate(request, allow_pending=True)
        if isinstance(session, web.Response):
            return session
        session.expires_at = self._clock() + self.token_lifetime
        self.stats.renewals += 1
        response = self._json(self._login_body(session), "application/json")
        self._set_session_cookies(response, session)
        return response

    async def _endsession(self, request: web.Request) -> web.StreamResponse:
        value = request.cookies.get(self.auth_cookie, "")
        session = self._sessions.get(value)
        if session is not None and not session.ended and self.csrf_on_reads and self.csrf \
                and request.headers.get(self.csrf_header) != session.csrf:
            self.stats.csrf_failures += 1
            return self._error(401, "Missing or invalid CSRF token")
        if session is not None and not session.ended:
            session.ended = True
            self.stats.endsessions += 1
        response = web.Response(status=200, text="", content_type="text/plain")
        response.del_cookie(self.auth_cookie, path="/")
        if self.csrf:
            response.del_cookie(self.csrf_cookie, path="/")
        return response

    # ------------------------------------------------------------------ /api/tickets

    async def _list_tickets(self, request: web.Request) -> web.StreamResponse:
        session = self._authenticate(request)
        if isinstance(session, web.Response):
            return session
        media = self._check_accept(request)
        if isinstance(media, web.Response):
            return media
        record = request[RECORD_KEY]
        unknown = [name for name in request.query if name not in TICKET_PARAMS]
        if unknown:
            record.unknown_params.extend(unknown)
            self.unknown_params.extend(unknown)
        try:
            params = _parse_params(request.query)
        except _BadParam as exc:
            return self._error(400, str(exc))
        rows = [t for t in self._tickets.values() if _visible(t, session.user)]
        rows = [t for t in rows if self._matches(t, params.filters)]
        rows = self._sorted(rows, params.sort_by)
        page = rows[params.start: params.start + params.count]
        self.stats.tickets_served += len(page)
        body = {"Ticket": [
            self._render(t, params.include_comments, params.number_of_comments,
                         params.include_actions)
            for t in page
        ]}
        return self._json(body, media)

    async def _get_ticket(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/tickets/{TicketID}``: the bare ticket object. Whether the real
        platform wraps it (e.g. ``{"Ticket": [...]}``) is unconfirmed; clients should
        accept both. A ticket the user may not see is a 404, like a missing one."""
        session = self._authenticate(request)
        if isinstance(session, web.Response):
            return session
        media = self._check_accept(request)
        if isinstance(media, web.Response):
            return media
        ticket = self._tickets.get(request.match_info["ticket_id"])
        if ticket is None or not _visible(ticket, session.user):
            return self._error(404, "Ticket not found")
        return self._json(self._render(ticket, True, _DEFAULT_COMMENTS, True), media)

    async def _labels(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/tickets/labels``: ``{"Label": [...]}`` (the real shape is unconfirmed)."""
        session = self._authenticate(request)
        if isinstance(session, web.Response):
            return session
        media = self._check_accept(request)
        if isinstance(media, web.Response):
            return media
        return self._json({"Label": list(LABELS)}, media)

    async def _create_ticket(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/tickets``: needs ``Title``, ``Description``, ``Environment`` and
        ``Label``; answers 200 with the stored ticket (state ``OPEN``, author the caller)."""
        session = self._authenticate(request)
        if isinstance(session, web.Response):
            return session
        media = self._check_accept(request)
        if isinstance(media, web.Response):
            return media
        try:
            payload = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return self._error(400, "Request body is not valid JSON")
        if not isinstance(payload, dict):
            return self._error(400, "Request body must be a ticket object")
        for key in ("Title", "Description", "Environment"):
            if not isinstance(payload.get(key), str) or not payload[key]:
                return self._error(400, f"{key} is required")
        labels = payload.get("Label")
        if isinstance(labels, str):
            labels = [labels]
        if not isinstance(labels, list) or not labels or not all(
            isinstance(label, str) and label in LABELS for label in labels
        ):
            return self._error(400, "Label must be one of " + ", ".join(LABELS))
        tags = payload.get("Tag", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            return self._error(400, "Tag must be a list of strings")
        now = self._clock()
        user = session.user
        ticket_id = f"ticket{self._next_number}.{self.tenant}"
        ticket: dict[str, Any] = {"TicketID": ticket_id}
        for key in ("APIID", "AppID"):
            if isinstance(payload.get(key), str):
                ticket[key] = payload[key]
        ticket.update({
            "Title": payload["Title"],
            "Description": payload["Description"],
            "Environment": payload["Environment"],
            "State": "OPEN",
            "UserID": user.user_id,
            "UserName": user.name,
            "Created": _iso(now),
            "Label": labels[:1],
            "Tag": tags,
            "Comments": 0,
            "Marks": 0,
            "IsMarked": False,
            "Visibility": payload.get("Visibility", "Limited"),
            "PubDate": _iso(now),
            "Action": _actions_for("OPEN"),
            "TargetResources": {"TargetResource": []},
            "CommentsPreview": {"Count": 0, "Comment": []},
            "Link": f"../{self.tenant}#/forum/discussions/{ticket_id}/details",
            "AuthoringUser": {"UserID": user.user_id, "Name": user.name},
            "DescriptionMediaType": payload.get("DescriptionMediaType", "text/plain"),
            "BoardItemArtifacts": {"BoardItemArtifact": []},
        })
        self.add_ticket(ticket, updated=now)
        return self._json(self._render(ticket, True, _DEFAULT_COMMENTS, True), media)

    async def _ticket_action(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/tickets/{TicketID}/actions`` with ``{"ActionName", "Comments"}``:
        applies a workflow action valid in the ticket's state (see its ``Action`` list),
        adds ``Comments`` as a comment when non-empty, answers 200 with the ticket (or
        204 after ``discussion.action.delete``). An action not valid now is a 400."""
        session = self._authenticate(request)
        if isinstance(session, web.Response):
            return session
        media = self._check_accept(request)
        if isinstance(media, web.Response):
            return media
        ticket = self._tickets.get(request.match_info["ticket_id"])
        if ticket is None or not _visible(ticket, session.user):
            return self._error(404, "Ticket not found")
        try:
            payload = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return self._error(400, "Request body is not valid JSON")
        if not isinstance(payload, dict) or not isinstance(payload.get("ActionName"), str):
            return self._error(400, "ActionName is required")
        action = payload["ActionName"]
        comments = payload.get("Comments")
        if comments is not None and not isinstance(comments, str):
            return self._error(400, "Comments must be a string")
        valid = {a["value"] for a in _actions_for(str(ticket.get("State", "OPEN")))}
        if action not in valid:
            return self._error(400, f"Action {action!r} is not valid in this state")
        now = self._clock()
        if action == _DELETE_ACTION:
            del self._tickets[ticket["TicketID"]]
            del self._updated[ticket["TicketID"]]
            return web.Response(status=204)
        ticket["State"] = _NEXT_STATE[action]
        ticket["Action"] = _actions_for(ticket["State"])
        if comments:
            _add_comment(ticket, session.user, comments, now)
        self._updated[ticket["TicketID"]] = now
        return self._json(self._render(ticket, True, _DEFAULT_COMMENTS, True), media)

    # ------------------------------------------------------------------ ticket helpers

    def _matches(self, ticket: Mapping[str, Any], filters: Mapping[str, str]) -> bool:
        for name, value in filters.items():
            if name == "APIID" and ticket.get("APIID") != value:
                return False
            if name == "AppID" and ticket.get("AppID") != value:
                return False
            if name == "AuthorID" and ticket.get("UserID") != value:
                return False
            if name == "ItemID" and ticket.get("TicketID") != value:
                return False
            if name == "State" and ticket.get("State") != value:
                return False
            if name == "Tag" and value not in (ticket.get("Tag") or []):
                return False
            if name == "Label" and value not in (ticket.get("Label") or []):
                return False
            if name == "RetrievingUserID":
                viewer = next((u for u in self.users if u.user_id == value), None)
                if viewer is None or not _visible(ticket, viewer):
                    return False
        return True

    def _sorted(
        self, rows: list[dict[str, Any]], sort_by: str | None
    ) -> list[dict[str, Any]]:
        def tie(t: Mapping[str, Any]) -> tuple[int, str]:
            return (_ticket_number(t["TicketID"]) or 0, t["TicketID"])

        if sort_by == "com.soa.sort.order.updated":
            return sorted(rows, key=lambda t: (self._updated[t["TicketID"]], *tie(t)),
                          reverse=True)
        if sort_by == "com.soa.sort.order.alphabetical":
            return sorted(rows, key=lambda t: (str(t.get("Title", "")).lower(), t["TicketID"]))
        return sorted(rows, key=lambda t: (_created_ts(t), *tie(t)), reverse=True)

    @staticmethod
    def _render(
        ticket: Mapping[str, Any],
        include_comments: bool,
        number_of_comments: int,
        include_actions: bool,
    ) -> dict[str, Any]:
        out = copy.deepcopy(dict(ticket))
        preview = out.get("CommentsPreview")
        if not include_comments:
            out.pop("CommentsPreview", None)
        elif isinstance(preview, dict) and isinstance(preview.get("Comment"), list):
            preview["Comment"] = preview["Comment"][:number_of_comments]
        if not include_actions:
            out.pop("Action", None)
        return out


# ---------------------------------------------------------------------- pure helpers


def _parse_params(query: MultiMapping[str]) -> _Params:
    def boolean(name: str, default: bool) -> bool:
        value = query.get(name)
        if value is None:
            return default
        if value not in ("true", "false"):
            raise _BadParam(f"{name} must be true or false, got {value[:20]!r}")
        return value == "true"

    def integer(name: str, default: int) -> int:
        value = query.get(name)
        if value is None:
            return default
        if not value.isascii() or not value.isdigit():
            raise _BadParam(f"{name} must be a non-negative integer, got {value[:20]!r}")
        return int(value)

    filters = {
        name: query[name]
        for name in ("APIID", "AppID", "RetrievingUserID", "AuthorID", "ItemID", "Tag",
                     "Label", "State")
        if name in query
    }
    return _Params(
        filters=filters,
        include_comments=boolean("IncludeComments", True),
        number_of_comments=integer("NumberOfComments", _DEFAULT_COMMENTS),
        include_actions=boolean("IncludeActions", True),
        sort_by=query.get("SortBy"),
        start=integer("start", 0),
        count=integer("count", _DEFAULT_COUNT),
    )


def _visible(ticket: Mapping[str, Any], user: FakeUser) -> bool:
    if user.admin or ticket.get("Visibility") == "Public":
        return True
    return ticket.get("UserID") == user.user_id


def _actions_for(state: str) -> list[dict[str, str]]:
    names = (*_ACTIONS.get(state, ()), _DELETE_ACTION)
    return [{"value": name, "label": name} for name in names]


def _add_comment(ticket: dict[str, Any], user: FakeUser, content: str, now: float) -> None:
    preview = ticket.setdefault("CommentsPreview", {"Count": 0, "Comment": []})
    tenant = ticket["TicketID"].rsplit(".", 1)[-1]
    preview.setdefault("Comment", []).insert(0, {
        "CommentID": f"{uuid.uuid4()}.{tenant}",
        "CommentSubjectID": ticket["TicketID"],
        "Content": content,
        "Created": _iso(now),
        "Marks": 0,
        "IsMarked": False,
        "UserID": user.user_id,
        "UserName": user.name,
    })
    preview["Count"] = len(preview["Comment"])
    ticket["Comments"] = preview["Count"]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _created_ts(ticket: Mapping[str, Any]) -> float:
    created = ticket.get("Created")
    return _timestamp(created) if isinstance(created, str) else float("-inf")


@functools.lru_cache(maxsize=65536)  # every listing sorts by it: parse each date once
def _timestamp(created: str) -> float:
    try:
        parsed = datetime.fromisoformat(created)
    except ValueError:
        return float("-inf")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@functools.lru_cache(maxsize=65536)
def _ticket_number(ticket_id: str) -> int | None:
    head = ticket_id.split(".", 1)[0]
    digits = head.removeprefix("ticket")
    return int(digits) if digits.isdigit() else None


def _bare_id(resource_id: str) -> str:
    return resource_id.rsplit(".", 1)[0] if "." in resource_id else resource_id


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _default_users(tenant: str) -> list[FakeUser]:
    rng = random.Random(f"users:{tenant}")
    return [
        FakeUser(f"admin@{tenant}.example", DEFAULT_PASSWORD, f"{_uuid(rng)}.{tenant}",
                 f"admin{tenant.capitalize()}", admin=True),
        FakeUser(f"developer@{tenant}.example", DEFAULT_PASSWORD, f"{_uuid(rng)}.{tenant}",
                 "developerJordan", admin=False),
        FakeUser(f"newhire@{tenant}.example", DEFAULT_PASSWORD, f"{_uuid(rng)}.{tenant}",
                 "newhireSam", admin=False, pending_tasks=("ChangePassword",)),
    ]


_API_NAMES = ("ACME Payments API", "ACME Accounts API", "ACME Fraud API", "ACME Ledger API",
              "ACME Notifications API")
_TAGS = ("bug", "payment", "login", "timeout", "docs", "performance", "sandbox", "billing",
         "oauth", "feature")
_TITLES = ("Bug when using multiple payment types", "Cannot log in after timeout",
           "Sandbox returns 500 on refund", "Docs missing for webhook retries",
           "Slow responses from the accounts endpoint", "OAuth token rejected after renewal",
           "Rate limit headers missing", "Feature request: bulk export")
_AUTHOR_NAMES = ("alexPatel", "brookeChen", "carlosDiaz", "danaKim", "eliOkafor")


def _generate_tickets(
    rng: random.Random, count: int, tenant: str, users: Sequence[FakeUser]
) -> list[dict[str, Any]]:
    apis = []
    for name in _API_NAMES:
        api_id = f"{_uuid(rng)}.{tenant}"
        versions = [(f"{major}.0", f"{_uuid(rng)}.{tenant}") for major in (1, 2)]
        apis.append((name, api_id, versions))
    apps = [(f"App {n}", f"{_uuid(rng)}.{tenant}") for n in range(4)]
    authors = [(u.user_id, u.name) for u in users if not u.pending_tasks]
    authors += [(f"{_uuid(rng)}.{tenant}", name) for name in _AUTHOR_NAMES]
    restricted = next((u for u in users if not u.admin and not u.pending_tasks), None)
    host = f"https://{tenant}.apiportal.example"
    tickets: list[dict[str, Any]] = []
    created = _EPOCH_2015
    for n in range(count):
        created += timedelta(seconds=rng.randint(60, 7200))
        ticket_id = f"ticket{11000 + n}.{tenant}"
        if restricted is not None and rng.random() < 0.1:
            user_id, user_name = restricted.user_id, restricted.name
        else:
            user_id, user_name = rng.choice(authors)
        api_name, api_root, versions = rng.choice(apis)
        version_name, version_id = rng.choice(versions)
        state = rng.choices(STATES, weights=(40, 25, 25, 10))[0]
        avatar = {
            "Url": f"{host}/api/users/{user_id}/avatar",
            "Link": f"../{tenant}#/user/{user_id}/details",
        }
        ticket: dict[str, Any] = {"TicketID": ticket_id, "APIID": version_id}
        app = rng.choice(apps) if rng.random() < 0.5 else None
        if app is not None:
            ticket["AppID"] = app[1]
        ticket.update({
            "Title": rng.choice(_TITLES),
            "Description": f"Report {n}: steps to reproduce follow.",
            "Environment": rng.choice(("Production", "Sandbox")),
            "State": state,
            "UserID": user_id,
        })
        if rng.random() < 0.8:
            ticket["UserName"] = user_name
        comments = [
            {
                "CommentID": f"{_uuid(rng)}.{tenant}",
                "CommentSubjectID": ticket_id,
                "Content": f"Comment {k} on {ticket_id}",
                "Created": (created + timedelta(minutes=5 * (k + 1))).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"),
                "Marks": 0,
                "IsMarked": False,
                "UserID": authors[k % len(authors)][0],
                "UserName": authors[k % len(authors)][1],
            }
            for k in range(rng.choice((0, 0, 0, 1, 2, 3, 5)))
        ]
        marks = rng.choice((0, 0, 0, 1, 2))
        ticket.update({
            "Created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Label": [rng.choice(LABELS)],
            "Tag": rng.sample(_TAGS, rng.randint(0, 3)),
            "Comments": len(comments),
            "Marks": marks,
            "IsMarked": marks > 0 and rng.random() < 0.5,
            "Visibility": "Public" if rng.random() < 0.3 else "Limited",
        })
        if rng.random() < 0.85:
            ticket["PubDate"] = ticket["Created"]
        resources = [
            {"Name": api_name, "ID": api_root, "Type": "api"},
            {"Name": version_name, "ID": version_id, "Type": "apiversion"},
        ]
        if app is not None:
            resources.append({"Name": app[0], "ID": app[1], "Type": "app"})
        ticket["Action"] = _actions_for(state)
        ticket["TargetResources"] = {"TargetResource": resources}
        if rng.random() < 0.8:
            ticket["Image"] = dict(avatar)
        ticket["CommentsPreview"] = {"Count": len(comments), "Comment": comments}
        ticket["Link"] = f"../{tenant}#/forum/discussions/{ticket_id}/details"
        ticket["AuthoringUser"] = {
            "UserID": user_id,
            "Name": user_name,
            "Image": {**avatar, "Title": user_name,
                      "Link": f"#/users/{user_id}/details"},
        }
        ticket["DescriptionMediaType"] = rng.choice(("text/plain", "text/markdown"))
        artifacts = []
        if rng.random() < 0.05:
            artifacts.append({
                "ContextID": f"{_uuid(rng)}.{tenant}",
                "FileName": "screenshot",
                "BaseUri": host,
                "UriPath": f"/api/boards/items/{ticket_id}/artifacts/screenshot.png",
            })
        ticket["BoardItemArtifacts"] = {"BoardItemArtifact": artifacts}
        tickets.append(ticket)
    return tickets


#: Old names kept for one release: ``AkanaStats`` is :class:`FakeAkanaStats`; this
#: module's ``RecordedRequest`` is the one :class:`arena_async.testing.RecordedRequest`.
_DEPRECATED = {
    "AkanaStats": ("FakeAkanaStats", "arena_async.testing.FakeAkanaStats"),
    "RecordedRequest": ("RecordedRequest", "arena_async.testing.RecordedRequest"),
}


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        new, where = _DEPRECATED[name]
        warnings.warn(
            f"arena_async.testing._fake_akana.{name} is deprecated and goes in the next "
            f"release: use {where}",
            DeprecationWarning,
            stacklevel=2,
        )
        from . import _server

        return FakeAkanaStats if new == "FakeAkanaStats" else _server.RecordedRequest
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
