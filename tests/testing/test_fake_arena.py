"""FakeArena over real loopback HTTP, driven with a plain aiohttp.ClientSession."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from arena_async.testing import FakeArena, FakeArenaStats, Fault, format_reset
from arena_async.testing._fake_arena import UNLIMITED_QUOTA

pytest_plugins = ("pytester",)

REPO = Path(__file__).resolve().parents[2]
GUID_RE = re.compile(r"[A-Z0-9]{20}")
TRAINING = "GET /items/{item}/trainingrecords"
REMAINING = "X-Arena-Requests-Remaining"
RESET = "X-Arena-Next-Request-Limit-Reset"


class Clock:
    """An injectable clock the test moves by hand."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeArena]:
    async with FakeArena.seeded(items=30, seed=1, quota_limit=1000) as server:
        yield server


async def login(http: aiohttp.ClientSession, fake: FakeArena) -> str:
    async with http.post(
        f"{fake.url}/login",
        json={"email": fake.email, "password": fake.password, "workspaceId": fake.workspace_id},
    ) as resp:
        assert resp.status == 200
        body = await resp.json()
    session_id = body[fake.login_session_key]
    assert isinstance(session_id, str)
    return session_id


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    session_id: str | None,
    **kwargs: Any,
) -> tuple[int, Any, Any]:
    headers = dict(kwargs.pop("headers", {}))
    if session_id is not None:
        headers["arena_session_id"] = session_id
    async with http.request(method, url, headers=headers, **kwargs) as resp:
        raw = await resp.read()
        return resp.status, (json.loads(raw) if raw else None), resp.headers


def error(status: int, code: int, message: str) -> dict[str, Any]:
    return {"status": status, "errors": [{"code": code, "message": message}]}


def invalid_guid(guid: str) -> dict[str, Any]:
    return error(400, 3011, f'The guid "{guid}" is not valid.')


# ---------------------------------------------------------------------------- lifecycle


async def test_url_port_and_close(http: aiohttp.ClientSession) -> None:
    server = FakeArena()
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.url
    await server.start()
    try:
        match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/v1", server.url)
        assert match is not None
        assert int(match.group(1)) > 0
        with pytest.raises(RuntimeError, match="already started"):
            await server.start()
        url = server.url
    finally:
        await server.close()
    await server.close()  # twice is fine
    with pytest.raises(aiohttp.ClientConnectorError):
        await http.post(f"{url}/login", json={})


def test_package_exports() -> None:
    import arena_async.testing as kit

    assert kit.FakeArena is FakeArena
    assert kit.FakeAkana.__name__ == "FakeAkana"  # imported lazily on first access
    assert set(kit.__all__) >= {"FakeArena", "FakeAkana", "Fault", "FaultPlan"}
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = kit.Nope


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quota_limit": -1}, "quota_limit"),
        ({"quota_window": 0}, "quota_window"),
        ({"reset_header_format": "http"}, "reset_header_format"),
        ({"expire_sessions_every": 0}, "expire_sessions_every"),
        ({"latency": -1}, "latency"),
        ({"note_key": "comment"}, "note_key"),
        ({"trainingplan_key": "plan"}, "trainingplan_key"),
        ({"login_session_key": "sid"}, "login_session_key"),
    ],
)
def test_constructor_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FakeArena(**kwargs)


def test_default_credentials() -> None:
    server = FakeArena()
    assert (server.email, server.password, server.workspace_id) == (
        "user@example.com",
        "fake-password",
        123456789,
    )
    assert "fake-password" not in repr(server)


def test_seeded_is_deterministic() -> None:
    one = FakeArena.seeded(items=40, seed=7)
    two = FakeArena.seeded(items=40, seed=7)
    other = FakeArena.seeded(items=40, seed=8)
    assert len(one.item_guids) == 40
    assert len(set(one.item_guids)) == 40
    assert one.item_guids == two.item_guids
    assert one.item_guids != other.item_guids
    assert all(GUID_RE.fullmatch(g) for g in one.item_guids)
    for guid in one.item_guids:
        assert one.ticket_refs(guid) == two.ticket_refs(guid)
        assert one.references(guid) == two.references(guid)
        assert one.training_records(guid, detail=True) == two.training_records(guid, detail=True)
    assert one.add_item() == two.add_item()  # later GUIDs come from the same stream


