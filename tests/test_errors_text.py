"""What errors say (issue 14, item 5), over real loopback HTTP.

- A failure repeated over several attempts is said once, with the real attempt count; the
  note that lists the attempts is compact (``1: login: connection refused; 2-4: the
  same``), never the same long text again per attempt.
- A login refused while listing carries no resume hint (nothing was listed).
- A client used from another event loop than the one it was opened on raises a
  RuntimeError naming the cause and the cure, not a bare "Event loop is closed".
"""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from arena_async import (
    AkanaClient,
    ArenaClient,
    AuthenticationError,
    LoginError,
    RetryPolicy,
    ServerError,
    TransportError,
)
from arena_async.testing import FakeAkana, FakeArena, Fault
from tests.conftest import FakeClock

GUID = "ABCDEFGHIJKLMNOPQRST"


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- a failure repeated over the attempts is said once ---------------------------------

async def test_a_refused_login_says_so_once_with_the_real_attempt_count() -> None:
    port = closed_port()
    clock = FakeClock()
    async with ArenaClient(email="me@example.com", password="pw", workspace_id=1,
                           base_url=f"http://127.0.0.1:{port}/v1", sleep=clock.sleep) as arena:
        with pytest.raises(TransportError) as info:
            await arena.items.tickets.list(GUID)
    exc = info.value
    assert exc.attempts == 4
    assert str(exc) == (f"login failed: cannot connect to 127.0.0.1:{port}: connection "
                        "refused (ClientConnectorError) (POST /login, 4 attempts)")
    assert exc.__notes__ == ["attempts: 1: login: connection refused; 2-4: the same"]
    assert exc.brief == "connection refused"
    assert len(clock.sleeps) == 3  # backoffs between the four tries


async def test_akana_login_refused_connection_is_said_once_too() -> None:
    port = closed_port()
    clock = FakeClock()
    async with AkanaClient(base_url=f"http://127.0.0.1:{port}", email="me@example.com",
                           password="pw", sleep=clock.sleep,
                           retry=RetryPolicy(max_attempts=2)) as akana:
        with pytest.raises(TransportError) as info:
            await akana.tickets.get("ticket1.acme")
    text = str(info.value)
    assert text.count("connection refused") == 1
    assert "failed: failed" not in text
    assert text.endswith("(POST /api/login, 2 attempts)")
    assert info.value.__notes__ == ["attempts: 1: login: connection refused; 2: the same"]


async def test_a_refused_request_lists_its_attempts_compactly() -> None:
    port = closed_port()
    clock = FakeClock()
    async with ArenaClient(session_id="GIVEN-SESSION", base_url=f"http://127.0.0.1:{port}/v1",
                           sleep=clock.sleep, retry=RetryPolicy(max_attempts=3)) as arena:
        with pytest.raises(TransportError) as info:
            await arena.items.tickets.list(GUID)
    assert str(info.value) == (
        f"request failed: cannot connect to 127.0.0.1:{port}: connection refused "
        f"(ClientConnectorError) (GET /items/{GUID}/tickets, 3 attempts)")
    assert info.value.__notes__ == ["attempts: 1: connection refused; 2-3: the same"]


async def test_transient_login_answers_count_as_attempts_in_the_message() -> None:
    clock = FakeClock()
    async with FakeArena.seeded(items=1, seed=1) as fake:
        fake.faults.add(Fault("status", status=503, path=r"/login$"))
        async with ArenaClient(email=fake.email, password=fake.password,
                               workspace_id=fake.workspace_id, base_url=fake.url,
                               sleep=clock.sleep) as arena:
            with pytest.raises(ServerError) as info:
                await arena.items.tickets.list(fake.item_guids[0])
        assert len(fake.requests) == 4
    assert info.value.attempts == 4
    assert str(info.value).startswith("HTTP 503 from POST /login")
    assert str(info.value).endswith("(after 4 attempts)")
    assert info.value.__notes__ == ["attempts: 1: login: HTTP 503; 2-4: the same"]


async def test_different_failures_are_each_listed_in_order() -> None:
    clock = FakeClock()
    async with FakeArena.seeded(items=1, seed=1) as fake:
        guid = fake.item_guids[0]
        async with ArenaClient(email=fake.email, password=fake.password,
                               workspace_id=fake.workspace_id, base_url=fake.url,
                               sleep=clock.sleep, retry=RetryPolicy(max_attempts=5),
                               timeout=5.0) as arena:
            await arena.items.tickets.list(guid)  # logged in
            fake.faults.add(Fault("status", status=503, path=r"/tickets$", times=2))
            fake.faults.add(Fault("reset_before_headers", path=r"/tickets$", times=1))
            fake.faults.add(Fault("status", status=502, path=r"/tickets$"))
            with pytest.raises(ServerError) as info:
                await arena.items.tickets.list(guid)
    assert info.value.status == 502
    assert info.value.__notes__ == [
        "attempts: 1: HTTP 503; 2: the same; 3: connection reset; 4: HTTP 502; 5: the same"]


async def test_a_replay_after_a_re_login_is_listed_as_again() -> None:
    """The free replay after the first re-login keeps its attempt number: "1 again"."""
    clock = FakeClock()
    async with FakeArena.seeded(items=1, seed=1) as fake:
        fake.faults.add(Fault("expire_session", path=r"/tickets$"))  # every session dies
        async with ArenaClient(email=fake.email, password=fake.password,
                               workspace_id=fake.workspace_id, base_url=fake.url,
                               sleep=clock.sleep, retry=RetryPolicy(max_attempts=3)) as arena:
            with pytest.raises(AuthenticationError) as info:
                await arena.items.tickets.list(fake.item_guids[0])
    assert info.value.attempts == 3
    assert info.value.__notes__ == [
        "attempts: 1: HTTP 401; 1 again: HTTP 401; 2-3: the same"]


