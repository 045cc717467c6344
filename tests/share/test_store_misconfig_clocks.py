"""The share when its host's clock steps or skews (SQLite, injected clocks), when its store
is briefly away (logged once, waited for), and when it can never work (misconfigured: each
call fails at once with a hint, never waited for or retried). In one process: clients
that each build their own share object over one real file or one real redis-server, as
separate processes would."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from arena_async import (
    ArenaClient,
    QuotaPolicy,
    RedisShare,
    Share,
    ShareMisconfiguredError,
    ShareUnavailableError,
    SQLiteShare,
)
from arena_async.testing import FakeArena
from tests.conftest import Stalls
from tests.share.conftest import RedisServer

FAST = {"sync_interval": 0.1, "member_ttl": 1.0, "lease_ttl": 1.0, "probe_ttl": 2.0}


class Wall:
    """A host's wall clock that an operator (or NTP) can step."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def client(fake: FakeArena, share: Share | str, **kw: Any) -> ArenaClient:
    return ArenaClient(email=fake.email, password=fake.password,
                       workspace_id=fake.workspace_id, base_url=fake.url, share=share, **kw)


async def spend(arena: ArenaClient, guids: list[str]) -> int:
    """Items fetched until the quota says stop."""
    ok = 0
    async with arena.bulk(arena.items.tickets.list, guids) as run:
        async for outcome in run:
            if outcome.error is not None:
                assert type(outcome.error).__name__ == "QuotaExhaustedError", outcome.error
                break
            ok += 1
    return ok


# -- clocks (SQLite: one host) ---------------------------------------------------------------
async def test_a_wall_clock_step_spends_none_of_the_reserve(tmp_path: Path) -> None:
    limit, reserve = 600, 100
    wall = Wall()  # one host: every process reads the same wall clock
    async with FakeArena.seeded(items=300, seed=41, quota_limit=limit, latency=0.003) as fake:
        clients = [client(fake, SQLiteShare(tmp_path / "s.db", clock=wall, **FAST),
                          clock=wall, max_concurrency=8,
                          quota=QuotaPolicy(reserve=reserve)) for _ in range(4)]

        async def step_the_clock() -> None:
            while fake.stats.by_route.get("GET /items/{item}/tickets", 0) < 150:
                await asyncio.sleep(0.005)
            wall.offset += 600.0

        for c in clients:
            await c.open()
        try:
            await asyncio.gather(step_the_clock(),
                                 *(spend(c, fake.item_guids) for c in clients))
        finally:
            for c in clients:
                await c.close()
        assert fake.stats.quota_exhausted == 0
        used = limit - fake.quota_remaining
        assert limit - reserve - 30 <= used <= limit - reserve, used


async def test_a_sharer_whose_clock_runs_ahead_neither_spends_the_reserve_nor_logs_out(
        tmp_path: Path) -> None:
    limit, reserve = 600, 100
    walls = [Wall() for _ in range(4)]
    walls[0].offset = 300.0
    async with FakeArena.seeded(items=300, seed=42, quota_limit=limit, latency=0.003) as fake:
        clients = [client(fake, SQLiteShare(tmp_path / "s.db", clock=w, **FAST), clock=w,
                          max_concurrency=8, quota=QuotaPolicy(reserve=reserve))
                   for w in walls]
        for c in clients:
            await c.open()
        try:
            await asyncio.gather(*(spend(c, fake.item_guids) for c in clients))
        finally:
            for c in clients:
                await c.close()
        assert fake.stats.quota_exhausted == 0
        used = limit - fake.quota_remaining
        assert limit - reserve - 30 <= used <= limit - reserve, used


async def test_a_sharer_whose_clock_runs_ahead_does_not_log_the_others_out(
        tmp_path: Path) -> None:
    walls = [Wall() for _ in range(3)]
    walls[0].offset = 300.0
    async with FakeArena.seeded(items=30, seed=49) as fake:
        clients = [client(fake, SQLiteShare(tmp_path / "s.db", clock=w, **FAST), clock=w)
                   for w in walls]
        for c in clients:
            await c.open()
        try:
            async with Stalls() as stalls:
                await asyncio.gather(*(spend(c, fake.item_guids) for c in clients))
                await asyncio.sleep(0.3)  # a few heartbeats of each, on their own clocks
                await clients[0].close()  # the skewed sharer leaves first: others still run
            # A stall of this process near member_ttl lets every membership lapse, and the
            # leaver then rightly finds itself the last: judged where none was that long.
            judged = max(stalls.gaps, default=0.0) < 0.5
            if judged:
                assert fake.stats.logouts == 0, stalls.gaps
            await clients[1].items.tickets.list(fake.item_guids[0])
        finally:
            for c in clients:
                await c.close()
        if judged:
            assert fake.stats.unauthorized == 0
            assert (fake.stats.logins, fake.stats.logouts) == (1, 1)


