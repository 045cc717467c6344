"""One timer for every attempt the pool bounds by its ``timeout`` (no deadline given).

``asyncio.timeout`` arms a timer per attempt; here every attempt gets the same budget, so
their ends (loop clock) come in order: a deque holds them and one ``TimerHandle``, armed
for the oldest attempt not yet ended, cancels each attempt whose time is up. The attempt
then ends in :class:`TimeoutError`, as under ``asyncio.timeout``; a cancellation from
elsewhere stays a cancellation. Why this exists: benchmarks/analysis.md ("the attempt
timer").
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["AttemptTimer"]

_T = TypeVar("_T")


class _Attempt:
    __slots__ = ("cancelling", "done", "expired", "task", "when")

    def __init__(self, task: asyncio.Task[object], when: float) -> None:
        self.task = task
        self.when = when
        self.cancelling = task.cancelling()
        self.done = False
        self.expired = False


class AttemptTimer:
    """Bounds awaitables by ``budget`` seconds each, on one shared timer.

    Example::

        timer = AttemptTimer(30.0)
        response = await timer.bound(session_pool_transmit(...))  # TimeoutError after 30 s

    An attempt that ends is only marked; marked ones are dropped from the front, or all at
    once when they outnumber the live ones (a slow attempt at the front).
    """

    __slots__ = ("_live", "_loop", "_queue", "_timer", "budget")

    def __init__(self, budget: float) -> None:
        self.budget = budget
        self._queue: deque[_Attempt] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._live = 0

    @property
    def live(self) -> int:
        """Attempts under way."""
        return self._live

    @property
    def kept(self) -> int:
        """Attempts still held (ended ones not yet dropped included)."""
        return len(self._queue)

    async def bound(self, work: Awaitable[_T]) -> _T:
        """``await work`` within ``budget`` seconds, as ``asyncio.timeout(budget)`` would."""
        attempt = self._start()
        try:
            result = await work
        except BaseException as exc:
            self._end(attempt)
            if attempt.expired and attempt.task.uncancel() <= attempt.cancelling \
                    and isinstance(exc, asyncio.CancelledError):
                raise TimeoutError from exc
            raise
        self._end(attempt)
        if attempt.expired:
            attempt.task.uncancel()
        return result

    def _start(self) -> _Attempt:
        loop = self._loop
        # The task running on the timer's loop (no get_running_loop(): on Python 3.11 it
        # costs a getpid() system call); any other loop starts afresh.
        task = asyncio.current_task(loop) if loop is not None else None
        if task is None:
            loop = asyncio.get_running_loop()
            task = asyncio.current_task(loop)
            assert task is not None
            if loop is not self._loop:  # (a pool lives on one loop; be safe anyway)
                self._reset(loop)
        assert loop is not None
        attempt = _Attempt(task, loop.time() + self.budget)
        queue = self._queue
        queue.append(attempt)
        self._live += 1
        if self._timer is None:
            self._timer = loop.call_at(queue[0].when, self._fire)
        return attempt

    def _end(self, attempt: _Attempt) -> None:
        if attempt.done:
            return
        attempt.done = True
        self._live -= 1
        queue = self._queue
        while queue and queue[0].done:
            queue.popleft()
        if len(queue) > 2 * self._live + 64:
            self._queue = deque(a for a in queue if not a.done)

    def _reset(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._loop = loop
        self._queue = deque(a for a in self._queue if not a.done)

    def _fire(self) -> None:
        self._timer = None
        loop = self._loop
        assert loop is not None
        now = loop.time()
        queue = self._queue
        while queue:
            head = queue[0]
            if head.done:
                queue.popleft()
            elif head.when <= now:
                queue.popleft()
                head.expired = True
                head.task.cancel()
            else:
                self._timer = loop.call_at(head.when, self._fire)
                break
