"""The limiter: concurrency, fixed rate, and the adaptive Arena quota gate.

Waits run on a fake wall clock (``FakeClock`` advances when slept on; ``ManualClock`` only
when the test says so) and a simulated server that counts a quota like Arena does.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import random
from collections import Counter
from datetime import UTC, datetime

import pytest

from arena_async._limiter import Limiter, LimiterStats, Permit
from arena_async.errors import QuotaExhaustedError
from arena_async.models.common import Quota
from arena_async.policies import QuotaPolicy

from .conftest import FakeClock

START = 1_800_000_000.0


def at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


class ManualClock:
    """A wall clock whose sleeps block until the test advances it."""

    def __init__(self, start: float = START) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, fut))
        await fut

    @property
    def sleeping(self) -> int:
        return sum(1 for _, fut in self._sleepers if not fut.done())

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for due, fut in self._sleepers:
            if due <= self.now and not fut.done():
                fut.set_result(None)
        self._sleepers = [s for s in self._sleepers if not s[1].done()]


class OverlapClock(FakeClock):
    """Like FakeClock, but sleeps that overlap in time (several processes) overlap here too."""

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        target = self.now + max(0.0, seconds)
        await asyncio.sleep(0)
        self.now = max(self.now, target)


class SimServer:
    """Arena's quota counter: fixed windows of ``window`` seconds, ``limit`` requests each.

    A request is counted when it is processed; past the limit it would get a quota 429.
    """

    def __init__(self, clock: FakeClock | ManualClock, limit: int, window: float = 86_400.0):
        self.clock = clock
        self.limit = limit
        self.window = window
        self.window_start = clock.now
        self.window_index = 0
        self.remaining = limit
        self.served = 0
        self.refused = 0
        self.per_window: Counter[int] = Counter()

    @property
    def resets_at(self) -> datetime:
        return at(self.window_start + self.window)

    def handle(self) -> tuple[Quota, bool]:
        while self.clock.now >= self.window_start + self.window:
            self.window_start += self.window
            self.window_index += 1
            self.remaining = self.limit
        if self.remaining <= 0:
            self.refused += 1
            return Quota(0, self.resets_at), True
        self.remaining -= 1
        self.served += 1
        self.per_window[self.window_index] += 1
        return Quota(self.remaining, self.resets_at), False


async def yields(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def call(limiter: Limiter, server: SimServer, rng: random.Random,
               answers: list[int] | None = None, *, resend_429: int = 0) -> int:
    """One request the way the pool sends it; answers come back out of order."""
    for _ in range(resend_429 + 1):
        async with limiter.slot() as permit:
            await yields(rng.randrange(2, 30))  # on the way: processed out of admission order
            quota, exhausted = server.handle()
            await yields(rng.randrange(2, 30))  # on the way back: answered out of order
            limiter.observe(permit, quota, exhausted=exhausted)
            if answers is not None:
                answers.append(quota.remaining)
        if not exhausted:
            return quota.remaining
    raise QuotaExhaustedError(quota.remaining, quota.resets_at, status=429)


def policy(**kw: object) -> QuotaPolicy:
    return QuotaPolicy(**kw)  # type: ignore[arg-type]


def make(clock: FakeClock | ManualClock, *, max_concurrency: int = 16,
         quota: QuotaPolicy | None = None, rps: float | None = None) -> Limiter:
    return Limiter(max_concurrency=max_concurrency, requests_per_second=rps,
                   quota=quota if quota is not None else QuotaPolicy(),
                   clock=clock, sleep=clock.sleep)


async def learn(limiter: Limiter, remaining: int, resets_at: datetime | None) -> None:
    async with limiter.slot() as permit:
        limiter.observe(permit, Quota(remaining, resets_at))


# -- construction --------------------------------------------------------------------
@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3", None])
def test_max_concurrency_is_validated(bad: object) -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        Limiter(max_concurrency=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -2.0, math.nan, math.inf, True, "5"])
def test_requests_per_second_is_validated(bad: object) -> None:
    with pytest.raises(ValueError, match="requests_per_second"):
        Limiter(max_concurrency=1, requests_per_second=bad)  # type: ignore[arg-type]


def test_quota_and_limit_are_validated() -> None:
    with pytest.raises(ValueError, match="quota"):
        Limiter(max_concurrency=1, quota="raise")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        Limiter(max_concurrency=1).set_limit(-1)
    limiter = Limiter(max_concurrency=1)
    limiter.set_limit(0)  # a workspace may have no requests at all
    limiter.set_limit(None)


def test_clock_and_sleep_must_be_callables() -> None:
    with pytest.raises(ValueError, match="clock must be a callable"):
        Limiter(max_concurrency=1, clock=5.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sleep must be a coroutine function"):
        Limiter(max_concurrency=1, sleep=5.0)  # type: ignore[arg-type]


def test_a_new_limiter_shows_zeroed_stats_and_its_state_in_its_repr() -> None:
    assert (Limiter.RESET_MARGIN, Limiter.MIN_BACKOFF, Limiter.MAX_BACKOFF) == (0.05, 1.0, 60.0)
    assert Limiter(max_concurrency=1, requests_per_second=2.5).requests_per_second == 2.5
    limiter = Limiter(max_concurrency=3)
    assert limiter.stats == LimiterStats() == LimiterStats(0, 0, 0, 0.0, 0, 0)
    assert repr(limiter) == "<Limiter max_concurrency=3 in_flight=0 estimate=None>"
    permit = limiter.admit_now()
    assert permit is not None
    assert repr(limiter) == "<Limiter max_concurrency=3 in_flight=1 estimate=None>"
    limiter.release(permit)


async def test_admit_now_admits_at_once_when_the_quota_gate_would() -> None:
    limiter = Limiter(max_concurrency=2, quota=QuotaPolicy(reserve=1), clock=lambda: START)
    assert limiter.admit_now() is None  # unknown: the probe goes through slot()
    async with limiter.slot() as permit:
        assert permit.probe
        limiter.observe(permit, Quota(2, at(START + 3600)))
    first = limiter.admit_now()
    assert first is not None
    assert not first.probe
    assert limiter.admit_now() is None  # 2 - 1 in flight - reserve 1: wait for an answer
    limiter.observe(first, Quota(1, at(START + 3600)))
    limiter.release(first)
    assert limiter.estimated_remaining == 1


async def test_no_quota_gate_still_tracks_quota_and_limit() -> None:
    limiter = Limiter(max_concurrency=2)
    assert limiter.quota is None
    assert limiter.estimated_remaining is None
    async with limiter.slot() as permit:
        limiter.observe(permit, None)  # Akana: no headers
    async with limiter.slot() as permit:
        limiter.observe(permit, Quota(7, None))
    limiter.set_limit(10_000)
    assert limiter.quota == Quota(7, None, 10_000)
    assert limiter.stats == LimiterStats(admitted=2, in_flight=0, max_in_flight=1)


# -- concurrency ---------------------------------------------------------------------
async def test_concurrency_is_capped_across_tasks(fake_clock: FakeClock) -> None:
    limiter = Limiter(max_concurrency=3, clock=fake_clock, sleep=fake_clock.sleep)
    inside = 0
    peak = 0

    async def one() -> None:
        nonlocal inside, peak
        async with limiter.slot():
            inside += 1
            peak = max(peak, inside)
            await yields(3)
            inside -= 1

    await asyncio.gather(*(one() for _ in range(20)))
    assert peak == 3
    stats = limiter.stats
    assert (stats.admitted, stats.in_flight, stats.max_in_flight) == (20, 0, 3)
    assert stats.waits == 17


async def test_slots_are_granted_in_fifo_order() -> None:
    limiter = Limiter(max_concurrency=1)
    order: list[int] = []

    async def one(i: int) -> None:
        async with limiter.slot():
            order.append(i)
            await yields(2)

    tasks = []
    for i in range(8):
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == list(range(8))


# -- the quota budget ----------------------------------------------------------------
async def test_raise_admits_exactly_the_budget(fake_clock: FakeClock) -> None:
    server = SimServer(fake_clock, 500)
    limiter = make(fake_clock, max_concurrency=16)
    rng = random.Random(3)
    answers: list[int] = []
    results = await asyncio.gather(*(call(limiter, server, rng, answers) for _ in range(800)),
                                   return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(results) - len(errors) == 500
    assert len(errors) == 300
    assert all(isinstance(e, QuotaExhaustedError) and e.status is None for e in errors)
    assert server.served == 500
    assert server.refused == 0
    assert answers != sorted(answers, reverse=True)  # answers really came out of order
    stats = limiter.stats
    assert (stats.admitted, stats.quota_rejections, stats.in_flight) == (500, 300, 0)
    assert stats.max_in_flight == 16
    assert limiter.estimated_remaining == 0
    assert limiter.quota == Quota(0, server.resets_at)
    assert fake_clock.sleeps == []  # "raise" never waits for the reset


async def test_reserve_is_never_spent(fake_clock: FakeClock) -> None:
    server = SimServer(fake_clock, 500)
    limiter = make(fake_clock, quota=policy(reserve=50))
    rng = random.Random(5)
    results = await asyncio.gather(*(call(limiter, server, rng) for _ in range(600)),
                                   return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 450
    assert server.remaining == 50
    assert server.refused == 0
    with pytest.raises(QuotaExhaustedError) as info:
        async with limiter.slot():
            pass
    assert info.value.remaining == 50
    assert info.value.resets_at == server.resets_at


async def test_wait_spends_every_window_and_never_more(fake_clock: FakeClock) -> None:
    server = SimServer(fake_clock, 200, window=1.0)
    limiter = make(fake_clock, quota=policy(on_exhausted="wait", max_wait=5.0))
    rng = random.Random(7)
    start = fake_clock.now
    results = await asyncio.gather(
        *(call(limiter, server, rng, resend_429=2) for _ in range(1000)), return_exceptions=True
    )
    elapsed = fake_clock.now - start
    assert not [r for r in results if isinstance(r, BaseException)]
    assert server.refused == 0  # nobody admitted beyond the budget of their window
    assert set(server.per_window.values()) == {200}
    assert server.window_index == 4  # five windows
    assert 1000 / elapsed >= 0.95 * 200
    assert limiter.stats.waits > 0
    assert limiter.stats.wait_seconds > 4.0
    # Slept exactly until each reset plus the margin.
    assert fake_clock.sleeps == pytest.approx([1.0 + Limiter.RESET_MARGIN] + [1.0] * 3)


async def test_no_stampede_after_the_reset(fake_clock: FakeClock) -> None:
    server = SimServer(fake_clock, 20, window=10.0)
    limiter = make(fake_clock, quota=policy(on_exhausted="wait", max_wait=60.0))
    rng = random.Random(11)
    await asyncio.gather(*(call(limiter, server, rng) for _ in range(20)))
    events: list[str] = []

    async def one() -> None:
        async with limiter.slot() as permit:
            events.append("admit")
            await yields(3)
            quota, exhausted = server.handle()
            events.append("answer")
            limiter.observe(permit, quota, exhausted=exhausted)

    await asyncio.gather(*(one() for _ in range(16)))
    # The first request after the reset is a lone probe; the rest follow its answer.
    assert events[:3] == ["admit", "answer", "admit"]
    assert server.refused == 0
    assert fake_clock.sleeps == [pytest.approx(10.0 + Limiter.RESET_MARGIN)]


@pytest.mark.parametrize("on_exhausted", ["raise", "wait"])
async def test_processes_sharing_one_quota(fake_clock: FakeClock, on_exhausted: str) -> None:
    concurrency = 8
    server = SimServer(fake_clock, 600)
    rng = random.Random(13)
    limiters = [make(fake_clock, max_concurrency=concurrency,
                     quota=policy(on_exhausted=on_exhausted, max_wait=60.0)) for _ in range(3)]
    calls = [call(lim, server, rng) for _ in range(300) for lim in limiters]
    async with asyncio.timeout(60):  # nobody hangs (a guard, not a speed limit)
        results = await asyncio.gather(*calls, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(e, QuotaExhaustedError) for e in errors)
    assert len(results) - len(errors) == 600 == server.served
    assert server.refused <= 3 * concurrency
    assert fake_clock.sleeps == []  # the reset is a day away: beyond max_wait
    for lim in limiters:
        assert lim.stats.in_flight == 0
        assert lim.estimated_remaining == 0


async def test_quota_429_stops_admission_until_the_reset(fake_clock: FakeClock) -> None:
    limiter = make(fake_clock)
    reset = fake_clock.now + 30
    await learn(limiter, 100, at(reset))
    async with limiter.slot() as permit:
        limiter.observe(permit, Quota(40, at(reset)), exhausted=True)  # others spent it all
    assert limiter.estimated_remaining == 0
    with pytest.raises(QuotaExhaustedError) as info:
        async with limiter.slot():
            pass
    assert info.value.resets_at == at(reset)
    fake_clock.now = reset
    async with limiter.slot() as permit:  # the reset passed: one probe
        assert permit.probe


async def test_wait_beyond_max_wait_or_unknown_reset_raises_at_once(
        fake_clock: FakeClock) -> None:
    limiter = make(fake_clock, quota=policy(on_exhausted="wait", max_wait=60.0))
    await learn(limiter, 0, at(fake_clock.now + 3600))
    with pytest.raises(QuotaExhaustedError):
        async with limiter.slot():
            pass
    limiter = make(fake_clock, quota=policy(on_exhausted="wait", max_wait=60.0))
    await learn(limiter, 0, None)
    with pytest.raises(QuotaExhaustedError) as info:
        async with limiter.slot():
            pass
    assert info.value.resets_at is None
    assert fake_clock.sleeps == []
    assert limiter.stats.quota_rejections == 1


async def test_unknown_reset_is_reprobed_after_a_backoff(fake_clock: FakeClock) -> None:
    limiter = make(fake_clock)
    await learn(limiter, 0, None)
    for _ in range(3):
        with pytest.raises(QuotaExhaustedError):
            async with limiter.slot():
                pass
    fake_clock.now += Limiter.MIN_BACKOFF
    async with limiter.slot() as permit:
        assert permit.probe
        limiter.observe(permit, Quota(0, None), exhausted=True)
    fake_clock.now += Limiter.MIN_BACKOFF  # the backoff doubled
    with pytest.raises(QuotaExhaustedError):
        async with limiter.slot():
            pass
    fake_clock.now += Limiter.MIN_BACKOFF
    async with limiter.slot() as permit:
        assert permit.probe
        limiter.observe(permit, Quota(900, None))
    assert limiter.estimated_remaining == 900


async def test_server_clock_behind_costs_few_429s(fake_clock: FakeClock) -> None:
    """The server still answers with the old window after our clock passed its reset."""
    limiter = make(fake_clock, quota=policy(on_exhausted="wait", max_wait=60.0))
    reset = fake_clock.now + 5
    await learn(limiter, 0, at(reset))
    refused = 0
    for _ in range(3):  # the server resets 3 s late
        async with limiter.slot() as permit:
            assert permit.probe
            if fake_clock.now < reset + 3.0:
                refused += 1
                limiter.observe(permit, Quota(0, at(reset)), exhausted=True)
            else:
                limiter.observe(permit, Quota(999, at(reset + 86_400)))
    assert refused == 2
    assert fake_clock.sleeps == pytest.approx([5.05, 1.05, 2.05])
    assert limiter.estimated_remaining == 999


async def test_unsent_gives_the_budget_back(fake_clock: FakeClock) -> None:
    limiter = make(fake_clock)
    await learn(limiter, 2, at(fake_clock.now + 60))
    async with limiter.slot() as permit:
        assert limiter.estimated_remaining == 1
        limiter.end(permit, spent=False)
        assert limiter.estimated_remaining == 2
    assert limiter.estimated_remaining == 2
    async with limiter.slot():
        pass  # neither observed nor unsent: counted as spent
    assert limiter.estimated_remaining == 1
    async with limiter.slot() as permit:
        limiter.observe(permit, None)  # sent, no headers: spent
    assert limiter.estimated_remaining == 0
    with pytest.raises(QuotaExhaustedError):
        async with limiter.slot():
            pass


async def test_unsent_lets_a_waiting_request_in(fake_clock: FakeClock) -> None:
    limiter = make(fake_clock)
    await learn(limiter, 1, at(fake_clock.now + 60))
    second_cm = limiter.slot()
    async with limiter.slot() as first:
        waiter = asyncio.create_task(second_cm.__aenter__())
        await yields(3)
        assert not waiter.done()  # the estimate is 0 while the first is in flight
        limiter.end(first, spent=False)
        second = await waiter
    assert isinstance(second, Permit)
    limiter.observe(second, Quota(0, at(fake_clock.now + 60)))
    await second_cm.__aexit__(None, None, None)
    assert limiter.estimated_remaining == 0
    assert limiter.stats.in_flight == 0


async def test_a_lost_attempt_counts_until_a_later_reading_includes_it(
        fake_clock: FakeClock) -> None:
    limiter = make(fake_clock)
    reset = at(fake_clock.now + 60)
    await learn(limiter, 10, reset)
    async with limiter.slot() as early, limiter.slot() as lost:
        limiter.observe(lost, None)  # sent, answer lost: the server may have counted it
        assert limiter.estimated_remaining == 8
        limiter.observe(early, Quota(9, reset))  # processed before `lost`: does not include it
        assert limiter.estimated_remaining == 8
    async with limiter.slot() as later:  # sent after `lost` ended: its reading includes it
        limiter.observe(later, Quota(7, reset))
    assert limiter.estimated_remaining == 7


# -- the estimate ---------------------------------------------------------------------
async def test_stale_headers_do_not_raise_the_estimate(fake_clock: FakeClock) -> None:
    limiter = make(fake_clock)
    reset = at(fake_clock.now + 3600)
    await learn(limiter, 100, reset)
    async with contextlib.AsyncExitStack() as stack:
        p1, p2, p3 = [await stack.enter_async_context(limiter.slot()) for _ in range(3)]
        assert limiter.estimated_remaining == 97
        limiter.observe(p3, Quota(97, reset))  # processed last, answered first
        assert limiter.estimated_remaining == 95  # p1 and p2 are still counted (twice)
        limiter.observe(p1, Quota(99, reset))  # stale and higher: ignored
        assert limiter.estimated_remaining == 96
        assert limiter.quota == Quota(97, reset)
        limiter.observe(p2, Quota(98, reset))
        assert limiter.estimated_remaining == 97
    async with limiter.slot() as permit:
        limiter.observe(permit, Quota(40, reset))  # another process spends the same quota
    assert limiter.estimated_remaining == 40
    assert limiter.quota == Quota(40, reset)


async def test_reset_recognised_when_the_reset_time_moves_forward(
        fake_clock: FakeClock) -> None:
    limiter = make(fake_clock)
    reset = fake_clock.now  # the window's reset time has come (before it: the same window)
    await learn(limiter, 5, at(reset))
    async with limiter.slot() as old, limiter.slot() as new:
        limiter.observe(new, Quota(1000, at(reset + 86_400)))
        assert limiter.estimated_remaining == 999  # `old` still counted
        limiter.observe(old, Quota(3, at(reset)))  # an answer from the older window: ignored
    assert limiter.estimated_remaining == 1000
    assert limiter.quota == Quota(1000, at(reset + 86_400))


async def test_reset_recognised_when_remaining_jumps_up(fake_clock: FakeClock) -> None:
    limiter = make(fake_clock)
    await learn(limiter, 10, None)  # the reset header could not be parsed
    async with limiter.slot() as before:
        async with limiter.slot() as reading:
            limiter.observe(reading, Quota(8, None))
        # `before` was in flight when 8 was read: 9 can be explained; it is stale.
        limiter.observe(before, Quota(9, None))
    assert limiter.estimated_remaining == 8
    async with limiter.slot() as after:  # sent after the reading of 8 came back
        limiter.observe(after, Quota(5000, None))
    assert limiter.estimated_remaining == 5000


async def test_reset_recognised_when_the_clock_passes_it(fake_clock: FakeClock) -> None:
    limiter = make(fake_clock)
    reset = fake_clock.now + 60
    await learn(limiter, 50, at(reset))
    fake_clock.now = reset
    assert limiter.estimated_remaining is None
    second_cm = limiter.slot()
    async with limiter.slot() as probe:
        assert probe.probe
        second = asyncio.create_task(second_cm.__aenter__())
        await yields(5)
        assert not second.done()  # one probe at a time
        # The old window's answer from the probe itself:
        limiter.observe(probe, Quota(3, at(reset)))
    permit = await second                   # the server's truth, fresh
    assert not permit.probe
    assert limiter.estimated_remaining == 2
    await second_cm.__aexit__(None, None, None)
    assert limiter.stats.in_flight == 0


async def test_old_answers_after_the_reset_time_are_ignored(fake_clock: FakeClock) -> None:
    limiter = make(fake_clock)
    reset = fake_clock.now + 60
    await learn(limiter, 50, at(reset))
    async with limiter.slot() as old:
        fake_clock.now = reset + 1
        limiter.observe(old, Quota(0, at(reset)), exhausted=True)  # sent before the reset
    async with limiter.slot() as permit:
        assert permit.probe  # still unknown: the old answer told nothing about now
        limiter.observe(permit, Quota(700, at(reset + 86_400)))
    assert limiter.estimated_remaining == 700


# -- pacing ---------------------------------------------------------------------------
@pytest.mark.parametrize("reserve", [0, 20])
async def test_pace_spreads_the_rest_until_the_reset(fake_clock: FakeClock,
                                                     reserve: int) -> None:
    server = SimServer(fake_clock, 100, window=1000.0)
    limiter = make(fake_clock, max_concurrency=4, quota=policy(pace=True, reserve=reserve))
    admissions: list[tuple[float, int]] = []
    reset = server.window_start + server.window

    async def one() -> None:
        async with limiter.slot() as permit:
            admitted_at = fake_clock.now  # before yielding: the next pace sleep moves the clock
            await yields(2)
            quota, exhausted = server.handle()
            admissions.append((admitted_at, quota.remaining))
            limiter.observe(permit, quota, exhausted=exhausted)

    await asyncio.gather(*(one() for _ in range(60)))
    assert server.refused == 0
    admissions.sort()
    for (t_prev, left), (t, _) in itertools.pairwise(admissions):
        expected = (reset - t_prev) / (left - reserve)
        assert t - t_prev == pytest.approx(expected, rel=0.10)
    assert admissions[-1][0] < reset


# -- cancellation ---------------------------------------------------------------------
async def test_cancel_while_waiting_for_a_slot() -> None:
    clock = ManualClock()
    limiter = make(clock, max_concurrency=1)
    await learn(limiter, 100, at(clock.now + 3600))
    async with limiter.slot():
        waiter = asyncio.create_task(limiter.slot().__aenter__())
        await yields(3)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
    async with asyncio.timeout(10):  # (a hang guard)
        async with limiter.slot() as permit:
            limiter.observe(permit, Quota(99, at(clock.now + 3600)))
    assert limiter.stats.in_flight == 0
    assert limiter.estimated_remaining == 99


async def test_cancel_while_waiting_for_the_reset() -> None:
    clock = ManualClock()
    limiter = make(clock, max_concurrency=4, quota=policy(on_exhausted="wait", max_wait=60.0))
    await learn(limiter, 0, at(clock.now + 30))
    head = asyncio.create_task(limiter.slot().__aenter__())
    behind = asyncio.create_task(limiter.slot().__aenter__())
    await yields(5)
    assert clock.sleeping == 1  # only the head sleeps; the other queues behind it
    head.cancel()
    await yields(5)
    assert clock.sleeping == 1  # the next in line took over the wait
    behind.cancel()
    for task in (head, behind):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert limiter.stats.in_flight == 0
    clock.advance(31)
    async with asyncio.timeout(10):  # (a hang guard)
        async with limiter.slot() as permit:  # admitted at once, as the probe
            assert permit.probe
            limiter.observe(permit, Quota(500, at(clock.now + 86_400)))
    assert clock.sleeping == 0
    assert limiter.estimated_remaining == 500


async def test_cancel_while_waiting_for_the_probe_answer() -> None:
    clock = ManualClock()
    limiter = make(clock)
    probe_cm = limiter.slot()
    probe = await probe_cm.__aenter__()
    waiter = asyncio.create_task(limiter.slot().__aenter__())
    await yields(3)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    limiter.observe(probe, Quota(10, at(clock.now + 60)))
    await probe_cm.__aexit__(None, None, None)
    async with asyncio.timeout(10), limiter.slot() as permit:  # (a hang guard)
        assert not permit.probe
    assert limiter.stats.in_flight == 0


async def test_cancel_while_waiting_for_pace() -> None:
    clock = ManualClock()
    limiter = make(clock, max_concurrency=1, quota=policy(pace=True))
    await learn(limiter, 10, at(clock.now + 100))  # next admission 10 s after the first
    paced = asyncio.create_task(limiter.slot().__aenter__())
    await yields(3)
    assert clock.sleeps == [pytest.approx(10.0)]
    paced.cancel()
    with pytest.raises(asyncio.CancelledError):
        await paced
    clock.advance(10)
    async with asyncio.timeout(10), limiter.slot() as permit:  # (a hang guard)
        limiter.observe(permit, Quota(9, at(clock.now + 90)))
    assert len(clock.sleeps) == 1
    assert limiter.stats.in_flight == 0
    assert limiter.estimated_remaining == 9


async def test_cancel_inside_the_block_returns_the_slot() -> None:
    clock = ManualClock()
    limiter = make(clock, max_concurrency=1)
    await learn(limiter, 10, at(clock.now + 60))
    entered = asyncio.Event()

    async def body() -> None:
        async with limiter.slot():
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(body())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limiter.stats.in_flight == 0
    assert limiter.estimated_remaining == 9  # maybe sent: counted as spent
    async with asyncio.timeout(10), limiter.slot():  # (a hang guard)
        pass


async def test_cancel_while_waiting_for_the_rate() -> None:
    clock = ManualClock()
    limiter = make(clock, max_concurrency=2, rps=5.0)
    await learn(limiter, 10, at(clock.now + 60))  # uses the rate's one token
    waiter = asyncio.create_task(limiter.slot().__aenter__())
    await yields(3)
    assert limiter.estimated_remaining == 9  # admitted by the quota gate, waiting for rate
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert limiter.estimated_remaining == 10
    assert limiter.stats.in_flight == 0


# -- the fixed rate -------------------------------------------------------------------
class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time: when nothing is ready, the clock jumps to the next
    timer instead of blocking, so timer-driven waits (aiolimiter's) take no real time.

    Each turn of the loop also moves the clock by 1 ns, as a real clock would: aiolimiter
    re-arms a timer for a float remainder of 1e-17 s and would otherwise spin forever."""

    TICK = 1e-9

    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        select = self._selector.select  # type: ignore[attr-defined]

        def virtual_select(timeout: float | None = None) -> list[object]:
            events = select(0)
            if timeout is None:
                raise RuntimeError("the loop would block forever: nothing is scheduled")
            self.now += self.TICK if events or timeout <= 0 else timeout
            return events  # type: ignore[no-any-return]

        self._selector.select = virtual_select  # type: ignore[attr-defined]

    def time(self) -> float:
        return self.now


