"""The FakeServer base under both fakes: lifecycle, IPv6, one RecordedRequest, stats with
reset(), latency and faults, over real loopback HTTP with a plain aiohttp client."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from arena_async.testing import (
    STATS_PATH,
    FakeAkana,
    FakeAkanaStats,
    FakeArena,
    FakeArenaStats,
    FakeServer,
    FakeServerStats,
    Fault,
    FaultPlan,
    RecordedRequest,
    arena_error_body,
)
from tests.conftest import Stalls

V81 = "application/vnd.soa.v81+json"
NOW = 1_800_000_000.0


class Side:
    """What a test needs to know of one fake: how to build it, log in and read."""

    name: str
    login_route: str
    read_route: str
    stats_class: type[FakeServerStats]

    def make(self, **kwargs: Any) -> Any:
        raise NotImplementedError

    def login_request(self, fake: Any) -> tuple[str, dict[str, Any]]:
        """(URL, JSON body) of a login."""
        raise NotImplementedError

    async def login(self, http: aiohttp.ClientSession, fake: Any) -> dict[str, str]:
        """Log in; the headers an authenticated read needs."""
        raise NotImplementedError

    def read_url(self, fake: Any) -> str:
        raise NotImplementedError

    def fault_body(self, status: int) -> Any:
        raise NotImplementedError


class ArenaSide(Side):
    name = "arena"
    login_route = "POST /login"
    read_route = "GET /items/{item}/tickets"
    stats_class = FakeArenaStats

    def make(self, **kwargs: Any) -> Any:
        return FakeArena.seeded(items=2, seed=1, **kwargs)

    def login_request(self, fake: Any) -> tuple[str, dict[str, Any]]:
        return f"{fake.url}/login", {
            "email": fake.email, "password": fake.password, "workspaceId": fake.workspace_id}

    async def login(self, http: aiohttp.ClientSession, fake: Any) -> dict[str, str]:
        url, body = self.login_request(fake)
        async with http.post(url, json=body) as response:
            assert response.status == 200
            return {"arena_session_id": (await response.json())[fake.login_session_key]}

    def read_url(self, fake: Any) -> str:
        return f"{fake.url}/items/{fake.item_guids[0]}/tickets"

    def fault_body(self, status: int) -> Any:
        return arena_error_body(status)


class AkanaSide(Side):
    name = "akana"
    login_route = "POST /api/login"
    read_route = "GET /api/tickets/{ticket_id}"
    stats_class = FakeAkanaStats

    def make(self, **kwargs: Any) -> Any:
        return FakeAkana.seeded(tickets=3, seed=1, **kwargs)

    def login_request(self, fake: Any) -> tuple[str, dict[str, Any]]:
        return f"{fake.url}/api/login", {"email": fake.email, "password": fake.password}

    async def login(self, http: aiohttp.ClientSession, fake: Any) -> dict[str, str]:
        url, body = self.login_request(fake)
        async with http.post(url, json=body) as response:
            assert response.status == 200
        return {"Accept": V81}  # the token travels in the cookie jar

    def read_url(self, fake: Any) -> str:
        return f"{fake.url}/api/tickets/{fake.tickets[0]['TicketID']}"

    def fault_body(self, status: int) -> Any:
        return {"code": status, "message": f"Injected fault: HTTP {status}."}


SIDES = [ArenaSide(), AkanaSide()]


@pytest.fixture(params=SIDES, ids=lambda side: side.name)
def side(request: pytest.FixtureRequest) -> Side:
    param: Side = request.param
    return param


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # The default jar drops cookies from IP hosts such as 127.0.0.1 (Akana's token).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never became true")


# ---------------------------------------------------------------------- lifecycle


async def test_start_returns_the_fake_and_close_is_idempotent(
    side: Side, http: aiohttp.ClientSession
) -> None:
    fake = side.make()
    assert isinstance(fake, FakeServer)
    with pytest.raises(RuntimeError, match=f"{type(fake).__name__} is not started"):
        _ = fake.url
    started = await fake.start()
    try:
        assert started is fake
        assert re.fullmatch(rf"http://127\.0\.0\.1:{fake.port}{fake.base_path}", fake.url)
        assert fake.port > 0
        assert fake.host == "127.0.0.1"
        with pytest.raises(RuntimeError, match="already started"):
            await fake.start()
        url, body = side.login_request(fake)
    finally:
        await fake.close()
    await fake.close()  # twice is fine
    with pytest.raises(aiohttp.ClientConnectorError):
        await http.post(url, json=body)
    # A closed fake starts again (on a new free port) with its data and records kept.
    async with fake as again:
        assert again is fake
        url, body = side.login_request(fake)
        async with http.post(url, json=body) as response:
            assert response.status == 200
        assert [r.route for r in fake.requests] == [side.login_route]


async def test_async_with_gives_the_started_fake(side: Side) -> None:
    fake = side.make()
    async with fake as entered:
        assert entered is fake
        assert fake.url.startswith("http://127.0.0.1:")
        assert repr(fake).startswith(f"{type(fake).__name__}(url={fake.url!r}")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"latency": -0.1}, "latency must be >= 0"),
        ({"port": 70000}, "port must be an integer from 0 to 65535"),
        ({"port": True}, "port must be an integer"),
        ({"host": ""}, "host must be a non-empty"),
    ],
)
def test_bad_settings_are_refused(side: Side, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        side.make(**kwargs)


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
async def test_ipv6_host(side: Side, http: aiohttp.ClientSession) -> None:
    async with side.make(host="::1") as fake:
        assert fake.host == "::1"
        assert re.fullmatch(rf"http://\[::1\]:{fake.port}{fake.base_path}", fake.url)
        url, body = side.login_request(fake)
        async with http.post(url, json=body) as response:
            assert response.status == 200
        (login,) = fake.requests
        assert (login.route, login.status) == (side.login_route, 200)


# ---------------------------------------------------------------------- recording


async def test_recorded_request_shape(side: Side, http: aiohttp.ClientSession) -> None:
    async with side.make(clock=lambda: NOW) as fake:
        headers = await side.login(http, fake)
        read = side.read_url(fake)
        async with http.get(f"{read}?a=1&a=2&b=x%20y", headers=headers) as response:
            assert response.status == 200
        async with aiohttp.ClientSession() as bare, bare.get(  # no cookies
            read, headers={"Authorization": "Bearer not-a-token"}
        ) as response:
            await response.read()
        async with http.get(f"{fake.url}/no/such/route%2F") as response:
            assert response.status == 404

        login, got, bearer, unmatched = fake.requests
        assert all(type(r) is RecordedRequest for r in fake.requests)
        # The login: a JSON body, no session yet.
        _, sent = side.login_request(fake)
        assert (login.method, login.route, login.status, login.fault) == (
            "POST", side.login_route, 200, None)
        assert login.json() == sent == json.loads(login.content)
        assert (login.has_session, login.has_bearer) == (False, False)
        assert login.received_at == NOW
        # The read: raw path and query, repeated names kept, the session credential.
        assert got.path == read.removeprefix(fake.url.removesuffix(fake.base_path))
        assert got.query_string == "a=1&a=2&b=x%20y"
        assert (got.query.getall("a"), got.query["b"]) == (["1", "2"], "x y")
        assert got.query_items == [("a", "1"), ("a", "2"), ("b", "x y")]
        assert (got.route, got.status, got.has_session) == (side.read_route, 200, True)
        assert (got.content, got.unknown_params) == (b"", [])
        assert (bearer.has_bearer, bearer.has_session) == (True, False)
        assert bearer.headers["authorization"] == "Bearer not-a-token"  # case-insensitive
        # No route: route None, the status still recorded, the raw path as sent.
        assert (unmatched.route, unmatched.status) == (None, 404)
        assert unmatched.path == fake.paths[-1]
        assert unmatched.path.endswith("/no/such/route%2F")
        assert fake.requests_to(side.read_route) == [got, bearer]
        # Secrets stay out of repr: password, session id or token cookie, bearer token.
        text = repr(fake.requests)
        assert fake.password not in text
        assert "not-a-token" not in text
        for value in [*got.headers.values(), *got.cookies.values()]:
            if len(value) > 12:
                assert value not in text


async def test_body_is_the_decoded_json_and_akanas_bytes_are_deprecated(
    side: Side, http: aiohttp.ClientSession
) -> None:
    async with side.make() as fake:
        await side.login(http, fake)
        (login,) = fake.requests
        _, sent = side.login_request(fake)
        if isinstance(fake, FakeAkana):
            with pytest.warns(DeprecationWarning, match=r"\.content"):
                assert login.body == login.content
        else:
            assert login.body == sent
    # The one class: body decodes JSON, is None when empty or not JSON; json() raises.
    assert RecordedRequest("POST", "/x", content=b'{"a": [1]}').body == {"a": [1]}
    assert RecordedRequest("GET", "/x").body is None
    assert RecordedRequest("POST", "/x", content=b"{nope").body is None
    with pytest.raises(ValueError):
        RecordedRequest("POST", "/x", content=b"{nope").json()


def test_old_names_still_import() -> None:
    import arena_async.testing as kit
    from arena_async.testing import _fake_akana, _fake_arena

    assert _fake_arena.RecordedRequest is RecordedRequest
    with pytest.warns(DeprecationWarning, match="arena_async.testing.RecordedRequest"):
        assert _fake_akana.RecordedRequest is RecordedRequest
    with pytest.warns(DeprecationWarning, match="arena_async.testing.FakeAkanaStats"):
        assert _fake_akana.AkanaStats is FakeAkanaStats
    assert kit.FakeAkanaStats is FakeAkanaStats
    assert {"FakeServer", "FakeServerStats", "RecordedRequest", "FakeAkanaStats"} <= set(
        kit.__all__)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = _fake_akana.Nope


# ---------------------------------------------------------------------- stats


async def test_stats_count_and_reset(side: Side, http: aiohttp.ClientSession) -> None:
    async with side.make() as fake:
        headers = await side.login(http, fake)
        async with http.get(side.read_url(fake), headers=headers) as response:
            assert response.status == 200
        async with aiohttp.ClientSession() as bare, bare.get(  # no credential
            side.read_url(fake), headers={"Accept": V81}
        ) as response:
            assert response.status == 401
        stats = fake.stats
        assert isinstance(stats, side.stats_class)
        assert (stats.requests, stats.unauthorized) == (3, 1)
        assert stats.by_route == {side.login_route: 1, side.read_route: 2}
        assert stats.statuses == {200: 2, 401: 1}
        assert (stats.max_in_flight, stats.in_flight) == (1, 0)
        stats_url = fake.url.removesuffix(fake.base_path) + STATS_PATH
        async with http.get(stats_url) as response:
            assert (await response.json())["by_route"] == {
                side.login_route: 1, side.read_route: 2}
        assert len(fake.requests) == 3  # the stats endpoint is not recorded or counted
        assert fake.stats.requests == 3

        fake.stats.reset()
        assert fake.stats == side.stats_class()
        assert fake.stats is stats
        async with http.get(side.read_url(fake), headers=headers) as response:
            assert response.status == 200
        async with http.get(stats_url) as response:
            counted = await response.json()
        assert (counted["requests"], counted["statuses"]) == (1, {"200": 1})
        assert len(fake.requests) == 4  # reset() forgets counts, not records


async def test_reset_keeps_the_requests_in_flight(side: Side, http: aiohttp.ClientSession) -> None:
    async with side.make(latency=0.3) as fake:
        url, body = side.login_request(fake)
        pending = asyncio.ensure_future(http.post(url, json=body))
        try:
            await until(lambda: fake.stats.in_flight == 1)
            fake.stats.reset()
            assert (fake.stats.requests, fake.stats.in_flight, fake.stats.max_in_flight) == (
                0, 1, 1)
            async with await pending as response:
                assert response.status == 200
        finally:
            pending.cancel()
        assert fake.stats.in_flight == 0
        assert fake.stats.statuses == {200: 1}


# ---------------------------------------------------------------------- latency


async def test_latency_delays_every_answer_and_counts_in_flight(
    side: Side, http: aiohttp.ClientSession
) -> None:
    latency = 0.25  # long enough that a loaded machine's overhead stays well below it
    async with side.make(latency=latency) as fake:
        url, body = side.login_request(fake)

        async def login() -> float:
            began = time.perf_counter()
            async with http.post(url, json=body) as response:
                assert response.status == 200
            return time.perf_counter() - began

        # The upper bounds add the time the machine stopped this process: one after
        # another, the logins would take 4 * latency with the loop free.
        async with Stalls() as stalls:
            took = await asyncio.gather(*(login() for _ in range(4)))
            assert min(took) >= latency
            # slept side by side, not one after another
            assert max(took) < latency * 4 + stalls.lost(), (took, stalls.gaps)
            assert fake.stats.max_in_flight == 4
            fake.latency = 0.0
            assert await login() < latency + stalls.lost(), stalls.gaps


# ---------------------------------------------------------------------- faults


async def test_a_status_fault_answers_the_fakes_error_body(
    side: Side, http: aiohttp.ClientSession
) -> None:
    plan = FaultPlan()
    async with side.make(faults=plan) as fake:
        assert fake.faults is plan
        headers = await side.login(http, fake)
        plan.add(Fault("status", status=503, retry_after="2", times=1))
        async with http.get(side.read_url(fake), headers=headers) as response:
            assert response.status == 503
            assert response.headers["Retry-After"] == "2"
            assert await response.json() == side.fault_body(503)
        async with http.get(side.read_url(fake), headers=headers) as response:
            assert response.status == 200
        assert [(r.status, r.fault) for r in fake.requests[1:]] == [(503, "status"), (200, None)]
        assert fake.stats.faults_fired == 1
        assert fake.stats.statuses == {200: 2, 503: 1}


async def test_dropped_and_cut_answers(side: Side, http: aiohttp.ClientSession) -> None:
    async with side.make() as fake:
        url, body = side.login_request(fake)
        # A POST dropped before the status line: aiohttp does not re-send it.
        fake.faults.add(Fault("reset_before_headers", method="POST", times=1))
        with pytest.raises(aiohttp.ClientError):
            await http.post(url, json=body)
        # A body cut short after the status line: the status was sent, so it is recorded.
        fake.faults.add(Fault("truncate", method="POST", times=1))
        async with http.post(url, json=body) as response:
            assert response.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()
        await until(lambda: len(fake.requests) == 2 and fake.requests[1].fault is not None)
        assert [(r.status, r.fault) for r in fake.requests] == [
            (None, "reset_before_headers"), (200, "truncate")]
        assert fake.stats.faults_fired == 2
        assert fake.stats.statuses == {200: 1}


async def test_expire_session_fault_uses_the_fakes_own_expiry(
    side: Side, http: aiohttp.ClientSession
) -> None:
    async with side.make() as fake:
        headers = await side.login(http, fake)
        fake.faults.add(Fault("expire_session", path=r"/(tickets|api/tickets/)", times=1))
        async with http.get(side.read_url(fake), headers=headers) as response:
            assert response.status == 401
        async with http.get(side.read_url(fake), headers=headers) as response:
            assert response.status == 401  # the session stays dead: expired, not refused once
        assert [(r.status, r.fault) for r in fake.requests[1:]] == [
            (401, "expire_session"), (401, None)]
        assert fake.stats.unauthorized == 2
        async with http.get(side.read_url(fake), headers=await side.login(http, fake)) as response:
            assert response.status == 200


# ---------------------------------------------------------------------- python -m


def test_cli_runs_fake_akana_too() -> None:
    repo = Path(__file__).resolve().parents[2]
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "arena_async.testing", "akana", "--port", "0", "--tickets", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"READY (http://127\.0\.0\.1:\d+)\n", line)
        assert match is not None, line
        url = match.group(1)

        async def probe() -> dict[str, Any]:
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{url}/api/login", json={
                        "email": "admin@acmepaymentscorp.example",
                        "password": "Akana-Passw0rd!"}) as response:
                    assert response.status == 200
                async with http.get(f"{url}{STATS_PATH}") as response:
                    stats: dict[str, Any] = await response.json()
                    return stats

        assert asyncio.run(probe())["logins"] == 1
        # After READY, how to use it by hand (tests/testing/test_banner.py).
        assert [proc.stdout.readline() for _ in range(2)] == [
            f"export AKANA_BASE_URL={url} AKANA_EMAIL=admin@acmepaymentscorp.example "
            "AKANA_PASSWORD='Akana-Passw0rd!'\n", "# serving until Ctrl-C or SIGTERM\n"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)  # (a hang fails it; a loaded box does not)
    assert proc.returncode == 0, err
    assert out == ""  # nothing more
