"""Arena session-token auth: login on first use, one shared re-login on 401, logout on close."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import aiohttp

from .._convert import structure_json
from .._protocol import Request, build_url, parse_error_body
from ..errors import (
    APIError,
    AuthenticationError,
    LoginError,
    ResponseFormatError,
    copy_error,
    excerpt,
)
from ..models.arena import ArenaLogin

if TYPE_CHECKING:
    from .._pool import SessionPool

__all__ = ["ArenaAuth"]

log = logging.getLogger(__name__)

SESSION_HEADER = "arena_session_id"


class ArenaAuth:
    """Holds the Arena session id; never shows it in ``repr`` or messages."""

    def __init__(
        self,
        *,
        base_url: str,
        email: str | None,
        password: str | None,
        workspace_id: int | None,
        session_id: str | None,
        usage_reason: str | None = None,
    ) -> None:
        self._base_url = base_url
        self._email = email
        self._password = password
        self._workspace_id = workspace_id
        self._session_id: str | None = None
        self._usage_reason = usage_reason
        self._owns_session = False
        self._generation = 0
        self._ready: tuple[Mapping[str, str], int] | None = None
        self._set_session(session_id)
        self._lock = asyncio.Lock()
        # Refused credentials, remembered: logging in again on every waiting request would
        # only lock the account (Arena locks it for 5 minutes after repeated failures).
        self._fatal: APIError | None = None
        self.login: ArenaLogin | None = None

    def __repr__(self) -> str:
        state = "session" if self._session_id else "no session"
        return f"<ArenaAuth {self._email or 'given session'} ({state})>"

    @property
    def can_login(self) -> bool:
        """True when credentials were given (so a dead session can be replaced)."""
        return self._email is not None and self._password is not None

    async def headers(self, pool: SessionPool) -> tuple[Mapping[str, str], int]:
        if self._session_id is None:
            async with self._lock:  # single-flight: concurrent first requests share one login
                if self._fatal is not None:
                    raise copy_error(self._fatal)
                if self._session_id is None:
                    await self._login(pool)
        return self._now()

    def _set_session(self, session_id: str | None) -> None:
        """Hold ``session_id`` (None: none), and the headers every request sends with it."""
        self._session_id = session_id
        self._ready = ({SESSION_HEADER: session_id}, self._generation) if session_id else None

    def ready(self, pool: SessionPool) -> tuple[Mapping[str, str], int] | None:
        if self._lock.locked():  # a login or re-login is under way
            return None
        return self._ready

    async def current(self) -> tuple[Mapping[str, str], int]:
        if self._lock.locked():  # a re-login is under way: send its session, not the dead one
            async with self._lock:
                pass
        return self._now()

    def _now(self) -> tuple[Mapping[str, str], int]:
        return self._ready or ({}, self._generation)

    async def refresh(self, pool: SessionPool, generation: int, error: APIError) -> None:
        if not self.can_login:
            raise AuthenticationError(
                error.status, error.errors, method=error.method, url=error.url,
                body_excerpt=error.body_excerpt,
            ) from None
        async with self._lock:
            if self._fatal is not None:
                raise copy_error(self._fatal)
            if self._generation != generation:
                return  # another task already replaced the session this request used
            log.info("Arena session rejected (HTTP %d); logging in again", error.status)
            await self._login(pool)

    async def _login(self, pool: SessionPool) -> None:
        if not self.can_login:
            raise AuthenticationError(401, method="POST", url="/login",
                                      body_excerpt="no session id and no credentials")
        body: dict[str, object] = {"email": self._email, "password": self._password}
        if self._workspace_id is not None:
            body["workspaceId"] = self._workspace_id
        headers = {"Arena-Usage-Reason": self._usage_reason} if self._usage_reason else None
        request = Request("POST", build_url(self._base_url, "login"), "/login", json=body,
                          headers=headers, auth=False)
        # Transient failures raise TransportError / ServerError; the pool retries them.
        response = await pool.login_once(request)
        if not 200 <= response.status < 300:
            details = parse_error_body(response.body)
            error = LoginError(response.status, details, method="POST", url="/login",
                               body_excerpt="" if details else excerpt(response.body))
            if response.status in (400, 401, 403):
                self._fatal = error
            raise copy_error(error)
        try:
            login: ArenaLogin = structure_json(response.body, ArenaLogin, url="/login")
        except ResponseFormatError:
            # Never echo the body: it holds the session id.
            raise ResponseFormatError("login answer has no arenaSessionId",
                                      path="$.arenaSessionId", url="/login") from None
        self.login = login
        self._owns_session = True
        self._generation += 1
        self._set_session(login.session_id)
        if login.workspace_request_limit is not None:
            pool.quota_limit = login.workspace_request_limit
        log.info("logged in to Arena workspace %s", login.workspace_id)

    async def close(self, pool: SessionPool) -> None:
        if not self._owns_session or self._session_id is None:
            return
        session_id = self._session_id
        self._set_session(None)
        self._owns_session = False
        # Logout counts against the quota: never spend the reserve (or a spent budget) on it.
        limiter = pool.limiter
        left = limiter.estimated_remaining
        reserve = limiter.policy.reserve if limiter.policy is not None else 0
        if left is not None and left <= reserve:
            log.info("not logging out of Arena: the request budget is spent; the session "
                     "ends by itself after 90 idle minutes")
            return
        request = Request("PUT", build_url(self._base_url, "logout"), "/logout", auth=False)
        try:
            await pool.send_once(request, {SESSION_HEADER: session_id})
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("Arena logout failed: %s", type(exc).__name__)