# -- a login refused while listing: no resume hint ------------------------------------

async def test_a_wrong_akana_password_gives_no_resume_hint() -> None:
    async with FakeAkana.seeded(tickets=5, seed=1) as fake, \
            AkanaClient(base_url=fake.url, email=fake.email, password="wrong") as akana:
        with pytest.raises(LoginError) as info:
            await akana.tickets.list()
    assert "resume" not in "".join(getattr(info.value, "__notes__", []))


async def test_a_wrong_arena_password_gives_no_resume_hint() -> None:
    async with FakeArena.seeded(items=1, seed=1) as fake, \
            ArenaClient(base_url=fake.url, email=fake.email, password="wrong",
                        workspace_id=fake.workspace_id) as arena:
        with pytest.raises(LoginError) as info:
            await arena.items.list()
    assert "resume" not in "".join(getattr(info.value, "__notes__", []))


async def test_a_wrong_akana_password_says_what_happened() -> None:
    """The message itself (what the tests above do not cover): the login, the
    refusal, and no transient retry of refused credentials."""
    async with FakeAkana.seeded(tickets=5, seed=1) as fake:
        async with AkanaClient(base_url=fake.url, email=fake.email, password="wrong") as akana:
            with pytest.raises(LoginError) as info:
                await akana.tickets.list()
        assert [r.path for r in fake.requests] == ["/api/login"]
    assert str(info.value).startswith("HTTP 401 from POST /api/login")
    assert "wrong" not in str(info.value)


# -- one client per event loop ----------------------------------------------------------

@pytest.fixture
def served_fake() -> Iterator[FakeArena]:
    """A FakeArena serving from its own thread and loop, so that test code may run (and
    close) event loops of its own."""
    ready = threading.Event()
    box: dict[str, Any] = {}
    loop = asyncio.new_event_loop()

    def serve() -> None:
        async def run() -> None:
            async with FakeArena.seeded(items=1, seed=1) as fake:
                box["fake"] = fake
                box["stop"] = asyncio.Event()
                ready.set()
                await box["stop"].wait()

        loop.run_until_complete(run())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield box["fake"]
    loop.call_soon_threadsafe(box["stop"].set)
    thread.join(10)
    loop.close()


def client_for(fake: FakeArena) -> ArenaClient:
    return ArenaClient(email=fake.email, password=fake.password,
                       workspace_id=fake.workspace_id, base_url=fake.url)


def check_other_loop(exc: BaseException) -> None:
    text = str(exc)
    assert isinstance(exc, RuntimeError)
    assert "opened on another event loop" in text  # the cause
    assert "one client per event loop" in text  # the cure
    assert "async with ArenaClient(...)" in text


def test_a_client_used_in_a_second_asyncio_run_says_why(served_fake: FakeArena) -> None:
    fake = served_fake
    arena = client_for(fake)
    first = asyncio.new_event_loop()
    try:
        first.run_until_complete(arena.open())
        first.run_until_complete(arena.items.tickets.list(fake.item_guids[0]))  # logged in
        with pytest.raises(RuntimeError) as info:
            asyncio.run(arena.items.tickets.list(fake.item_guids[0]))
        check_other_loop(info.value)
        with pytest.raises(RuntimeError) as again:  # open() there too
            asyncio.run(arena.open())
        check_other_loop(again.value)
        with pytest.raises(RuntimeError) as closing:  # and close(): its loop is alive
            asyncio.run(arena.close())
        check_other_loop(closing.value)
        first.run_until_complete(arena.items.tickets.list(fake.item_guids[0]))  # still fine
        first.run_until_complete(arena.close())  # on its own loop: logs out
    finally:
        first.close()
    assert fake.active_sessions == 0


def test_a_client_whose_loop_was_closed_says_why_and_can_still_be_closed(
        served_fake: FakeArena, caplog: pytest.LogCaptureFixture) -> None:
    fake = served_fake
    arena = client_for(fake)
    first = asyncio.new_event_loop()
    first.run_until_complete(arena.open())
    first.close()  # the end of a first asyncio.run()
    with pytest.raises(RuntimeError) as info:
        asyncio.run(arena.items.tickets.list(fake.item_guids[0]))
    check_other_loop(info.value)
    assert "Event loop is closed" in str(info.value.__cause__)  # what it replaced
    asyncio.run(arena.close())  # nothing can be ended on a closed loop: marked closed
    assert "event loop this client was opened on is closed" in caplog.text
    with pytest.raises(RuntimeError, match="this client is closed"):
        asyncio.run(arena.open())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        del arena
        gc.collect()
    assert len(fake.requests) == 0  # nothing was sent from the wrong loop


def test_akana_says_so_too() -> None:
    async def serve_and_use() -> None:
        async with FakeAkana.seeded(tickets=3, seed=1) as fake:
            akana = AkanaClient(base_url=fake.url, email=fake.email, password=fake.password)
            # opened (and used) on a loop of its own, in another thread
            other = asyncio.new_event_loop()
            try:
                await asyncio.to_thread(other.run_until_complete, akana.open())
                with pytest.raises(RuntimeError) as info:
                    await akana.tickets.list()
                check_other_loop(info.value)
                await asyncio.to_thread(other.run_until_complete, akana.close())
            finally:
                other.close()
            assert fake.requests == []

    asyncio.run(serve_and_use())
