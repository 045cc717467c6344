"""Corporate networks: a private CA (``ssl=``), an HTTP proxy (``proxy=``), the environment
(``trust_env=``), over real loopback: the fakes served over HTTPS with a CA made here by
``trustme``, and :class:`~arena_async.testing.ForwardProxy` counting what passes.

Every request a client makes (login, API calls, logout, the OAuth token URL) must go the
configured way; a refused certificate or a refused proxy login fails at once, saying what
is wrong and how to fix it, never with a secret.
"""

from __future__ import annotations

import datetime
import logging
import pickle
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme

from arena_async import (
    AkanaClient,
    ArenaClient,
    ProxyError,
    QuotaPolicy,
    RetryPolicy,
    TLSCertificateError,
    TransportError,
)
from arena_async.testing import FakeAkana, FakeArena, ForwardProxy, ProxiedRequest
from tests.conftest import FakeClock

PROXY_PASSWORD = "pr0xy-s3cret"
FIXES = ("ssl=", "trust_env=True", "SSL_CERT_FILE", "truststore")


# -- the CA, the certificates, the servers ------------------------------------------------





def served_by(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


def loopback_cert(ca: trustme.CA, **kwargs: Any) -> ssl.SSLContext:
    return served_by(ca.issue_cert("127.0.0.1", "localhost", **kwargs))


@pytest.fixture
async def tls_arena(ca: trustme.CA) -> AsyncIterator[FakeArena]:
    async with FakeArena(ssl_context=loopback_cert(ca)) as fake:
        yield fake


@pytest.fixture
async def proxy() -> AsyncIterator[ForwardProxy]:
    async with ForwardProxy() as running:
        yield running


@pytest.fixture
async def auth_proxy() -> AsyncIterator[ForwardProxy]:
    async with ForwardProxy(username="corp\\svc-arena", password=PROXY_PASSWORD) as running:
        yield running


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                 "all_proxy", "NO_PROXY", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR",
                 "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def arena_for(fake: FakeArena, **kwargs: Any) -> ArenaClient:
    return ArenaClient(email=fake.email, password=fake.password,
                       workspace_id=fake.workspace_id, base_url=fake.url, **kwargs)


def wire_paths(fake: FakeArena) -> list[str]:
    return [f"{r.method} {r.path.removeprefix('/v1')}" for r in fake.requests]


# -- TLS: a private CA ------------------------------------------------------------------

async def test_the_fake_serves_https_with_its_certificate(tls_arena: FakeArena) -> None:
    assert tls_arena.url.startswith("https://127.0.0.1:")


@pytest.mark.parametrize("given", ["str", "path"])
async def test_a_ca_bundle_path_is_trusted_for_every_request(
        tls_arena: FakeArena, ca_file: Path, given: str) -> None:
    item = tls_arena.add_item()
    tls_arena.add_ticket_refs(item, 2)
    bundle = str(ca_file) if given == "str" else ca_file
    async with arena_for(tls_arena, ssl=bundle) as arena:
        refs = await arena.items.tickets.list(item)
    assert len(refs) == 2
    assert wire_paths(tls_arena) == ["POST /login", f"GET /items/{item}/tickets",
                                     "PUT /logout"]


async def test_an_ssl_context_is_used_as_given(tls_arena: FakeArena, ca: trustme.CA) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    item = tls_arena.add_item()
    async with arena_for(tls_arena, ssl=context) as arena:
        assert await arena.items.tickets.list(item) == []


async def test_a_truststore_context_is_accepted_and_used(tls_arena: FakeArena) -> None:
    truststore = pytest.importorskip("truststore")
    context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # The OS trust store does not hold the test's CA: refused, by that store.
    async with arena_for(tls_arena, ssl=context) as arena:
        with pytest.raises(TLSCertificateError):
            await arena.items.tickets.list(tls_arena.add_item())


async def test_the_oauth_token_url_is_verified_with_the_bundle_too(
        tls_arena: FakeArena, ca_file: Path) -> None:
    item = tls_arena.add_item()
    async with ArenaClient(client_id=tls_arena.client_id,
                           client_secret=tls_arena.client_secret,
                           token_url=tls_arena.token_url, base_url=tls_arena.url,
                           ssl=str(ca_file)) as arena:
        assert await arena.items.tickets.list(item) == []
    assert tls_arena.token_url.startswith("https://")
    assert [r.path for r in tls_arena.requests] == ["/oauth/token", f"/v1/items/{item}/tickets"]


async def test_akana_takes_the_same_ssl(ca: trustme.CA, ca_file: Path) -> None:
    async with FakeAkana(ssl_context=loopback_cert(ca)) as fake:
        async with AkanaClient(base_url=fake.url, email=fake.email, password=fake.password,
                               ssl=str(ca_file)) as akana:
            assert isinstance(await akana.tickets.list(page_size=5, max_items=5), list)
        assert fake.url.startswith("https://")
        assert next(r.path for r in fake.requests) == "/api/login"


# -- TLS: the certificate refused -------------------------------------------------------

def assert_certificate_error(error: TLSCertificateError, problem: str) -> None:
    text = str(error)
    assert "certificate" in text
    assert problem in error.problem
    assert problem in text
    assert error.attempts == 1
    assert error.host.startswith("127.0.0.1:")


async def test_an_untrusted_certificate_fails_at_once_saying_how_to_fix_it(
        tls_arena: FakeArena, fake_clock: FakeClock) -> None:
    async with arena_for(tls_arena, sleep=fake_clock.sleep) as arena:  # the system's CAs
        with pytest.raises(TLSCertificateError) as info:
            await arena.items.tickets.list(tls_arena.add_item())
    error = info.value
    assert_certificate_error(error, "unable to get local issuer certificate")
    assert "not trusted" in str(error)
    for fix in FIXES:
        assert fix in str(error)
    assert error.brief == "certificate not trusted"
    assert str(error).startswith("login failed: the TLS certificate of 127.0.0.1:")
    assert str(error).endswith("(POST /login, 1 attempt)")
    assert isinstance(error, TransportError)
    assert fake_clock.sleeps == []  # never retried: it would be refused again
    assert tls_arena.requests == []  # nothing got past the handshake


async def test_a_self_signed_certificate_is_named_so(ca: trustme.CA, tmp_path: Path) -> None:
    # The CA's own certificate is self-signed: serving it is what a self-signed server does.
    pem = tmp_path / "self-signed.pem"
    pem.write_bytes(ca.private_key_pem.bytes() + ca.cert_pem.bytes())
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(pem))
    async with FakeArena(ssl_context=context) as fake, \
            ArenaClient(session_id="given", base_url=fake.url) as arena:
        with pytest.raises(TLSCertificateError) as info:
            await arena.items.tickets.list("ITEM1")
    assert_certificate_error(info.value, "self-signed certificate")
    assert str(info.value).endswith("(GET /items/ITEM1/tickets, 1 attempt)")


