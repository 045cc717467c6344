"""What sharing costs in round trips to the share: a sharer takes quota admissions in
batches (a few ledger steps per thousand requests), and a Redis step is one command when
nobody else changed the document meanwhile (counted by the real redis-server)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from arena_async import ArenaClient, QuotaPolicy, RedisShare, Share, SQLiteShare
from arena_async._share._ledger import SharedLedger
from arena_async._share._state import Doc, Now
from arena_async.testing import FakeArena
from tests.share.conftest import RedisServer, ShareFactory

REQUESTS = 600
CONCURRENCY = 8
# A sync round in the middle would add steps the bulk did not cause.
QUIET = {"sync_interval": 60.0, "member_ttl": 150.0}


async def _close(client: Any) -> None:
    # aclose() from redis-py 5.0.1 on; close() before it (the floor is 5.0)
    await (client.aclose() if hasattr(client, "aclose") else client.close())


async def _commands(server: RedisServer) -> tuple[int, int]:
    """Since redis-server's last CONFIG RESETSTAT: the commands sharers sent (each a round
    trip), and the GETs. INFO counts the commands a script runs too: GET, SET, DEL, TIME are
    only ever run by the share's scripts, so they are left out of the first count."""
    client = aioredis.Redis(host="127.0.0.1", port=server.port)
    try:
        stats = await client.info("commandstats")
    finally:
        await _close(client)
    calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    sent = sum(n for k, n in calls.items()
               if k not in ("get", "set", "del", "time", "info", "config|resetstat"))
    return sent, calls.get("get", 0)


async def _reset_stats(server: RedisServer) -> None:
    client = aioredis.Redis(host="127.0.0.1", port=server.port)
    try:
        await client.config_resetstat()
    finally:
        await _close(client)


async def _bulk(share: Share, before: Callable[[], Awaitable[None]] | None = None) -> int:
    """A shared client's bulk of REQUESTS after its first request (then ``before()``): the
    ledger's steps during the bulk."""
    async with FakeArena.seeded(items=50, seed=7, quota_limit=10**6) as fake, ArenaClient(
            email=fake.email, password=fake.password, workspace_id=fake.workspace_id,
            base_url=fake.url, max_concurrency=CONCURRENCY, share=share) as arena:
        guids = fake.item_guids
        await arena.items.tickets.list(guids[0])  # logged in, a member of the ledger
        link = arena.share_link
        assert link is not None
        first = link.ledger.contacts
        if before is not None:
            await before()
        outcomes = [o async for o in arena.bulk(
            arena.items.tickets.list, [guids[i % len(guids)] for i in range(REQUESTS)])]
        assert all(o.ok for o in outcomes)
        return link.ledger.contacts - first


async def test_a_sharer_asks_the_ledger_once_per_batch(make_share: ShareFactory) -> None:
    steps = await _bulk(make_share(**QUIET))
    # Batches of 4 x max_concurrency: one step per 32 admissions, and the first and last.
    assert steps <= REQUESTS // (3 * CONCURRENCY) + 2
    assert steps * 1000 / REQUESTS <= 45  # ledger steps per 1,000 admissions


async def test_a_redis_ledger_step_is_one_command(own_redis: RedisServer) -> None:
    share = RedisShare(own_redis.url, prefix="rt:", **QUIET)

    steps = await _bulk(share, lambda: _reset_stats(own_redis))
    # Counted after the client closed: leaving the ledger and the session is 2 steps more.
    sent, reads = await _commands(own_redis)
    assert steps > 0
    # One script per step (two per step would be 2 x steps). A step runs again when its
    # estimate of Redis's time lags by more than the bound: a loop stalled for half a second
    # on a loaded box (measured: 24 commands for 20 steps under a full suite and a mutation
    # run); a fifth of the steps is room for that, far below a second command per step.
    assert sent <= steps + 2 + steps // 5
    assert reads <= sent  # each reads the document once


def _counting(seen: list[float]) -> Any:
    """A step that adds one to the document's count and records the time it ran at."""

    def step(doc: Doc | None, now: Now) -> tuple[Doc | None, int]:
        seen.append(now.tick)
        count = int((doc or {}).get("count", 0)) + 1
        return {"count": count}, count

    return step


async def test_a_redis_step_on_a_document_changed_meanwhile_runs_again(
        redis_server: RedisServer) -> None:
    prefix = f"again:{uuid.uuid4().hex[:8]}:"
    a, b = RedisShare(redis_server.url, prefix=prefix), RedisShare(redis_server.url,
                                                                    prefix=prefix)
    await a.acquire()
    await b.acquire()
    try:
        counts = []
        for _ in range(10):  # each remembers a document the other has changed since
            counts.append(await a.update("n", _counting([])))
            counts.append(await b.update("n", _counting([])))
        assert counts == list(range(1, 21))
    finally:
        await a.release()
        await b.release()