def test_requests_per_second_spaces_admissions() -> None:
    loop = VirtualTimeLoop()

    async def scenario() -> tuple[list[float], LimiterStats]:
        limiter = Limiter(max_concurrency=8, requests_per_second=50.0, clock=loop.time)
        times: list[float] = []

        async def one() -> None:
            async with limiter.slot():
                times.append(loop.time())

        await asyncio.gather(*(one() for _ in range(6)))
        return times, limiter.stats

    try:
        times, stats = loop.run_until_complete(scenario())
    finally:
        loop.close()
    # Exactly 1/50 s apart on the loop clock: the first at once, no burst, no extra wait.
    assert times[0] == pytest.approx(0.0, abs=1e-6)
    assert [round(b - a, 6) for a, b in itertools.pairwise(times)] == [0.02] * 5
    # Five of the six waited, 0.02 + 0.04 + ... + 0.10 s in all (the clock is the loop's).
    assert stats.waits == 5
    assert stats.wait_seconds == pytest.approx(0.3, abs=1e-6)
    assert (stats.admitted, stats.in_flight, stats.max_in_flight) == (6, 0, 1)


def test_a_slower_rate_spaces_further() -> None:
    loop = VirtualTimeLoop()

    async def scenario() -> list[float]:
        limiter = Limiter(max_concurrency=2, requests_per_second=4.0, clock=loop.time)
        times: list[float] = []

        async def one() -> None:
            async with limiter.slot():
                times.append(loop.time())

        await asyncio.gather(*(one() for _ in range(3)))
        return times

    try:
        times = loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert [round(t, 6) for t in times] == [0.0, 0.25, 0.5]


