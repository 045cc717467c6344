"""Akana cookie auth: login, CSRF, renewal before lapse, endsession.

Since 8.0 the platform hands its token out only as cookies (``AtmoAuthToken_{tenant}``,
``Csrf-Token_{tenant}``): the jar, what is read from ``Set-Cookie`` and the headers sent
back (``Cookie``, and ``X-Csrf-Token_{tenant}`` on every request, reads too) are in
:mod:`arena_async.akana._cookies`.

Logins: :class:`~arena_async.Login` (``POST /api/login``, JSON) or
:class:`~arena_async.DirectoryLogin` (``POST /api/login/ssoLogin``, form-encoded
``domain``, ``identity_username``, ``secret_password``); the same cookies come back.

Renewal rests on the token's own expiry, never on a 401 alone: an expired token may get an
empty 200 rather than a 401. A token lives 30 minutes by default. When it lapses is read
from the login (and renewal) answer's ``authTokenValidUntil``, else from the token cookie's
own ``expirationTime`` field, else 30 minutes from the answer are assumed (also when the
time given is already past on our clock). A given token's expiry is read from its cookie;
a given token whose expiry cannot be read is renewed before its first use, which tells.
When less than :data:`RENEW_MARGIN` (5 minutes) remain — or half the lifetime, for tokens
that live under 10 minutes — the next request first renews it with
``POST /api/login/renewToken``, single-flight. A token past its expiry is not renewed but
replaced by a login (with credentials); a renewal refused means the token is dead: a login
replaces it, or, without credentials, an :class:`~arena_async.AuthenticationError` says so.
Nothing is ever sent with a token known to have lapsed.

A 401 triggers one re-login (with credentials) or one renewal (with a given ``auth_token``),
single-flight and generation-based: concurrent 401s cause one exchange; the pool replays
each request once. A listing page that comes back empty while (or just after) the token
was due is suspect: :meth:`AkanaAuth.doubts` says so and :meth:`AkanaAuth.confirm` renews
or logs in, and the page is asked again once (:mod:`arena_async.akana.tickets`).

Nothing secret (password, token, CSRF value) is logged, shown in ``repr`` or put in an
error message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

import aiohttp

from .._auth import SessionAuth
from .._convert import loads
from .._protocol import Request, build_url, parse_error_body
from ..credentials import AkanaCredential, DirectoryLogin, GivenCookies, Login
from ..errors import (
    APIError,
    ArenaAsyncError,
    AuthenticationError,
    ErrorDetail,
    LoginError,
    ResponseFormatError,
    TransportError,
    copy_error,
    error_for_status,
    excerpt,
)
from ..models.akana import AkanaLogin, parse_login
from ._cookies import (
    AUTH_COOKIE_PREFIX,
    CSRF_COOKIE_PREFIX,
    LOGIN_PATH,
    headers_for,
    login_jar,
    renew_jar,
    set_cookies,
    token_times,
)

if TYPE_CHECKING:
    from .._session import AuthTransport, Response

__all__ = ["DEFAULT_TOKEN_LIFETIME", "RENEW_MARGIN", "AkanaAuth"]

log = logging.getLogger(__name__)

#: Seconds a token lives when the server does not say (the platform's default).
DEFAULT_TOKEN_LIFETIME = 1800.0
#: Renew when less than this many seconds of the token's life remain (at most half of it).
RENEW_MARGIN = 300.0
#: After a renewal failed for a transient reason, wait this long before trying again.
RENEW_RETRY_DELAY = 30.0

RENEW_PATH = "/api/login/renewToken"
END_PATH = "/api/login/endsession"
DIRECTORY_LOGIN_PATH = "/api/login/ssoLogin"
# renew_at of a token whose expiry is unknown: due at once (a renewal tells it).
_AT_ONCE = datetime.min.replace(tzinfo=UTC)

#: What :meth:`AkanaAuth.mark` takes before a listing page is asked: the credential's
#: generation, whether a token was held, and whether it was due.
PageMark = tuple[int, bool, bool]


class AkanaAuth(SessionAuth):
    """Implements the pool's ``Auth`` protocol for Akana; holds the cookies, never shows them.

    ``credential``: a :class:`~arena_async.Login` or :class:`~arena_async.DirectoryLogin`
    (login on first use, re-login on 401 or lapse, endsession on close), or
    :class:`~arena_async.GivenCookies` from an existing session (used as is, renewed before
    it lapses, never ended by us; with its ``login``, replaced by a login when it cannot be
    renewed). ``tenant`` picks which tenant's cookies a login keeps (a given token's is
    its own).
    """

    def __init__(
        self,
        *,
        base_url: str,
        credential: AkanaCredential,
        tenant: str | None = None,
    ) -> None:
        super().__init__()
        self._base_url = base_url
        self._credential = credential
        # What a dead token is replaced with (None: nothing, it is refused).
        self._login_with: Login | DirectoryLogin | None = credential.login
        self._jar: dict[str, str] = {}
        #: When the next request renews the token first (None: not known / not planned).
        self.renew_at: datetime | None = None
        #: When the token lapses, as the server said (or assumed); None when unknown.
        self.valid_until: datetime | None = None
        if isinstance(credential, GivenCookies):
            tenant = credential.tenant
            self._jar[AUTH_COOKIE_PREFIX + tenant] = credential.auth_token
            if credential.csrf_token is not None:
                self._jar[CSRF_COOKIE_PREFIX + tenant] = credential.csrf_token
            self._plan_given(credential.auth_token)
        self._tenant = tenant
        self._owns_session = False
        self._held(new=False)
        #: The latest LoginResponse (from login or renewal).
        self.login: AkanaLogin | None = None
        #: Renewals performed (proactive and after a 401).
        self.renewals = 0

    def __repr__(self) -> str:
        who = self._credential.who
        state = "token" if self.has_token else "no token"
        return f"<AkanaAuth {who} tenant={self._tenant or '?'} ({state})>"

    # -- state ----------------------------------------------------------------------
    @property
    def tenant(self) -> str | None:
        """The tenant (fedmemberid): given, or learned at login."""
        return self._tenant

    @property
    def can_login(self) -> bool:
        """True when credentials were given (so a refused token can be replaced)."""
        return self._login_with is not None

    @property
    def has_token(self) -> bool:
        """True while a token cookie is held."""
        return self._tenant is not None and AUTH_COOKIE_PREFIX + self._tenant in self._jar

    @property
    def owns_session(self) -> bool:
        """True when we logged in (so close ends the session)."""
        return self._owns_session

    def _auth_headers(self) -> dict[str, str]:
        return headers_for(self._jar, self._tenant)

    def _held(self, *, new: bool = True) -> None:
        """The jar changed: hold its headers (none without a token)."""
        self._hold(self._auth_headers() if self.has_token else None, new=new)

    # -- the skeleton's hooks ----------------------------------------------------------
    def _due(self, pool: AuthTransport) -> bool:
        """The token lapses soon (or its expiry is unknown): the next request renews it
        first."""
        return self.renew_at is not None and pool.now() >= self.renew_at

    async def _obtain(self, pool: AuthTransport) -> None:
        await self._login(pool)

    async def _renew(self, pool: AuthTransport) -> None:
        await self._renew_ahead(pool)

    async def _replace(self, pool: AuthTransport, error: APIError) -> None:
        if self.can_login:
            log.info("Akana token refused (HTTP %d); logging in again", error.status)
            await self._login(pool)
            return
        log.info("Akana token refused (HTTP %d); renewing it", error.status)
        response = await self._renew_token(pool)
        if response is None:
            raise TransportError("renewing the refused Akana token failed", method="POST",
                                 url=RENEW_PATH)
        if 200 <= response.status < 300:
            return
        if self._transient(pool, response):
            # Transient: the pool retries (with backoff) within the request's attempts.
            raise self._renew_error(response)
        raise self._refused(response, error)

    async def _close(self, pool: AuthTransport) -> None:
        if not self._owns_session or not self.has_token:
            return
        headers = self._auth_headers()
        self._jar.clear()
        self._held(new=False)
        self._owns_session = False
        self.renew_at = None
        await self._end(pool, headers)

    # -- an empty page after a lapse -----------------------------------------------------
    def mark(self, pool: AuthTransport) -> PageMark:
        """Taken before a listing page is asked, for :meth:`doubts`."""
        return self._generation, self._ready is not None, self._due(pool)

    def doubts(self, pool: AuthTransport, mark: PageMark, answered: int) -> bool:
        """True when an empty page asked at ``mark`` and answered with the token of
        generation ``answered`` may be a lapsed token's empty 200 rather than the truth:
        that token was due when it was sent or is now, or it was replaced (renewed, or
        logged in again) since. A page whose own 401 brought a new token, replayed with it,
        is answered by a live token: it is not asked again."""
        generation, held, due = mark
        if self._due(pool):
            return True
        if answered != generation:  # sent again with a token obtained since the mark
            return answered != self._generation
        return due or (held and generation != self._generation)

    async def confirm(self, pool: AuthTransport, mark: PageMark) -> None:
        """Make sure the token is live before an empty page asked at ``mark`` is asked
        again: renew it, or log in again when renewal is refused or fails (without
        credentials: raise). Single-flight: a token already replaced since ``mark`` and not
        due is live."""
        async with self._lock:
            if self._fatal is not None:
                raise copy_error(self._fatal)
            if self._closed:
                raise RuntimeError("this client is closed; create a new one")
            if self._generation != mark[0] and self._ready is not None \
                    and not self._due(pool):
                return
            log.info("an empty Akana page came while the token was due; renewing it before "
                     "asking again")
            if self._ready is None:
                await self._login(pool)
                return
            response = await self._renew_token(pool)
            if response is not None and 200 <= response.status < 300:
                return
            if self.can_login:
                await self._login(pool)
                return
            if response is None or self._transient(pool, response):
                raise (self._renew_error(response) if response is not None else TransportError(
                    "renewing the Akana token failed", method="POST", url=RENEW_PATH))
            raise self._refused(response, None)

    # -- exchanges ---------------------------------------------------------------------
    async def _login(self, pool: AuthTransport) -> None:
        credential = self._login_with
        if credential is None:
            raise AuthenticationError(401, method="POST", url=LOGIN_PATH,
                                      body_excerpt="no auth token and no credentials")
        if isinstance(credential, DirectoryLogin):
            path = DIRECTORY_LOGIN_PATH
            form = {"domain": credential.domain, "identity_username": credential.username,
                    "secret_password": credential.password}
            url = build_url(self._base_url, "api", "login", "ssoLogin")
            request = Request("POST", url, path, data=urlencode(form).encode(),
                              headers={"Accept": "application/json",
                                       "Content-Type": "application/x-www-form-urlencoded"},
                              auth=False)
        else:
            path = LOGIN_PATH
            url = build_url(self._base_url, "api", "login")
            request = Request("POST", url, path,
                              json={"email": credential.email, "password": credential.password},
                              headers={"Accept": "application/json"}, auth=False)
        # Transient failures raise TransportError / ServerError; the pool retries them.
        response = await pool.login_once(request)
        if not 200 <= response.status < 300:
            details = [ErrorDetail(d.code, self._scrub(d.message))
                       for d in parse_error_body(response.body)]
            error = LoginError(response.status, details, method="POST", url=path,
                               body_excerpt="" if details else excerpt(self._scrub(
                                   response.body.decode("utf-8", "replace"))))
            if response.status in (404, 405):
                raise _not_the_portal(error, url, self._base_url)
            raise self._failed_login(error)
        data = loads(response.body, url=path)
        login = parse_login(data, url=path, body=response.body)
        self._tenant, jar = login_jar(set_cookies(response.headers, pool.now()), self._tenant,
                                      login.login_domain_id, status=response.status)
        if login.has_pending_tasks:
            tasks = ", ".join(login.pending_tasks)
            # The token is useless until the tasks are done: end it rather than leak it.
            await self._end(pool, headers_for(jar, self._tenant))
            error = LoginError(response.status, [ErrorDetail(None, (
                f"the account has pending tasks ({tasks}) and cannot use the API until they "
                "are completed in the developer portal"))], method="POST", url=path)
            raise self._latch(error)
        token = jar.get(AUTH_COOKIE_PREFIX + self._tenant)
        if token is None:
            raise LoginError(response.status, [ErrorDetail(None, (
                f"the login was accepted but set no {AUTH_COOKIE_PREFIX}{self._tenant} cookie "
                "(is base_url the root of an Akana 8+ portal?)"))], method="POST",
                url=path)
        self._jar = jar
        self._owns_session = True
        self._held()
        self.login = login
        self._schedule(pool, login.auth_token_valid_until or _cookie_expiry(token))
        log.info("logged in to Akana tenant %s as %s", self._tenant,
                 login.user_name or credential.who)

    async def _renew_ahead(self, pool: AuthTransport) -> None:
        """Renew a token about to lapse. A token past its expiry is replaced by a login
        (renewing it would be refused); a refused renewal means a dead token: a login
        replaces it, else :class:`AuthenticationError`. A transient failure leaves a live
        token for a little while (tried again 30 s later), and raises for a lapsed one
        (the pool retries): never is a request sent with a token known to have lapsed."""
        now = pool.now()
        lapsed = self.valid_until is not None and now >= self.valid_until
        if lapsed and self.can_login:
            log.info("the Akana token has lapsed; logging in again")
            await self._login(pool)
            return
        log.debug("Akana token lapses soon; renewing it")
        response = await self._renew_token(pool)
        if response is not None and 200 <= response.status < 300:
            return
        if response is None or self._transient(pool, response):
            if not lapsed and self.valid_until is not None:
                # The token still has a few minutes; try again a little later.
                self.renew_at = min(now + timedelta(seconds=RENEW_RETRY_DELAY),
                                    self.valid_until)
                return
            if self.can_login:
                await self._login(pool)
                return
            raise (self._renew_error(response) if response is not None else TransportError(
                "renewing the Akana token failed", method="POST", url=RENEW_PATH))
        if self.can_login:
            log.info("renewing the Akana token was refused (HTTP %d); logging in again",
                     response.status)
            await self._login(pool)
            return
        raise self._refused(response, None)

    def _transient(self, pool: AuthTransport, response: Response) -> bool:
        return pool.is_transient(response.status)

    def _renew_error(self, response: Response) -> APIError:
        details = parse_error_body(response.body)
        return error_for_status(response.status)(
            response.status, details, method="POST", url=RENEW_PATH,
            body_excerpt="" if details else excerpt(response.body))

    def _refused(self, response: Response, error: APIError | None) -> APIError:
        """The latched error for a given token that renewToken refused (``error``: the 401
        that led to it, if any)."""
        hint = ErrorDetail(None, (
            f"the given auth_token lapsed or was ended, and renewToken answered HTTP "
            f"{response.status}: pass a fresh auth_token (and csrf_token), or a login "
            "(GivenCookies(..., login=Login(email, password))) so the client can log in"))
        if error is None:
            return self._latch(AuthenticationError(response.status, [hint], method="POST",
                                                   url=RENEW_PATH))
        return self._latch(AuthenticationError(
            error.status, [*error.errors, hint], method=error.method, url=error.url,
            body_excerpt=error.body_excerpt))

    async def _renew_token(self, pool: AuthTransport) -> Response | None:
        """``POST /api/login/renewToken``; the answer (any status), None on transport failure.

        A 2xx answer's cookies replace ours and its ``authTokenValidUntil`` re-plans the
        next renewal (30 minutes assumed when absent).
        """
        request = Request("POST", build_url(self._base_url, "api", "login", "renewToken"),
                          RENEW_PATH, data=b"",
                          headers={"Accept": "application/json",
                                   "Content-Type": "application/x-www-form-urlencoded"},
                          auth=False)
        try:
            response = await pool.send_once(request, self._auth_headers())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("renewing the Akana token failed: %s", type(exc).__name__)
            return None
        if not 200 <= response.status < 300:
            log.debug("renewToken answered HTTP %d", response.status)
            return response
        if self._tenant is not None:
            renew_jar(self._jar, set_cookies(response.headers, pool.now()), self._tenant)
        login: AkanaLogin | None = None
        try:
            login = parse_login(json.loads(response.body), url=RENEW_PATH) \
                if response.body.strip() else None
        except (ValueError, UnicodeDecodeError, ResponseFormatError):
            log.debug("renewToken answer is not a LoginResponse; assuming the default lifetime")
        if login is not None:
            self.login = login
        self._held()
        self.renewals += 1
        pool.count_renewal()
        token = self._jar.get(AUTH_COOKIE_PREFIX + self._tenant) if self._tenant else None
        self._schedule(pool, (login.auth_token_valid_until if login is not None else None)
                       or (_cookie_expiry(token) if token is not None else None))
        log.info("renewed the Akana token")
        return response

    def _schedule(self, pool: AuthTransport, valid_until: datetime | None) -> None:
        now = pool.now()
        if valid_until is None or valid_until <= now:
            if valid_until is not None:
                log.debug("authTokenValidUntil is already past on our clock; assuming %.0f s",
                          DEFAULT_TOKEN_LIFETIME)
            valid_until = now + timedelta(seconds=DEFAULT_TOKEN_LIFETIME)
        lifetime = (valid_until - now).total_seconds()
        self.valid_until = valid_until
        self.renew_at = valid_until - timedelta(seconds=min(RENEW_MARGIN, lifetime / 2))

    def _plan_given(self, token: str) -> None:
        """Plan the renewal of a given token from its cookie's own times; unknown: at once."""
        times = token_times(token)
        if times is None:
            self.renew_at = _AT_ONCE
            return
        issued, expires = times
        lifetime = (expires - issued).total_seconds() if issued is not None and \
            issued < expires else DEFAULT_TOKEN_LIFETIME
        self.valid_until = expires
        self.renew_at = expires - timedelta(seconds=min(RENEW_MARGIN, lifetime / 2))

    async def _end(self, pool: AuthTransport, headers: Mapping[str, str]) -> None:
        """``GET /api/login/endsession`` with the given cookies; failures are only logged."""
        request = Request("GET", build_url(self._base_url, "api", "login", "endsession"),
                          END_PATH, headers={"Accept": "*/*"}, auth=False)
        try:
            response = await pool.send_once(request, headers)
        except (aiohttp.ClientError, TimeoutError, OSError, ArenaAsyncError) as exc:
            log.warning("ending the Akana session failed: %s", type(exc).__name__)
            return
        if not 200 <= response.status < 300:
            log.warning("ending the Akana session answered HTTP %d", response.status)

    def _scrub(self, text: str) -> str:
        """``text`` with the password (raw, JSON-escaped or form-encoded) masked."""
        if self._login_with is None:
            return text
        password = self._login_with.password
        for form in sorted({password, json.dumps(password)[1:-1],
                            urlencode({"": password})[1:]}, key=len, reverse=True):
            if form:
                text = text.replace(form, "***")
        return text


def _cookie_expiry(token: str) -> datetime | None:
    """When a token cookie says it expires (None: it does not say)."""
    times = token_times(token)
    return times[1] if times is not None else None


#: The domains of Arena's regional REST APIs (api.<domain>/v1).
_ARENA_DOMAINS = ("arenasolutions.com", "arenagov.com", "arenaplm.com", "arenaplm.cn")


def _not_the_portal(error: LoginError, url: str, base_url: str) -> LoginError:
    """A 404/405 at login: the base URL does not point at an Akana portal."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    arena = parts.path.rstrip("/").lower().endswith("/v1") or any(
        host == domain or host.endswith("." + domain) for domain in _ARENA_DOMAINS)
    error.args = (f"{error.args[0]}: no Akana login at {url}. Is base_url {base_url!r} "
                  "right? An Akana base URL is the portal's root, without /api (the client "
                  "adds /api/login), e.g. https://portal.example.com"
                  + (" (this one looks like Arena's REST API: use ArenaClient for Arena)"
                     if arena else ""),)
    return error
