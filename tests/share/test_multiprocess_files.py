"""The SQLite share's file across real OS processes: the default share, and a file deleted
mid-run with a late joiner (the workers and fork server of tests/share/test_multiprocess.py).
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from arena_async.testing import FakeArena
from tests.share.test_multiprocess import (  # noqa: F401 - the fixtures are used by name
    ROUTE,
    Workers,
    config_for,
    total,
    workers,
    zygote,
)


async def until(condition: object, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.01)


async def test_processes_share_through_the_default_share(
        workers: Workers, tmp_path: Path, session_state_home: Path,  # noqa: F811
) -> None:
    joined = tmp_path / "joined"
    joined.mkdir()
    # The fork server's environment: the suite's temporary XDG_STATE_HOME (tests/conftest.py),
    # no ARENA_SHARE.
    folder = session_state_home / "state" / "arena_async"
    async with FakeArena.seeded(items=60, seed=31) as fake:
        await workers.start_many([config_for(fake, {"share": "default"}, fake.item_guids,
                                             joined=str(joined), joined_count=3)] * 3)
        workers.go()
        results = await workers.results()
        assert total(results) == {"ok": 180}
        assert fake.stats.logins == 1
        assert fake.stats.logouts == 1
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(folder / "share.db").st_mode) == 0o600


async def test_a_share_file_deleted_mid_run_is_reopened_and_a_late_joiner_meets_the_others(
        workers: Workers, tmp_path: Path) -> None:  # noqa: F811
    folder = tmp_path / "share"
    folder.mkdir(mode=0o700)
    path = folder / "share.db"
    share = {"share": f"sqlite:///{path}"}
    async with FakeArena.seeded(items=300, seed=32, latency=0.02) as fake:
        guids = fake.item_guids
        early = await workers.start_many([config_for(fake, share, guids, concurrency=4)] * 2)
        workers.go()
        await until(lambda: fake.stats.by_route[ROUTE] >= 100)
        for name in ("share.db", "share.db-wal", "share.db-shm"):  # rm share.db*
            (folder / name).unlink(missing_ok=True)
        late = await workers.start(config_for(fake, share, guids[:150], concurrency=4),
                                   wait_go=False)
        results = await workers.results([*early, late])
        assert total(results) == {"ok": 750}
        # The two that were running reopened the new file within a second of their next
        # use, at once on a 401 (whose re-login looks at the path first), and adopted the
        # late joiner's session there: 2 logins and 8 401s measured (the early requests in
        # flight), where sharers that keep the deleted file wage a login war to the end of
        # the run (85 to 91 logins measured), and those that looked only once a second
        # 4 to 11 logins and, under load, requests failing on repeated 401s.
        assert fake.stats.logins <= 4, fake.stats.logins
        assert fake.stats.unauthorized <= 24, fake.stats.unauthorized
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
