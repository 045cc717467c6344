"""Arena session auth rules (`arena_async.arena._auth`), over loopback against FakeArena.

What reaches the server is read from the fake's request log, not from its counters (the
fake counts a logout only when it names a live session).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from arena_async import (
    ArenaClient,
    AuthenticationError,
    LoginError,
    QuotaPolicy,
    ResponseFormatError,
    RetryPolicy,
    SQLiteShare,
)
from arena_async.arena._auth import ArenaAuth
from arena_async.credentials import GivenSession, Login, OAuthClient
from arena_async.testing import FakeArena, Fault
from tests.conftest import FakeClock

LOGIN = "POST /login"
LOGOUT = "PUT /logout"
TICKETS = "GET /items/{item}/tickets"


def client_for(fake: FakeArena, clock: FakeClock | None = None, **kw: Any) -> ArenaClient:
    kw.setdefault("email", fake.email)
    kw.setdefault("password", fake.password)
    kw.setdefault("share", False)  # the rules of one client alone (the share's: tests/share)
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
async def test_logout_only_while_more_than_the_reserve_is_left(
        reserve: int, logs_out: bool, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="arena_async.arena._auth")
    async with FakeArena.seeded(items=1, quota_limit=3) as fake:
        async with client_for(fake, quota=QuotaPolicy(reserve=reserve)) as arena:
            await arena.items.tickets.list(fake.item_guids[0])  # 2 left
        assert len(routes(fake, LOGOUT)) == (1 if logs_out else 0)
    said = [r.getMessage() for r in caplog.records if "not logging out" in r.getMessage()]
    assert said == ([] if logs_out else [
        "not logging out of Arena: the request budget is spent; the session ends by "
        "itself after 90 idle minutes"])


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


# -- what the login answer may be --------------------------------------------------------
async def test_a_login_answered_300_is_refused_whatever_its_body() -> None:
    async with FakeArena.seeded(items=1) as fake:
        fake.faults.add(Fault("status", status=300, path="/login$", times=1,
                              body={"arenaSessionId": "S-300", "workspaceId": 1}))
        async with client_for(fake) as arena:
            with pytest.raises(LoginError) as info:
                await arena.items.tickets.list(fake.item_guids[0])
            assert info.value.status == 300
            await arena.items.tickets.list(fake.item_guids[0])  # not latched: tried again
        assert "S-300" not in str(info.value)  # nor in its excerpt of the answer
        assert "not shown: it may hold a credential" in str(info.value)
        assert [r.headers["arena_session_id"] for r in routes(fake, TICKETS)] != ["S-300"]
        assert len(routes(fake, LOGIN)) == 2


@pytest.mark.parametrize("status", [404, 405])
async def test_a_login_url_that_is_not_there_names_the_base_url(status: int) -> None:
    async with FakeArena.seeded(items=1) as fake:
        fake.faults.add(Fault("status", status=status, path="/login$"))
        async with client_for(fake) as arena:
            with pytest.raises(LoginError) as info:
                await arena.items.tickets.list(fake.item_guids[0])
        assert info.value.status == status
        assert f"no Arena login at {fake.url}/login" in str(info.value)
        assert "ends in /v1" in str(info.value)


@pytest.mark.parametrize(("spaces", "html"), [(0, True), (199, True), (200, False)])
async def test_an_html_login_answer_is_named_when_it_starts_in_the_first_200_bytes(
        spaces: int, html: bool) -> None:
    async with FakeArena.seeded(items=1) as fake:
        fake.faults.add(Fault("status", status=200, path="/login$",
                              body=b" " * spaces + b"<html><body>Sign in</body></html>"))
        async with client_for(fake) as arena:
            with pytest.raises(ResponseFormatError) as info:
                await arena.items.tickets.list(fake.item_guids[0])
        assert ("it looks like an HTML page" in str(info.value)) is html
        assert "Sign in" not in str(info.value)


@pytest.mark.parametrize(("body", "shown"), [
    (b"Service moved", True),
    (b'{"arena_session_id": "S-1"}', False),
    (b"bad login for PASSWORD", False),
])
async def test_a_refused_login_answer_is_shown_unless_it_may_hold_a_credential(
        body: bytes, shown: bool) -> None:
    async with FakeArena.seeded(items=1) as fake:
        body = body.replace(b"PASSWORD", fake.password.encode())
        fake.faults.add(Fault("status", status=409, path="/login$", body=body))
        async with client_for(fake) as arena:
            with pytest.raises(LoginError) as info:
                await arena.items.tickets.list(fake.item_guids[0])
        assert info.value.status == 409
        assert ("Service moved" in str(info.value)) is shown
        assert "S-1" not in str(info.value)
        assert fake.password not in str(info.value)
        assert fake.password not in repr(info.value)


async def test_a_login_without_credentials_is_refused_before_sending() -> None:
    # ArenaClient never asks a given session alone for a login; the auth still refuses.
    auth = ArenaAuth(base_url="http://127.0.0.1:9/v1", credential=GivenSession("S-1"))
    auth._set_token(None)
    pool: Any = None  # never reached: nothing is sent
    with pytest.raises(AuthenticationError) as info:
        await auth.headers(pool)
    assert info.value.status == 401
    assert "no session id and no credentials" in str(info.value)


# -- a given session with credentials ----------------------------------------------------
async def test_a_given_session_with_credentials_is_replaced_by_a_login_when_refused(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="arena_async.arena._auth")
    async with FakeArena.seeded(items=1) as fake:
        async with client_for(fake, session_id="given-and-unknown") as arena:
            await arena.items.tickets.list(fake.item_guids[0])
            await arena.items.tickets.list(fake.item_guids[0])
        sent = [r.headers["arena_session_id"] for r in routes(fake, TICKETS)]
        assert sent[0] == "given-and-unknown"
        assert len(set(sent[1:])) == 1
        assert sent[1] != sent[0]
        assert len(routes(fake, LOGIN)) == 1
        [logout] = routes(fake, LOGOUT)  # the session it logged in for is its own to end
        assert logout.headers["arena_session_id"] == sent[1]
    lines = [r.getMessage() for r in caplog.records if r.name == "arena_async.arena._auth"]
    assert lines == ["Arena session rejected (HTTP 401); obtaining a new one",
                     f"logged in to Arena workspace {fake.workspace_id}"]
    assert "given-and-unknown" not in caplog.text


# -- refused credentials relayed by a share ----------------------------------------------
@pytest.mark.parametrize("status", [400, 401, 403])
async def test_a_refusal_learnt_from_the_share_is_latched(status: int, tmp_path: Path) -> None:
    # Client a's login is refused; client b learns it from the share (the refusal is kept
    # there for 5 minutes). Once those have passed, b still never tries the credentials.
    share_clock = FakeClock()
    async with FakeArena.seeded(items=1) as fake:
        fake.faults.add(Fault("status", status=status, path="/login$"))
        a = client_for(fake, share=SQLiteShare(tmp_path / "share.db", clock=share_clock))
        b = client_for(fake, share=SQLiteShare(tmp_path / "share.db", clock=share_clock))
        async with a, b:
            with pytest.raises(LoginError):
                await a.items.tickets.list(fake.item_guids[0])
            with pytest.raises(LoginError) as info:
                await b.items.tickets.list(fake.item_guids[0])
            assert info.value.status == status
            share_clock.now += 3600.0
            with pytest.raises(LoginError) as info:
                await b.items.tickets.list(fake.item_guids[0])
            assert info.value.status == status
        assert len(routes(fake, LOGIN)) == 1


# -- what the auth shows of itself -------------------------------------------------------
def test_the_auth_repr_names_who_never_the_secret() -> None:
    base = "http://127.0.0.1:9/v1"
    by_email = ArenaAuth(base_url=base, credential=Login("e@x", "PW-1"))
    assert repr(by_email) == "<ArenaAuth e@x (no session)>"
    given = ArenaAuth(base_url=base, credential=GivenSession("S-1"))
    assert repr(given) == "<ArenaAuth given session (session)>"
    oauth = OAuthClient("cid", "SECRET-1", "https://auth.example/oauth/token")
    assert repr(oauth) == ("OAuthClient(client_id='cid', client_secret=***, "
                           "token_url='https://auth.example/oauth/token')")
    by_oauth = ArenaAuth(base_url=base, credential=oauth)
    assert repr(by_oauth) == "<ArenaAuth cid (no session)>"


def test_the_auth_sends_no_client_secret_over_plain_http_unless_allowed() -> None:
    oauth = OAuthClient("cid", "SECRET-1", "http://auth.example.com/oauth/token/")
    with pytest.raises(ValueError, match=r"token_url .* plain http") as info:
        ArenaAuth(base_url="https://a.example.com/v1", credential=oauth)
    assert "SECRET-1" not in str(info.value)
    allowed = ArenaAuth(base_url="https://a.example.com/v1", credential=oauth,
                        allow_insecure=True)
    assert "SECRET-1" not in repr(allowed)


async def test_an_email_without_a_password_cannot_replace_a_given_session() -> None:
    async with FakeArena.seeded(items=1) as fake:
        for half in ({"email": fake.email}, {"password": fake.password}):
            with pytest.raises(ValueError, match="give both email and password"):
                ArenaClient(session_id="given", base_url=fake.url, **half)
        assert fake.requests == []
    # the auth itself: a given session alone cannot log in; with a login it can
    base = "http://127.0.0.1:9/v1"
    assert not ArenaAuth(base_url=base, credential=GivenSession("given")).can_login
    assert ArenaAuth(base_url=base, credential=GivenSession(
        "given", login=Login("e@x", "pw"))).can_login


async def test_a_refused_given_session_without_credentials_raises_its_own_401() -> None:
    async with FakeArena.seeded(items=1) as fake:
        async with ArenaClient(session_id="given-and-unknown", base_url=fake.url) as arena:
            with pytest.raises(AuthenticationError) as info:
                await arena.items.tickets.list(fake.item_guids[0])
        assert info.value.status == 401
        assert info.value.url.endswith("/tickets")  # the server's 401 itself, no login tried
        assert routes(fake, LOGIN) == []
        assert len(routes(fake, TICKETS)) == 1


async def test_after_close_the_auth_hands_out_no_session() -> None:
    async with FakeArena.seeded(items=1) as fake:
        arena = client_for(fake)
        async with arena:
            await arena.items.tickets.list(fake.item_guids[0])
            assert arena._auth.ready(arena._transport) is not None
        # A request racing the close would ask the auth (ready, then current): nothing to
        # send with, the session being logged out.
        assert arena._auth.ready(arena._transport) is None
        headers, _ = await arena._auth.current()
        assert headers == {}
        assert "no session" in repr(arena._auth)
        assert len(routes(fake, LOGOUT)) == 1


async def test_a_login_answered_299_is_a_success() -> None:
    async with FakeArena.seeded(items=1) as fake:
        fake.faults.add(Fault("status", status=299, path="/login$", times=1,
                              body={"arenaSessionId": "S-299", "workspaceId": 1}))
        async with client_for(fake) as arena:
            await arena.items.tickets.list(fake.item_guids[0])  # S-299 unknown: a re-login
        sent = [r.headers["arena_session_id"] for r in routes(fake, TICKETS)]
        assert sent[0] == "S-299"
        assert len(routes(fake, LOGIN)) == 2


async def test_a_401_met_while_the_client_closes_logs_in_no_new_session() -> None:
    # A request is in flight when close() begins; its 401 arrives while the logout is on
    # the wire. Logging in again then would leave a session nobody ends.
    async with FakeArena.seeded(items=1) as fake:
        arena = client_for(fake)
        await arena.open()
        await arena.items.tickets.list(fake.item_guids[0])
        fake.faults.add(Fault("slow_headers", delay=0.5, path="/logout$", times=1))
        fake.faults.add(Fault("slow_headers", delay=0.1, path="/tickets$", times=1))
        in_flight = asyncio.ensure_future(arena.items.tickets.list(fake.item_guids[0]))
        while fake.stats.in_flight == 0:  # it is at the server
            await asyncio.sleep(0.002)
        fake.expire_sessions()
        await arena.close()
        with pytest.raises(AuthenticationError) as info:
            await in_flight
        assert info.value.status == 401
        assert "the client was closing: no new login" in " ".join(info.value.__notes__)
        assert len(routes(fake, LOGIN)) == 1
        assert fake.active_sessions == 0


async def test_a_closed_auth_obtains_no_credential() -> None:
    auth = ArenaAuth(base_url="http://127.0.0.1:9/v1", credential=Login("e@x", "pw"))
    pool: Any = None  # never reached: nothing is sent
    await auth.close(pool)  # nothing held: no logout
    with pytest.raises(RuntimeError, match="this client is closed"):
        await auth.headers(pool)