@pytest.mark.parametrize("shift", [10.0, -10.0])
async def test_a_redis_step_runs_at_redis_time_when_the_estimate_is_off(
        redis_server: RedisServer, shift: float) -> None:
    share = RedisShare(redis_server.url, prefix=f"off:{uuid.uuid4().hex[:8]}:")
    await share.acquire()
    try:
        await share.update("n", _counting([]))
        # This machine's estimate of Redis's time is ten seconds ahead (it never should be)
        # or behind (Redis's clock was set forward): the script refuses the step's write,
        # and the step runs again at Redis's time.
        key = share.prefix + "n"
        text, at, since = share._seen[key]
        share._seen[key] = (text, at + int(shift * 1e6), since)
        times: list[float] = []
        assert await share.update("n", _counting(times)) == 2
        assert len(times) == 2
        assert abs(times[0] - times[1] - shift) < 1
        assert times[1] * 1e6 >= at
        # The next step, on the document it wrote, needs no second try.
        times.clear()
        assert await share.update("n", _counting(times)) == 3
        assert len(times) == 1
    finally:
        await share.release()


# -- a report that must go out is not lost in a round trip already under way -------------
class _Gated(SQLiteShare):
    """A SQLite share whose steps wait at a gate while it is armed."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def update(self, key: str, step: Any) -> Any:
        gate = self.gate
        if gate is not None:
            self.entered.set()
            await gate.wait()
        return await super().update(key, step)


def _ledger(share: Share, member: str, sleep: Callable[[float], Awaitable[None]]
            ) -> SharedLedger:
    opened: list[bool] = []

    async def opener() -> None:
        if not opened:
            opened.append(True)
            await share.acquire()

    return SharedLedger(share, "ledger:t", member, policy=QuotaPolicy(), batch=8,
                        member_ttl=15.0, probe_ttl=10.0, sleep=sleep, opener=opener)


async def _never(seconds: float) -> None:
    raise AssertionError(f"waited {seconds} s: the probe is still held")


@pytest.mark.parametrize("report", ["leaving", "probe_lost"])
async def test_a_report_made_during_a_round_trip_goes_out_after_it(
        tmp_path: Path, report: str) -> None:
    """The probe's end (no reading) and a sharer's leaving are what the other sharers wait
    for: made while another round trip of the same sharer is under way (its report taken
    before), they go out in one more round trip after it, not joined to it. Seen as a 10 s
    wait (the probe's ttl) for the next client after a too-large answer to the probe."""
    a_share, b_share = _Gated(tmp_path / "share.db"), SQLiteShare(tmp_path / "share.db")
    a = _ledger(a_share, "a", _never)
    b = _ledger(b_share, "b", _never)
    try:
        assert await a.take() is False  # the window is unknown: a holds its one probe
        a_share.gate = gate = asyncio.Event()
        under_way = asyncio.ensure_future(a.sync())  # reports a's membership, no more
        await a_share.entered.wait()
        if report == "leaving":
            after: asyncio.Future[None] = asyncio.ensure_future(a.close())
        else:
            a.ended(None, None, lost=True)  # the probe's request: no answer, no reading
            after = asyncio.ensure_future(a.sync())
        await asyncio.sleep(0)
        a_share.gate = None
        gate.set()
        await under_way
        await after
        assert await b.take() is False  # b probes at once: a's probe was given up
    finally:
        await a.close()
        await b.close()
        await a_share.release()
        await b_share.release()


async def test_a_one_off_admission_asks_for_no_batch_ahead(tmp_path: Path) -> None:
    """The last sharer's logout takes one admission (``try_take``): that is one round trip,
    not one more in the background for a batch that nobody will spend."""
    share = SQLiteShare(tmp_path / "share.db")
    ledger = _ledger(share, "a", _never)
    try:
        assert await ledger.take() is False  # the probe
        ledger.ended(1000, time.time() + 3600)  # its reading: a window with budget
        await ledger.sync()
        before = ledger.contacts
        assert await ledger.try_take() is True
        await asyncio.sleep(0.3)  # (time for a round trip in the background, if any)
        assert ledger.contacts == before + 1
    finally:
        await ledger.close()
        await share.release()


async def test_a_one_off_admission_made_during_a_sync_is_still_granted(
        tmp_path: Path) -> None:
    """The logout's one admission (``try_take``), asked while a sync's round trip (which
    wants none) is under way: joining that round trip brings no admission, so it asks
    again instead of giving up. Seen as a last sharer that did not log out, on a box too
    loaded for the sync to be done by the close."""
    share = _Gated(tmp_path / "share.db")
    ledger = _ledger(share, "a", _never)
    try:
        assert await ledger.take() is False  # the probe
        ledger.ended(1000, time.time() + 3600)  # its reading: a window with budget
        share.gate = gate = asyncio.Event()
        under_way = asyncio.ensure_future(ledger.sync())
        await share.entered.wait()
        taking = asyncio.ensure_future(ledger.try_take())
        await asyncio.sleep(0)
        share.gate = None
        gate.set()
        await under_way
        assert await taking is True
    finally:
        await ledger.close()
        await share.release()