def test_seeded_data_shapes() -> None:
    server = FakeArena.seeded(items=60, seed=1)
    tickets = [t for g in server.item_guids for t in server.ticket_refs(g)]
    records = [r for g in server.item_guids for r in server.training_records(g, detail=True)]
    assert tickets
    assert records
    for ref in tickets:
        assert set(ref) == {"guid", "ticket"}
        assert GUID_RE.fullmatch(ref["guid"])
        assert re.fullmatch(r"(REQ|DEF|CHG)-\d{6}", ref["ticket"]["number"])
    for rec in records:
        assert (
            {"guid", "trainingplan"}
            <= set(rec)
            <= {
                "guid",
                "trainingplan",
                "dueDate",
                "signedDateTime",
            }
        )
        assert re.fullmatch(r"TRP-\d{6}", rec["trainingplan"]["number"])
        for key in ("dueDate", "signedDateTime"):
            if key in rec:
                assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rec[key])
    # Both dated and undated records exist in a seeded workspace.
    assert any("signedDateTime" not in r for r in records)
    assert any("signedDateTime" in r for r in records)
    # References are bidirectional: the same reference GUID is seen from both ends.
    pairs = 0
    for guid in server.item_guids:
        for ref in server.references(guid):
            other = ref["item"]["guid"]
            back = [r for r in server.references(other) if r["guid"] == ref["guid"]]
            assert [r["item"]["guid"] for r in back] == [guid]
            pairs += 1
    assert pairs > 0


def test_add_methods() -> None:
    server = FakeArena()
    a, b = server.add_item(), server.add_item("B" * 20)
    assert server.item_guids == [a, "B" * 20]
    with pytest.raises(ValueError, match="exists"):
        server.add_item("B" * 20)
    tickets = server.add_ticket_refs(a, 3, prefix="DEF")
    assert [t["guid"] for t in server.ticket_refs(a)] == tickets
    assert [t["ticket"]["number"] for t in server.ticket_refs(a)] == [
        "DEF-000001",
        "DEF-000002",
        "DEF-000003",
    ]
    records = server.add_training_records(a, 4)
    assert [r["guid"] for r in server.training_records(a)] == records
    assert server.training_record(a, records[2])["guid"] == records[2]
    ref = server.add_reference(a, b, note="n")
    assert server.references(a) == [{"guid": ref, "item": {"guid": b}, "note": "n"}]
    assert server.references(b) == [{"guid": ref, "item": {"guid": a}, "note": "n"}]
    with pytest.raises(ValueError, match="itself"):
        server.add_reference(a, a)
    with pytest.raises(ValueError, match="already"):
        server.add_reference(b, a)


# ---------------------------------------------------------------------------- login


async def test_login_answer_and_no_quota_headers(
    http: aiohttp.ClientSession, fake: FakeArena
) -> None:
    async with http.post(
        f"{fake.url}/login", json={"email": fake.email, "password": fake.password}
    ) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        body = await resp.json()
        assert REMAINING not in resp.headers
        assert RESET not in resp.headers
    assert set(body) == {"arenaSessionId", "workspaceId", "workspaceName", "workspaceRequestLimit"}
    assert body["workspaceId"] == 123456789
    assert body["workspaceRequestLimit"] == 1000
    assert fake.quota_remaining == 1000  # login is not counted
    assert fake.stats.logins == 1
    assert fake.active_sessions == 1


@pytest.mark.parametrize(
    "payload",
    [
        {"email": "user@example.com", "password": "wrong"},
        {"email": "other@example.com", "password": "fake-password"},
        {"email": "user@example.com", "password": "fake-password", "workspaceId": 1},
    ],
)
async def test_login_refused(
    http: aiohttp.ClientSession, fake: FakeArena, payload: dict[str, Any]
) -> None:
    status, body, headers = await call(http, "POST", f"{fake.url}/login", None, json=payload)
    assert status == 400
    assert body["status"] == 400
    assert [e["code"] for e in body["errors"]] == [4001]
    assert REMAINING not in headers
    assert fake.stats.failed_logins == 1
    assert fake.stats.logins == 0
    assert fake.quota_remaining == 1000


async def test_login_session_key_variant(http: aiohttp.ClientSession) -> None:
    async with FakeArena(login_session_key="arena_session_id") as server:
        status, body, _ = await call(
            http,
            "POST",
            f"{server.url}/login",
            None,
            json={"email": server.email, "password": server.password},
        )
    assert status == 200
    assert "arena_session_id" in body
    assert "arenaSessionId" not in body


