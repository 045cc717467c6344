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


def arena_requests(fake: FakeArena) -> int:
    """The requests that count against the quota (logins and logouts left out)."""
    return sum(n for route, n in fake.stats.by_route.items()
               if route not in ("POST /login", "PUT /logout"))


async def get_with_headers(client: aiohttp.ClientSession, path: str,
                           ) -> tuple[int, Any, Any]:
    async with client.get(path) as answer:
        return answer.status, answer.headers, await answer.json()


async def test_four_workers_cache_answers_and_serve_them_stale_when_the_quota_is_spent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ARENA_CACHE_TTL: 400 requests over 50 items on 4 workers cost one request per item
    (the answers are in the share, fetched once across the workers); with the quota spent
    cached items still answer (``Age``; stale ones with ``Warning``), uncached ones 503."""
    async with FakeArena.seeded(items=60, seed=23) as fake:
        port = free_port()
        state = tmp_path / "state"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ARENA_", "AKANA_"))}
        env.update({"ARENA_BASE_URL": fake.url, "ARENA_EMAIL": fake.email,
                    "ARENA_PASSWORD": fake.password,
                    "ARENA_WORKSPACE_ID": str(fake.workspace_id),
                    "ARENA_QUOTA_RESERVE": "0", "ARENA_CACHE_TTL": "3600",
                    "XDG_STATE_HOME": str(state)})  # the default share
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "uvicorn", "examples.fastapi_app:app", "--workers", "4",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
            cwd=REPO, env=env, start_new_session=True,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        guids, never_asked = fake.item_guids[:50], fake.item_guids[50]
        try:
            async with aiohttp.ClientSession(
                    base_url=f"http://127.0.0.1:{port}",
                    connector=aiohttp.TCPConnector(limit=400),
                    timeout=aiohttp.ClientTimeout(total=30)) as client:
                await wait_until_up(client, proc)
                answers = await asyncio.gather(*(
                    get_with_headers(client, f"/items/{guids[i % 50]}/ticket-refs")
                    for i in range(400)))
                assert [status for status, _, _ in answers] == [200] * 400
                for i, (_, _, body) in enumerate(answers[:50]):
                    assert body == fake.ticket_refs(guids[i])
                assert arena_requests(fake) <= 60, fake.stats.by_route
                assert fake.stats.by_route[TICKETS] >= 50
                assert fake.stats.logins == 1
                assert sum("Age" in headers for _, headers, _ in answers) >= 340
                assert not any("Warning" in headers for _, headers, _ in answers)

                fake.set_quota(remaining=0)
                spent = arena_requests(fake)
                again = await asyncio.gather(*(
                    get_with_headers(client, f"/items/{guid}/ticket-refs")
                    for guid in guids[:20]))
                for (status, headers, body), guid in zip(again, guids, strict=False):
                    assert status == 200
                    assert int(headers["Age"]) >= 0  # fresh: from the share, no request
                    assert "Warning" not in headers
                    assert body == fake.ticket_refs(guid)
                assert arena_requests(fake) == spent
                status, headers, body = await get_with_headers(
                    client, f"/items/{never_asked}/ticket-refs")
                assert status == 503
                assert body["error"] == "quota_exhausted"
                assert "Retry-After" in headers

            # Another process on the same share, whose TTL the answers have outlived: Arena
            # cannot answer (the quota is spent), so they are served stale, and marked.
            monkeypatch.setenv("XDG_STATE_HOME", str(state))
            monkeypatch.delenv("ARENA_SHARE", raising=False)
            for name in ("ARENA_BASE_URL", "ARENA_EMAIL", "ARENA_PASSWORD",
                         "ARENA_WORKSPACE_ID", "ARENA_QUOTA_RESERVE"):
                monkeypatch.setenv(name, env[name])
            monkeypatch.setenv("ARENA_CACHE_TTL", "0.001")
            gen = serve(load_example())
            try:
                app_client = await anext(gen)
                for guid in guids[:5]:
                    answer = await app_client.get(f"/items/{guid}/ticket-refs")
                    assert answer.status_code == 200
                    assert answer.headers["Warning"] == '110 - "Response is Stale"'
                    assert int(answer.headers["Age"]) >= 0
                    assert answer.json() == fake.ticket_refs(guid)
                answer = await app_client.get(f"/items/{never_asked}/ticket-refs")
                assert answer.status_code == 503
                health = await app_client.get("/healthz")  # the probe was never cached
                assert health.status_code == 503
            finally:
                await gen.aclose()
            assert fake.stats.logins == 1
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
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


def test_the_cache_comes_from_the_environment() -> None:
    from arena_async import CachePolicy

    module = load_example()
    env = {"ARENA_EMAIL": "e@example.com", "ARENA_PASSWORD": "p"}
    assert "cache" not in module.settings_from_env(env)
    settings = module.settings_from_env({**env, "ARENA_CACHE_TTL": "300"})
    assert settings["cache"] == CachePolicy(ttl=300.0, stale_if_error=86400.0)
    settings = module.settings_from_env({**env, "ARENA_CACHE_TTL": "60",
                                         "ARENA_CACHE_STALE": "0"})
    assert settings["cache"] == CachePolicy(ttl=60.0, stale_if_error=0.0)
    with pytest.raises(ValueError, match="ttl"):
        module.settings_from_env({**env, "ARENA_CACHE_TTL": "0"})
