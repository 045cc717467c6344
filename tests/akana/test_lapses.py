"""Akana directory users, renewal from the token's own expiry, and empty pages after a
lapse, over real loopback HTTP against FakeAkana. Token lifetimes run on a fake clock
shared by the client and the fake."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest

from arena_async import (
    AkanaClient,
    AuthenticationError,
    DirectoryLogin,
    GivenCookies,
    Login,
    LoginError,
)
from arena_async.testing import FakeAkana, Fault
from arena_async.testing._fake_akana import FakeUser
from tests.conftest import FakeClock

SSO = "/api/login/ssoLogin"
RENEW = "/api/login/renewToken"
LIST = "/api/tickets"
PASSWORD = "Dir3ctory-Pa55word"
JDOE = FakeUser("jdoe@corp.example", PASSWORD, "f00dfeed.acmepaymentscorp", "jdoe",
                domain="CORP", username="jdoe")


async def existing_session(fake: FakeAkana) -> tuple[str, str]:
    """Log in with plain aiohttp (as another tool would): the (token, csrf) cookies."""
    async with aiohttp.ClientSession() as http, http.post(
            f"{fake.url}/api/login", json={"email": fake.email, "password": fake.password},
            headers={"Accept": "application/json"}) as response:
        assert response.status == 200
        return (response.cookies[fake.auth_cookie].coded_value,
                response.cookies[fake.csrf_cookie].coded_value)


def paths(fake: FakeAkana, path: str) -> list[Any]:
    return [r for r in fake.requests if r.path == path]


def client(fake: FakeAkana, clock: FakeClock, auth: Any) -> AkanaClient:
    return AkanaClient(base_url=fake.url, auth=auth, clock=clock, sleep=clock.sleep)


@pytest.fixture
async def fake(fake_clock: FakeClock) -> AsyncIterator[FakeAkana]:
    async with FakeAkana.seeded(tickets=120, seed=3, clock=fake_clock, csrf_on_reads=True,
                                directory_users=[JDOE]) as server:
        yield server


# -- directory (LDAP) users -----------------------------------------------------------------
async def test_a_directory_user_logs_in_lists_and_logs_out(fake: FakeAkana,
                                                           fake_clock: FakeClock) -> None:
    async with client(fake, fake_clock, DirectoryLogin("corp", "JDOE", PASSWORD)) as akana:
        got = [t.ticket_id async for t in akana.tickets.iter(page_size=50)]
        assert akana.tenant == fake.tenant
    assert got == [t["TicketID"] for t in fake.tickets]
    [login] = paths(fake, SSO)
    assert login.method == "POST"
    assert login.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(login.content.decode()) == {
        "domain": ["corp"], "identity_username": ["JDOE"], "secret_password": [PASSWORD]}
    assert paths(fake, "/api/login") == []
    assert (fake.stats.logins, fake.stats.directory_logins, fake.stats.endsessions) == (1, 1, 1)
    assert fake.live_sessions == 0
    # every listing call carried the cookie and the CSRF header the ssoLogin set
    assert all(r.headers[fake.csrf_header] == r.cookies[fake.csrf_cookie]
               for r in paths(fake, LIST))


async def test_a_directory_user_logs_in_again_after_a_lapse_or_a_refusal(
        fake: FakeAkana, fake_clock: FakeClock) -> None:
    async with client(fake, fake_clock, DirectoryLogin("CORP", "jdoe", PASSWORD)) as akana:
        await akana.tickets.list(max_items=5)
        fake_clock.now += 3600  # idle past the lapse: a login, not a doomed renewal
        await akana.tickets.list(max_items=5)
        assert fake.stats.directory_logins == 2
        assert paths(fake, RENEW) == []
        fake.expire_tokens()  # ended by the server, unannounced: its 401 -> one login
        assert len(await akana.tickets.list(max_items=5)) == 5
        assert fake.stats.directory_logins == 3
    assert fake.stats.unauthorized == 1
    assert fake.live_sessions == 0


async def test_a_refused_directory_login_is_clear_and_never_tried_again(
        fake: FakeAkana, fake_clock: FakeClock) -> None:
    async with client(fake, fake_clock, DirectoryLogin("CORP", "jdoe", "wrong-" + PASSWORD)
                      ) as akana:
        for _ in range(2):
            with pytest.raises(LoginError) as info:
                await akana.tickets.list()
            assert info.value.status == 401
            assert info.value.url == SSO
            assert PASSWORD not in str(info.value) + repr(info.value)
    assert fake.stats.failed_logins == 1  # latched: repeated refusals lock accounts


async def test_a_given_token_falls_back_to_a_directory_login(
        fake: FakeAkana, fake_clock: FakeClock) -> None:
    auth = GivenCookies("unknown-token", fake.tenant,
                        login=DirectoryLogin("CORP", "jdoe", PASSWORD))
    async with client(fake, fake_clock, auth) as akana:
        # The opaque given token says nothing of its expiry: renewed before its first use,
        # refused, so the login replaces it before any listing call.
        assert len(await akana.tickets.list(max_items=3)) == 3
    assert [r.path for r in fake.requests[:3]] == [RENEW, SSO, LIST]
    assert fake.stats.unauthorized == 1  # the renewal's 401 only


# -- renewal from the token's own expiry -----------------------------------------------------
async def paged_over(akana: AkanaClient, clock: FakeClock, seconds: float) -> list[str]:
    """Every ticket, a page at a time, the clock moving ``seconds`` before each page."""
    ids: list[str] = []
    pages = akana.tickets.pages(page_size=10)
    while True:
        clock.now += seconds
        try:
            page = await anext(pages)
        except StopAsyncIteration:
            return ids
        ids += [t.ticket_id for t in page.items]


@pytest.mark.parametrize(("lifetime", "opaque", "renewed_at"), [
    (600.0, False, 300.0),    # no authTokenValidUntil: the cookie's own times (half of 10 min)
    (1800.0, True, 1500.0),   # neither: the documented 30 minutes, renewed 5 minutes before
])
async def test_renewal_rests_on_the_expiry_when_the_answer_does_not_say(
        fake_clock: FakeClock, lifetime: float, opaque: bool, renewed_at: float) -> None:
    async with FakeAkana.seeded(tickets=120, seed=3, clock=fake_clock, token_lifetime=lifetime,
                                valid_until_format="none", opaque_tokens=opaque,
                                expired_listing="empty") as fake:
        start = fake_clock.now
        async with client(fake, fake_clock, Login(fake.email, fake.password)) as akana:
            ids = await paged_over(akana, fake_clock, 150.0)  # 13 pages over 1950 s
        assert ids == [t["TicketID"] for t in fake.tickets]
        first = paths(fake, RENEW)[0]
        assert first.received_at - start == pytest.approx(renewed_at, abs=150.0)
        assert fake.stats.lapsed_empty == 0  # never sent with a lapsed token
        assert fake.stats.unauthorized == 0


async def test_a_given_token_is_renewed_from_its_cookie_before_it_lapses(
        fake: FakeAkana, fake_clock: FakeClock) -> None:
    token, csrf = await existing_session(fake)
    fake_clock.now += 1000  # the token is 1000 s old when it is handed over
    given = client(fake, fake_clock, GivenCookies(token, fake.tenant, csrf_token=csrf))
    async with given:
        fake.expired_listing = "empty"
        ids = await paged_over(given, fake_clock, 100.0)
    assert ids == [t["TicketID"] for t in fake.tickets]
    renewals = paths(fake, RENEW)
    assert len(renewals) == 1
    assert fake.stats.lapsed_empty == 0
    assert fake.stats.unauthorized == 0


# -- an empty page right after a lapse ------------------------------------------------------
async def test_an_empty_page_while_the_token_was_due_is_asked_again(
        fake: FakeAkana, fake_clock: FakeClock) -> None:
    fake.expired_listing = "empty"
    async with client(fake, fake_clock, DirectoryLogin("CORP", "jdoe", PASSWORD)) as akana:
        pages = akana.tickets.pages(page_size=10)
        ids = [t.ticket_id for _ in range(3) for t in (await anext(pages)).items]
        # In the renewal window the renewal fails (twice), and the server ends the token
        # unannounced: the next page gets an empty 200, not a 401.
        fake_clock.now += 1600
        fake.faults.add(Fault("status", status=503, path="renewToken$", times=2))
        fake.expire_tokens()
        async for page in pages:
            ids += [t.ticket_id for t in page.items]
    assert ids == [t["TicketID"] for t in fake.tickets]  # none lost
    assert fake.stats.lapsed_empty == 1
    assert fake.stats.directory_logins == 2
    asked = [r.query.get("start") for r in paths(fake, LIST)]
    assert asked.count("30") == 2  # the suspect page, asked again once


async def test_an_empty_last_page_replayed_after_its_own_401_is_trusted(
        fake: FakeAkana, fake_clock: FakeClock) -> None:
    """The last (empty) page meets a 401 (its token ended elsewhere): the client logs in
    again and replays it; the empty answer came with the new token, so it is the truth
    and the page is not asked a third time."""
    async with client(fake, fake_clock, Login(fake.email, fake.password)) as akana:
        pages = akana.tickets.pages(page_size=40)
        ids = [t.ticket_id for _ in range(3) for t in (await anext(pages)).items]
        fake.expire_tokens()  # the next page (start=120, empty) gets a 401
        async for page in pages:
            ids += [t.ticket_id for t in page.items]
    assert ids == [t["TicketID"] for t in fake.tickets]
    last = [r.status for r in paths(fake, LIST) if r.query.get("start") == "120"]
    assert last == [401, 200]
    assert fake.stats.logins == 2


async def test_an_empty_page_answered_with_a_token_replaced_meanwhile_is_asked_again(
        fake: FakeAkana, fake_clock: FakeClock) -> None:
    """A page goes with token 1; while it is under way another request meets a 401 and
    logs in again: the page's empty 200 came with the lapsed token and is asked again (once,
    with the new token)."""
    fake.expired_listing = "empty"
    first = fake.tickets[0]["TicketID"]
    async with client(fake, fake_clock, Login(fake.email, fake.password)) as akana:
        await akana.tickets.get(first)  # logged in: token 1
        fake.expire_tokens()
        # The page is held at the server while the other request logs in again (1 s: a
        # stall of this process during the hold would let the page's answer come first).
        fake.faults.add(Fault("slow_headers", delay=1.0, path="tickets$", times=1))
        before = len(paths(fake, LIST))
        listing = asyncio.create_task(akana.tickets.list(max_items=10, page_size=10))
        while len(paths(fake, LIST)) == before:  # the page is at the server
            await asyncio.sleep(0.002)
        await akana.tickets.get(first)  # 401, a new login: token 2
        listed = await listing
    assert [t.ticket_id for t in listed] == [t["TicketID"] for t in fake.tickets[:10]]
    firsts = [r for r in paths(fake, LIST) if r.query.get("start") == "0"]
    assert len(firsts) == 2  # the suspect page, asked again once
    assert fake.stats.lapsed_empty == 1
    assert fake.stats.logins == 2


async def test_an_empty_page_of_a_dead_given_token_raises_instead_of_ending_the_listing(
        fake: FakeAkana, fake_clock: FakeClock) -> None:
    token, csrf = await existing_session(fake)
    fake.expired_listing = "empty"
    async with client(fake, fake_clock, GivenCookies(token, fake.tenant,
                                                     csrf_token=csrf)) as given:
        pages = given.tickets.pages(page_size=10)
        await anext(pages)
        fake_clock.now += 1600  # due: the renewal fails, the server ends the token
        fake.faults.add(Fault("status", status=503, path="renewToken$", times=1))
        fake.expire_tokens()
        with pytest.raises(AuthenticationError) as info:
            await anext(pages)
        assert "renewToken answered HTTP 401" in str(info.value)
        assert info.value.resume_from == 10


async def test_a_genuinely_empty_listing_costs_nothing_more(fake: FakeAkana,
                                                            fake_clock: FakeClock) -> None:
    async with client(fake, fake_clock, Login(fake.email, fake.password)) as akana:
        assert await akana.tickets.list(tag="no-such-tag") == []
    assert len(paths(fake, LIST)) == 1
    assert paths(fake, RENEW) == []


async def test_nothing_secret_in_any_log_line(fake: FakeAkana, fake_clock: FakeClock,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.expired_listing = "empty"
    async with client(fake, fake_clock, DirectoryLogin("CORP", "jdoe", PASSWORD)) as akana:
        await akana.tickets.list(max_items=20, page_size=10)
        fake_clock.now += 1600
        fake.faults.add(Fault("status", status=503, path="renewToken$", times=2))
        fake.expire_tokens()
        await akana.tickets.list(max_items=20, page_size=10)
        fake_clock.now += 1600
        await akana.tickets.list(max_items=20, page_size=10)
    assert fake.stats.lapsed_empty >= 1
    assert fake.stats.renewals >= 1
    secrets = {PASSWORD} | {r.cookies[fake.auth_cookie] for r in fake.requests
                            if fake.auth_cookie in r.cookies}
    secrets |= {r.cookies[fake.csrf_cookie] for r in fake.requests
                if fake.csrf_cookie in r.cookies}
    text = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert len(secrets) > 3
    for secret in secrets:
        assert secret not in text
    assert any("renewing it before asking again" in r.getMessage() for r in caplog.records)
