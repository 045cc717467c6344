"""NumberLookups on its own: a fake ``fetch`` (one batch asked of Arena) and ``plan``, the
client's clock and sleep injected, and, for the claims, a real SQLiteShare in tmp_path.
What these pin: answers kept to the instant their time runs out, the memory's bound, the
batches a call runs at once, failed and cancelled batches, the waits for another call and
for another process (backing off on the injected sleep), and the claims' life in the share.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from arena_async import SQLiteShare
from arena_async._share._names import SharedNames, shard_of
from arena_async.arena._numbers import (
    CLAIM_TTL,
    MAX_REMEMBERED,
    GuidBatch,
    NumberLookups,
    match_numbers,
)
from arena_async.errors import TransportError
from arena_async.models.arena import Item
from tests.conftest import FakeClock


class Arena:
    """A fake ``fetch``: answers from ``items`` (a number not there: no item), records each
    batch asked, counts the batches in flight; ``gate`` (when set) holds every batch until
    it is set; numbers in ``failing`` fail their batch after ``sent`` requests."""

    def __init__(self, items: dict[str, str] | None = None) -> None:
        self.items = items or {}
        self.asked: list[list[str]] = []
        self.failing: set[str] = set()
        self.gate: asyncio.Event | None = None
        self.in_flight = 0
        self.most = 0
        self.sent = 1

    async def fetch(self, numbers: Sequence[str], deadline: float | None,
                    sent: list[int]) -> dict[str, str | None]:
        self.asked.append(list(numbers))
        sent[0] += self.sent
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            else:
                await asyncio.sleep(0)
            if self.failing & set(numbers):
                raise TransportError("connection refused", method="GET", url="/items")
            return {n: self.items.get(n) for n in numbers}
        finally:
            self.in_flight -= 1


def by(size: int) -> Any:
    """A plan of batches of ``size`` numbers, in order."""
    return lambda numbers: [list(numbers[i:i + size]) for i in range(0, len(numbers), size)]


async def run(lookups: NumberLookups, numbers: Sequence[str], arena: Arena, *, size: int = 10,
              deadline: float | None = None) -> list[GuidBatch]:
    return [b async for b in lookups.batches(list(numbers), plan=by(size), fetch=arena.fetch,
                                             deadline=deadline)]


def sources(batches: list[GuidBatch]) -> dict[str, str]:
    return {n: b.source for b in batches for n in b.numbers}


# ------------------------------------------------------------------------------ memory


async def test_answers_are_kept_until_the_instant_their_time_runs_out() -> None:
    clock = FakeClock(1000.0)
    lookups = NumberLookups(concurrency=lambda: 4, clock=clock, found_ttl=10.0,
                            missing_ttl=5.0)
    arena = Arena({"A": "GA"})
    first = await run(lookups, ["A", "NOPE"], arena)
    assert first == [GuidBatch({"A": "GA", "NOPE": None}, source="arena", requests=1)]
    clock.now = 1004.999
    assert await run(lookups, ["A", "NOPE"], arena) == [
        GuidBatch({"A": "GA", "NOPE": None}, source="memory")]
    clock.now = 1005.0  # "no such item" kept 5 s, to the instant
    assert sources(await run(lookups, ["A", "NOPE"], arena)) == {"A": "memory",
                                                                 "NOPE": "arena"}
    clock.now = 1010.0  # the GUID 10 s from when it was asked (and NOPE 5 s again)
    assert sources(await run(lookups, ["A", "NOPE"], arena)) == {"A": "arena",
                                                                 "NOPE": "arena"}
    assert arena.asked == [["A", "NOPE"], ["NOPE"], ["A", "NOPE"]]
    lookups.forget()
    assert sources(await run(lookups, ["A"], arena)) == {"A": "arena"}


async def test_the_memory_is_bounded_and_drops_its_oldest_answer_first() -> None:
    clock = FakeClock(0.0)
    arena = Arena({n: f"G{n}" for n in "ABC"})
    lookups = NumberLookups(concurrency=lambda: 4, clock=clock, max_remembered=2)
    for number in "ABC":
        await run(lookups, [number], arena)
    assert sources(await run(lookups, ["B", "C"], arena)) == {"B": "memory", "C": "memory"}
    assert sources(await run(lookups, ["A"], arena)) == {"A": "arena"}  # dropped first


async def test_an_expired_answer_takes_no_place_in_the_memory() -> None:
    clock = FakeClock(0.0)
    arena = Arena({"B": "GB", "C": "GC"})
    lookups = NumberLookups(concurrency=lambda: 4, clock=clock, max_remembered=2,
                            found_ttl=100.0, missing_ttl=1.0)
    await run(lookups, ["B"], arena)
    await run(lookups, ["A"], arena)  # no such item: 1 s, the newest answer
    clock.now = 2.0
    arena.failing = {"A"}
    [failed] = await run(lookups, ["A"], arena)  # expired, and asking again fails
    assert list(failed.failed) == ["A"]
    await run(lookups, ["C"], arena)
    # The expired answer went when it was found expired: B is still known.
    assert sources(await run(lookups, ["B", "C"], arena)) == {"B": "memory", "C": "memory"}


def test_the_memory_keeps_65536_answers_by_default() -> None:
    lookups = NumberLookups(concurrency=lambda: 4, clock=lambda: 0.0)
    assert lookups.max_remembered == MAX_REMEMBERED == 65536
    lookups._remember({f"N{i}": None for i in range(MAX_REMEMBERED + 1)})
    assert lookups._fresh(["N0", "N1", f"N{MAX_REMEMBERED}"]) == {
        "N1": None, f"N{MAX_REMEMBERED}": None}


# ------------------------------------------------------------------- batches of a call


@pytest.mark.parametrize(("concurrency", "most"), [(2, 2), (0, 1), (1, 1)])
async def test_a_call_runs_at_most_its_concurrency_of_batches(concurrency: int,
                                                              most: int) -> None:
    arena = Arena()
    lookups = NumberLookups(concurrency=lambda: concurrency, clock=FakeClock())
    batches = await run(lookups, ["A", "B", "C", "D", "E"], arena, size=1)
    assert arena.most == most
    assert len(batches) == 5
    assert arena.asked == [["A"], ["B"], ["C"], ["D"], ["E"]]


async def test_a_failed_batch_fails_its_numbers_and_says_what_it_sent(
        caplog: pytest.LogCaptureFixture) -> None:
    arena = Arena({"A": "GA", "C": "GC"})
    arena.failing, arena.sent = {"B"}, 3
    lookups = NumberLookups(concurrency=lambda: 1, clock=FakeClock())
    with caplog.at_level(logging.WARNING, logger="arena_async.arena.items"):
        batches = await run(lookups, ["A", "B", "C"], arena, size=2)
    [bad] = [b for b in batches if not b.ok]
    assert (bad.source, bad.requests, list(bad.failed)) == ("arena", 3, ["A", "B"])
    assert isinstance(bad.failed["A"], TransportError)
    assert "looking up 2 item numbers ('A'...) failed: TransportError" in caplog.text
    # Nothing of the failed batch was remembered; the other batch was.
    arena.failing = set()
    assert sources(await run(lookups, ["A", "B", "C"], arena)) == {
        "A": "arena", "B": "arena", "C": "memory"}


async def test_calls_at_once_wait_for_the_batch_in_flight() -> None:
    arena = Arena({"A": "GA"})
    arena.gate = asyncio.Event()
    lookups = NumberLookups(concurrency=lambda: 4, clock=FakeClock())
    first = asyncio.ensure_future(run(lookups, ["A"], arena))
    while not arena.asked:
        await asyncio.sleep(0)
    second = asyncio.ensure_future(run(lookups, ["A", "B"], arena))
    while len(arena.asked) < 2:
        await asyncio.sleep(0)
    arena.gate.set()
    assert await first == [GuidBatch({"A": "GA"}, source="arena", requests=1)]
    assert sources(await second) == {"A": "memory", "B": "arena"}
    assert arena.asked == [["A"], ["B"]]


async def test_a_wait_for_another_call_ends_at_the_deadline() -> None:
    arena = Arena({"A": "GA"})
    arena.gate = asyncio.Event()
    lookups = NumberLookups(concurrency=lambda: 4, clock=FakeClock())
    first = asyncio.ensure_future(run(lookups, ["A"], arena))
    while not arena.asked:
        await asyncio.sleep(0)
    [late] = await run(lookups, ["A"], arena, deadline=0.01)
    assert late.source == "memory"
    assert "deadline passed while another call looked up" in str(late.failed["A"])
    arena.gate.set()
    assert (await first)[0].found == {"A": "GA"}


def test_numbers_match_exactly_first_then_ignoring_case(
        caplog: pytest.LogCaptureFixture) -> None:
    items = [Item(guid="G1", number="pn-1"), Item(guid="G2", number="PN-1"),
             Item(guid="G3", number="PN-2"), Item(guid="G4", number="PN-2"),
             Item(guid="G5", number=None)]
    with caplog.at_level(logging.WARNING, logger="arena_async.arena.items"):
        got = match_numbers(["PN-1", "Pn-1", "PN-2", "PN-3"], items)
    assert got == {"PN-1": "G2", "Pn-1": "G1", "PN-2": "G3", "PN-3": None}
    assert "2 items have number 'PN-2'; using the first listed (G3)" in caplog.text
    assert "'Pn-1'" in caplog.text  # two match ignoring case
    assert len(caplog.records) == 2  # one match is no news


# -------------------------------------------------------------------- with a share
# The share runs on the lookups' clock (its wall clock and its lease clock): claims expire
# on the injected clock, as the lookups' sleeps advance it.


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


@pytest.fixture
async def share(tmp_path: Path, clock: FakeClock) -> Any:
    share = SQLiteShare(tmp_path / "s.db", clock=clock, boot_clock=clock)
    await share.acquire()
    try:
        yield share
    finally:
        await share.release()


def with_share(share: SQLiteShare, clock: FakeClock, **kw: Any) -> NumberLookups:
    return NumberLookups(concurrency=lambda: 1, clock=clock, sleep=clock.sleep,
                         names=SharedNames(share, "names:t", owner="me"), **kw)


async def started(arena: Arena) -> None:
    while not arena.asked:
        await asyncio.sleep(0.001)


async def test_a_lookups_claims_live_claim_ttl_in_the_share(share: SQLiteShare,
                                                            clock: FakeClock) -> None:
    other = SharedNames(share, "names:t", owner="other")
    for number, kw, ttl in [("A", {}, CLAIM_TTL), ("B", {"claim_ttl": 30.0}, 30.0)]:
        arena = Arena({number: "G"})
        arena.gate = asyncio.Event()
        job = asyncio.ensure_future(run(with_share(share, clock, **kw), [number], arena))
        await started(arena)
        assert (await other.claim([number], ttl=5.0)).theirs == {number: ttl}
        arena.gate.set()
        assert (await job)[0].found == {number: "G"}
    assert CLAIM_TTL == 120.0


async def test_answers_from_the_share_are_kept_no_longer_than_there(
        share: SQLiteShare, clock: FakeClock) -> None:
    began = clock.now
    await SharedNames(share, "names:t", found_ttl=100.0).put({"A": "GA"})
    arena = Arena({"A": "GA"})
    lookups = with_share(share, clock)
    clock.now = began + 10.0
    assert await run(lookups, ["A"], arena) == [GuidBatch({"A": "GA"}, source="share")]
    clock.now = began + 99.999
    assert sources(await run(lookups, ["A"], arena)) == {"A": "memory"}
    clock.now = began + 100.0  # the share's entry ends: so does the memory's
    assert sources(await run(lookups, ["A"], arena)) == {"A": "arena"}


async def test_a_wait_for_another_process_backs_off_until_the_deadline(
        share: SQLiteShare, clock: FakeClock) -> None:
    other = SharedNames(share, "names:t", owner="other")
    await other.claim(["A"], ttl=60.0)
    began = clock.now
    arena = Arena({"A": "GA"})
    [late] = await run(with_share(share, clock), ["A"], arena, deadline=1.0)
    assert late.source == "share"
    assert "deadline passed while another process looked up" in str(late.failed["A"])
    assert arena.asked == []
    assert clock.now - began == pytest.approx(1.0, abs=1e-5)
    for pause, expected in zip(clock.sleeps, [0.05, 0.1, 0.2, 0.4], strict=False):
        assert 0.8 * expected <= pause <= 1.2 * expected, clock.sleeps
    assert len(clock.sleeps) == 5, clock.sleeps  # the last one until the deadline
    assert clock.sleeps[-1] == pytest.approx(1.0 - sum(clock.sleeps[:-1]), abs=1e-5)
    # Given back: the other process may ask, and its claim is untouched.
    assert (await other.claim(["A"], ttl=60.0)).mine == ["A"]


async def test_the_looks_back_off_to_half_a_second(share: SQLiteShare,
                                                   clock: FakeClock) -> None:
    other = SharedNames(share, "names:t", owner="other")
    await other.claim(["A"], ttl=60.0)
    [late] = await run(with_share(share, clock), ["A"], Arena(), deadline=3.0)
    assert not late.ok
    assert len(clock.sleeps) >= 7, clock.sleeps
    for pause in clock.sleeps[4:-1]:
        assert 0.4 <= pause <= 0.6, clock.sleeps


async def test_a_claim_about_to_expire_is_looked_at_just_after(share: SQLiteShare,
                                                               clock: FakeClock) -> None:
    other = SharedNames(share, "names:t", owner="other")
    await other.claim(["A"], ttl=0.01)  # its process died: the claim ends in 0.01 s
    arena = Arena({"A": "GA"})
    batches = await run(with_share(share, clock), ["A"], arena)
    assert batches == [GuidBatch({"A": "GA"}, source="arena", requests=1)]
    # 0.02 s after the claim's end, not the first look's 0.05 s (jittered).
    assert clock.sleeps == [pytest.approx(0.03, abs=1e-5)]


async def test_a_failed_batch_gives_its_claims_back(share: SQLiteShare,
                                                    clock: FakeClock) -> None:
    other = SharedNames(share, "names:t", owner="other")
    arena = Arena()
    arena.failing = {"A"}
    [failed] = await run(with_share(share, clock), ["A"], arena)
    assert not failed.ok
    assert (await other.claim(["A"], ttl=60.0)).mine == ["A"]


async def test_a_cancelled_lookup_gives_back_its_claims_started_or_not(
        share: SQLiteShare, clock: FakeClock) -> None:
    other = SharedNames(share, "names:t", owner="other")
    arena = Arena()
    arena.gate = asyncio.Event()
    job = asyncio.ensure_future(run(with_share(share, clock), ["A", "B"], arena, size=1))
    await started(arena)
    assert (await other.claim(["A", "B"], ttl=60.0)).mine == []  # both claimed
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert arena.asked == [["A"]]  # (one batch at a time: B never started)
    assert (await other.claim(["A", "B"], ttl=60.0)).mine == ["A", "B"]


async def test_claims_are_renewed_while_their_batches_wait(
        share: SQLiteShare, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:  # (the renewals' own timer, recorded)
        waits.append(seconds)
        await real_sleep(seconds)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    other = SharedNames(share, "names:t", owner="other")
    arena = Arena({"A": "GA", "B": "GB"})
    arena.gate = asyncio.Event()
    # Claims of 0.3 s, renewed every 0.1 s (real seconds: the renewals' own timer).
    lookups = with_share(share, clock, claim_ttl=0.3)
    names = lookups.names
    assert names is not None
    claim = names.claim
    renewed_at: list[float] = []

    async def recorded(numbers: Any, **kw: Any) -> Any:
        result = await claim(numbers, **kw)
        if "lead" not in kw:  # (a renewal)
            renewed_at.append(clock.now)
        return result

    names.claim = recorded  # type: ignore[method-assign]
    job = asyncio.ensure_future(run(lookups, ["A", "B"], arena, size=1))
    await started(arena)
    clock.now += 10.0  # the first claims have ended on the share's clock ...
    moved, began = clock.now, time.monotonic()
    while not renewed_at or renewed_at[-1] < moved:  # ... and are renewed since
        assert time.monotonic() - began < 10, "no renewal"
        await real_sleep(0.01)
    claimed = await other.claim(["A", "B"], ttl=60.0)
    assert claimed.mine == []
    assert set(claimed.theirs) == {"A", "B"}
    arena.gate.set()
    assert {n for b in await job for n in b.found} == {"A", "B"}
    assert pytest.approx(0.1) in waits  # a third of the claims' life


async def test_a_renewal_that_lands_after_a_failed_batch_gave_back_gives_back_again(
        share: SQLiteShare, clock: FakeClock) -> None:
    # The renewal took its list of numbers while batch A ran; A then failed and gave its
    # claim back; the renewal's claim, landing after, took it again. The call goes on
    # (batch B), but nobody asks A now: it is given back once more (else another process
    # would wait for A until the claim expired).
    other = SharedNames(share, "names:t", owner="other")
    arena = Arena({"A": "GA", "B": "GB"})
    arena.gate = asyncio.Event()
    hold_b = asyncio.Event()
    fetch = arena.fetch

    async def held_b(numbers: Sequence[str], deadline: float | None,
                     sent: list[int]) -> dict[str, str | None]:
        if "B" in numbers:
            await hold_b.wait()
        return await fetch(numbers, deadline, sent)

    arena.fetch = held_b  # type: ignore[method-assign]
    lookups = with_share(share, clock, claim_ttl=0.3)  # renewed every 0.1 s (real)
    names = lookups.names
    assert names is not None
    claim, release = names.claim, names.release
    given_back, renewed = asyncio.Event(), asyncio.Event()

    async def released(numbers: Any) -> None:
        await release(numbers)
        given_back.set()

    async def renewal_after_the_failure(numbers: Any, **kw: Any) -> Any:
        if "lead" in kw or renewed.is_set():
            return await claim(numbers, **kw)
        assert "A" in numbers  # (the first renewal: A's batch runs)
        arena.failing = {"A"}
        assert arena.gate is not None
        arena.gate.set()
        await given_back.wait()  # A failed and gave its claim back
        try:
            return await claim(numbers, **kw)
        finally:
            renewed.set()

    names.claim = renewal_after_the_failure  # type: ignore[method-assign]
    names.release = released  # type: ignore[method-assign]
    job = asyncio.ensure_future(run(lookups, ["A", "B"], arena, size=1))
    await asyncio.wait_for(renewed.wait(), 10)
    for _ in range(20):  # (the renewal's own give-back, if any, lands meanwhile)
        await asyncio.sleep(0.005)
    assert (await other.claim(["A"], ttl=60.0)).mine == ["A"]  # free to ask at once
    hold_b.set()
    batches = await job
    assert {n: b.source for b in batches for n in b.failed} == {"A": "arena"}
    assert {n for b in batches for n in b.found} == {"B"}


async def test_the_first_two_looks_lead_then_what_nobody_claimed_is_claimed(
        share: SQLiteShare, clock: FakeClock) -> None:
    # Another process holds a number of the first shard: it may be claiming the others
    # still (a busy share), so the first looks only read them; from the third look on,
    # what nobody claimed is this lookup's.
    low = "PN-1"
    high = next(f"PN-{n}" for n in range(2, 99) if shard_of(f"PN-{n}") > shard_of(low))
    if shard_of(low) > shard_of(high):
        low, high = high, low
    other = SharedNames(share, "names:t", owner="other")
    await other.claim([low], ttl=60.0)
    arena = Arena({high: "GH"})
    looks: list[int] = []
    claimed_after: list[int] = []
    lookups = with_share(share, clock)
    claim = lookups.names.claim  # type: ignore[union-attr]

    async def counted(numbers: Any, **kw: Any) -> Any:
        looks.append(len(numbers))
        result = await claim(numbers, **kw)
        if high in result.mine:
            claimed_after.append(len(clock.sleeps))
        return result

    lookups.names.claim = counted  # type: ignore[union-attr,method-assign]
    batches = await run(lookups, [low, high], arena, deadline=2.0)
    assert claimed_after == [3]  # at the look after 0.05, 0.1 and 0.2 s
    assert arena.asked == [[high]]
    assert sources(batches) == {low: "share", high: "arena"}
    # One claim at the start, then one look after each sleep, none past the deadline.
    assert len(looks) == 1 + len(clock.sleeps)


async def test_a_renewal_or_a_give_back_that_fails_is_logged_and_the_lookup_goes_on(
        share: SQLiteShare, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    lookups = with_share(share, clock, claim_ttl=0.03)  # renewed every 0.01 s (real)
    names = lookups.names
    assert names is not None
    claim = names.claim

    async def renewals_fail(numbers: Any, **kw: Any) -> Any:
        if "lead" not in kw:  # (a renewal)
            raise RuntimeError("the share broke")
        return await claim(numbers, **kw)

    async def release_fails(numbers: Any) -> None:
        raise RuntimeError("the share broke again")

    names.claim = renewals_fail  # type: ignore[method-assign]
    names.release = release_fails  # type: ignore[method-assign]
    arena = Arena({"A": "GA"})
    arena.gate = asyncio.Event()
    with caplog.at_level(logging.DEBUG, logger="arena_async.arena.items"):
        job = asyncio.ensure_future(run(lookups, ["A", "B"], arena))
        await started(arena)
        await asyncio.sleep(0.1)
        arena.failing = {"B"}
        arena.gate.set()
        [batch] = await job
    assert list(batch.failed) == ["A", "B"]
    assert "could not renew claims of 2 item numbers: RuntimeError: the share broke" \
        in caplog.text
    assert "could not give back claims of 2 item numbers: RuntimeError: the share broke " \
        "again" in caplog.text


async def test_a_claim_that_raises_fails_the_call_and_leaves_nothing_claimed(
        share: SQLiteShare, clock: FakeClock) -> None:
    lookups = with_share(share, clock)
    names = lookups.names
    assert names is not None
    claim = names.claim

    async def broken(numbers: Any, **kw: Any) -> Any:
        raise RuntimeError("a bug in the share")

    names.claim = broken  # type: ignore[method-assign]
    arena = Arena({"A": "GA"})
    with pytest.raises(RuntimeError, match="a bug in the share"):
        await run(lookups, ["A"], arena)
    names.claim = claim  # type: ignore[method-assign]
    # Nothing left claimed in this client: the next call asks (it does not wait).
    assert await asyncio.wait_for(run(lookups, ["A"], arena), 5.0) == [
        GuidBatch({"A": "GA"}, source="arena", requests=1)]


async def test_a_lookup_cancelled_while_its_claim_is_answered_gives_the_claim_back(
        share: SQLiteShare, clock: FakeClock) -> None:
    lookups = with_share(share, clock)
    names = lookups.names
    assert names is not None
    claim = names.claim
    made, hold = asyncio.Event(), asyncio.Event()

    async def slow_answer(numbers: Any, **kw: Any) -> Any:
        result = await claim(numbers, **kw)  # claimed in the share ...
        made.set()
        await hold.wait()  # ... its answer not read yet
        return result

    names.claim = slow_answer  # type: ignore[method-assign]
    job = asyncio.ensure_future(run(lookups, ["A"], Arena()))
    await made.wait()
    other = SharedNames(share, "names:t", owner="other")
    assert (await other.claim(["A"], ttl=60.0)).mine == []
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert (await other.claim(["A"], ttl=60.0)).mine == ["A"]
