"""ArenaClient: the facade over the session pool and the item resources."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import ssl as _ssl
import time
from collections.abc import Sequence

import aiohttp

from .._cache import AnswerCache, AnswerInfo, build_cache, cache_identity, check_cache
from .._cache._info import collect
from .._checks import (
    check_flag,
    check_int,
    check_positive_int,
    check_rate,
    check_timeout,
)
from .._client import (
    BaseClient,
    Clock,
    Sleep,
    check_base_url,
    check_retry,
    check_session,
    check_test_hooks,
    check_trace_configs,
)
from .._limiter import Limiter
from .._network import network_settings
from .._protocol import validate_id
from .._session import DEFAULT_MAX_ANSWER_SIZE
from .._share import Share, ShareLink, open_share
from .._transport import Transport
from ..credentials import ArenaCredential, OAuthClient, arena_credential
from ..policies import CachePolicy, QuotaPolicy, RetryPolicy
from ._auth import ArenaAuth
from .items import Items

__all__ = ["DEFAULT_BASE_URL", "ArenaClient"]

#: The default (US) region. Others: https://api.arenagov.com/v1,
#: https://api.europe.arenaplm.com/v1, https://api.uk.arenaplm.com/v1, https://api.arenaplm.cn/v1
DEFAULT_BASE_URL = "https://api.arenasolutions.com/v1"


class ArenaClient(BaseClient):
    """An asyncio client for the Arena PLM REST API.

    Credentials: ``auth=`` one of :class:`~arena_async.Login`,
    :class:`~arena_async.OAuthClient` or :class:`~arena_async.GivenSession`; the keyword
    arguments below are a shorthand that builds the same object (giving both is a
    ``ValueError``, as is any mix of two kinds: see :mod:`arena_async.credentials`).

    Log in with ``email`` + ``password`` (+ ``workspace_id``) on first use, or reuse an
    existing ``session_id``. With a ``session_id`` alone the client neither logs in nor
    out, and an expired session raises :class:`AuthenticationError`; given credentials as
    well, it starts with the session and logs in (and, at close, out) when it dies.
    Requests from every task share ``max_concurrency`` slots, the :class:`QuotaPolicy`
    budget and the optional ``requests_per_second`` cap.

    OAuth 2.0 machine users: ``client_id`` + ``client_secret`` + ``token_url`` instead of
    email and password; the token is fetched on first use, renewed before it expires and
    once (for every task) on a 401, and sent as ``Authorization: Bearer``.

    Several processes or machines on one integration user share one session (Arena cancels
    a user's earlier session at each login) and one quota ledger, and the last to close
    logs out. By default (``share=None``) every process of one OS user on one machine
    shares through a private SQLite file in the user's state folder (or the URL in
    ``ARENA_SHARE``; ``none`` opts out); across machines give each the same
    ``share="redis://host:6379/0"`` (or a :class:`SQLiteShare` / :class:`RedisShare`);
    ``share=False`` runs alone. A client given a ``session_id`` never shares.

    Resources: ``arena.items`` (item search, ``guids_for``) and its sub-resources (listed
    at the end); ``arena.bulk(...)``, ``arena.quota``, ``arena.stats``.

    Example::

        async with ArenaClient(email=e, password=p, workspace_id=123456789) as arena:
            refs = await arena.items.tickets.list(item_guid)

    Observability: ``trace_configs`` (a list of ``aiohttp.TraceConfig``, e.g.
    OpenTelemetry's ``create_trace_config()``) go to the client's own aiohttp session, so
    every attempt is traced (a retried request shows as two requests) and the send-once
    guarantee holds, which ``session=`` gives up.

    ``clock`` (wall-clock seconds), ``sleep`` and ``seed`` exist for tests: waits can be
    driven by a fake clock instead of real time. A client given ``clock`` or ``sleep``
    does not join the default share (the share's waits run on its own clocks, which a
    fake clock cannot move); pass ``share=`` to test sharing, on real time.

    Corporate networks (every request: login, API calls, logout, the OAuth token URL):
    ``ssl`` is a CA bundle path (PEM), an ``ssl.SSLContext`` (e.g.
    ``truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)``) or None (the system's
    verification; False only with ``allow_insecure``); ``proxy`` an
    ``http://[user:password@]host:port`` URL; ``trust_env=True`` reads ``HTTPS_PROXY``,
    ``NO_PROXY``, ``SSL_CERT_FILE``... once, when the client is made. ``max_answer_size``
    (bytes, 64 MiB by default) bounds every answer read
    (:class:`~arena_async.AnswerTooLargeError`).
    See the guide "Corporate networks".

    ``cache``: a :class:`CachePolicy` keeps the answers of GET requests ``ttl`` seconds (in
    the share when there is one, so every process reuses them; in memory otherwise), and
    may serve older ones when Arena cannot answer; :meth:`forget` drops them,
    :meth:`cache_info` tells where an answer came from. None (the default) caches nothing.
    """

    #: The API root, e.g. ``https://api.arenasolutions.com/v1`` (no trailing slash).
    base_url: str
    #: Requests in flight at most, across every task of this client.
    max_concurrency: int
    #: The quota rules in force (the ``quota`` given, or the default policy).
    quota_policy: QuotaPolicy
    #: ``arena.items``: item search and lookups (:class:`~arena_async.arena.items.Items`),
    #: with the item sub-resources (``arena.items.tickets``...: ``Items`` lists them).
    items: Items

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
        trace_configs: Sequence[aiohttp.TraceConfig] | None = None,
        usage_reason: str | None = None,
        share: str | Share | bool | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_url: str | None = None,
        allow_insecure: bool = False,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        seed: int | None = None,
        ssl: _ssl.SSLContext | str | os.PathLike[str] | bool | None = None,
        proxy: str | None = None,
        trust_env: bool = False,
        max_answer_size: int = DEFAULT_MAX_ANSWER_SIZE,
        cache: CachePolicy | None = None,
        auth: ArenaCredential | None = None,
    ) -> None:
        insecure = check_flag("allow_insecure", allow_insecure)
        credential = arena_credential(auth, email=email, password=password,
                                      workspace_id=workspace_id, session_id=session_id,
                                      client_id=client_id, client_secret=client_secret,
                                      token_url=token_url)
        shared = _open_client_share(share, credential,
                                    own_time=clock is not None or sleep is not None)
        if quota is not None and not isinstance(quota, QuotaPolicy):
            raise ValueError(f"quota must be a QuotaPolicy or None, got {type(quota).__name__}")
        if usage_reason is not None and (not isinstance(usage_reason, str) or not usage_reason
                                         or any(c in usage_reason for c in "\r\n\0")):
            raise ValueError("usage_reason must be a non-empty one-line string (it is sent as "
                             "the Arena-Usage-Reason header)")
        check_test_hooks(clock, sleep, seed)
        cache_policy = check_cache(cache)
        tracing = check_trace_configs(trace_configs, session)
        self.base_url = check_base_url(base_url, allow_insecure=insecure)
        network = network_settings(ssl=ssl, proxy=proxy, trust_env=trust_env,
                                   allow_insecure=insecure, session=session,
                                   urls=(self.base_url, credential.token_url
                                         if isinstance(credential, OAuthClient) else None))
        answer_limit = check_int("max_answer_size", max_answer_size, minimum=1)
        assert answer_limit is not None
        self.max_concurrency = check_positive_int("max_concurrency", max_concurrency)
        self.quota_policy = quota or QuotaPolicy()
        clock = clock or time.time
        sleep = sleep or asyncio.sleep
        limiter = Limiter(max_concurrency=self.max_concurrency,
                          requests_per_second=check_rate(requests_per_second),
                          quota=self.quota_policy, clock=clock, sleep=sleep)
        #: The share's link (None when the client runs alone).
        self.share_link: ShareLink | None = None
        if shared is not None:
            self.share_link = ShareLink(
                shared, base_url=self.base_url, identity=str(credential.share_identity),
                workspace_id=credential.workspace_id, policy=self.quota_policy,
                max_concurrency=self.max_concurrency, sleep=sleep,
                secret=str(credential.share_secret),
                token_margin=0.5)  # only tokens expire: a session is never within it
            limiter.attach_ledger(self.share_link.ledger)
        self._auth = ArenaAuth(base_url=self.base_url, credential=credential,
                               usage_reason=usage_reason, link=self.share_link, clock=clock,
                               allow_insecure=insecure)
        self._transport = Transport(
            auth=self._auth, limiter=limiter, retry=check_retry(retry),
            timeout=check_timeout(timeout), session=check_session(session),
            connector_limit=max(100, self.max_concurrency), clock=clock, sleep=sleep,
            rng=random.Random(seed), quota=self.quota_policy,
            trace_configs=tracing,
            network=network, max_answer_size=answer_limit,
        )
        self.items = Items(self._transport, self.base_url, link=self.share_link, clock=clock,
                           sleep=sleep)
        self._who = credential.who
        #: The credential in use (:mod:`arena_async.credentials`; ``auth=`` or the one the
        #: keyword arguments built).
        self.auth: ArenaCredential = credential
        self._cache: AnswerCache | None = build_cache(
            cache_policy, pool=self._transport, link=self.share_link, base_url=self.base_url,
            identity=_cache_identity(credential), workspace_id=credential.workspace_id,
            clock=clock)

    def __repr__(self) -> str:
        shared = f" share={self.share_link.share.name}" if self.share_link else ""
        return f"<ArenaClient {self.base_url} {self._who}{shared}>"

    # -- the answer cache (``cache=``) ---------------------------------------------------
    @property
    def cache_policy(self) -> CachePolicy | None:
        """The :class:`CachePolicy` in force, or None (nothing is cached)."""
        return None if self._cache is None else self._cache.policy

    async def forget(self, item_guid: str | None = None) -> None:
        """Drop what the cache holds about one item (the item, its tickets, references and
        training records, and the references of other items to it), or, with no
        ``item_guid``, everything this client cached; in every process when the cache is in
        the share. Does nothing without ``cache=``.

        Example: ``await arena.forget(item_guid)`` after changing the item elsewhere;
        ``await arena.forget()`` to start afresh.
        """
        if item_guid is not None:
            validate_id("item_guid", item_guid)
        if self._cache is not None:
            await self._cache.forget(item_guid)

    def cache_info(self) -> contextlib.AbstractContextManager[AnswerInfo]:
        """A block that tells where the answers of this client given inside it came from
        (:class:`AnswerInfo`: from the cache or not, how old, stale or not); per task, so
        concurrent requests each learn their own. Without ``cache=`` nothing is counted.

        Example::

            with arena.cache_info() as info:
                refs = await arena.items.tickets.list(item_guid)
            if info.stale:
                log.warning("answer %d s old: Arena could not answer", info.age)
        """
        return collect(self._cache if self._cache is not None else self)


def _open_client_share(share: object, credential: ArenaCredential, *,
                       own_time: bool = False) -> Share | None:
    """The client's share: ``None`` is the default share, except for a given session
    (never shared: the client then runs alone) and for a client whose clock or sleep is
    injected (``own_time``: a test; the share's waits run on the share's clocks, which a
    fake clock cannot move, so a wait for the quota reset would never end); a share given
    with a session is a ``ValueError``."""
    if credential.share_identity is None:
        if share is None or share is False:
            return None
        raise ValueError("share= holds the session every sharer uses: give email and "
                         "password (or OAuth credentials), not session_id")
    if share is None and own_time:
        return None
    return open_share(share)


def _cache_identity(credential: ArenaCredential) -> str:
    """Who asks, for the answer cache's namespace (never a secret)."""
    if isinstance(credential, OAuthClient):
        return cache_identity(None, credential.client_id, None)
    if credential.share_identity is not None:
        return cache_identity(credential.share_identity, None, None)
    return cache_identity(None, None, credential.session_id)


# The item sub-resources, as Items declares them.
ArenaClient.__doc__ = (f"{ArenaClient.__doc__ or ''}\n    Item sub-resources: "
                       + ", ".join(f"``arena.items.{name}``" for name, _ in Items._sub_resources)
                       + ".\n")
