"""The pool's own rules (`arena_async._transport`, `_lifecycle`, `_transport_stats`), through public
methods only: a :class:`Transport` built here, sending to FakeArena over loopback.

The rules of retries, re-logins and waits are the exchange's (tests/test_exchange.py);
here: what the driver itself owes. Cancelling a send gives its permit back (on the
inline first attempt and on the general path); the deadline's backstop turns its own
expiry into an error that says what was under way, and nothing else; the counters count
what happened (a retry, a 429, a 5xx, a failed attempt, the limiter's waits); the session
belongs to its loop and a caller's session is never closed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest

from arena_async import APIError, RetryPolicy, TransportError
from arena_async._limiter import Limiter, LimiterStats
from arena_async._protocol import Request
from arena_async._transport import Transport
from arena_async._transport_stats import TransportCounters
from arena_async.testing import FakeArena, Fault
from tests.conftest import FakeClock

TICKETS = "GET /items/{item}/tickets"


class GivenSession:
    """An Auth that holds a session (:func:`log_in` gets one from the fake), never logs in
    by itself and ends nothing; it counts the ``close`` calls.

    ``refused`` makes :meth:`headers` raise it (an auth that cannot answer)."""

    def __init__(self, refused: BaseException | None = None) -> None:
        self.refused = refused
        self.session = "none"
        self.closed = 0

    def ready(self, pool: Transport) -> tuple[Mapping[str, str], int] | None:
        return None if self.refused is not None else ({"arena_session_id": self.session}, 1)

    async def headers(self, pool: Transport) -> tuple[Mapping[str, str], int]:
        if self.refused is not None:
            raise self.refused
        return {"arena_session_id": self.session}, 1

    async def current(self) -> tuple[Mapping[str, str], int]:
        return {"arena_session_id": self.session}, 1

    async def refresh(self, pool: Transport, generation: int, error: APIError) -> None:
        raise error

    async def close(self, pool: Transport) -> None:
        self.closed += 1


def pool_for(fake: FakeArena | None, *, slots: int = 1, auth: Any = None,
             clock: FakeClock | None = None, **kw: Any) -> tuple[Transport, Limiter]:
    clock = clock or FakeClock()
    limiter = Limiter(max_concurrency=slots, clock=clock, sleep=clock.sleep)
    kw.setdefault("retry", RetryPolicy(max_attempts=3, backoff=1.0))
    kw.setdefault("timeout", 5.0)
    pool = Transport(auth=auth or GivenSession(), limiter=limiter, clock=clock,
                       sleep=clock.sleep, rng=random.Random(1), **kw)
    return pool, limiter


async def log_in(pool: Transport, fake: FakeArena) -> None:
    """Open the pool and log in through it (:meth:`Transport.login_once`)."""
    await pool.open()
    body = {"email": fake.email, "password": fake.password}
    response = await pool.login_once(Request("POST", f"{fake.url}/login", "/login",
                                             json=body, auth=False))
    assert response.status == 200
    assert isinstance(pool.auth, GivenSession)
    pool.auth.session = json.loads(response.body)[fake.login_session_key]


def tickets(fake: FakeArena, guid: str | None = None) -> Request:
    guid = guid or fake.item_guids[0]
    return Request("GET", f"{fake.url}/items/{guid}/tickets", f"/items/{guid}/tickets")


async def until(condition: Any, timeout: float = 10.0) -> None:  # (a hang guard)
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.002)


# -- cancellation gives the permit back ------------------------------------------------

@pytest.mark.parametrize("deadline", [None, 30.0], ids=["inline first attempt", "general"])
async def test_a_cancelled_send_gives_its_permit_back(deadline: float | None) -> None:
    async with FakeArena.seeded(items=1, seed=1) as fake:
        pool, limiter = pool_for(fake)
        try:
            await log_in(pool, fake)
            fake.faults.add(Fault("slow_headers", delay=30, path="/tickets$", times=1))
            task = asyncio.create_task(pool.send(tickets(fake), deadline=deadline))
            await until(lambda: fake.stats.in_flight == 1)
            assert limiter.stats.in_flight == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert limiter.stats.in_flight == 0
            # The one slot admits the next send (a slot kept would hang it for good; 10 s:
            # a stalled machine).
            response = await asyncio.wait_for(pool.send(tickets(fake)), 10.0)
            assert response.status == 200
            assert limiter.stats.in_flight == 0
            assert pool.stats.requests == 1 + 2  # the login, the cut send, the next one
        finally:
            await pool.close()


async def test_a_retry_wait_holds_no_permit_and_its_cancellation_leaves_none() -> None:
    async with FakeArena.seeded(items=1, seed=1) as fake:
        gate = asyncio.Event()
        waits: list[float] = []

        async def sleep(seconds: float) -> None:  # a retry wait that lasts until cancelled
            waits.append(seconds)
            await gate.wait()

        limiter = Limiter(max_concurrency=1)
        pool = Transport(auth=GivenSession(), limiter=limiter, timeout=5.0, sleep=sleep,
                           retry=RetryPolicy(max_attempts=3, backoff=1.0))
        try:
            await log_in(pool, fake)
            fake.faults.add(Fault("status", status=503, path="/tickets$", times=1))
            task = asyncio.create_task(pool.send(tickets(fake)))
            await until(lambda: bool(waits))
            assert limiter.stats.in_flight == 0  # not held while waiting
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert limiter.stats.in_flight == 0
            assert pool.stats.retries == 1
        finally:
            await pool.close()


# -- the deadline's backstop -----------------------------------------------------------

async def test_the_backstop_cuts_a_wait_for_admission_and_says_so() -> None:
    async with FakeArena.seeded(items=1, seed=1) as fake:
        pool, limiter = pool_for(fake)
        try:
            await log_in(pool, fake)
            fake.faults.add(Fault("slow_headers", delay=30, path="/tickets$", times=1))
            hog = asyncio.create_task(pool.send(tickets(fake)))
            await until(lambda: fake.stats.in_flight == 1)
            # The injected clock stands still: only the loop's backstop can end this.
            with pytest.raises(TransportError, match="waiting for admission") as info:
                await pool.send(tickets(fake), deadline=0.05)
            assert info.value.attempts == 0
            assert "deadline of 0.05 s passed" in str(info.value)
            hog.cancel()
            await asyncio.gather(hog, return_exceptions=True)
            assert limiter.stats.in_flight == 0
        finally:
            await pool.close()


async def test_a_timeout_that_is_not_the_backstops_passes_through() -> None:
    """Only the backstop's own expiry becomes the deadline's error; a TimeoutError from
    elsewhere (here: an auth that raises one) is not dressed up as one."""
    async with FakeArena.seeded(items=1, seed=1) as fake:
        pool, _ = pool_for(fake, auth=GivenSession(refused=TimeoutError("auth's own")))
        try:
            await log_in(pool, fake)
            with pytest.raises(TimeoutError, match="auth's own") as info:
                await pool.send(tickets(fake), deadline=30.0)
            assert not isinstance(info.value, TransportError)
            assert fake.requests_to(TICKETS) == []
        finally:
            await pool.close()


# -- counting --------------------------------------------------------------------------

async def test_the_counters_count_what_happened() -> None:
    async with FakeArena.seeded(items=1, seed=1) as fake:
        clock = FakeClock()
        pool, _ = pool_for(fake, clock=clock, retry=RetryPolicy(max_attempts=6, backoff=1.0))
        try:
            await log_in(pool, fake)
            assert pool.stats.logins == 1  # login_once counts a login that succeeded
            fake.faults.add(Fault("status", status=503, path="/tickets$", times=1))
            fake.faults.add(Fault("status", status=429, path="/tickets$", times=1))
            fake.faults.add(Fault("reset_before_headers", path="/tickets$", times=1))
            response = await pool.send(tickets(fake))
            assert response.status == 200
            assert response.attempts == 4
            stats = pool.stats
            assert stats.requests == 1 + 4 == len(fake.requests)
            assert stats.retries == 3
            assert stats.server_errors == 1
            assert stats.rate_limited == 1
            assert stats.transport_errors == 1
            assert stats.waits == 3 == len(clock.sleeps)
            assert stats.wait_seconds == pytest.approx(sum(clock.sleeps))
            pool.count_login()
            pool.count_renewal()
            assert (pool.stats.logins, pool.stats.renewals) == (2, 1)
        finally:
            await pool.close()


def test_pool_counters_add_the_limiters_waits_and_refusals() -> None:
    counters = TransportCounters()
    counters.answered(429)
    counters.answered(503)
    counters.answered(500)
    counters.answered(404)  # neither
    counters.failed()
    counters.retried(0.25)
    counters.retried(0.5)
    stats = counters.snapshot(LimiterStats(quota_rejections=2, waits=3, wait_seconds=1.5))
    assert (stats.rate_limited, stats.server_errors, stats.transport_errors) == (1, 2, 1)
    assert (stats.retries, stats.quota_rejections) == (2, 2)
    assert stats.waits == 2 + 3
    assert stats.wait_seconds == pytest.approx(0.75 + 1.5)


# -- the session and its loop ----------------------------------------------------------

async def test_the_session_is_ours_to_close_only_when_we_made_it() -> None:
    pool, _ = pool_for(None)
    with pytest.raises(RuntimeError, match="not open"):
        _ = pool.session
    await pool.open()
    ours = pool.session
    await pool.close()
    await pool.close()  # idempotent
    assert ours.closed
    with pytest.raises(RuntimeError, match="closed"):
        _ = pool.session
    with pytest.raises(RuntimeError, match="closed"):
        await pool.open()

    async with aiohttp.ClientSession() as theirs:
        auth = GivenSession()
        pool, _ = pool_for(None, session=theirs, auth=auth)
        await pool.open()
        assert pool.session is theirs
        await pool.close()
        assert not theirs.closed
        assert auth.closed == 1  # the server session is ended either way


def test_trace_configs_with_a_callers_session_are_refused() -> None:
    with pytest.raises(ValueError, match="give them to that session"):
        pool_for(None, session=object(), trace_configs=[aiohttp.TraceConfig()])


def close_on_another_thread(pool: Transport) -> None:
    done = threading.Event()

    def close() -> None:
        asyncio.run(pool.close())
        done.set()

    thread = threading.Thread(target=close)
    thread.start()
    thread.join(5)
    assert done.is_set()


def test_a_pool_belongs_to_its_loop(caplog: pytest.LogCaptureFixture) -> None:
    auth = GivenSession()
    pool, _ = pool_for(None, auth=auth)
    first = asyncio.new_event_loop()
    first.run_until_complete(pool.open())
    ours = pool.session
    try:
        with pytest.raises(RuntimeError, match="another event loop"):
            asyncio.run(pool.open())
        with pytest.raises(RuntimeError, match="another event loop"):
            asyncio.run(pool.close())
        assert not ours.closed
    finally:
        first.run_until_complete(asyncio.sleep(0))
        first.close()
    # Its loop closed: closing from another one marks it closed, says the server session
    # was not ended, and ends nothing there (our aiohttp session is closed as far as it
    # can be without its loop).
    with caplog.at_level(logging.WARNING, logger="arena_async._transport"):
        close_on_another_thread(pool)
    assert auth.closed == 0
    assert ours.closed
    assert any("event loop this client was opened on is closed" in r.getMessage()
               for r in caplog.records)
    with pytest.raises(RuntimeError, match="closed"):
        _ = pool.session


def test_a_callers_session_is_left_open_even_when_its_loop_is_gone() -> None:
    first = asyncio.new_event_loop()

    async def make() -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    theirs = first.run_until_complete(make())
    pool, _ = pool_for(None, session=theirs)
    first.run_until_complete(pool.open())
    first.close()
    close_on_another_thread(pool)
    assert not theirs.closed  # the caller's to close
    asyncio.run(theirs.close())
