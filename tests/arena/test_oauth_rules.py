"""The rules of Arena's OAuth and session auth at their boundaries (each pins one rule that a
mutation of arena/_auth.py would otherwise leave standing; docs/mutation.md)."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from arena_async import ArenaClient, LoginError, ResponseFormatError, SQLiteShare
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
                        clock=clock, sleep=clock.sleep, share=False) as arena:
        await cancel_at(fake, clock, arena, age)
        assert "share=" not in caplog.text  # one cancellation: no warning yet
        await cancel_at(fake, clock, arena, age)
        assert ("share=" in caplog.text) is warned
        await cancel_at(fake, clock, arena, age)
        warnings = [r for r in caplog.records if "share=" in r.getMessage()]
        assert len(warnings) == (1 if warned else 0)  # once


# -- the token endpoint's answer ----------------------------------------------------------
async def real_token(fake: FakeArena) -> str:
    """A token the fake knows, asked for directly (not by the client under test)."""
    basic = base64.b64encode(f"{fake.client_id}:{fake.client_secret}".encode()).decode()
    async with aiohttp.ClientSession() as http, http.post(
            fake.token_url, data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"}) as response:
        assert response.status == 200
        token = (await response.json())["access_token"]
    assert isinstance(token, str)
    return token


def token_requests(fake: FakeArena, since: int = 0) -> int:
    return len(fake.requests_to("POST /oauth/token")) - since


async def test_a_token_endpoint_answering_300_is_refused_whatever_its_body() -> None:
    async with FakeArena.seeded(items=1, seed=8) as fake:
        token = await real_token(fake)
        fake.faults.add(Fault("status", status=300, path="/oauth/token$", times=1,
                              body={"access_token": token, "token_type": "bearer",
                                    "expires_in": 60}))
        async with oauth(fake) as arena:
            with pytest.raises(LoginError) as info:
                await arena.items.tickets.list(fake.item_guids[0])
        assert info.value.status == 300
        assert token not in str(info.value)
        assert not fake.requests_to("GET /items/{item}/tickets")  # no token: nothing sent


@pytest.mark.parametrize("token", [123, "", None, ["T"], True])
async def test_an_access_token_that_is_not_a_non_empty_string_is_refused(token: Any) -> None:
    async with FakeArena.seeded(items=1, seed=9) as fake:
        fake.faults.add(Fault("wrong_shape", path="/oauth/token$", times=1,
                              body={"access_token": token, "token_type": "bearer"}))
        async with oauth(fake) as arena:
            with pytest.raises(ResponseFormatError) as info:
                await arena.items.tickets.list(fake.item_guids[0])
        assert "access_token" in str(info.value)
        assert not fake.requests_to("GET /items/{item}/tickets")


@pytest.mark.parametrize("expires_in", [0, -5, True, "60", None])
async def test_a_token_without_a_usable_lifetime_is_kept_until_a_401(expires_in: Any) -> None:
    clock = FakeClock()
    async with FakeArena.seeded(items=1, seed=10, clock=clock) as fake:
        token = await real_token(fake)
        body = {"access_token": token, "token_type": "bearer"}
        if expires_in is not None:
            body["expires_in"] = expires_in
        fake.faults.add(Fault("wrong_shape", path="/oauth/token$", times=1, body=body))
        before = token_requests(fake)
        async with oauth(fake, clock) as arena:
            for _ in range(3):
                await arena.items.tickets.list(fake.item_guids[0])
                clock.now += 30.0
        assert token_requests(fake, before) == 1  # never renewed: no lifetime to go by
        sent = fake.requests_to("GET /items/{item}/tickets")
        assert [r.headers["Authorization"] for r in sent] == [f"Bearer {token}"] * 3


async def test_a_renewal_answered_without_a_lifetime_ends_the_renewals() -> None:
    clock = FakeClock()
    async with FakeArena.seeded(items=1, seed=11, token_lifetime=1000.0, clock=clock) as fake:
        token = await real_token(fake)  # lives until start + 1000
        before = token_requests(fake)
        async with oauth(fake, clock) as arena:
            guid = fake.item_guids[0]
            await arena.items.tickets.list(guid)  # a token renewed from start + 940 on
            clock.now += 950.0
            fake.faults.add(Fault("wrong_shape", path="/oauth/token$", times=1,
                                  body={"access_token": token, "token_type": "bearer"}))
            await arena.items.tickets.list(guid)  # renewed: the answer gives no lifetime
            await arena.items.tickets.list(guid)  # so no renewal is due any more
            assert token_requests(fake, before) == 2
            sent = fake.requests_to("GET /items/{item}/tickets")
            assert [r.headers["Authorization"] for r in sent[1:]] == [f"Bearer {token}"] * 2


@pytest.mark.parametrize(("lifetime", "ahead"), [(3600.0, 60.0), (599.0, 59.9)])
async def test_a_token_is_renewed_a_tenth_of_its_life_ahead_at_most_a_minute(
        lifetime: float, ahead: float) -> None:
    clock = FakeClock()
    async with FakeArena.seeded(items=1, seed=12, token_lifetime=lifetime,
                                clock=clock) as fake, oauth(fake, clock) as arena:
        guid = fake.item_guids[0]
        await arena.items.tickets.list(guid)
        start = clock.now
        clock.now = start + lifetime - ahead - 0.001
        await arena.items.tickets.list(guid)
        assert fake.stats.token_requests == 1
        clock.now = start + lifetime - ahead
        await arena.items.tickets.list(guid)
        assert fake.stats.token_requests == 2


# -- what a refusal says -----------------------------------------------------------------
@pytest.mark.parametrize(("body", "message"), [
    ({"error": "invalid_client", "error_description": "bad secret"},
     "invalid_client: bad secret"),
    ({"error": "invalid_client", "error_description": ""}, "invalid_client"),
    ({"error": "invalid_client", "error_description": 7}, "invalid_client"),
    ({"error": "invalid_client"}, "invalid_client"),
    ({"status": 401, "errors": [{"code": 1001, "message": "Arena's own shape"}]},
     "Arena's own shape"),
])
async def test_an_oauth_refusal_states_the_error_and_its_description(
        body: dict[str, Any], message: str) -> None:
    async with FakeArena.seeded(items=1, seed=13) as fake:
        fake.faults.add(Fault("status", status=401, path="/oauth/token$", body=body))
        async with oauth(fake) as arena:
            with pytest.raises(LoginError) as info:
                await arena.items.tickets.list(fake.item_guids[0])
        code = 1001 if "errors" in body else None
        assert [(e.code, e.message) for e in info.value.errors] == [(code, message)]
        assert message in str(info.value)


async def test_an_oauth_refusal_that_is_not_json_has_no_error_entries() -> None:
    async with FakeArena.seeded(items=1, seed=14) as fake:
        fake.faults.add(Fault("status", status=401, path="/oauth/token$",
                              body=b"<html>denied</html>"))
        async with oauth(fake) as arena:
            with pytest.raises(LoginError) as info:
                await arena.items.tickets.list(fake.item_guids[0])
        assert info.value.status == 401
        assert info.value.errors == []


# -- log lines ---------------------------------------------------------------------------
async def test_obtaining_and_replacing_a_token_is_logged_without_secrets(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="arena_async.arena._auth")
    async with FakeArena.seeded(items=1, seed=15) as fake, oauth(fake) as arena:
        await arena.items.tickets.list(fake.item_guids[0])
        fake.expire_tokens()
        await arena.items.tickets.list(fake.item_guids[0])
    lines = [r.getMessage() for r in caplog.records if r.name == "arena_async.arena._auth"]
    assert lines == [f"obtained an OAuth token for client {fake.client_id}",
                     "Arena token rejected (HTTP 401); obtaining a new one",
                     f"obtained an OAuth token for client {fake.client_id}"]
    assert fake.client_secret not in caplog.text


async def test_tokens_refused_soon_after_they_were_obtained_warn_of_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    # The cancellation warning is about sessions (another login of the same user ends
    # them); a token refused early says nothing of the kind.
    caplog.set_level(logging.WARNING)
    clock = FakeClock()
    async with FakeArena.seeded(items=1, seed=16, clock=clock) as fake, \
            oauth(fake, clock) as arena:
        for _ in range(3):
            await arena.items.tickets.list(fake.item_guids[0])
            fake.expire_tokens()
            clock.now += 1.0
        assert fake.stats.token_requests == 3
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_token_endpoint_answering_299_is_a_success() -> None:
    async with FakeArena.seeded(items=1, seed=17) as fake:
        token = await real_token(fake)
        fake.faults.add(Fault("status", status=299, path="/oauth/token$", times=1,
                              body={"access_token": token, "token_type": "bearer",
                                    "expires_in": 600}))
        async with oauth(fake) as arena:
            await arena.items.tickets.list(fake.item_guids[0])
        [sent] = fake.requests_to("GET /items/{item}/tickets")
        assert sent.headers["Authorization"] == f"Bearer {token}"


@pytest.mark.parametrize(("status", "latched"), [(400, True), (401, True), (403, True),
                                                 (402, False), (409, False)])
async def test_refused_client_credentials_are_tried_once(status: int, latched: bool) -> None:
    async with FakeArena.seeded(items=1, seed=18) as fake:
        fake.faults.add(Fault("status", status=status, path="/oauth/token$",
                              body={"error": "invalid_client"}))
        before = token_requests(fake)
        async with oauth(fake) as arena:
            for _ in range(2):
                with pytest.raises(LoginError) as info:
                    await arena.items.tickets.list(fake.item_guids[0])
                assert info.value.status == status
                assert info.value.url == "/oauth/token"  # the token URL's path
        assert token_requests(fake, before) == (1 if latched else 2)


async def test_a_token_that_lives_one_second_is_renewed_after_nine_tenths_of_it() -> None:
    clock = FakeClock()
    async with FakeArena.seeded(items=1, seed=19, clock=clock) as fake:
        token = await real_token(fake)
        fake.faults.add(Fault("wrong_shape", path="/oauth/token$", times=1,
                              body={"access_token": token, "token_type": "bearer",
                                    "expires_in": 1}))
        before = token_requests(fake)
        async with oauth(fake, clock) as arena:
            await arena.items.tickets.list(fake.item_guids[0])
            clock.now += 0.9
            await arena.items.tickets.list(fake.item_guids[0])
        assert token_requests(fake, before) == 2


async def test_an_oauth_client_with_a_share_never_logs_out(tmp_path: Path) -> None:
    async with FakeArena.seeded(items=1, seed=20) as fake:
        async with oauth(fake, share=SQLiteShare(tmp_path / "share.db")) as arena:
            await arena.items.tickets.list(fake.item_guids[0])
        assert fake.stats.token_requests == 1
        assert not fake.requests_to("PUT /logout")  # the last sharer's close: a token expires