async def test_a_host_name_mismatch_says_which_host_and_how_to_fix(
        ca: trustme.CA, ca_file: Path) -> None:
    context = served_by(ca.issue_cert("arena.corp.example"))
    async with FakeArena(ssl_context=context) as fake, \
            arena_for(fake, ssl=str(ca_file)) as arena:
        with pytest.raises(TLSCertificateError) as info:
            await arena.items.tickets.list("ITEM1")
    error = info.value
    assert_certificate_error(error, "mismatch")
    assert "not valid for that host" in str(error)
    assert "host name the certificate names" in str(error)
    assert error.brief == "certificate host name mismatch"


async def test_an_expired_certificate_says_so(ca: trustme.CA, ca_file: Path) -> None:
    old = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    context = loopback_cert(ca, not_before=old - datetime.timedelta(days=30), not_after=old)
    async with FakeArena(ssl_context=context) as fake, \
            arena_for(fake, ssl=str(ca_file)) as arena:
        with pytest.raises(TLSCertificateError) as info:
            await arena.items.tickets.list("ITEM1")
    assert_certificate_error(info.value, "certificate has expired")
    assert "renew" in str(info.value)
    assert info.value.brief == "certificate expired"


async def test_an_untrusted_token_url_fails_the_same_way(tls_arena: FakeArena,
                                                         fake_clock: FakeClock) -> None:
    async with ArenaClient(client_id=tls_arena.client_id,
                           client_secret=tls_arena.client_secret,
                           token_url=tls_arena.token_url, base_url=tls_arena.url,
                           sleep=fake_clock.sleep) as arena:
        with pytest.raises(TLSCertificateError) as info:
            await arena.items.tickets.list("ITEM1")
    assert str(info.value).endswith("(POST /oauth/token, 1 attempt)")
    assert tls_arena.client_secret not in str(info.value)
    assert fake_clock.sleeps == []


