"""Retry rules (`arena_async._retry`): which failures are retried, and what was sent.

The decisions are pure functions, tested first on real exceptions (got from real loopback
connections: a closed port, a reset, a self-signed TLS server, an invalid URL), then
end to end through ArenaClient against FakeArena, counting what reached the server.
"""

from __future__ import annotations

import random
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from arena_async import ArenaClient, QuotaExhaustedError, QuotaPolicy, RetryPolicy, TransportError
from arena_async._protocol import Request
from arena_async._retry import backoff_delay, is_retryable_exception, may_retry, was_sent
from arena_async.testing import FakeArena, Fault
from tests.conftest import FakeClock

GET = Request("GET", "http://h/v1/items/A/tickets", "/items/A/tickets")
POST = Request("POST", "http://h/v1/items/A/items", "/items/A/items")
CREATE = "POST /items/{item}/items"

# A throwaway self-signed certificate for 127.0.0.1 (valid 2026-2126) and its key, made
# for these tests with `openssl req -x509 -newkey ec ...`: no client trusts it. It guards
# nothing; it only makes a TLS server whose certificate is refused.
SELF_SIGNED_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgV+7a5XxNG3esG4iL
HE2Tx+CUo987sx/10PBZDe/tUmKhRANCAATCddKuaRK3Aq3ZpFef9gKlMEfVDZjC
/1to7Qt3YVBVkfqLBr9Kmp5MVnyOkbRX2yG8iGJwZ0zvsA5D0ZrobN3A
-----END PRIVATE KEY-----
"""
SELF_SIGNED_CERT = """-----BEGIN CERTIFICATE-----
MIIBkDCCATagAwIBAgIUSThRbfLxPtl6XMbYqQ151xHgqAYwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEyNjAxMzEwM1oYDzIxMjYxMTAy
MDEzMTAzWjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAATCddKuaRK3Aq3ZpFef9gKlMEfVDZjC/1to7Qt3YVBVkfqLBr9Kmp5M
VnyOkbRX2yG8iGJwZ0zvsA5D0ZrobN3Ao2QwYjAdBgNVHQ4EFgQU+cMozi9zU7u3
t/FJtSvWm0iEoowwHwYDVR0jBBgwFoAU+cMozi9zU7u3t/FJtSvWm0iEoowwDwYD
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0gAMEUC
IQDanHGpDacCJtH9Yr+cFVwYU5mtBZ5hsgJGkdIEC1ouRwIgSBUR421xcL/8r13U
n1Cua+IscqmofDp+emIupgqSUUk=
-----END CERTIFICATE-----
"""


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def failure_of(url: str, **kw: Any) -> BaseException:
    """The exception a plain aiohttp GET of ``url`` raises (it must raise)."""
    async with aiohttp.ClientSession() as session:
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=5), **kw):
                pass
        except Exception as exc:  # the point is to catch what it raises
            return exc
    raise AssertionError(f"GET {url} did not fail")


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[str, list[str]]]:
    """An https server on 127.0.0.1 with a self-signed certificate; yields its base URL and
    the paths it was asked for (none, when every client refuses its certificate)."""
    (tmp_path / "key.pem").write_text(SELF_SIGNED_KEY)
    (tmp_path / "cert.pem").write_text(SELF_SIGNED_CERT)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    seen: list[str] = []

    async def anything(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.json_response({"count": 0, "results": []})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"https://127.0.0.1:{port}/v1", seen
    finally:
        await runner.cleanup()


# -- the pure rules, on real exceptions ------------------------------------------------
async def test_a_refused_connection_was_not_sent_and_is_retryable() -> None:
    exc = await failure_of(f"http://127.0.0.1:{closed_port()}/v1/items")
    assert isinstance(exc, aiohttp.ClientConnectorError)
    assert was_sent(exc) is False
    assert is_retryable_exception(exc) is True
    assert may_retry(RetryPolicy(), POST, sent=was_sent(exc)) is True


async def test_a_reset_after_the_request_was_read_was_sent_and_is_retryable() -> None:
    async with FakeArena() as fake:
        fake.faults.add(Fault("reset_before_headers"))
        exc = await failure_of(f"{fake.url}/items/X/tickets")
        # It arrived (plain aiohttp may even send it twice on a fresh connection's reset).
        assert fake.requests
        assert {r.path for r in fake.requests} == {"/v1/items/X/tickets"}
    assert isinstance(exc, aiohttp.ClientError)
    assert not isinstance(exc, aiohttp.ClientConnectorError)
    assert was_sent(exc) is True
    assert is_retryable_exception(exc) is True
    assert may_retry(RetryPolicy(), POST, sent=was_sent(exc)) is False
    assert may_retry(RetryPolicy(), GET, sent=was_sent(exc)) is True


async def test_a_refused_certificate_is_permanent(tls_server: tuple[str, list[str]]) -> None:
    url, seen = tls_server
    exc = await failure_of(f"{url}/items")
    assert isinstance(exc, aiohttp.ClientConnectorCertificateError)
    assert is_retryable_exception(exc) is False
    assert seen == []


async def test_an_invalid_url_is_permanent() -> None:
    exc = await failure_of("http://127.0.0.1:99999/v1/items")  # port out of range
    assert isinstance(exc, aiohttp.InvalidURL)
    assert is_retryable_exception(exc) is False


@pytest.mark.parametrize("exc", [TimeoutError(), aiohttp.ServerTimeoutError(),
                                 ConnectionResetError(), aiohttp.ServerDisconnectedError(),
                                 aiohttp.ClientPayloadError("cut")])
def test_timeouts_and_broken_connections_are_retryable(exc: BaseException) -> None:
    assert is_retryable_exception(exc) is True
    assert was_sent(exc) is True  # maybe processed: counts as sent


@pytest.mark.parametrize("exc", [ValueError("x"), KeyError("k"), RuntimeError()])
def test_other_errors_are_not_retryable(exc: BaseException) -> None:
    assert is_retryable_exception(exc) is False


@pytest.mark.parametrize(("request_", "sent", "retry_post", "expected"), [
    (GET, True, False, True),
    (GET, False, False, True),
    (POST, False, False, True),  # never left: safe to send, whatever the method
    (POST, True, False, False),  # may have been processed: never twice
    (POST, True, True, True),  # unless the caller said so
])
def test_may_retry(request_: Request, sent: bool, retry_post: bool, expected: bool) -> None:
    assert may_retry(RetryPolicy(retry_post=retry_post), request_, sent=sent) is expected


def test_backoff_is_full_jitter_under_a_doubling_ceiling() -> None:
    policy = RetryPolicy(backoff=0.5, max_backoff=3.0)
    rng = random.Random(3)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (9, 3.0)]:
        delays = [backoff_delay(policy, attempt, rng) for _ in range(300)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.9 * ceiling  # the whole range is used, from near 0 ...
        assert min(delays) < 0.1 * ceiling  # ... to near the ceiling
    assert backoff_delay(RetryPolicy(backoff=0.0), 1, rng) == 0.0
    # Same seed, same delays: the pool's rng makes a run reproducible.
    assert [backoff_delay(policy, 2, random.Random(9)) for _ in range(2)] == [
        random.Random(9).uniform(0.0, 1.0)] * 2


# -- end to end: ArenaClient against FakeArena -----------------------------------------
def client_for(fake: FakeArena, clock: FakeClock, **kw: Any) -> ArenaClient:
    return ArenaClient(email=fake.email, password=fake.password,
                       workspace_id=fake.workspace_id, base_url=fake.url,
                       clock=clock, sleep=clock.sleep, seed=1, **kw)


async def test_a_refused_connection_is_retried_even_for_post_and_gives_the_quota_back(
        fake_clock: FakeClock) -> None:
    fake = FakeArena(quota_limit=3, clock=fake_clock)
    await fake.start()
    item, other = fake.add_item(), fake.add_item()
    # A new connection per request: once the fake is gone, every attempt is refused
    # (a kept-alive connection would fail after sending instead).
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
    arena = client_for(fake, fake_clock, session=session, quota=QuotaPolicy(),
                       retry=RetryPolicy(max_attempts=3, backoff=0.01))
    try:
        await arena.items.references.list(item)  # learns: 2 requests left
        assert arena.quota is not None
        assert arena.quota.remaining == 2
        await fake.close()
        for call in (arena.items.references.list(item),
                     arena.items.references.create(item, other, note="n"),
                     arena.items.references.list(other)):
            with pytest.raises(TransportError) as info:
                await call
            # Never sent: the POST is retried like the GETs, every attempt refused ...
            assert info.value.attempts == 3
            assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)
        # ... and none of the 9 attempts was spent: with only 2 requests left, the limiter
        # would have refused the third one had they counted (QuotaExhaustedError).
        stats = arena.stats
        assert stats.transport_errors == 9
        assert stats.quota_rejections == 0
        assert len(fake_clock.sleeps) == 6  # two backoffs per call
    finally:
        await arena.close()  # the logout fails: logged, not raised
        await session.close()
        await fake.close()


async def test_a_post_that_failed_after_it_was_sent_is_never_sent_again(
        fake_clock: FakeClock) -> None:
    async with FakeArena(clock=fake_clock) as fake:
        item, other = fake.add_item(), fake.add_item()
        fake.faults.add(Fault("reset_before_headers", method="POST", path="/items$", times=1))
        async with client_for(fake, fake_clock) as arena:
            with pytest.raises(TransportError) as info:
                await arena.items.references.create(item, other, note="once")
            assert info.value.attempts == 1
            assert [r.route for r in fake.requests].count(CREATE) == 1
            assert fake_clock.sleeps == []
            # The same fault on a GET is retried: a GET can be sent twice.
            fake.faults.add(Fault("reset_before_headers", method="GET", times=1))
            assert await arena.items.references.list(item) == []
            assert [r.route for r in fake.requests].count("GET /items/{item}/items") == 2


async def test_a_post_is_sent_again_when_the_policy_allows_it(fake_clock: FakeClock) -> None:
    async with FakeArena(clock=fake_clock) as fake:
        item, other = fake.add_item(), fake.add_item()
        fake.faults.add(Fault("reset_before_headers", method="POST", path="/items$", times=1))
        async with client_for(fake, fake_clock, retry=RetryPolicy(retry_post=True)) as arena:
            link = await arena.items.references.create(item, other, note="twice")
        assert link.note == "twice"
        assert [r.route for r in fake.requests].count(CREATE) == 2


async def test_a_lost_attempt_counts_against_the_quota(fake_clock: FakeClock) -> None:
    # Sent, then the connection broke: the server counted it, so the client must too.
    async with FakeArena(quota_limit=3, clock=fake_clock) as fake:
        item = fake.add_item()
        fake.faults.add(Fault("reset_before_headers", method="GET", after=1, times=2))
        async with client_for(fake, fake_clock, quota=QuotaPolicy(),
                              retry=RetryPolicy(max_attempts=4)) as arena:
            await arena.items.references.list(item)  # 2 left
            # Two attempts lost (both counted by the server), the third is refused locally
            # before sending: nothing is left.
            with pytest.raises(QuotaExhaustedError):
                await arena.items.references.list(item)
        assert fake.stats.quota_exhausted == 0  # the client never hit the server's 429
        assert fake.quota_remaining == 0


async def test_a_refused_certificate_is_not_retried(fake_clock: FakeClock,
                                                    tls_server: tuple[str, list[str]]) -> None:
    url, seen = tls_server
    async with ArenaClient(session_id="given", base_url=url, clock=fake_clock,
                           sleep=fake_clock.sleep) as arena:
        with pytest.raises(TransportError) as info:
            await arena.items.tickets.list("ITEM1")
    assert info.value.attempts == 1
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorCertificateError)
    assert fake_clock.sleeps == []
    assert seen == []


async def test_a_base_url_with_an_impossible_port_is_a_value_error_never_retried(
        fake_clock: FakeClock) -> None:
    # aiohttp would raise InvalidURL (permanent, above); the client refuses the URL itself,
    # at construction or at the latest before the first request is sent.
    with pytest.raises(ValueError, match=r"[Pp]ort"):
        async with ArenaClient(session_id="given", base_url="http://127.0.0.1:99999/v1",
                               clock=fake_clock, sleep=fake_clock.sleep) as arena:
            await arena.items.tickets.list("ITEM1")
    assert fake_clock.sleeps == []
