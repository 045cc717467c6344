"""``trace_configs=``: aiohttp tracing (and OpenTelemetry through it) on the client's own
session, so observability keeps the send-once guarantee that ``session=`` gives up.

Checked with OpenTelemetry's aiohttp client instrumentation (``create_trace_config``) and
an in-memory span exporter, over real loopback HTTP to the fakes: one span per attempt
(a retried request shows two, a refused connection one per try), and no password,
session id, bearer token, client secret, cookie or CSRF value in any span's name,
attributes, events or status.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import pytest

from arena_async import AkanaClient, APIError, ArenaClient, RetryPolicy, TransportError
from arena_async.testing import FakeAkana, FakeArena, Fault
from arena_async.testing._fake_akana import FakeUser
from tests.conftest import FakeClock

otel_sdk_trace = pytest.importorskip(
    "opentelemetry.sdk.trace",
    reason="opentelemetry-sdk is in the dev extra: pip install -e '.[dev]'")
otel_export = pytest.importorskip("opentelemetry.sdk.trace.export")
otel_memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
otel_aiohttp = pytest.importorskip(
    "opentelemetry.instrumentation.aiohttp_client",
    reason="opentelemetry-instrumentation-aiohttp-client is in the dev extra")

PASSWORD = "S3cret-Pa55word!"
TICKETS = r"/tickets$"


class Spans:
    """A tracer provider of its own (no global state) exporting to memory."""

    def __init__(self) -> None:
        self.exporter = otel_memory.InMemorySpanExporter()
        self.provider = otel_sdk_trace.TracerProvider()
        self.provider.add_span_processor(otel_export.SimpleSpanProcessor(self.exporter))

    def trace_config(self) -> aiohttp.TraceConfig:
        config: aiohttp.TraceConfig = otel_aiohttp.create_trace_config(
            tracer_provider=self.provider)
        return config

    def finished(self) -> list[Any]:
        return list(self.exporter.get_finished_spans())

    def texts(self) -> list[str]:
        """Everything a span carries, as text."""
        found: list[str] = []
        for span in self.finished():
            found += [span.name, str(span.status.description or "")]
            found += [f"{k}={v}" for k, v in (span.attributes or {}).items()]
            for event in span.events:
                found.append(event.name)
                found += [f"{k}={v}" for k, v in (event.attributes or {}).items()]
            found += [f"{k}={v}" for k, v in span.resource.attributes.items()]
        return found


def paths(spans: Iterable[Any]) -> list[str]:
    """``METHOD path`` of each span, from its URL attribute (old or new convention)."""
    out = []
    for span in spans:
        attrs = span.attributes or {}
        url = str(attrs.get("url.full") or attrs.get("http.url"))
        method = str(attrs.get("http.request.method") or attrs.get("http.method"))
        out.append(f"{method} {urlsplit(url).path}")
    return out


def statuses(spans: Iterable[Any]) -> list[object]:
    return [(s.attributes or {}).get("http.response.status_code",
                                     (s.attributes or {}).get("http.status_code"))
            for s in spans]


def forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}


def leaks(secrets: set[str], found: list[str]) -> list[tuple[str, str]]:
    return [(s, t[:200]) for s in secrets for f in forms(s) for t in found if f in t]


async def test_one_span_per_attempt_and_a_retry_shows_two() -> None:
    spans = Spans()
    clock = FakeClock()
    async with FakeArena.seeded(items=1, seed=1) as fake:
        guid = fake.item_guids[0]
        fake.faults.add(Fault("status", status=503, path=TICKETS, times=1))
        async with ArenaClient(email=fake.email, password=fake.password,
                               workspace_id=fake.workspace_id, base_url=fake.url,
                               sleep=clock.sleep, trace_configs=[spans.trace_config()]) as arena:
            refs = await arena.items.tickets.list(guid)
            assert arena.stats.retries == 1
        assert len(refs) == len(fake.ticket_refs(guid))
        received = [f"{r.method} {r.path}" for r in fake.requests]
    got = spans.finished()
    # Exactly what reached the server, one span each: the login, the 503, the retry, the
    # logout.
    assert sorted(paths(got)) == sorted(received)
    assert paths(got).count(f"GET /v1/items/{guid}/tickets") == 2
    tickets = [s for s in got if s.name.startswith("GET") and "tickets" in paths([s])[0]]
    assert sorted(statuses(tickets), key=str) == [200, 503]
    assert len(received) == 4


async def test_a_refused_connection_is_a_span_per_try() -> None:
    """Attempts that never reached a server are spans too (with the error recorded)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spans = Spans()
    clock = FakeClock()
    async with ArenaClient(session_id="GIVEN-SESSION-0123456789",
                           base_url=f"http://127.0.0.1:{port}/v1",
                           retry=RetryPolicy(max_attempts=3), sleep=clock.sleep,
                           trace_configs=[spans.trace_config()]) as arena:
        with pytest.raises(TransportError) as info:
            await arena.items.tickets.list("ABCDEFGHIJKLMNOPQRST")
    assert info.value.attempts == 3
    got = spans.finished()
    assert len(got) == 3
    assert all(span.status.status_code.name == "ERROR" for span in got)
    assert leaks({"GIVEN-SESSION-0123456789"}, spans.texts()) == []


