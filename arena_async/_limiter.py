"""Admission of every request: concurrency slots, an optional fixed rate, the Arena quota gate.

:meth:`Limiter.slot` admits one attempt in three steps, in this order: a concurrency slot
(a FIFO count of its own), the quota gate (only with a :class:`QuotaPolicy`), then the fixed
``requests_per_second`` cap (an :class:`aiolimiter.AsyncLimiter` of capacity one, so
requests are spaced ``1 / requests_per_second`` apart on the loop clock, with no burst).

The quota gate asks the pure :class:`~arena_async._estimate.QuotaEstimate` (whose module doc
describes the estimate: lowest reading, outstanding and lost attempts, windows, probes,
backoff, pacing) and carries out its answer: admit, wait for an in-flight answer, sleep until
a time, or raise :class:`QuotaExhaustedError`. With ``share=`` each admission is first granted
by the workspace's ledger (:meth:`Limiter.attach_ledger`).

Every wait uses the injected ``sleep`` (quota, pace and Retry-After holds) or futures
(slots, answers); there are no background tasks and no polling.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING

import attrs
from aiolimiter import AsyncLimiter

from ._checks import check_positive_int, check_rate
from ._estimate import QuotaEstimate, Step
from ._permit import Permit, Slot
from ._slots import Slots
from .errors import QuotaExhaustedError
from .models.common import Quota
from .policies import QuotaPolicy

if TYPE_CHECKING:
    from ._share._ledger import SharedLedger

__all__ = ["Limiter", "LimiterStats", "Permit"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
#: What the server announced: a Quota, or a 2xx answer's (remaining, resets_at, reset_ts).
Announced = Quota | tuple[int, datetime | None, float | None]


@attrs.frozen(slots=True)
class LimiterStats:
    """A snapshot of what a :class:`Limiter` has done.

    ``admitted``: attempts let through; ``quota_rejections``: :class:`QuotaExhaustedError`
    raised before sending; ``waits`` / ``wait_seconds``: how many ``slot()`` calls had to
    wait (for a slot, the quota, pacing or the rate) and for how long in all (injected
    clock); ``in_flight`` / ``max_in_flight``: slots held now / at most at once.

    Example: ``limiter.stats.admitted``
    """

    admitted: int = 0
    quota_rejections: int = 0
    waits: int = 0
    wait_seconds: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0


class Limiter:
    """Admits every request: at most ``max_concurrency`` at once, an optional fixed rate, and
    (with a :class:`QuotaPolicy`) the adaptive Arena quota gate described in the module doc.

    ``clock`` is the wall clock in epoch seconds and ``sleep`` the coroutine used for every
    quota and pace wait; inject fakes to test waits in milliseconds.

    Example::

        limiter = Limiter(max_concurrency=16, quota=QuotaPolicy(reserve=50))
        async with limiter.slot() as permit:
            ...  # send one attempt, then limiter.observe(permit, quota)
                 # (or limiter.end(permit, spent=False): it never left)
    """

    #: Seconds slept past the announced reset time before probing again.
    RESET_MARGIN = QuotaEstimate.RESET_MARGIN
    #: Backoff (seconds) before re-probing when the reset time is unknown or already past.
    MIN_BACKOFF = QuotaEstimate.MIN_BACKOFF
    MAX_BACKOFF = QuotaEstimate.MAX_BACKOFF

    def __init__(
        self,
        *,
        max_concurrency: int,
        requests_per_second: float | None = None,
        quota: QuotaPolicy | None = None,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        max_concurrency = check_positive_int("max_concurrency", max_concurrency)
        rate = check_rate(requests_per_second)
        if quota is not None and not isinstance(quota, QuotaPolicy):
            raise ValueError(f"quota must be a QuotaPolicy or None, got {type(quota).__name__}")
        if not callable(clock):
            raise ValueError("clock must be a callable returning epoch seconds")
        if not callable(sleep):
            raise ValueError("sleep must be a coroutine function taking seconds")
        self.max_concurrency = max_concurrency
        self.requests_per_second = rate
        self.policy = quota
        self._clock = clock
        self._sleep = sleep
        self._slots = Slots(max_concurrency)
        # Capacity one: evenly spaced, no burst. aiolimiter runs on the loop clock.
        self._rate = AsyncLimiter(1, 1.0 / rate) if rate is not None else None
        self._gate = asyncio.Lock()  # FIFO: only its holder (the head waiter) decides
        self._answer: asyncio.Future[None] | None = None
        self._estimate = QuotaEstimate()
        self._hold_until = 0.0  # no admission before this (a server's Retry-After)
        # The latest quota the server announced: a Quota, or a 2xx answer's (remaining,
        # resets_at, reset_ts) from report(), made into a Quota only when read.
        self._quota: Announced | None = None
        self._limit: int | None = None
        # With a share: the workspace's ledger grants each admission first (SharedLedger).
        self._ledger: SharedLedger | None = None

        # stats
        self._admitted = 0
        self._rejections = 0
        self._waits = 0
        self._wait_seconds = 0.0
        self._in_flight = 0
        self._max_in_flight = 0

    # -- public surface --------------------------------------------------------------
    def slot(self) -> AbstractAsyncContextManager[Permit]:
        """Wait for admission (concurrency, then quota budget, then rate) and hold a
        concurrency slot for one attempt.

        Raises :class:`QuotaExhaustedError` (policy ``"raise"``, or ``"wait"`` beyond
        ``max_wait`` or with an unknown reset) without anything being sent. Cancellation at
        any point gives everything back.
        """
        return Slot(self)

    @property
    def quota(self) -> Quota | None:
        """The latest quota the server announced (its word, not the estimate)."""
        q = self._quota
        if isinstance(q, tuple):
            q = self._quota = Quota(remaining=q[0], resets_at=q[1], limit=self._limit)
        limit = self._limit
        if limit is None and self._ledger is not None:
            limit = self._ledger.shared_limit  # a sharer that adopted the session
        if q is not None and q.limit is None and limit is not None:
            q = attrs.evolve(q, limit=limit)
        return q

    @property
    def estimated_remaining(self) -> int | None:
        """Requests the server will still accept once everything in flight has landed, by
        the conservative estimate; None while unknown (no answer yet, or the reset passed).
        """
        return self._estimate.remaining(self._clock())

    @property
    def stats(self) -> LimiterStats:
        """A frozen snapshot of the counters."""
        return LimiterStats(
            admitted=self._admitted,
            quota_rejections=self._rejections,
            waits=self._waits,
            wait_seconds=self._wait_seconds,
            in_flight=self._in_flight,
            max_in_flight=self._max_in_flight,
        )

    def attach_ledger(self, ledger: SharedLedger) -> None:
        """Admit nothing that the shared quota ledger has not granted (``share=``): the
        budget and the reserve then hold for every sharer of the workspace together."""
        self._ledger = ledger
        ledger.limit = self._limit

    def set_limit(self, limit: int | None) -> None:
        """Record the workspace's 24-hour request limit (``workspaceRequestLimit``)."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 0):
            raise ValueError(f"limit must be an integer >= 0 or None, got {limit!r}")
        self._limit = limit
        if self._ledger is not None:
            self._ledger.limit = limit

    def hold_until(self, when: float) -> None:
        """Admit nothing before ``when`` (epoch seconds on the injected clock).

        The pool calls it when the server answers 429 or 503 with ``Retry-After``: the
        server asked the client to slow down, so every task waits, not only the request
        that was told (otherwise the others keep meeting 429s: a storm)."""
        self._hold_until = max(self._hold_until, when)

    def __repr__(self) -> str:
        return (f"<Limiter max_concurrency={self.max_concurrency} in_flight={self._in_flight}"
                f" estimate={self.estimated_remaining}>")

    # -- admission -------------------------------------------------------------------
    def admit_now(self) -> Permit | None:
        """A permit at once, when :meth:`slot` would admit without waiting; else None (and
        nothing taken). Hand it back with :meth:`release` once its attempt is reported.

        That is: a slot is free with no one queued for one, nothing holds admissions, no
        fixed rate, and the quota gate (when there is one) is free and its estimate says
        ADMIT (the same decision :meth:`slot` takes), and the share's ledger (when there is
        one) has an admission granted already."""
        slots = self._slots
        if slots.free <= 0 or slots.waiters or self._rate is not None:
            return None
        now = self._clock()
        if self._hold_until > now:
            return None
        policy = self.policy
        if policy is not None and (self._gate.locked()
                                   or self._estimate.decide(policy, now)[0] is not Step.ADMIT):
            return None
        if self._ledger is not None and not self._ledger.take_now():
            return None
        slots.free -= 1
        self._admitted += 1
        self._in_flight += 1
        self._max_in_flight = max(self._max_in_flight, self._in_flight)
        return Permit(self._estimate.admit(now, False), False)

    def release(self, permit: Permit) -> None:
        """End a permit from :meth:`admit_now` (what leaving ``slot()`` does): a permit not
        reported by then counts as spent; its concurrency slot goes to the next waiter."""
        if not permit.settled:
            self.end(permit, spent=True)
        self._in_flight -= 1
        self._slots.give()

    async def acquire(self) -> Permit:
        """Wait for admission (what ``slot()`` does on entry); hand the permit back with
        :meth:`release`.

        One step per resource, in order: the Retry-After hold (takes nothing), a
        concurrency slot, the share's ledger grant, the quota gate's admission (the
        permit), the fixed rate's turn (takes nothing). A step that fails or is cancelled
        gives back what the steps before it took, latest first: each ``except`` below
        undoes exactly the step its ``try`` follows."""
        started = self._clock()
        waited = self._slots.busy()
        try:
            # 0. Before taking a slot: a held request must not keep one from the others.
            # One sleep, not a loop: a sleep that does not move the clock must not spin.
            if (hold := self._hold_until - self._clock()) > 0:
                waited = True
                await self._sleep(hold)
            await self._slots.take()  # 1. a slot
            try:
                while True:
                    if await self._grant():  # 2. the ledger's grant (share=)
                        waited = True
                    try:
                        permit, gate_waited = await self._admit()  # 3. the permit
                    except BaseException:
                        self._ungrant()  # undoes 2
                        raise
                    waited = waited or gate_waited
                    rate = self._rate
                    try:  # 4. the fixed rate's turn
                        if rate is not None:
                            if not rate.has_capacity():
                                waited = True
                            await rate.acquire()
                    except BaseException:
                        self.end(permit, spent=False)  # undoes 3 and 2: never sent
                        raise
                    if self._ledger is None or self._ledger.current():
                        break
                    # This process was stopped (or starved) past its entry's life in the
                    # ledger while it waited here: the ledger may have handed the
                    # admission to another sharer meanwhile. Give it back, ask again.
                    self.end(permit, spent=False)
            except BaseException:
                self._slots.give()  # undoes 1
                raise
        finally:
            if waited:
                self._count_wait(started)
        self._admitted += 1
        self._in_flight += 1
        self._max_in_flight = max(self._max_in_flight, self._in_flight)
        return permit

    async def _grant(self) -> bool:
        """With a share: wait for the ledger to grant one admission (True if it waited).
        Raises :class:`QuotaExhaustedError` when the workspace's budget is spent."""
        ledger = self._ledger
        if ledger is None:
            return False
        try:
            return await ledger.take()
        except QuotaExhaustedError:
            self._rejections += 1
            raise

    def _ungrant(self) -> None:
        """Undo :meth:`_grant`: the admission was granted, never used."""
        if self._ledger is not None:
            self._ledger.give_back()

    async def _admit(self) -> tuple[Permit, bool]:
        """The quota gate's admission (with a policy), else one at once: the permit, and
        whether it waited."""
        if self.policy is not None:
            return await self._pass_gate(self.policy)
        seq = self._estimate.admit(self._clock(), probe=False)
        return Permit(seq, False), False

    def _count_wait(self, started: float) -> None:
        self._waits += 1
        self._wait_seconds += max(0.0, self._clock() - started)

    async def _pass_gate(self, policy: QuotaPolicy) -> tuple[Permit, bool]:
        waited = self._gate.locked()
        estimate = self._estimate
        async with self._gate:
            while True:
                now = self._clock()
                step, until = estimate.decide(policy, now)
                if step is Step.ADMIT or step is Step.PROBE:
                    probe = step is Step.PROBE
                    return Permit(estimate.admit(now, probe=probe), probe), waited
                waited = True
                if step is Step.RAISE:
                    self._rejections += 1
                    raise QuotaExhaustedError(*estimate.spent_state())
                if step is Step.SLEEP:
                    left, _ = estimate.spent_state()
                    if left <= policy.reserve:  # (else a pacing sleep: not worth a line)
                        log.info("Arena request quota spent (%d left, reserve %d); waiting "
                                 "%.1f s for the reset", left, policy.reserve, until - now)
                    await self._sleep(max(0.0, until - now))
                else:
                    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                    self._answer = fut
                    try:
                        await fut
                    finally:
                        if self._answer is fut:
                            self._answer = None

    # -- what became of each attempt -------------------------------------------------
    def observe(self, permit: Permit, quota: Quota | None, *, exhausted: bool = False) -> None:
        """Report the quota headers of ``permit``'s answer (None when it had none);
        ``exhausted=True`` when the answer was a quota 429 (code 4084/4014)."""
        if quota is None:
            self.report(permit, remaining=None, reset_ts=None, quota=None,
                        exhausted=exhausted)
        else:
            resets_at = quota.resets_at
            self.report(permit, remaining=quota.remaining,
                        reset_ts=resets_at.timestamp() if resets_at is not None else None,
                        quota=quota, exhausted=exhausted)

    def report(self, permit: Permit, *, remaining: int | None, reset_ts: float | None,
               quota: Announced | None, exhausted: bool = False) -> None:
        """What ``permit``'s answer said of the quota: ``remaining`` and the reset time
        (epoch seconds) from its headers (``remaining`` None: it had none), ``quota``
        what :attr:`quota` shows if the reading is the server's latest word (a
        :class:`Quota`, or ``read_quota``'s ``(remaining, resets_at, reset_ts)``, made
        into a Quota only when read), ``exhausted`` for a quota 429. The one path of every
        report (:meth:`observe`, the pool's 2xx answers).

        Example: ``limiter.report(permit, remaining=9, reset_ts=None, quota=Quota(9, None))``
        """
        if self._estimate.observe(permit.seq, remaining, reset_ts, exhausted,
                                  self._clock(), limit=self._limit) and quota is not None:
            self._quota = quota
        if not permit.settled:
            spent = remaining is None and not exhausted  # maybe sent, never heard of
            if self._ledger is not None:
                self._ledger.ended(remaining, reset_ts, lost=spent, exhausted=exhausted)
            permit.settled = True
            self._estimate.settle(permit.seq, permit.probe, spent)
        self._wake()  # even when already settled: the reading may have changed the budget

    def end(self, permit: Permit, *, spent: bool) -> None:
        """An attempt ended with no reading: never sent (``spent=False``: its budget comes
        back) or maybe sent and never heard of (``spent=True``)."""
        if permit.settled:
            return
        if self._ledger is not None:
            if spent:
                self._ledger.ended(None, None, lost=True)
            else:
                self._ledger.give_back()  # never sent: the admission can be used again
        permit.settled = True
        self._estimate.settle(permit.seq, probe=permit.probe, spent=spent)
        self._wake()

    def _wake(self) -> None:
        """Let the head waiter look at the budget again."""
        answer = self._answer
        if answer is not None and not answer.done():
            answer.set_result(None)
