"""AnswerCache: the answers of GET requests kept ``ttl`` seconds, each fetched once.

A resource asks :meth:`AnswerCache.answer` instead of sending a GET itself. A fresh answer
in the store is structured and returned: no request, no quota admission. Otherwise one task
of this process fetches it (the others of the process wait for that answer: single-flight)
and, when the store is a share, one process of the integration (a fill marker in the share:
the others poll until the answer is there, or the marker lapses because its holder died or
failed, and then one of them fetches). An answer is stored only once it structured.

When Arena cannot answer (the quota spent, a 5xx, a non-quota 429 or a connection failure
that outlasted the retries), an answer up to ``stale_if_error`` seconds past its ``ttl`` is
served instead of the error: counted, logged once per key, and visible to the caller
(:class:`AnswerInfo`).

The store is fallible: when the share cannot be used the request goes to Arena as if nothing
were cached (the share's ledger decides whether it may), and a store that works again is
used again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Generic, Protocol, TypeVar

import attrs

from .._protocol import Request
from .._share._answers import Claim, Stored
from .._transport_stats import TransportCounters
from ..errors import (
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
    ShareMisconfiguredError,
    ShareUnavailableError,
    TransportError,
)
from ..policies import CachePolicy
from ._info import record
from ._keys import answer_key, item_tags, reference_tags, tags_for

__all__ = ["AnswerCache", "Fetch", "Store"]

log: logging.Logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Fetch the answer from Arena: ``fetch(seconds_left_or_None) -> wire body``.
Fetch = Callable[[float | None], Awaitable[bytes]]

#: Stale warnings remembered (one per key until it is fresh again), at most this many keys.
_WARNED_KEYS = 1024
#: Polling of another process's fill: first and longest pause, seconds.
_POLL_FIRST, _POLL_MAX = 0.002, 0.1


class Store(Protocol):
    """Where answers are kept: :class:`~arena_async._cache._memory.MemoryStore` or
    :class:`~arena_async._cache._shared.ShareStore`."""

    @property
    def shared(self) -> bool:
        """Whether other processes read it too (then fills are announced in it)."""

    async def read(self, key: str, fresh_since: float, owner: str,
                   fill_ttl: float) -> tuple[Stored | None, Claim]: ...

    async def write(self, key: str, stored: Stored, *, keep_for: float, tags: Sequence[str],
                    owner: str) -> None: ...

    async def release(self, key: str, owner: str) -> None: ...

    async def drop_tags(self, tags: Sequence[str]) -> None: ...

    async def drop_namespace(self, namespace: str) -> None: ...


@attrs.frozen(slots=True)
class _Answer:
    """How one fetch (or wait) ended: the wire body, when it was fetched from Arena, whether
    it came from the cache and whether it is stale."""

    body: bytes = attrs.field(repr=False)
    stored_at: float
    cached: bool
    stale: bool


@attrs.frozen(slots=True)
class _Ask(Generic[T]):
    """One call's question: the key, the request, how to structure and fetch its answer,
    and when (loop time) its deadline passes."""

    key: str
    request: Request
    parse: Callable[[bytes], T]
    fetch: Fetch
    give_up: float | None

    def late(self, what: str) -> TransportError:
        request = self.request
        return TransportError(f"the deadline passed while {what} fetched the same answer",
                              method=request.method, url=request.display)


#: What a flight ends with: the answer, the error its leader raised, or None when the
#: leader was cancelled (a follower then asks itself).
_Outcome = _Answer | BaseException | None


def can_serve_stale(error: BaseException) -> bool:
    """Whether ``error`` means that Arena could not answer (so a stale answer may do)."""
    if isinstance(error, QuotaExhaustedError | ServerError | RateLimitError):
        return True
    return isinstance(error, TransportError) and not isinstance(error,
                                                                ShareMisconfiguredError)


class AnswerCache:
    """One client's answer cache: ``policy`` over ``store``, keys in ``namespace``.

    ``counters`` receive ``cache_hits`` / ``cache_misses`` / ``cache_stale``; ``clock``
    (epoch seconds, the client's) decides freshness; ``fill_ttl``: seconds a fill marker
    lives in a shared store (and the longest wait for another process's fill); ``ready()``
    raises when the client cannot be used (not open, or closed).

    Example::

        cache = AnswerCache(CachePolicy(ttl=60), MemoryStore(...), namespace=ns,
                            counters=TransportCounters(), clock=time.time, fill_ttl=10.0,
                            ready=lambda: None)
        items = await cache.answer(request, parse, fetch, deadline=None)
    """

    def __init__(self, policy: CachePolicy, store: Store, *, namespace: str,
                 counters: TransportCounters, clock: Callable[[], float], fill_ttl: float,
                 ready: Callable[[], object]) -> None:
        self.policy = policy
        self.store = store
        self.namespace = namespace
        self._counters = counters
        self._clock = clock
        self._fill_ttl = fill_ttl
        self._ready = ready
        self._ttl = policy.ttl
        self._usable = policy.ttl + policy.stale_if_error
        self.owner: str = secrets.token_hex(8)
        self._flights: dict[str, asyncio.Future[_Outcome]] = {}
        # Invalidations so far: a fetch that saw one happen while it ran does not store.
        self._drops = 0
        self._warned: OrderedDict[str, None] = OrderedDict()
        self._store_failing = False

    def __repr__(self) -> str:
        return f"<AnswerCache ttl={self._ttl:g}s {type(self.store).__name__}>"

    # -- answers ----------------------------------------------------------------------
    async def answer(self, request: Request, parse: Callable[[bytes], T], fetch: Fetch,
                     deadline: float | None) -> T:
        """``parse`` of the answer to ``request``: from the cache when fresh, else fetched
        (once for every task, and every process of a shared store, that asks at once)."""
        self._ready()
        key = answer_key(self.namespace, request)
        ask = _Ask(key, request, parse, fetch,
                   None if deadline is None else time.monotonic() + deadline)
        while True:
            flight = self._flights.get(key)
            if flight is not None:
                outcome = await self._follow(flight, ask)
                if outcome is not None:
                    return self._given(outcome, parse)
                continue  # its leader was cancelled: ask again
            stored, claim = await self._read(key)
            if claim is Claim.FRESH and stored is not None:
                hit = self._hit(stored, parse)
                if hit is not None:
                    return hit[0]
                claim = Claim.FILL
            if key in self._flights:  # another task started while we read
                continue
            return await self._lead(ask, stored, claim)

    def _hit(self, stored: Stored, parse: Callable[[bytes], T]) -> tuple[T] | None:
        """A fresh answer, structured (None when it no longer structures: fetch it again)."""
        try:
            value = parse(stored.value)
        except Exception:
            log.debug("a cached answer did not structure; fetching it again", exc_info=True)
            return None
        self._counters.cache_hits += 1
        record(self, cached=True, age=max(0.0, self._clock() - stored.stored_at), stale=False)
        return (value,)

    def _given(self, outcome: _Answer, parse: Callable[[bytes], T]) -> T:
        """A follower's answer: the one its leader got."""
        value = parse(outcome.body)
        if outcome.stale:
            self._counters.cache_stale += 1
        else:
            self._counters.cache_hits += 1
        record(self, cached=True, age=max(0.0, self._clock() - outcome.stored_at),
               stale=outcome.stale)
        return value

    async def _follow(self, flight: asyncio.Future[_Outcome], ask: _Ask[T]) -> _Answer | None:
        give_up = ask.give_up
        timeout = None if give_up is None else max(0.0, give_up - time.monotonic())
        # asyncio.wait: a follower's cancellation or timeout leaves the flight alone.
        done, _ = await asyncio.wait((flight,), timeout=timeout)
        if not done:
            raise ask.late("another call")
        outcome = flight.result()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def _lead(self, ask: _Ask[T], stored: Stored | None, claim: Claim) -> T:
        key = ask.key
        flight: asyncio.Future[_Outcome] = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        outcome: _Outcome = None
        try:
            value, answer = await self._fill(ask, stored, claim)
            outcome = answer
            return value
        except Exception as exc:  # (cancelled: None, and a follower asks itself)
            outcome = exc
            raise
        finally:
            self._flights.pop(key, None)
            flight.set_result(outcome)

    async def _fill(self, ask: _Ask[T], stored: Stored | None,
                    claim: Claim) -> tuple[T, _Answer]:
        key, parse = ask.key, ask.parse
        if claim is Claim.WAIT:
            stored, claim = await self._wait_for_fill(ask, stored)
            if claim is Claim.FRESH and stored is not None:
                hit = self._hit(stored, parse)
                if hit is not None:
                    return hit[0], _Answer(stored.value, stored.stored_at, cached=True,
                                           stale=False)
        marked = claim is Claim.FILL and self.store.shared
        drops = self._drops
        self._counters.cache_misses += 1
        # A live filler keeps its marker (however long Arena or the quota makes it wait):
        # only a dead one's lapses, and then a waiter fetches.
        keeper = asyncio.ensure_future(self._keep_marker(key)) if marked else None
        try:
            left = None if ask.give_up is None else ask.give_up - time.monotonic()
            if left is not None and left <= 0:
                raise ask.late("another process")
            body = await ask.fetch(left)
            fetched_at = self._clock()
            value = parse(body)
        except BaseException as exc:
            await _stop(keeper)
            if marked:
                await self._release(key)
            if isinstance(exc, Exception) and can_serve_stale(exc):
                stale = self._stale(ask, stored, exc)
                if stale is not None:
                    return stale
            raise
        await _stop(keeper)
        tags = tags_for(self.namespace, ask.request, value)
        if drops == self._drops:
            await self._write(key, Stored(body, fetched_at), tags)
        elif marked:
            await self._release(key)
        self._warned.pop(key, None)
        record(self, cached=False, age=0.0, stale=False)
        return value, _Answer(body, fetched_at, cached=False, stale=False)

    def _stale(self, ask: _Ask[T], stored: Stored | None,
               error: Exception) -> tuple[T, _Answer] | None:
        """The stale answer to serve instead of ``error``, if one is young enough."""
        if stored is None:
            return None
        key, request = ask.key, ask.request
        age = max(0.0, self._clock() - stored.stored_at)
        if age > self._usable:
            return None
        try:
            value = ask.parse(stored.value)
        except Exception:
            return None
        self._counters.cache_stale += 1
        if key not in self._warned:
            self._warned[key] = None
            if len(self._warned) > _WARNED_KEYS:
                self._warned.popitem(last=False)
            log.warning("serving the cached answer of %s %s, %.0f s old (ttl %g s), because "
                        "Arena could not answer: %s", request.method, request.display, age,
                        self._ttl, _brief(error))
        record(self, cached=True, age=age, stale=True)
        return value, _Answer(stored.value, stored.stored_at, cached=True, stale=True)

    async def _wait_for_fill(self, ask: _Ask[T],
                             stored: Stored | None) -> tuple[Stored | None, Claim]:
        """Wait while another process fetches the answer: until it is there (FRESH) or no
        live marker is left (FILL: ours now). A marker lives ``fill_ttl`` seconds: a filler
        that died holds the others no longer, and one that is slower than that has a
        waiter fetch too. Polls with backoff, in real time (the marker lapses in real
        time). Returns the latest answer seen (maybe stale) with what to do."""
        give_up = ask.give_up
        pause = _POLL_FIRST
        while True:
            if give_up is None:
                await asyncio.sleep(pause)
            else:
                left = give_up - time.monotonic()
                if left <= 0:
                    raise ask.late("another process")
                await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, _POLL_MAX)
            seen, claim = await self._read(ask.key)
            stored = seen or stored
            if claim is not Claim.WAIT:
                return stored, claim

    async def _keep_marker(self, key: str) -> None:
        """Renew our fill marker every third of its life while we fetch (a read renews the
        marker of its owner), until it is no longer ours to keep."""
        while True:
            await asyncio.sleep(self._fill_ttl / 3)
            try:
                _, claim = await self.store.read(key, self._clock() - self._ttl, self.owner,
                                                 self._fill_ttl)
            except ShareUnavailableError:
                continue
            if claim is not Claim.FILL:
                return

    # -- the store, fallible ------------------------------------------------------------
    async def _read(self, key: str) -> tuple[Stored | None, Claim]:
        try:
            result = await self.store.read(key, self._clock() - self._ttl, self.owner,
                                           self._fill_ttl)
        except ShareMisconfiguredError:
            raise
        except ShareUnavailableError as exc:
            self._failing(exc)
            return None, Claim.FILL
        self._store_failing = False
        return result

    async def _write(self, key: str, stored: Stored, tags: Sequence[str]) -> None:
        try:
            await self.store.write(key, stored, keep_for=self._usable, tags=tags,
                                   owner=self.owner)
        except ShareUnavailableError as exc:
            self._failing(exc)

    async def _release(self, key: str) -> None:
        with contextlib.suppress(ShareUnavailableError):
            await self.store.release(key, self.owner)

    def _failing(self, exc: ShareUnavailableError) -> None:
        if not self._store_failing:
            self._store_failing = True
            log.warning("the answer cache cannot use the share (%s): asking Arena instead",
                        exc)

    # -- invalidation -------------------------------------------------------------------
    async def forget(self, item_guid: str | None = None) -> None:
        """Drop what is cached about one item (its record, its sub-resources, the references
        that involve it), or everything of this client's namespace; for every process of a
        shared store. Raises :class:`~arena_async.ShareUnavailableError` when the share
        cannot be reached."""
        self._drops += 1
        self._warned.clear()
        if item_guid is None:
            await self.store.drop_namespace(self.namespace)
        else:
            await self.store.drop_tags(item_tags(self.namespace, item_guid))

    async def references_changed(self, item_guids: Iterable[str]) -> None:
        """A reference between these items was written: drop every cached reference answer
        that involves any of them. A share that cannot be reached is logged, not raised
        (the write itself succeeded)."""
        self._drops += 1
        try:
            await self.store.drop_tags(reference_tags(self.namespace, item_guids))
        except ShareUnavailableError as exc:
            log.warning("could not drop the cached references of a changed reference (%s): "
                        "other processes may see the old ones for up to ttl=%g s", exc,
                        self._ttl)


async def _stop(task: asyncio.Task[None] | asyncio.Future[None] | None) -> None:
    """Cancel a helper task and wait until it has ended."""
    if task is not None and not task.done():
        task.cancel()
        await asyncio.wait((task,))


def _brief(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= 300 else text[:299] + "…"