async def test_a_certificate_error_pickles_with_its_fields(tls_arena: FakeArena) -> None:
    async with ArenaClient(session_id="given", base_url=tls_arena.url) as arena:
        with pytest.raises(TLSCertificateError) as info:
            await arena.items.tickets.list("ITEM1")
    copy = pickle.loads(pickle.dumps(info.value))
    assert (str(copy), copy.problem, copy.host, copy.attempts, copy.brief) == (
        str(info.value), info.value.problem, info.value.host, 1, info.value.brief)


async def test_verification_off_needs_allow_insecure(
        tls_arena: FakeArena, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ValueError, match="allow_insecure=True"):
        arena_for(tls_arena, ssl=False)
    item = tls_arena.add_item()
    async with arena_for(tls_arena, ssl=False, allow_insecure=True) as arena:
        assert await arena.items.tickets.list(item) == []
    assert [(r.name, r.levelname) for r in caplog.records
            if "verification is off" in r.getMessage()] == [("arena_async._transport", "WARNING")]


async def test_an_ssl_context_that_verifies_nothing_needs_allow_insecure(
        tls_arena: FakeArena) -> None:
    lax = ssl.create_default_context()
    lax.check_hostname = False
    with pytest.raises(ValueError, match="check_hostname"):
        arena_for(tls_arena, ssl=lax)
    lax.verify_mode = ssl.CERT_NONE
    with pytest.raises(ValueError, match="allow_insecure=True"):
        arena_for(tls_arena, ssl=lax)
    async with arena_for(tls_arena, ssl=lax, allow_insecure=True) as arena:
        assert await arena.items.tickets.list(tls_arena.add_item()) == []


# -- ssl=: bad values ---------------------------------------------------------------------

def test_a_missing_bundle_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ValueError, match=r"ssl: no CA bundle at '.*nope\.pem' \(no such file"):
        ArenaClient(session_id="s", ssl=str(missing))


def test_a_folder_is_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="is a folder"):
        ArenaClient(session_id="s", ssl=tmp_path)


def test_an_unreadable_bundle_is_named(tmp_path: Path) -> None:
    # Tests run as root, who can read anything: a bundle that cannot be read is a broken
    # symlink's kin, a file whose read fails: a FIFO with no writer would block, so a
    # path through a regular file (ENOTDIR) stands for "cannot read".
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match=r"ssl: .*file/ca\.pem"):
        ArenaClient(session_id="s", ssl=str(blocker / "ca.pem"))


def test_a_file_that_is_not_pem_is_refused(tmp_path: Path, ca: trustme.CA) -> None:
    der = tmp_path / "ca.cer"
    der.write_bytes(ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode()))
    with pytest.raises(ValueError, match=r"ca\.cer' is not a CA bundle in PEM"):
        ArenaClient(session_id="s", ssl=str(der))
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n"
                      "-----END CERTIFICATE-----\n")
    with pytest.raises(ValueError, match=r"broken\.pem' holds no usable PEM certificate"):
        AkanaClient(base_url="https://portal.example.com", email="a@b.c", password="p",
                    ssl=str(broken))


