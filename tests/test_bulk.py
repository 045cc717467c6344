"""bulk(): bounded, streaming, per-key errors, ordered mode, clean cancellation."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator

import pytest

from arena_async.bulk import BulkRun, bulk
from arena_async.models.common import Failure, Outcome, Success


class Gauge:
    def __init__(self) -> None:
        self.now = 0
        self.peak = 0
        self.calls = 0

    async def work(self, key: int) -> int:
        self.calls += 1
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(0 if key % 3 else 0.0005)
            if key % 97 == 0:
                raise ValueError(f"bad key {key}")
            return key * 2
        finally:
            self.now -= 1


async def test_ten_thousand_keys_stay_bounded() -> None:
    gauge = Gauge()
    tasks_seen = 0

    def keys():  # a generator: drawn lazily, never materialised
        yield from range(10_000)

    run = bulk(gauge.work, keys(), concurrency=16)
    got: dict[int, int | None] = {}
    errors = {}
    async for outcome in run:
        tasks_seen = max(tasks_seen, len(asyncio.all_tasks()))
        if outcome.ok:
            got[outcome.key] = outcome.value
        else:
            errors[outcome.key] = outcome.error
    assert run.max_tasks == 16
    assert gauge.peak == 16
    assert tasks_seen <= 16 + 1  # the bulk tasks plus the test's own task
    assert len(got) + len(errors) == 10_000
    assert set(errors) == {k for k in range(10_000) if k % 97 == 0}
    assert all(isinstance(e, ValueError) and str(e) == f"bad key {k}" for k, e in errors.items())
    assert all(v == k * 2 for k, v in got.items())


async def test_ordered_yields_in_key_order() -> None:
    async def slow_head(key: int) -> int:
        await asyncio.sleep(0.01 if key == 0 else 0)
        return key

    keys = list(range(200))
    out = [o.key async for o in bulk(slow_head, keys, concurrency=8, ordered=True)]
    assert out == keys


async def test_async_iterable_keys() -> None:
    async def agen() -> AsyncIterator[str]:
        for k in "abcde":
            yield k

    async def upper(key: str) -> str:
        return key.upper()

    result = {o.key: o.value async for o in bulk(upper, agen(), concurrency=2)}
    assert result == {"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"}


async def test_breaking_out_cancels_running_calls() -> None:
    started: list[int] = []
    cancelled: list[int] = []

    async def hang(key: int) -> int:
        started.append(key)
        if key == 0:
            return 0
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(key)
            raise
        return key

    async with bulk(hang, range(100), concurrency=5) as run:
        async for outcome in run:
            assert outcome.key == 0
            break
    assert sorted(cancelled) == sorted(k for k in started if k != 0)
    assert run.max_tasks == 5
    assert set(started) <= set(range(6))  # five slots, one refilled after key 0 finished
    await asyncio.sleep(0)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_cancelling_the_consumer_cancels_the_calls() -> None:
    async def hang(key: int) -> int:
        await asyncio.sleep(3600)
        return key

    async def consume() -> None:
        async with bulk(hang, range(50), concurrency=4) as run:
            async for _ in run:
                pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


@pytest.mark.parametrize("bad", [0, -1, True, 2.5])
def test_bad_concurrency(bad: object) -> None:
    async def fn(key: int) -> int:
        return key

    with pytest.raises(ValueError, match="concurrency"):
        BulkRun(fn, [1], concurrency=bad)  # type: ignore[arg-type]


def test_string_keys_refused() -> None:
    async def fn(key: str) -> str:
        return key

    with pytest.raises(ValueError, match="keys must be an iterable"):
        bulk(fn, "ABC", concurrency=2)


async def test_few_keys_start_few_tasks() -> None:
    async def double(key: int) -> int:
        await asyncio.sleep(0)
        return key * 2

    run = bulk(double, [1, 2, 3], concurrency=16)
    assert sorted(o.value for o in [o async for o in run]) == [2, 4, 6]  # type: ignore[type-var]
    assert run.max_tasks == 3


async def test_a_slow_consumer_holds_back_the_calls() -> None:
    drawn = 0

    def keys():  # counts what bulk draws
        nonlocal drawn
        for k in range(1000):
            drawn += 1
            yield k

    async def quick(key: int) -> int:
        await asyncio.sleep(0)
        return key

    seen = 0
    async for _ in bulk(quick, keys(), concurrency=4):
        seen += 1
        for _ in range(20):  # the consumer is slow: the calls must not run far ahead
            await asyncio.sleep(0)
        assert drawn - seen <= 2 * 4, (drawn, seen)
    assert seen == 1000


async def test_ordered_with_an_async_source_and_a_slow_head() -> None:
    async def source() -> AsyncIterator[int]:
        for k in range(100):
            await asyncio.sleep(0)
            yield k

    async def slow_head(key: int) -> int:
        await asyncio.sleep(0.005 if key % 25 == 0 else 0)
        return -key

    run = bulk(slow_head, source(), concurrency=6, ordered=True)
    out = [(o.key, o.value) async for o in run]
    assert out == [(k, -k) for k in range(100)]
    assert run.max_tasks == 6


async def test_a_failing_key_source_ends_the_run_after_what_finished() -> None:
    def keys():
        yield from range(10)
        raise OSError("the key file went away")

    async def work(key: int) -> int:
        await asyncio.sleep(0)
        return key

    got: list[int] = []

    async def consume() -> None:
        async for outcome in bulk(work, keys(), concurrency=3):
            got.append(outcome.key)

    with pytest.raises(OSError, match="went away"):
        await consume()
    assert sorted(got) == list(range(10))  # nothing that finished is lost
    await asyncio.sleep(0)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


class Stop(BaseException):
    """Not an Exception: like KeyboardInterrupt, it must end the run, not an outcome."""


async def test_a_base_exception_in_a_call_ends_the_run() -> None:
    async def work(key: int) -> int:
        await asyncio.sleep(0)
        if key == 5:
            raise Stop
        return key

    with pytest.raises(Stop):
        async for _ in bulk(work, range(50), concurrency=4):
            pass
    await asyncio.sleep(0)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_a_call_cancelled_from_inside_cancels_the_run() -> None:
    async def work(key: int) -> int:
        await asyncio.sleep(0)
        if key == 3:
            raise asyncio.CancelledError  # e.g. a library that cancels its own work
        return key

    with pytest.raises(asyncio.CancelledError):
        async for _ in bulk(work, range(20), concurrency=2):
            pass


async def test_a_run_dropped_without_closing_cancels_its_workers() -> None:
    started: list[int] = []

    async def hang(key: int) -> int:
        started.append(key)
        if key:
            await asyncio.sleep(3600)
        return key

    async def consume_and_fail() -> None:
        async for _ in bulk(hang, range(100), concurrency=4):  # no async with, no aclose
            raise ValueError("the consumer fails while the run is suspended at a yield")

    task = asyncio.create_task(consume_and_fail())
    with pytest.raises(ValueError, match="consumer fails"):
        await task
    assert len(asyncio.all_tasks()) > 1  # the workers are still there ...
    gc.collect()  # ... until the abandoned run is collected: asyncio's hook closes it
    for _ in range(5):
        await asyncio.sleep(0)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_no_new_call_starts_once_the_run_is_closing() -> None:
    called: list[int] = []

    async def stubborn(key: int) -> int:
        called.append(key)
        if key == 0:
            return 0
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return key  # swallows the cancellation: its worker must still stop
        return key

    run = bulk(stubborn, range(1000), concurrency=3)
    async for outcome in run:
        assert outcome.key == 0
        break
    before = set(called)
    async with asyncio.timeout(5):  # (before the fix this drew key after key: a hang)
        await run.aclose()
    assert set(called) == before  # aclose() started nothing new
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


# ---------------------------------------------------------------- Outcome: Success | Failure


async def test_outcomes_are_success_or_failure() -> None:
    async def half(key: int) -> int:
        if key % 2:
            raise LookupError(f"odd {key}")
        return key * 10

    seen = {}
    async for outcome in bulk(half, range(6), concurrency=3):
        seen[outcome.key] = outcome
    for key, outcome in seen.items():
        if key % 2:
            assert isinstance(outcome, Failure)
            assert outcome.ok is False
            assert outcome.value is None
            assert isinstance(outcome.error, LookupError)
            assert str(outcome.error) == f"odd {key}"
        else:
            assert isinstance(outcome, Success)
            assert outcome.ok is True
            assert outcome.error is None
            assert outcome.value == key * 10
        assert isinstance(outcome, Outcome)


def test_outcome_constructor_builds_the_fitting_kind() -> None:
    good = Outcome("k", [1], None)
    assert type(good) is Success
    assert (good.key, good.value, good.error, good.ok) == ("k", [1], None, True)
    assert Outcome("k") == Success("k", None)
    exc = KeyError("x")
    bad = Outcome("k", None, exc)
    assert type(bad) is Failure
    assert (bad.key, bad.value, bad.error, bad.ok) == ("k", None, exc, False)
    assert bad == Failure("k", error=exc)
    assert bad != Success("k", None)
    assert repr(bad) == "Failure(key='k', error=KeyError('x'))"
    assert repr(good) == "Success(key='k', value=[1])"
    match bad:
        case Failure(key, error):
            assert (key, error) == ("k", exc)
        case _:
            pytest.fail("Failure did not match its own pattern")


def test_outcome_refuses_both_or_a_non_exception() -> None:
    with pytest.raises(ValueError, match="value or an error, not both"):
        Outcome("k", 1, ValueError())
    with pytest.raises(ValueError, match="must be an Exception, got KeyboardInterrupt"):
        Outcome("k", None, KeyboardInterrupt())
    with pytest.raises(ValueError, match="needs error=<an Exception instance>"):
        Failure("k")
    with pytest.raises(ValueError, match="not both"):
        Success("k", 1, ValueError())  # type: ignore[arg-type]


def test_outcomes_are_immutable() -> None:
    outcome = Success("k", 1)
    with pytest.raises(AttributeError, match="immutable"):
        outcome.value = 2  # type: ignore[misc]
    with pytest.raises(AttributeError):
        outcome.other = 2  # type: ignore[attr-defined]
    assert hash(Success("k", 1)) == hash(Success("k", 1))
