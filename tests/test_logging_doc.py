"""The logging guide (docs/logging.md) names every logger there is, and what it says happens.

(That no log line holds a secret is tests/test_secrets.py's job, at DEBUG everywhere.)
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from arena_async import ArenaClient, RetryPolicy
from arena_async.testing import FakeArena, Fault

REPO = Path(__file__).resolve().parents[1]


def documented_loggers() -> set[str]:
    text = (REPO / "docs" / "logging.md").read_text(encoding="utf-8")
    section = text.split("\n## The loggers\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for row in re.findall(r"^\| `arena_async\.[^|]*\|", section, re.MULTILINE):
        base = ""
        for name in re.findall(r"`([^`]+)`", row):
            if name.startswith("arena_async."):
                base = name.rsplit(".", 1)[0]
                names.add(name)
            elif name.startswith("."):
                names.add(base + name)
    return names


def loggers_in_the_source() -> set[str]:
    found = set()
    for path in (REPO / "arena_async").rglob("*.py"):
        if "getLogger(__name__)" in path.read_text(encoding="utf-8"):
            module = path.relative_to(REPO).with_suffix("").as_posix().replace("/", ".")
            found.add(module.removesuffix(".__init__"))
    return found


def test_the_table_lists_every_logger_and_no_other() -> None:
    assert documented_loggers() == loggers_in_the_source()


async def test_what_is_logged_at_each_level(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="arena_async")
    async with FakeArena.seeded(items=3, seed=1) as fake:
        fake.faults.add(Fault("status", status=503, retry_after="0", path="/tickets", times=1))
        async with ArenaClient(email=fake.email, password=fake.password,
                               workspace_id=fake.workspace_id, base_url=fake.url,
                               retry=RetryPolicy(backoff=0.001)) as arena:
            await arena.items.tickets.list(fake.item_guids[0])
    records = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert ("arena_async.arena._auth", logging.INFO,
            f"logged in to Arena workspace {fake.workspace_id}") in records
    attempts = [m for n, lvl, m in records
                if n == "arena_async._transport" and lvl == logging.DEBUG]
    assert any(re.search(r"^GET \S+/tickets -> 503 \(\d+ ms\)$", m) for m in attempts), attempts
    assert any(re.search(r"^GET \S+/tickets -> 200 \(\d+ ms\)$", m) for m in attempts), attempts
    assert any(m.startswith("retrying GET ") and "attempt 1 failed" in m for m in attempts)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not logging.getLogger("arena_async").handlers  # the library adds none
    for name in loggers_in_the_source():
        assert not logging.getLogger(name).handlers
