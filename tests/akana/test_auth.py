"""AkanaClient auth over real loopback HTTP against FakeAkana: cookies, CSRF, renewal,
re-login, pending tasks, secrets, endsession. Token lifetimes run on a fake clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote

import aiohttp
import pytest

from arena_async import (
    AkanaClient,
    ArenaAsyncError,
    AuthenticationError,
    LoginError,
    NotFoundError,
)
from arena_async.testing import FakeAkana, FakeArena, Fault
from tests.conftest import FakeClock

V81 = "application/vnd.soa.v81+json"


def client_for(fake: FakeAkana, clock: FakeClock | None = None, **kw: Any) -> AkanaClient:
    if clock is not None:
        kw.update(clock=clock, sleep=clock.sleep)
    kw.setdefault("email", fake.email)
    kw.setdefault("password", fake.password)
    return AkanaClient(base_url=fake.url, **kw)


@pytest.fixture
async def fake(fake_clock: FakeClock) -> AsyncIterator[FakeAkana]:
    async with FakeAkana.seeded(tickets=200, seed=2, clock=fake_clock,
                                csrf_on_reads=True) as server:
        yield server


async def existing_session(fake: FakeAkana) -> tuple[str, str]:
    """Log in with plain aiohttp (as another tool would) and return (token, csrf)."""
    async with aiohttp.ClientSession() as http, http.post(
            f"{fake.url}/api/login", json={"email": fake.email, "password": fake.password},
            headers={"Accept": "application/json"}) as response:
        assert response.status == 200
        return (response.cookies[fake.auth_cookie].coded_value,
                response.cookies[fake.csrf_cookie].coded_value)


def after_login(fake: FakeAkana) -> list[Any]:
    return [r for r in fake.requests if r.path != "/api/login"]


# ---------------------------------------------------------------------- cookies and CSRF


async def test_csrf_header_on_every_request_equals_the_cookie_as_is(fake: FakeAkana) -> None:
    async with client_for(fake) as akana:
        await akana.tickets.list(page_size=60)
        await akana.tickets.get(fake.tickets[0]["TicketID"])
        assert akana.tenant == fake.tenant
    login, *rest = fake.requests
    assert login.path == "/api/login"
    assert login.headers["Accept"] == "application/json"
    assert fake.csrf_header not in login.headers
    assert not login.cookies
    assert [r.path for r in rest][-1] == "/api/login/endsession"
    assert len(rest) == 6
    csrf = rest[0].cookies[fake.csrf_cookie]
    assert "%" in csrf  # URL-encoded on the wire, copied as is, never decoded
    for request in rest:
        assert request.headers[fake.csrf_header] == csrf == request.cookies[fake.csrf_cookie]
        assert request.cookies[fake.auth_cookie]
        assert request.status == 200
    assert all(r.headers["Accept"] == V81 for r in rest if r.path.startswith("/api/tickets"))
    assert fake.stats.unauthorized == 0
    assert fake.stats.csrf_failures == 0


async def test_ip_host_cookies_work_with_a_caller_session_whose_jar_drops_them(
        fake: FakeAkana) -> None:
    # aiohttp's default jar ignores cookies from IP hosts: the client keeps its own.
    async with aiohttp.ClientSession() as http:
        async with client_for(fake, session=http) as akana:
            assert len(await akana.tickets.list(page_size=1000)) == 200
        assert not http.closed  # a caller-owned session is left open
    assert fake.stats.logins == 1
    assert fake.stats.unauthorized == 0
    assert fake.stats.endsessions == 1


async def test_tenant_is_learned_and_a_wrong_given_tenant_is_refused() -> None:
    async with FakeAkana.seeded(tickets=5, tenant="globexcorp") as fake:
        async with client_for(fake) as akana:
            assert akana.tenant is None
            assert len(await akana.tickets.list()) == 5
            assert akana.tenant == "globexcorp"
        async with client_for(fake, tenant="globexcorp") as akana:
            assert len(await akana.tickets.list()) == 5
        async with client_for(fake, tenant="acmepaymentscorp") as akana:
            with pytest.raises(LoginError, match="globexcorp"):
                await akana.tickets.list()


async def test_a_server_without_csrf_gets_no_csrf_header() -> None:
    async with FakeAkana.seeded(tickets=5, csrf=False) as fake:
        async with client_for(fake) as akana:
            await akana.tickets.list()
        assert not any(fake.csrf_header in r.headers for r in fake.requests)
        assert not any(fake.csrf_cookie in r.cookies for r in fake.requests)


# ---------------------------------------------------------------------- renewal and re-login


async def test_200_pages_across_the_token_lifetime_renew_once_before_lapse(
        fake: FakeAkana, fake_clock: FakeClock) -> None:
    pages = 0
    async with client_for(fake, fake_clock) as akana:
        async for page in akana.tickets.pages(page_size=1):
            pages += 1
            assert len(page.items) == 1 or page.next_start is None
            fake_clock.now += 10  # 200 pages span 2000 s > the 1800 s lifetime
    assert pages == 201
    assert fake.stats.renewals == 1
    assert fake.stats.logins == 1
    assert fake.stats.unauthorized == 0  # renewed before lapse: no 401 seen
    renew = next(r for r in fake.requests if r.path == "/api/login/renewToken")
    assert renew.method == "POST"
    assert renew.content == b""
    assert renew.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert renew.headers[fake.csrf_header] == renew.cookies[fake.csrf_cookie]
    # Renewed when less than 5 minutes remained (1500 s after login), not earlier.
    index = fake.requests.index(renew)
    assert sum(1 for r in fake.requests[:index] if r.path == "/api/tickets") == 150


async def test_proactive_renewal_with_the_fake_clock(fake: FakeAkana,
                                                     fake_clock: FakeClock) -> None:
    async with client_for(fake, fake_clock) as akana:
        await akana.tickets.list(max_items=1)
        fake_clock.now += 1800 - 301  # 5 min + 1 s left: no renewal yet
        await akana.tickets.list(max_items=1)
        assert fake.stats.renewals == 0
        fake_clock.now += 2  # under 5 minutes left
        await asyncio.gather(*(akana.tickets.list(max_items=1) for _ in range(20)))
        assert fake.stats.renewals == 1  # single-flight
        fake_clock.now += 1800 - 299  # the renewed token's own margin
        await akana.tickets.list(max_items=1)
        assert fake.stats.renewals == 2
        assert akana.stats.renewals == 2
        assert akana.stats.logins == 1
    assert fake.stats.unauthorized == 0
    assert fake.stats.logins == 1


@pytest.mark.parametrize(("key_case", "until"), [("pascal", "epoch_ms"), ("lower", "iso")])
async def test_valid_until_is_read_in_every_form(fake_clock: FakeClock, key_case: Any,
                                                 until: Any) -> None:
    async with FakeAkana.seeded(tickets=3, clock=fake_clock, token_lifetime=600,
                                login_key_case=key_case, valid_until_format=until) as fake:
        async with client_for(fake, fake_clock) as akana:
            await akana.tickets.list()
            fake_clock.now += 299  # a 10-minute token renews at half its life
            await akana.tickets.list()
            assert fake.stats.renewals == 0
            fake_clock.now += 2
            await akana.tickets.list()
            assert fake.stats.renewals == 1
        assert fake.stats.unauthorized == 0


async def test_server_side_expiry_mid_run_costs_one_relogin(fake: FakeAkana) -> None:
    got: list[str] = []
    async with client_for(fake) as akana:
        async for page in akana.tickets.pages(page_size=1):
            got.extend(t.ticket_id for t in page.items)
            if page.start == 100:
                fake.expire_tokens()
    assert got == [t["TicketID"] for t in fake.tickets]
    assert fake.stats.logins == 2
    assert fake.stats.unauthorized == 1
    assert fake.stats.renewals == 0


async def test_a_lapsed_token_is_replaced_by_a_login_when_renewal_is_refused(
        fake: FakeAkana, fake_clock: FakeClock) -> None:
    async with client_for(fake, fake_clock) as akana:
        await akana.tickets.list(max_items=1)
        fake_clock.now += 3600  # idle past the lapse: renewToken is refused (401)
        assert len(await akana.tickets.list(max_items=3)) == 3
    assert fake.stats.logins == 2
    assert fake.stats.renewals == 0
    ticket_401s = [r for r in fake.requests if r.status == 401 and r.path == "/api/tickets"]
    assert ticket_401s == []


async def test_50_concurrent_requests_on_an_expired_token_cause_one_login(
        fake: FakeAkana) -> None:
    ids = [t["TicketID"] for t in fake.tickets[:50]]
    async with client_for(fake, max_concurrency=50) as akana:
        await akana.tickets.get(ids[0])
        fake.expire_tokens()
        tickets = await asyncio.gather(*(akana.tickets.get(i) for i in ids))
        assert akana.stats.logins == 2
    assert [t.ticket_id for t in tickets] == ids
    assert fake.stats.logins == 2
    assert fake.stats.unauthorized == 50


async def test_50_concurrent_first_requests_share_one_login(fake: FakeAkana) -> None:
    ids = [t["TicketID"] for t in fake.tickets[:50]]
    async with client_for(fake, max_concurrency=50) as akana:
        await asyncio.gather(*(akana.tickets.get(i) for i in ids))
    assert fake.stats.logins == 1


# ---------------------------------------------------------------------- an existing token


async def test_an_existing_token_is_used_as_is_and_never_ended(fake: FakeAkana) -> None:
    token, csrf = await existing_session(fake)
    async with client_for(fake, email=None, password=None, auth_token=token,
                          tenant=fake.tenant, csrf_token=csrf) as akana:
        assert len(await akana.tickets.list(page_size=1000)) == 200
    assert fake.stats.logins == 1  # ours above only
    assert fake.stats.endsessions == 0
    assert fake.live_sessions == 1
    assert all(r.cookies[fake.auth_cookie] == token and r.headers[fake.csrf_header] == csrf
               for r in fake.requests[1:])


async def test_an_existing_token_refused_is_renewed_once_for_50_concurrent_requests(
        fake: FakeAkana) -> None:
    token, csrf = await existing_session(fake)
    ids = [t["TicketID"] for t in fake.tickets[:50]]
    fake.faults.add(Fault("status", status=401, path=r"^/api/tickets/", times=50))
    async with client_for(fake, email=None, password=None, auth_token=token,
                          tenant=fake.tenant, csrf_token=csrf, max_concurrency=50) as akana:
        tickets = await asyncio.gather(*(akana.tickets.get(i) for i in ids))
    assert [t.ticket_id for t in tickets] == ids
    assert fake.stats.renewals == 1
    assert fake.stats.logins == 1


async def test_an_existing_token_that_lapsed_fails_clearly(fake: FakeAkana,
                                                           fake_clock: FakeClock) -> None:
    token, csrf = await existing_session(fake)
    fake_clock.now += 3600
    async with client_for(fake, fake_clock, email=None, password=None, auth_token=token,
                          tenant=fake.tenant, csrf_token=csrf) as akana:
        with pytest.raises(AuthenticationError) as info:
            await akana.tickets.list()
        message = str(info.value)
        assert "renewToken" in message
        assert "auth_token" in message
        assert token not in message
        assert csrf not in message
        renewals = sum(1 for r in fake.requests if r.path == "/api/login/renewToken")
        with pytest.raises(AuthenticationError):  # fails fast: no second renewal
            await akana.tickets.list()
        assert sum(1 for r in fake.requests if r.path == "/api/login/renewToken") == renewals
    assert renewals == 1


async def test_an_existing_token_with_credentials_falls_back_to_a_login(
        fake: FakeAkana) -> None:
    token, csrf = await existing_session(fake)
    fake.expire_tokens()
    async with client_for(fake, auth_token=token, tenant=fake.tenant,
                          csrf_token=csrf) as akana:
        assert len(await akana.tickets.list(max_items=2)) == 2
    assert fake.stats.logins == 2
    assert fake.stats.endsessions == 1  # the session we opened, not the given one


# ---------------------------------------------------------------------- refusals


async def test_pending_tasks_fail_with_a_clear_message(fake: FakeAkana) -> None:
    async with client_for(fake, email=fake.pending_email,
                          password=fake.pending_password) as akana:
        with pytest.raises(LoginError) as info:
            await akana.tickets.list()
        message = str(info.value)
        assert "ChangePassword" in message
        assert "portal" in message
        assert fake.pending_password not in message
        with pytest.raises(LoginError, match="ChangePassword"):
            await akana.tickets.get(fake.tickets[0]["TicketID"])
    assert fake.stats.logins == 1  # not tried again
    assert not any(r.path.startswith("/api/tickets") for r in fake.requests)


@pytest.mark.parametrize("error_body", ["json", "text", "html"])
async def test_wrong_credentials_fail_with_status_and_excerpt_never_the_password(
        fake: FakeAkana, error_body: Any) -> None:
    fake.error_body = error_body
    secret = "Wr0ng-Secret!"
    async with client_for(fake, password=secret) as akana:
        with pytest.raises(LoginError) as info:
            await akana.tickets.list()
        error = info.value
        assert error.status == 401
        assert "Invalid email or password" in str(error)
        assert secret not in str(error)
        assert secret not in repr(error)
        assert secret not in repr(akana)
        with pytest.raises(LoginError):  # remembered: repeated refusals can lock accounts
            await akana.tickets.list()
    assert fake.stats.failed_logins == 1


async def test_a_password_echoed_by_the_server_is_masked() -> None:
    secret = "Echo-Me-123"
    async with FakeAkana.seeded(tickets=1, error_body="text") as fake:
        fake.faults.add(Fault("status", status=400, path="^/api/login$",
                              body=f"bad password {secret} for you".encode()))
        async with client_for(fake, password=secret) as akana:
            with pytest.raises(LoginError) as info:
                await akana.tickets.list()
    assert secret not in str(info.value)
    assert "***" in str(info.value)


@pytest.mark.parametrize("status", [404, 405])
async def test_a_login_url_that_is_not_there_names_the_url_and_the_portal_root(
        status: int) -> None:
    async with FakeAkana.seeded(tickets=1) as fake:
        fake.faults.add(Fault("status", status=status, path="^/api/login$"))
        async with client_for(fake) as akana:
            with pytest.raises(LoginError) as info:
                await akana.tickets.list()
    message = str(info.value)
    assert info.value.status == status
    assert f"no Akana login at {fake.url}/api/login. Is base_url {fake.url!r} right?" \
        in message, message
    assert "portal's root, without /api" in message, message
    assert "ArenaClient" not in message, message


async def test_an_arena_url_given_to_akana_says_so() -> None:
    async with FakeArena.seeded(items=1) as arena_fake, \
            AkanaClient(base_url=arena_fake.url, email="someone@example.com",
                        password="Not-Shown-1") as akana:
        with pytest.raises(LoginError) as info:
            await akana.tickets.list()
    message = str(info.value)
    assert info.value.status == 404
    assert f"no Akana login at {arena_fake.url}/api/login" in message, message
    assert "use ArenaClient for Arena" in message, message
    assert "Not-Shown-1" not in message


async def test_wrong_api_version_reads_clearly() -> None:
    async with FakeAkana.seeded(tickets=3, versions=("v72",)) as fake:
        async with client_for(fake) as akana:
            with pytest.raises(NotFoundError) as info:
                await akana.tickets.list()
        message = str(info.value)
        assert "application/vnd.soa.v81+json" in message
        assert "api_version='v81'" in message
        assert info.value.status == 404
        async with client_for(fake, api_version="v72") as akana:
            assert len(await akana.tickets.list()) == 3
        assert fake.requests[-2].headers["Accept"] == "application/vnd.soa.v72+json"


@pytest.mark.parametrize("bad", ["81", "8.1", "V81", "v8.1", "application/json", "", None, 81])
def test_a_malformed_api_version_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="api_version"):
        AkanaClient(base_url="http://127.0.0.1:1", email="a@b", password="p", api_version=bad)


# ---------------------------------------------------------------------- lifecycle


async def test_endsession_on_close_only_when_we_logged_in(fake: FakeAkana) -> None:
    async with client_for(fake) as akana:
        pass
    assert fake.stats.logins == 0
    assert fake.stats.endsessions == 0
    async with client_for(fake) as akana:
        await akana.tickets.list(max_items=1)
    assert fake.stats.endsessions == 1
    assert fake.live_sessions == 0
    end = fake.requests[-1]
    assert end.path == "/api/login/endsession"
    assert end.method == "GET"
    assert end.headers[fake.csrf_header] == end.cookies[fake.csrf_cookie]
    await akana.close()  # idempotent
    assert fake.stats.endsessions == 1


async def test_close_survives_a_dead_server(fake_clock: FakeClock,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeAkana.seeded(tickets=2, clock=fake_clock)
    await fake.start()
    akana = await client_for(fake, fake_clock, timeout=2).open()
    try:
        assert len(await akana.tickets.list()) == 2
    finally:
        await fake.close()
        await akana.close()  # the endsession fails: logged, not raised
    assert fake.stats.endsessions == 0  # it never arrived
    failed = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("ending the Akana session failed" in m for m in failed)
    assert all(fake.password not in r.getMessage() for r in caplog.records)
    with pytest.raises(RuntimeError, match="closed"):  # closed for good
        await akana.tickets.list()
    await akana.close()  # idempotent, even now


# ---------------------------------------------------------------------- secrets


async def test_nothing_secret_in_logs_reprs_or_errors(
        fake: FakeAkana, fake_clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    async with client_for(fake, fake_clock) as akana:
        reprs = [repr(akana), repr(akana._auth), repr(akana._transport)]
        await akana.tickets.list(page_size=60)
        fake_clock.now += 1600  # proactive renewal
        await akana.tickets.list(max_items=5)
        fake.expire_tokens()  # re-login
        await akana.tickets.list(max_items=5)
        for call in (akana.tickets.get("ticket1.nowhere"), akana.tickets.list(sort_by="x")):
            try:
                await call
            except ArenaAsyncError as exc:
                errors.append(exc)
        reprs += [repr(akana), repr(akana._auth)]
    async with client_for(fake, fake_clock, password="not-the-password") as bad:
        with pytest.raises(LoginError) as info:
            await bad.tickets.list()
        errors.append(info.value)
    assert fake.stats.renewals == 1
    assert fake.stats.logins == 2
    secrets = {fake.password, "not-the-password"}
    for request in fake.requests:
        secrets.update(v for v in request.cookies.values() if v)
        secrets.update(v for k, v in request.headers.items() if k.lower().startswith("x-csrf"))
    secrets |= {unquote(s) for s in secrets}
    assert len(secrets) >= 6
    texts = [r.getMessage() for r in caplog.records] + reprs
    texts += [str(e) for e in errors] + [repr(e) for e in errors]
    assert any("renewed" in t for t in texts)
    assert any("logged in" in t for t in texts)
    for text in texts:
        for secret in secrets:
            assert secret not in text
        for fragment in ("TokenID", "sig=", "expirationTime"):
            assert fragment not in text


# ---------------------------------------------------------------------- arguments


@pytest.mark.parametrize(("kw", "name"), [
    ({}, "email"),
    ({"email": "a@b"}, "password"),
    ({"password": "p"}, "email"),
    ({"email": "", "password": "p"}, "email"),
    ({"email": "a@b", "password": ""}, "password"),
    ({"auth_token": "t"}, "tenant"),
    ({"auth_token": "", "tenant": "acme"}, "auth_token"),
    ({"auth_token": "a b", "tenant": "acme"}, "auth_token"),
    ({"auth_token": "a;b", "tenant": "acme"}, "auth_token"),
    ({"auth_token": "t", "tenant": "acme.corp"}, "tenant"),
    ({"auth_token": "t", "tenant": ""}, "tenant"),
    ({"email": "a@b", "password": "p", "csrf_token": "c"}, "csrf_token"),
    ({"auth_token": "t", "tenant": "acme", "csrf_token": "c\n"}, "csrf_token"),
    ({"email": "a@b", "password": "p", "base_url": "ftp://x"}, "base_url"),
    ({"email": "a@b", "password": "p", "base_url": "http://portal.example.com"}, "base_url"),
    ({"email": "a@b", "password": "p", "base_url": "https://portal.example.com/api"},
     "base_url"),
    ({"email": "a@b", "password": "p", "max_concurrency": 0}, "max_concurrency"),
    ({"email": "a@b", "password": "p", "timeout": 0}, "timeout"),
    ({"email": "a@b", "password": "p", "retry": 3}, "retry"),
    ({"email": "a@b", "password": "p", "requests_per_second": -1}, "requests_per_second"),
    ({"email": "a@b", "password": "p", "session": object()}, "session"),
    ({"email": "a@b", "password": "p", "allow_insecure": "yes"}, "allow_insecure"),
    ({"email": "a@b", "password": "p", "seed": "1"}, "seed"),
    ({"email": "a@b", "password": "p", "clock": 5}, "clock"),
])
def test_constructor_arguments_are_checked(kw: dict[str, Any], name: str) -> None:
    kw.setdefault("base_url", "http://127.0.0.1:1")
    with pytest.raises(ValueError, match=name) as info:
        AkanaClient(**kw)
    for value in ("a b", "a;b", "c\n"):
        assert value not in str(info.value)


def test_plain_http_to_another_host_needs_allow_insecure() -> None:
    akana = AkanaClient(base_url="http://portal.example.com/", email="a@b", password="p",
                        allow_insecure=True)
    assert akana.base_url == "http://portal.example.com"
    assert akana.media_type == V81


async def test_valid_until_in_the_past_on_our_clock_assumes_the_default(
        fake_clock: FakeClock) -> None:
    # The server's clock is two hours behind ours: its authTokenValidUntil (its now + 30
    # min) is already past on our clock. The client assumes the default 30 minutes from
    # its own now (renewal 25 minutes in), not a lapsed token to renew at every call.
    async with FakeAkana.seeded(tickets=3, clock=lambda: fake_clock() - 7200) as fake:
        async with client_for(fake, fake_clock) as akana:
            await akana.tickets.list()
            await akana.tickets.list()
            fake_clock.now += 1499  # 5 min + 1 s of the assumed lifetime left
            await akana.tickets.list()
            assert fake.stats.renewals == 0
            fake_clock.now += 2
            await akana.tickets.list()
            assert fake.stats.renewals == 1
        assert fake.stats.logins == 1
        assert fake.stats.unauthorized == 0


async def test_a_transient_renewal_failure_does_not_kill_a_given_token(
        fake: FakeAkana, fake_clock: FakeClock) -> None:
    token, csrf = await existing_session(fake)
    ids = [t["TicketID"] for t in fake.tickets[:3]]
    fake.faults.add(Fault("status", status=401, path=r"^/api/tickets/", times=1))
    fake.faults.add(Fault("status", status=503, path=r"renewToken$", times=1))
    async with client_for(fake, fake_clock, email=None, password=None, auth_token=token,
                          tenant=fake.tenant, csrf_token=csrf) as akana:
        got = [(await akana.tickets.get(i)).ticket_id for i in ids]
    assert got == ids
    assert len(fake_clock.sleeps) == 1  # the 503 cost one backoff, not the client
    assert fake.stats.renewals == 0  # the retry found the token good again: nothing to renew


async def test_a_401_met_while_the_client_closes_logs_in_no_new_session() -> None:
    # A request is in flight when close() begins; its 401 arrives while the endsession is
    # on the wire. Logging in again then would leave a session nobody ends.
    async with FakeAkana.seeded(tickets=5, seed=2) as fake:
        akana = client_for(fake)
        await akana.open()
        await akana.tickets.list(page_size=1, max_items=1)
        fake.faults.add(Fault("slow_headers", delay=0.5, path="/endsession$", times=1))
        fake.faults.add(Fault("slow_headers", delay=0.1, path="/api/tickets$", times=1))
        in_flight = asyncio.ensure_future(akana.tickets.list(page_size=1, max_items=1))
        while fake.stats.in_flight == 0:  # it is at the server
            await asyncio.sleep(0.002)
        fake.expire_tokens()
        await akana.close()
        with pytest.raises(ArenaAsyncError) as info:
            await in_flight
        assert getattr(info.value, "status", None) == 401
        assert "the client was closing: no new login" in " ".join(info.value.__notes__)
        assert fake.stats.logins == 1
        assert fake.stats.endsessions == 1
