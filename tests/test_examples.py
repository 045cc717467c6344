"""examples/ run against the fakes: the FastAPI service (one shared client, streaming, error
mapping), the ETL-to-SQLite job and the Akana script as their users run them (scripts in a
subprocess, the fakes on a thread), and the example test suite under pytest."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from arena_async.testing import FakeArena, Fault
from arena_async.testing._fake_akana import FakeAkana

from .cli._helpers import served

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EXAMPLE = EXAMPLES / "fastapi_app.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fastapi_app_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def env_for(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[FakeArena], None]:
    def point(fake: FakeArena) -> None:
        monkeypatch.delenv("ARENA_SESSION_ID", raising=False)
        monkeypatch.setenv("ARENA_SHARE", f"sqlite:///{tmp_path / 'share.db'}")
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
    assert unknown.status_code == 404  # Arena: 400, code 3011 "the guid is not valid"
    assert unknown.json()["error"] == "not_found"
    assert "3011" in unknown.json()["detail"]

    fake_arena.faults.add(Fault("status", status=404, path="/tickets", times=1))
    missing = await client.get(f"/items/{fake_arena.item_guids[0]}/ticket-refs")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"

    bad = await client.get("/items/not..a..guid/ticket-refs")
    assert bad.status_code == 422  # refused by the route, nothing sent to Arena

    refused = fake_arena.faults.add(Fault("status", status=401, path="/tickets"))
    upstream = await client.get(f"/items/{fake_arena.item_guids[0]}/ticket-refs")
    assert upstream.status_code == 503  # the login works, the session is rejected
    assert upstream.json()["error"] == "upstream_session"
    assert "share=" in upstream.json()["hint"]
    fake_arena.faults.remove(refused)

    fake_arena.set_quota(remaining=0, resets_in=90)
    guid = fake_arena.item_guids[1]
    for path in (f"/items/{guid}/ticket-refs", f"/items/{guid}/training-records"):
        spent = await client.get(path)
        assert spent.status_code == 503
        assert spent.json()["error"] == "quota_exhausted"
        assert 1 <= int(spent.headers["Retry-After"]) <= 91


# ------------------------------------------------------------ scripts, as their users run them


def run_script(name: str, *args: str, env: dict[str, str], cwd: Path,
               ) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ARENA_", "AKANA_"))}
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], cwd=cwd,
                          env={**clean, **env}, capture_output=True, text=True, timeout=120,
                          check=False)


def arena_env(fake: FakeArena) -> dict[str, str]:
    return {"ARENA_BASE_URL": fake.url, "ARENA_EMAIL": fake.email,
            "ARENA_PASSWORD": fake.password, "ARENA_WORKSPACE_ID": str(fake.workspace_id),
            "ARENA_QUOTA_RESERVE": "0"}


def test_etl_script_loads_then_resumes_without_requests(tmp_path: Path) -> None:
    fake = FakeArena.seeded(items=30, seed=2)
    (tmp_path / "guids.txt").write_text("\n".join(fake.item_guids) + "\n", encoding="utf-8")
    with served(fake):
        first = run_script("etl_sqlite.py", "guids.txt", "arena.db", env=arena_env(fake),
                           cwd=tmp_path)
        assert first.returncode == 0, first.stdout + first.stderr
        # 30 items x 3 listings, and the login
        assert first.stdout.startswith("30 items loaded, 0 already done, 0 failed; 91 requests")
        with sqlite3.connect(tmp_path / "arena.db") as db:
            tickets = set(db.execute("SELECT item_guid, guid, ticket_number FROM ticket_refs"))
            refs = set(db.execute("SELECT item_guid, guid, other_item_guid FROM item_refs"))
            records = {(g, r, json.loads(j)["training_plan"]["number"]) for g, r, j in
                       db.execute("SELECT item_guid, guid, json FROM training_records")}
        guids = fake.item_guids
        assert tickets == {(g, t["guid"], t["ticket"]["number"])
                           for g in guids for t in fake.ticket_refs(g)}
        assert refs == {(g, r["guid"], r["item"]["guid"]) for g in guids
                        for r in fake.references(g)}
        assert records == {(g, r["guid"], r["trainingplan"]["number"])
                           for g in guids for r in fake.training_records(g)}
        assert tickets
        assert refs
        assert records

        fake.clear_requests()
        again = run_script("etl_sqlite.py", "guids.txt", "arena.db", env=arena_env(fake),
                           cwd=tmp_path)
        assert again.returncode == 0, again.stdout + again.stderr
        assert again.stdout.startswith("0 items loaded, 30 already done, 0 failed; 0 requests")
        assert not [r for r in fake.requests if r.path.startswith("/v1/items")]


def test_etl_script_exits_3_on_a_spent_quota(tmp_path: Path) -> None:
    fake = FakeArena.seeded(items=20, seed=2, quota_limit=25, quota_window=3600)
    (tmp_path / "guids.txt").write_text("\n".join(fake.item_guids), encoding="utf-8")
    with served(fake):
        proc = run_script("etl_sqlite.py", "guids.txt", "arena.db", "--concurrency", "2",
                          env=arena_env(fake), cwd=tmp_path)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Arena quota spent; run again after" in proc.stderr
    with sqlite3.connect(tmp_path / "arena.db") as db:
        done = db.execute("SELECT count(*) FROM done").fetchone()[0]
    assert 0 < done < 20
    assert proc.stdout.startswith(f"{done} items loaded")


def test_akana_script_reports_and_dumps(tmp_path: Path) -> None:
    fake = FakeAkana.seeded(tickets=150, seed=4)
    env = {"AKANA_BASE_URL": "", "AKANA_EMAIL": fake.email, "AKANA_PASSWORD": fake.password}
    with served(fake):
        env["AKANA_BASE_URL"] = fake.url
        proc = run_script("akana_tickets.py", "--state", "OPEN", "--jsonl", "open.jsonl",
                          env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    open_tickets = [t for t in fake.tickets if t["State"] == "OPEN"]
    assert open_tickets
    lines = proc.stdout.splitlines()
    assert lines[0] == f"{len(open_tickets)} tickets in state OPEN"
    per_api = Counter(t.get("APIID") or "(no API)" for t in open_tickets)
    count, api = lines[1].split()
    assert (int(count), per_api[api]) == (max(per_api.values()), int(count))
    dumped = [json.loads(line) for line in
              (tmp_path / "open.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [d["ticket_id"] for d in dumped] == [t["TicketID"] for t in open_tickets]
    assert sum(1 for line in lines if line.startswith("  oldest: ")) == 3


def test_the_example_suite_passes_on_the_plugin_fixtures(tmp_path: Path) -> None:
    for name in ("etl_sqlite.py", "akana_tickets.py", "test_with_fixtures.py"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    installed = importlib.metadata.entry_points(group="pytest11", name="arena_async")
    plugin = [] if installed else ["-p", "arena_async.testing.plugin"]
    # No configuration in tmp_path: pytest-asyncio's strict mode, as in a fresh project.
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *plugin, "test_with_fixtures.py"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 passed" in proc.stdout, proc.stdout
