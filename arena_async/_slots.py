"""Concurrency slots: a count and a FIFO of waiters.

What an :class:`asyncio.Semaphore` does, minus the cost of its ``locked()`` scan and of a
coroutine per acquire on the hot path: :meth:`Slots.try_take` takes a free slot with no
suspension point, and a slot given back passes straight to the head waiter, so no one who
arrives later jumps the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

__all__ = ["Slots"]


class Slots:
    """``size`` slots handed out first come, first served.

    Example::

        slots = Slots(2)
        if not slots.try_take():
            await slots.take()
        try:
            ...
        finally:
            slots.give()
    """

    __slots__ = ("free", "waiters")

    def __init__(self, size: int) -> None:
        self.free = size
        self.waiters: deque[asyncio.Future[None]] = deque()

    def busy(self) -> bool:
        """True when a new taker would have to wait (no slot free, or others queued)."""
        return self.free <= 0 or bool(self.waiters)

    def try_take(self) -> bool:
        """Take a slot now if one is free and no one is queued for one."""
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return True
        return False

    async def take(self) -> None:
        """Take a slot, waiting in line for one. Cancelled: nothing is kept (a slot handed
        over at the moment of cancellation passes on to the next in line)."""
        if self.try_take():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                self.give()  # handed a slot, then cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self.waiters.remove(fut)
            raise

    def give(self) -> None:
        """Give a slot back: to the head waiter when there is one, else to the count."""
        waiters = self.waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self.free += 1
