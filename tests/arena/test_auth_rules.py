"""Arena session auth rules (`arena_async.arena._auth`), over loopback against FakeArena.

What reaches the server is read from the fake's request log, not from its counters (the
fake counts a logout only when it names a live session).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from arena_async import (
    ArenaClient,
    AuthenticationError,
    LoginError,
    QuotaPolicy,
    ResponseFormatError,
    RetryPolicy,
)
from arena_async.testing import FakeArena, Fault
from tests.conftest import FakeClock

LOGIN = "POST /login"
LOGOUT = "PUT /logout"
TICKETS = "GET /items/{item}/tickets"


def client_for(fake: FakeArena, clock: FakeClock | None = None, **kw: Any) -> ArenaClient:
    kw.setdefault("email", fake.email)
    kw.setdefault("password", fake.password)
    if clock is not None:
        kw.update(clock=clock, sleep=clock.sleep)
    return ArenaClient(base_url=fake.url, **kw)


def routes(fake: FakeArena, route: str) -> list[Any]:
    return [r for r in fake.requests if r.route == route]


# -- the login request ------------------------------------------------------------------
async def test_the_login_body_names_the_workspace() -> None:
    async with FakeArena.seeded(items=1) as fake:
        async with client_for(fake, workspace_id=fake.workspace_id) as arena:
            await arena.items.tickets.list(fake.item_guids[0])
        [login] = routes(fake, LOGIN)
        assert login.body == {"email": fake.email, "password": fake.password,
                              "workspaceId": fake.workspace_id}
        assert "Arena-Usage-Reason" not in login.headers
        assert login.headers.get("arena_session_id") is None


async def test_without_a_workspace_the_login_body_has_none() -> None:
    async with FakeArena.seeded(items=1) as fake:
        async with client_for(fake, usage_reason="nightly sync") as arena:
            await arena.items.tickets.list(fake.item_guids[0])
        [login] = routes(fake, LOGIN)
        assert login.body == {"email": fake.email, "password": fake.password}
        assert login.headers["Arena-Usage-Reason"] == "nightly sync"


async def test_a_wrong_workspace_is_refused_and_latched() -> None:
    async with FakeArena.seeded(items=1) as fake:
        async with client_for(fake, workspace_id=fake.workspace_id + 1) as arena:
            for _ in range(2):
                with pytest.raises(LoginError):
                    await arena.items.tickets.list(fake.item_guids[0])
        assert len(routes(fake, LOGIN)) == 1
        assert routes(fake, LOGIN)[0].body["workspaceId"] == fake.workspace_id + 1


async def test_the_session_from_the_login_is_sent_and_ended_on_close() -> None:
    async with FakeArena.seeded(items=1) as fake:
        async with client_for(fake, workspace_id=fake.workspace_id) as arena:
            await arena.items.tickets.list(fake.item_guids[0])
            await arena.items.tickets.list(fake.item_guids[0])
            assert arena.quota is not None
            assert arena.quota.limit == fake.quota_remaining + 2  # workspaceRequestLimit
        sessions = {r.headers["arena_session_id"] for r in routes(fake, TICKETS)}
        assert len(sessions) == 1
        [logout] = routes(fake, LOGOUT)
        assert logout.headers["arena_session_id"] in sessions
        assert (fake.stats.logins, fake.stats.logouts) == (1, 1)
        await arena.close()  # a second close sends nothing
        assert len(routes(fake, LOGOUT)) == 1


# -- refused credentials: one try, remembered --------------------------------------------
@pytest.mark.parametrize("status", [400, 401, 403])
async def test_refused_credentials_are_tried_once(status: int, fake_clock: FakeClock) -> None:
    async with FakeArena.seeded(items=3) as fake:
        fake.faults.add(Fault("status", status=status, path="/login$"))
        async with client_for(fake, fake_clock) as arena:
            errors = await asyncio.gather(
                *(arena.items.tickets.list(g) for g in fake.item_guids),
                return_exceptions=True)
            errors.append(await asyncio.gather(arena.items.tickets.list(fake.item_guids[0]),
                                               return_exceptions=True))
        flat = [e for e in errors if not isinstance(e, list)] + errors[-1]
        assert all(isinstance(e, LoginError) and e.status == status for e in flat)
        assert len(routes(fake, LOGIN)) == 1  # every later call meets the remembered error
        assert routes(fake, TICKETS) == []
        assert fake_clock.sleeps == []  # nothing transient about it: no backoff


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_a_transient_login_failure_is_retried(status: int, fake_clock: FakeClock) -> None:
    async with FakeArena.seeded(items=1) as fake:
        fake.faults.add(Fault("status", status=status, path="/login$", times=1))
        async with client_for(fake, fake_clock) as arena:
            await arena.items.tickets.list(fake.item_guids[0])
        assert len(routes(fake, LOGIN)) == 2
        assert len(fake_clock.sleeps) == 1


async def test_a_login_answer_without_a_session_id_is_a_format_error_without_the_body(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeArena.seeded(items=1) as fake:
        fake.faults.add(Fault("status", status=200, path="/login$",
                              body={"workspaceId": 1, "secretish": "LEAK-ME"}))
        async with client_for(fake) as arena:
            with pytest.raises(ResponseFormatError) as info:
                await arena.items.tickets.list(fake.item_guids[0])
        assert "arenaSessionId" in str(info.value)
        assert "LEAK-ME" not in str(info.value)
        assert "LEAK-ME" not in caplog.text
        assert routes(fake, LOGOUT) == []  # no session: nothing to end


# -- a session given by the caller -------------------------------------------------------
async def test_a_given_session_is_sent_never_replaced_never_ended() -> None:
    async with FakeArena.seeded(items=1) as fake, client_for(fake) as owner:
        await owner.items.tickets.list(fake.item_guids[0])
        given = routes(fake, TICKETS)[-1].headers["arena_session_id"]
        async with ArenaClient(session_id=given, base_url=fake.url) as guest:
            await guest.items.tickets.list(fake.item_guids[0])
            assert routes(fake, TICKETS)[-1].headers["arena_session_id"] == given
            fake.expire_sessions()
            with pytest.raises(AuthenticationError) as info:
                await guest.items.tickets.list(fake.item_guids[0])
            assert info.value.status == 401
            assert given not in str(info.value)
            assert given not in repr(guest)
        assert len(routes(fake, LOGIN)) == 1  # the owner's only: the guest cannot log in
        assert routes(fake, LOGOUT) == []  # and never ends the session it was given
        assert routes(fake, TICKETS)[-1].status == 401  # the guest was told once ...
        assert len(routes(fake, TICKETS)) == 3  # ... and did not retry


# -- re-login on 401 ---------------------------------------------------------------------
async def test_one_relogin_for_many_401s_and_the_new_session_is_sent() -> None:
    async with FakeArena.seeded(items=20, seed=2) as fake:
        async with client_for(fake, max_concurrency=20) as arena:
            await arena.items.tickets.list(fake.item_guids[0])
            first = routes(fake, TICKETS)[-1].headers["arena_session_id"]
            fake.expire_sessions()
            await asyncio.gather(*(arena.items.tickets.list(g) for g in fake.item_guids))
        logins = routes(fake, LOGIN)
        assert len(logins) == 2
        after = [r for r in routes(fake, TICKETS) if r.status == 200][1:]
        assert len(after) == 20
        assert {r.headers["arena_session_id"] for r in after} != {first}
        assert len({r.headers["arena_session_id"] for r in after}) == 1


async def test_a_401_answered_late_does_not_replace_the_new_session_again() -> None:
    # Two requests left with session 1; the first 401 replaces it; the second 401 (for the
    # same, older session) arrives after the re-login: it must reuse session 2.
    async with FakeArena.seeded(items=2, seed=2) as fake:
        async with client_for(fake) as arena:
            await arena.items.tickets.list(fake.item_guids[0])
            fake.expire_sessions()
            fake.faults.add(Fault("slow_headers", delay=0.2, path=fake.item_guids[1], times=1))
            await asyncio.gather(arena.items.tickets.list(fake.item_guids[0]),
                                 arena.items.tickets.list(fake.item_guids[1]))
        assert len(routes(fake, LOGIN)) == 2
        assert fake.stats.logouts == 1


async def test_a_session_refused_again_after_a_relogin_stops_within_max_attempts(
        fake_clock: FakeClock) -> None:
    async with FakeArena.seeded(items=1) as fake:
        fake.faults.add(Fault("status", status=401, path="/tickets$"))
        async with client_for(fake, fake_clock, retry=RetryPolicy(max_attempts=3)) as arena:
            with pytest.raises(AuthenticationError) as info:
                await arena.items.tickets.list(fake.item_guids[0])
        # The first re-login is free, each later one costs an attempt: 1 + 3 tries.
        assert len(routes(fake, TICKETS)) == 4
        assert len(routes(fake, LOGIN)) == 4
        assert info.value.attempts == 3


# -- logout and the quota ----------------------------------------------------------------
@pytest.mark.parametrize(("reserve", "logs_out"), [(0, True), (1, True), (2, False)])
async def test_logout_only_while_more_than_the_reserve_is_left(reserve: int,
                                                               logs_out: bool) -> None:
    async with FakeArena.seeded(items=1, quota_limit=3) as fake:
        async with client_for(fake, quota=QuotaPolicy(reserve=reserve)) as arena:
            await arena.items.tickets.list(fake.item_guids[0])  # 2 left
        assert len(routes(fake, LOGOUT)) == (1 if logs_out else 0)


async def test_logout_without_a_quota_policy_is_sent() -> None:
    async with FakeArena.seeded(items=1, quota_limit=3) as fake:
        async with client_for(fake) as arena:
            await arena.items.tickets.list(fake.item_guids[0])
            await arena.items.tickets.list(fake.item_guids[0])  # 1 left
        assert len(routes(fake, LOGOUT)) == 1


async def test_a_failed_logout_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    fake = FakeArena.seeded(items=1)
    await fake.start()
    arena = client_for(fake)
    try:
        await arena.open()
        await arena.items.tickets.list(fake.item_guids[0])
    finally:
        await fake.close()
        await arena.close()  # the logout meets a dead server
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("Arena logout failed") for m in warnings)
    assert fake.password not in caplog.text
