"""Admission of every request: concurrency slots, an optional fixed rate, the Arena quota gate.

:meth:`Limiter.slot` admits one attempt in three steps, in this order: a concurrency slot
(an :class:`asyncio.Semaphore`), the quota gate (only with a :class:`QuotaPolicy`), then
the fixed ``requests_per_second`` cap (an :class:`aiolimiter.AsyncLimiter` of capacity one,
so requests are spaced ``1 / requests_per_second`` apart on the loop clock, with no burst).

The quota estimate
------------------
Arena's quota is per workspace per 24 h and shared with every other process of the
workspace; each response's ``remaining`` (and reset time) is the only truth, and it is
stale the moment other requests are in flight. The gate keeps:

- ``known``: the *lowest* ``remaining`` any response of the current window reported
  (0 after a quota 429);
- ``outstanding``: attempts admitted and not yet answered (or given back as unsent);
- ``lost``: attempts that may have been sent but brought no headers back (a connection
  error after sending, or a block left without a report). Each counts as spent until a
  reading arrives from a request admitted after it ended: the server counted it by then.

The estimate is ``known - lost - outstanding`` and a request is admitted only while
``estimate - reserve > 0``. It is conservative: the server's counter only goes down
within a window, so the lowest reading is the freshest one (answers arrive out of order; a
late, higher reading is ignored), and every unanswered attempt is subtracted even when the
server has already counted it in ``known`` (it is then subtracted twice until its answer
arrives, which only delays admissions). Another process's spending shows up as a lower
reading and lowers the estimate at once. So one process never sends a request the server
would refuse (apart from a probe of an unknown state, below); several processes sharing a
quota overshoot by at most the requests each had in flight on stale readings.

A new window is recognised when a response's reset time moves forward; when a request
*sent after* the lowest reading was received reports more than that reading (the counter
went up, which no amount of in-flight traffic can explain); or when the clock passes the
known reset time. A reading from an older window (earlier reset time) is ignored.

Unknown state: before any response, and once the reset time has passed with no fresh
headers, the gate admits one probe at a time until a response tells the truth; that is what
keeps many waiters (or several processes) from storming the server right after a reset.

When the budget is spent: ``on_exhausted="raise"`` raises :class:`QuotaExhaustedError` at
once (waiting only for in-flight answers when the estimate, not the server, says "spent");
``"wait"`` sleeps until the reset time plus :attr:`Limiter.RESET_MARGIN` (0.05 s, for
small clock differences), then probes, or raises at once when the reset is unknown or
further away than ``max_wait``. A quota 429 sets the estimate to 0 until the reset. If the
server still answers with a reset time our clock has passed (its clock lags, or it resets
late), the gate re-probes after a backoff that doubles from 1 s to 60 s, so that costs a
handful of 429s, not a storm; the same backoff paces re-probes of a spent budget whose
reset time could not be parsed.

With ``pace=True`` the gate spreads what is left: admission ``n+1`` waits until
``last_admission + (reset - last_admission) / (estimate - reserve)``.

Every wait uses the injected ``sleep`` (quota and pace) or futures (slots, answers); there
are no background tasks and no polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import attrs
from aiolimiter import AsyncLimiter

from ._checks import check_positive_int, check_rate
from .errors import QuotaExhaustedError
from .models.common import Quota
from .policies import QuotaPolicy

if TYPE_CHECKING:
    from ._share._ledger import SharedLedger

__all__ = ["Limiter", "LimiterStats", "Permit"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


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


class Permit:
    """One admitted attempt; report what became of it exactly once.

    Call :meth:`observe` with the response's quota headers, or :meth:`unsent` when the
    request never reached the server. A permit that did neither by the end of its
    ``async with`` block counts as spent.

    Example::

        async with limiter.slot() as permit:
            try:
                response = await send()
            except ConnectError:
                permit.unsent()
                raise
            permit.observe(parse_quota(response.headers), exhausted=is_quota_429(response))
    """

    __slots__ = ("_limiter", "_probe", "_seq", "_settled")

    def __init__(self, limiter: Limiter, seq: int, probe: bool) -> None:
        self._limiter = limiter
        self._seq = seq
        self._probe = probe
        self._settled = False

    @property
    def probe(self) -> bool:
        """True when this attempt was admitted as the one probe of an unknown quota state."""
        return self._probe

    def observe(self, quota: Quota | None, *, exhausted: bool = False) -> None:
        """Report the quota headers of this attempt's response (None when it had none).

        ``exhausted=True`` when the response was a quota 429 (code 4084/4014).
        """
        self._limiter._observe(self, quota, exhausted)

    def observe_reading(self, remaining: int, resets_at: datetime | None,
                        reset_ts: float | None) -> None:
        """:meth:`observe` for a 2xx answer's quota headers, given as the remaining count and
        the reset time (as a datetime and as epoch seconds): no :class:`Quota` is built
        unless someone reads :attr:`Limiter.quota`."""
        self._limiter.observe_reading(self, remaining, resets_at, reset_ts)

    def unsent(self) -> None:
        """The request never reached the server: give its budget back."""
        self._limiter._settle(self, spent=False)

    def __repr__(self) -> str:
        state = "settled" if self._settled else "open"
        return f"<Permit #{self._seq}{' probe' if self._probe else ''} {state}>"


class _Step(enum.Enum):
    ADMIT = enum.auto()
    PROBE = enum.auto()
    ANSWER = enum.auto()  # wait for an in-flight answer
    SLEEP = enum.auto()  # wait (injected sleep) until a time: the reset or the pace
    RAISE = enum.auto()


class _Slot:
    """``async with limiter.slot()``: a plain class, not an async generator, because it
    runs for every request (an @asynccontextmanager costs a generator per use)."""

    __slots__ = ("_limiter", "_permit")

    def __init__(self, limiter: Limiter) -> None:
        self._limiter = limiter
        self._permit: Permit | None = None

    async def __aenter__(self) -> Permit:
        limiter = self._limiter
        permit = limiter.admit_now()
        self._permit = permit if permit is not None else await limiter._acquire()
        return self._permit

    async def __aexit__(self, *exc_info: object) -> None:
        permit, self._permit = self._permit, None
        if permit is not None:
            self._limiter.release(permit)


class Limiter:
    """Admits every request: at most ``max_concurrency`` at once, an optional fixed rate, and
    (with a :class:`QuotaPolicy`) the adaptive Arena quota gate described in the module doc.

    ``clock`` is the wall clock in epoch seconds and ``sleep`` the coroutine used for every
    quota and pace wait; inject fakes to test waits in milliseconds.

    Example::

        limiter = Limiter(max_concurrency=16, quota=QuotaPolicy(reserve=50))
        async with limiter.slot() as permit:
            ...  # send one attempt, then permit.observe(quota) or permit.unsent()
    """

    #: Seconds slept past the announced reset time before probing again.
    RESET_MARGIN = 0.05
    #: Backoff (seconds) before re-probing when the reset time is unknown or already past.
    MIN_BACKOFF = 1.0
    MAX_BACKOFF = 60.0

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
        # Concurrency slots: a count and a FIFO of waiters (an asyncio.Semaphore, minus the
        # cost of its locked() scan and of a coroutine per acquire on the hot path).
        self._free = max_concurrency
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        # Capacity one: evenly spaced, no burst. aiolimiter runs on the loop clock.
        self._rate = AsyncLimiter(1, 1.0 / rate) if rate is not None else None
        self._gate = asyncio.Lock()  # FIFO: only its holder (the head waiter) decides
        self._answer: asyncio.Future[None] | None = None

        # quota state
        self._known: int | None = None  # None: unknown, probe mode
        self._reset_at: float | None = None  # the server's reset time of the current window
        self._expires_at: float | None = None  # when the gate stops trusting _known
        self._server_min: int | None = None  # lowest reading of the window (server's word)
        self._min_mark = 0  # admissions counted when _server_min was last lowered
        self._window_mark = 0  # admissions counted when the window (or probe mode) began
        self._expired_reset: float | None = None  # reset time of the window that expired
        self._read_at = 0.0  # when the server last told us something about this window
        self._outstanding = 0
        # Attempts that were maybe sent but brought no answer, as the admission count when
        # each ended: they count as spent until a reading from a later request includes them.
        self._lost: deque[int] = deque()
        self._probe_out = False
        self._backoff = self.MIN_BACKOFF
        self._last_admit_at: float | None = None
        self._hold_until = 0.0  # no admission before this (a server's Retry-After)
        self._admissions = 0  # serial number of the last admission
        # The latest quota the server announced: a Quota, or (remaining, resets_at) from
        # observe_reading, made into a Quota only when read.
        self._quota: Quota | tuple[int, datetime | None] | None = None
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
        return _Slot(self)

    @property
    def quota(self) -> Quota | None:
        """The latest quota the server announced (its word, not the estimate)."""
        q = self._quota
        if isinstance(q, tuple):
            q = self._quota = Quota(remaining=q[0], resets_at=q[1], limit=self._limit)
        if q is not None and q.limit is None and self._limit is not None:
            q = attrs.evolve(q, limit=self._limit)
        return q

    @property
    def estimated_remaining(self) -> int | None:
        """Requests the server will still accept once everything in flight has landed, by
        the conservative estimate; None while unknown (no answer yet, or the reset passed).
        """
        if self._known is None or self._expired(self._clock()):
            return None
        return max(0, self._known - len(self._lost) - self._outstanding)

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

    def set_limit(self, limit: int | None) -> None:
        """Record the workspace's 24-hour request limit (``workspaceRequestLimit``)."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 0):
            raise ValueError(f"limit must be an integer >= 0 or None, got {limit!r}")
        self._limit = limit

    def __repr__(self) -> str:
        return (f"<Limiter max_concurrency={self.max_concurrency} in_flight={self._in_flight}"
                f" estimate={self.estimated_remaining}>")

    # -- admission -------------------------------------------------------------------
    def release(self, permit: Permit) -> None:
        """End a permit from :meth:`admit_now` (what leaving ``slot()`` does): a permit not
        reported by then counts as spent; its concurrency slot goes to the next waiter."""
        if not permit._settled:
            self._settle(permit, spent=True)
        self._in_flight -= 1
        if self._slot_waiters:
            self._give_slot()
        else:
            self._free += 1

    def _slots_locked(self) -> bool:
        return self._free <= 0 or bool(self._slot_waiters)

    async def _take_slot(self) -> None:
        if self._free > 0 and not self._slot_waiters:
            self._free -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._slot_waiters.append(fut)
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                self._give_slot()  # handed a slot, then cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._slot_waiters.remove(fut)
            raise

    def _give_slot(self) -> None:
        waiters = self._slot_waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)  # the slot passes straight to the head waiter (FIFO)
                return
        self._free += 1

    def hold_until(self, when: float) -> None:
        """Admit nothing before ``when`` (epoch seconds on the injected clock).

        The pool calls it when the server answers 429 or 503 with ``Retry-After``: the
        server asked the client to slow down, so every task waits, not only the request
        that was told (otherwise the others keep meeting 429s: a storm)."""
        self._hold_until = max(self._hold_until, when)

    def admit_now(self) -> Permit | None:
        """A permit at once, when :meth:`slot` would admit without waiting; else None (and
        nothing taken). Hand it back with :meth:`release` once its attempt is reported.

        The common case without a suspension point: a slot is free, nothing holds
        admissions, no fixed rate, and the quota gate (when there is one) is free and would
        admit now: no probe, no pacing, and the estimate above the reserve. Exactly what
        :meth:`_acquire` would do then; None (nothing taken) in every other case."""
        if self._free <= 0 or self._slot_waiters or self._rate is not None:
            return None
        now = self._clock()
        if self._hold_until > now:
            return None
        policy = self.policy
        if policy is not None:
            known = self._known
            if known is None or policy.pace or self._gate.locked() \
                    or (self._expires_at is not None and now >= self._expires_at) \
                    or known - len(self._lost) - policy.reserve - self._outstanding <= 0:
                return None
        if self._ledger is not None and not self._ledger.take_now():
            return None
        self._free -= 1
        self._admissions += 1
        self._outstanding += 1
        self._last_admit_at = now
        self._admitted += 1
        self._in_flight += 1
        self._max_in_flight = max(self._max_in_flight, self._in_flight)
        return Permit(self, self._admissions, False)

    async def _acquire(self) -> Permit:
        started = self._clock()
        waited = self._slots_locked()
        # Before taking a slot: a held request must not keep one from the others.
        # One sleep, not a loop: a sleep that does not move the clock must not spin.
        if (hold := self._hold_until - self._clock()) > 0:
            waited = True
            try:
                await self._sleep(hold)
            except BaseException:
                self._waits += 1
                self._wait_seconds += max(0.0, self._clock() - started)
                raise
        try:
            await self._take_slot()
            ledger = self._ledger
            try:
                if ledger is not None:
                    waited = await ledger.take() or waited
            except QuotaExhaustedError:
                self._rejections += 1
                self._give_slot()
                raise
            except BaseException:
                self._give_slot()
                raise
            admitted: Permit | None = None
            try:
                if self.policy is not None:
                    permit, gate_waited = await self._pass_gate(self.policy)
                    waited = waited or gate_waited
                else:
                    permit = self._admit(self._clock(), probe=False)
                admitted = permit
                if self._rate is not None:
                    try:
                        if not self._rate.has_capacity():
                            waited = True
                        await self._rate.acquire()
                    except BaseException:
                        self._settle(permit, spent=False)  # admitted by the gate, never sent
                        raise
            except BaseException:
                if ledger is not None and admitted is None:
                    ledger.give_back()  # granted, never admitted here (a permit gives back)
                self._give_slot()
                raise
        finally:
            if waited:
                self._waits += 1
                self._wait_seconds += max(0.0, self._clock() - started)
        self._admitted += 1
        self._in_flight += 1
        self._max_in_flight = max(self._max_in_flight, self._in_flight)
        return permit

    async def _pass_gate(self, policy: QuotaPolicy) -> tuple[Permit, bool]:
        waited = self._gate.locked()
        async with self._gate:
            while True:
                now = self._clock()
                step, until = self._decide(policy, now)
                if step is _Step.ADMIT or step is _Step.PROBE:
                    return self._admit(now, probe=step is _Step.PROBE), waited
                waited = True
                if step is _Step.RAISE:
                    self._rejections += 1
                    raise self._exhausted_error()
                if step is _Step.SLEEP:
                    await self._sleep(max(0.0, until - now))
                else:
                    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                    self._answer = fut
                    try:
                        await fut
                    finally:
                        if self._answer is fut:
                            self._answer = None

    def _decide(self, policy: QuotaPolicy, now: float) -> tuple[_Step, float]:
        self._maybe_expire(now)
        if self._known is None:
            return (_Step.ANSWER, 0.0) if self._probe_out else (_Step.PROBE, 0.0)
        budget = self._known - len(self._lost) - policy.reserve
        estimate = budget - self._outstanding
        if budget <= 0:
            if self._expires_at is None:
                # Spent, and the server never said when it resets: re-probe after a backoff.
                self._expires_at = self._read_at + self._next_backoff()
            if policy.on_exhausted == "raise" or self._reset_at is None:
                return _Step.RAISE, 0.0
            wake = self._expires_at + self.RESET_MARGIN
            if wake - now > policy.max_wait:
                return _Step.RAISE, 0.0
            log.info("Arena request quota spent (%d left, reserve %d); waiting %.1f s for the "
                     "reset", self._known - len(self._lost), policy.reserve, wake - now)
            return _Step.SLEEP, wake
        if estimate <= 0:
            return _Step.ANSWER, 0.0  # in-flight answers will settle the estimate
        if policy.pace and self._last_admit_at is not None and self._reset_at is not None \
                and self._expires_at == self._reset_at:
            due = self._last_admit_at + (self._reset_at - self._last_admit_at) / estimate
            if due > now:
                return _Step.SLEEP, due
        return _Step.ADMIT, 0.0

    def _admit(self, now: float, *, probe: bool) -> Permit:
        self._admissions += 1
        self._outstanding += 1
        self._last_admit_at = now
        if probe:
            self._probe_out = True
            log.debug("quota state unknown: admitting one probe request")
        return Permit(self, self._admissions, probe)

    def _exhausted_error(self) -> QuotaExhaustedError:
        resets_at = (datetime.fromtimestamp(self._reset_at, UTC)
                     if self._reset_at is not None else None)
        return QuotaExhaustedError(max(0, (self._known or 0) - len(self._lost)), resets_at)

    # -- window bookkeeping ----------------------------------------------------------
    def _expired(self, now: float) -> bool:
        return self._expires_at is not None and now >= self._expires_at

    def _maybe_expire(self, now: float) -> None:
        if self._known is None or not self._expired(now):
            return
        log.debug("quota window passed its reset time: probing for fresh headers")
        self._expired_reset = self._reset_at
        self._known = None
        self._reset_at = None
        self._expires_at = None
        self._server_min = None
        self._window_mark = self._admissions

    def _next_backoff(self) -> float:
        backoff = self._backoff
        self._backoff = min(self.MAX_BACKOFF, backoff * 2)
        return backoff

    def _adopt(self, permit: Permit, remaining: int, reset_at: float | None, now: float,
               quota: Quota | tuple[int, datetime | None] | None) -> None:
        """Start a new window from a reading the server just gave."""
        self._cover(permit)
        self._known = max(0, remaining)
        self._server_min = remaining
        self._min_mark = self._admissions
        self._window_mark = self._admissions
        self._reset_at = reset_at
        self._read_at = now
        if reset_at is None:
            self._expires_at = None
        elif reset_at > now:
            self._expires_at = reset_at
            self._backoff = self.MIN_BACKOFF
        else:  # the server's reset time is already past by our clock: skew; look again soon
            self._expires_at = now + self._next_backoff()
        if quota is not None:
            self._quota = quota
        log.debug("quota window: %d remaining, reset at %s", remaining, reset_at)

    def observe_reading(self, permit: Permit, remaining: int, resets_at: datetime | None,
                        reset_ts: float | None) -> None:
        """:meth:`Permit.observe_reading` (the pool's 2xx path calls it here directly)."""
        now = self._clock()
        known = self._known
        server_min = self._server_min
        if known is not None and server_min is not None and remaining <= server_min \
                and reset_ts is not None and reset_ts == self._reset_at \
                and (self._expires_at is None or now < self._expires_at) \
                and not permit._settled:
            # The hot path (what _observe does for this case): the same window, and a
            # reading no higher than the lowest so far, from an attempt that was open.
            if remaining < server_min:
                self._server_min = remaining
                self._min_mark = self._admissions
            self._quota = (remaining, resets_at)
            if remaining < known:
                self._known = max(0, remaining)
            if self._lost:
                self._cover(permit)
            self._read_at = now
            if self._ledger is not None:
                self._ledger.ended(remaining, reset_ts)
            permit._settled = True
            self._outstanding -= 1
            if permit._probe:
                self._probe_out = False
            self._wake()
            return
        self._observe_at(permit, remaining, reset_ts, quota=(remaining, resets_at),
                         exhausted=False, now=now)

    def _observe(self, permit: Permit, quota: Quota | None, exhausted: bool) -> None:
        if quota is None:
            self._observe_at(permit, None, None, quota=None, exhausted=exhausted,
                             now=self._clock())
            return
        resets_at = quota.resets_at
        self._observe_at(permit, quota.remaining,
                         resets_at.timestamp() if resets_at is not None else None,
                         quota=quota, exhausted=exhausted, now=self._clock())

    def _observe_at(self, permit: Permit, remaining: int | None, reset_ts: float | None, *,
                    quota: Quota | tuple[int, datetime | None] | None, exhausted: bool,
                    now: float) -> None:
        self._maybe_expire(now)
        if remaining is not None:
            self._reading(permit, remaining, reset_ts, quota=quota, exhausted=exhausted,
                          now=now)
        elif exhausted:
            if self._known is not None:
                self._known = 0
                self._read_at = now
            elif permit._seq > self._window_mark:  # a fresh probe hit the limit
                self._adopt(permit, 0, None, now, None)
        spent = remaining is None and not exhausted
        if self._ledger is not None and not permit._settled:
            self._ledger.ended(remaining, reset_ts, lost=spent, exhausted=exhausted)
        self._settle(permit, spent=spent, report=False)
        self._wake()  # even when already settled: the reading may have changed the budget

    def _reading(self, permit: Permit, remaining: int, reset_at: float | None, *,
                 quota: Quota | tuple[int, datetime | None] | None, exhausted: bool,
                 now: float) -> None:
        fresh = permit._seq > self._window_mark  # sent after this window (or probing) began
        if self._known is None:
            newer = reset_at is not None and (self._expired_reset is None
                                               or reset_at > self._expired_reset)
            if fresh or newer:
                self._adopt(permit, 0 if exhausted else remaining, reset_at, now, quota)
            return
        current = self._reset_at
        if reset_at is not None and current is not None:
            if reset_at < current:
                return  # an answer from an older window
            if reset_at > current:
                log.debug("quota reset recognised: the reset time moved forward")
                self._adopt(permit, 0 if exhausted else remaining, reset_at, now, quota)
                return
        if self._server_min is not None and remaining > self._server_min \
                and permit._seq > self._min_mark:
            # Sent after the lowest reading was received, yet the server reports more:
            # only a reset explains it (in-flight requests can only lower the counter).
            log.debug("quota reset recognised: remaining went up from %d to %d",
                      self._server_min, remaining)
            self._adopt(permit, 0 if exhausted else remaining, reset_at, now, quota)
            return
        if current is None and reset_at is not None and reset_at > now:
            self._reset_at = self._expires_at = reset_at
            self._quota = quota
        if self._server_min is None or remaining <= self._server_min:
            if self._server_min is None or remaining < self._server_min:
                self._server_min = remaining
                self._min_mark = self._admissions
            self._quota = quota
        self._known = max(0, min(self._known, remaining))
        self._cover(permit)
        self._read_at = now
        if exhausted:
            self._known = 0

    def _cover(self, permit: Permit) -> None:
        """A reading from ``permit`` was taken into account: the window's lowest reading now
        includes every lost attempt that ended before ``permit`` was admitted (the counter
        only goes down, so the lowest reading is from a request processed no earlier)."""
        lost = self._lost
        while lost and lost[0] < permit._seq:
            lost.popleft()

    def _settle(self, permit: Permit, *, spent: bool, report: bool = True) -> None:
        if permit._settled:
            return
        if report and self._ledger is not None:  # (else the caller told the ledger)
            if spent:
                self._ledger.ended(None, None, lost=True)
            else:
                self._ledger.give_back()  # never sent: the admission can be used again
        permit._settled = True
        self._outstanding -= 1
        if permit._probe:
            self._probe_out = False
        if spent:  # maybe sent, never heard of: assume spent
            self._lost.append(self._admissions)
        self._wake()

    def _wake(self) -> None:
        """Let the head waiter look at the budget again."""
        answer = self._answer
        if answer is not None and not answer.done():
            answer.set_result(None)
