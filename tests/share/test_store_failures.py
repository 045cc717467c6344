"""The share when its store fails: state lost (FLUSHALL, a Redis restart without
persistence, a sharer paused past its membership), readings that are not the truth, a
lease holder stopped past its lease, short outages, and shares that can never work.

Real processes (forked by tests/share/_zygote.py), a real redis-server of each test's
own (so that it can be restarted, flushed and stopped), real SQLite files, FakeArena in
the test process counting what it served. "The reserve intact": what FakeArena counted
against its quota never reaches into the workspace's reserve, and it answered no 429.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from arena_async.testing import FakeArena, Fault
from tests.share.conftest import RedisServer
from tests.share.test_multiprocess import ROUTE, Workers, config_for, total

#: Short timings: a sharer re-registers within a sync interval, the recovery after a loss
#: lasts two (0.45 s), a member stopped for three seconds has expired. (The lease and the
#: membership outlast a stall of this loaded machine, 1.5 s and more: a stall of every
#: process past them would rightly count them all as gone.)
FAST = {"sync_interval": 0.1, "member_ttl": 2.5, "lease_ttl": 2.5, "probe_ttl": 2.5}


def redis_config(server: RedisServer) -> dict[str, Any]:
    return {"share": server.url, "prefix": "sf:", "timings": FAST}


async def flushall(server: RedisServer) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis(host="127.0.0.1", port=server.port)
    try:
        await client.flushall()
    finally:
        # aclose() from redis-py 5.0.1 on; close() before it (the floor is 5.0)
        await (client.aclose() if hasattr(client, "aclose") else client.close())


async def served(fake: FakeArena, n: int, timeout: float = 30) -> None:
    """Until FakeArena has answered ``n`` item requests."""
    deadline = time.monotonic() + timeout
    while fake.stats.by_route.get(ROUTE, 0) < n:
        assert time.monotonic() < deadline, fake.stats.by_route
        await asyncio.sleep(0.005)


def assert_reserve_intact(fake: FakeArena, limit: int, reserve: int) -> int:
    used = limit - fake.quota_remaining
    assert fake.stats.quota_exhausted == 0
    assert used <= limit - reserve, (used, fake.stats.by_route)
    return used


async def spend_to_the_reserve(fake: FakeArena, workers: Workers, share: dict[str, Any],
                               *, n: int = 4, reserve: int, concurrency: int = 16,
                               **extra: Any) -> None:
    await workers.start_many([config_for(fake, share, fake.item_guids, reserve=reserve,
                                         stop_on_quota=True, concurrency=concurrency,
                                         **extra)] * n)


# -- state lost ---------------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["flushall", "restart", "sqlite-emptied"])
async def test_state_lost_mid_run_spends_none_of_the_reserve(
        loss: str, own_redis: RedisServer, workers: Workers, tmp_path: Path) -> None:
    limit, reserve = 1000, 200
    db = tmp_path / "share.db"
    share = (redis_config(own_redis) if loss != "sqlite-emptied"
             else {"share": f"sqlite:///{db}", "timings": FAST})
    async with FakeArena.seeded(items=400, seed=31, quota_limit=limit, latency=0.002) as fake:
        await spend_to_the_reserve(fake, workers, share, reserve=reserve)
        workers.go()
        await served(fake, 250)
        if loss == "flushall":
            await flushall(own_redis)
        elif loss == "restart":  # restarted without persistence: empty, and gone a moment
            own_redis.stop()
            own_redis.start()
        else:  # what the sharers meet in a SQLite file made again: nothing
            with sqlite3.connect(db, isolation_level=None) as conn:
                conn.execute("DELETE FROM arena_share")
            conn.close()
        results = await workers.results()
        kinds = total(results)
        assert set(kinds) == {"ok", "QuotaExhaustedError"}, kinds
        used = assert_reserve_intact(fake, limit, reserve)
        assert used >= limit - reserve - 40, used  # the budget was used, not lost
        # The sharers put their session back: nobody logged in again. (No logout: the
        # budget left is the reserve; test_logout_after_a_loss shows the logout.)
        assert fake.stats.logins == 1
        assert fake.stats.logouts == 0


async def test_a_sharer_stopped_past_its_membership_spends_none_of_the_reserve(
        share_config: dict[str, Any], workers: Workers, tmp_path: Path) -> None:
    limit, reserve = 800, 100
    release = tmp_path / "release"
    share = {**share_config, "timings": FAST}
    async with FakeArena.seeded(items=400, seed=32, quota_limit=limit, latency=0.002) as fake:
        procs = await workers.start_many([config_for(
            fake, share, fake.item_guids, reserve=reserve, stop_on_quota=True,
            concurrency=16, close_after=str(release))] * 4)
        workers.go()
        await served(fake, 150)
        paused = procs[0]
        paused.send_signal(signal.SIGSTOP)
        try:
            # The others spend the budget down to the reserve while its entry expires.
            for proc in procs[1:]:
                line = await asyncio.wait_for(proc.stdout.readline(), 30)
                assert line == b"WAITING\n", line
            await asyncio.sleep(FAST["member_ttl"] + 0.5)
        finally:
            paused.send_signal(signal.SIGCONT)
        release.touch()
        results = await workers.results()
        assert set(total(results)) == {"ok", "QuotaExhaustedError"}, total(results)
        assert_reserve_intact(fake, limit, reserve)


# -- readings that are not the truth ---------------------------------------------------------
@pytest.mark.parametrize("fault", ["poisoned", "jitter"])
async def test_readings_that_are_not_the_truth_never_open_a_window(
        fault: str, share_config: dict[str, Any], workers: Workers) -> None:
    limit, reserve = 1000, 100
    share = {**share_config, "timings": FAST}
    async with FakeArena.seeded(items=400, seed=33, quota_limit=limit, latency=0.002) as fake:
        await spend_to_the_reserve(fake, workers, share, reserve=reserve)
        if fault == "jitter":
            fake.reset_jitter = 3
        workers.go()
        if fault == "poisoned":
            await served(fake, 200)
            fake.poison_quota(remaining=10**9, resets_in=30 * 86400.0)
            await served(fake, 500)
            fake.poison_quota(remaining=50_000, resets_in=3600.0)  # above the limit
        results = await workers.results()
        assert set(total(results)) == {"ok", "QuotaExhaustedError"}, total(results)
        used = assert_reserve_intact(fake, limit, reserve)
        assert used >= limit - reserve - 40, used


# -- fencing ----------------------------------------------------------------------------------
async def test_a_lease_holder_stopped_past_its_lease_cannot_publish_its_cancelled_session(
        share_config: dict[str, Any], workers: Workers) -> None:
    share = {**share_config, "timings": FAST}
    async with FakeArena.seeded(items=200, seed=34, latency=0.002) as fake:
        # The victim's login is done at the server, its answer slow to arrive: it is
        # stopped before it can publish the session, past its lease.
        fake.faults.add(Fault("slow_body", delay=0.5, path="/login$", times=1))
        victim = await workers.start(config_for(fake, share, fake.item_guids[:20]),
                                     wait_go=False)
        deadline = time.monotonic() + 20
        while fake.stats.logins < 1:
            assert time.monotonic() < deadline, "the victim never logged in"
            await asyncio.sleep(0.002)
        victim.send_signal(signal.SIGSTOP)
        try:
            others = await workers.start_many([config_for(fake, share, fake.item_guids)] * 3)
            workers.go()
            await served(fake, 100)  # they took the lease over and log in once
            assert fake.stats.logins == 2
        finally:
            victim.send_signal(signal.SIGCONT)
        results = await workers.results([*others, victim])
        assert total(results) == {"ok": 620}
        # The victim adopted the newer session instead of publishing its cancelled one
        # (which would cost a third login and a 401 for every sharer).
        assert fake.stats.logins == 2, fake.stats.logins
        assert fake.stats.unauthorized <= 1, fake.stats.unauthorized


# -- outages ----------------------------------------------------------------------------------
@pytest.mark.parametrize("outage", ["killed", "stopped", "flushall"])
async def test_a_two_second_redis_outage_fails_no_call(outage: str, own_redis: RedisServer,
                                                      workers: Workers) -> None:
    """Also: after a loss (killed: back empty; flushall) the last sharer logs out, once."""
    async with FakeArena.seeded(items=500, seed=35, latency=0.002) as fake:
        await workers.start_many([config_for(fake, redis_config(own_redis), fake.item_guids,
                                             concurrency=16)] * 4)
        workers.go()
        await served(fake, 300)
        assert own_redis.proc is not None
        if outage == "killed":  # back after 2 s, empty (no persistence)
            own_redis.stop()
            await asyncio.sleep(2.0)
            own_redis.start()
        elif outage == "flushall":
            await flushall(own_redis)
        else:  # stopped past every membership (its clock goes on)
            own_redis.proc.send_signal(signal.SIGSTOP)
            await asyncio.sleep(FAST["member_ttl"] + 0.5)
            own_redis.proc.send_signal(signal.SIGCONT)
        results = await workers.results()
        assert total(results) == {"ok": 2000}
        assert fake.stats.logins == 1
        assert fake.stats.logouts == 1


