"""Re-login under faults: transient login failures are retried, refusals are not, and
re-logins stay bounded by the RetryPolicy."""

from __future__ import annotations

from typing import Any

import pytest

from arena_async import ArenaClient, AuthenticationError, LoginError, RetryPolicy
from arena_async.testing import FakeArena, Fault
from tests.conftest import FakeClock


def client_for(fake: FakeArena, clock: FakeClock, **kw: Any) -> ArenaClient:
    kw.setdefault("password", fake.password)
    return ArenaClient(email=fake.email, base_url=fake.url, sleep=clock.sleep, **kw)


def sent(fake: FakeArena, suffix: str) -> list[Any]:
    return [r for r in fake.requests if r.path.endswith(suffix)]


async def test_a_transient_login_failure_costs_an_attempt_not_the_request() -> None:
    clock = FakeClock()
    async with FakeArena.seeded(items=1, seed=1) as fake, client_for(fake, clock) as arena:
        guid = fake.item_guids[0]
        # Each failed login costs the request one attempt and one backoff (max_attempts=4).
        fake.faults.add(Fault("status", status=503, path="/login$", times=3))
        refs = await arena.items.tickets.list(guid)
        assert [r.guid for r in refs] == [t["guid"] for t in fake.ticket_refs(guid)]
        assert len(sent(fake, "/login")) == 4
        assert fake.stats.logins == 1
        assert len(clock.sleeps) == 3
        assert len(sent(fake, "/tickets")) == 1


async def test_refused_credentials_are_not_retried() -> None:
    clock = FakeClock()
    async with FakeArena.seeded(items=1, seed=1) as fake, \
            client_for(fake, clock, password="not-the-password") as arena:
        with pytest.raises(LoginError) as info:
            await arena.items.tickets.list(fake.item_guids[0])
        assert info.value.code == 4001
        assert len(sent(fake, "/login")) == 1
        assert clock.sleeps == []


async def test_a_session_that_expires_again_during_the_replay_is_replaced_again() -> None:
    clock = FakeClock()
    async with FakeArena.seeded(items=1, seed=1) as fake, client_for(fake, clock) as arena:
        guid = fake.item_guids[0]
        await arena.items.tickets.list(guid)
        fake.faults.add(Fault("expire_session", path="/tickets$", times=2))
        refs = await arena.items.tickets.list(guid)
        assert [r.guid for r in refs] == [t["guid"] for t in fake.ticket_refs(guid)]
        assert [r.status for r in sent(fake, "/tickets")][1:] == [401, 401, 200]
        assert fake.stats.logins == 3
        assert clock.sleeps == []  # a re-login is not a retry: no backoff


async def test_re_logins_are_bounded_by_max_attempts() -> None:
    clock = FakeClock()
    async with FakeArena.seeded(items=1, seed=1) as fake, \
            client_for(fake, clock, retry=RetryPolicy(max_attempts=3)) as arena:
        fake.faults.add(Fault("expire_session", path="/tickets$"))  # every session dies
        with pytest.raises(AuthenticationError) as info:
            await arena.items.tickets.list(fake.item_guids[0])
        assert info.value.status == 401
        assert info.value.attempts == 3
        # One free replay after the first re-login, then one attempt per further 401.
        assert len(sent(fake, "/tickets")) == 3 + 1
        assert fake.stats.logins == 4
        assert "attempts: 1: HTTP 401" in info.value.__notes__[0]