async def test_login_rejects_bad_json_and_content_type(
    http: aiohttp.ClientSession, fake: FakeArena
) -> None:
    status, body, _ = await call(
        http,
        "POST",
        f"{fake.url}/login",
        None,
        data=b"{nope",
        headers={"Content-Type": "application/json"},
    )
    assert (status, body["errors"][0]["code"]) == (400, 400)
    status, body, _ = await call(
        http, "POST", f"{fake.url}/login", None, data=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert (status, body["errors"][0]["code"]) == (415, 415)


# ---------------------------------------------------------------------------- sessions


async def test_missing_and_unknown_session_get_401_and_count(
    http: aiohttp.ClientSession, fake: FakeArena
) -> None:
    url = f"{fake.url}/items/{fake.item_guids[0]}/tickets"
    status, body, headers = await call(http, "GET", url, None)
    assert status == 401
    assert body["status"] == 401
    assert body["errors"][0]["code"] == 401
    assert headers[REMAINING] == "999"
    status, body, headers = await call(http, "GET", url, "made-up")
    assert status == 401
    assert headers[REMAINING] == "998"
    assert fake.stats.unauthorized == 2


async def test_logout_ends_session(http: aiohttp.ClientSession, fake: FakeArena) -> None:
    sid = await login(http, fake)
    async with http.put(f"{fake.url}/logout", headers={"arena_session_id": sid}) as resp:
        assert resp.status == 200
        assert await resp.read() == b""
        assert resp.headers[REMAINING] == "999"  # logout counts
    status, _, _ = await call(http, "GET", f"{fake.url}/items/{fake.item_guids[0]}/tickets", sid)
    assert status == 401
    assert fake.stats.logouts == 1
    assert fake.active_sessions == 0


@pytest.mark.parametrize(("single", "first_status"), [(True, 401), (False, 200)])
async def test_single_session(http: aiohttp.ClientSession, single: bool, first_status: int) -> None:
    async with FakeArena.seeded(items=2, single_session=single) as server:
        first = await login(http, server)
        second = await login(http, server)
        url = f"{server.url}/items/{server.item_guids[0]}/tickets"
        assert (await call(http, "GET", url, first))[0] == first_status
        assert (await call(http, "GET", url, second))[0] == 200
        assert server.active_sessions == (1 if single else 2)


async def test_expire_sessions_every(http: aiohttp.ClientSession) -> None:
    async with FakeArena.seeded(items=2, expire_sessions_every=3) as server:
        url = f"{server.url}/items/{server.item_guids[0]}/tickets"
        sid = await login(http, server)
        statuses = [(await call(http, "GET", url, sid))[0] for _ in range(4)]
        # 3rd valid-session request finds it expired; the 4th brings a dead session.
        assert statuses == [200, 200, 401, 401]
        sid = await login(http, server)
        statuses = [(await call(http, "GET", url, sid))[0] for _ in range(3)]
        assert statuses == [200, 200, 401]
        assert server.stats.sessions_expired == 2
        assert server.stats.unauthorized == 3
        assert server.stats.logins == 2


async def test_session_idle_timeout_with_injected_clock(http: aiohttp.ClientSession) -> None:
    clock = Clock()
    async with FakeArena.seeded(items=2, session_idle_timeout=60.0, clock=clock) as server:
        url = f"{server.url}/items/{server.item_guids[0]}/tickets"
        sid = await login(http, server)
        clock.now += 60.0
        assert (await call(http, "GET", url, sid))[0] == 200  # exactly the limit: alive
        clock.now += 60.5
        assert (await call(http, "GET", url, sid))[0] == 401
        assert server.stats.sessions_expired == 1
        assert server.active_sessions == 0


async def test_expire_sessions_method(http: aiohttp.ClientSession, fake: FakeArena) -> None:
    sid = await login(http, fake)
    assert fake.expire_sessions() == 1
    assert (await call(http, "GET", f"{fake.url}/items/{fake.item_guids[0]}/tickets", sid))[
        0
    ] == 401


# ---------------------------------------------------------------------------- tickets


async def test_ticket_refs_list_get_and_pages(http: aiohttp.ClientSession, fake: FakeArena) -> None:
    sid = await login(http, fake)
    item = fake.add_item()
    refs = fake.add_ticket_refs(item, 5)
    base = f"{fake.url}/items/{item}/tickets"
    status, body, headers = await call(http, "GET", base, sid)
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    assert body == {"count": 5, "results": fake.ticket_refs(item)}
    status, body, _ = await call(http, "GET", base, sid, params={"offset": "1", "limit": "2"})
    assert body == {"count": 2, "results": fake.ticket_refs(item)[1:3]}
    status, body, _ = await call(http, "GET", base, sid, params={"offset": "3"})
    assert [r["guid"] for r in body["results"]] == refs[3:]
    status, body, _ = await call(http, "GET", f"{base}/{refs[4]}", sid)
    assert (status, body) == (200, fake.ticket_refs(item)[4])
    status, body, _ = await call(http, "GET", f"{base}/{'Z' * 20}", sid)
    assert (status, body) == (400, invalid_guid("Z" * 20))


async def test_unknown_item_is_400_3011(http: aiohttp.ClientSession, fake: FakeArena) -> None:
    sid = await login(http, fake)
    for suffix in ("tickets", "items", "trainingrecords", f"trainingrecords/{'A' * 20}"):
        status, body, _ = await call(http, "GET", f"{fake.url}/items/NOPE/{suffix}", sid)
        assert (status, body) == (400, invalid_guid("NOPE"))


async def test_unknown_route_and_method(http: aiohttp.ClientSession, fake: FakeArena) -> None:
    sid = await login(http, fake)
    status, body, headers = await call(http, "GET", f"{fake.url}/nowhere", sid)
    assert (status, body) == (404, error(404, 404, "Not Found"))
    assert headers[REMAINING] == "999"
    status, body, headers = await call(
        http, "DELETE", f"{fake.url}/items/{fake.item_guids[0]}/tickets", sid
    )
    assert status == 405
    assert headers["Allow"] == "GET,HEAD"
    assert fake.stats.by_route["unmatched"] == 2


# ---------------------------------------------------------------------------- references


async def test_reference_lifecycle(http: aiohttp.ClientSession, fake: FakeArena) -> None:
    sid = await login(http, fake)
    a, b = fake.add_item(), fake.add_item()
    status, created, _ = await call(
        http, "POST", f"{fake.url}/items/{a}/items", sid, json={"item": {"guid": b}, "note": "hi"}
    )
    assert status == 201
    ref = created["guid"]
    assert created == {"guid": ref, "item": {"guid": b}, "note": "hi"}
    assert GUID_RE.fullmatch(ref)
    # Visible from both items, same reference GUID, each pointing at the other.
    _, from_a, _ = await call(http, "GET", f"{fake.url}/items/{a}/items", sid)
    _, from_b, _ = await call(http, "GET", f"{fake.url}/items/{b}/items", sid)
    assert from_a == {"count": 1, "results": [created]}
    assert from_b == {"count": 1, "results": [{"guid": ref, "item": {"guid": a}, "note": "hi"}]}
    # Update; a null note without setnull leaves it, with setnull=true clears it.
    url = f"{fake.url}/items/{a}/items/{ref}"
    status, body, _ = await call(http, "PUT", url, sid, json={"note": "changed"})
    assert (status, body["note"]) == (200, "changed")
    status, body, _ = await call(http, "PUT", url, sid, json={"note": None})
    assert (status, body["note"]) == (200, "changed")
    status, body, _ = await call(
        http, "PUT", url, sid, json={"note": None}, params={"setnull": "true"}
    )
    assert (status, body) == (200, {"guid": ref, "item": {"guid": b}, "note": None})
    status, body, _ = await call(http, "GET", f"{fake.url}/items/{b}/items/{ref}", sid)
    assert (status, body) == (200, {"guid": ref, "item": {"guid": a}, "note": None})
    # Delete: 204, no body, gone from both sides.
    async with http.delete(url, headers={"arena_session_id": sid}) as resp:
        assert resp.status == 204
        assert await resp.read() == b""
    assert fake.references(a) == []
    assert fake.references(b) == []
    status, body, _ = await call(http, "DELETE", url, sid)
    assert (status, body) == (400, invalid_guid(ref))


async def test_reference_refusals(http: aiohttp.ClientSession, fake: FakeArena) -> None:
    sid = await login(http, fake)
    a, b = fake.add_item(), fake.add_item()
    url = f"{fake.url}/items/{a}/items"
    status, body, _ = await call(http, "POST", url, sid, json={"item": {"guid": a}})
    assert status == 400
    assert 3276 <= body["errors"][0]["code"] <= 3280
    fake.add_reference(a, b)
    status, body, _ = await call(http, "POST", url, sid, json={"item": {"guid": b}})
    assert status == 400
    assert 3276 <= body["errors"][0]["code"] <= 3280
    status, body, _ = await call(http, "POST", url, sid, json={"item": {"guid": "Q" * 20}})
    assert (status, body) == (400, invalid_guid("Q" * 20))
    status, body, _ = await call(http, "POST", url, sid, json={"item": "x"})
    assert (status, body) == (
        400,
        error(400, 400, "The format of the request is not valid. Please check the syntax."),
    )
    status, body, _ = await call(
        http,
        "POST",
        url,
        sid,
        data=b'{"item": {"guid": "x"}}',
        headers={"Content-Type": "text/plain"},
    )
    assert status == 415
    assert len(fake.references(a)) == 1


async def test_reference_variants(http: aiohttp.ClientSession) -> None:
    async with FakeArena(note_key="notes", item_url=True) as server:
        a, b = server.add_item(), server.add_item()
        ref = server.add_reference(a, b, note="x")
        sid = await login(http, server)
        _, body, _ = await call(http, "GET", f"{server.url}/items/{a}/items/{ref}", sid)
    assert body == {
        "guid": ref,
        "item": {
            "guid": b,
            "url": {
                "api": f"{server.url}/items/{b}",
                "app": f"https://app.arenasolutions.com/items/detail-spec?item_id={b}",
            },
        },
        "notes": "x",
    }


# ---------------------------------------------------------------------------- training records


async def test_training_records_pages(http: aiohttp.ClientSession, fake: FakeArena) -> None:
    sid = await login(http, fake)
    item = fake.add_item()
    fake.add_training_records(item, 45)
    truth = fake.training_records(item)
    url = f"{fake.url}/items/{item}/trainingrecords"
    _, body, _ = await call(http, "GET", url, sid)
    assert body == {"count": 20, "results": truth[:20]}  # default limit 20
    _, body, _ = await call(http, "GET", url, sid, params={"offset": "40", "limit": "20"})
    assert body == {"count": 5, "results": truth[40:]}
    _, body, _ = await call(http, "GET", url, sid, params={"offset": "45", "limit": "20"})
    assert body == {"count": 0, "results": []}
    _, body, _ = await call(http, "GET", url, sid, params={"limit": "400"})
    assert body == {"count": 45, "results": truth}
    for rec in body["results"]:
        assert set(rec) == {"guid", "trainingplan"}  # list form: no dates


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": "0"}, 3220),
        ({"limit": "401"}, 3220),
        ({"limit": "abc"}, 3220),
        ({"limit": "2.5"}, 3220),
        ({"offset": "-1"}, 3041),
        ({"offset": "x"}, 3041),
    ],
)
async def test_training_records_bad_paging(
    http: aiohttp.ClientSession, fake: FakeArena, params: dict[str, str], code: int
) -> None:
    sid = await login(http, fake)
    url = f"{fake.url}/items/{fake.item_guids[0]}/trainingrecords"
    status, body, headers = await call(http, "GET", url, sid, params=params)
    assert status == 400
    assert body["status"] == 400
    assert [e["code"] for e in body["errors"]] == [code]
    [(name, value)] = params.items()
    assert body["errors"][0]["message"].startswith(f'The {name} "{value}" is not valid: use ')
    assert headers[REMAINING] == "999"


