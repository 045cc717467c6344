"""Every attempt is one send: aiohttp's silent re-send, and how the pool accounts for it.

aiohttp (3.14) sends an idempotent request (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) a
second time, once, when the connection drops before any answer (``ClientOSError`` or
``ServerDisconnectedError`` while sending or reading the status line), on any connection,
fresh or reused. The pool would see one attempt where the server saw two: the
RetryPolicy bound and the quota estimate would both undercount. The pool's own session
turns this off; a caller's session is left alone, and these tests pin both behaviours.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from arena_async import ArenaClient, RetryPolicy, TransportError
from arena_async.testing import FakeArena, Fault

from ._chaos import FreeSleep


def client_for(fake: FakeArena, **kw: Any) -> ArenaClient:
    # The wire alone: no share, whose waits a sleep that returns at once would turn into
    # a spin (the test counts the sleeps).
    return ArenaClient(email=fake.email, password=fake.password, base_url=fake.url,
                       share=False, **kw)


def tickets_hits(fake: FakeArena) -> list[str | None]:
    return [r.fault for r in fake.requests if r.path.endswith("/tickets")]


async def test_a_callers_session_may_send_one_attempt_twice() -> None:
    async with FakeArena.seeded(items=1, seed=1) as fake, aiohttp.ClientSession() as session:
        guid = fake.item_guids[0]
        async with client_for(fake, session=session, retry=RetryPolicy(max_attempts=1)) as arena:
            fake.faults.add(Fault("reset_before_headers", path="/tickets$", times=1))
            refs = await arena.items.tickets.list(guid)
            assert [r.guid for r in refs] == [t["guid"] for t in fake.ticket_refs(guid)]
            # One attempt, no retry by the pool (max_attempts=1) ...
            assert (arena.stats.retries, arena.stats.transport_errors) == (0, 0)
            assert arena.stats.requests == 2  # the login and one attempt
        # ... yet the server received the request twice: aiohttp re-sent it.
        assert tickets_hits(fake) == ["reset_before_headers", None]
        assert not session.closed  # the caller's session stays open


async def test_the_pools_session_sends_each_attempt_once() -> None:
    async with FakeArena.seeded(items=1, seed=1) as fake:
        guid = fake.item_guids[0]
        async with client_for(fake, retry=RetryPolicy(max_attempts=1)) as arena:
            fake.faults.add(Fault("reset_before_headers", path="/tickets$", times=1))
            with pytest.raises(TransportError) as info:
                await arena.items.tickets.list(guid)
            assert info.value.attempts == 1
            assert tickets_hits(fake) == ["reset_before_headers"]  # one attempt, one send
        sleep = FreeSleep()
        fake.clear_requests()
        async with client_for(fake, retry=RetryPolicy(max_attempts=2), sleep=sleep) as arena:
            fake.faults.add(Fault("reset_before_headers", path="/tickets$", times=1))
            await arena.items.tickets.list(guid)
            assert arena.stats.retries == 1
            assert len(sleep.delays) == 1
        assert tickets_hits(fake) == ["reset_before_headers", None]  # two attempts, two sends
