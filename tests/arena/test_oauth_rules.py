"""The rules of Arena's OAuth and session auth at their boundaries (each pins one rule that a
mutation of arena/_auth.py would otherwise leave standing; docs/mutation.md)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from arena_async import ArenaClient, LoginError, ResponseFormatError
from arena_async.testing import FakeArena, Fault
from tests.conftest import FakeClock


def oauth(fake: FakeArena, clock: FakeClock | None = None, **kw: Any) -> ArenaClient:
    if clock is not None:
        kw.update(clock=clock, sleep=clock.sleep)
    kw.setdefault("token_url", fake.token_url)
    return ArenaClient(client_id=fake.client_id, client_secret=fake.client_secret,
                       base_url=fake.url, **kw)


async def test_a_token_is_renewed_exactly_in_the_last_tenth_of_its_life() -> None:
    clock = FakeClock()
    async with FakeArena.seeded(items=2, seed=1, token_lifetime=100.0, clock=clock) as fake, \
            oauth(fake, clock) as arena:
        guid = fake.item_guids[0]
        await arena.items.tickets.list(guid)
        clock.now += 89.99
        await arena.items.tickets.list(guid)
        assert fake.stats.token_requests == 1
        clock.now += 0.01  # 90 s of 100: due
        await arena.items.tickets.list(guid)
        assert fake.stats.token_requests == 2


async def test_a_token_with_expires_in_0_is_used_until_a_401() -> None:
    clock = FakeClock()
    async with FakeArena.seeded(items=2, seed=2, clock=clock) as fake:
        fake.faults.add(Fault("wrong_shape", path="/oauth/token$", times=1,
                              body={"access_token": "T-0", "token_type": "bearer",
                                    "expires_in": 0}))
        async with oauth(fake, clock) as arena:
            guid = fake.item_guids[0]
            await arena.items.tickets.list(guid)  # "T-0" is no token the fake knows: 401
            assert fake.stats.by_route["POST /oauth/token"] == 2
            sent = fake.requests_to("GET /items/{item}/tickets")
            # "expires_in": 0 means no lifetime given: T-0 was sent (not renewed at once).
            assert [r.headers["Authorization"] == "Bearer T-0" for r in sent] == [True, False]
            clock.now += 10 * 86400.0  # the real token (3600 s) lapsed: one 401, one renewal
            await arena.items.tickets.list(guid)
            await arena.items.tickets.list(guid)
            assert fake.stats.by_route["POST /oauth/token"] == 3


async def test_a_token_answer_without_access_token_is_a_response_format_error() -> None:
    async with FakeArena.seeded(items=1, seed=3) as fake:
        fake.faults.add(Fault("wrong_shape", path="/oauth/token$", times=1,
                              body={"token_type": "bearer", "expires_in": 60}))
        async with oauth(fake) as arena:
            with pytest.raises(ResponseFormatError) as info:
                await arena.items.tickets.list(fake.item_guids[0])
        assert "access_token" in str(info.value)
        assert fake.stats.requests == 1  # nothing sent without a token


async def test_a_token_url_that_is_not_there_is_not_latched(
        caplog: pytest.LogCaptureFixture) -> None:
    async with FakeArena.seeded(items=1, seed=4) as fake:
        wrong = fake.token_url.replace("/oauth/token", "/oauth/nowhere")
        async with oauth(fake, token_url=wrong) as arena:
            for _ in range(2):
                with pytest.raises(LoginError) as info:
                    await arena.items.tickets.list(fake.item_guids[0])
                assert info.value.status == 404
        assert fake.stats.requests == 2  # a 404 is not "credentials refused": asked again


async def test_a_non_json_oauth_refusal_still_says_what_happened() -> None:
    async with FakeArena.seeded(items=1, seed=5) as fake:
        fake.faults.add(Fault("status", status=401, path="/oauth/token$", body=["no"]))
        async with oauth(fake) as arena:
            with pytest.raises(LoginError) as info:
                await arena.items.tickets.list(fake.item_guids[0])
        assert info.value.status == 401
        assert info.value.errors == []


async def test_an_oauth_client_never_logs_out() -> None:
    async with FakeArena.seeded(items=1, seed=6) as fake:
        async with oauth(fake) as arena:
            await arena.items.tickets.list(fake.item_guids[0])
        assert not fake.requests_to("PUT /logout")
        assert "no session" in repr(arena._auth)


async def cancel_at(fake: FakeArena, clock: FakeClock, arena: ArenaClient, age: float) -> None:
    """Log in, let ``age`` seconds pass, then have another login cancel the session."""
    guid = fake.item_guids[0]
    await arena.items.tickets.list(guid)
    clock.now += age
    fake.faults.add(Fault("expire_session", path="/tickets$", times=1))
    await arena.items.tickets.list(guid)


@pytest.mark.parametrize(("age", "warned"), [(5399.0, True), (5400.0, False)])
async def test_the_cancellation_warning_counts_sessions_younger_than_the_idle_limit(
        caplog: pytest.LogCaptureFixture, age: float, warned: bool) -> None:
    caplog.set_level(logging.WARNING)
    clock = FakeClock()
    async with FakeArena.seeded(items=1, seed=7, clock=clock,
                                session_idle_timeout=None) as fake, \
            ArenaClient(email=fake.email, password=fake.password, base_url=fake.url,
                        clock=clock, sleep=clock.sleep) as arena:
        await cancel_at(fake, clock, arena, age)
        assert "share=" not in caplog.text  # one cancellation: no warning yet
        await cancel_at(fake, clock, arena, age)
        assert ("share=" in caplog.text) is warned
        await cancel_at(fake, clock, arena, age)
        warnings = [r for r in caplog.records if "share=" in r.getMessage()]
        assert len(warnings) == (1 if warned else 0)  # once