async def test_bad_paging_on_other_lists(http: aiohttp.ClientSession, fake: FakeArena) -> None:
    sid = await login(http, fake)
    for suffix in ("tickets", "items"):
        url = f"{fake.url}/items/{fake.item_guids[0]}/{suffix}"
        status, body, _ = await call(http, "GET", url, sid, params={"limit": "500"})
        assert (status, body["errors"][0]["code"]) == (400, 3220)


async def test_training_record_single_and_variant(http: aiohttp.ClientSession) -> None:
    async with FakeArena(trainingplan_key="traningplan") as server:
        item = server.add_item()
        guids = server.add_training_records(item, 30)
        sid = await login(http, server)
        for guid in guids:
            status, body, _ = await call(
                http, "GET", f"{server.url}/items/{item}/trainingrecords/{guid}", sid
            )
            assert status == 200
            assert body == server.training_record(item, guid)
            assert "traningplan" in body
            assert "trainingplan" not in body
        status, body, _ = await call(
            http, "GET", f"{server.url}/items/{item}/trainingrecords/{'X' * 20}", sid
        )
        assert (status, body) == (400, invalid_guid("X" * 20))


# ---------------------------------------------------------------------------- quota


def test_format_reset() -> None:
    moment = datetime(2014, 5, 2, 21, 22, 13, tzinfo=UTC)
    assert format_reset(moment) == "Fri, 02-May-2014 14:22:13 GMT-0700 (PDT)"
    assert format_reset(moment, "rfc1123") == "Fri, 02 May 2014 21:22:13 GMT"
    assert format_reset(moment, "iso") == "2014-05-02T21:22:13Z"
    # Crossing midnight backwards when converted to -0700.
    early = datetime(2014, 5, 3, 3, 0, 0, tzinfo=UTC)
    assert format_reset(early) == "Fri, 02-May-2014 20:00:00 GMT-0700 (PDT)"


