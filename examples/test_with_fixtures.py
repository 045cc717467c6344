"""A user's test suite for their own Arena and Akana code, on arena_async's pytest fixtures.

It tests the two example jobs beside it (``etl_sqlite.py``, ``akana_tickets.py``) against
the fakes: real HTTP on loopback, fault injection, the quota. Needs pytest and
pytest-asyncio (``pip install 'arena_async[testing]'``); the fixtures come from the plugin
that installing arena_async registers. Run it with ``pytest examples/test_with_fixtures.py``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from akana_tickets import report
from etl_sqlite import open_db, run_etl

from arena_async import AkanaClient, ArenaClient, QuotaPolicy
from arena_async.testing import FakeAkana, FakeArena, Fault

TICKETS = "GET /items/{item}/tickets"


def client_for(fake: FakeArena, quota: QuotaPolicy | None = None,
               share: bool | None = None) -> ArenaClient:
    return ArenaClient(email=fake.email, password=fake.password,
                       workspace_id=fake.workspace_id, base_url=fake.url,
                       quota=quota or QuotaPolicy(), share=share)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = open_db(tmp_path / "arena.db")
    yield connection
    connection.close()


def ticket_rows(db: sqlite3.Connection) -> set[tuple[str, str]]:
    return set(db.execute("SELECT item_guid, guid FROM ticket_refs"))


def expected_ticket_rows(fake: FakeArena, guids: list[str]) -> set[tuple[str, str]]:
    return {(guid, t["guid"]) for guid in guids for t in fake.ticket_refs(guid)}


@pytest.mark.asyncio
async def test_loads_every_item(fake_arena: FakeArena, db: sqlite3.Connection) -> None:
    guids = fake_arena.item_guids[:20]
    async with client_for(fake_arena) as arena:
        summary = await run_etl(arena, guids, db)
    assert (summary.items_done, summary.failures, summary.quota_spent) == (20, {}, None)
    assert ticket_rows(db) == expected_ticket_rows(fake_arena, guids)
    records = {(g, r["guid"]) for g in guids for r in fake_arena.training_records(g)}
    assert set(db.execute("SELECT item_guid, guid FROM training_records")) == records
    assert len(fake_arena.requests_to(TICKETS)) == 20  # one request per item and listing


@pytest.mark.asyncio
async def test_survives_server_errors(fake_arena: FakeArena, db: sqlite3.Connection) -> None:
    # Ten ticket listings answered 503 once each: every one is retried and succeeds. One
    # rule per item: a rule for any ten 503s could hand all of one item's attempts a 503
    # when its retries come before the other items' first requests.
    guids = fake_arena.item_guids[:20]
    for guid in guids[::2]:
        fake_arena.faults.add(Fault("status", status=503, retry_after="0",
                                    path=f"/items/{guid}/tickets$", times=1))
    async with client_for(fake_arena) as arena:
        summary = await run_etl(arena, guids, db)
    assert (summary.items_done, summary.failures) == (20, {})
    assert fake_arena.faults.fired["status"] == 10
    assert ticket_rows(db) == expected_ticket_rows(fake_arena, guids)


@pytest.mark.asyncio
async def test_a_failed_item_is_retried_by_the_next_run_alone(
        fake_arena: FakeArena, db: sqlite3.Connection) -> None:
    guids = fake_arena.item_guids[:10]
    broken = fake_arena.faults.add(Fault("status", status=404, path=f"/items/{guids[3]}/"))
    async with client_for(fake_arena) as arena:
        first = await run_etl(arena, guids, db)
    assert list(first.failures) == [guids[3]]
    assert "NotFoundError" in first.failures[guids[3]]
    fake_arena.faults.remove(broken)
    fake_arena.clear_requests()
    async with client_for(fake_arena) as arena:
        second = await run_etl(arena, guids, db)
    assert (second.items_done, second.items_skipped) == (1, 9)
    assert {r.path.split("/")[3] for r in fake_arena.requests_to(TICKETS)} == {guids[3]}
    assert ticket_rows(db) == expected_ticket_rows(fake_arena, guids)


@pytest.mark.asyncio
async def test_stops_when_the_quota_is_spent_and_resumes_after_the_reset(
        fake_arena_factory: Callable[..., Awaitable[FakeArena]],
        db: sqlite3.Connection) -> None:
    fake = await fake_arena_factory(items=12, quota_limit=20, quota_window=3600)
    # Each run alone (share=False): the test ends the window early with set_quota, and a
    # share would rightly remember the spent window until its announced reset.
    async with client_for(fake, quota=QuotaPolicy(reserve=0), share=False) as arena:
        first = await run_etl(arena, fake.item_guids, db, concurrency=2)
    assert first.quota_spent is not None
    assert 0 < first.items_done < 12
    done = {row[0] for row in db.execute("SELECT item_guid FROM done")}
    # Every item marked done is complete; no item is half-written.
    assert ticket_rows(db) == expected_ticket_rows(fake, sorted(done))

    fake.set_quota(remaining=1000)  # the daily reset
    async with client_for(fake, share=False) as arena:
        second = await run_etl(arena, fake.item_guids, db, concurrency=2)
    assert second.quota_spent is None
    assert second.items_done + second.items_skipped == 12
    assert second.items_skipped == first.items_done
    assert ticket_rows(db) == expected_ticket_rows(fake, fake.item_guids)


@pytest.mark.asyncio
async def test_akana_report(fake_akana: FakeAkana, tmp_path: Path) -> None:
    async with AkanaClient(base_url=fake_akana.url, email=fake_akana.email,
                           password=fake_akana.password) as akana:
        result = await report(akana, "OPEN", jsonl=tmp_path / "open.jsonl")
    open_tickets = [t for t in fake_akana.tickets if t["State"] == "OPEN"]
    assert result.total == len(open_tickets) > 0
    assert sum(result.per_api.values()) == result.total
    lines = (tmp_path / "open.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == result.total
    assert len(result.oldest) == 3
