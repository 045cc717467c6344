"""RedisShare: a share in Redis, for processes on several machines (redis-py's asyncio client).

Each step reads the document together with Redis ``TIME`` (one Lua script: the time of
every sharer comes from the one Redis clock, never from the machines' clocks, which skew),
runs the pure step here, and writes the result with a compare-and-set Lua script that
succeeds only if the document is still the one read; otherwise the step runs again on the
fresh document. The rules thus live once, in Python (:mod:`arena_async._share._state`), and
Redis makes each change atomic.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ShareUnavailableError
from ._base import Share, check_redis_url, check_ttl, dumps, loads, redact_url
from ._state import Step

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisShare"]

R = TypeVar("R")

_READ = """
local v = redis.call('GET', KEYS[1])
local t = redis.call('TIME')
return {v or false, t[1], t[2]}
"""

_CAS = """
local v = redis.call('GET', KEYS[1])
if (v or '') ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1])
else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return 1
"""

#: Compare-and-set tries before giving up (each lost try means another sharer changed it).
_MAX_TRIES = 50


class RedisShare(Share):
    """A share in Redis: every process on every machine that uses the same Redis (and
    ``prefix``) shares one Arena session and one quota ledger. ``pip install
    'arena_async[redis]'`` brings redis-py.

    ``url_or_client``: a ``redis://``, ``rediss://`` or ``unix://`` URL, or a
    ``redis.asyncio.Redis`` you own (never closed by us). ``prefix`` starts every key.
    ``key_ttl``: seconds an untouched document lives (sharers touch theirs at least every
    few seconds while open). ``timeout``: seconds for a Redis command before
    :class:`~arena_async.ShareUnavailableError`. ``lease_ttl``, ``member_ttl``,
    ``sync_interval``, ``probe_ttl``: see :class:`Share`.

    Example::

        share = RedisShare("redis://redis.internal:6379/0", prefix="myapp:arena:")
        async with ArenaClient(email=e, password=p, workspace_id=w, share=share) as arena:
            ...
    """

    def __init__(self, url_or_client: str | Redis, *, prefix: str = "arena_async:",
                 key_ttl: float = 2 * 86400.0, timeout: float = 5.0,
                 **timings: float) -> None:
        super().__init__(**timings)
        if not isinstance(prefix, str):
            raise ValueError(f"prefix must be a string, got {type(prefix).__name__}")
        self.prefix = prefix
        self.key_ttl: float = check_ttl("key_ttl", key_ttl)
        self.timeout: float = check_ttl("timeout", timeout)
        self._url: str | None = None
        self._given: Any = None
        if isinstance(url_or_client, str):
            check_redis_url(url_or_client)
            self._url = url_or_client
            self._name = redact_url(url_or_client)
        elif hasattr(url_or_client, "evalsha") and hasattr(url_or_client, "register_script"):
            self._given = url_or_client
            kwargs = getattr(getattr(url_or_client, "connection_pool", None),
                             "connection_kwargs", {}) or {}
            host = kwargs.get("path") or f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
            self._name = f"redis://{host}/{kwargs.get('db', 0)}"
        else:
            raise ValueError("RedisShare takes a redis:// URL or a redis.asyncio.Redis client, "
                             f"got {type(url_or_client).__name__}")
        self._client: Any = None
        self._read: Any = None
        self._cas: Any = None

    @property
    def name(self) -> str:
        """The Redis URL without its password."""
        return self._name

    async def _open(self) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError:
            raise ShareUnavailableError(
                "redis-py is not installed: pip install 'arena_async[redis]'",
                share=self.name) from None
        if self._given is not None:
            client = self._given
        else:
            assert self._url is not None
            client = aioredis.Redis.from_url(self._url, socket_timeout=self.timeout,
                                             socket_connect_timeout=self.timeout)
        self._client = client
        self._read = client.register_script(_READ)
        self._cas = client.register_script(_CAS)

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._given is None:
            # aclose() from redis-py 5.0.1; close() before it (deprecated since).
            close = getattr(client, "aclose", None) or client.close
            await close()

    async def _update(self, key: str, step: Step[R]) -> R:
        import redis.exceptions

        if self._client is None:
            raise ShareUnavailableError("not open", share=self.name)
        full_key = self.prefix + key
        ttl_ms = str(int(self.key_ttl * 1000))
        try:
            for tries in range(_MAX_TRIES):
                old, seconds, micros = await self._read(keys=[full_key])
                old_text = old.decode() if isinstance(old, bytes) else (old or "")
                now = int(seconds) + int(micros) / 1e6
                new, result = step(loads(old_text), now)
                text = dumps(new) or ""
                if text == old_text:
                    return result
                if await self._cas(keys=[full_key], args=[old_text, text, ttl_ms]):
                    return result
                if tries >= 3:  # contended: let the others through
                    await asyncio.sleep(random.uniform(0, 0.002 * tries))
        except redis.exceptions.RedisError as exc:
            raise ShareUnavailableError(f"{type(exc).__name__}: {_safe(exc)}",
                                        share=self.name) from None
        except OSError as exc:
            raise ShareUnavailableError(f"{type(exc).__name__}", share=self.name) from None
        raise ShareUnavailableError(f"too much contention on {key!r}", share=self.name)


def _safe(exc: BaseException) -> str:
    """redis-py's messages name host and port, never the password; cut them short anyway."""
    text = str(exc)
    return text if len(text) <= 200 else text[:199] + "…"
