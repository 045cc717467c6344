"""The item number -> GUID map in the share: the pure steps (expiry, bound), clients on one
SQLite file or one redis-server, and real processes: a number resolved by one sharer is
never asked again by another."""

from __future__ import annotations

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
    SharedNames,
    lookup_step,
    remember_step,
    shard_of,
)
from arena_async._share._state import Now
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