@pytest.mark.parametrize("value", [1, 0, "", b"/etc/ssl/ca.pem", object()])
def test_other_ssl_values_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="ssl"):
        ArenaClient(session_id="s", ssl=value)  # type: ignore[arg-type]


# -- proxies ------------------------------------------------------------------------------

async def test_every_request_goes_through_the_proxy(proxy: ForwardProxy) -> None:
    async with FakeArena() as fake:
        item = fake.add_item()
        fake.add_training_records(item, 3)
        async with arena_for(fake, proxy=proxy.url) as arena:
            await arena.items.tickets.list(item)
            assert len(await arena.items.training_records.list(item)) == 3
        forwarded = [f"{r.method} {r.target.removeprefix(fake.url)}" for r in proxy.requests]
        assert forwarded == ["POST /login", f"GET /items/{item}/tickets",
                             f"GET /items/{item}/trainingrecords?offset=0&limit=400",
                             "PUT /logout"]
        assert proxy.forwarded == len(fake.requests) == 4
        assert all(r.status == 200 for r in proxy.requests)


async def test_the_token_url_goes_through_the_proxy_too(proxy: ForwardProxy) -> None:
    async with FakeArena() as fake:
        item = fake.add_item()
        async with ArenaClient(client_id=fake.client_id, client_secret=fake.client_secret,
                               token_url=fake.token_url, base_url=fake.url,
                               proxy=proxy.url) as arena:
            await arena.items.tickets.list(item)
        assert [r.target for r in proxy.requests] == [fake.token_url,
                                                       f"{fake.url}/items/{item}/tickets"]


async def test_https_goes_through_a_connect_tunnel(tls_arena: FakeArena, ca_file: Path,
                                                   proxy: ForwardProxy) -> None:
    item = tls_arena.add_item()
    async with arena_for(tls_arena, proxy=proxy.url, ssl=str(ca_file)) as arena:
        await arena.items.tickets.list(item)
    host = tls_arena.url.removeprefix("https://").removesuffix("/v1")
    assert proxy.requests
    assert all(r == ProxiedRequest("CONNECT", host, 200, False)
                                  for r in proxy.requests)
    assert proxy.tunnels >= 1
    assert len(tls_arena.requests) == 3  # login, the call, logout: all inside tunnels


async def test_an_untrusted_certificate_behind_a_proxy_is_the_same_clear_error(
        tls_arena: FakeArena, proxy: ForwardProxy) -> None:
    # A TLS-inspecting proxy presents its own CA's certificates: the same error, the same fix.
    async with ArenaClient(session_id="given", base_url=tls_arena.url,
                           proxy=proxy.url) as arena:
        with pytest.raises(TLSCertificateError) as info:
            await arena.items.tickets.list("ITEM1")
    assert_certificate_error(info.value, "unable to get local issuer certificate")
    assert proxy.tunnels == 1