async def test_arena_spans_hold_no_password_session_id_token_or_secret() -> None:
    spans = Spans()
    clock = FakeClock()
    async with FakeArena.seeded(items=2, seed=1, password=PASSWORD) as fake:
        a = fake.item_guids[0]
        b = fake.add_item(number="PN-TRACED")
        fake.add_oauth_client("machine-user", "Cl1ent-S3cret-value")
        async with ArenaClient(email=fake.email, password=PASSWORD,
                               workspace_id=fake.workspace_id, base_url=fake.url,
                               sleep=clock.sleep, trace_configs=[spans.trace_config()]) as arena:
            await arena.items.tickets.list(a)
            fake.expire_sessions()  # a 401, then a re-login: a second session id
            link = await arena.items.references.create(a, b, note="traced")
            await arena.items.references.delete(a, link.guid)
            with pytest.raises(APIError):  # an error answer is traced like any other
                await arena.items.tickets.get(a, "NOSUCHASSOCIATION000")
        async with ArenaClient(client_id="machine-user", client_secret="Cl1ent-S3cret-value",
                               token_url=fake.token_url, base_url=fake.url,
                               trace_configs=[spans.trace_config()]) as machine:
            await machine.items.tickets.list(a)
        session_ids = {r.headers["arena_session_id"] for r in fake.requests if r.has_session}
        tokens = {r.headers["Authorization"].split(" ", 1)[1] for r in fake.requests
                  if r.headers.get("Authorization", "").startswith("Bearer ")}
        sent = len(fake.requests)
    assert len(session_ids) == 2
    assert len(tokens) == 1
    found = spans.texts()
    assert len(spans.finished()) == sent  # nothing sent untraced
    assert leaks({PASSWORD, "Cl1ent-S3cret-value"} | session_ids | tokens, found) == []
    # The search can find what it looks for.
    assert leaks(session_ids, [f"x={next(iter(session_ids))}"]) != []


async def test_akana_spans_hold_no_password_token_cookie_or_csrf_value() -> None:
    spans = Spans()
    me = FakeUser("traced@example.com", PASSWORD, user_id="u1.acmepaymentscorp",
                  name="Traced", admin=True)
    async with FakeAkana.seeded(tickets=30, seed=1, users=[me], csrf_on_reads=True) as fake:
        async with AkanaClient(base_url=fake.url, email=me.email, password=PASSWORD,
                               trace_configs=[spans.trace_config()]) as akana:
            got = await akana.tickets.list(page_size=10)
            fake.expire_tokens()  # a 401, then a re-login: a second token and CSRF value
            await akana.tickets.get(got[0].ticket_id)
        tokens = {r.cookies[fake.auth_cookie] for r in fake.requests
                  if fake.auth_cookie in r.cookies}
        csrfs = {r.headers[fake.csrf_header] for r in fake.requests
                 if fake.csrf_header in r.headers}
        sent = len(fake.requests)
    assert len(tokens) == 2
    assert len(csrfs) == 2
    assert len(spans.finished()) == sent
    assert leaks({PASSWORD} | tokens | csrfs, spans.texts()) == []


async def test_a_plain_aiohttp_trace_config_sees_every_attempt() -> None:
    """Any ``aiohttp.TraceConfig`` works the same way (here: counting request starts and
    the connections made)."""
    starts: list[str] = []
    config = aiohttp.TraceConfig()

    async def on_start(session: aiohttp.ClientSession, ctx: SimpleNamespace,
                       params: aiohttp.TraceRequestStartParams) -> None:
        starts.append(f"{params.method} {params.url.path}")

    config.on_request_start.append(on_start)
    clock = FakeClock()
    async with FakeArena.seeded(items=1, seed=1) as fake:
        guid = fake.item_guids[0]
        fake.faults.add(Fault("reset_before_headers", path=TICKETS, times=1))
        async with ArenaClient(email=fake.email, password=fake.password,
                               workspace_id=fake.workspace_id, base_url=fake.url,
                               sleep=clock.sleep, trace_configs=(config,)) as arena:
            await arena.items.tickets.list(guid)
        # The reset attempt was sent once (the send-once guarantee: no unseen re-send).
        assert starts.count(f"GET /v1/items/{guid}/tickets") == 2
        assert len(starts) == len(fake.requests)


def test_trace_configs_are_checked_before_anything_is_sent() -> None:
    config = aiohttp.TraceConfig()
    with pytest.raises(ValueError, match=r"trace_configs must be a list of aiohttp\.TraceConfig"):
        ArenaClient(session_id="S", trace_configs=config)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"trace_configs must hold aiohttp\.TraceConfig"):
        AkanaClient(base_url="https://portal.example.com", email="e@x", password="p",
                    trace_configs=[object()])  # type: ignore[list-item]
    assert ArenaClient(session_id="S", trace_configs=None) is not None
    assert ArenaClient(session_id="S", trace_configs=[]) is not None


async def test_trace_configs_with_a_callers_session_is_refused() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="give them to that session"):
            ArenaClient(session_id="S", session=session, trace_configs=[aiohttp.TraceConfig()])
        with pytest.raises(ValueError, match="give them to that session"):
            AkanaClient(base_url="https://portal.example.com", email="e@x", password="p",
                        session=session, trace_configs=[aiohttp.TraceConfig()])