async def test_quota_exhaustion(http: aiohttp.ClientSession) -> None:
    clock = Clock(1_399_065_733.0)  # 2014-05-02T21:22:13Z
    async with FakeArena(
        quota_limit=3, quota_window=86400.0, clock=clock, quota_error_code=4014
    ) as server:
        a, b = server.add_item(), server.add_item()
        sid = await login(http, server)
        url = f"{server.url}/items/{a}/tickets"
        remaining = [(await call(http, "GET", url, sid))[2][REMAINING] for _ in range(3)]
        assert remaining == ["2", "1", "0"]
        status, body, headers = await call(
            http, "POST", f"{server.url}/items/{a}/items", sid, json={"item": {"guid": b}}
        )
        assert status == 429
        assert headers[REMAINING] == "0"
        assert headers[RESET] == "Sat, 03-May-2014 14:22:13 GMT-0700 (PDT)"
        assert body["status"] == 429
        assert body["errors"][0]["code"] == 4014
        assert headers[RESET] in body["errors"][0]["message"]
        assert server.references(a) == []  # not processed
        # Login still works and does not count.
        await login(http, server)
        assert server.stats.quota_exhausted == 1
        assert server.quota_remaining == 0


async def test_quota_window_rolls_with_injected_clock(http: aiohttp.ClientSession) -> None:
    clock = Clock(1_000.0)
    async with FakeArena(
        quota_limit=2, quota_window=10.0, clock=clock, reset_header_format="iso"
    ) as server:
        item = server.add_item()
        sid = await login(http, server)
        url = f"{server.url}/items/{item}/tickets"

        async def remaining_and_reset() -> tuple[int, str, str]:
            status, _, headers = await call(http, "GET", url, sid)
            return status, headers[REMAINING], headers[RESET]

        assert await remaining_and_reset() == (200, "1", "1970-01-01T00:16:50Z")  # 1010 s
        assert await remaining_and_reset() == (200, "0", "1970-01-01T00:16:50Z")
        assert await remaining_and_reset() == (429, "0", "1970-01-01T00:16:50Z")
        clock.now = 1_010.0
        assert await remaining_and_reset() == (200, "1", "1970-01-01T00:17:00Z")
        clock.now = 1_035.0  # two windows later: the reset moves to the next boundary
        assert await remaining_and_reset() == (200, "1", "1970-01-01T00:17:20Z")
        assert server.quota_resets_at == datetime(1970, 1, 1, 0, 17, 20, tzinfo=UTC)


