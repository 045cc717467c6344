"""deadline=: one bound on a whole call (admission, login, attempts, waits)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from arena_async import (
    ArenaClient,
    QuotaExhaustedError,
    QuotaPolicy,
    RetryPolicy,
    ServerError,
    TransportError,
)
from arena_async.testing import FakeArena, Fault
from tests.conftest import FakeClock, Stalls

TICKETS = "/tickets$"


def client_for(fake: FakeArena, **kw: Any) -> ArenaClient:
    # Alone: a sharer's first call also opens the share and derives its seal's key (tens of
    # milliseconds), which these deadlines of a tenth of a second are not about.
    kw.setdefault("share", False)
    return ArenaClient(email=fake.email, password=fake.password, base_url=fake.url, **kw)


def hits(fake: FakeArena) -> int:
    return sum(1 for r in fake.requests if r.path.endswith("/tickets"))


# -- on the fake clock: waits cost no real time -----------------------------------------

async def test_backoff_never_sleeps_past_the_deadline() -> None:
    clock = FakeClock(start=time.time())
    async with FakeArena.seeded(items=1, seed=1) as fake, \
            client_for(fake, clock=clock, sleep=clock.sleep, seed=3,
                       retry=RetryPolicy(max_attempts=1000, backoff=1.0, max_backoff=1.0)) \
            as arena:
        fake.faults.add(Fault("status", status=503, path=TICKETS))
        start = clock.now
        with pytest.raises(ServerError) as info:
            await arena.items.tickets.list(fake.item_guids[0], deadline=10.0)
        # The last APIError, raised before a wait that would end past the deadline.
        assert info.value.status == 503
        assert clock.now - start < 10.0
        assert clock.now - start + 1.0 >= 10.0 - 1.0  # it did use the time it had
        assert info.value.attempts == hits(fake) == len(clock.sleeps) + 1
        assert "attempts: 1: HTTP 503" in info.value.__notes__[0]


async def test_a_retry_after_that_would_pass_the_deadline_is_not_waited() -> None:
    clock = FakeClock(start=time.time())
    async with FakeArena.seeded(items=1, seed=1) as fake, \
            client_for(fake, clock=clock, sleep=clock.sleep) as arena:
        fake.faults.add(Fault("status", status=503, retry_after="2", path=TICKETS))
        with pytest.raises(ServerError) as info:
            await arena.items.tickets.list(fake.item_guids[0], deadline=3.0)
        assert clock.sleeps == [2.0]  # the first wait fit; the second would not
        assert info.value.attempts == 2 == hits(fake)


async def test_a_deadline_that_is_met_changes_nothing() -> None:
    clock = FakeClock(start=time.time())
    async with FakeArena.seeded(items=1, seed=1) as fake, \
            client_for(fake, clock=clock, sleep=clock.sleep) as arena:
        guid = fake.item_guids[0]
        fake.faults.add(Fault("status", status=502, path=TICKETS, times=2))
        refs = await arena.items.tickets.list(guid, deadline=30.0)
        assert [r.guid for r in refs] == [t["guid"] for t in fake.ticket_refs(guid)]
        assert hits(fake) == 3


# -- in real time: a short deadline is kept to within one timeout --------------------------
# Each upper bound adds the time this process was stalled (tests/conftest.py, Stalls): a
# call that ignored its deadline runs on with the loop free, and exceeds it all the same.

async def test_a_real_deadline_cuts_slow_attempts() -> None:
    async with FakeArena.seeded(items=1, seed=1) as fake, \
            client_for(fake, timeout=0.2, retry=RetryPolicy(max_attempts=50, backoff=0.01)) \
            as arena:
        await arena.items.tickets.list(fake.item_guids[0])  # logged in
        fake.faults.add(Fault("slow_headers", delay=0.5, path=TICKETS))
        async with Stalls() as stalls:
            started = time.perf_counter()
            with pytest.raises(TransportError) as info:
                await arena.items.tickets.list(fake.item_guids[0], deadline=0.3)
            elapsed = time.perf_counter() - started
            # never later than deadline + one timeout
            assert 0.29 <= elapsed < 0.3 + 0.2 + stalls.lost(), (elapsed, stalls.gaps)
        # 0.2 s, then what was left of the 0.3 s (a stall in the first attempt can leave
        # nothing of it: then one)
        assert info.value.attempts == 2 or (stalls.gaps and info.value.attempts == 1)
        assert "deadline" in str(info.value)
        if info.value.attempts == 2:
            assert "attempts: 1: timed out" in info.value.__notes__[0]


async def test_a_real_deadline_over_repeated_5xx_raises_the_last_error_promptly() -> None:
    async with FakeArena.seeded(items=1, seed=1) as fake, \
            client_for(fake, timeout=0.2, retry=RetryPolicy(max_attempts=1000, backoff=0.02,
                                                            max_backoff=0.05)) as arena:
        fake.faults.add(Fault("status", status=500, path=TICKETS))
        fake.faults.add(Fault("slow_headers", delay=0.5, path=TICKETS, every=3))
        async with Stalls() as stalls:
            started = time.perf_counter()
            with pytest.raises((TransportError, ServerError)) as info:
                await arena.items.tickets.list(fake.item_guids[0], deadline=0.3)
            elapsed = time.perf_counter() - started
            assert elapsed < 0.3 + 0.2 + stalls.lost(), (elapsed, stalls.gaps)
        assert info.value.attempts >= 2


async def test_the_deadline_covers_waiting_for_a_slot() -> None:
    async with FakeArena.seeded(items=2, seed=1) as fake, \
            client_for(fake, max_concurrency=1, timeout=5.0) as arena:
        a, b = fake.item_guids
        await arena.items.tickets.list(a)
        fake.faults.add(Fault("slow_headers", delay=0.5, path=f"{a}/tickets$"))
        hog = asyncio.create_task(arena.items.tickets.list(a))
        while fake.stats.in_flight == 0:
            await asyncio.sleep(0.005)
        async with Stalls() as stalls:
            started = time.perf_counter()
            with pytest.raises(TransportError, match="waiting for admission") as info:
                await arena.items.tickets.list(b, deadline=0.1)
            # (not the hog's 0.5 s)
            assert time.perf_counter() - started < 0.1 + 0.25 + stalls.lost(), stalls.gaps
        assert info.value.attempts == 0  # nothing was sent
        await hog  # the slot holder is unharmed
        # The one slot is free again: the call cut while waiting for it took none (a slot
        # kept would hang this call for good; 10 s: a stalled machine).
        await asyncio.wait_for(arena.items.tickets.list(b), 10.0)


async def test_the_deadline_covers_a_slow_login() -> None:
    async with FakeArena.seeded(items=1, seed=1) as fake, \
            client_for(fake, timeout=5.0) as arena:
        fake.faults.add(Fault("slow_headers", delay=0.5, path="/login$", times=1))
        async with Stalls() as stalls:
            started = time.perf_counter()
            with pytest.raises(TransportError, match="logging in"):
                await arena.items.tickets.list(fake.item_guids[0], deadline=0.1)
            # (not the login's 0.5 s)
            assert time.perf_counter() - started < 0.1 + 0.25 + stalls.lost(), stalls.gaps
        # The cut login left nothing locked: the next call logs in (a held lock would hang
        # it for good; 10 s: a stalled machine).
        await asyncio.wait_for(arena.items.tickets.list(fake.item_guids[0]), 10.0)
        assert arena.stats.logins == 1


async def test_a_listing_deadline_bounds_each_page_and_says_where_to_resume() -> None:
    async with FakeArena(seed=1) as fake, \
            client_for(fake, timeout=0.2, retry=RetryPolicy(max_attempts=100, backoff=0.01)) \
            as arena:
        guid = fake.add_item()
        fake.add_training_records(guid, 30)
        fake.faults.add(Fault("status", status=503, path="/trainingrecords$", after=2))
        got: list[str] = []
        page_started = [0.0]

        async def read() -> None:
            async for rec in arena.items.training_records.iter(guid, page_size=10,
                                                               deadline=0.15):
                got.append(rec.guid)
                page_started[0] = time.perf_counter()  # (the next page starts after it)

        # Between attempts the deadline raises the last 503; should it fall during one
        # (an attempt takes ~1 ms of the 0.15 s), a TransportError. Both carry the position.
        async with Stalls() as stalls:
            with pytest.raises((ServerError, TransportError)) as info:
                await read()
            # The third page's deadline, with slack for a loaded machine (its 100 attempts
            # would take a second and more without it); the login and the first two pages
            # before it do not count.
            took = time.perf_counter() - page_started[0]
            assert took < 0.15 + 0.3 + stalls.lost(), (took, stalls.gaps)
        assert info.value.resume_from == 20 == len(got)


async def test_a_deadline_cuts_a_wait_for_the_quota_reset() -> None:
    # The client's clock stands still (its waits are real sleeps): the wait for the reset
    # is cut by the deadline in real time, and the test then moves the clock past it.
    clock = FakeClock(start=time.time())
    async with FakeArena.seeded(items=1, seed=1, quota_limit=100, quota_window=30) as fake, \
            client_for(fake, quota=QuotaPolicy(on_exhausted="wait"), max_concurrency=1,
                       clock=clock) as arena:
        await arena.items.tickets.list(fake.item_guids[0])  # the window's reset is known
        fake.set_quota(remaining=0)
        async with Stalls() as stalls:
            started = time.perf_counter()
            with pytest.raises(QuotaExhaustedError) as info:
                await arena.items.tickets.list(fake.item_guids[0], deadline=0.1)
            # (not the 30 s to the reset)
            assert time.perf_counter() - started < 0.1 + 0.25 + stalls.lost(), stalls.gaps
        assert info.value.status == 429
        assert "waiting for the quota to reset" in info.value.__notes__[-1]
        assert "deadline of 0.1 s passed" in info.value.__notes__[-1]
        # Nothing held: once the reset has passed, the one slot admits the next call at
        # once (a slot kept by the cut call would hang it for good; 10 s: a stalled machine).
        clock.now += 31
        fake.set_quota(remaining=100)
        await asyncio.wait_for(arena.items.tickets.list(fake.item_guids[0]), 10.0)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "1"])
async def test_bad_deadlines_are_refused_before_sending(bad: Any) -> None:
    async with FakeArena.seeded(items=1, seed=1) as fake, client_for(fake) as arena:
        with pytest.raises(ValueError, match="deadline"):
            await arena.items.tickets.list(fake.item_guids[0], deadline=bad)
        assert fake.requests == []
