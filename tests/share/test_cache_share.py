"""cache= with a share: answers kept in the share (a real SQLite file, a real redis-server)
for every client of the integration; several clients in one process here (real processes
in test_cache_multiprocess.py)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import pytest

from arena_async import (
    ArenaClient,
    CachePolicy,
    QuotaExhaustedError,
    RetryPolicy,
    ServerError,
    Share,
    ShareUnavailableError,
    SQLiteShare,
    TransportError,
)
from arena_async._cache import MemoryStore, ShareStore
from arena_async._cache._keys import answer_key
from arena_async._protocol import BaseURL, Request
from arena_async._share._answers import Claim
from arena_async._share._seal import Seal
from arena_async._share._state import Now, Step
from arena_async.testing import FakeArena, Fault
from tests.conftest import FakeClock, Stalls
from tests.share.conftest import ShareFactory

TICKETS = "GET /items/{item}/tickets"
REFS = "GET /items/{item}/items"
ITEM = "GET /items/{item}"


def client(fake: FakeArena, share: Share, **kw: Any) -> ArenaClient:
    kw.setdefault("cache", CachePolicy(ttl=600.0))
    return ArenaClient(email=fake.email, password=fake.password,
                       workspace_id=fake.workspace_id, base_url=fake.url, share=share, **kw)


class Clients:
    """Clients opened together, closed at the end."""

    def __init__(self, *clients: ArenaClient) -> None:
        self.clients = clients

    async def __aenter__(self) -> tuple[ArenaClient, ...]:
        for c in self.clients:
            await c.open()
        return self.clients

    async def __aexit__(self, *exc: object) -> None:
        for c in self.clients:
            await c.close()


async def test_a_second_client_reuses_the_answer(make_share: ShareFactory) -> None:
    async with FakeArena.seeded(items=4, seed=1) as fake, \
            Clients(client(fake, make_share()), client(fake, make_share())) as (a, b):
        assert isinstance(a._cache.store if a._cache else None, ShareStore)
        guid = fake.item_guids[0]
        first = await a.items.tickets.list(guid)
        with b.cache_info() as info:
            assert await b.items.tickets.list(guid) == first
        assert info.from_cache
        assert fake.stats.by_route[TICKETS] == 1
        assert (b.stats.cache_hits, b.stats.cache_misses) == (1, 0)


async def test_clients_fetch_a_missing_answer_once(make_share: ShareFactory) -> None:
    async with FakeArena.seeded(items=6, seed=1, latency=0.05) as fake, \
            Clients(*(client(fake, make_share()) for _ in range(3))) as clients:
        await asyncio.gather(*(c.items.get(fake.item_guids[0]) for c in clients))
        fake.clear_requests()
        keys = fake.item_guids[:5]
        results = await asyncio.gather(*(c.items.tickets.list(guid) for c in clients
                                         for guid in keys for _ in range(10)))
        assert len(results) == 150
        assert fake.stats.by_route[TICKETS] == 5
        hits = sum(c.stats.cache_hits for c in clients)
        misses = sum(c.stats.cache_misses for c in clients)
        assert (misses, hits) == (5 + 1, 145 + 2)  # with the item asked by all three


async def test_a_failing_filler_lets_a_waiter_fetch_at_once(make_share: ShareFactory) -> None:
    # The fill marker would block the waiter for lease_ttl (30 s) if the failing filler
    # did not release it.
    async with FakeArena.seeded(items=4, seed=1, latency=0.1) as fake:
        once = RetryPolicy(max_attempts=1)
        async with Clients(client(fake, make_share(lease_ttl=30.0, member_ttl=90.0), retry=once),
                           client(fake, make_share(lease_ttl=30.0, member_ttl=90.0),
                                  retry=once)) as (a, b):
            await asyncio.gather(a.items.get(fake.item_guids[1]),
                                 b.items.get(fake.item_guids[1]))
            guid = fake.item_guids[0]
            fake.faults.add(Fault("status", status=503, path="/tickets$", times=1))
            filler = asyncio.ensure_future(a.items.tickets.list(guid))
            while not fake.stats.by_route[TICKETS]:
                await asyncio.sleep(0.005)
            async with Stalls() as stalls:
                started = time.monotonic()
                refs = await asyncio.wait_for(b.items.tickets.list(guid), 10)
                # (not the 30 s of the filler's marker)
                assert time.monotonic() - started < 5 + stalls.lost(), stalls.gaps
            with pytest.raises(ServerError):
                await filler
            assert [r.guid for r in refs] == [r["guid"] for r in fake.ticket_refs(guid)]
            assert fake.stats.by_route[TICKETS] == 2


async def test_a_slow_filler_keeps_its_marker(make_share: ShareFactory) -> None:
    # The marker lives 0.9 s, the fetch takes 2 s: renewed while it runs, the waiter waits.
    async with FakeArena.seeded(items=4, seed=1) as fake, \
            Clients(client(fake, make_share(lease_ttl=0.9)),
                       client(fake, make_share(lease_ttl=0.9))) as (a, b):
        await asyncio.gather(a.items.get(fake.item_guids[1]),
                             b.items.get(fake.item_guids[1]))
        guid = fake.item_guids[0]
        fake.faults.add(Fault("slow_headers", delay=2.0, path="/tickets$", times=1))
        async with Stalls() as stalls:
            filler = asyncio.ensure_future(a.items.tickets.list(guid))
            while not fake.stats.by_route[TICKETS]:
                await asyncio.sleep(0.005)
            with b.cache_info() as info:
                refs = await asyncio.wait_for(b.items.tickets.list(guid), 10)
            assert refs == await filler
        # Renewed every 0.3 s, the marker outlives any pause of its renewals shorter than
        # 0.6 s; a stall of this process longer than that rightly lets it lapse (the waiter
        # then fetches too), so the wait is judged where none was that long.
        if max(stalls.gaps, default=0.0) < 0.5:
            assert info.from_cache
            assert fake.stats.by_route[TICKETS] == 1
        else:
            assert fake.stats.by_route[TICKETS] <= 2


async def test_writes_and_forget_reach_every_client(make_share: ShareFactory) -> None:
    async with FakeArena.seeded(items=5, seed=2, max_item_refs=0) as fake, \
            Clients(client(fake, make_share()), client(fake, make_share())) as (a, b):
        x, y, z = fake.item_guids[:3]
        assert await a.items.references.list(x) == []
        assert await a.items.references.list(y) == []
        item = await a.items.get(x)
        await a.items.get(z)
        await b.items.references.create(x, y, note="n")
        assert [r.item.guid for r in await a.items.references.list(x)] == [y]
        assert [r.item.guid for r in await a.items.references.list(y)] == [x]
        assert await a.items.get(x) == item
        assert fake.stats.by_route[ITEM] == 2
        await b.forget(x)
        await a.items.get(x)
        await a.items.get(z)
        assert fake.stats.by_route[ITEM] == 3
        await b.forget()
        await a.items.get(z)
        assert fake.stats.by_route[ITEM] == 4


async def test_identities_and_servers_keep_their_own_answers(make_share: ShareFactory) -> None:
    async with FakeArena.seeded(items=3, seed=1) as fake, \
            FakeArena.seeded(items=3, seed=1) as twin:
        oauth = ArenaClient(client_id=fake.client_id, client_secret=fake.client_secret,
                            token_url=fake.token_url, base_url=fake.url, share=make_share(),
                            cache=CachePolicy(ttl=600.0))
        async with Clients(client(fake, make_share()), oauth, client(twin, make_share())) as (
                user, machine, other):
            guid = fake.item_guids[0]
            assert twin.item_guids[0] == guid  # the same data on another server
            for c in (user, machine, other, user, machine, other):
                await c.items.get(guid)
            assert fake.stats.by_route[ITEM] == 2  # the user's and the OAuth client's
            assert twin.stats.by_route[ITEM] == 1


def stored_values(share_kind: str, arena: ArenaClient) -> list[bytes]:
    """Every answer value in the share, as stored."""
    share = arena.share_link.share if arena.share_link else None
    if isinstance(share, SQLiteShare):
        with sqlite3.connect(share.path) as conn:
            return [bytes(v) for (v,) in conn.execute("SELECT value FROM arena_answer")]
    import redis

    assert share is not None
    server = redis.Redis.from_url(share._url)  # type: ignore[attr-defined]
    try:
        keys = server.keys(share.prefix + "answer-value:*")  # type: ignore[attr-defined]
        return [bytes(server.get(k)) for k in keys]  # type: ignore[arg-type]
    finally:
        server.close()


async def test_answers_in_the_share_are_sealed_like_the_share(make_share: ShareFactory,
                                                             share_kind: str) -> None:
    async with FakeArena.seeded(items=3, seed=1) as fake, \
            Clients(client(fake, make_share()), client(fake, make_share()),
                       client(fake, make_share())) as (a, b, stranger):
        # a and b seal with the key their credentials give; the stranger's link holds a
        # seal from other credentials (as a sharer with another password would)
        assert stranger.share_link is not None
        stranger.share_link.seal = Seal("another password", context="the same integration")
        guid = fake.item_guids[0]
        item = await a.items.get(guid)
        values = stored_values(share_kind, a)
        assert len(values) == 1
        assert guid.encode() not in values[0]
        assert b'"guid"' not in values[0]  # nothing of the JSON answer shows
        assert await b.items.get(guid) == item  # unsealed by a sharer
        assert fake.stats.by_route[ITEM] == 1
        # one that cannot unseal it counts it as absent, fetches, and stores its own
        assert await stranger.items.get(guid) == item
        assert fake.stats.by_route[ITEM] == 2


async def test_stale_answers_from_the_share_when_the_quota_is_spent(
        make_share: ShareFactory, fake_clock: FakeClock) -> None:
    policy = CachePolicy(ttl=10.0, stale_if_error=1000.0)
    async with FakeArena.seeded(items=3, seed=1, quota_limit=50, clock=fake_clock) as fake, \
            Clients(client(fake, make_share(), cache=policy, clock=fake_clock),
                       client(fake, make_share(), cache=policy, clock=fake_clock)) as (a, b):
        guid = fake.item_guids[0]
        refs = await a.items.tickets.list(guid)
        fake_clock.now += 100.0
        fake.set_quota(remaining=0)
        with b.cache_info() as info:
            assert await b.items.tickets.list(guid) == refs
        assert info.stale
        assert info.age == pytest.approx(100.0)
        assert b.stats.cache_stale == 1
        fake_clock.now += 1000.0
        with pytest.raises(QuotaExhaustedError):
            await b.items.tickets.list(guid)


class DictShare(Share):
    """A third backend that keeps no answers (documents in a dict)."""

    def __init__(self) -> None:
        super().__init__()
        self.docs: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return "dict://"

    async def _open(self) -> None:
        pass

    async def _close(self) -> None:
        pass

    async def _update(self, key: str, step: Step[Any]) -> Any:
        new, result = step(self.docs.get(key), Now(time.time(), time.monotonic()))
        self.docs[key] = new
        return result


async def test_a_share_that_keeps_no_answers_leaves_the_cache_in_memory(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="arena_async._cache._answers")
    async with FakeArena.seeded(items=2, seed=1) as fake, client(fake, DictShare()) as arena:
        assert isinstance(arena._cache.store if arena._cache else None,
                          MemoryStore)
        await arena.items.get(fake.item_guids[0])
        await arena.items.get(fake.item_guids[0])
        assert fake.stats.by_route[ITEM] == 1
    assert "does not keep cached answers" in caplog.text


@pytest.fixture
def expired_rows_are_swept(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import arena_async._share._sqlite as sqlite_share

    monkeypatch.setattr(sqlite_share, "_SWEEP_EVERY", 0.0)
    return


async def test_sqlite_sweeps_expired_answers(tmp_path: Any, expired_rows_are_swept: None,
                                             ) -> None:
    now = [1_000.0]
    share = SQLiteShare(tmp_path / "share.db", clock=lambda: now[0])
    async with FakeArena.seeded(items=3, seed=1) as fake, \
            client(fake, share, cache=CachePolicy(ttl=5.0)) as arena:
        await arena.items.get(fake.item_guids[0])
        now[0] += 10.0  # past its keep, on the share's clock
        await arena.items.get(fake.item_guids[1])  # a write sweeps
        with sqlite3.connect(share.path) as conn:
            assert conn.execute("SELECT count(*) FROM arena_answer").fetchone() == (1,)
            assert conn.execute("SELECT count(DISTINCT key) FROM arena_answer_tag"
                                ).fetchone() == (1,)


async def test_a_deadline_bounds_the_wait_for_another_process(make_share: ShareFactory) -> None:
    async with FakeArena.seeded(items=3, seed=1) as fake, \
            client(fake, make_share(lease_ttl=30.0, member_ttl=90.0)) as arena:
        await arena.items.get(fake.item_guids[1])
        assert arena._cache is not None
        assert arena.share_link is not None
        guid = fake.item_guids[0]
        request = Request.on(BaseURL(fake.url), "GET", "items", guid, "tickets")
        key = answer_key(arena._cache.namespace, request)
        # another process is fetching it (for up to 30 s)
        _, claim = await arena.share_link.share.answer_read(key, 0.0, "other", 30.0)
        assert claim is Claim.FILL
        async with Stalls() as stalls:
            started = time.monotonic()
            with pytest.raises(TransportError, match="another process"):
                await arena.items.tickets.list(guid, deadline=0.3)
            # (not the 30 s of the other's claim)
            assert 0.25 < time.monotonic() - started < 5 + stalls.lost(), stalls.gaps
        assert fake.stats.by_route[TICKETS] == 0


class FlakyAnswers(SQLiteShare):
    """A SQLite share whose answer store fails while ``failing`` is set."""

    failing = True

    async def answer_read(self, *args: Any, **kw: Any) -> Any:
        if self.failing:
            raise ShareUnavailableError("answers unavailable", share=self.name)
        return await super().answer_read(*args, **kw)

    async def answer_write(self, *args: Any, **kw: Any) -> None:
        if self.failing:
            raise ShareUnavailableError("answers unavailable", share=self.name)
        await super().answer_write(*args, **kw)


async def test_a_failing_answer_store_asks_arena_and_recovers(
        tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="arena_async._cache._answers")
    share = FlakyAnswers(tmp_path / "share.db")
    async with FakeArena.seeded(items=3, seed=1) as fake, client(fake, share) as arena:
        guid = fake.item_guids[0]
        for _ in range(3):
            await arena.items.get(guid)
        assert fake.stats.by_route[ITEM] == 3
        share.failing = False
        await arena.items.get(guid)
        await arena.items.get(guid)
        assert fake.stats.by_route[ITEM] == 4
    warnings = [r for r in caplog.records if "cannot use the share" in r.getMessage()]
    assert len(warnings) == 1
