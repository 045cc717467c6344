"""examples/fastapi_app.py against FakeArena: one shared client, streaming, error mapping."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from arena_async.testing import FakeArena, Fault

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fastapi_app.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fastapi_app_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def env_for(monkeypatch: pytest.MonkeyPatch) -> Callable[[FakeArena], None]:
    def point(fake: FakeArena) -> None:
        monkeypatch.delenv("ARENA_SESSION_ID", raising=False)
        monkeypatch.setenv("ARENA_BASE_URL", fake.url)
        monkeypatch.setenv("ARENA_EMAIL", fake.email)
        monkeypatch.setenv("ARENA_PASSWORD", fake.password)
        monkeypatch.setenv("ARENA_WORKSPACE_ID", str(fake.workspace_id))
        monkeypatch.setenv("ARENA_QUOTA_RESERVE", "0")
    return point


async def serve(module: ModuleType) -> AsyncIterator[httpx.AsyncClient]:
    app = module.create_app()
    # httpx's ASGITransport does not run lifespans: run it here.
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture
async def client_for(env_for: Callable[[FakeArena], None],
                     ) -> AsyncIterator[Callable[[FakeArena], Any]]:
    module = load_example()
    started: list[Any] = []

    async def make(fake: FakeArena) -> httpx.AsyncClient:
        env_for(fake)
        gen = serve(module)
        started.append(gen)
        client: httpx.AsyncClient = await anext(gen)
        return client

    yield make
    for gen in started:
        await gen.aclose()


async def test_ticket_refs_and_one_shared_client(fake_arena: FakeArena,
                                                 client_for: Any) -> None:
    client = await client_for(fake_arena)
    for guid in fake_arena.item_guids[:10]:
        response = await client.get(f"/items/{guid}/ticket-refs")
        assert response.status_code == 200
        assert response.json() == fake_arena.ticket_refs(guid)
    assert fake_arena.stats.logins == 1  # one client, created in the lifespan
    health = (await client.get("/healthz")).json()
    assert health["status"] == "ok"
    assert health["quota"]["remaining"] > 0


async def test_lifespan_logs_out_at_shutdown(fake_arena: FakeArena,
                                             env_for: Callable[[FakeArena], None]) -> None:
    env_for(fake_arena)
    module = load_example()
    async for client in serve(module):
        await client.get(f"/items/{fake_arena.item_guids[0]}/ticket-refs")
    assert fake_arena.stats.logouts == 1


async def test_training_records_stream_as_json_lines(client_for: Any) -> None:
    async with FakeArena(seed=3) as fake:
        guid = fake.add_item()
        fake.add_training_records(guid, 23)
        client = await client_for(fake)
        response = await client.get(f"/items/{guid}/training-records",
                                    params={"page_size": 5})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in response.text.splitlines()]
        assert [r["guid"] for r in lines] == [r["guid"] for r in fake.training_records(guid)]
        assert lines[0]["training_plan"]["guid"]
        offsets = [r.query["offset"] for r in fake.requests_to(
            "GET /items/{item}/trainingrecords")]
        assert offsets == ["0", "5", "10", "15", "20"]

        resumed = await client.get(f"/items/{guid}/training-records",
                                   params={"offset": 20})
        assert len(resumed.text.splitlines()) == 3


async def test_a_failure_mid_stream_ends_with_a_resume_line(client_for: Any) -> None:
    async with FakeArena(seed=3) as fake:
        guid = fake.add_item()
        fake.add_training_records(guid, 12)
        client = await client_for(fake)
        fake.faults.add(Fault("status", status=404, path="trainingrecords", after=1))
        response = await client.get(f"/items/{guid}/training-records",
                                    params={"page_size": 5})
        assert response.status_code == 200
        lines = [json.loads(line) for line in response.text.splitlines()]
        assert len(lines) == 6
        assert lines[-1]["error"] == "NotFoundError"
        assert lines[-1]["resume_offset"] == 5


async def test_errors_map_to_statuses(fake_arena: FakeArena, client_for: Any) -> None:
    client = await client_for(fake_arena)
    unknown = await client.get("/items/NOSUCHITEM0000000000/ticket-refs")
    assert unknown.status_code == 400  # Arena: 400, code 3011 "the guid is not valid"
    assert unknown.json()["error"] == "bad_request"
    assert "3011" in unknown.json()["detail"]

    fake_arena.faults.add(Fault("status", status=404, path="/tickets", times=1))
    missing = await client.get(f"/items/{fake_arena.item_guids[0]}/ticket-refs")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"

    bad = await client.get("/items/not..a..guid/ticket-refs")
    assert bad.status_code == 422  # refused by the route, nothing sent to Arena

    refused = fake_arena.faults.add(Fault("status", status=401, path="/tickets"))
    upstream = await client.get(f"/items/{fake_arena.item_guids[0]}/ticket-refs")
    assert upstream.status_code == 502  # our credentials, not the caller's fault
    assert upstream.json()["error"] == "upstream_credentials"
    fake_arena.faults.remove(refused)

    fake_arena.set_quota(remaining=0, resets_in=90)
    guid = fake_arena.item_guids[1]
    for path in (f"/items/{guid}/ticket-refs", f"/items/{guid}/training-records"):
        spent = await client.get(path)
        assert spent.status_code == 503
        assert spent.json()["error"] == "quota_exhausted"
        assert 1 <= int(spent.headers["Retry-After"]) <= 91
