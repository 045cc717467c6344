"""Bounded, streaming fan-out of one coroutine function over many keys."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
)
from types import TracebackType
from typing import Generic, TypeVar, cast

from ._checks import check_positive_int
from .models.common import Failure, Success

__all__ = ["BulkRun", "bulk"]

K = TypeVar("K")
V = TypeVar("V")

_END = object()  # the end of a plain iterable of keys


class BulkRun(Generic[K, V]):
    """An async iterator of :class:`Outcome` that owns its tasks.

    At most ``concurrency`` calls run at once; keys are drawn from the iterable only as
    slots free up, so 10 million keys cost no more memory than ``concurrency`` tasks.
    Each key's error is caught into its outcome (``Exception`` only: cancellation and
    ``KeyboardInterrupt`` propagate). Leaving the loop early, ``aclose()`` or leaving an
    ``async with`` block cancels and awaits every task still running.

    Example::

        async with arena.bulk(arena.items.tickets.list, guids) as run:
            async for outcome in run:
                ...
    """

    def __init__(self, fn: Callable[[K], Awaitable[V]], keys: Iterable[K] | AsyncIterable[K],
                 *, concurrency: int, ordered: bool = False) -> None:
        check_positive_int("concurrency", concurrency)
        if not callable(fn):
            raise ValueError("fn must be a coroutine function taking one key")
        if not isinstance(keys, Iterable | AsyncIterable) or isinstance(keys, str | bytes):
            raise ValueError("keys must be an iterable (or async iterable) of keys, not "
                             f"{type(keys).__name__}")
        self._peak = [0]
        # A plain function of its arguments, not a method: nothing the worker tasks hold
        # leads back to this object, so a run dropped without aclose() is collected and its
        # generator's finalizer (asyncio's asyncgen hook) cancels the workers.
        self._gen = _run(fn, keys, concurrency, ordered, self._peak)

    @property
    def max_tasks(self) -> int:
        """The largest number of tasks alive at once so far (for tests and tuning)."""
        return self._peak[0]

    def __aiter__(self) -> AsyncIterator[Success[K, V] | Failure[K]]:
        return self

    def __anext__(self) -> Awaitable[Success[K, V] | Failure[K]]:
        return self._gen.__anext__()

    async def aclose(self) -> None:
        """Cancel and await every running call."""
        await self._gen.aclose()

    async def __aenter__(self) -> BulkRun[K, V]:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()


async def _run(fn: Callable[[K], Awaitable[V]], keys: Iterable[K] | AsyncIterable[K],
               concurrency: int, ordered: bool, peak: list[int],
               ) -> AsyncGenerator[Success[K, V] | Failure[K], None]:
    # Workers, not a task per key (a task per key costs more than a loopback request:
    # benchmarks/analysis.md §1): each of at most `concurrency` tasks draws a key, runs
    # `fn`, hands the outcome over and draws the next. A worker starts with a key of its
    # own: a short run starts no more tasks than it has keys.
    sync_keys = iter(keys) if isinstance(keys, Iterable) else None
    async_keys = aiter(keys) if sync_keys is None and isinstance(keys, AsyncIterable) \
        else None
    draw_lock = asyncio.Lock() if async_keys is not None else None
    # Flow control: keys drawn but not yet handed to the consumer stay under `window`
    # (calls in flight plus outcomes waiting for a slow consumer, or for a slow head
    # of the order).
    window = concurrency * (4 if ordered else 2)
    loop = asyncio.get_running_loop()
    done: deque[Success[K, V] | Failure[K]] = deque()  # unordered: outcomes not yet yielded
    ready: dict[int, Success[K, V] | Failure[K]] = {}  # ordered: outcomes by key index
    workers: set[asyncio.Task[None]] = set()
    space: list[asyncio.Future[None]] = []  # workers waiting for room in the window
    wakeup: list[asyncio.Future[None]] = []  # the consumer, waiting for news
    drawn = 0  # keys drawn so far (the next key's index)
    handed = 0  # outcomes yielded to the consumer
    next_out = 0  # ordered: the index to yield next
    starting = 0  # workers being started (drawing their first key)
    exhausted = False
    closing = False
    failure: BaseException | None = None

    def stopped() -> bool:
        return exhausted or closing or failure is not None

    def wake() -> None:
        if wakeup and not wakeup[0].done():
            wakeup[0].set_result(None)

    async def draw(wait: bool) -> tuple[int, K] | None:
        """The next key and its index; None when there is none (or, with
        ``wait=False``, no room for one now)."""
        nonlocal drawn, exhausted
        while drawn - handed >= window:
            if not wait or stopped():
                return None
            fut: asyncio.Future[None] = loop.create_future()
            space.append(fut)
            await fut
        if stopped():  # no new call once the run is closing or has failed
            return None
        if sync_keys is not None:
            got = next(sync_keys, _END)
            if got is _END:
                exhausted = True
                return None
            key = cast(K, got)
        else:
            assert async_keys is not None
            assert draw_lock is not None
            async with draw_lock:  # one anext() at a time
                if stopped():
                    return None
                try:
                    key = await anext(async_keys)
                except StopAsyncIteration:
                    exhausted = True
                    return None
        index = drawn
        drawn += 1
        return index, key

    def start(first: tuple[int, K]) -> None:
        task = loop.create_task(_worker(first, work))
        workers.add(task)
        task.add_done_callback(ended)
        peak[0] = max(peak[0], len(workers))

    def ended(task: asyncio.Task[None]) -> None:
        nonlocal failure
        workers.discard(task)
        if task.cancelled() and not closing and failure is None:
            failure = asyncio.CancelledError()  # a call was cancelled, not by us
        wake()

    async def work(index: int, key: K) -> tuple[int, K] | None:
        """Run one key, hand its outcome over, return the next key (None: stop)."""
        nonlocal failure, starting
        try:
            # Start the next worker with a key of its own; with a plain iterable
            # (drawing cannot wait), every worker at once.
            while len(workers) + starting < concurrency and not stopped():
                starting += 1
                try:
                    more = await draw(wait=False)
                finally:
                    starting -= 1
                if more is None:
                    break
                start(more)
                if async_keys is not None:
                    break  # the new worker starts the one after it
            try:
                outcome: Success[K, V] | Failure[K] = Success(key, await fn(key))
            except Exception as exc:
                outcome = Failure(key, error=exc)
            if ordered:
                ready[index] = outcome
            else:
                done.append(outcome)
            wake()
            # One loop turn between keys, so that workers answered together send
            # together: see benchmarks/analysis.md §1.
            await asyncio.sleep(0)
            return await draw(wait=True)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the key iterable failed, or KeyboardInterrupt
            if failure is None:
                failure = exc
            wake()
            return None

    try:
        first = await draw(wait=False)
        if first is not None:
            start(first)
        while True:
            batch: list[Success[K, V] | Failure[K]] = []
            if ordered:
                while next_out in ready:
                    batch.append(ready.pop(next_out))
                    next_out += 1
            else:
                batch.extend(done)
                done.clear()
            if batch:
                for outcome in batch:
                    handed += 1
                    if space:  # workers waiting for room: there is one more now
                        waiting = space[:]
                        space.clear()
                        for fut in waiting:
                            if not fut.done():
                                fut.set_result(None)
                    yield outcome
                continue
            if failure is not None:
                raise failure
            if not workers:
                return
            wakeup.append(loop.create_future())
            try:
                await wakeup[0]
            finally:
                wakeup.clear()
    finally:
        closing = True
        for task in workers:
            task.cancel()
        if workers:
            await asyncio.gather(*workers, return_exceptions=True)


async def _worker(first: tuple[int, K],
                  work: Callable[[int, K], Awaitable[tuple[int, K] | None]]) -> None:
    """A bulk run's task: one key after another until there is none (``BulkRun``)."""
    item: tuple[int, K] | None = first
    while item is not None:
        item = await work(*item)


def bulk(fn: Callable[[K], Awaitable[V]], keys: Iterable[K] | AsyncIterable[K], *,
         concurrency: int, ordered: bool = False) -> BulkRun[K, V]:
    """Run ``fn(key)`` for every key, ``concurrency`` at a time, streaming outcomes.

    ``ordered=False`` yields outcomes as they finish; ``ordered=True`` in key order.
    """
    return BulkRun(fn, keys, concurrency=concurrency, ordered=ordered)
