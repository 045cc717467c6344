"""Fixtures for the share tests: a real redis-server on a free port, and shares of each kind.

The Redis tests skip with a message when ``redis-server`` is missing, except under CI
(``CI`` set), where they fail: there they must run (``make test`` installs it).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from arena_async import RedisShare, Share, SQLiteShare

INSTALL_HINT = ("redis-server is not installed: apt-get install redis-server (make test does "
                "it when run as root)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A real redis-server in a temp dir on a free loopback port."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CI"):
                pytest.fail(INSTALL_HINT)
            pytest.skip(INSTALL_HINT)
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.directory), "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        self.stop()
        pytest.fail("redis-server did not start within 10 s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server for this test alone (restarted, flushed or stopped by it)."""
    server = RedisServer(tmp_path / "redis")
    server.directory.mkdir()
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None:
            server.proc.send_signal(signal.SIGCONT)
        server.stop()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


ShareFactory = Callable[..., Share]


@pytest.fixture(params=["sqlite", "redis"])
def share_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_share(share_kind: str, tmp_path: Path,
               request: pytest.FixtureRequest) -> ShareFactory:
    """``make_share(**timings)``: a new share object over the same store each call (what
    separate processes would each build), isolated from other tests."""
    if share_kind == "sqlite":
        path = tmp_path / "share.db"
        return lambda **kw: SQLiteShare(path, **kw)
    server: RedisServer = request.getfixturevalue("redis_server")
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    return lambda **kw: RedisShare(server.url, prefix=prefix, **kw)


@pytest.fixture
def share_url(share_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A share URL (each test its own store)."""
    if share_kind == "sqlite":
        return f"sqlite:///{tmp_path / 'share.db'}"
    server: RedisServer = request.getfixturevalue("redis_server")
    # A db of its own per test, flushed first.
    import redis

    db = 1 + (uuid.uuid4().int % 14)
    client = redis.Redis(host="127.0.0.1", port=server.port, db=db)
    try:
        client.flushdb()
    finally:
        client.close()
    return f"redis://127.0.0.1:{server.port}/{db}"


# The real-process fixtures (a fork server, its workers, a share per test), for every
# module of this folder that runs sharers as processes.
from tests.share.test_multiprocess import share_config, workers, zygote  # noqa: E402, F401
