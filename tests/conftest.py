"""Shared test helpers: the vendor material, a fake clock, a stall meter."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


class Stalls:
    """Real time the running loop lost while watched: each gap between its ticks longer than
    a loaded machine's ordinary jitter (the process descheduled, an xdist neighbour on the
    core, a long garbage collection).

    A real-time upper bound on code under test adds :meth:`lost`: the machine stopping this
    process is not the code being slow, while code that is slow (a wait it should not make,
    a deadline it ignores) leaves the loop free to tick and shows no stall. Gaps up to
    ``jitter`` are not counted: the bound's own slack covers them. Example::

        async with Stalls() as stalls:
            started = time.perf_counter()
            await call()
            assert time.perf_counter() - started < 0.35 + stalls.lost()
    """

    def __init__(self, tick: float = 0.01, jitter: float = 0.05) -> None:
        self.tick = tick
        self.jitter = jitter
        self.gaps: list[float] = []  # the stalls seen, in seconds
        self._last = 0.0
        self._task: asyncio.Task[None] | None = None

    def _mark(self) -> None:
        now = asyncio.get_running_loop().time()
        gap = now - self._last - self.tick
        if gap > self.jitter:
            self.gaps.append(gap)
        self._last = now

    def lost(self) -> float:
        """Seconds lost to stalls so far (including one going on since the last tick)."""
        self._mark()
        return sum(self.gaps)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            self._mark()

    async def __aenter__(self) -> Stalls:
        self._last = asyncio.get_running_loop().time()
        self._task = asyncio.create_task(self._watch())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session", autouse=True)
def session_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The same as :func:`private_state_home` for the whole session, under it: what
    module- and session-scoped fixtures (a fork server's workers) inherit."""
    home = tmp_path_factory.mktemp("session-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_STATE_HOME", str(home / "state"))
        patch.setenv("HOME", str(home))
        patch.delenv("ARENA_SHARE", raising=False)
        yield home


@pytest.fixture(autouse=True)
def private_state_home(session_state_home: Path,
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The suite never touches the user's real default share: ``XDG_STATE_HOME`` (and
    ``HOME``, for the platforms that use it) point into a temporary folder of the test's
    own, and ``ARENA_SHARE`` is unset, so a client made with the default ``share=None``
    shares through ``<tmp>/state/arena_async/share.db``. Subprocesses inherit it. One
    folder per test: fakes of two tests may listen on the same port one after the other,
    and must not meet in one share."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_STATE_HOME", str(home / "state"))
        patch.setenv("HOME", str(home))
        patch.delenv("ARENA_SHARE", raising=False)
        yield home


@pytest.fixture(scope="module")
def ca() -> Any:
    """A private certificate authority (trustme), for TLS tests on loopback."""
    import trustme

    return trustme.CA()


@pytest.fixture
def ca_file(ca: Any, tmp_path: Path) -> Path:
    """The CA's certificate as a PEM bundle (what ``ssl=`` / ``--ca-bundle`` take)."""
    path = tmp_path / "corp-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path

