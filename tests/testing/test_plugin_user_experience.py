"""The plugin as a user meets it: a project of their own, run by pytest in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pytest_asyncio")

USER_TESTS = '''
import asyncio

from arena_async import ArenaClient


async def test_async_use(fake_arena):
    async with ArenaClient(email=fake_arena.email, password=fake_arena.password,
                           base_url=fake_arena.url, share=False) as arena:
        assert await arena.items.tickets.list(fake_arena.item_guids[0]) is not None


def test_sync_use(fake_arena):
    async def fetch():
        async with ArenaClient(email=fake_arena.email, password=fake_arena.password,
                               base_url=fake_arena.url, share=False, timeout=60) as arena:
            return await arena.items.tickets.list(fake_arena.item_guids[0])
    asyncio.run(fetch())
'''


def run_user_project(tmp_path: Path, ini: str, tests: str = USER_TESTS,
                     ) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text(ini, encoding="utf-8")
    (tmp_path / "test_user.py").write_text(tests, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:xdist", "-W", "default", "--tb=short"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_a_user_project_sees_no_loop_scope_warning_and_a_clear_error_for_a_sync_test(
        tmp_path: Path) -> None:
    done = run_user_project(tmp_path, "[pytest]\nasyncio_mode = auto\n")
    out = done.stdout + done.stderr
    # pytest-asyncio's warning: 'The configuration option "..." is unset.'
    assert '"asyncio_default_fixture_loop_scope" is unset' not in out, out
    assert "1 passed" in out, out
    assert "1 error" in out, out
    # The sync test fails at once with what to do, instead of hanging until a timeout.
    assert "must be `async def`" in out, out


def test_a_loop_scope_the_project_sets_is_kept(tmp_path: Path) -> None:
    done = run_user_project(
        tmp_path, "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = module\n",
        USER_TESTS.split("def test_sync_use")[0])
    out = done.stdout + done.stderr
    assert "1 passed" in out, out
    assert "is unset" not in out, out
