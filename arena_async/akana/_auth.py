"""Akana cookie auth: login, CSRF, renewal before lapse, endsession.

Since 8.0 the platform hands its token out only as cookies (``AtmoAuthToken_{tenant}``,
``Csrf-Token_{tenant}``): the jar, what is read from ``Set-Cookie`` and the headers sent
back (``Cookie``, and ``X-Csrf-Token_{tenant}`` on every request, reads too) are in
:mod:`arena_async.akana._cookies`.

Renewal: a token lives 30 minutes by default. The login (and renewal) answer's
``authTokenValidUntil`` says when it lapses (30 minutes from the answer is assumed when it
is missing or already past on our clock). When less than :data:`RENEW_MARGIN` (5 minutes)
remain — or half the lifetime, for tokens that live under 10 minutes — the next request
first renews it with ``POST /api/login/renewToken``, single-flight. A 401 triggers one
re-login (with credentials) or one renewal (with a given ``auth_token``), single-flight
and generation-based: concurrent 401s cause one exchange; the pool replays each request
once.

Nothing secret (password, token, CSRF value) is logged, shown in ``repr`` or put in an
error message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import aiohttp

from .._auth import SessionAuth
from .._convert import loads
from .._protocol import Request, build_url, parse_error_body
from ..errors import (
    APIError,
    ArenaAsyncError,
    AuthenticationError,
    ErrorDetail,
    LoginError,
    ResponseFormatError,
    TransportError,
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
)

if TYPE_CHECKING:
    from .._pool import Response, SessionPool

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


class AkanaAuth(SessionAuth):
    """Implements the pool's ``Auth`` protocol for Akana; holds the cookies, never shows them.

    Give ``email`` + ``password`` (login on first use, re-login on 401, endsession on
    close), or ``auth_token`` + ``tenant`` (+ ``csrf_token``) from an existing session
    (used as is; renewed once on 401; never ended by us). Both may be given: the token is
    used first and the credentials replace it when it is refused.
    """

    def __init__(
        self,
        *,
        base_url: str,
        email: str | None,
        password: str | None,
        auth_token: str | None = None,
        tenant: str | None = None,
        csrf_token: str | None = None,
    ) -> None:
        super().__init__()
        self._base_url = base_url
        self._email = email
        self._password = password
        self._tenant = tenant
        self._jar: dict[str, str] = {}
        if auth_token is not None:
            assert tenant is not None
            self._jar[AUTH_COOKIE_PREFIX + tenant] = auth_token
            if csrf_token is not None:
                self._jar[CSRF_COOKIE_PREFIX + tenant] = csrf_token
        self._owns_session = False
        self._held(new=False)
        #: When the next request renews the token first (None: not known / not planned).
        self.renew_at: datetime | None = None
        #: When the token lapses, as the server said (or assumed); None when unknown.
        self.valid_until: datetime | None = None
        #: The latest LoginResponse (from login or renewal).
        self.login: AkanaLogin | None = None
        #: Renewals performed (proactive and after a 401).
        self.renewals = 0

    def __repr__(self) -> str:
        who = self._email or "given token"
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
        return bool(self._email) and bool(self._password)

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
    def _due(self, pool: SessionPool) -> bool:
        """The token lapses soon: the next request renews it first."""
        return self.renew_at is not None and pool.now() >= self.renew_at

    async def _obtain(self, pool: SessionPool) -> None:
        await self._login(pool)

    async def _renew(self, pool: SessionPool) -> None:
        await self._renew_ahead(pool)

    async def _replace(self, pool: SessionPool, error: APIError) -> None:
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
        if response.status >= 500 or response.status in pool.retry.retry_statuses:
            # Transient: the pool retries (with backoff) within the request's attempts.
            details = parse_error_body(response.body)
            raise error_for_status(response.status)(
                response.status, details, method="POST", url=RENEW_PATH,
                body_excerpt="" if details else excerpt(response.body))
        hint = ErrorDetail(None, (
            f"the given auth_token was refused and renewToken answered HTTP "
            f"{response.status}: pass a fresh auth_token (and csrf_token), or email and "
            "password so the client can log in"))
        raise self._latch(AuthenticationError(
            error.status, [*error.errors, hint], method=error.method, url=error.url,
            body_excerpt=error.body_excerpt))

    async def _close(self, pool: SessionPool) -> None:
        if not self._owns_session or not self.has_token:
            return
        headers = self._auth_headers()
        self._jar.clear()
        self._held(new=False)
        self._owns_session = False
        self.renew_at = None
        await self._end(pool, headers)

    # -- exchanges ---------------------------------------------------------------------
    async def _login(self, pool: SessionPool) -> None:
        if not self.can_login:
            raise AuthenticationError(401, method="POST", url=LOGIN_PATH,
                                      body_excerpt="no auth token and no credentials")
        request = Request("POST", build_url(self._base_url, "api", "login"), LOGIN_PATH,
                          json={"email": self._email, "password": self._password},
                          headers={"Accept": "application/json"}, auth=False)
        # Transient failures raise TransportError / ServerError; the pool retries them.
        response = await pool.login_once(request)
        if not 200 <= response.status < 300:
            details = [ErrorDetail(d.code, self._scrub(d.message))
                       for d in parse_error_body(response.body)]
            error = LoginError(response.status, details, method="POST", url=LOGIN_PATH,
                               body_excerpt="" if details else excerpt(self._scrub(
                                   response.body.decode("utf-8", "replace"))))
            raise self._failed_login(error)
        data = loads(response.body, url=LOGIN_PATH)
        login = parse_login(data, url=LOGIN_PATH, body=response.body)
        self._tenant, jar = login_jar(set_cookies(response.headers, pool.now()), self._tenant,
                                      login.login_domain_id, status=response.status)
        if login.has_pending_tasks:
            tasks = ", ".join(login.pending_tasks)
            # The token is useless until the tasks are done: end it rather than leak it.
            await self._end(pool, headers_for(jar, self._tenant))
            error = LoginError(response.status, [ErrorDetail(None, (
                f"the account has pending tasks ({tasks}) and cannot use the API until they "
                "are completed in the developer portal"))], method="POST", url=LOGIN_PATH)
            raise self._latch(error)
        if AUTH_COOKIE_PREFIX + self._tenant not in jar:
            raise LoginError(response.status, [ErrorDetail(None, (
                f"the login was accepted but set no {AUTH_COOKIE_PREFIX}{self._tenant} cookie "
                "(is base_url the root of an Akana 8+ portal?)"))], method="POST",
                url=LOGIN_PATH)
        self._jar = jar
        self._owns_session = True
        self._held()
        self.login = login
        self._schedule(pool, login.auth_token_valid_until)
        log.info("logged in to Akana tenant %s as %s", self._tenant,
                 login.user_name or self._email)

    async def _renew_ahead(self, pool: SessionPool) -> None:
        """Renew a token about to lapse; fall back to a login when it is refused."""
        log.debug("Akana token lapses soon; renewing it")
        response = await self._renew_token(pool)
        if response is not None and 200 <= response.status < 300:
            return
        if response is None or response.status >= 500 or response.status == 429:
            # Transient: the token still has a few minutes; try again a little later.
            later = pool.now() + timedelta(seconds=RENEW_RETRY_DELAY)
            self.renew_at = later if self.valid_until is None else min(later, self.valid_until)
            if self.valid_until is not None and self.renew_at <= pool.now():
                self.renew_at = None  # lapsed: the next 401 decides
            return
        if self.can_login:
            log.info("renewing the Akana token was refused (HTTP %d); logging in again",
                     response.status)
            await self._login(pool)
            return
        # A given token that cannot be renewed: stop planning; the next 401 decides.
        log.warning("renewing the Akana token was refused (HTTP %d)", response.status)
        self.renew_at = None

    async def _renew_token(self, pool: SessionPool) -> Response | None:
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
        self._schedule(pool, login.auth_token_valid_until if login is not None else None)
        log.info("renewed the Akana token")
        return response

    def _schedule(self, pool: SessionPool, valid_until: datetime | None) -> None:
        now = pool.now()
        if valid_until is None or valid_until <= now:
            if valid_until is not None:
                log.debug("authTokenValidUntil is already past on our clock; assuming %.0f s",
                          DEFAULT_TOKEN_LIFETIME)
            valid_until = now + timedelta(seconds=DEFAULT_TOKEN_LIFETIME)
        lifetime = (valid_until - now).total_seconds()
        self.valid_until = valid_until
        self.renew_at = valid_until - timedelta(seconds=min(RENEW_MARGIN, lifetime / 2))

    async def _end(self, pool: SessionPool, headers: Mapping[str, str]) -> None:
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
        """``text`` with the password (raw or JSON-escaped) masked."""
        if not self._password:
            return text
        for form in {self._password, json.dumps(self._password)[1:-1]}:
            if form:
                text = text.replace(form, "***")
        return text
