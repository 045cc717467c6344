"""FakeAkana: an in-memory Akana API Platform (Community Manager) on a real loopback port.

The fake speaks enough of the platform for a client's tests to run over real HTTP:

* ``POST /api/login`` with ``{"email", "password"}`` answers a LoginResponse and sets the
  ``AtmoAuthToken_{tenant}`` cookie and, when CSRF prevention is on, the
  ``Csrf-Token_{tenant}`` cookie (URL-encoded, as the platform sends it).
  ``POST /api/login/ssoLogin`` (form-encoded ``domain``, ``identity_username``,
  ``secret_password``) does the same for the directory users it is given.
* Every other ``/api`` call needs a live token cookie; writes (and reads, with
  ``csrf_on_reads=True``) need the header ``X-Csrf-Token_{tenant}`` equal to the CSRF
  cookie's value *as is*. A missing, unknown or expired token, or a bad CSRF header, gets
  401. Tokens live ``token_lifetime`` seconds on the injectable ``clock``;
  ``POST /api/login/renewToken`` extends a live one, ``GET /api/login/endsession`` ends it,
  and :meth:`FakeAkana.expire_tokens` expires them all on demand. With
  ``expired_listing="empty"``, ``GET /api/tickets`` with an expired token answers an
  empty 200 ``{"Ticket": []}`` instead of the 401 (what the platform may do: a fault to
  prove a client loses no ticket to it).
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
import json
import logging
import random
import ssl
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Literal, Self
from urllib.parse import quote

import attrs
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ._akana_tickets import (
    _DEFAULT_COMMENTS,
    _DELETE_ACTION,
    _NEXT_STATE,
    DEFAULT_PASSWORD,
    LABELS,
    SORT_ORDERS,
    STATES,
    TICKET_PARAMS,
    FakeUser,
    _actions_for,
    _add_comment,
    _BadParam,
    _bare_id,
    _created_ts,
    _default_users,
    _generate_tickets,
    _iso,
    _matches,
    _parse_params,
    _render,
    _sorted,
    _ticket_number,
    _visible,
)
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

_WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})


@attrs.define(slots=True)
class FakeAkanaStats(FakeServerStats):
    """Counters of what the fake has seen; ``reset()`` zeroes them (not the gauge).

    The counters of every fake (:class:`~arena_async.testing.FakeServerStats`:
    ``requests``, ``by_route`` like ``"GET /api/tickets/{ticket_id}"``, ``statuses``,
    ``unauthorized`` every 401 answered (login refusals included), ``faults_fired``,
    ``in_flight`` / ``max_in_flight``), and: ``logins``, ``failed_logins``,
    ``renewals``, ``endsessions``; ``csrf_failures`` the 401s for a missing or wrong
    CSRF header; ``not_acceptable`` the 404s given for a wrong ``Accept``;
    ``tickets_served`` the tickets listed; ``directory_logins`` the logins through
    ``ssoLogin`` (counted in ``logins`` too); ``lapsed_empty`` the empty 200s given to an
    expired token (``expired_listing="empty"``).

    Example: ``assert fake.stats.csrf_failures == 0; fake.stats.reset()``
    """

    logins: int = 0
    directory_logins: int = 0
    failed_logins: int = 0
    lapsed_empty: int = 0
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


def _json_error(status: int, message: str) -> dict[str, Any]:
    """The fake's JSON error body (``error_body="json"``): ``{"code", "message"}``."""
    return {"code": status, "message": message}