# -- outages: waited for, logged once --------------------------------------------------------
async def test_a_short_outage_is_waited_for_and_logged_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="arena_async._share")
    server = RedisServer(tmp_path)
    server.start()
    try:
        async with FakeArena.seeded(items=40, seed=43) as fake, \
                client(fake, RedisShare(server.url, timeout=0.5, outage_wait=5.0, **FAST),
                       max_concurrency=2) as arena:
            guids = fake.item_guids
            await arena.items.tickets.list(guids[0])
            server.stop()

            async def back_soon() -> None:
                await asyncio.sleep(1.0)
                server.start()

            async with Stalls() as stalls:
                started = time.monotonic()
                results = await asyncio.gather(back_soon(), *(arena.items.tickets.list(g)
                                                              for g in guids[1:]))
                assert len(results) == 40
                # Back to work soon after the 1 s outage, not at outage_wait's 5 s (plus
                # the time this process was stopped, or blocked starting redis-server).
                took = time.monotonic() - started
                assert took < 4.0 + stalls.lost(), (took, stalls.gaps)
    finally:
        server.stop()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO
             and "reachable again" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "outage_wait" in warnings[0].getMessage()
    assert len(infos) == 1, infos


def test_outage_wait_is_checked() -> None:
    for bad in (-1, float("nan"), float("inf"), "5", True):
        with pytest.raises(ValueError, match="outage_wait"):
            RedisShare("redis://h:1/0", outage_wait=bad)  # type: ignore[arg-type]
    assert SQLiteShare("/tmp/x.db", outage_wait=0).outage_wait == 0.0
    assert RedisShare("redis://h:1/0").outage_wait == 10.0


# -- misconfigured: at once, with a hint ------------------------------------------------------
async def assert_fails_at_once(fake: FakeArena, share: Share, *words: str) -> None:
    async with client(fake, share, max_concurrency=2) as arena:
        for _ in range(3):
            async with Stalls() as stalls:
                started = time.monotonic()
                with pytest.raises(ShareMisconfiguredError) as info:
                    await arena.items.tickets.list(fake.item_guids[0])
                took = time.monotonic() - stalls.lost() - started
            for word in words:
                assert word in str(info.value), str(info.value)
            assert isinstance(info.value, ShareUnavailableError)
            assert "attempt" not in str(info.value)  # not retried by the pool
        assert took < 0.5, took  # (the first may wait for a TLS handshake to time out)
    assert fake.stats.requests == 0


async def test_a_missing_folder_fails_each_call_at_once(tmp_path: Path) -> None:
    async with FakeArena.seeded(items=1, seed=44) as fake:
        await assert_fails_at_once(fake, SQLiteShare(tmp_path / "nowhere" / "s.db"),
                                   "does not exist", "create it")


async def test_a_file_that_is_not_a_database_fails_each_call_at_once(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not a SQLite database, it is a text file" * 100)
    path.chmod(0o600)
    async with FakeArena.seeded(items=1, seed=45) as fake:
        await assert_fails_at_once(fake, SQLiteShare(path), "not a SQLite database")


async def test_wrong_redis_credentials_fail_each_call_at_once(redis_server: RedisServer,
                                                              ) -> None:
    url = f"redis://someone:s3cret-pw@127.0.0.1:{redis_server.port}/0"
    async with FakeArena.seeded(items=1, seed=46) as fake:
        await assert_fails_at_once(fake, RedisShare(url), "credentials")


async def test_an_unknown_redis_database_fails_each_call_at_once(redis_server: RedisServer,
                                                                 ) -> None:
    async with FakeArena.seeded(items=1, seed=47) as fake:
        await assert_fails_at_once(
            fake, RedisShare(f"redis://127.0.0.1:{redis_server.port}/99"), "database")


async def test_tls_to_a_plain_redis_fails_with_a_tls_hint(redis_server: RedisServer) -> None:
    share = RedisShare(f"rediss://127.0.0.1:{redis_server.port}/0", timeout=0.5)
    async with FakeArena.seeded(items=1, seed=48) as fake:
        started = time.monotonic()
        await assert_fails_at_once(fake, share, "rediss://", "plain Redis")
        assert time.monotonic() - started < 3.0  # a handshake timeout, not outage_wait