# -- quota edges -----------------------------------------------------------------------
async def test_a_quota_429_without_headers_spends_the_known_budget(
        fake_clock: FakeClock) -> None:
    limiter = make(fake_clock)
    await learn(limiter, 100, at(fake_clock.now + 30))
    async with limiter.slot() as permit:
        limiter.observe(permit, None, exhausted=True)  # a 429 (code 4084) with no quota headers
    assert limiter.estimated_remaining == 0
    with pytest.raises(QuotaExhaustedError) as info:
        async with limiter.slot():
            pass
    assert info.value.remaining == 0
    assert info.value.resets_at == at(fake_clock.now + 30)  # the reset learnt before
    assert limiter.stats.quota_rejections == 1


async def test_a_probe_meeting_a_quota_429_without_headers_stops_admission(
        fake_clock: FakeClock) -> None:
    limiter = make(fake_clock, quota=policy(on_exhausted="wait", max_wait=60.0))
    async with limiter.slot() as permit:
        assert permit.probe  # nothing known yet
        limiter.observe(permit, None, exhausted=True)
    assert limiter.estimated_remaining == 0
    with pytest.raises(QuotaExhaustedError) as info:  # no reset known: no wait either
        async with limiter.slot():
            pass
    assert info.value.resets_at is None
    assert fake_clock.sleeps == []


