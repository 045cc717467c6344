"""ArenaClient: the facade over the session pool and the item resources."""

from __future__ import annotations

import asyncio
import random
import time

import aiohttp

from .._client import (
    BaseClient,
    Clock,
    Sleep,
    check_base_url,
    check_flag,
    check_positive_int,
    check_rate,
    check_retry,
    check_session,
    check_test_hooks,
    check_timeout,
)
from .._limiter import Limiter
from .._pool import SessionPool
from ..policies import QuotaPolicy, RetryPolicy
from ._auth import ArenaAuth
from .items import Items

__all__ = ["DEFAULT_BASE_URL", "ArenaClient"]

#: The default (US) region. Others: https://api.arenagov.com/v1,
#: https://api.europe.arenaplm.com/v1, https://api.uk.arenaplm.com/v1, https://api.arenaplm.cn/v1
DEFAULT_BASE_URL = "https://api.arenasolutions.com/v1"


class ArenaClient(BaseClient):
    """An asyncio client for the Arena PLM REST API.

    Log in with ``email`` + ``password`` (+ ``workspace_id``) on first use, or reuse an
    existing ``session_id``. With a ``session_id`` alone the client neither logs in nor
    out, and an expired session raises :class:`AuthenticationError`; given credentials as
    well, it starts with the session and logs in (and, at close, out) when it dies.
    Requests from every task share ``max_concurrency`` slots, the :class:`QuotaPolicy`
    budget and the optional ``requests_per_second`` cap.

    Example::

        async with ArenaClient(email=e, password=p, workspace_id=123456789) as arena:
            refs = await arena.items.tickets.list(item_guid)

    ``clock`` (wall-clock seconds), ``sleep`` and ``seed`` exist for tests: waits can be
    driven by a fake clock instead of real time.
    """

    def __init__(
        self,
        *,
        email: str | None = None,
        password: str | None = None,
        workspace_id: int | None = None,
        session_id: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        max_concurrency: int = 16,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        quota: QuotaPolicy | None = None,
        requests_per_second: float | None = None,
        session: aiohttp.ClientSession | None = None,
        usage_reason: str | None = None,
        allow_insecure: bool = False,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        seed: int | None = None,
    ) -> None:
        if session_id is None:
            if not email or not password:
                raise ValueError("give email and password (to log in) or session_id")
            if not isinstance(email, str) or not isinstance(password, str):
                raise ValueError("email and password must be strings")
        elif not isinstance(session_id, str) or not session_id.strip():
            raise ValueError("session_id must be a non-empty string")
        if workspace_id is not None and (isinstance(workspace_id, bool)
                                         or not isinstance(workspace_id, int)):
            raise ValueError(f"workspace_id must be an integer, got {type(workspace_id).__name__}")
        if quota is not None and not isinstance(quota, QuotaPolicy):
            raise ValueError(f"quota must be a QuotaPolicy or None, got {type(quota).__name__}")
        if usage_reason is not None and (not isinstance(usage_reason, str) or not usage_reason
                                         or any(c in usage_reason for c in "\r\n\0")):
            raise ValueError("usage_reason must be a non-empty one-line string (it is sent as "
                             "the Arena-Usage-Reason header)")
        check_test_hooks(clock, sleep, seed)
        self.base_url = check_base_url(base_url,
                                       allow_insecure=check_flag("allow_insecure", allow_insecure))
        self.max_concurrency = check_positive_int("max_concurrency", max_concurrency)
        self.quota_policy = quota or QuotaPolicy()
        clock = clock or time.time
        sleep = sleep or asyncio.sleep
        self._auth = ArenaAuth(base_url=self.base_url, email=email, password=password,
                               workspace_id=workspace_id, session_id=session_id,
                               usage_reason=usage_reason)
        limiter = Limiter(max_concurrency=self.max_concurrency,
                          requests_per_second=check_rate(requests_per_second),
                          quota=self.quota_policy, clock=clock, sleep=sleep)
        self._pool = SessionPool(
            auth=self._auth, limiter=limiter, retry=check_retry(retry),
            timeout=check_timeout(timeout), session=check_session(session),
            connector_limit=max(100, self.max_concurrency), clock=clock, sleep=sleep,
            rng=random.Random(seed), quota=self.quota_policy,
        )
        self.items = Items(self._pool, self.base_url)
        self._email = email

    def __repr__(self) -> str:
        who = self._email or "given session"
        return f"<ArenaClient {self.base_url} {who}>"

