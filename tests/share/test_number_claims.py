"""Claims in the share's number map: processes that look up the same item numbers at once
ask Arena once. The pure steps (claim, release, expiry, an answer clears the claims), then
clients on one SQLite file or one redis-server, each with its own share object (what
separate processes build), and a real process killed mid-lookup."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from typing import Any

import pytest

from arena_async import ArenaClient, LookupFailedError, Share, SQLiteShare
from arena_async._share._names import (
    FOUND_TTL,
    Claimed,
    SharedNames,
    claim_step,
    lookup_step,
    release_step,
    remember_step,
    shard_of,
)
from arena_async._share._state import Now
from arena_async.errors import TransportError
from arena_async.testing import FakeArena, Fault
from tests.conftest import FakeClock, Stalls
from tests.share import _worker
from tests.share.conftest import ShareFactory
from tests.share.test_multiprocess import (  # noqa: F401 - the fixtures
    Workers,
    config_for,
    share_config,
    workers,
    zygote,
)

SEARCH = "GET /items"


def criteria_numbers(request: Any) -> list[str]:
    """The numbers a lookup asked for (its ``criteria`` OR groups)."""
    return [g[0]["value"] for g in json.loads(request.query["criteria"])[::2]]


def _at(wall: float, tick: float | None = None) -> Now:
    return Now(wall, wall if tick is None else tick)


# ------------------------------------------------------------------------ pure steps


def test_a_claim_is_the_first_claimers_until_answered() -> None:
    doc, mine = claim_step(["A", "B"], "p1", 30.0)(None, _at(1000.0, 50.0))
    assert mine == Claimed(mine=["A", "B"])
    assert doc == {"c": {"A": ["p1", 80.0], "B": ["p1", 80.0]}}  # on the lease clock
    doc, _ = remember_step({"B": "GB"})(doc, _at(1010.0, 60.0))
    same, theirs = claim_step(["A", "B", "C"], "p2", 30.0)(doc, _at(1010.0, 70.0))
    assert theirs == Claimed(found={"B": ("GB", FOUND_TTL)}, mine=["C"], theirs={"A": 10.0})
    assert same == {"n": {"B": ["GB", 1010.0 + FOUND_TTL]},
                    "c": {"A": ["p1", 80.0], "C": ["p2", 100.0]}}
    # Nothing to claim, nothing expired: the document is left as it is (nothing written).
    unchanged, again = claim_step(["A", "B"], "p2", 30.0)(same, _at(1011.0, 71.0))
    assert unchanged is same
    assert again.theirs == {"A": 9.0}


def test_an_owner_renews_its_own_claim_and_an_expired_one_is_anyones() -> None:
    doc, _ = claim_step(["A"], "p1", 30.0)(None, _at(0.0, 100.0))
    doc, renewed = claim_step(["A"], "p1", 30.0)(doc, _at(0.0, 120.0))
    assert renewed.mine == ["A"]
    assert doc == {"c": {"A": ["p1", 150.0]}}
    _, theirs = claim_step(["A"], "p2", 30.0)(doc, _at(0.0, 149.0))
    assert theirs.theirs == {"A": 1.0}
    doc, taken = claim_step(["A"], "p2", 30.0)(doc, _at(0.0, 150.0))  # p1 died: expired
    assert taken.mine == ["A"]
    assert doc == {"c": {"A": ["p2", 180.0]}}


def test_expired_claims_are_dropped_like_expired_entries() -> None:
    doc, _ = remember_step({"N": "GN"})(None, _at(0.0))
    doc, _ = claim_step(["A"], "p1", 30.0)(doc, _at(0.0, 0.0))
    kept, _ = lookup_step(["N"])(doc, _at(10.0, 10.0))
    assert kept is doc  # nothing expired: not written
    later, found = lookup_step(["N"])(doc, _at(40.0, 40.0))
    assert found == {"N": ("GN", FOUND_TTL - 40.0)}
    assert later == {"n": {"N": ["GN", FOUND_TTL]}}
    gone, _ = release_step(["X"], "p1")(
        claim_step(["A"], "p1", 30.0)(None, _at(0.0))[0], _at(31.0))
    assert gone is None


def test_release_drops_only_the_owners_claims() -> None:
    doc, _ = claim_step(["A", "B"], "p1", 30.0)(None, _at(0.0))
    doc, _ = claim_step(["C"], "p2", 30.0)(doc, _at(0.0))
    doc, _ = release_step(["A", "C"], "p1")(doc, _at(1.0))
    assert doc == {"c": {"B": ["p1", 30.0], "C": ["p2", 30.0]}}
    same, _ = release_step(["A", "C"], "p1")(doc, _at(1.0))
    assert same is doc
    _, claimed = claim_step(["A", "B", "C"], "p3", 30.0)(doc, _at(2.0))
    assert claimed == Claimed(mine=["A"], theirs={"B": 28.0, "C": 28.0})


def test_an_answer_clears_its_claims_whoever_holds_them() -> None:
    doc, _ = claim_step(["A", "B"], "p1", 30.0)(None, _at(0.0))
    doc, _ = claim_step(["C"], "p2", 30.0)(doc, _at(0.0))
    doc, _ = remember_step({"A": "GA", "C": None})(doc, _at(1.0))
    assert doc is not None
    assert doc["c"] == {"B": ["p1", 30.0]}
    assert set(doc["n"]) == {"A", "C"}
    doc, _ = remember_step({"B": "GB"})(doc, _at(2.0))
    assert doc is not None
    assert "c" not in doc


def test_claims_are_bounded_and_past_the_bound_numbers_are_asked_unclaimed() -> None:
    doc, claimed = claim_step(["A", "B", "C"], "p1", 30.0, max_claims=2)(None, _at(0.0))
    assert claimed.mine == ["A", "B", "C"]
    assert doc == {"c": {"A": ["p1", 30.0], "B": ["p1", 30.0]}}
    doc, again = claim_step(["A"], "p1", 30.0, max_claims=2)(doc, _at(1.0))
    assert again.mine == ["A"]
    assert doc == {"c": {"A": ["p1", 31.0], "B": ["p1", 30.0]}}  # renewed at the bound


@pytest.mark.parametrize("junk", [{"c": []}, {"c": {"A": "p1"}}, {"c": {"A": [1, 2]}},
                                  {"c": {"A": ["p1"]}}, {"c": {"A": ["p1", "soon"]}}])
def test_a_damaged_claim_is_read_as_none(junk: Any) -> None:
    _, claimed = claim_step(["A"], "p2", 30.0)(junk, _at(0.0))
    assert claimed == Claimed(mine=["A"])


async def test_a_share_that_fails_gives_every_number_to_the_claimer(tmp_path: Any) -> None:
    names = SharedNames(SQLiteShare(tmp_path / "s.db"), "names:x")  # not open: steps fail
    assert await names.claim(["PN-2", "PN-1"], ttl=30.0) == Claimed(mine=["PN-2", "PN-1"])
    await names.release(["PN-1"])  # nothing kept, nothing raised


async def test_a_lead_claim_leaves_the_rest_to_whoever_holds_the_first_shard(
        make_share: ShareFactory) -> None:
    numbers = [f"PN-{n:06d}" for n in range(40)]
    first = min(shard_of(n) for n in numbers)
    head = [n for n in numbers if shard_of(n) == first]
    shares = [make_share() for _ in range(3)]
    for share in shares:
        await share.acquire()
    try:
        a, b, c = (SharedNames(share, "names:x", owner=o)
                   for share, o in zip(shares, "abc", strict=True))
        assert (await a.claim(head, ttl=30.0)).mine == head  # a has begun: its first shard
        await a.put({numbers[-1]: "G"})
        seen = await b.claim(numbers, ttl=30.0, lead=True)
        assert seen.mine == []
        assert seen.found == {numbers[-1]: ("G", pytest.approx(FOUND_TTL, abs=5))}
        assert set(seen.theirs) == set(numbers[:-1])  # a is claiming them: b waits
        rest = [n for n in numbers[:-1] if n not in head]
        assert (await c.claim(rest, ttl=30.0)).mine == rest  # b claimed none of them
        # Without another's claim on the first shard, a lead claim takes everything free.
        assert (await a.claim(numbers[:-1], ttl=30.0, lead=True)).mine == head
    finally:
        for share in shares:
            await share.release()


# ------------------------------------------------------------- clients on one share


def client(fake: FakeArena, share: Share, **kw: Any) -> ArenaClient:
    return ArenaClient(email=fake.email, password=fake.password,
                       workspace_id=fake.workspace_id, base_url=fake.url, share=share, **kw)


async def test_clients_that_look_up_the_same_numbers_at_once_ask_once(
        make_share: ShareFactory) -> None:
    async with FakeArena() as fake:
        numbers = [f"PN-{n:06d}" for n in range(120)]
        guids = {n: fake.add_item(number=n) for n in numbers}
        clients = [client(fake, make_share()) for _ in range(4)]
        async with clients[0], clients[1], clients[2], clients[3]:
            for arena in clients:  # logged in (one login, shared) before the lookups
                await arena.items.guids_for(["PN-NONE"])
            fake.clear_requests()
            # Each lookup is slow: every client wants the numbers while the first asks.
            fake.faults.add(Fault("slow_headers", delay=0.3, path="/items$"))
            asked: list[str] = []  # the numbers each client's batches asked Arena for

            async def look_up(arena: ArenaClient) -> dict[str, str | None]:
                batches = [b async for b in arena.items.guid_batches(numbers)]
                asked.extend(n for b in batches if b.source == "arena" for n in b.numbers)
                return {n: g for b in batches for n, g in b.found.items()}

            results = await asyncio.gather(*(look_up(a) for a in clients))
            assert all(r == guids for r in results)
            assert fake.stats.by_route[SEARCH] == 3  # 120 numbers: 3 batches, once in all
            # Each number asked by one client; the others had it from the share. (Usually
            # one client asks all three batches; a stall of the loaded box between the
            # leader's claims can leave a batch to another, which is no extra request.)
            assert sorted(asked) == numbers


async def test_calls_of_one_client_with_a_share_still_ask_once(make_share: ShareFactory) -> None:
    async with FakeArena() as fake:
        numbers = [f"PN-{n}" for n in range(60)]
        guids = {n: fake.add_item(number=n) for n in numbers}
        async with client(fake, make_share()) as arena:
            await arena.items.guids_for(["PN-NONE"])
            fake.clear_requests()
            results = await asyncio.gather(*(arena.items.guids_for(numbers) for _ in range(3)))
            assert all(r == guids for r in results)
            assert fake.stats.by_route[SEARCH] == 2  # 60 numbers: two batches, once


async def test_a_claimer_that_fails_gives_its_claim_back(make_share: ShareFactory) -> None:
    async with FakeArena() as fake:
        numbers = ["PN-1", "PN-2"]
        guids = {n: fake.add_item(number=n) for n in numbers}
        first, second = client(fake, make_share()), client(fake, make_share())
        async with first, second:
            await first.items.guids_for(["PN-NONE"])  # (both logged in first)
            await second.items.guids_for(["PN-NONE"])
            fake.clear_requests()
            fake.latency = 0.3  # the first is still asking when the second wants them
            fake.faults.add(Fault("status", status=400, path="/items$", times=1))
            failed_at: list[float] = []

            async def failing() -> None:
                with pytest.raises(LookupFailedError):
                    await first.items.guids_for(numbers)
                failed_at.append(time.time())

            job = asyncio.create_task(failing())
            while not fake.requests_to(SEARCH):  # the first is asking
                await asyncio.sleep(0.005)
            started = time.monotonic()
            assert await second.items.guids_for(numbers) == guids
            waited = time.monotonic() - started
            await job
            asks = fake.requests_to(SEARCH)
            assert len(asks) == 2
            # The second asked once the first had failed (its claim given back), long
            # before that claim would have expired (60 s: twice the 30 s timeout).
            assert asks[1].received_at >= failed_at[0] - 0.05
            assert waited < 15, waited


async def test_a_lookup_longer_than_a_claims_life_keeps_its_claims(
        make_share: ShareFactory) -> None:
    timeout = 1.0  # claims live twice that: 2 s
    async with FakeArena() as fake:
        # Each batch a number and one no item has: one page (not full) per batch.
        numbers = [n for i in range(4) for n in (f"PN-{i}", f"NO-{i}")]
        guids = {n: fake.add_item(number=n) if n.startswith("PN") else None for n in numbers}
        first = client(fake, make_share(), timeout=timeout, max_concurrency=1)
        second = client(fake, make_share())
        async with first, second:
            await first.items.guids_for(["PN-NONE"])  # (both logged in first)
            await second.items.guids_for(["PN-NONE"])
            fake.clear_requests()
            # One batch at a time, 0.6 s each: 2.4 s in all, so the
            # last batches start after the claims made at the start would have expired.
            fake.faults.add(Fault("slow_headers", delay=0.6, path="/items$"))
            began = time.time()
            job = asyncio.create_task(first.items.guids_for(numbers, page_size=2))
            while len(fake.requests_to(SEARCH)) < 4 or time.time() < began + 2 * timeout:
                assert not job.done()
                await asyncio.sleep(0.01)
            # Past the first claims' life, the last batch in flight: the second waits.
            batches = [b async for b in second.items.guid_batches(numbers)]
            assert {n: g for b in batches for n, g in b.found.items()} == guids
            assert {b.source for b in batches} == {"share"}
            assert await job == guids
            asks = fake.requests_to(SEARCH)
            assert sorted(n for r in asks for n in criteria_numbers(r)) == sorted(numbers)


async def _first_is_asking(fake: FakeArena, first: ArenaClient, second: ArenaClient,
                           number: str, seconds: float) -> asyncio.Task[dict[str, str | None]]:
    """Both clients logged in; ``first`` looking ``number`` up, its request answered after
    ``seconds``: returns when that request is in flight."""
    await first.items.guids_for(["PN-NONE"])
    await second.items.guids_for(["PN-NONE"])
    fake.clear_requests()
    fake.faults.add(Fault("slow_headers", delay=seconds, path="/items$", times=1))
    job = asyncio.create_task(first.items.guids_for([number]))
    while not fake.requests_to(SEARCH):
        await asyncio.sleep(0.005)
    return job


async def test_a_claimer_cancelled_gives_its_claim_back(make_share: ShareFactory) -> None:
    async with FakeArena() as fake:
        guid = fake.add_item(number="PN-1")
        first, second = client(fake, make_share()), client(fake, make_share())
        async with first, second:
            job = await _first_is_asking(fake, first, second, "PN-1", 10.0)
            second_job = asyncio.create_task(second.items.guids_for(["PN-1"]))
            await asyncio.sleep(0.3)
            assert not second_job.done()  # waiting for the first
            assert len(fake.requests_to(SEARCH)) == 1
            started = time.monotonic()
            job.cancel()
            assert await second_job == {"PN-1": guid}
            assert time.monotonic() - started < 5  # not the 60 s the claim would live
            assert len(fake.requests_to(SEARCH)) == 2
            with pytest.raises(asyncio.CancelledError):
                await job


async def test_a_wait_for_another_process_ends_at_the_deadline(
        make_share: ShareFactory) -> None:
    async with FakeArena() as fake:
        guid = fake.add_item(number="PN-1")
        clock = FakeClock(time.time())
        first = client(fake, make_share())
        second = client(fake, make_share(), clock=clock, sleep=clock.sleep)
        async with first, second:
            job = await _first_is_asking(fake, first, second, "PN-1", 3.0)
            began, clock.sleeps = clock.now, []
            async with Stalls() as stalls:
                started = time.monotonic()
                with pytest.raises(LookupFailedError) as caught:
                    await second.items.guids_for(["PN-1"], deadline=5.0)
                took = time.monotonic() - started
            error = caught.value.failed["PN-1"]
            assert isinstance(error, TransportError)
            assert "deadline passed while another process" in str(error)
            assert 5.0 <= clock.now - began <= 5.5  # on the client's clock, not real time
            for pause, expected in zip(clock.sleeps, [0.05, 0.1, 0.2, 0.4, 0.5, 0.5],
                                       strict=False):  # backing off (jittered)
                assert 0.8 * expected <= pause <= 1.2 * expected, clock.sleeps
            # (not the 5 s in real time; slack: a loaded machine, and the time it stopped
            # this process)
            assert took < 2.5 + stalls.lost(), (took, stalls.gaps)
            assert len(fake.requests_to(SEARCH)) == 1  # it never asked itself
            assert await job == {"PN-1": guid}


# ---------------------------------------------------------------- a real process


async def test_a_claimer_killed_mid_lookup_holds_the_others_one_claim_at_most(
        share_config: dict[str, Any], workers: Workers) -> None:  # noqa: F811
    timeout = 1.0  # the victim's: its claims live twice that
    claim_ttl = 2 * timeout
    timings = {"lease_ttl": 2.0, "probe_ttl": 2.0}  # (its login lease, its quota probe)
    config = {**share_config, "timings": timings}
    async with FakeArena() as fake:
        numbers = [f"PN-{n}" for n in range(5)]
        guids = {n: fake.add_item(number=n) for n in numbers}
        fake.faults.add(Fault("slow_headers", delay=10.0, path="/items$", times=1))
        spawned = fake.clock()  # the victim claims the numbers after this
        victim = await workers.start(
            config_for(fake, config, [], numbers=numbers, timeout=timeout), wait_go=False)
        deadline = time.monotonic() + 20
        while not fake.requests_to(SEARCH):  # the victim has claimed them and is asking
            assert time.monotonic() < deadline, "the victim never asked"
            await asyncio.sleep(0.005)
        os.kill(victim.pid, signal.SIGKILL)
        await victim.wait()
        assert victim.returncode == -signal.SIGKILL
        shares = [_worker.make_share(config) for _ in range(2)]
        survivors = [client(fake, share) for share in shares if isinstance(share, Share)]
        assert len(survivors) == 2

        async def look_up(arena: ArenaClient) -> tuple[dict[str, str | None], float]:
            started = time.monotonic()
            found = await arena.items.guids_for(numbers)
            return found, time.monotonic() - started

        async with Stalls() as stalls, survivors[0], survivors[1]:
            results = await asyncio.gather(*(look_up(a) for a in survivors))
        assert all(found == guids for found, _ in results)
        # The victim's request, then each number once for both survivors (in one request,
        # unless both looked at the same moment when the claim expired: then in two).
        asked_after = [n for r in fake.requests_to(SEARCH)[1:] for n in criteria_numbers(r)]
        assert sorted(asked_after) == numbers
        assert fake.stats.by_route[SEARCH] <= 3
        blocked = [seconds for _, seconds in results]
        # They waited for the dead claimer's claim (up to claim_ttl left), no longer (the
        # time the machine stopped this process aside).
        assert max(blocked) < claim_ttl + 3.0 + stalls.lost(), (blocked, stalls.gaps)
        # The claim was made after the victim was spawned: the survivors asked at least
        # claim_ttl after that (on the fake's clock, the claims' being the machine's too;
        # 0.1 s: that clock read in another process). A slow start of the victim, or of
        # this process recording its request, moves that instant not.
        victims, *theirs = [r.received_at for r in fake.requests_to(SEARCH)]
        assert min(theirs) - spawned > claim_ttl - 0.1, (spawned, victims, theirs)
