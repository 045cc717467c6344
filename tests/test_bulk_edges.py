"""bulk() at its edges: one worker (``concurrency=1``), and how far it runs ahead of a
slow consumer (the window), for plain and async key iterables, ordered or not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from arena_async.bulk import BulkRun, bulk


class Recorder:
    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.started: list[int] = []

    async def work(self, key: int) -> int:
        self.started.append(key)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            for _ in range(3 - key % 3):  # uneven durations: a later key could overtake
                await asyncio.sleep(0)
            if key == 4:
                raise ValueError("four")
            return key * 10
        finally:
            self.running -= 1


async def async_keys(n: int) -> AsyncIterator[int]:
    for key in range(n):
        await asyncio.sleep(0)
        yield key


@pytest.mark.parametrize("ordered", [False, True])
@pytest.mark.parametrize("source", ["list", "generator", "async"])
async def test_one_worker_runs_every_key_in_turn(ordered: bool, source: str) -> None:
    rec = Recorder()
    keys = {"list": lambda: list(range(8)), "generator": lambda: (k for k in range(8)),
            "async": lambda: async_keys(8)}[source]()
    run = bulk(rec.work, keys, concurrency=1, ordered=ordered)
    outcomes = [o async for o in run]
    assert [o.key for o in outcomes] == list(range(8))  # one at a time: key order
    assert rec.started == list(range(8))
    assert rec.peak == 1
    assert run.max_tasks == 1
    assert [o.value for o in outcomes if o.ok] == [k * 10 for k in range(8) if k != 4]
    [failed] = [o for o in outcomes if not o.ok]
    assert failed.key == 4
    assert str(failed.error) == "four"


@pytest.mark.parametrize(("concurrency", "ordered", "ahead"),
                         [(1, False, 2), (1, True, 4), (3, False, 6), (3, True, 12)])
async def test_a_slow_consumer_holds_the_run_within_its_window(
        concurrency: int, ordered: bool, ahead: int) -> None:
    calls: list[int] = []

    async def quick(key: int) -> int:
        calls.append(key)
        return key

    run = bulk(quick, range(1000), concurrency=concurrency, ordered=ordered)
    first = await anext(run)
    assert first.key == 0
    for _ in range(50):  # the consumer dawdles: the run may not get further ahead
        await asyncio.sleep(0)
    # Keys drawn and not yet handed over stay under concurrency x 2 (x 4 ordered).
    assert len(calls) == ahead + 1
    await run.aclose()


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2", None])
def test_concurrency_must_be_a_positive_integer(bad: object) -> None:
    async def fn(key: int) -> int:
        return key

    with pytest.raises(ValueError, match="concurrency must be an integer >= 1"):
        bulk(fn, [1], concurrency=bad)  # type: ignore[arg-type]


def test_fn_and_keys_are_checked() -> None:
    async def fn(key: int) -> int:
        return key

    with pytest.raises(ValueError, match="fn must be a coroutine function"):
        bulk(5, [1], concurrency=1)  # type: ignore[arg-type]
    for keys in ("abc", b"abc", 5):
        with pytest.raises(ValueError, match="keys must be an iterable"):
            bulk(fn, keys, concurrency=1)  # type: ignore[arg-type]


async def test_a_bulk_run_is_unordered_unless_asked() -> None:
    async def slow_first(key: int) -> int:
        for _ in range(10 if key == 0 else 1):
            await asyncio.sleep(0)
        return key

    run = BulkRun(slow_first, range(3), concurrency=3)
    assert [o.key async for o in run] == [1, 2, 0]  # as they finish
    ordered = BulkRun(slow_first, range(3), concurrency=3, ordered=True)
    assert [o.key async for o in ordered] == [0, 1, 2]


async def test_an_empty_run_starts_no_task() -> None:
    async def fn(key: int) -> int:
        return key

    run = bulk(fn, [], concurrency=4)
    assert run.max_tasks == 0
    assert [o async for o in run] == []
    assert run.max_tasks == 0


class Resuming:
    """A (non-conforming) iterator that ends, then yields more if asked again: bulk must
    never ask an iterator for a key once it has ended."""

    def __init__(self) -> None:
        self.items = [0, 1, 2, 3, 4, StopIteration, 100, 101]

    def __iter__(self) -> Resuming:
        return self

    def __next__(self) -> int:
        if not self.items:
            raise StopIteration
        item = self.items.pop(0)
        if item is StopIteration:
            raise StopIteration
        return item  # type: ignore[return-value]


class AsyncResuming:
    def __init__(self) -> None:
        self.sync = Resuming()

    def __aiter__(self) -> AsyncResuming:
        return self

    async def __anext__(self) -> int:
        await asyncio.sleep(0)
        try:
            return next(self.sync)
        except StopIteration:
            raise StopAsyncIteration from None


@pytest.mark.parametrize("keys", [Resuming, AsyncResuming])
async def test_keys_are_never_drawn_past_their_end(keys: type) -> None:
    async def slow(key: int) -> int:
        for _ in range(5 - key):  # the last keys finish first: others are still drawing
            await asyncio.sleep(0)
        return key

    outcomes = [o async for o in bulk(slow, keys(), concurrency=3)]
    assert sorted(o.key for o in outcomes) == [0, 1, 2, 3, 4]


async def test_no_call_starts_once_the_run_is_closing() -> None:
    started: list[int] = []

    async def stubborn(key: int) -> int:
        started.append(key)
        if key in (1, 2):
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                return -1  # swallows the cancellation: its worker goes on
        return key

    run = bulk(stubborn, range(100), concurrency=2)
    first = await anext(run)
    assert first.key == 0
    for _ in range(5):  # both workers are now inside a call (keys 1 and 2)
        await asyncio.sleep(0)
    assert started == [0, 1, 2]
    async with asyncio.timeout(10):  # (a hang guard)
        await run.aclose()
    assert started == [0, 1, 2]  # both calls cut short, and nothing started after them
