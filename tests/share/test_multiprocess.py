"""share= across real OS processes (tests/share/_worker.py), over SQLite and Redis.

FakeArena runs in the test process with ``single_session=True`` (its default, as the real
server: each login cancels the user's earlier session) and records every request; each
sharer is a separate OS process with its own ``ArenaClient(share=...)``, forked from a fork
server that imported arena_async once (tests/share/_zygote.py: a worker starts in
milliseconds, not an interpreter's start-up of about half a second of CPU). The workers
start together (a ``go`` file) once they are ready, so the timings measured are the
library's.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from arena_async.testing import FakeArena, Fault

ZYGOTE = Path(__file__).with_name("_zygote.py")
ROUTE = "GET /items/{item}/tickets"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def share_config(share_kind: str, tmp_path: Path, request: pytest.FixtureRequest,
                 ) -> dict[str, Any]:
    """How every worker of one test reaches the same (fresh) share."""
    if share_kind == "sqlite":
        return {"share": f"sqlite:///{tmp_path / 'share.db'}"}
    server = request.getfixturevalue("redis_server")
    return {"share": server.url, "prefix": f"mp:{uuid.uuid4().hex[:8]}:"}


def config_for(fake: FakeArena, share: dict[str, Any], keys: list[str],
               **extra: Any) -> dict[str, Any]:
    return {"base_url": fake.url, "email": fake.email, "password": fake.password,
            "workspace_id": fake.workspace_id, "keys": keys, "concurrency": 8,
            **share, **extra}


class Forked:
    """A worker forked by the fork server (tests/share/_zygote.py), with what the tests use
    of ``asyncio.subprocess.Process``: pid, stdout, stderr, returncode, wait, communicate,
    send_signal, kill."""

    def __init__(self, pid: int, stdout: asyncio.StreamReader, stderr: asyncio.StreamReader,
                 status: asyncio.StreamReader, transports: list[asyncio.BaseTransport]) -> None:
        self.pid = pid
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None
        self._status = status
        self._transports = transports

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    async def wait(self) -> int:
        """Its exit code (negative: the signal that ended it), as the fork server saw it."""
        if self.returncode is None:
            status = await self._status.read()
            if not status:
                raise AssertionError(f"the fork server ended before worker {self.pid}")
            self.returncode = int(status)
        return self.returncode

    async def communicate(self) -> tuple[bytes, bytes]:
        out, err = await asyncio.gather(self.stdout.read(), self.stderr.read())
        await self.wait()
        return out, err

    def close(self) -> None:
        for transport in self._transports:
            transport.close()


class Zygote:
    """The fork server: one process that imported arena_async once; each worker is forked
    from it (a real process, started in milliseconds instead of an interpreter's start)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
        self.errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        with theirs:
            self.proc = subprocess.Popen(
                [sys.executable, str(ZYGOTE), str(theirs.fileno())], cwd=REPO, env=env,
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=self.errors)
        self.sock = ours
        self.sock.settimeout(60)
        try:  # its imports, here (no event loop yet), so that a spawn takes milliseconds
            ready = self.sock.recv(4096)
        except OSError as exc:
            ready = str(exc).encode()
        if ready != b'{"ready": true}':
            self.sock.close()
            self.proc.wait(30)
            why = f"the fork server did not start ({ready!r}):\n{self.stderr()}"
            self.errors.close()
            raise AssertionError(why)

    def stderr(self) -> str:
        self.errors.seek(0)
        return self.errors.read().decode(errors="replace")[-3000:]

    async def spawn(self, config: dict[str, Any]) -> Forked:
        """A worker running ``config``, its output read on the running loop."""
        pipes = [os.pipe() for _ in range(3)]  # stdout, stderr, status
        try:
            try:
                socket.send_fds(self.sock, [json.dumps({"config": config}).encode()],
                                [w for _, w in pipes])
                answer = self.sock.recv(4096)
            except OSError as exc:  # it ended (an import failed?): say why
                raise AssertionError(f"the fork server ended ({exc}):\n{self.stderr()}",
                                     ) from None
            finally:
                for _, w in pipes:
                    os.close(w)
            if not answer:
                raise AssertionError(f"the fork server ended:\n{self.stderr()}")
        except BaseException:
            for r, _ in pipes:
                os.close(r)
            raise
        loop = asyncio.get_running_loop()
        readers: list[asyncio.StreamReader] = []
        transports: list[asyncio.BaseTransport] = []
        for r, _ in pipes:
            reader = asyncio.StreamReader()
            transport, _ = await loop.connect_read_pipe(
                functools.partial(asyncio.StreamReaderProtocol, reader),
                os.fdopen(r, "rb", buffering=0))
            readers.append(reader)
            transports.append(transport)
        stdout, stderr, status = readers
        return Forked(json.loads(answer)["pid"], stdout, stderr, status, transports)

    def close(self) -> None:
        self.sock.close()  # it kills what still runs, then ends
        try:
            self.proc.wait(30)
        finally:
            if self.proc.poll() is None:  # pragma: no cover
                self.proc.kill()
                self.proc.wait()
            self.errors.close()


@pytest.fixture(scope="module")
def zygote() -> Iterator[Zygote]:
    server = Zygote()
    try:
        yield server
    finally:
        server.close()


class Workers:
    """Worker processes started now, released together by :meth:`go`."""

    def __init__(self, go: Path, zygote: Zygote) -> None:
        self.go_file = go
        self.zygote = zygote
        self.procs: list[Forked] = []

    async def start(self, config: dict[str, Any], *, wait_go: bool = True) -> Forked:
        """One worker, once it is ready."""
        return (await self.start_many([config], wait_go=wait_go))[0]

    async def start_many(self, configs: list[dict[str, Any]], *, wait_go: bool = True,
                         ) -> list[Forked]:
        """Workers started at once, returned once all are ready."""
        procs = []
        for config in configs:
            given = {**config, "go": str(self.go_file)} if wait_go else config
            proc = await self.zygote.spawn(given)
            self.procs.append(proc)
            procs.append(proc)
        for proc in procs:
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            if line != b"STARTED\n":
                err = await asyncio.wait_for(proc.stderr.read(), 10)
                raise AssertionError(f"a worker did not start: {line!r}\n"
                                     f"{err.decode()[-3000:]}")
        return procs

    def go(self) -> None:
        self.go_file.touch()

    async def results(self, procs: list[Forked] | None = None,
                      timeout: float = 120) -> list[dict[str, Any]]:
        """Every worker's RESULT (each must exit 0)."""
        async def one(proc: Forked) -> dict[str, Any]:
            out, err = await proc.communicate()
            assert proc.returncode == 0, err.decode()[-3000:]
            lines = [x for x in out.decode().splitlines() if x.startswith("RESULT ")]
            assert lines, (out + err).decode()[-3000:]
            result: dict[str, Any] = json.loads(lines[-1][len("RESULT "):])
            return result
        chosen = procs or self.procs
        try:
            return list(await asyncio.wait_for(asyncio.gather(*(one(p) for p in chosen)),
                                               timeout))
        except TimeoutError:
            stuck = [p for p in chosen if p.returncode is None]
            for proc in stuck:  # each prints its tasks' stacks, then goes
                proc.send_signal(signal.SIGUSR1)
            await asyncio.sleep(1)
            report = []
            for proc in stuck:
                proc.kill()
                report.append((await proc.stderr.read()).decode()[-4000:])
            raise AssertionError(f"{len(stuck)} workers still running after {timeout} s:\n"
                                 + "\n----\n".join(report)) from None

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.kill()


@pytest.fixture
async def workers(tmp_path: Path, zygote: Zygote) -> Any:
    group = Workers(tmp_path / "go", zygote)
    try:
        yield group
    finally:
        group.kill_all()
        for proc in group.procs:
            await proc.wait()
            proc.close()


def total(results: list[dict[str, Any]]) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for result in results:
        kinds.update(result["kinds"])
    return kinds


async def test_four_processes_share_one_session(share_config: dict[str, Any],
                                                workers: Workers, tmp_path: Path) -> None:
    joined = tmp_path / "joined"
    joined.mkdir()
    async with FakeArena.seeded(items=150, seed=11) as fake:
        # None closes before all four joined: one that left the share alone would rightly
        # log out, and a later one log in again (the logouts are counted below).
        await workers.start_many([config_for(fake, share_config, fake.item_guids,
                                             joined=str(joined), joined_count=4)] * 4)
        workers.go()
        results = await workers.results()
        assert total(results) == {"ok": 600}
        assert fake.stats.logins <= 2  # in practice 1: the others adopt it
        assert fake.stats.by_route[ROUTE] == 600  # no request wasted on cancelled sessions
        assert fake.stats.logouts == 1


async def test_expiring_sessions_cost_one_login_each(share_config: dict[str, Any],
                                                     workers: Workers) -> None:
    async with FakeArena.seeded(items=150, seed=12, expire_sessions_every=250) as fake:
        await workers.start_many([config_for(fake, share_config, fake.item_guids)] * 4)
        workers.go()
        results = await workers.results()
        assert total(results) == {"ok": 600}
        with_session = fake.stats.requests - fake.stats.logins - fake.stats.logouts
        expiries = with_session // 250  # at most this many sessions died by the rule
        assert expiries >= 2  # the test exercises it
        assert fake.stats.logins <= expiries + 2, (fake.stats.logins, expiries)


async def test_quota_reserve_holds_across_processes(share_config: dict[str, Any],
                                                    workers: Workers) -> None:
    async with FakeArena.seeded(items=400, seed=13, quota_limit=1000) as fake:
        await workers.start_many([config_for(fake, share_config, fake.item_guids,
                                             reserve=100, stop_on_quota=True)] * 4)
        workers.go()
        results = await workers.results()
        kinds = total(results)
        used = 1000 - fake.quota_remaining
        assert fake.stats.quota_exhausted == 0  # no 429: nobody sent past the budget
        # The reserve is the workspace's, not each process's.
        assert used <= 900, (used, kinds, fake.stats.logouts)
        assert kinds["ok"] >= 880, kinds
        assert set(kinds) <= {"ok", "QuotaExhaustedError"}
        # every process ran until the budget was spent for it, or did all its keys first
        # (one that started early on a loaded box takes batches before the others join)
        assert all(r["kinds"].get("QuotaExhaustedError") or r["kinds"].get("ok") == 400
                   for r in results), results
        assert sum(1 for r in results if r["kinds"].get("QuotaExhaustedError")) >= 2


async def test_the_last_logout_never_spends_the_workspace_reserve(
        share_config: dict[str, Any], workers: Workers, tmp_path: Path) -> None:
    release = tmp_path / "release"
    async with FakeArena.seeded(items=400, seed=17, quota_limit=1000) as fake:
        # One sharer reads the quota early (999 left) and closes last, after the others
        # spent the budget down to the reserve: its own reading says plenty is left, the
        # workspace's ledger says none.
        late = await workers.start(config_for(fake, share_config, fake.item_guids[:1],
                                              reserve=100, close_after=str(release)))
        workers.go()
        assert await asyncio.wait_for(late.stdout.readline(), 30) == b"WAITING\n"
        spenders = await workers.start_many(
            [config_for(fake, share_config, fake.item_guids, reserve=100,
                        stop_on_quota=True)] * 3, wait_go=False)
        results = await workers.results(spenders)
        assert total(results)["ok"] == 899  # 900 with the late sharer's one
        release.touch()
        await workers.results([late])
        assert fake.stats.quota_exhausted == 0
        used = fake.stats.requests - fake.stats.logins
        assert used <= 900, (used, fake.stats.logouts)


async def test_wait_mode_no_stampede_at_the_reset(share_config: dict[str, Any],
                                                  workers: Workers) -> None:
    latency, window = 0.05, 1.0
    async with FakeArena.seeded(items=20, seed=14, quota_limit=30, quota_window=window,
                                latency=latency) as fake:
        await workers.start_many([config_for(fake, share_config, fake.item_guids,
                                             on_exhausted="wait")] * 4)
        window_start = fake.clock()
        fake.set_quota(remaining=30, resets_in=window)  # a full first window from the go
        workers.go()
        results = await workers.results()
        assert total(results) == {"ok": 80}
        assert fake.stats.quota_exhausted == 0
        arrivals = sorted(r.received_at for r in fake.requests_to(ROUTE))
        # Each window's budget goes in a burst; then every sharer waits for the reset
        # (nothing arrives for a while), and the next burst starts at the reset. (Two
        # windows may also run together: the fake announces its reset rounded up to whole
        # seconds, so a reading from the next window can arrive mid-burst and is adopted
        # at once.)
        groups: list[list[float]] = [[arrivals[0]]]
        for before, t in itertools.pairwise(arrivals):
            if t - before >= 0.5 * window:
                groups.append([])
            groups[-1].append(t)
        shape = [(round(g[0] - arrivals[0], 2), len(g)) for g in groups]
        # The fake's windows (its clock, from set_quota on): how many arrived in each.
        per_window = Counter(int((t - window_start) // window) for t in arrivals)
        # (A box too loaded to spend 30 requests in a second spends no window, and no
        # sharer waits (seen once: 80 in one burst): nothing to judge then. Normally the
        # first window is spent in about 0.1 s and each reset is judged below.)
        for before, group in itertools.pairwise(groups):
            # A gap is a wait for the reset when the window the burst before it ended in
            # was spent (30 answered, none refused). A gap after a window left unspent is
            # a stall of this loaded box (CI once: 13, then 1.1 s of nothing): the sharers
            # then resume with the admissions they held, at once, and rightly so.
            if per_window[int((before[-1] - window_start) // window)] < 30:
                continue
            # At each reset one probe learns the new window; nobody else sends before its
            # answer (the fake answers after `latency`).
            assert len(group) == 1 or group[1] - group[0] >= 0.9 * latency, (
                [round(t - group[0], 3) for t in group[:4]], shape, sorted(per_window.items()))


async def test_a_sharer_killed_inside_its_login_blocks_at_most_one_lease(
        share_config: dict[str, Any], workers: Workers) -> None:
    lease_ttl = 2.0
    config = {**share_config, "timings": {"lease_ttl": lease_ttl}}
    async with FakeArena.seeded(items=100, seed=15) as fake:
        fake.faults.add(Fault("slow_headers", delay=2.0, path="/login$", times=1))
        survivors = await workers.start_many([config_for(fake, config, fake.item_guids)] * 3)
        spawned = fake.clock()  # the victim takes the lease after this
        victim = await workers.start(config_for(fake, config, fake.item_guids[:1]),
                                     wait_go=False)
        deadline = time.monotonic() + 20
        while not fake.requests_to("POST /login"):  # the victim holds the lease, logging in
            assert time.monotonic() < deadline, "the victim never logged in"
            await asyncio.sleep(0.005)
        os.kill(victim.pid, signal.SIGKILL)
        killed = fake.clock()  # its lease, extended at most until now, lapses by lease_ttl on
        workers.go()
        results = await workers.results(survivors)
        await victim.wait()
        assert victim.returncode == -signal.SIGKILL
        assert total(results) == {"ok": 300}
        # Judged on the fake's records and clock (the share's lease clock is the machine's
        # too), from instants that provably bound the lease: a slow start of the victim, or
        # of this process recording its login, moves neither.
        first, *theirs = fake.requests
        assert first.route == "POST /login"  # the victim's (the others started after it)
        arrived = [r.received_at for r in theirs]
        # Nobody sent anything while the dead holder's lease could still be live (0.1 s:
        # the share's clock read in other processes)...
        assert min(arrived) - spawned > lease_ttl - 0.1, (spawned, killed, arrived[:3])
        # ... and they went on once it lapsed: without the lease's expiry they would wait
        # for ever (the victim never publishes); the slack covers their polling, login and
        # a stall of this loaded machine, well short of that.
        assert min(arrived) - killed < lease_ttl + 3.0, (spawned, killed, arrived[:3])


async def test_the_last_close_logs_out_once(share_config: dict[str, Any],
                                            workers: Workers, tmp_path: Path) -> None:
    joined = tmp_path / "joined"
    joined.mkdir()
    async with FakeArena.seeded(items=120, seed=16) as fake:
        guids = fake.item_guids
        # They close one after another, none before all four joined the share (one that
        # left before the others joined would rightly log out, and the next log in).
        await workers.start_many([config_for(fake, share_config, guids[:n],
                                             joined=str(joined), joined_count=4)
                                  for n in (5, 40, 80, 120)])
        workers.go()
        results = await workers.results()
        assert total(results) == {"ok": 245}
        assert fake.stats.logins == 1
        assert fake.stats.logouts == 1
        routes = [r.route for r in fake.requests]
        assert routes[-1] == "PUT /logout"  # after every other request
        ends = sorted(r["ended"] for r in results)
        assert ends[0] < ends[-1]