async def test_a_non_quota_failure_without_headers_counts_as_spent(
        fake_clock: FakeClock) -> None:
    limiter = make(fake_clock)
    await learn(limiter, 10, at(fake_clock.now + 30))
    async with limiter.slot() as permit:
        limiter.observe(permit, None)  # an answer without quota headers: spent, amount unknown
    assert limiter.estimated_remaining == 9


@pytest.mark.parametrize(("max_wait", "waits"), [(10.05, True), (10.04, False)])
async def test_max_wait_is_inclusive(max_wait: float, waits: bool) -> None:
    clock = FakeClock(start=0.0)  # small numbers: the sums below are exact
    limiter = make(clock, quota=policy(on_exhausted="wait", max_wait=max_wait))
    await learn(limiter, 0, at(10.0))  # spent; resets in 10 s: the wait is 10 + 0.05 s
    if waits:
        async with limiter.slot() as permit:
            assert permit.probe  # after the reset: one probe
        assert clock.sleeps == [10.0 + Limiter.RESET_MARGIN]
        assert (limiter.stats.waits, limiter.stats.wait_seconds) == (1, 10.05)
        assert limiter.stats.quota_rejections == 0
    else:
        with pytest.raises(QuotaExhaustedError):
            async with limiter.slot():
                pass
        assert clock.sleeps == []
        assert limiter.stats.quota_rejections == 1
        assert limiter.stats.waits == 0  # refused at once: a rejection, not a wait
        assert limiter.stats.wait_seconds == 0.0


