"""Shared test helpers: the vendor material, a fake clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def vendor_dir() -> Path:
    """../shared/vendor when present (CI has it beside the clone), else the copy in tests/data."""
    shared = SHARED / "vendor"
    return shared if (shared / "arena-samples").is_dir() else REPO / "tests" / "data"


class FakeClock:
    """A wall clock and a sleep that advances it: waits take no real time."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()
