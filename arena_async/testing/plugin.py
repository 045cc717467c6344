"""pytest plugin of arena_async: fixtures that start fake servers on loopback.

Registered through the ``pytest11`` entry point; without installation use
``pytest -p arena_async.testing.plugin``. The fixtures are ``pytest_asyncio`` fixtures of
function scope, so they work in both ``auto`` and ``strict`` asyncio mode.

Example::

    async def test_tickets(fake_arena):
        guid = fake_arena.item_guids[0]
        async with ArenaClient(email=fake_arena.email, password=fake_arena.password,
                               base_url=fake_arena.url) as arena:
            assert len(await arena.items.tickets.list(guid)) == len(fake_arena.ticket_refs(guid))
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest_asyncio

from ._fake_arena import FakeArena

if TYPE_CHECKING:
    from ._fake_akana import FakeAkana

__all__ = ["fake_akana", "fake_arena", "fake_arena_factory"]

#: Items in the ``fake_arena`` fixture's workspace.
FIXTURE_ITEMS = 50
#: Tickets in the ``fake_akana`` fixture.
FIXTURE_TICKETS = 120


@pytest_asyncio.fixture
async def fake_arena() -> AsyncIterator[FakeArena]:
    """A started ``FakeArena.seeded(items=50, seed=1)``, closed after the test."""
    async with FakeArena.seeded(items=FIXTURE_ITEMS, seed=1) as fake:
        yield fake


@pytest_asyncio.fixture
async def fake_arena_factory() -> AsyncIterator[Callable[..., Awaitable[FakeArena]]]:
    """Start fakes with custom settings; every one is closed after the test.

    Example::

        async def test_quota(fake_arena_factory):
            fake = await fake_arena_factory(items=5, quota_limit=3, quota_window=0.3)
    """
    started: list[FakeArena] = []

    async def make(items: int = FIXTURE_ITEMS, seed: int = 1, **kwargs: Any) -> FakeArena:
        fake = FakeArena.seeded(items=items, seed=seed, **kwargs)
        await fake.start()
        started.append(fake)
        return fake

    try:
        yield make
    finally:
        for fake in reversed(started):
            await fake.close()


@pytest_asyncio.fixture
async def fake_akana() -> AsyncIterator[FakeAkana]:
    """A started ``FakeAkana.seeded(tickets=120, seed=1)``, closed after the test."""
    from ._fake_akana import FakeAkana

    async with FakeAkana.seeded(tickets=FIXTURE_TICKETS, seed=1) as fake:
        yield fake