class _Refusal(Exception):
    """An error answer (``status``, ``message``), raised by a handler and sent by
    :meth:`FakeAkana._http_error_middleware` in the shape of ``error_body``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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
      ``"epoch_ms"`` for ``authTokenValidUntil``, or ``"none"`` to leave it out.
    * ``opaque_tokens`` — token cookies that say nothing of their times (by default they
      carry ``issueTime`` and ``expirationTime`` in epoch ms, as the platform's do).
    * ``host`` / ``port`` — where to listen (port 0: any free port).
    * ``ssl_context`` — serve HTTPS with this server-side ``ssl.SSLContext`` (see
      :class:`~arena_async.testing.FakeServer`); :attr:`url` is then ``https://``.
    * ``directory_users`` — :class:`FakeUser` accounts with a ``domain`` and ``username``
      that log in through ``POST /api/login/ssoLogin`` (added to ``users``; they take no
      part in generating :meth:`seeded` tickets).
    * ``expired_listing`` — what ``GET /api/tickets`` answers an expired token: ``"401"``
      or ``"empty"`` (an empty 200). Settable later.

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
        valid_until_format: Literal["iso", "epoch_ms", "none"] = "iso",
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        directory_users: Sequence[FakeUser] = (),
        expired_listing: Literal["401", "empty"] = "401",
        opaque_tokens: bool = False,
    ) -> None:
        if not tenant or "." in tenant:
            raise ValueError("tenant must be a non-empty name without dots")
        super().__init__(host=host, port=port, latency=latency, faults=faults, clock=clock,
                         ssl_context=ssl_context)
        self.tenant = tenant
        self.csrf = csrf
        self.csrf_on_reads = csrf_on_reads
        self.token_lifetime = float(token_lifetime)
        self.versions = tuple(versions)
        self.error_body: Literal["json", "text", "html"] = error_body
        self.login_key_case: Literal["camel", "pascal", "lower"] = login_key_case
        self.valid_until_format: Literal["iso", "epoch_ms", "none"] = valid_until_format
        self.opaque_tokens = opaque_tokens
        base_users = list(users) if users is not None else _default_users(tenant)
        if pending_tasks:
            base_users = [
                attrs.evolve(u, pending_tasks=(*u.pending_tasks, *pending_tasks[u.email]))
                if u.email in pending_tasks else u
                for u in base_users
            ]
        if not base_users:
            raise ValueError("FakeAkana needs at least one user")
        for user in directory_users:
            if not user.domain or not user.username:
                raise ValueError("a directory user needs a domain and a username")
        self.users: list[FakeUser] = [*base_users, *directory_users]
        self.expired_listing: Literal["401", "empty"] = expired_listing
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
        app.router.add_post("/api/login/ssoLogin", self._sso_login)
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
        return _json_error(status, f"Injected fault: HTTP {status}.")

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
        return self._first_user("restricted", lambda u: not u.admin and not u.pending_tasks)

    @property
    def restricted_email(self) -> str:
        """The restricted user's email: logs in fine, sees fewer tickets."""
        return self.restricted_user.email

    @property
    def restricted_password(self) -> str:
        """The restricted user's password."""
        return self.restricted_user.password

    @property
    def directory_user(self) -> FakeUser:
        """The first directory user (``LookupError`` if none)."""
        return self._first_user("directory", lambda u: u.domain is not None)

    @property
    def pending_user(self) -> FakeUser:
        """The first user with pending tasks (``LookupError`` if none)."""
        return self._first_user("pending", lambda u: bool(u.pending_tasks))

    def _first_user(self, kind: str, test: Callable[[FakeUser], bool]) -> FakeUser:
        user = next((u for u in self.users if test(u)), None)
        if user is None:
            raise LookupError(f"no {kind} user configured")
        return user

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
        user = None
        if email is not None:
            user = self._find_user(email)
            if user is None:
                raise LookupError(f"no user {email!r}")
        rows = [t for t in self._tickets.values() if user is None or _visible(t, user)]
        rows = _sorted(rows, sort_by, self._updated)
        return [_render(t, include_comments, number_of_comments, include_actions) for t in rows]

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
        except _Refusal as exc:
            return self._error(exc.status, exc.message)
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
        return web.json_response(_json_error(status, message), status=status)

    def _json(self, data: Any, content_type: str, status: int = 200) -> web.Response:
        return web.Response(
            status=status,
            body=json.dumps(data).encode(),
            headers={"Content-Type": content_type},
        )

    # ------------------------------------------------------------------ auth helpers

    def _authenticate(self, request: web.Request, *, allow_pending: bool = False) -> _Session:
        """The live session of ``request`` (401 raised: no, an ended or an expired token,
        a pending account unless ``allow_pending``, a bad CSRF header)."""
        value = request.cookies.get(self.auth_cookie)
        if not value:
            raise _Refusal(401, "Login required")
        session = self._sessions.get(value)
        if session is None or session.ended:
            raise _Refusal(401, "Invalid or ended authentication token")
        if session.expires_at <= self._clock():
            raise _Refusal(401, "Authentication token expired")
        if session.pending and not allow_pending:
            raise _Refusal(401, "Account has pending tasks; complete them in the portal")
        self._check_csrf(request, session)
        return session

    def _check_csrf(self, request: web.Request, session: _Session) -> None:
        """401 raised when the call needs the CSRF header and it is missing or wrong."""
        needs_csrf = self.csrf and (request.method in _WRITE_METHODS or self.csrf_on_reads)
        if needs_csrf and request.headers.get(self.csrf_header) != session.csrf:
            self.stats.csrf_failures += 1
            raise _Refusal(401, "Missing or invalid CSRF token")

    def _ticket_call(self, request: web.Request) -> tuple[_Session, str]:
        """What every ``/api/tickets*`` call checks first: the session (401) and the
        ``Accept`` header (404); returns the session and the media type to answer in."""
        session = self._authenticate(request)
        wanted = {f"application/vnd.soa.{v}+json" for v in self.versions}
        for part in request.headers.get("Accept", "").split(","):
            media = part.split(";", 1)[0].strip().lower()
            if media in wanted:
                return session, media
        self.stats.not_acceptable += 1
        raise _Refusal(404, "Not Found")

    def _visible_ticket(self, request: web.Request, session: _Session) -> dict[str, Any]:
        """The ticket of the path, if the session's user may see it (else 404 raised)."""
        ticket = self._tickets.get(request.match_info["ticket_id"])
        if ticket is None or not _visible(ticket, session.user):
            raise _Refusal(404, "Ticket not found")
        return ticket

    @staticmethod
    async def _json_object(request: web.Request, refusal: str) -> dict[str, Any]:
        """The request's JSON body (400 raised: not JSON; not an object, with ``refusal``)."""
        try:
            payload = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            raise _Refusal(400, "Request body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise _Refusal(400, refusal)
        return payload

    def _find_user(self, email: str) -> FakeUser | None:
        """The user with ``email`` (compared case-insensitively), or None."""
        return next((u for u in self.users if u.email.lower() == email.lower()), None)

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
        if self.valid_until_format == "none":
            del body["authTokenValidUntil"]
        if self.login_key_case == "pascal":
            return {k[0].upper() + k[1:]: v for k, v in body.items()}
        if self.login_key_case == "lower":
            return {k.lower(): v for k, v in body.items()}
        return body

    def _auth_cookie_value(self, session: _Session, issued: float) -> str:
        if self.opaque_tokens:
            return base64.urlsafe_b64encode(uuid.uuid4().bytes * 2).decode().rstrip("=")
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

    def _login_response(self, session: _Session) -> web.Response:
        """The LoginResponse of ``session``, with its cookies (login and renewal)."""
        response = self._json(self._login_body(session), "application/json")
        self._set_session_cookies(response, session)
        return response

    async def _login(self, request: web.Request) -> web.StreamResponse:
        payload = await self._json_object(request, "Request body must be a JSON object")
        email, password = payload.get("email"), payload.get("password")
        if not isinstance(email, str) or not isinstance(password, str):
            raise _Refusal(400, "email and password are required")
        user = self._find_user(email)
        if user is None or user.password != password:
            self.stats.failed_logins += 1
            logger.debug("FakeAkana refused a login")
            raise _Refusal(401, "Invalid email or password")
        return self._open_session(user)

    async def _sso_login(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/login/ssoLogin``: a directory user's login, form-encoded."""
        form = await request.post()
        domain, username, password = (form.get(key) for key in (
            "domain", "identity_username", "secret_password"))
        if not isinstance(domain, str) or not isinstance(username, str) \
                or not isinstance(password, str):
            raise _Refusal(400, "domain, identity_username and secret_password are required")
        user = next((u for u in self.users if u.domain is not None and u.username is not None
                     and u.domain.lower() == domain.lower()
                     and u.username.lower() == username.lower()), None)
        if user is None or user.password != password:
            self.stats.failed_logins += 1
            logger.debug("FakeAkana refused a directory login")
            raise _Refusal(401, "Invalid domain, user name or password")
        self.stats.directory_logins += 1
        return self._open_session(user)

    def _open_session(self, user: FakeUser) -> web.Response:
        """A new session of ``user``: its LoginResponse and cookies."""
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
        return self._login_response(session)

    async def _renew(self, request: web.Request) -> web.StreamResponse:
        session = self._authenticate(request, allow_pending=True)
        session.expires_at = self._clock() + self.token_lifetime
        self.stats.renewals += 1
        return self._login_response(session)

    async def _endsession(self, request: web.Request) -> web.StreamResponse:
        session = self._sessions.get(request.cookies.get(self.auth_cookie, ""))
        if session is not None and not session.ended:
            self._check_csrf(request, session)
            session.ended = True
            self.stats.endsessions += 1
        response = web.Response(status=200, text="", content_type="text/plain")
        response.del_cookie(self.auth_cookie, path="/")
        if self.csrf:
            response.del_cookie(self.csrf_cookie, path="/")
        return response

    # ------------------------------------------------------------------ /api/tickets

    async def _list_tickets(self, request: web.Request) -> web.StreamResponse:
        if self.expired_listing == "empty":
            session = self._sessions.get(request.cookies.get(self.auth_cookie, ""))
            if session is not None and not session.ended \
                    and session.expires_at <= self._clock():
                self.stats.lapsed_empty += 1
                return self._json({"Ticket": []}, self.media_type())
        session, media = self._ticket_call(request)
        record = request[RECORD_KEY]
        unknown = [name for name in request.query if name not in TICKET_PARAMS]
        if unknown:
            record.unknown_params.extend(unknown)
            self.unknown_params.extend(unknown)
        try:
            params = _parse_params(request.query)
        except _BadParam as exc:
            raise _Refusal(400, str(exc)) from None
        rows = [
            t for t in self._tickets.values()
            if _visible(t, session.user) and _matches(t, params.filters, self.users)
        ]
        rows = _sorted(rows, params.sort_by, self._updated)
        page = rows[params.start: params.start + params.count]
        self.stats.tickets_served += len(page)
        body = {"Ticket": [
            _render(t, params.include_comments, params.number_of_comments,
                    params.include_actions)
            for t in page
        ]}
        return self._json(body, media)

    async def _get_ticket(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/tickets/{TicketID}``: the bare ticket object. Whether the real
        platform wraps it (e.g. ``{"Ticket": [...]}``) is unconfirmed; clients should
        accept both. A ticket the user may not see is a 404, like a missing one."""
        session, media = self._ticket_call(request)
        return self._json(_render(self._visible_ticket(request, session)), media)

    async def _labels(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/tickets/labels``: ``{"Label": [...]}`` (the real shape is unconfirmed)."""
        _, media = self._ticket_call(request)
        return self._json({"Label": list(LABELS)}, media)

    async def _create_ticket(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/tickets``: needs ``Title``, ``Description``, ``Environment`` and
        ``Label``; answers 200 with the stored ticket (state ``OPEN``, author the caller)."""
        session, media = self._ticket_call(request)
        payload = await self._json_object(request, "Request body must be a ticket object")
        for key in ("Title", "Description", "Environment"):
            if not isinstance(payload.get(key), str) or not payload[key]:
                raise _Refusal(400, f"{key} is required")
        labels = payload.get("Label")
        if isinstance(labels, str):
            labels = [labels]
        if not isinstance(labels, list) or not labels or not all(
            isinstance(label, str) and label in LABELS for label in labels
        ):
            raise _Refusal(400, "Label must be one of " + ", ".join(LABELS))
        tags = payload.get("Tag", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise _Refusal(400, "Tag must be a list of strings")
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
        return self._json(_render(ticket), media)

    async def _ticket_action(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/tickets/{TicketID}/actions`` with ``{"ActionName", "Comments"}``:
        applies a workflow action valid in the ticket's state (see its ``Action`` list),
        adds ``Comments`` as a comment when non-empty, answers 200 with the ticket (or
        204 after ``discussion.action.delete``). An action not valid now is a 400."""
        session, media = self._ticket_call(request)
        ticket = self._visible_ticket(request, session)
        payload = await self._json_object(request, "ActionName is required")
        action = payload.get("ActionName")
        if not isinstance(action, str):
            raise _Refusal(400, "ActionName is required")
        comments = payload.get("Comments")
        if comments is not None and not isinstance(comments, str):
            raise _Refusal(400, "Comments must be a string")
        valid = {a["value"] for a in _actions_for(str(ticket.get("State", "OPEN")))}
        if action not in valid:
            raise _Refusal(400, f"Action {action!r} is not valid in this state")
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
        return self._json(_render(ticket), media)


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