async def test_an_admission_without_waiting_is_not_counted_as_a_wait(
        fake_clock: FakeClock) -> None:
    limiter = make(fake_clock)
    await learn(limiter, 5, at(fake_clock.now + 30))
    async with limiter.slot():
        pass
    assert (limiter.stats.admitted, limiter.stats.waits, limiter.stats.wait_seconds) == (
        2, 0, 0.0)


async def test_processes_waiting_through_resets_share_the_quota() -> None:
    clock = OverlapClock()
    concurrency = 8
    server = SimServer(clock, 100, window=1.0)
    rng = random.Random(17)
    limiters = [make(clock, max_concurrency=concurrency,
                     quota=policy(on_exhausted="wait", max_wait=5.0)) for _ in range(3)]
    calls = [call(lim, server, rng, resend_429=2) for _ in range(200) for lim in limiters]
    async with asyncio.timeout(60):  # a hang guard
        results = await asyncio.gather(*calls, return_exceptions=True)
    assert not [r for r in results if isinstance(r, BaseException)]
    assert server.served == 600
    assert set(server.per_window.values()) == {100}  # every window spent, six windows
    assert server.refused <= 3 * concurrency * len(server.per_window)


async def test_hold_until_delays_every_admission_and_cancels_cleanly(
        fake_clock: FakeClock) -> None:
    limiter = Limiter(max_concurrency=2, clock=fake_clock, sleep=fake_clock.sleep)
    start = fake_clock()
    limiter.hold_until(start + 3.0)
    limiter.hold_until(start + 1.0)  # an earlier ask never shortens a hold
    async with limiter.slot():
        assert fake_clock() == pytest.approx(start + 3.0)
    assert limiter.stats.waits == 1
    limiter.hold_until(fake_clock() + 3600)

    async def admit() -> None:
        async with limiter.slot():
            pass

    task = asyncio.create_task(admit())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limiter.stats.in_flight == 0


