"""The shared per-attempt timer behaves as ``asyncio.timeout`` around each attempt.

An attempt bounded by the pool's ``timeout`` (no deadline) runs on one timer shared by all
attempts (:class:`arena_async._attempt_timer.AttemptTimer`): a slow one is cancelled from
outside and ends in TimeoutError at its own time, the others are untouched, a cancellation
from elsewhere stays a cancellation, and ended attempts are not kept. Plus the pool's use
of it: a slow answer from a real server ends in a TransportError after ``timeout``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from arena_async import ArenaClient, RetryPolicy, TransportError
from arena_async._attempt_timer import AttemptTimer
from arena_async.testing import FakeArena, Fault
from tests.conftest import Stalls


def work(delays: dict[str, float], cut: list[str]) -> Any:
    async def one(name: str) -> str:
        try:
            await asyncio.sleep(delays[name])
        except asyncio.CancelledError:
            cut.append(name)
            raise
        return name
    return one


async def test_a_slow_attempt_times_out_on_time_and_the_others_do_not() -> None:
    delays = {f"fast{i}": 0.01 for i in range(50)} | {"slow": 10.0, "late": 0.05}
    cut: list[str] = []
    attempt = work(delays, cut)
    timer = AttemptTimer(0.1)
    started = time.perf_counter()

    async def one(name: str) -> tuple[str, Any]:
        try:
            return name, await timer.bound(attempt(name))
        except TimeoutError:
            return name, round(time.perf_counter() - started, 2)

    async with Stalls(jitter=0.02) as stalls:
        results = dict(await asyncio.gather(*(one(p) for p in delays)))
    assert 0.1 - 0.05 <= results["slow"] <= 0.1 + 0.05 + stalls.lost(), stalls.gaps
    assert "slow" in cut  # cancelled from outside the work, as asyncio.timeout does
    assert all(results[p] == p for p in delays if p not in cut)
    if not stalls.gaps:
        # The others end in time. (A stall of the process past the budget finds the
        # others' ends and the budget due together, and may cut some, as it would under
        # asyncio.timeout.)
        assert cut == ["slow"]
    assert timer.kept == 0
    assert timer.live == 0


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    timer = AttemptTimer(5.0)
    task = asyncio.create_task(timer.bound(asyncio.sleep(10)))
    await asyncio.sleep(0.01)
    assert timer.live == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert timer.live == 0


async def test_an_outer_timeout_wins_over_the_attempt_timer() -> None:
    timer = AttemptTimer(0.05)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.02) as outer:
            await timer.bound(asyncio.sleep(10))
    assert outer.expired()
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_an_attempt_ended_by_the_timer_leaves_the_task_uncancelled() -> None:
    timer = AttemptTimer(0.02)
    with pytest.raises(TimeoutError):
        await timer.bound(asyncio.sleep(10))
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    assert await timer.bound(asyncio.sleep(0, "next")) == "next"  # the task goes on


async def test_ended_attempts_behind_a_slow_one_are_not_kept() -> None:
    # (a budget no stall of the machine reaches: none of these attempts is to time out)
    timer = AttemptTimer(60.0)
    slow = asyncio.create_task(timer.bound(asyncio.sleep(0.3)))
    await asyncio.sleep(0)
    for _ in range(2000):
        await timer.bound(asyncio.sleep(0))
        assert timer.kept <= 2 * timer.live + 65
    await slow
    assert timer.live == 0


async def test_the_pool_bounds_an_attempt_by_its_timeout() -> None:
    """A slow answer (no deadline given: the shared timer) is a timed-out attempt."""
    async with FakeArena.seeded(items=1, seed=1) as fake, ArenaClient(
            email=fake.email, password=fake.password, base_url=fake.url, timeout=0.2,
            retry=RetryPolicy(max_attempts=1)) as arena:
        guid = fake.item_guids[0]
        await arena.items.tickets.list(guid)
        fake.faults.add(Fault("slow_headers", delay=1.0, times=1, path="/tickets$"))
        async with Stalls() as stalls:
            started = time.perf_counter()
            with pytest.raises(TransportError, match="timed out"):
                await arena.items.tickets.list(guid)
            # (not the answer's 1 s; slack: a loaded machine, and the time it stopped us)
            assert time.perf_counter() - started < 0.8 + stalls.lost(), stalls.gaps
        assert arena.stats.transport_errors == 1