async def test_quota_window_real_time(http: aiohttp.ClientSession) -> None:
    async with FakeArena(quota_limit=1, quota_window=0.15, reset_header_format="rfc1123") as server:
        item = server.add_item()
        sid = await login(http, server)
        url = f"{server.url}/items/{item}/tickets"
        assert (await call(http, "GET", url, sid))[0] == 200
        status, _, headers = await call(http, "GET", url, sid)
        if status == 200:  # the window rolled between the two calls on a slow machine
            pytest.skip("machine too slow for a 0.15 s window")
        assert status == 429
        assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", headers[RESET])
        await asyncio.sleep(0.2)
        assert (await call(http, "GET", url, sid))[0] == 200


async def test_set_quota(http: aiohttp.ClientSession) -> None:
    clock = Clock(5_000.0)
    async with FakeArena(quota_limit=100, clock=clock) as server:
        item = server.add_item()
        sid = await login(http, server)
        server.set_quota(remaining=1, resets_in=30.0)
        assert server.quota_resets_at == datetime.fromtimestamp(5_030, UTC)
        url = f"{server.url}/items/{item}/tickets"
        assert (await call(http, "GET", url, sid))[2][REMAINING] == "0"
        assert (await call(http, "GET", url, sid))[0] == 429
        clock.now = 5_030.0
        assert (await call(http, "GET", url, sid))[2][REMAINING] == "99"
        with pytest.raises(ValueError, match=">= 0"):
            server.set_quota(remaining=-1)