# -- boundaries of the waits (mutation survivors) -------------------------------------
async def test_a_sub_second_hold_is_slept_exactly(fake_clock: FakeClock) -> None:
    limiter = make(fake_clock)
    await learn(limiter, 100, at(fake_clock.now + 3600))
    limiter.hold_until(fake_clock.now + 0.25)
    async with limiter.slot():
        pass
    assert fake_clock.sleeps == [pytest.approx(0.25)]
    assert limiter.stats.waits == 1


async def test_a_wait_cancelled_during_a_hold_is_still_counted() -> None:
    clock = ManualClock()
    limiter = make(clock)
    limiter.hold_until(clock.now + 5)
    waiter = asyncio.create_task(limiter.slot().__aenter__())
    await yields(3)
    assert clock.sleeping == 1
    clock.now += 2  # two seconds into the hold, the caller gives up
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert (limiter.stats.waits, limiter.stats.wait_seconds) == (1, 2.0)
    assert limiter.stats.in_flight == 0


async def test_a_sub_second_wait_for_the_reset_is_slept_exactly(fake_clock: FakeClock) -> None:
    limiter = make(fake_clock, quota=policy(on_exhausted="wait", max_wait=60.0))
    await learn(limiter, 0, at(fake_clock.now + 0.5))
    async with limiter.slot() as permit:
        assert permit.probe  # after the reset: one probe
    assert fake_clock.sleeps == [pytest.approx(0.5 + Limiter.RESET_MARGIN)]


