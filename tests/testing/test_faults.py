"""Fault rules and schedules (no I/O), then each fault kind over real loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import attrs
import pytest
import pytest_asyncio
from aiohttp import web

from arena_async.testing import FAULT_KINDS, FakeArena, Fault, FaultPlan, faults_middleware
from tests.conftest import Stalls

REMAINING = "X-Arena-Requests-Remaining"


@attrs.frozen
class Req:
    method: str = "GET"
    path: str = "/v1/items/A/tickets"


def fires(plan: FaultPlan, n: int, request: Req | None = None) -> list[int]:
    """1-based positions, among ``n`` identical requests, at which a fault fired."""
    req = request or Req()
    return [i for i in range(1, n + 1) if plan.pick(req) is not None]


# ---------------------------------------------------------------------------- schedules


def test_kinds_are_the_documented_ones() -> None:
    assert (
        frozenset(
            {
                "status",
                "reset_before_headers",
                "reset_after_headers",
                "truncate",
                "invalid_json",
                "wrong_shape",
                "slow_headers",
                "slow_body",
                "expire_session",
                "huge_body",
            }
        )
        == FAULT_KINDS
    )


def test_times() -> None:
    plan = FaultPlan()
    fault = plan.add(Fault("status", times=2))
    assert fires(plan, 5) == [1, 2]
    assert plan.fired_count(fault) == 2
    assert plan.fired == {"status": 2}


def test_every_and_after() -> None:
    plan = FaultPlan()
    plan.add(Fault("status", every=3))
    assert fires(plan, 10) == [3, 6, 9]
    plan = FaultPlan()
    plan.add(Fault("status", after=2, times=1))
    assert fires(plan, 6) == [3]
    plan = FaultPlan()
    plan.add(Fault("status", after=1, every=2, times=2))
    assert fires(plan, 10) == [3, 5]


def test_method_and_path_scope() -> None:
    plan = FaultPlan()
    fault = plan.add(Fault("truncate", method="post", path=r"/items$", every=2))
    post = Req("POST", "/v1/items/A/items")
    other = Req("GET", "/v1/items/A/items")
    assert fault.method == "POST"
    # Out-of-scope requests are neither fired on nor counted towards ``every``.
    results = [plan.pick(r) is not None for r in (post, other, other, post, post, post)]
    assert results == [False, False, False, True, False, True]
    assert not fault.matches("POST", "/v1/items/A/items/B")
    assert fault.matches("POST", "/v1/items/A/items")


def test_rate_is_seeded_and_reproducible() -> None:
    def run(seed: int) -> list[int]:
        plan = FaultPlan(seed=seed)
        plan.add(Fault("status", rate=0.3))
        return fires(plan, 200)

    expected_rng = random.Random(5)
    expected = [i for i in range(1, 201) if expected_rng.random() < 0.3]
    assert run(5) == expected
    assert run(5) == run(5)
    assert run(5) != run(6)
    never, always = FaultPlan(), FaultPlan()
    never.add(Fault("status", rate=0.0))
    always.add(Fault("status", rate=1.0))
    assert fires(never, 20) == []
    assert fires(always, 20) == list(range(1, 21))


def test_first_due_rule_wins_and_later_rules_do_not_see_it() -> None:
    plan = FaultPlan()
    first = plan.add(Fault("status", status=502, times=1))
    second = plan.add(Fault("status", status=503, every=2))
    picked = [plan.pick(Req()) for _ in range(5)]
    assert [p.status if p else None for p in picked] == [502, None, 503, None, 503]
    assert (plan.fired_count(first), plan.fired_count(second)) == (1, 2)
    assert plan.total_fired == 3
    assert plan.faults == (first, second)


def test_clear_and_remove() -> None:
    plan = FaultPlan(seed=3)
    fault = plan.add(Fault("status", rate=0.5))
    before = fires(plan, 30)
    plan.clear()
    assert len(plan) == 0
    assert plan.total_fired == 0
    assert fires(plan, 5) == []
    plan.add(fault)
    assert fires(plan, 30) == before  # the RNG was re-seeded
    plan.remove(fault)
    assert len(plan) == 0
    with pytest.raises(ValueError, match="not in the plan"):
        plan.remove(fault)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "nope"},
        {"kind": "status", "status": 99},
        {"kind": "status", "every": 0},
        {"kind": "status", "times": 0},
        {"kind": "status", "rate": 1.5},
        {"kind": "status", "after": -1},
        {"kind": "slow_body", "delay": -0.1},
    ],
)
def test_invalid_faults(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Fault(**kwargs)


def test_bad_regex_and_conversions() -> None:
    with pytest.raises(re.error):
        Fault("status", path="(")
    fault = Fault("status", retry_after=3, headers={"X-A": "1"})
    assert fault.retry_after == "3"
    assert fault.headers == (("X-A", "1"),)


# ---------------------------------------------------------------------------- over HTTP


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeArena]:
    async with FakeArena.seeded(items=5, seed=1, quota_limit=100) as server:
        yield server


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def session_for(http: aiohttp.ClientSession, fake: FakeArena) -> dict[str, str]:
    async with http.post(
        f"{fake.url}/login", json={"email": fake.email, "password": fake.password}
    ) as resp:
        return {"arena_session_id": (await resp.json())["arenaSessionId"]}


def tickets_url(fake: FakeArena) -> str:
    return f"{fake.url}/items/{fake.item_guids[0]}/tickets"


async def test_status_fault(http: aiohttp.ClientSession, fake: FakeArena) -> None:
    headers = await session_for(http, fake)
    fake.faults.add(Fault("status", status=503, retry_after="2", times=1))
    async with http.get(tickets_url(fake), headers=headers) as resp:
        assert resp.status == 503
        assert resp.headers["Retry-After"] == "2"
        assert resp.headers[REMAINING] == "99"  # counted, with the quota headers
        body = await resp.json()
    assert body == {
        "status": 503,
        "errors": [{"code": 503, "message": "Injected fault: HTTP 503."}],
    }
    async with http.get(tickets_url(fake), headers=headers) as resp:
        assert resp.status == 200
        assert "Retry-After" not in resp.headers
        assert resp.headers[REMAINING] == "98"
    assert fake.stats.faults_fired == 1
    assert [r.fault for r in fake.requests] == [None, "status", None]
    assert [r.status for r in fake.requests] == [200, 503, 200]


async def test_status_fault_does_not_process_and_custom_body(
    http: aiohttp.ClientSession, fake: FakeArena
) -> None:
    headers = await session_for(http, fake)
    a, b = fake.item_guids[0], fake.add_item()
    fake.faults.add(
        Fault("status", status=429, method="POST", body={"x": 1}, headers={"X-Why": "test"})
    )
    async with http.post(
        f"{fake.url}/items/{a}/items", headers=headers, json={"item": {"guid": b}}
    ) as resp:
        assert resp.status == 429
        assert resp.headers["X-Why"] == "test"
        assert "Retry-After" not in resp.headers
        assert int(resp.headers[REMAINING]) > 0  # not the quota: a plain rate limit
        assert await resp.json() == {"x": 1}
    assert fake.references(b) == []
    assert fake.stats.quota_exhausted == 0


async def test_reset_before_headers(http: aiohttp.ClientSession, fake: FakeArena) -> None:
    headers = await session_for(http, fake)
    # aiohttp itself resends an idempotent request once after a dropped connection
    # (ClientSession._retry_connection), so it takes two resets to reach the caller.
    fake.faults.add(Fault("reset_before_headers", times=2))
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        await http.get(tickets_url(fake), headers=headers)
    assert fake.quota_remaining == 98  # both attempts counted
    assert [(r.status, r.fault) for r in fake.requests[1:]] == [
        (None, "reset_before_headers"),
        (None, "reset_before_headers"),
    ]
    async with http.get(tickets_url(fake), headers=headers) as resp:
        assert resp.status == 200


async def test_one_reset_is_hidden_by_aiohttp_resend(
    http: aiohttp.ClientSession, fake: FakeArena
) -> None:
    headers = await session_for(http, fake)
    fake.faults.add(Fault("reset_before_headers", times=1))
    async with http.get(tickets_url(fake), headers=headers) as resp:
        assert resp.status == 200
    assert [r.fault for r in fake.requests] == [None, "reset_before_headers", None]
    assert fake.quota_remaining == 98


async def test_reset_before_headers_on_post_is_not_resent(
    http: aiohttp.ClientSession, fake: FakeArena
) -> None:
    headers = await session_for(http, fake)
    a, b = fake.add_item(), fake.add_item()
    fake.faults.add(Fault("reset_before_headers", times=1))
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        await http.post(f"{fake.url}/items/{a}/items", headers=headers, json={"item": {"guid": b}})
    assert fake.references(a) == []  # not processed
    assert len(fake.requests) == 2


async def test_reset_after_headers_processes_the_request(
    http: aiohttp.ClientSession, fake: FakeArena
) -> None:
    headers = await session_for(http, fake)
    a, b = fake.item_guids[0], fake.add_item()
    fake.faults.add(Fault("reset_after_headers", times=1))
    async with http.post(
        f"{fake.url}/items/{a}/items", headers=headers, json={"item": {"guid": b}}
    ) as resp:
        assert resp.status == 201
        assert int(resp.headers["Content-Length"]) > 0
        assert resp.headers[REMAINING] == "99"
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    # The server did the work; only the answer was lost.
    assert [r["item"]["guid"] for r in fake.references(b)] == [a]


async def test_truncate(http: aiohttp.ClientSession, fake: FakeArena) -> None:
    headers = await session_for(http, fake)
    fake.faults.add(Fault("truncate", times=1))
    expected = json.dumps({"count": 0, "results": []})
    fake.faults.add(Fault("truncate", times=1, body=expected.encode()))
    async with http.get(tickets_url(fake), headers=headers) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError, match=r"ContentLengthError"):
            await resp.read()
    async with http.get(tickets_url(fake), headers=headers) as resp:
        assert resp.headers["Content-Length"] == str(len(expected))
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    assert fake.faults.fired == {"truncate": 2}


async def test_truncate_of_an_empty_answer_sends_a_filler(
    http: aiohttp.ClientSession, fake: FakeArena
) -> None:
    headers = await session_for(http, fake)
    a, b = fake.add_item(), fake.add_item()
    ref = fake.add_reference(a, b)
    fake.faults.add(Fault("truncate", method="DELETE"))
    async with http.delete(f"{fake.url}/items/{a}/items/{ref}", headers=headers) as resp:
        assert resp.status == 200  # 204 has no body to cut: a 200 filler is cut instead
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()
    assert fake.references(a) == []


async def test_invalid_json_and_wrong_shape(http: aiohttp.ClientSession, fake: FakeArena) -> None:
    headers = await session_for(http, fake)
    fake.faults.add(Fault("invalid_json", times=1))
    fake.faults.add(Fault("wrong_shape", times=1))
    fake.faults.add(Fault("wrong_shape", times=1, body={"count": 1, "results": [{"guid": 5}]}))
    async with http.get(tickets_url(fake), headers=headers) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        assert await resp.read() == b'{"count": 1, "resu'
    async with http.get(tickets_url(fake), headers=headers) as resp:
        assert (resp.status, await resp.json()) == (200, {"count": "x", "results": {}})
    async with http.get(tickets_url(fake), headers=headers) as resp:
        assert await resp.json() == {"count": 1, "results": [{"guid": 5}]}
    assert fake.faults.fired == {"invalid_json": 1, "wrong_shape": 2}


async def test_slow_headers(http: aiohttp.ClientSession, fake: FakeArena) -> None:
    headers = await session_for(http, fake)
    fake.faults.add(Fault("slow_headers", delay=0.2, times=1))
    with pytest.raises(asyncio.TimeoutError):
        async with http.get(
            tickets_url(fake), headers=headers, timeout=aiohttp.ClientTimeout(total=0.05)
        ) as resp:
            await resp.read()
    fake.faults.add(Fault("slow_headers", delay=0.1, times=1))
    started = time.monotonic()
    async with http.get(tickets_url(fake), headers=headers) as resp:
        assert resp.status == 200
        assert time.monotonic() - started >= 0.1
        assert await resp.json() == {
            "count": len(fake.ticket_refs(fake.item_guids[0])),
            "results": fake.ticket_refs(fake.item_guids[0]),
        }


async def test_slow_body(http: aiohttp.ClientSession, fake: FakeArena) -> None:
    headers = await session_for(http, fake)
    fake.faults.add(Fault("slow_body", delay=0.15, times=1))
    async with Stalls() as stalls:
        started = time.monotonic()
        async with http.get(tickets_url(fake), headers=headers) as resp:
            headers_at = time.monotonic() - started
            # the headers before the body's delay (plus the time the machine stopped us)
            assert headers_at < 0.1 + stalls.lost(), (headers_at, stalls.gaps)
            assert resp.status == 200
            assert resp.headers[REMAINING] == "99"
            body = await resp.json()
            body_at = time.monotonic() - started
    assert body_at >= 0.15
    assert body["results"] == fake.ticket_refs(fake.item_guids[0])


async def test_expire_session(http: aiohttp.ClientSession, fake: FakeArena) -> None:
    headers = await session_for(http, fake)
    fake.faults.add(Fault("expire_session", times=1))
    async with http.get(tickets_url(fake), headers=headers) as resp:
        assert resp.status == 401
        assert (await resp.json())["errors"][0]["code"] == 401
    async with http.get(tickets_url(fake), headers=headers) as resp:
        assert resp.status == 401  # the session stays dead
    assert fake.stats.sessions_expired == 1
    assert fake.stats.unauthorized == 2
    assert fake.active_sessions == 0


async def test_fault_on_login_carries_no_quota_headers(
    http: aiohttp.ClientSession, fake: FakeArena
) -> None:
    fake.faults.add(Fault("status", status=502, path=r"/login$", times=1))
    async with http.post(
        f"{fake.url}/login", json={"email": fake.email, "password": fake.password}
    ) as resp:
        assert resp.status == 502
        assert REMAINING not in resp.headers
    assert fake.quota_remaining == 100
    assert fake.stats.logins == 0


async def test_quota_429_comes_before_faults(http: aiohttp.ClientSession, fake: FakeArena) -> None:
    headers = await session_for(http, fake)
    fake.set_quota(remaining=0)
    fault = fake.faults.add(Fault("status", status=500))
    async with http.get(tickets_url(fake), headers=headers) as resp:
        assert resp.status == 429
    assert fake.faults.fired_count(fault) == 0


async def test_no_server_errors_logged(
    http: aiohttp.ClientSession, fake: FakeArena, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    headers = await session_for(http, fake)
    for kind in ("reset_before_headers", "reset_after_headers", "truncate"):
        fake.faults.add(Fault(kind, times=2))
        with pytest.raises(aiohttp.ClientError):
            async with http.get(tickets_url(fake), headers=headers) as resp:
                await resp.read()
        fake.faults.clear()
    await asyncio.sleep(0.01)  # let the server finish its side
    assert [r.getMessage() for r in caplog.records] == []


# ---------------------------------------------------------------------------- reuse by another fake


async def test_middleware_standalone_with_custom_error_body_and_expire() -> None:
    plan = FaultPlan()
    expired: list[str] = []

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application(
        middlewares=[
            faults_middleware(
                plan,
                expire=lambda request: expired.append(request.path),
                error_body=lambda status: {"code": status, "message": "boom"},
            )
        ]
    )
    app.router.add_get("/api/hello", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        plan.add(Fault("status", status=500, times=1))
        plan.add(Fault("expire_session", times=1))
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}/api/hello"
            async with http.get(url) as resp:
                assert (resp.status, await resp.json()) == (500, {"code": 500, "message": "boom"})
            async with http.get(url) as resp:
                assert (resp.status, await resp.json()) == (200, {"ok": True})
            async with http.get(url) as resp:
                assert (resp.status, await resp.json()) == (200, {"ok": True})
    finally:
        await runner.cleanup()
    assert expired == ["/api/hello"]
    assert plan.fired == {"status": 1, "expire_session": 1}


async def test_slow_body_on_head_keeps_the_connection_usable(
    http: aiohttp.ClientSession, fake: FakeArena
) -> None:
    headers = await session_for(http, fake)
    fake.faults.add(Fault("slow_body", delay=0.01, method="HEAD"))
    async with http.head(tickets_url(fake), headers=headers) as resp:
        assert resp.status == 200
        assert await resp.read() == b""
    async with http.get(tickets_url(fake), headers=headers) as resp:  # same keep-alive socket
        assert resp.status == 200
        assert (await resp.json())["results"] == fake.ticket_refs(fake.item_guids[0])
    assert fake.faults.fired == {"slow_body": 1}