async def test_proxy_credentials_are_sent_and_never_shown(
        auth_proxy: ForwardProxy, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = auth_proxy.url_with_credentials
    assert PROXY_PASSWORD in url
    async with FakeArena() as fake:
        item = fake.add_item()
        client = arena_for(fake, proxy=url)
        async with client as arena:
            await arena.items.tickets.list(item)
            shown = [repr(client), str(client), repr(client._transport.network),
                     repr(client._transport.network.route_for(fake.url))]
        assert [r.authenticated for r in auth_proxy.requests] == [True] * 3
        # The proxy takes its header off before forwarding: the server never sees it.
        assert all("Proxy-Authorization" not in r.headers for r in fake.requests)
    for text in [*shown, caplog.text, repr(auth_proxy)]:
        assert PROXY_PASSWORD not in text
    assert "with credentials" in shown[2]


async def test_https_through_an_authenticating_proxy(tls_arena: FakeArena, ca_file: Path,
                                                     auth_proxy: ForwardProxy) -> None:
    item = tls_arena.add_item()
    async with arena_for(tls_arena, proxy=auth_proxy.url_with_credentials,
                         ssl=str(ca_file)) as arena:
        await arena.items.tickets.list(item)
    assert auth_proxy.tunnels >= 1
    assert all(r.authenticated for r in auth_proxy.requests)


@pytest.mark.parametrize("https", [False, True], ids=["absolute-form", "connect"])
async def test_refused_proxy_credentials_fail_at_once_without_the_password(
        auth_proxy: ForwardProxy, tls_arena: FakeArena, ca_file: Path, fake_clock: FakeClock,
        https: bool, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = auth_proxy.url_with_credentials.replace(PROXY_PASSWORD, "wrong-" + PROXY_PASSWORD)
    async with FakeArena() as plain:
        fake = tls_arena if https else plain
        async with arena_for(fake, proxy=wrong, ssl=str(ca_file) if https else None,
                             sleep=fake_clock.sleep) as arena:
            with pytest.raises(ProxyError) as info:
                await arena.items.tickets.list("ITEM1")
        assert fake.requests == []
    error = info.value
    assert error.status == 407
    assert "the proxy refused its credentials" in str(error)
    assert "proxy=" in str(error)
    assert error.attempts == 1
    assert error.brief == "proxy credentials refused"
    assert fake_clock.sleeps == []  # never retried: refused again
    assert auth_proxy.refused == 1
    for text in (str(error), repr(error), str(error.__cause__), repr(error.__cause__),
                 caplog.text, *getattr(error, "__notes__", [])):
        assert PROXY_PASSWORD not in text


async def test_an_unreachable_proxy_is_a_transport_error(fake_clock: FakeClock) -> None:
    async with ForwardProxy() as gone:
        url = gone.url
    host_port = url.removeprefix("http://")
    async with FakeArena() as fake, arena_for(
            fake, proxy=url.replace("http://", f"http://corp%5Csvc:{PROXY_PASSWORD}@"),
            sleep=fake_clock.sleep, retry=RetryPolicy(max_attempts=2)) as arena:
        with pytest.raises(TransportError) as info:
            await arena.items.tickets.list("ITEM1")
    assert info.value.brief == "proxy connection refused"
    assert info.value.attempts == 2
    assert fake.requests == []
    message = str(info.value)
    assert f"cannot connect to the proxy {host_port} named by proxy=: connection refused" \
        in message, message
    for text in (message, repr(info.value), *getattr(info.value, "__notes__", [])):
        assert PROXY_PASSWORD not in text
    assert "proxy connection refused" in info.value.__notes__[0]


@pytest.mark.parametrize("variable", ["http_proxy", "ALL_PROXY"])
async def test_an_unreachable_proxy_from_the_environment_names_the_variable(
        clean_env: pytest.MonkeyPatch, fake_clock: FakeClock, variable: str) -> None:
    async with ForwardProxy() as gone:
        url = gone.url
    clean_env.setenv(variable, url.replace("http://", f"http://svc:{PROXY_PASSWORD}@"))
    async with FakeAkana() as fake, AkanaClient(
            base_url=fake.url, email=fake.email, password=fake.password, trust_env=True,
            sleep=fake_clock.sleep, retry=RetryPolicy(max_attempts=1)) as akana:
        with pytest.raises(TransportError) as info:
            await akana.tickets.list()
    message = str(info.value)
    assert f"the proxy {url.removeprefix('http://')} named by {variable} (trust_env=True): " \
        "connection refused" in message, message
    assert PROXY_PASSWORD not in message + repr(info.value)
    assert fake.requests == []


async def test_an_unreachable_proxy_of_a_given_session_says_so(fake_clock: FakeClock) -> None:
    async with ForwardProxy() as gone:
        url = gone.url
    async with FakeArena() as fake, aiohttp.ClientSession(proxy=url) as session, arena_for(
            fake, session=session, sleep=fake_clock.sleep,
            retry=RetryPolicy(max_attempts=1)) as arena:
        with pytest.raises(TransportError) as info:
            await arena.items.tickets.list("ITEM1")
    assert f"cannot connect to the proxy {url.removeprefix('http://')} named by the settings " \
        "of the session given to the client: connection refused" in str(info.value)
    assert fake.requests == []


async def test_an_unreachable_https_proxy_names_https_proxy(
        clean_env: pytest.MonkeyPatch, fake_clock: FakeClock, tls_arena: FakeArena,
        ca_file: Path) -> None:
    async with ForwardProxy() as gone:
        url = gone.url
    clean_env.setenv("HTTPS_PROXY", url.replace("http://", f"http://svc:{PROXY_PASSWORD}@"))
    clean_env.setenv("SSL_CERT_FILE", str(ca_file))
    async with arena_for(tls_arena, trust_env=True, sleep=fake_clock.sleep,
                         retry=RetryPolicy(max_attempts=1)) as arena:
        with pytest.raises(TransportError) as info:
            await arena.items.tickets.list("ITEM1")
    message = str(info.value)
    assert f"the proxy {url.removeprefix('http://')} named by HTTPS_PROXY (trust_env=True): " \
        "connection refused" in message, message
    assert PROXY_PASSWORD not in message + repr(info.value)
    assert tls_arena.requests == []


async def test_akana_goes_through_the_proxy(proxy: ForwardProxy) -> None:
    async with FakeAkana() as fake:
        async with AkanaClient(base_url=fake.url, email=fake.email, password=fake.password,
                               proxy=proxy.url) as akana:
            await akana.tickets.list(max_items=1)
        assert [r.target.removeprefix(fake.url).partition("?")[0] for r in proxy.requests] \
            == ["/api/login", "/api/tickets", "/api/login/endsession"]
        assert proxy.forwarded == len(fake.requests)


@pytest.mark.parametrize(("value", "message"), [
    ("https://proxy.corp:3128", "must be an http:// proxy URL"),
    ("socks5://proxy.corp:1080", "must be an http:// proxy URL"),
    ("proxy.corp:3128", "must be an http:// proxy URL"),
    ("http://", "has no host"),
    ("http://proxy.corp:99999", "bad port"),
    ("http://proxy.corp:3128/path", "only http://"),
    ("http://proxy.corp:3128?x=1", "only http://"),
    ("http://proxy.corp:3128\r\nX-Evil: 1", "control characters"),
    ("http://proxy .corp:3128", "control characters"),
    (3128, "a string"),
])
def test_bad_proxy_urls_are_refused(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ArenaClient(session_id="s", proxy=value)  # type: ignore[arg-type]


def test_a_bad_proxy_url_never_shows_its_password() -> None:
    for bad in (f"https://user:{PROXY_PASSWORD}@proxy.corp:3128",
                f"http://user:{PROXY_PASSWORD}@proxy.corp:99999",
                f"http://user:{PROXY_PASSWORD}@proxy.corp:3128/x"):
        with pytest.raises(ValueError) as info:
            ArenaClient(session_id="s", proxy=bad)
        assert PROXY_PASSWORD not in str(info.value)
        assert "proxy.corp" in str(info.value)


# -- trust_env ------------------------------------------------------------------------------

async def test_trust_env_reads_https_proxy_and_ssl_cert_file(
        clean_env: pytest.MonkeyPatch, tls_arena: FakeArena, ca_file: Path,
        auth_proxy: ForwardProxy) -> None:
    clean_env.setenv("HTTPS_PROXY", auth_proxy.url_with_credentials)
    clean_env.setenv("SSL_CERT_FILE", str(ca_file))
    item = tls_arena.add_item()
    async with arena_for(tls_arena, trust_env=True) as arena:
        await arena.items.tickets.list(item)
    assert auth_proxy.tunnels >= 1
    assert all(r.authenticated for r in auth_proxy.requests)
    assert len(tls_arena.requests) == 3


async def test_without_trust_env_the_environment_is_ignored(
        clean_env: pytest.MonkeyPatch, proxy: ForwardProxy, ca_file: Path) -> None:
    clean_env.setenv("HTTP_PROXY", proxy.url)
    clean_env.setenv("SSL_CERT_FILE", str(ca_file))
    async with FakeArena() as fake, arena_for(fake) as arena:
        await arena.items.tickets.list(fake.add_item())
    assert proxy.requests == []


async def test_no_proxy_sends_its_hosts_direct(clean_env: pytest.MonkeyPatch,
                                               proxy: ForwardProxy) -> None:
    async with FakeArena() as fake:
        clean_env.setenv("http_proxy", proxy.url)
        item = fake.add_item()
        for no_proxy, proxied in (("example.com,127.0.0.1", False),
                                  (f"localhost,127.0.0.1:{fake.port + 1}", True),
                                  (f"127.0.0.1:{fake.port}", False),
                                  ("127.0.0.0/8", False), ("*", False), ("", True)):
            clean_env.setenv("NO_PROXY", no_proxy)
            proxy.clear()
            async with ArenaClient(session_id="given", base_url=fake.url,
                                   trust_env=True) as arena:
                with pytest.raises(Exception):  # noqa: B017 - the fake refuses the session
                    await arena.items.tickets.list(item)
            assert bool(proxy.requests) is proxied, no_proxy


async def test_an_explicit_proxy_wins_over_the_environment(
        clean_env: pytest.MonkeyPatch, proxy: ForwardProxy) -> None:
    clean_env.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    async with FakeArena() as fake, arena_for(fake, proxy=proxy.url, trust_env=True) as arena:
        await arena.items.tickets.list(fake.add_item())
    assert proxy.forwarded == 3


async def test_http_proxy_is_ignored_in_a_cgi_request(clean_env: pytest.MonkeyPatch,
                                                      proxy: ForwardProxy) -> None:
    # httpoxy: in a CGI script, HTTP_PROXY may come from the request's Proxy: header.
    clean_env.setenv("REQUEST_METHOD", "GET")
    clean_env.setenv("HTTP_PROXY", proxy.url)
    async with FakeArena() as fake, arena_for(fake, trust_env=True) as arena:
        await arena.items.tickets.list(fake.add_item())
    assert proxy.requests == []


def test_bad_environment_values_fail_at_construction_naming_the_variable(
        clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("HTTPS_PROXY", f"https://u:{PROXY_PASSWORD}@proxy.corp:3128")
    with pytest.raises(ValueError, match=r"HTTPS_PROXY \(trust_env=True\)") as info:
        ArenaClient(session_id="s", trust_env=True)
    assert PROXY_PASSWORD not in str(info.value)
    ArenaClient(session_id="s")  # without trust_env: not read at all
    clean_env.delenv("HTTPS_PROXY")
    clean_env.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ValueError, match=r"SSL_CERT_FILE \(trust_env=True\): no CA bundle"):
        ArenaClient(session_id="s", trust_env=True)
    # ssl= given: the environment's CA file is not used (nor checked).
    ArenaClient(session_id="s", trust_env=True, ssl=True)
    clean_env.delenv("SSL_CERT_FILE")
    clean_env.setenv("SSL_CERT_DIR", str(tmp_path / "no-dir"))
    with pytest.raises(ValueError, match=r"SSL_CERT_DIR .*is not a folder"):
        ArenaClient(session_id="s", trust_env=True)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs 'openssl rehash'")
async def test_ssl_cert_dir_is_honoured(clean_env: pytest.MonkeyPatch, tls_arena: FakeArena,
                                        ca: trustme.CA, tmp_path: Path) -> None:
    folder = tmp_path / "certs"
    folder.mkdir()
    ca.cert_pem.write_to_path(str(folder / "corp.pem"))
    subprocess.run(["openssl", "rehash", str(folder)], check=True, capture_output=True)
    clean_env.setenv("SSL_CERT_DIR", str(folder))
    async with arena_for(tls_arena, trust_env=True) as arena:
        assert await arena.items.tickets.list(tls_arena.add_item()) == []


def test_trust_env_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match="trust_env must be True or False"):
        ArenaClient(session_id="s", trust_env="yes")  # type: ignore[arg-type]


# -- a caller's session --------------------------------------------------------------------

@pytest.mark.parametrize("given", [{"ssl": "/etc/ca.pem"}, {"ssl": False},
                                   {"proxy": "http://proxy.corp:3128"}, {"trust_env": True}])
async def test_with_a_callers_session_configure_that_session(given: dict[str, Any]) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        for make in (lambda: ArenaClient(session_id="s", session=session, **given),
                     lambda: AkanaClient(base_url="https://portal.example.com", email="a@b.c",
                                         password="p", session=session, **given)):
            with pytest.raises(ValueError, match="configure your session"):
                make()


async def test_a_request_the_proxy_refused_spends_no_quota(fake_clock: FakeClock) -> None:
    # The proxy answered instead of passing the request on: Arena never saw it, so the
    # quota estimate must not count it (or the client would stop early, thinking it spent).
    async with FakeArena(quota_limit=4, clock=fake_clock) as fake:
        item = fake.add_item()
        right = ForwardProxy(username="u", password=PROXY_PASSWORD)
        await right.start()
        port = int(right.url.rsplit(":", 1)[1])
        async with arena_for(fake, proxy=right.url_with_credentials, clock=fake_clock,
                             sleep=fake_clock.sleep, quota=QuotaPolicy()) as arena:
            await arena.items.tickets.list(item)  # login (free) and 1 request: 3 left
            await right.close()
            async with ForwardProxy(port=port, username="u", password="changed") as wrong:
                for _ in range(5):
                    with pytest.raises(ProxyError):
                        await arena.items.tickets.list(item)
                assert wrong.refused == 5
            async with ForwardProxy(port=port, username="u", password=PROXY_PASSWORD):
                for _ in range(3):  # all 3 left are still there
                    await arena.items.tickets.list(item)
        assert fake.quota_remaining == 0
        assert fake.stats.quota_exhausted == 0


async def test_akana_login_through_a_refusing_proxy_is_a_proxy_error(
        auth_proxy: ForwardProxy, fake_clock: FakeClock) -> None:
    async with FakeAkana() as fake:
        wrong = auth_proxy.url_with_credentials.replace(PROXY_PASSWORD, "nope")
        async with AkanaClient(base_url=fake.url, email=fake.email, password=fake.password,
                               proxy=wrong, sleep=fake_clock.sleep) as akana:
            with pytest.raises(ProxyError) as info:
                await akana.tickets.list(max_items=1)
        assert fake.requests == []
    assert str(info.value).endswith("(POST /api/login, 1 attempt)")
    assert fake_clock.sleeps == []


@pytest.mark.parametrize(("host", "port", "no_proxy", "direct"), [
    ("api.arenasolutions.com", 443, "arenasolutions.com", True),
    ("api.arenasolutions.com", 443, ".arenasolutions.com", True),
    ("api.arenasolutions.com", 443, "ARENASOLUTIONS.COM.", True),
    ("notarenasolutions.com", 443, "arenasolutions.com", False),
    ("api.arenasolutions.com", 443, "api.arenasolutions.com:443", True),
    ("api.arenasolutions.com", 443, "api.arenasolutions.com:8443", False),
    ("10.1.2.3", 443, "10.0.0.0/8", True),
    ("10.1.2.3", 443, "10.1.2.3", True),
    ("10.1.2.3", 443, "192.168.0.0/16, 10.1.2.4", False),
    ("::1", 443, "::1", True),
    ("::1", 8443, "[::1]:8443", True),
    ("fd00::5", 443, "fd00::/8", True),
    ("portal.corp", 443, "localhost,  portal.corp ", True),
    ("portal.corp", 443, "", False),
    ("anything", 1, "*", True),
])
def test_no_proxy_entries(host: str, port: int, no_proxy: str, direct: bool) -> None:
    from arena_async._network import _bypassed

    assert _bypassed(host, port, no_proxy) is direct
