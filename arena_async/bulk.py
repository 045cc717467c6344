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
from typing import Generic, TypeVar

from .models.common import Outcome

__all__ = ["BulkRun", "bulk"]

K = TypeVar("K")
V = TypeVar("V")


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
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an integer >= 1, got {concurrency!r}")
        if not callable(fn):
            raise ValueError("fn must be a coroutine function taking one key")
        if not isinstance(keys, Iterable | AsyncIterable) or isinstance(keys, str | bytes):
            raise ValueError("keys must be an iterable (or async iterable) of keys, not "
                             f"{type(keys).__name__}")
        self._fn = fn
        self._keys = keys
        self._concurrency = concurrency
        self._ordered = ordered
        self._gen = self._run()
        #: The largest number of tasks alive at once so far (for tests and tuning).
        self.max_tasks = 0

    def __aiter__(self) -> AsyncIterator[Outcome[K, V]]:
        return self

    async def __anext__(self) -> Outcome[K, V]:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        """Cancel and await every running call."""
        await self._gen.aclose()

    async def __aenter__(self) -> BulkRun[K, V]:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def _call(self, key: K) -> Outcome[K, V]:
        try:
            return Outcome(key, await self._fn(key), None)
        except Exception as exc:
            return Outcome(key, None, exc)

    async def _run(self) -> AsyncGenerator[Outcome[K, V], None]:
        keys = self._keys
        sync_keys = iter(keys) if isinstance(keys, Iterable) else None
        async_keys = aiter(keys) if sync_keys is None and isinstance(keys, AsyncIterable) \
            else None
        pending: dict[asyncio.Task[Outcome[K, V]], int] = {}
        ready: dict[int, Outcome[K, V]] = {}
        next_index = 0  # next key's index
        next_out = 0  # ordered: index to yield next
        exhausted = False
        window = self._concurrency * 4  # ordered: bound on results held for a slow head
        # Completions arrive through a done-callback: O(1) each, where asyncio.wait() would
        # add and remove a callback on every pending task at every wake-up.
        completed: deque[asyncio.Task[Outcome[K, V]]] = deque()
        wakeup: list[asyncio.Future[None]] = []
        loop = asyncio.get_running_loop()

        def on_done(task: asyncio.Task[Outcome[K, V]]) -> None:
            completed.append(task)
            if wakeup and not wakeup[0].done():
                wakeup[0].set_result(None)

        async def draw() -> tuple[bool, K | None]:
            if sync_keys is not None:
                for key in sync_keys:
                    return True, key
                return False, None
            assert async_keys is not None
            try:
                return True, await anext(async_keys)
            except StopAsyncIteration:
                return False, None

        async def refill() -> None:
            nonlocal exhausted, next_index
            while not exhausted and len(pending) < self._concurrency \
                    and (not self._ordered or len(ready) + len(pending) < window):
                more, key = await draw()
                if not more:
                    exhausted = True
                    return
                task = asyncio.create_task(self._call(key))  # type: ignore[arg-type]
                task.add_done_callback(on_done)
                pending[task] = next_index
                next_index += 1
                self.max_tasks = max(self.max_tasks, len(pending))

        try:
            await refill()
            while pending:
                if not completed:
                    wakeup.append(loop.create_future())
                    try:
                        await wakeup[0]
                    finally:
                        wakeup.clear()
                finished: list[Outcome[K, V]] = []
                while completed:
                    task = completed.popleft()
                    index = pending.pop(task)
                    outcome = task.result()  # _call never raises but for cancellation
                    if self._ordered:
                        ready[index] = outcome
                    else:
                        finished.append(outcome)
                while next_out in ready:
                    finished.append(ready.pop(next_out))
                    next_out += 1
                # Start the next calls before handing results to a consumer that may be slow.
                await refill()
                for outcome in finished:
                    yield outcome
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)


def bulk(fn: Callable[[K], Awaitable[V]], keys: Iterable[K] | AsyncIterable[K], *,
         concurrency: int, ordered: bool = False) -> BulkRun[K, V]:
    """Run ``fn(key)`` for every key, ``concurrency`` at a time, streaming outcomes.

    ``ordered=False`` yields outcomes as they finish; ``ordered=True`` in key order.
    """
    return BulkRun(fn, keys, concurrency=concurrency, ordered=ordered)
