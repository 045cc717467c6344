"""The pool's shared per-attempt timer behaves as ``asyncio.timeout`` around each attempt.

An attempt bounded by the pool's ``timeout`` (no deadline) runs on one timer shared by all
attempts (``SessionPool._timed_transmit``): a slow one is cancelled from outside
``_transmit`` and ends in TimeoutError at its own time, the others are untouched, a
cancellation from elsewhere stays a cancellation, and ended attempts are not kept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import pytest

from arena_async import RetryPolicy
from arena_async._limiter import Limiter
from arena_async._pool import Response, SessionPool
from arena_async._protocol import Request


def pool_with(delays: dict[str, float], timeout: float = 0.1) -> tuple[SessionPool, list[str]]:
    pool = SessionPool(auth=object(), limiter=Limiter(max_concurrency=1000),  # type: ignore[arg-type]
                       retry=RetryPolicy(), timeout=timeout)
    cut: list[str] = []

    async def transmit(request: Request, auth: Mapping[str, str]) -> Response:
        try:
            await asyncio.sleep(delays[request.path])
        except asyncio.CancelledError:
            cut.append(request.path)
            raise
        return Response(200, {}, b"")

    pool._transmit = transmit  # type: ignore[method-assign]
    return pool, cut


def req(path: str) -> Request:
    return Request("GET", f"http://127.0.0.1:1{path}", path)


async def test_a_slow_attempt_times_out_on_time_and_the_others_do_not() -> None:
    delays = {f"/fast{i}": 0.01 for i in range(50)} | {"/slow": 10.0, "/late": 0.05}
    pool, cut = pool_with(delays, timeout=0.1)
    started = time.perf_counter()

    async def one(path: str) -> tuple[str, Any]:
        try:
            return path, await pool._timed_transmit(req(path), {})
        except TimeoutError:
            return path, round(time.perf_counter() - started, 2)

    results = dict(await asyncio.gather(*(one(p) for p in delays)))
    assert results["/slow"] == pytest.approx(0.1, abs=0.05)
    assert all(isinstance(results[p], Response) for p in delays if p != "/slow")
    assert cut == ["/slow"]  # cancelled from outside _transmit, as asyncio.timeout does
    assert len(pool._deadlines._queue) == 0
    assert pool._deadlines._live == 0


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    pool, _ = pool_with({"/slow": 10.0}, timeout=5.0)
    task = asyncio.create_task(pool._timed_transmit(req("/slow"), {}))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pool._deadlines._live == 0


async def test_an_outer_timeout_wins_over_the_attempt_timer() -> None:
    pool, _ = pool_with({"/slow": 10.0}, timeout=0.05)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.02) as outer:
            await pool._timed_transmit(req("/slow"), {})
    assert outer.expired()
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_ended_attempts_behind_a_slow_one_are_not_kept() -> None:
    delays = {"/slow": 0.3} | {f"/fast{i}": 0.0 for i in range(2000)}
    pool, _ = pool_with(delays, timeout=1.0)
    slow = asyncio.create_task(pool._timed_transmit(req("/slow"), {}))
    await asyncio.sleep(0)
    for i in range(2000):
        await pool._timed_transmit(req(f"/fast{i}"), {})
        assert len(pool._deadlines._queue) <= 2 * pool._deadlines._live + 65
    await slow
    assert pool._deadlines._live == 0
