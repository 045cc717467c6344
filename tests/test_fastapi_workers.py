"""examples/fastapi_app.py as deployed: ``uvicorn --workers 3`` on one integration user.

The workers share one Arena session and quota ledger through the library's default share
(a SQLite file in the user's state folder, here a test's own XDG_STATE_HOME): 400
concurrent requests, no failure, one login, one logout when uvicorn stops. Also /healthz: it
proves the session (wrong credentials are not healthy) for at most one cheap request.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from arena_async.testing import FakeArena

from .test_examples import load_example, serve

REPO = Path(__file__).resolve().parents[1]
TICKETS = "GET /items/{item}/tickets"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_until_up(client: aiohttp.ClientSession, proc: asyncio.subprocess.Process,
                        ) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.returncode is None, "uvicorn exited"
        try:
            async with client.get("/openapi.json") as answer:  # no Arena request
                if answer.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("uvicorn did not answer within 30 s")


async def get(client: aiohttp.ClientSession, path: str) -> tuple[int, Any]:
    async with client.get(path) as answer:
        return answer.status, await (answer.json() if answer.ok else answer.text())


async def test_three_workers_share_one_session(tmp_path: Path) -> None:
    async with FakeArena.seeded(items=100, seed=21) as fake:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ARENA_", "AKANA_"))}
        env.update({"ARENA_BASE_URL": fake.url, "ARENA_EMAIL": fake.email,
                    "ARENA_PASSWORD": fake.password,
                    "ARENA_WORKSPACE_ID": str(fake.workspace_id),
                    "ARENA_QUOTA_RESERVE": "0",
                    "XDG_STATE_HOME": str(tmp_path / "state")})  # the default share
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "uvicorn", "examples.fastapi_app:app", "--workers", "3",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            cwd=REPO, env=env, start_new_session=True,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        try:
            # aiohttp, not httpx, as the client: this process also serves the fake, and
            # httpx's CPU per request made it the bottleneck of the 400 requests.
            async with aiohttp.ClientSession(
                    base_url=f"http://127.0.0.1:{port}",
                    connector=aiohttp.TCPConnector(limit=400),
                    timeout=aiohttp.ClientTimeout(total=30)) as client:
                await wait_until_up(client, proc)
                guids = fake.item_guids
                answers = await asyncio.gather(*(
                    get(client, f"/items/{guids[i % len(guids)]}/ticket-refs")
                    for i in range(400)))
            statuses = [status for status, _ in answers]
            assert statuses.count(200) == 400, sorted(set(statuses))
            for i, (_, body) in enumerate(answers[:20]):
                assert body == fake.ticket_refs(guids[i % len(guids)])
            assert fake.stats.logins == 1
            assert fake.stats.unauthorized == 0
            assert fake.stats.by_route[TICKETS] == 400
            assert (tmp_path / "state" / "arena_async" / "share.db").exists()
            os.killpg(proc.pid, signal.SIGTERM)  # the workers' lifespans end
            await asyncio.wait_for(proc.wait(), 30)
            assert fake.stats.logouts == 1  # the last worker to stop
        finally:
            if proc.returncode is None:
                os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
            assert proc.stderr is not None
            errors = (await proc.stderr.read()).decode()
            assert "Traceback" not in errors, errors[-3000:]


@pytest.fixture
async def app_for(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                  ) -> AsyncIterator[Callable[..., Any]]:
    module = load_example()
    started: list[Any] = []

    async def make(fake: FakeArena, password: str | None = None) -> httpx.AsyncClient:
        monkeypatch.delenv("ARENA_SESSION_ID", raising=False)
        monkeypatch.setenv("ARENA_BASE_URL", fake.url)
        monkeypatch.setenv("ARENA_EMAIL", fake.email)
        monkeypatch.setenv("ARENA_PASSWORD", password or fake.password)
        monkeypatch.setenv("ARENA_WORKSPACE_ID", str(fake.workspace_id))
        monkeypatch.setenv("ARENA_QUOTA_RESERVE", "0")
        monkeypatch.setenv("ARENA_SHARE", f"sqlite:///{tmp_path / 'share.db'}")
        gen = serve(module)
        started.append(gen)
        client: httpx.AsyncClient = await anext(gen)
        return client

    yield make
    for gen in started:
        await gen.aclose()


async def test_healthz_with_wrong_credentials_is_not_ok(app_for: Any) -> None:
    async with FakeArena.seeded(items=1) as fake:
        client = await app_for(fake, password="wrong")
        health = await client.get("/healthz")
        assert health.status_code == 502
        assert health.json()["error"] == "upstream_credentials"
        assert fake.stats.failed_logins == 1
        assert "wrong" not in health.text


async def test_healthz_proves_the_session_with_one_request(app_for: Any) -> None:
    async with FakeArena.seeded(items=1) as fake:
        client = await app_for(fake)
        answers = await asyncio.gather(*(client.get("/healthz") for _ in range(10)))
        assert [a.status_code for a in answers] == [200] * 10
        assert answers[-1].json()["quota"]["remaining"] > 0
        assert fake.stats.logins == 1
        assert fake.stats.by_route["GET /items"] == 1  # at most one per ARENA_HEALTH_TTL
        assert fake.requests_to("GET /items")[0].query["limit"] == "1"


def test_the_app_leaves_the_share_to_the_library_default(monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    from arena_async import ArenaClient, RedisShare, SQLiteShare

    module = load_example()
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("ARENA_SHARE", raising=False)
    env = {"ARENA_EMAIL": "e@example.com", "ARENA_PASSWORD": "p"}
    settings = module.settings_from_env(env)
    assert "share" not in settings
    link = ArenaClient(**settings).share_link
    assert link is not None
    assert isinstance(link.share, SQLiteShare)
    assert link.share.path == str(tmp_path / "state" / "arena_async" / "share.db")
    monkeypatch.setenv("ARENA_SHARE", "none")
    assert ArenaClient(**settings).share_link is None
    monkeypatch.setenv("ARENA_SHARE", "redis://r:6379/0")
    link = ArenaClient(**settings).share_link
    assert link is not None
    assert isinstance(link.share, RedisShare)
    assert "share" not in module.settings_from_env({"ARENA_SESSION_ID": "S"})