async def test_a_clock_stepping_back_never_makes_a_wait_negative() -> None:
    clock = ManualClock()
    limiter = make(clock, max_concurrency=1)
    async with limiter.slot():
        waiter = asyncio.create_task(limiter.slot().__aenter__())
        await yields(3)
        clock.now -= 30  # the wall clock is set back while the waiter waits
    permit = await waiter
    limiter.release(permit)
    assert (limiter.stats.waits, limiter.stats.wait_seconds) == (1, 0.0)


async def test_the_spent_quota_wait_is_logged_at_the_reserve_exactly(
        fake_clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    limiter = make(fake_clock, quota=policy(reserve=3, on_exhausted="wait", max_wait=60.0))
    await learn(limiter, 3, at(fake_clock.now + 10))
    with caplog.at_level(logging.INFO, logger="arena_async._limiter"):
        async with limiter.slot():
            pass
    assert [r.getMessage() for r in caplog.records] == [
        "Arena request quota spent (3 left, reserve 3); waiting 10.0 s for the reset"]


async def test_pacing_sleeps_are_not_logged_as_a_spent_quota(
        fake_clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    limiter = make(fake_clock, quota=policy(pace=True))
    await learn(limiter, 100, at(fake_clock.now + 100))
    with caplog.at_level(logging.INFO, logger="arena_async._limiter"):
        async with limiter.slot():
            pass
    assert fake_clock.sleeps == [pytest.approx(1.0)]
    assert caplog.records == []


# -- the share's ledger: every admission it grants is reported or given back -----------
class RecordingLedger:
    """The limiter's side of :class:`SharedLedger` (take_now / take / give_back / ended),
    recording each call: what the limiter owes the ledger, without a share behind it."""

    def __init__(self, *, at_hand: bool = False, waited: bool = False,
                 refuse: bool = False) -> None:
        self.at_hand = at_hand
        self.waited = waited
        self.refuse = refuse
        self.calls: list[object] = []

    def take_now(self) -> bool:
        self.calls.append("take_now")
        return self.at_hand

    async def take(self) -> bool:
        self.calls.append("take")
        if self.refuse:
            raise QuotaExhaustedError(0, None)
        return self.waited

    def give_back(self) -> None:
        self.calls.append("give_back")

    def current(self) -> bool:
        return True

    def ended(self, remaining: int | None, reset_at: float | None, *, lost: bool = False,
              exhausted: bool = False) -> None:
        self.calls.append(("ended", remaining, lost, exhausted))


def with_ledger(limiter: Limiter, ledger: RecordingLedger) -> Limiter:
    limiter.attach_ledger(ledger)  # type: ignore[arg-type]
    return limiter


async def test_a_ledger_refusal_is_a_quota_rejection_and_frees_the_slot(
        fake_clock: FakeClock) -> None:
    limiter = with_ledger(make(fake_clock, max_concurrency=1), RecordingLedger(refuse=True))
    with pytest.raises(QuotaExhaustedError):
        async with limiter.slot():
            pass
    assert limiter.stats.quota_rejections == 1
    assert limiter.stats.in_flight == 0
    assert limiter.admit_now() is None  # the ledger has nothing at hand; the slot is free


async def test_a_wait_for_the_ledger_counts_as_a_wait(fake_clock: FakeClock) -> None:
    limiter = Limiter(max_concurrency=4, clock=fake_clock, sleep=fake_clock.sleep)
    ledger = RecordingLedger(waited=True)
    with_ledger(limiter, ledger)
    async with limiter.slot() as permit:
        limiter.observe(permit, Quota(10, None))
    assert limiter.stats.waits == 1
    assert ledger.calls == ["take_now", "take", ("ended", 10, False, False)]


async def test_a_grant_the_local_gate_refuses_goes_back_to_the_ledger(
        fake_clock: FakeClock) -> None:
    limiter = make(fake_clock)
    await learn(limiter, 0, at(fake_clock.now + 3600))  # spent, by this process's reading
    ledger = RecordingLedger()
    with_ledger(limiter, ledger)
    with pytest.raises(QuotaExhaustedError):
        async with limiter.slot():
            pass
    assert ledger.calls == ["take", "give_back"]


async def test_an_admission_never_sent_or_never_answered_is_reported_to_the_ledger(
        fake_clock: FakeClock) -> None:
    limiter = Limiter(max_concurrency=4, clock=fake_clock, sleep=fake_clock.sleep)
    ledger = RecordingLedger(at_hand=True)
    with_ledger(limiter, ledger)
    async with limiter.slot() as permit:
        limiter.end(permit, spent=False)
    async with limiter.slot():
        pass  # left without a report: maybe sent
    assert ledger.calls == ["take_now", "give_back", "take_now", ("ended", None, True, False)]


async def test_a_grant_cancelled_in_the_rate_wait_goes_back_once() -> None:
    limiter = Limiter(max_concurrency=4, requests_per_second=1.0)  # aiolimiter: loop time
    ledger = RecordingLedger(at_hand=False)
    with_ledger(limiter, ledger)
    async with limiter.slot() as permit:  # takes the one request of this second
        limiter.observe(permit, Quota(10, None))
    ledger.calls.clear()
    waiter = asyncio.create_task(limiter.slot().__aenter__())
    await yields(5)  # granted by the ledger, admitted, now waiting for the rate
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert ledger.calls == ["take", "give_back"]  # (admit_now never runs with a rate)
    assert limiter.stats.in_flight == 0


async def test_a_permit_shows_its_number_kind_and_state() -> None:
    limiter = Limiter(max_concurrency=2, quota=QuotaPolicy(), clock=lambda: START)
    async with limiter.slot() as probe:
        assert repr(probe) == "<Permit #1 probe open>"
        limiter.report(probe, remaining=10, reset_ts=START + 60,  # a 2xx answer's reading
                       quota=(10, at(START + 60), START + 60))
        assert repr(probe) == "<Permit #1 probe settled>"
    assert limiter.quota == Quota(10, at(START + 60))
    assert limiter.estimated_remaining == 10
    permit = limiter.admit_now()
    assert permit is not None
    assert repr(permit) == "<Permit #2 open>"
    limiter.release(permit)  # no report: counted as spent
    assert repr(permit) == "<Permit #2 settled>"
    assert limiter.estimated_remaining == 9


async def test_admit_now_admits_at_the_end_of_a_hold_exactly() -> None:
    clock = ManualClock()
    limiter = Limiter(max_concurrency=2, clock=clock, sleep=clock.sleep)
    limiter.hold_until(clock.now + 2)
    assert limiter.admit_now() is None  # held
    clock.now += 2
    permit = limiter.admit_now()  # the hold ends now: admitted at once
    assert permit is not None
    assert not permit.probe  # no quota policy: nothing to probe
    limiter.release(permit)
    async with limiter.slot() as again:
        assert not again.probe
    paced = Limiter(max_concurrency=1, requests_per_second=1000.0)  # never admitted at once
    async with paced.slot() as waited:
        assert not waited.probe
        assert repr(waited) == "<Permit #1 open>"


async def test_a_permit_reports_once_a_late_unsent_is_ignored(fake_clock: FakeClock) -> None:
    limiter = make(fake_clock)
    await learn(limiter, 10, at(fake_clock.now + 3600))
    ledger = RecordingLedger(at_hand=True)
    with_ledger(limiter, ledger)
    async with limiter.slot() as permit:
        limiter.observe(permit, Quota(9, at(fake_clock.now + 3600)))
        limiter.end(permit, spent=False)  # already reported: nothing more happens
    assert limiter.estimated_remaining == 9
    assert ledger.calls == ["take_now", ("ended", 9, False, False)]
