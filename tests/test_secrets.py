"""No password, session id, token or CSRF value in logs, reprs, messages or tracebacks.

Whole sessions run with every logger at DEBUG (the root, arena_async's, aiohttp's and
asyncio's): login, requests, a 401 and a re-login, errors of each kind, a refused login
and the logout. Every secret the servers issued is read back from what the fakes
recorded, then searched for (raw, percent-encoded and JSON-escaped) in every log record
(message, arguments and formatted traceback) and in the ``str``, ``repr`` and
``traceback.format_exception`` text of clients, auth objects, errors and models.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterable
from urllib.parse import quote, unquote

import pytest

from arena_async import (
    AkanaClient,
    ArenaAsyncError,
    ArenaClient,
    BadRequestError,
    LoginError,
    ResponseFormatError,
    RetryPolicy,
    ServerError,
    TransportError,
)
from arena_async.testing import FakeAkana, FakeArena, Fault
from arena_async.testing._fake_akana import FakeUser
from tests.conftest import FakeClock

PASSWORD = "S3cret-Pa55word!"
WRONG = "Wr0ng-Pa55word!"
LOGGERS = ("", "arena_async", "aiohttp", "aiohttp.client", "aiohttp.internal",
           "aiohttp.server", "aiohttp.web", "aiohttp.access", "asyncio")
FORMAT = logging.Formatter("%(name)s %(levelname)s %(message)s")


def capture_everything(caplog: pytest.LogCaptureFixture) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)


def forms(secret: str) -> set[str]:
    """The ways a secret could show up in text."""
    return {secret, quote(secret, safe=""), json.dumps(secret)[1:-1], unquote(secret)}


def texts(caplog: pytest.LogCaptureFixture, exposed: Iterable[object]) -> list[str]:
    found = []
    for record in caplog.records:
        found += [FORMAT.format(record), repr(record.args), str(record.msg)]
    for thing in exposed:
        found += [str(thing), repr(thing)]
        if isinstance(thing, BaseException):
            found.append("".join(traceback.format_exception(thing)))
    return found


def leaks(secrets: set[str], found: list[str]) -> list[tuple[str, str]]:
    return [(s, t[:300]) for s in secrets for f in forms(s) for t in found if f in t]


async def run_arena_session(fake: FakeArena, exposed: list[object]) -> None:
    a, b = fake.item_guids[:2]
    clock = FakeClock()
    async with ArenaClient(email=fake.email, password=PASSWORD, workspace_id=fake.workspace_id,
                           base_url=fake.url, retry=RetryPolicy(max_attempts=2),
                           sleep=clock.sleep, timeout=0.2) as arena:
        exposed += [arena, arena._auth, arena._transport]
        exposed += await arena.items.tickets.list(a)
        link = await arena.items.references.create(a, b, note="see also")
        exposed += [link, await arena.items.references.update(a, link.guid, note=None)]
        await arena.items.references.delete(a, link.guid)
        exposed += [r async for r in arena.items.training_records.iter(a, page_size=2)]
        fake.expire_sessions()  # the next request meets 401 and logs in again
        exposed += await arena.items.tickets.list(b)
        faults = [("status", ServerError), ("truncate", TransportError),
                  ("reset_before_headers", TransportError),
                  ("invalid_json", ResponseFormatError), ("slow_headers", TransportError)]
        for kind, error in faults:
            fault = fake.faults.add(Fault(kind, delay=0.5, path="/tickets$"))
            with pytest.raises(error) as info:
                await arena.items.tickets.list(a)
            exposed.append(info.value)
            fake.faults.remove(fault)
        with pytest.raises(BadRequestError) as bad:
            await arena.items.tickets.list("NOSUCHITEMNOSUCHITEM")
        exposed.append(bad.value)
        fake.faults.add(Fault("status", status=502, path="/trainingrecords$"))
        with pytest.raises(ArenaAsyncError) as listing:
            await arena.items.training_records.list(a)
        exposed += [listing.value, arena._auth.login, arena.stats, arena.quota]
    async with ArenaClient(email=fake.email, password=WRONG, base_url=fake.url) as refused:
        with pytest.raises(LoginError) as login:
            await refused.items.tickets.list(a)
        exposed += [refused, refused._auth, login.value]
    session_id = next(r.headers["arena_session_id"] for r in fake.requests if r.has_session)
    async with ArenaClient(session_id=session_id, base_url=fake.url) as given:
        exposed += [given, given._auth]


async def test_arena_secrets_stay_out_of_logs_reprs_and_errors(
        caplog: pytest.LogCaptureFixture) -> None:
    capture_everything(caplog)
    exposed: list[object] = []
    async with FakeArena.seeded(items=5, seed=1, password=PASSWORD) as fake:
        await run_arena_session(fake, exposed)
        session_ids = {r.headers["arena_session_id"] for r in fake.requests if r.has_session}
        assert fake.stats.logins == 2
        assert fake.stats.failed_logins == 1
        assert fake.stats.logouts == 1
        assert fake.stats.unauthorized >= 1
    assert len(session_ids) == 2  # the first session and the one after the re-login
    secrets = {PASSWORD, WRONG} | session_ids
    found = texts(caplog, exposed)
    assert len(caplog.records) > 20  # DEBUG really was captured
    assert any("retrying GET" in t for t in found)
    assert leaks(secrets, found) == []
    # The check can fail: a secret in any of these places would be found.
    assert leaks(secrets, [f"x {quote(next(iter(session_ids)), safe='')} x"]) != []


async def test_akana_secrets_stay_out_of_logs_reprs_and_errors(
        caplog: pytest.LogCaptureFixture) -> None:
    capture_everything(caplog)
    exposed: list[object] = []
    me = FakeUser("me@acmepaymentscorp.example", PASSWORD, "u1.acmepaymentscorp", "me")
    async with FakeAkana.seeded(tickets=30, seed=1, users=[me], csrf_on_reads=True) as fake:
        clock = FakeClock()
        async with AkanaClient(base_url=fake.url, email=me.email, password=PASSWORD,
                               retry=RetryPolicy(max_attempts=2), sleep=clock.sleep,
                               timeout=0.2) as akana:
            exposed += [akana, akana._auth, akana._transport]
            tickets = [t async for t in akana.tickets.iter(page_size=7)]
            exposed += [*tickets[:3], await akana.tickets.get(tickets[0].ticket_id)]
            fake.expire_tokens()  # 401, then a re-login
            exposed.append(await akana.tickets.get(tickets[1].ticket_id))
            for kind, error in [("status", ServerError), ("truncate", TransportError),
                                ("slow_headers", TransportError),
                                ("invalid_json", ResponseFormatError)]:
                fault = fake.faults.add(Fault(kind, delay=0.5, path="/api/tickets"))
                with pytest.raises(error) as info:
                    await akana.tickets.list(max_items=3)
                exposed.append(info.value)
                fake.faults.remove(fault)
            with pytest.raises(ArenaAsyncError) as missing:
                await akana.tickets.get("ticket1.acmepaymentscorp")
            exposed += [missing.value, akana._auth.login, akana.stats]
        async with AkanaClient(base_url=fake.url, email=me.email, password=WRONG) as refused:
            with pytest.raises(LoginError) as login:
                await refused.tickets.list(max_items=1)
            exposed += [refused, refused._auth, login.value]
        tokens = {r.cookies[fake.auth_cookie] for r in fake.requests
                  if fake.auth_cookie in r.cookies}
        csrfs = {r.headers[fake.csrf_header] for r in fake.requests
                 if fake.csrf_header in r.headers}
        given_token = next(iter(tokens))
        async with AkanaClient(base_url=fake.url, auth_token=given_token,
                               tenant=fake.tenant, csrf_token=next(iter(csrfs))) as given:
            exposed += [given, given._auth]
        assert fake.stats.logins == 2
        assert fake.stats.endsessions == 1
    assert len(tokens) == 2
    assert len(csrfs) == 2
    secrets = {PASSWORD, WRONG} | tokens | csrfs
    found = texts(caplog, exposed)
    assert len(caplog.records) > 20
    assert leaks(secrets, found) == []
    assert leaks(secrets, [f"Cookie: x={given_token}"]) != []


def test_secret_arguments_are_not_echoed_by_refusals() -> None:
    """A refused constructor argument never shows a secret in its message."""
    for make in (
        lambda: ArenaClient(email="me@example.com", password=PASSWORD,
                            base_url="http://arena.example.com/v1"),
        lambda: AkanaClient(base_url="https://portal.example.com", auth_token=f"{PASSWORD} x",
                            tenant="acme"),
    ):
        with pytest.raises(ValueError) as info:
            make()
        text = "".join(traceback.format_exception(info.value))
        assert PASSWORD not in text


