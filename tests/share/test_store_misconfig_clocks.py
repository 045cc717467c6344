"""The share when its host's clock steps or skews (SQLite, injected clocks), when its store
is briefly away (logged once, waited for), and when it can never work (misconfigured: each
call fails at once with a hint, never waited for or retried). In one process: clients
that each build their own share object over one real file or one real redis-server, as
separate processes would."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap
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
from arena_async._share._base import then
from arena_async.testing import FakeArena
from tests.conftest import Stalls
from tests.share.conftest import RedisServer, free_port

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


async def test_the_outage_warning_never_doubles_punctuation(
        caplog: pytest.LogCaptureFixture) -> None:
    # redis-py's connection errors end in a full stop: "... Connect call failed (...)."
    caplog.set_level(logging.WARNING, logger="arena_async._share")
    share = RedisShare(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5, outage_wait=0.2)
    async with FakeArena.seeded(items=1, seed=50) as fake, client(fake, share) as arena:
        with pytest.raises(ShareUnavailableError) as info:
            await arena.items.tickets.list(fake.item_guids[0])
    assert not isinstance(info.value, ShareMisconfiguredError)
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert str(info.value).rstrip().endswith("."), str(info.value)  # what made ".;"
    assert ".;" not in warning, warning
    assert warning.endswith(". Waiting up to 0.2 s for it (outage_wait)"), warning


@pytest.mark.parametrize(("text", "joined"), [
    ("refused", "refused; waiting"),
    ("refused.", "refused. Waiting"),
    ("refused. ", "refused. Waiting"),
    ("refused?", "refused? Waiting"),
    ("refused;", "refused; waiting"),
    ("refused.;", "refused. Waiting"),
    ("refused:", "refused; waiting"),
    ("cut short…", "cut short…; waiting"),
    ("", "waiting"),
])
def test_a_message_is_continued_without_doubled_punctuation(text: str, joined: str) -> None:
    assert then(text, "waiting") == joined
    assert then(text, "waiting", ": ") == joined.replace("; ", ": ")


def test_outage_wait_is_checked() -> None:
    for bad in (-1, float("nan"), float("inf"), "5", True):
        with pytest.raises(ValueError, match="outage_wait"):
            RedisShare("redis://h:1/0", outage_wait=bad)  # type: ignore[arg-type]
    assert SQLiteShare("/tmp/x.db", outage_wait=0).outage_wait == 0.0
    assert RedisShare("redis://h:1/0").outage_wait == 10.0


# -- misconfigured: at once, with a hint ------------------------------------------------------
def run_without(module: str, body: str) -> str:
    """``body`` run in a fresh interpreter where ``import <module>`` fails (as when
    redis-py is not installed), before arena_async is imported; its stdout."""
    code = f"import sys\nsys.modules[{module!r}] = None\n" + textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_redis_url_without_redis_py_is_refused_at_construction() -> None:
    out = run_without("redis", """
        import time
        from arena_async import ArenaClient, RedisShare
        from arena_async._share import open_share

        url = "redis://:s3cret-pw@localhost:6379/0"
        for make in (lambda: RedisShare(url), lambda: open_share(url),
                     lambda: ArenaClient(email="a@example.com", password="pw",
                                         workspace_id=1, share=url)):
            started = time.monotonic()
            try:
                make()
            except ValueError as exc:
                print(f"{time.monotonic() - started:.3f} {exc}")
            else:
                print("built")
        """)
    lines = out.splitlines()
    assert len(lines) == 3, out
    for line in lines:
        took, message = line.split(" ", 1)
        assert float(took) < 0.5, line
        assert message == ("share URL 'redis://localhost:6379/0': redis-py is not installed: "
                           "pip install 'arena_async[redis]'"), line


def test_a_redis_py_that_cannot_be_imported_fails_the_first_call_at_once() -> None:
    # Found (so the share is built) but not importable: a broken or too old install.
    out = run_without("redis.asyncio", """
        import asyncio, time
        from arena_async import ArenaClient, ShareMisconfiguredError
        from arena_async.testing import FakeArena

        async def main() -> None:
            async with FakeArena.seeded(items=1, seed=49) as fake:
                async with ArenaClient(email=fake.email, password=fake.password,
                                       workspace_id=fake.workspace_id, base_url=fake.url,
                                       share="redis://127.0.0.1:1/0") as arena:
                    started = time.monotonic()
                    try:
                        await arena.items.tickets.list(fake.item_guids[0])
                    except ShareMisconfiguredError as exc:
                        print(f"{time.monotonic() - started:.3f} {fake.stats.requests} {exc}")

        asyncio.run(main())
        """)
    took, requests, message = out.strip().split(" ", 2)
    assert float(took) < 0.5, out  # not outage_wait (10 s)
    assert requests == "0", out
    assert "redis-py cannot be imported" in message, out
    assert "pip install 'arena_async[redis]'" in message, out


async def assert_fails_at_once(fake: FakeArena, share: Share, *words: str) -> str:
    """Each call fails at once with ShareMisconfiguredError naming ``words``; its message."""
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
    return str(info.value)


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
        message = await assert_fails_at_once(fake, RedisShare(url), "credentials")
    assert ".:" not in message, message  # redis-py's message ends in a full stop


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
