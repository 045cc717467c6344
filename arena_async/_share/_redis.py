"""RedisShare: a share in Redis, for processes on several machines (redis-py's asyncio client).

A step runs here, in Python, on the document as Redis held it at a Redis ``TIME`` (the time
of every sharer comes from the one Redis clock, never from the machines' clocks, which
skew), and its result is written by a compare-and-set Lua script that succeeds only if the
document is still the one the step saw; otherwise the step runs again on the fresh
document, which the failed script returns. The rules thus live once, in Python
(:mod:`arena_async._share._state`), and Redis makes each change atomic.

One round trip per step, usually: a sharer remembers the document as its last script saw
it (or wrote it) and the Redis time then, and runs the next step on that document at an
estimate of Redis's time now (the time then plus the seconds this machine's monotonic
clock counted since the answer came back: never ahead of Redis's time, as the clocks run
at the same rate). The script checks both: the document unchanged (so it held that value
from the earlier script until now) and the estimate not ahead of Redis's ``TIME`` (nor
far behind it: a clock set forward). The step then saw exactly what a step reading the
document at that instant would have seen. Otherwise the script writes nothing and returns
the document and the time, and the step runs again on them: a sharer whose document
another changed meanwhile pays the two round trips a read and a write take.
"""

from __future__ import annotations

import asyncio
import importlib.util
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from ..errors import ShareMisconfiguredError, ShareUnavailableError
from ._answers import Claim, Stored
from ._base import Share, check_redis_url, check_ttl, dumps, loads, redact_url, then
from ._state import Now, Step

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisShare"]

R = TypeVar("R")

_READ = """
local v = redis.call('GET', KEYS[1])
local t = redis.call('TIME')
return {v or false, t[1], t[2]}
"""

# A step's write (ARGV[2], '' deletes; ARGV[3] the expiry in ms) if the document is still
# ARGV[1] and the step's time (ARGV[4], microseconds of Redis TIME) is not ahead of TIME nor
# more than ARGV[5] microseconds behind it ('': any): {1, false, seconds, micros}. Else
# nothing is written: {0, document, seconds, micros}.
_STEP = """
local v = redis.call('GET', KEYS[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local at = tonumber(ARGV[4])
if (v or '') ~= ARGV[1] or at > now or (ARGV[5] ~= '' and now - at > tonumber(ARGV[5]))
then return {0, v or false, t[1], t[2]} end
if ARGV[2] ~= ARGV[1] then
  if ARGV[2] == '' then redis.call('DEL', KEYS[1])
  else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
end
return {1, false, t[1], t[2]}
"""

# Cached answers (cache=): the value is "<stored_at>\n<bytes>" with a PX expiry; the fill
# marker a key of its own with a short PX; a tag a set of value keys, living as long as its
# longest-lived member.
_ANSWER_READ = """
local v = redis.call('GET', KEYS[1])
if v then
  local nl = string.find(v, '\\n', 1, true)
  if nl and tonumber(string.sub(v, 1, nl - 1)) >= tonumber(ARGV[1]) then
    return {v, 'fresh'}
  end
end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[2] then return {v or false, 'wait'} end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return {v or false, 'fill'}
"""

_ANSWER_WRITE = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
local keep = tonumber(ARGV[2])
for i = 3, #KEYS do
  redis.call('SADD', KEYS[i], KEYS[1])
  if redis.call('PTTL', KEYS[i]) < keep then redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
end
return 1
"""

_ANSWER_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

_ANSWER_DROP_TAGS = """
for i = 1, #KEYS do
  for _, key in ipairs(redis.call('SMEMBERS', KEYS[i])) do redis.call('DEL', key) end
  redis.call('DEL', KEYS[i])
