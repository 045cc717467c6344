"""cache= across real OS processes (tests/share/_worker.py, forked by tests/share/_zygote.py)
on one SQLite share and on one Redis share: an answer missing everywhere is fetched once, and
a filler that dies holds the others back no longer than its marker lives."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

from arena_async.testing import FakeArena, Fault
from tests.share import test_multiprocess as mp
from tests.share.test_multiprocess import ROUTE, Workers, config_for, total

# The fork server and its workers, as in test_multiprocess.py (fixtures by name).
share_config = mp.share_config
workers = mp.workers
zygote = mp.zygote


async def test_four_processes_fetch_each_answer_once(share_config: dict[str, Any],
                                                     workers: Workers, tmp_path: Path) -> None:
    joined = tmp_path / "joined"
    joined.mkdir()
    async with FakeArena.seeded(items=40, seed=21, latency=0.02) as fake:
        keys = fake.item_guids
        await workers.start_many([config_for(fake, share_config, keys, cache_ttl=600.0,
                                             joined=str(joined), joined_count=4)] * 4)
        workers.go()
        results = await workers.results()
        assert total(results) == {"ok": 160}
        assert fake.stats.by_route[ROUTE] == 40  # each answer once, for all four processes
        assert sum(r["stats"]["cache_misses"] for r in results) == 40
        assert sum(r["stats"]["cache_hits"] for r in results) == 120


async def test_a_filler_killed_mid_fetch_holds_the_others_one_marker_at_most(
        share_config: dict[str, Any], workers: Workers) -> None:
    lease_ttl = 2.0  # the fill marker's life; the dead victim's probe of the quota window
    config = {**share_config, "timings": {"lease_ttl": lease_ttl, "probe_ttl": lease_ttl}}
    async with FakeArena.seeded(items=10, seed=22) as fake:
        guid = fake.item_guids[0]
        fake.faults.add(Fault("slow_headers", delay=5.0, path="/tickets$", times=1))
        survivors = await workers.start_many(
            [config_for(fake, config, [guid], cache_ttl=600.0)] * 3)
        spawned = fake.clock()  # the victim takes the fill marker after this
        victim = await workers.start(config_for(fake, config, [guid], cache_ttl=600.0),
                                     wait_go=False)
        deadline = time.monotonic() + 20
        while not fake.requests_to(ROUTE):  # the victim holds the fill marker, fetching
            assert time.monotonic() < deadline, "the victim never asked"
            await asyncio.sleep(0.005)
        os.kill(victim.pid, signal.SIGKILL)
        killed = fake.clock()  # its marker, renewed at most until now, lapses lease_ttl on
        workers.go()
        results = await workers.results(survivors)
        await victim.wait()
        assert victim.returncode == -signal.SIGKILL
        assert total(results) == {"ok": 3}
        assert fake.stats.by_route[ROUTE] == 2  # the victim's, and one for the survivors
        # They waited for the dead filler's marker, no longer: judged on the fake's records
        # and clock (the share's is the machine's too) from instants that provably bound
        # the marker, so that a slow start of the victim, or of this process recording its
        # request, moves neither. Nobody fetched while the marker could still be live
        # (0.1 s: the share's clock read in other processes)...
        theirs = fake.requests_to(ROUTE)[1].received_at
        assert theirs - spawned > lease_ttl - 0.1, (spawned, killed, theirs)
        # ... and they went on once it lapsed: without its expiry they would wait for ever
        # (the victim never stores the answer); the slack covers their polling and a stall
        # of this loaded machine, well short of that.
        assert theirs - killed < lease_ttl + 3.0, (spawned, killed, theirs)
