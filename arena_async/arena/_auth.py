"""Arena auth: a session (``POST /login``) or an OAuth 2.0 bearer token (client credentials),
obtained on first use, replaced once for all callers on 401, and shared with every other
process of the integration when the client has a share.

Built on :class:`~arena_async._auth.SessionAuth` (lock, generation, fatal latch, cached
headers), with the credential store pluggable: fetched here, or, with a share, adopted from
the one another sharer published or fetched under the share's login lease.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlencode, urlsplit

import aiohttp

from .._auth import CREDENTIAL_REFUSALS, SessionAuth
from .._convert import structure_json
from .._protocol import Request, build_url, parse_error_body
from ..credentials import ArenaCredential, GivenSession, Login, OAuthClient
from ..errors import (
    APIError,
    AuthenticationError,
    ErrorDetail,
    LoginError,
    ResponseFormatError,
    excerpt,
)
from ..models.arena import ArenaLogin

if TYPE_CHECKING:
    from .._session import AuthTransport
    from .._share import ShareLink

__all__ = ["ArenaAuth"]

log = logging.getLogger(__name__)

SESSION_HEADER = "arena_session_id"
#: A session that dies this soon after its login was not idle (Arena ends idle sessions
#: after 90 minutes): another login of the same user, or a logout, cancelled it.
_IDLE_LIMIT = 90 * 60.0


class ArenaAuth(SessionAuth):
    """Holds the Arena session id or bearer token; never shows it in ``repr`` or messages."""

    def __init__(
        self,
        *,
        base_url: str,
        credential: ArenaCredential,
        usage_reason: str | None = None,
        link: ShareLink | None = None,
        clock: Callable[[], float] = time.time,
        allow_insecure: bool = False,
    ) -> None:
        super().__init__()
        self._base_url = base_url
        self._credential = credential
        # What a dead session or token is replaced with (None: nothing, it is refused).
        self._login_with: Login | OAuthClient | None = credential.login
        self._token_url = (credential.checked_url(allow_insecure=allow_insecure)
                           if isinstance(credential, OAuthClient) else None)
        self._usage_reason = usage_reason
        self._link = link
        self._clock = clock
        self._kind: Literal["session", "bearer"] = (
            "bearer" if isinstance(credential, OAuthClient) else "session")
        self._token: str | None = None
        self._version: int | None = None  # the credential's version in the share
        self._refresh_at: float | None = None  # (clock) renew a bearer token from then on
        self._obtained_at: float | None = None
        self._owns_session = False
        self._set_token(credential.session_id if isinstance(credential, GivenSession) else None)
        self._cancelled = 0  # sessions cancelled soon after their login (no share)
        self._warned = False
        self.login: ArenaLogin | None = None

    def __repr__(self) -> str:
        state = "session" if self._token else "no session"
        return f"<ArenaAuth {self._credential.who} ({state})>"

    @property
    def can_login(self) -> bool:
        """True when credentials were given (so a dead session can be replaced)."""
        return self._login_with is not None

    # -- the skeleton's hooks ----------------------------------------------------------
    def _due(self, pool: AuthTransport) -> bool:
        """A bearer token in the last tenth of its life (a session is never due)."""
        return self._refresh_at is not None and self._clock() >= self._refresh_at

    async def _obtain(self, pool: AuthTransport) -> None:
        await self._get(pool, seen=None)

    async def _renew(self, pool: AuthTransport) -> None:
        await self._get(pool, seen=self._version)

    def _unreplaced(self, error: APIError) -> APIError:
        return AuthenticationError(error.status, error.errors, method=error.method,
                                   url=error.url, body_excerpt=error.body_excerpt)

    async def _replace(self, pool: AuthTransport, error: APIError) -> None:
        if not self.can_login:
            raise self._unreplaced(error) from None
        self._note_rejected()
        log.info("Arena %s rejected (HTTP %d); obtaining a new one",
                 "token" if self._kind == "bearer" else "session", error.status)
        await self._get(pool, seen=self._version)

    async def _close(self, pool: AuthTransport) -> None:
        token, owned = self._token, self._owns_session
        self._set_token(None)  # nothing is sent with it any more
        self._owns_session = False
        if self._link is not None:  # the last sharer logs out
            await self._link.close(lambda last: self._logout(pool, last))
        elif owned and token is not None:
            await self._logout(pool, token)

    # -- the credential ----------------------------------------------------------------
    def _set_token(self, token: str | None, expires_in: float | None = None, *,
                   new: bool = False) -> None:
        """Hold ``token`` (None: none), and the headers every request sends with it."""
        self._token = token
        self._refresh_at = None
        if token is None:
            self._hold(None, new=new)
            return
        if expires_in is not None:
            # Renew ahead of expiry by a tenth of the lifetime (at most a minute): a token
            # that lives seconds is not renewed on every call, one that lives hours early.
            self._refresh_at = self._clock() + expires_in - min(60.0, expires_in / 10)
        self._hold({"Authorization": f"Bearer {token}"} if self._kind == "bearer"
                   else {SESSION_HEADER: token}, new=new)

    async def _get(self, pool: AuthTransport, *, seen: int | None) -> None:
        """A new credential: from the share (adopted, or fetched under its lease) or
        fetched here. Called with the lock held."""
        if self._link is not None:
            await self._link.ensure_open()
            try:
                credential = await self._link.session.obtain(seen, lambda: self._fetch(pool))
            except LoginError as exc:
                if exc.status in CREDENTIAL_REFUSALS:
                    self._fatal = exc
                raise
            token, expires_in, version = (credential.token, credential.expires_in,
                                          credential.version)
        else:
            token, expires_in = await self._fetch(pool)
            version = None
        self._version = version
        self._obtained_at = self._clock()
        self._set_token(token, expires_in, new=True)

    async def _fetch(self, pool: AuthTransport) -> tuple[str, float | None]:
        login = self._login_with
        if isinstance(login, OAuthClient):
            return await self._fetch_token(pool, login)
        if login is None:  # a refused given session is raised, never replaced
            raise AuthenticationError(401, method="POST", url="/login",
                                      body_excerpt="no session id and no credentials")
        return await self._login(pool, login), None

    def _note_rejected(self) -> None:
        """Without a share, a session that dies well before Arena's idle limit was cancelled
        by another login of the same user: say so once, naming the cure."""
        if self._link is not None or self._kind != "session" or self._obtained_at is None:
            return
        if self._clock() - self._obtained_at >= _IDLE_LIMIT:
            return
        self._cancelled += 1
        if self._cancelled >= 2 and not self._warned:
            self._warned = True
            log.warning(
                "Arena ended this client's session %d times within 90 minutes of logging in: "
                "another login as the same user (another process, worker or machine) cancels "
                "the earlier session. Give every process of this integration one share: "
                "ArenaClient(..., share='sqlite:////path/arena-share.db') on one machine, "
                "share='redis://host:6379/0' across machines", self._cancelled)

    # -- the two credential kinds ------------------------------------------------------
    async def _login(self, pool: AuthTransport, credential: Login) -> str:
        body: dict[str, object] = {"email": credential.email, "password": credential.password}
        if credential.workspace_id is not None:
            body["workspaceId"] = credential.workspace_id
        headers = {"Arena-Usage-Reason": self._usage_reason} if self._usage_reason else None
        url = build_url(self._base_url, "login")
        request = Request("POST", url, "/login", json=body, headers=headers, auth=False)
        # Transient failures raise TransportError / ServerError; the pool retries them.
        response = await pool.login_once(request)
        if not 200 <= response.status < 300:
            details = parse_error_body(response.body)
            error = LoginError(response.status, details, method="POST", url="/login",
                               body_excerpt="" if details else _login_excerpt(
                                   response.body, credential.password))
            if response.status in (404, 405):
                raise _not_the_api(error, url, self._base_url)
            raise self._failed_login(error)
        try:
            login: ArenaLogin = structure_json(response.body, ArenaLogin, url="/login")
        except ResponseFormatError:
            # Never echo the body: it holds the session id.
            raise ResponseFormatError(
                f"the answer to POST {url} is not an Arena login (no arenaSessionId"
                f"{'; it looks like an HTML page' if _looks_html(response.body) else ''}): "
                f"is base_url {self._base_url!r} Arena's REST API (it ends in /v1, e.g. "
                "https://api.arenasolutions.com/v1)?",
                path="$.arenaSessionId", url="/login") from None
        self.login = login
        self._owns_session = True
        if login.workspace_request_limit is not None:
            pool.quota_limit = login.workspace_request_limit
        log.info("logged in to Arena workspace %s", login.workspace_id)
        return login.session_id

    async def _fetch_token(self, pool: AuthTransport,
                           oauth: OAuthClient) -> tuple[str, float | None]:
        """RFC 6749 4.4: client credentials, the client authenticated with HTTP Basic."""
        basic = base64.b64encode(f"{_form(oauth.client_id)}:{_form(oauth.client_secret)}"
                                 .encode()).decode()
        headers = {"Authorization": f"Basic {basic}", "Accept": "application/json",
                   "Content-Type": "application/x-www-form-urlencoded"}
        token_url = self._token_url
        assert token_url is not None  # checked when the auth was made
        shown = urlsplit(token_url).path or "/"
        request = Request("POST", token_url, shown, headers=headers, auth=False,
                          data=urlencode({"grant_type": "client_credentials"}).encode())
        response = await pool.login_once(request)
        if not 200 <= response.status < 300:
            error = LoginError(response.status, _oauth_errors(response.body), method="POST",
                               url=shown)
            raise self._failed_login(error)
        try:
            answer = json.loads(response.body)
            token = answer["access_token"]
            if not isinstance(token, str) or not token:
                raise TypeError
        except (ValueError, TypeError, KeyError):
            # Never echo the body: it may hold the token.
            raise ResponseFormatError("the token endpoint's answer has no access_token",
                                      path="$.access_token", url=shown) from None
        expires_in = answer.get("expires_in")
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) \
                or expires_in <= 0:
            expires_in = None  # no lifetime given: renewed on a 401 only
        log.info("obtained an OAuth token for client %s", oauth.client_id)
        return token, float(expires_in) if expires_in is not None else None

    async def _logout(self, pool: AuthTransport, token: str) -> None:
        if self._kind == "bearer":
            return  # a token just expires
        # Logout counts against the quota: never spend the reserve (or a spent budget) on it.
        if pool.budget_spent():
            log.info("not logging out of Arena: the request budget is spent; the session "
                     "ends by itself after 90 idle minutes")
            return
        request = Request("PUT", build_url(self._base_url, "logout"), "/logout", auth=False)
        try:
            await pool.send_once(request, {SESSION_HEADER: token})
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("Arena logout failed: %s", type(exc).__name__)


def _form(value: str) -> str:
    """RFC 6749 2.3.1: client id and secret are form-encoded before Basic encoding."""
    return urlencode({"": value})[1:]


def _oauth_errors(body: bytes) -> list[ErrorDetail]:
    """RFC 6749 5.2 ``{"error", "error_description"}``, or Arena's own shape."""
    try:
        answer = json.loads(body)
    except ValueError:
        return []
    if isinstance(answer, dict) and isinstance(answer.get("error"), str):
        text = answer["error"]
        description = answer.get("error_description")
        if isinstance(description, str) and description:
            text = f"{text}: {description}"
        return [ErrorDetail(None, text)]
    return parse_error_body(body)


def _login_excerpt(body: bytes, password: str) -> str:
    """An excerpt of a refused login's answer, unless it may hold a credential (a session
    id, or the password echoed back): then only that it was left out."""
    text = excerpt(body)
    lowered = text.lower()
    if password in text or "sessionid" in lowered or "session_id" in lowered:
        return "(the answer is not shown: it may hold a credential)"
    return text


def _looks_html(body: bytes) -> bool:
    head = body[:200].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<"))


def _not_the_api(error: LoginError, url: str, base_url: str) -> LoginError:
    """A 404/405 at login: the base URL does not point at Arena's REST API."""
    error.args = (f"{error.args[0]}: no Arena login at {url}. Is base_url {base_url!r} "
                  "right? Arena's REST API base URL ends in /v1, e.g. "
                  "https://api.arenasolutions.com/v1",)
    return error
