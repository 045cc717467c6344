"""The item number -> GUID map in the share: the pure steps (expiry, bound), clients on one
SQLite file or one redis-server, and real processes: a number resolved by one sharer is
never asked again by another."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from arena_async import ArenaClient, Share, SQLiteShare
from arena_async._share._names import (
    FOUND_TTL,
    MISSING_TTL,
    SHARDS,
    Claimed,
    SharedNames,
    lookup_step,
    remember_step,
    shard_of,
)
from arena_async._share._state import Now
from arena_async.errors import ShareUnavailableError
from arena_async.testing import FakeArena
from tests.share.conftest import ShareFactory
from tests.share.test_multiprocess import (  # noqa: F401 - the fixtures
    Workers,
    config_for,
    share_config,
    workers,
    zygote,
)

SEARCH = "GET /items"


def asked(fake: FakeArena) -> list[str]:
    return [g[0]["value"] for r in fake.requests_to(SEARCH)
            for g in json.loads(r.query["criteria"])[::2]]


# ------------------------------------------------------------------------ pure steps


def _at(wall: float) -> Now:
    return Now(wall, wall)


def test_remember_then_look_up_with_expiry() -> None:
    doc, _ = remember_step({"PN-1": "G1", "NOPE": None})(None, _at(1000.0))
    assert doc == {"n": {"PN-1": ["G1", 1000.0 + FOUND_TTL], "NOPE": [None, 1000.0 + MISSING_TTL]}}
    same, found = lookup_step(["PN-1", "NOPE", "OTHER"])(doc, _at(1100.0))
    assert found == {"PN-1": ("G1", FOUND_TTL - 100), "NOPE": (None, MISSING_TTL - 100)}
    assert same is doc  # nothing expired: nothing to write
    later, found = lookup_step(["PN-1", "NOPE"])(doc, _at(1000.0 + MISSING_TTL))
    assert found == {"PN-1": ("G1", FOUND_TTL - MISSING_TTL)}
    assert later == {"n": {"PN-1": ["G1", 1000.0 + FOUND_TTL]}}  # the expired one dropped
    gone, found = lookup_step(["PN-1"])(later, _at(1000.0 + FOUND_TTL))
    assert (gone, found) == (None, {})


def test_the_map_is_bounded_dropping_what_expires_first() -> None:
    step = remember_step({f"N{i}": f"G{i}" for i in range(5)}, max_entries=3)
    doc, _ = step(None, _at(0.0))
    assert set(doc["n"]) == {"N0", "N1", "N2"}
    doc, _ = remember_step({"LATE": "GL", "MISS": None}, max_entries=3)(doc, _at(10.0))
    assert set(doc["n"]) == {"LATE", "N0", "N1"}  # a miss expires first: dropped first


@pytest.mark.parametrize("junk", [None, {}, {"n": []}, {"n": {"A": "G"}}, {"n": {"A": [1, 2]}},
                                  {"n": {"A": ["G"]}}, {"n": {"A": ["G", "soon"]}}])
def test_a_damaged_document_is_read_as_empty(junk: Any) -> None:
    _, found = lookup_step(["A"])(junk, _at(0.0))
    assert found == {}
    new, _ = remember_step({"B": "GB"})(junk, _at(0.0))
    assert new == {"n": {"B": ["GB", FOUND_TTL]}}


def test_shards_are_stable_and_spread() -> None:
    assert shard_of("PN-000001") == shard_of("PN-000001")
    assert len({shard_of(f"PN-{n:06d}") for n in range(300)}) == SHARDS


def test_the_documented_lifetimes_and_bounds() -> None:
    # (what the docs promise: a day for a GUID, ten minutes for "no such item")
    doc, _ = remember_step({"PN-1": "G1", "NOPE": None})(None, _at(0.0))
    assert doc == {"n": {"PN-1": ["G1", 86400.0], "NOPE": [None, 600.0]}}
    doc, _ = remember_step({f"N{i}": None for i in range(4097)})(None, _at(0.0))
    assert doc is not None
    assert len(doc["n"]) == 4096


def test_shards_are_the_same_for_every_version_of_the_map() -> None:
    # Processes of one share must put a number in the same document: the hash is part of
    # the map's format (the first byte of the number's SHA-256, modulo 16 documents).
    assert [shard_of(n) for n in ("PN-1", "PN-2", "A", "")] == [
        hashlib.sha256(n.encode()).digest()[0] % 16 for n in ("PN-1", "PN-2", "A", "")]
    assert SHARDS == 16
    assert {shard_of(f"PN-{n}") for n in range(1000)} == set(range(16))


def test_a_document_with_foreign_fields_is_rewritten_without_them() -> None:
    doc = {"n": {"A": ["GA", 100.0]}, "old": 1}
    new, found = lookup_step(["A"])(doc, _at(0.0))
    assert found == {"A": ("GA", 100.0)}
    assert new == {"n": {"A": ["GA", 100.0]}}
    assert lookup_step(["A"])(new, _at(0.0))[0] is new


def same_shard(count: int) -> list[str]:
    """``count`` numbers of one shard."""
    numbers = [f"PN-{n}" for n in range(200)]
    first = shard_of(numbers[0])
    return [n for n in numbers if shard_of(n) == first][:count]


class Patchy(SQLiteShare):
    """A SQLite share some of whose documents cannot be reached (``down``: their shards), or
    whose steps raise ``error``; it counts the updates."""

    def __init__(self, path: Path, **kw: Any) -> None:
        super().__init__(path, **kw)
        self.down: set[int] = set()
        self.error: Exception | None = None
        self.updates = 0

    async def update(self, key: str, step: Any) -> Any:
        self.updates += 1
        if self.error is not None:
            raise self.error
        shard = int(key.rsplit(":", 1)[1])
        if shard in self.down:
            raise ShareUnavailableError(f"document {shard} is away", share=self.name)
        return await super().update(key, step)


@pytest.fixture
async def patchy(tmp_path: Path) -> Any:
    share = Patchy(tmp_path / "s.db")
    await share.acquire()
    try:
        yield share
    finally:
        await share.release()


def two_shards() -> tuple[str, str]:
    """Two numbers of two shards, the first of the lower shard."""
    a, b = "PN-1", next(f"PN-{n}" for n in range(2, 99) if shard_of(f"PN-{n}") != shard_of("PN-1"))
    return (a, b) if shard_of(a) < shard_of(b) else (b, a)


async def test_the_shards_the_share_reached_still_count(patchy: Patchy) -> None:
    low, high = two_shards()
    names = SharedNames(patchy, "names:x", owner="me")
    await names.put({low: "GL", high: "GH"})
    patchy.down = {shard_of(high)}
    claimed = await names.claim([high, low], ttl=30.0)
    assert claimed.found == {low: ("GL", pytest.approx(FOUND_TTL, abs=5))}
    assert claimed.mine == [high]
    # A lead claim too: the first shard reached, another's claim there; the other shard
    # away: this sharer asks for its numbers.
    patchy.down = set()
    await names.put({low: None})
    other = SharedNames(patchy, "names:x", owner="other")
    lows = [n for n in (f"Q-{i}" for i in range(300)) if shard_of(n) == shard_of(low)][:2]
    await other.claim(lows[:1], ttl=30.0)
    patchy.down = {shard_of(high)}
    seen = await names.claim([high, *lows], ttl=30.0, lead=True)
    assert seen.theirs == {lows[0]: pytest.approx(30.0, abs=5)}
    assert seen.mine == [high, lows[1]]  # in the order asked


async def test_a_lead_claim_of_two_shards_reads_the_second(patchy: Patchy) -> None:
    low, high = two_shards()
    a = SharedNames(patchy, "names:x", owner="a")
    b = SharedNames(patchy, "names:x", owner="b")
    assert (await a.claim([low], ttl=30.0)).mine == [low]
    seen = await b.claim([high, low], ttl=30.0, lead=True)
    # a holds the first shard: b claims nothing, and waits for a on both.
    assert seen == Claimed(theirs={low: pytest.approx(30.0, abs=5),
                                   high: pytest.approx(30.0, abs=5)})
    # Without lead, b claims what is free (the lead is not the default).
    assert (await b.claim([high, low], ttl=30.0)).mine == [high]
    assert (await b.claim(["only-" + low], ttl=30.0, lead=True)).mine == ["only-" + low]


async def test_a_lead_claim_of_a_shard_whose_first_number_alone_is_asked(
        patchy: Patchy) -> None:
    low, high = two_shards()
    a = SharedNames(patchy, "names:x", owner="a")
    await a.claim([high], ttl=30.0)
    got = await a.claim([low, high], ttl=30.0, lead=True)
    assert got.mine == [low, high]
    patchy.down = {shard_of(low)}  # the first shard away: its numbers are this sharer's
    b = SharedNames(patchy, "names:x", owner="b")
    got = await b.claim([high, low], ttl=30.0, lead=True)
    assert got == Claimed(mine=[low], theirs={high: pytest.approx(30.0, abs=5)})


async def test_an_error_other_than_the_share_being_away_is_raised(patchy: Patchy) -> None:
    patchy.error = RuntimeError("a bug in a step")
    names = SharedNames(patchy, "names:x")
    with pytest.raises(RuntimeError, match="a bug in a step"):
        await names.claim(["PN-1"], ttl=30.0)


async def test_the_share_away_is_said_again_after_it_came_back(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    share = SQLiteShare(tmp_path / "s.db")
    opened: list[int] = []

    async def opener() -> None:
        opened.append(1)

    names = SharedNames(share, "names:x", opener=opener)
    with caplog.at_level(logging.WARNING, logger="arena_async.arena.items"):
        await names.claim(["PN-1"], ttl=30.0)
        await share.acquire()
        await names.release(["PN-1"])
        await names.put({"PN-2": "G2"})  # (not said again while it works)
        await share.release()
        await names.put({"PN-1": "G1"})
    away = f"item number lookups go to Arena without the share: share {share.name}: not open"
    assert [r.getMessage() for r in caplog.records] == [
        f"{away} (the client using it is closed)",
        f"item number lookups use the share {share.name} again",
        f"{away} (the client using it is closed)"]
    assert len(opened) == 4  # before each use
    assert repr(names) == f"<SharedNames {share.name} names:x>"


async def test_the_map_keeps_what_its_sharer_says(patchy: Patchy) -> None:
    numbers = same_shard(3)
    names = SharedNames(patchy, "names:x", found_ttl=100.0, missing_ttl=10.0, max_entries=2)
    await names.put({numbers[0]: "G0", numbers[1]: None})
    found = (await names.claim(numbers[:2], ttl=30.0)).found
    assert found == {numbers[0]: ("G0", pytest.approx(100.0, abs=5)),
                     numbers[1]: (None, pytest.approx(10.0, abs=5))}
    await names.put({numbers[2]: "G2"})
    found = (await names.claim(numbers, ttl=30.0)).found
    assert set(found) == {numbers[0], numbers[2]}  # two at most: the miss went first
    before = patchy.updates
    await names.put({})
    await names.release([])
    assert patchy.updates == before  # nothing to write: the share is not asked


async def test_nothing_to_claim_asks_nothing_and_any_iterable_will_do(patchy: Patchy) -> None:
    names = SharedNames(patchy, "names:x", owner="me")
    assert await names.claim([], ttl=30.0) == Claimed()
    assert await names.claim([], ttl=30.0, lead=True) == Claimed()
    assert patchy.updates == 0
    low, high = two_shards()
    claimed = await names.claim(iter([high, low]), ttl=30.0)  # (read once)
    assert claimed.mine == [high, low]
    assert (await names.claim((n for n in [low, high]), ttl=30.0, lead=True)).mine == [
        low, high]


async def test_a_round_that_fails_is_said_once_with_its_first_failure(
        patchy: Patchy, caplog: pytest.LogCaptureFixture) -> None:
    low, high = two_shards()
    names = SharedNames(patchy, "names:x", owner="me")
    patchy.down = {shard_of(low), shard_of(high)}
    with caplog.at_level(logging.WARNING, logger="arena_async.arena.items"):
        assert (await names.claim([high, low], ttl=30.0)).mine == [high, low]
        # A lead claim of one shard that cannot be reached: said once, not "again" too.
        assert (await names.claim([low], ttl=30.0, lead=True)).mine == [low]
        await names.put({})  # nothing to write: the share is neither asked nor said back
        await names.release([])
    [said] = [r.getMessage() for r in caplog.records]
    assert f"document {shard_of(high)} is away" in said  # the first number's shard


async def test_an_opener_that_cannot_open_the_share_gives_every_number_to_ask(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    share = SQLiteShare(tmp_path / "s.db")

    async def opener() -> None:
        raise ShareUnavailableError("cannot open it", share=share.name)

    names = SharedNames(share, "names:x", opener=opener)
    low, high = two_shards()
    with caplog.at_level(logging.WARNING, logger="arena_async.arena.items"):
        assert await names.claim([high, low], ttl=30.0) == Claimed(mine=[high, low])
    assert "without the share: share " in caplog.text
    assert "cannot open it" in caplog.text


async def test_each_sharer_has_its_own_name(tmp_path: Path) -> None:
    share = SQLiteShare(tmp_path / "s.db")
    a, b = SharedNames(share, "names:x"), SharedNames(share, "names:x")
    assert a.owner != b.owner
    assert len(a.owner) == 16
    assert int(a.owner, 16) >= 0
    assert SharedNames(share, "names:x", owner="me").owner == "me"


# ------------------------------------------------------------- clients on one share


def client(fake: FakeArena, share: Share | None, **kw: Any) -> ArenaClient:
    return ArenaClient(email=fake.email, password=fake.password,
                       workspace_id=fake.workspace_id, base_url=fake.url, share=share, **kw)


async def test_a_second_sharer_never_asks_again(make_share: ShareFactory) -> None:
    async with FakeArena() as fake:
        numbers = [f"PN-{n:06d}" for n in range(120)]
        guids = {n: fake.add_item(number=n) for n in numbers}
        first = client(fake, make_share())
        second = client(fake, make_share())
        async with first, second:
            got = await first.items.guids_for([*numbers[:100], "NOPE"])
            assert got == {**{n: guids[n] for n in numbers[:100]}, "NOPE": None}
            assert fake.stats.by_route[SEARCH] == 2  # 101 numbers: two batches
            fake.clear_requests()
            # The second client asks Arena only for what nobody resolved.
            batches = [b async for b in second.items.guid_batches([*numbers, "NOPE"])]
            assert asked(fake) == numbers[100:]
            assert {b.source for b in batches} == {"share", "arena"}
            shared = next(b for b in batches if b.source == "share")
            assert shared.found == {**{n: guids[n] for n in numbers[:100]}, "NOPE": None}
            assert shared.requests == 0
            # ... and the first, new numbers resolved by the second.
            fake.clear_requests()
            first.items._lookups.forget()  # only the share knows now
            assert await first.items.guids_for(numbers) == guids
            assert fake.stats.by_route[SEARCH] == 0


async def test_shares_are_scoped_by_workspace(tmp_path: Path) -> None:
    async with FakeArena() as fake, FakeArena(workspace_id=5) as other:
        fake.add_item(number="PN-1")
        theirs = other.add_item(number="PN-1")
        async with client(fake, SQLiteShare(tmp_path / "s.db")) as a:
            await a.items.guids_for(["PN-1"])
        async with ArenaClient(email=other.email, password=other.password, workspace_id=5,
                               base_url=other.url, share=SQLiteShare(tmp_path / "s.db")) as b:
            assert await b.items.guids_for(["PN-1"]) == {"PN-1": theirs}
        assert other.stats.by_route[SEARCH] == 1


async def test_a_share_that_fails_only_costs_the_map(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    share = SQLiteShare(tmp_path / "s.db")
    names = SharedNames(share, "names:x")  # the share is not open: every step fails
    with caplog.at_level(logging.WARNING, logger="arena_async.arena.items"):
        assert (await names.claim(["PN-1"], ttl=60.0)).mine == ["PN-1"]  # ask Arena
        await names.put({"PN-1": "G1"})
        assert (await names.claim(["PN-1"], ttl=60.0)).found == {}
        assert caplog.text.count("without the share") == 1  # said once
        await share.acquire()
        try:
            await names.put({"PN-1": "G1"})
            found = (await names.claim(["PN-1"], ttl=60.0)).found
            assert found == {"PN-1": ("G1", pytest.approx(FOUND_TTL, abs=5))}
        finally:
            await share.release()
    assert "use the share" in caplog.text


async def test_the_share_map_survives_its_store_being_wiped(make_share: ShareFactory) -> None:
    async with FakeArena() as fake:
        guid = fake.add_item(number="PN-1")
        share = make_share()
        async with client(fake, share) as arena:
            await arena.items.guids_for(["PN-1"])
            for shard in range(SHARDS):  # a FLUSHALL / a replaced file
                await share.update(f"{arena.items._lookups.names.key}:{shard}",  # type: ignore[union-attr]
                                   lambda doc, now: (None, None))
            arena.items._lookups.forget()
            assert await arena.items.guids_for(["PN-1"]) == {"PN-1": guid}
            assert fake.stats.by_route[SEARCH] == 2  # asked again, nothing worse


# ---------------------------------------------------------------- real processes


async def test_processes_never_ask_again_for_resolved_numbers(
        share_config: dict[str, Any], workers: Workers) -> None:  # noqa: F811
    async with FakeArena() as fake:
        numbers = [f"PN-{n:06d}" for n in range(200)]
        guids = {n: fake.add_item(number=n) for n in numbers}
        [first] = await workers.start_many(
            [config_for(fake, share_config, [], numbers=[*numbers[:150], "NOPE"])])
        workers.go()
        [one] = await workers.results([first])
        assert one["guids"] == {**{n: guids[n] for n in numbers[:150]}, "NOPE": None}
        before = asked(fake)
        assert sorted(before) == sorted([*numbers[:150], "NOPE"])
        # Three more processes at once, each wanting all 200 and NOPE.
        procs = await workers.start_many(
            [config_for(fake, share_config, [], numbers=[*numbers, "NOPE"])] * 3,
            wait_go=False)
        results = await workers.results(procs)
        for result in results:
            assert result["guids"] == {**guids, "NOPE": None}
        after = asked(fake)[len(before):]
        # None asks again for what the first resolved; the 50 new ones once in all (they
        # start together: one claims them, the others wait for its answer).
        assert sorted(after) == numbers[150:]