async def test_unlimited_quota_still_sends_headers(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeArena() as server:
        item = server.add_item()
        sid = await login(http, server)
        _, _, headers = await call(http, "GET", f"{server.url}/items/{item}/tickets", sid)
    assert headers[REMAINING] == str(UNLIMITED_QUOTA - 1)
    assert RESET in headers


async def test_quota_shared_by_sessions(http: aiohttp.ClientSession) -> None:
    async with FakeArena(quota_limit=10, single_session=False) as server:
        item = server.add_item()
        one, two = await login(http, server), await login(http, server)
        url = f"{server.url}/items/{item}/tickets"
        seen = [(await call(http, "GET", url, sid))[2][REMAINING] for sid in (one, two, one)]
    assert seen == ["9", "8", "7"]


# ---------------------------------------------------------------------------- recording & stats


async def test_recording(http: aiohttp.ClientSession, fake: FakeArena) -> None:
    sid = await login(http, fake)
    a, b = fake.add_item(), fake.add_item()
    await call(
        http,
        "GET",
        f"{fake.url}/items/{a}/trainingrecords",
        sid,
        params={"offset": "0", "limit": "5"},
    )
    await call(http, "POST", f"{fake.url}/items/{a}/items", sid, json={"item": {"guid": b}})
    async with http.get(
        f"{fake.url}/items/AB%20CD/tickets", headers={"arena_session_id": sid}
    ) as resp:
        assert resp.status == 400
        assert (await resp.json()) == invalid_guid("AB CD")
    login_rec, records_rec, create_rec, raw_rec = fake.requests
    assert (login_rec.method, login_rec.path, login_rec.route) == (
        "POST",
        "/v1/login",
        "POST /login",
    )
    assert login_rec.body["password"] == fake.password
    assert not login_rec.has_session
    assert records_rec.route == TRAINING
    assert records_rec.query == {"offset": "0", "limit": "5"}
    assert records_rec.query_string == "offset=0&limit=5"
    assert records_rec.headers["arena_session_id"] == sid
    assert records_rec.status == 200
    assert create_rec.body == {"item": {"guid": b}}
    assert create_rec.status == 201
    assert raw_rec.path == "/v1/items/AB%20CD/tickets"
    assert raw_rec.status == 400
    assert fake.paths == [
        "/v1/login",
        f"/v1/items/{a}/trainingrecords",
        f"/v1/items/{a}/items",
        "/v1/items/AB%20CD/tickets",
    ]
    assert fake.requests_to(TRAINING) == [records_rec]
    # Secrets stay out of repr.
    text = repr(fake.requests)
    assert sid not in text
    assert fake.password not in text
    assert fake.stats.by_route == {
        "POST /login": 1,
        TRAINING: 1,
        "POST /items/{item}/items": 1,
        "GET /items/{item}/tickets": 1,
    }
    assert fake.stats.statuses == {200: 2, 201: 1, 400: 1}
    fake.clear_requests()
    assert fake.requests == []
    assert fake.stats == FakeArenaStats()


async def test_max_in_flight(http: aiohttp.ClientSession) -> None:
    async with FakeArena(latency=0.05) as server:
        item = server.add_item()
        sid = await login(http, server)
        url = f"{server.url}/items/{item}/tickets"
        assert server.stats.max_in_flight == 1
        await asyncio.gather(*(call(http, "GET", url, sid) for _ in range(5)))
        assert server.stats.max_in_flight == 5
        assert server.stats.in_flight == 0
        server.clear_requests()
        for _ in range(2):
            await call(http, "GET", url, sid)
        assert server.stats.max_in_flight == 1
        assert server.stats.requests == 2


async def test_stats_endpoint_is_not_counted(http: aiohttp.ClientSession, fake: FakeArena) -> None:
    sid = await login(http, fake)
    await call(http, "GET", f"{fake.url}/items/{fake.item_guids[0]}/tickets", sid)
    stats_url = fake.url.removesuffix("/v1") + "/_fake/stats"
    async with http.get(stats_url) as resp:
        assert resp.status == 200
        assert REMAINING not in resp.headers
        stats = await resp.json()
    assert stats["requests"] == 2
    assert stats["logins"] == 1
    assert stats["by_route"] == {"POST /login": 1, "GET /items/{item}/tickets": 1}
    assert stats["statuses"] == {"200": 2}
    assert len(fake.requests) == 2
    assert fake.quota_remaining == 999


async def test_logs_hold_no_secrets(
    http: aiohttp.ClientSession, fake: FakeArena, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.faults.add(Fault("expire_session", times=1))
    sid = await login(http, fake)
    await call(http, "GET", f"{fake.url}/items/{fake.item_guids[0]}/tickets", sid)
    await call(
        http, "POST", f"{fake.url}/login", None, json={"email": fake.email, "password": "bad"}
    )
    assert caplog.records  # the fake does log at DEBUG
    for record in caplog.records:
        message = record.getMessage()
        assert sid not in message
        assert fake.password not in message
        assert "bad" not in message


# ---------------------------------------------------------------------------- plugin & CLI


def _plugin_args() -> list[str]:
    # Once installed, the pytest11 entry point loads the plugin; "-p" would register it twice.
    installed = importlib.metadata.entry_points(group="pytest11", name="arena_async")
    return [] if installed else ["-p", "arena_async.testing.plugin"]


@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_plugin_fixtures(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makepyfile(
        """
        import aiohttp
        import pytest

        @pytest.mark.asyncio
        async def test_uses_fixture(fake_arena):
            assert len(fake_arena.item_guids) == 50
            async with aiohttp.ClientSession() as http:
                async with http.post(fake_arena.url + "/login",
                                     json={"email": fake_arena.email,
                                           "password": fake_arena.password}) as resp:
                    assert resp.status == 200

        @pytest.mark.asyncio
        async def test_factory(fake_arena_factory):
            fake = await fake_arena_factory(items=3, quota_limit=7)
            assert len(fake.item_guids) == 3
            assert fake.quota_remaining == 7

        @pytest.mark.asyncio
        async def test_akana(fake_akana):
            assert len(fake_akana.tickets) == 120
            assert fake_akana.url.startswith("http://127.0.0.1:")
        """
    )
    result = pytester.runpytest_inprocess(
        *_plugin_args(),
        "-o",
        f"asyncio_mode={mode}",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
    )
    result.assert_outcomes(passed=3)


def test_cli_ready_line_and_sigterm() -> None:
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "arena_async.testing",
            "arena",
            "--port",
            "0",
            "--items",
            "5",
            "--seed",
            "1",
            "--quota",
            "50",
            "--quota-window",
            "2.0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"READY (http://127\.0\.0\.1:\d+/v1)\n", line)
        assert match is not None, line
        url = match.group(1)

        async def probe() -> tuple[int, str]:
            async with aiohttp.ClientSession() as http:
                async with http.post(
                    f"{url}/login", json={"email": "user@example.com", "password": "fake-password"}
                ) as resp:
                    sid = (await resp.json())["arenaSessionId"]
                async with http.get(
                    f"{url.removesuffix('/v1')}/_fake/stats", headers={"arena_session_id": sid}
                ) as resp:
                    stats = await resp.json()
                return stats["logins"], sid

        logins, _ = asyncio.run(probe())
        assert logins == 1
        # After READY, how to use it by hand (tests/testing/test_banner.py).
        rest = proc.stdout.readline()
        assert rest.startswith(f"export ARENA_BASE_URL={url} ARENA_EMAIL=user@example.com ")
        while rest != "# serving until Ctrl-C or SIGTERM\n":
            rest = proc.stdout.readline()
            assert rest
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)  # (a hang fails it; a loaded box does not)
    assert proc.returncode == 0, err
    assert out == ""  # nothing more


def test_the_children_read_back_is_the_named_read_back() -> None:
    fake = FakeArena.seeded(items=30, seed=3)
    for guid in fake.item_guids:
        assert fake.children(guid, "tickets") == fake.ticket_refs(guid)
        assert fake.children(guid, "items") == fake.references(guid)
        assert fake.children(guid, "trainingrecords") == fake.training_records(guid)
        single = fake.children(guid, "trainingrecords", single=True)
        assert single == fake.training_records(guid, detail=True)
        for record in single:
            assert fake.child(guid, "trainingrecords", record["guid"]) == record