end
return 1
"""

_NO_REDIS = "redis-py is not installed: pip install 'arena_async[redis]'"

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
    :class:`~arena_async.ShareUnavailableError` (tried again within ``outage_wait``).
    ``lease_ttl``, ``member_ttl``, ``sync_interval``, ``probe_ttl``, ``outage_wait``: see
    :class:`Share`. A URL without redis-py installed is a ``ValueError`` naming the extra
    to install, here (a missing package never comes back by waiting). A wrong password or
    user, an unknown database number, a read-only replica, or ``rediss://`` (TLS) to a
    server that speaks plain Redis raise :class:`~arena_async.ShareMisconfiguredError` at
    once, naming the fix.

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
            if importlib.util.find_spec("redis") is None:
                raise ValueError(f"share URL {redact_url(url_or_client)!r}: {_NO_REDIS}")
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
        self._step: Any = None
        # Per key: the document as this sharer's last script saw or left it, the Redis
        # time then (microseconds) and this machine's monotonic clock when the answer came.
        self._seen: dict[str, tuple[str, int, float]] = {}
        self._tls_mismatch: ShareMisconfiguredError | None = None
        # Microseconds an estimate of Redis's time may lag behind it (normally the answer's
        # way back and the step's own time: milliseconds). More, and Redis's clock was set
        # forward meanwhile, or this loop stalled: the step runs again at Redis's time. A
        # small part of every lifetime the step sets (a lease, a membership, a probe), so
        # each still lasts, from the step's start, about as long as after a read.
        self._max_lag = int(min(1.0, 0.05 * min(self.lease_ttl, self.member_ttl,
                                                 self.probe_ttl)) * 1e6)

    @property
    def name(self) -> str:
        """The Redis URL without its password."""
        return self._name

    async def _open(self) -> None:
        try:
            import redis.asyncio as aioredis
        except ImportError as exc:
            # Found at construction, yet not importable (a broken or too old install): no
            # wait brings it back either.
            raise ShareMisconfiguredError(
                f"redis-py cannot be imported ({type(exc).__name__}: {exc}): "
                "pip install 'arena_async[redis]'", share=self.name) from None
        if self._given is not None:
            client = self._given
        else:
            assert self._url is not None
            client = aioredis.Redis.from_url(self._url, socket_timeout=self.timeout,
                                             socket_connect_timeout=self.timeout)
        self._client = client
        self._read = client.register_script(_READ)
        self._step = client.register_script(_STEP)
        self._seen.clear()

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
        if self._tls_mismatch is not None:
            raise self._tls_mismatch
        full_key = self.prefix + key
        ttl_ms = str(int(self.key_ttl * 1000))
        seen = self._seen
        # (dropped while a step runs: a step that fails leaves nothing to trust)
        known = seen.pop(full_key, None)
        exact = False  # `known` was read at its time, with no estimate since
        try:
            for tries in range(_MAX_TRIES):
                if known is None:
                    old, seconds, micros = await self._read(keys=[full_key])
                    known = (_text(old), _micros(seconds, micros), time.monotonic())
                    exact = True
                old_text, at, since = known
                if not exact:
                    at += int((time.monotonic() - since) * 1e6)
                now = at / 1e6
                new, result = step(loads(old_text), Now(now, now))
                text = dumps(new) or ""
                if text == old_text and exact:
                    seen[full_key] = known
                    return result
                done, fresh, seconds, micros = await self._step(
                    keys=[full_key],
                    args=[old_text, text, ttl_ms, str(at), "" if exact else str(self._max_lag)])
                stamp = _micros(seconds, micros)
                if done:
                    seen[full_key] = (text, stamp, time.monotonic())
                    return result
                known, exact = (_text(fresh), stamp, time.monotonic()), True
                if tries >= 3:  # contended: let the others through
                    await asyncio.sleep(random.uniform(0, 0.002 * tries))
                    exact = False
        except redis.exceptions.RedisError as exc:
            hint = _permanent(exc)
            if hint is not None:
                raise ShareMisconfiguredError(
                    then(f"{type(exc).__name__}: {_safe(exc)}", hint, ": "),
                    share=self.name) from None
            if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
                await self._check_tls()
            raise ShareUnavailableError(f"{type(exc).__name__}: {_safe(exc)}",
                                        share=self.name) from None
        except OSError as exc:
            raise ShareUnavailableError(f"{type(exc).__name__}", share=self.name) from None
        raise ShareUnavailableError(f"too much contention on {key!r}", share=self.name)

    async def _check_tls(self) -> None:
        """A ``rediss://`` URL whose connection failed: when the server answers plain Redis,
        TLS can never work (the handshake only times out): say so, for good."""
        url = self._url
        if url is None or not url.lower().startswith("rediss://"):
            return
        try:
            parts = urlsplit(url)
            host, port = parts.hostname or "localhost", parts.port or 6379
        except ValueError:
            return
        if await _speaks_plain_redis(host, port, within=min(self.timeout, 1.0)):
            self._tls_mismatch = ShareMisconfiguredError(
                "the URL asks for TLS (rediss://) but the server speaks plain Redis: use "
                "redis://, or enable TLS on the server", share=self.name)
            raise self._tls_mismatch

    # -- cached answers (``cache=``): keys of their own under the prefix, expiring by PX ----
    keeps_answers = True

    def _answer_keys(self, kind: str, *names: str) -> list[str]:
        return [f"{self.prefix}answer-{kind}:{name}" for name in names]

    async def _answer_call(self, call: Callable[[], Awaitable[R]]) -> R:
        import redis.exceptions

        if self._client is None:
            raise ShareUnavailableError("not open", share=self.name)
        try:
            return await call()
        except redis.exceptions.RedisError as exc:
            raise ShareUnavailableError(f"{type(exc).__name__}: {_safe(exc)}",
                                        share=self.name) from None
        except OSError as exc:
            raise ShareUnavailableError(f"{type(exc).__name__}", share=self.name) from None

    def _answer_script(self, name: str, source: str) -> Any:
        scripts: dict[str, Any] = self.__dict__.setdefault("_answer_scripts", {})
        client = self._client
        if scripts.get("client") is not client:  # registered again for a new client
            scripts.clear()
            scripts["client"] = client
        if name not in scripts:
            scripts[name] = client.register_script(source)
        return scripts[name]

    async def answer_read(self, key: str, fresh_since: float, owner: str,
                          fill_ttl: float) -> tuple[Stored | None, Claim]:
        """See :meth:`Share.answer_read`."""
        keys = self._answer_keys("value", key) + self._answer_keys("fill", key)
        args = [repr(fresh_since), owner, str(max(1, int(fill_ttl * 1000)))]
        script = self._answer_script("read", _ANSWER_READ)
        raw, claim = await self._answer_call(lambda: script(keys=keys, args=args))
        return _stored(raw), Claim(claim.decode() if isinstance(claim, bytes) else claim)

    async def answer_write(self, key: str, stored: Stored, *, keep_for: float,
                           tags: Sequence[str], owner: str) -> None:
        """See :meth:`Share.answer_write`."""
        keys = (self._answer_keys("value", key) + self._answer_keys("fill", key)
                + self._answer_keys("tag", *tags))
        value = repr(stored.stored_at).encode() + b"\n" + stored.value
        args = [value, str(max(1, int(keep_for * 1000))), owner]
        script = self._answer_script("write", _ANSWER_WRITE)
        await self._answer_call(lambda: script(keys=keys, args=args))

    async def answer_release(self, key: str, owner: str) -> None:
        """See :meth:`Share.answer_release`."""
        keys = self._answer_keys("fill", key)
        script = self._answer_script("release", _ANSWER_RELEASE)
        await self._answer_call(lambda: script(keys=keys, args=[owner]))

    async def answer_drop_tags(self, tags: Sequence[str]) -> None:
        """See :meth:`Share.answer_drop_tags`."""
        if not tags:
            return
        keys = self._answer_keys("tag", *tags)
        script = self._answer_script("drop", _ANSWER_DROP_TAGS)
        await self._answer_call(lambda: script(keys=keys, args=[]))

    async def answer_drop_namespace(self, namespace: str) -> None:
        """See :meth:`Share.answer_drop_namespace`: every key of the namespace, found by
        ``SCAN`` (forgetting everything is rare; nothing is indexed for it)."""
        client = self._client

        async def drop() -> None:
            for kind in ("value", "tag", "fill"):
                pattern = _glob_escape(f"{self.prefix}answer-{kind}:{namespace}:") + "*"
                batch: list[Any] = []
                async for key in client.scan_iter(match=pattern, count=500):
                    batch.append(key)
                    if len(batch) >= 500:
                        await client.delete(*batch)
                        batch.clear()
                if batch:
                    await client.delete(*batch)

        await self._answer_call(drop)


async def _speaks_plain_redis(host: str, port: int, *, within: float) -> bool:
    """True when ``host:port`` answers a plain ``PING`` the way Redis does."""
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), within)
        writer.write(b"PING\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(64), within)
    except (OSError, TimeoutError):
        return False
    finally:
        if writer is not None:
            writer.close()
    return answer.startswith((b"+PONG", b"-NOAUTH", b"-ERR", b"-WRONGPASS"))


def _permanent(exc: BaseException) -> str | None:
    """The fix, when ``exc`` says the share can never work as configured (else None)."""
    import redis.exceptions as errors

    if isinstance(exc, errors.AuthenticationError | errors.AuthenticationWrongNumberOfArgsError):
        return "Redis refused the credentials: check the user and password in the URL"
    if isinstance(exc, errors.NoPermissionError):
        return "the Redis user lacks a permission the share needs (GET, SET, DEL, EVALSHA, TIME)"
    if isinstance(exc, errors.ReadOnlyError):
        return "the URL points at a read-only replica: use the primary"
    text = str(exc)
    if isinstance(exc, errors.ResponseError):
        if "DB index is out of range" in text:
            return "the server has no database with that number: use one it has (/0 to /15)"
        if text.startswith(("NOAUTH", "WRONGPASS")):
            return "Redis requires a password: give it in the URL (redis://:password@host)"
        if "unknown command" in text.lower() and ("EVAL" in text or "TIME" in text):
            return "the server lacks Lua scripting or TIME, which the share needs"
    return None


def _safe(exc: BaseException) -> str:
    """redis-py's messages name host and port, never the password; cut them short anyway."""
    text = str(exc)
    return text if len(text) <= 200 else text[:199] + "…"


def _micros(seconds: Any, micros: Any) -> int:
    """Redis ``TIME`` in microseconds."""
    return int(seconds) * 1_000_000 + int(micros)


def _text(raw: Any) -> str:
    """A document as a script returns it (bytes, or str with decode_responses; nil: '')."""
    return raw.decode() if isinstance(raw, bytes) else (raw or "")


def _stored(raw: Any) -> Stored | None:
    """An answer as :data:`_ANSWER_READ` returns it: ``b"<stored_at>\\n<value>"``."""
    if not raw:
        return None
    data = raw.encode() if isinstance(raw, str) else bytes(raw)  # a client's decode_responses
    stamp, sep, value = data.partition(b"\n")
    try:
        return Stored(value, float(stamp)) if sep else None
    except ValueError:
        return None


def _glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis ``SCAN MATCH`` pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
