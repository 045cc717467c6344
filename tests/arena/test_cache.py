"""cache=CachePolicy(...) in one process (answers kept in the client's memory): real loopback
HTTP against FakeArena, TTLs on an injected clock."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from arena_async import (
    AnswerInfo,
    ArenaClient,
    CachePolicy,
    NotFoundError,
    QuotaExhaustedError,
    RetryPolicy,
    ServerError,
    TransportError,
)
from arena_async._cache import MemoryStore
from arena_async._cache._keys import answer_key, item_tags, namespace, tags_for
from arena_async._protocol import BaseURL, Request
from arena_async.testing import FakeArena, Fault
from tests.conftest import FakeClock

TICKETS = "GET /items/{item}/tickets"
REFS = "GET /items/{item}/items"
ITEM = "GET /items/{item}"
RECORDS = "GET /items/{item}/trainingrecords"


def client_for(fake: FakeArena, clock: FakeClock | None = None, **kw: Any) -> ArenaClient:
    if clock is not None:
        kw.update(clock=clock, sleep=clock.sleep)
    kw.setdefault("share", False)  # these are the in-process rules; tests/share has the share's
    return ArenaClient(email=fake.email, password=fake.password, workspace_id=fake.workspace_id,
                       base_url=fake.url, **kw)


def sent(fake: FakeArena) -> int:
    """Requests that count against the quota (logins do not)."""
    return sum(n for route, n in fake.stats.by_route.items() if route != "POST /login")


# -- the policy -----------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"ttl": 0}, "ttl"), ({"ttl": -1.0}, "ttl"), ({"ttl": float("inf")}, "ttl"),
    ({"ttl": True}, "ttl"), ({"ttl": "60"}, "ttl"),
    ({"ttl": 60, "stale_if_error": -1}, "stale_if_error"),
    ({"ttl": 60, "stale_if_error": float("nan")}, "stale_if_error"),
    ({"ttl": 60, "max_entries": 0}, "max_entries"),
    ({"ttl": 60, "max_bytes": 1.5}, "max_bytes"),
])
def test_cache_policy_refuses_bad_values(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CachePolicy(**kwargs)


def test_cache_must_be_a_policy() -> None:
    with pytest.raises(ValueError, match=r"cache must be a CachePolicy"):
        ArenaClient(email="a@example.com", password="p", cache=300)  # type: ignore[arg-type]
    arena = ArenaClient(email="a@example.com", password="p", cache=CachePolicy(ttl=5))
    assert arena.cache_policy == CachePolicy(ttl=5)
    assert ArenaClient(email="a@example.com", password="p").cache_policy is None


async def test_off_by_default_every_get_is_sent() -> None:
    async with FakeArena.seeded(items=3, seed=1) as fake, client_for(fake) as arena:
        guid = fake.item_guids[0]
        await arena.items.tickets.list(guid)
        await arena.items.tickets.list(guid)
        assert fake.stats.by_route[TICKETS] == 2
        assert (arena.stats.cache_hits, arena.stats.cache_misses) == (0, 0)


# -- keys -------------------------------------------------------------------------------
def test_the_key_separates_base_urls_identities_and_workspaces() -> None:
    base = BaseURL("https://api.arenasolutions.com/v1")
    request = Request.on(base, "GET", "items", "ABC", "tickets")
    spaces = {namespace("https://api.arenasolutions.com/v1", "user:a@x", 1),
              namespace("https://api.europe.arenaplm.com/v1", "user:a@x", 1),
              namespace("https://api.arenasolutions.com/v1", "user:b@x", 1),
              namespace("https://api.arenasolutions.com/v1", "oauth:a@x", 1),
              namespace("https://api.arenasolutions.com/v1", "user:a@x", 2),
              namespace("https://api.arenasolutions.com/v1", "user:a@x", None)}
    assert len(spaces) == 6
    assert len({answer_key(ns, request) for ns in spaces}) == 6
    ns = spaces.pop()
    key = answer_key(ns, request)
    assert key.startswith(ns + ":")
    assert "ABC" not in key  # the share learns no GUID


def test_the_key_is_the_request_with_its_query_sorted() -> None:
    base, ns = BaseURL("https://h/v1"), "n"
    a = Request.on(base, "GET", "items", params={"number": "PN-1", "limit": "400"})
    b = Request.on(base, "GET", "items", params={"limit": "400", "number": "PN-1"})
    c = Request.on(base, "GET", "items", params={"limit": "400", "number": "PN-2"})
    d = Request.on(base, "GET", "items", "PN-1")
    assert answer_key(ns, a) == answer_key(ns, b)
    assert len({answer_key(ns, a), answer_key(ns, c), answer_key(ns, d)}) == 3
    # a value holding & or = cannot pass for another query
    e = Request.on(base, "GET", "items", params={"number": "a&limit=1"})
    f = Request.on(base, "GET", "items", params={"number": "a", "limit": "1"})
    assert answer_key(ns, e) != answer_key(ns, f)


def test_tags_name_the_item_and_both_ends_of_references() -> None:
    from arena_async import ItemReference, ItemSummary

    base, ns = BaseURL("https://h/v1"), "n"
    assert tags_for(ns, Request.on(base, "GET", "items", params={"number": "x"}), []) == []
    assert tags_for(ns, Request.on(base, "GET", "items", "A", "tickets"), []) == [
        item_tags(ns, "A")[0]]
    refs = [ItemReference(guid="R1", item=ItemSummary(guid="B"), note=None),
            ItemReference(guid="R2", item=ItemSummary(guid="C"), note=None)]
    tags = tags_for(ns, Request.on(base, "GET", "items", "A", "items"), refs)
    assert set(tags) == {item_tags(ns, "A")[0], item_tags(ns, "A")[1], item_tags(ns, "B")[1],
                         item_tags(ns, "C")[1]}


def test_stale_answers_stand_in_only_when_arena_cannot_answer() -> None:
    from arena_async import (
        BadRequestError,
        RateLimitError,
        ResponseFormatError,
        ShareMisconfiguredError,
        ShareUnavailableError,
    )
    from arena_async._cache import can_serve_stale

    assert can_serve_stale(QuotaExhaustedError(0, None))
    assert can_serve_stale(ServerError(503, []))
    assert can_serve_stale(RateLimitError(429, []))
    assert can_serve_stale(TransportError("reset"))
    assert can_serve_stale(ShareUnavailableError("down", share="s"))
    assert not can_serve_stale(ShareMisconfiguredError("wrong password", share="s"))
    assert not can_serve_stale(NotFoundError(404, []))
    assert not can_serve_stale(BadRequestError(400, []))
    assert not can_serve_stale(ResponseFormatError("bad"))


# -- TTL --------------------------------------------------------------------------------
async def test_an_answer_is_kept_ttl_seconds(fake_clock: FakeClock) -> None:
    async with FakeArena.seeded(items=3, seed=1) as fake, \
            client_for(fake, fake_clock, cache=CachePolicy(ttl=60.0)) as arena:
        guid = fake.item_guids[0]
        first = await arena.items.tickets.list(guid)
        fake_clock.now += 59.0
        assert await arena.items.tickets.list(guid) == first
        fake_clock.now += 1.0  # exactly ttl old: still fresh
        await arena.items.tickets.list(guid)
        assert fake.stats.by_route[TICKETS] == 1
        fake_clock.now += 0.5
        await arena.items.tickets.list(guid)
        assert fake.stats.by_route[TICKETS] == 2
        assert (arena.stats.cache_hits, arena.stats.cache_misses) == (2, 2)
        assert arena.stats.requests - arena.stats.logins == 2


async def test_every_kind_of_get_is_cached() -> None:
    async with FakeArena.seeded(items=8, seed=5) as fake, \
            client_for(fake, cache=CachePolicy(ttl=300.0)) as arena:
        guid = next(g for g in fake.item_guids if fake.ticket_refs(g) and fake.references(g)
                    and fake.training_records(g))
        ticket = fake.ticket_refs(guid)[0]["guid"]
        ref = fake.references(guid)[0]["guid"]
        record = fake.training_records(guid)[0]["guid"]

        async def everything() -> list[Any]:
            return [await arena.items.get(guid), await arena.items.get(guid, view="minimum"),
                    await arena.items.list(number="PN-*", page_size=3),
                    await arena.items.tickets.list(guid),
                    await arena.items.tickets.get(guid, ticket),
                    await arena.items.references.list(guid),
                    await arena.items.references.get(guid, ref),
                    await arena.items.training_records.list(guid, page_size=5),
                    await arena.items.training_records.get(guid, record)]

        first = await everything()
        spent = sent(fake)
        assert await everything() == first
        assert sent(fake) == spent
        assert arena.stats.cache_hits == arena.stats.cache_misses == spent


# -- single-flight ------------------------------------------------------------------------
async def test_concurrent_misses_of_one_key_make_one_request() -> None:
    async with FakeArena.seeded(items=3, seed=1, latency=0.02) as fake, \
            client_for(fake, cache=CachePolicy(ttl=60.0)) as arena:
        guid = fake.item_guids[1]
        results = await asyncio.gather(*(arena.items.tickets.list(guid) for _ in range(100)))
        assert all(r == results[0] for r in results)
        assert fake.stats.by_route[TICKETS] == 1
        assert (arena.stats.cache_misses, arena.stats.cache_hits) == (1, 99)
        assert all(r is not results[0] for r in results[1:])  # each caller its own list


async def test_concurrent_callers_share_the_failure_of_one_fetch(fake_clock: FakeClock) -> None:
    async with FakeArena.seeded(items=3, seed=1, latency=0.01) as fake, \
            client_for(fake, fake_clock, cache=CachePolicy(ttl=60.0),
                       retry=RetryPolicy(max_attempts=2, backoff=0.0)) as arena:
        fake.faults.add(Fault("status", status=503, path="/tickets$"))
        results = await asyncio.gather(
            *(arena.items.tickets.list(fake.item_guids[0]) for _ in range(50)),
            return_exceptions=True)
        assert all(isinstance(r, ServerError) for r in results)
        assert fake.stats.by_route[TICKETS] == 2  # one exchange: its two attempts


async def test_a_cancelled_fetch_leaves_another_caller_to_fetch() -> None:
    async with FakeArena.seeded(items=3, seed=1) as fake, \
            client_for(fake, cache=CachePolicy(ttl=60.0)) as arena:
        guid = fake.item_guids[0]
        await arena.items.get(guid)  # logged in
        slow = fake.faults.add(Fault("slow_headers", delay=5.0, path="/tickets$", times=1))
        leader = asyncio.ensure_future(arena.items.tickets.list(guid))
        while not fake.stats.by_route[TICKETS]:
            await asyncio.sleep(0.005)
        follower = asyncio.ensure_future(arena.items.tickets.list(guid))
        await asyncio.sleep(0.01)
        leader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leader
        refs = await asyncio.wait_for(follower, 5)
        assert [r.guid for r in refs] == [r["guid"] for r in fake.ticket_refs(guid)]
        assert fake.faults.fired_count(slow) == 1
        assert fake.stats.by_route[TICKETS] == 2


async def test_a_follower_deadline_bounds_its_wait() -> None:
    async with FakeArena.seeded(items=3, seed=1) as fake, \
            client_for(fake, cache=CachePolicy(ttl=60.0)) as arena:
        guid = fake.item_guids[0]
        await arena.items.get(guid)
        fake.faults.add(Fault("slow_headers", delay=1.0, path="/tickets$", times=1))
        leader = asyncio.ensure_future(arena.items.tickets.list(guid))
        while not fake.stats.by_route[TICKETS]:
            await asyncio.sleep(0.005)
        with pytest.raises(TransportError, match="deadline"):
            await arena.items.tickets.list(guid, deadline=0.05)
        assert await leader  # the leader is untouched
        assert fake.stats.by_route[TICKETS] == 1


# -- the quota: a hit spends nothing ------------------------------------------------------
async def test_a_hit_spends_no_request_even_with_the_quota_spent(fake_clock: FakeClock) -> None:
    async with FakeArena.seeded(items=5, seed=1, quota_limit=3, clock=fake_clock) as fake, \
            client_for(fake, fake_clock, cache=CachePolicy(ttl=60.0)) as arena:
        guids = fake.item_guids
        for guid in guids[:3]:
            await arena.items.tickets.list(guid)
        assert fake.quota_remaining == 0
        with pytest.raises(QuotaExhaustedError):
            await arena.items.tickets.list(guids[3])  # refused before sending
        with arena.cache_info() as info:
            for guid in guids[:3]:
                assert await arena.items.tickets.list(guid) is not None
        assert info == AnswerInfo(answers=3, cached=3, age=0.0, stale=False)
        assert fake.stats.quota_exhausted == 0
        assert sent(fake) == 3
        assert arena.stats.requests - arena.stats.logins == 3
        assert arena.stats.quota_rejections == 1  # the miss only


# -- stale_if_error ---------------------------------------------------------------------------
async def test_stale_answers_when_the_quota_is_spent(fake_clock: FakeClock,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    policy = CachePolicy(ttl=60.0, stale_if_error=600.0)
    async with FakeArena.seeded(items=5, seed=1, quota_limit=100, clock=fake_clock) as fake, \
            client_for(fake, fake_clock, cache=policy) as arena:
        guid = fake.item_guids[0]
        first = await arena.items.tickets.list(guid)
        fake_clock.now += 300.0
        fake.set_quota(remaining=0)  # spent by someone else: the next request meets a 429
        caplog.set_level(logging.WARNING, logger="arena_async._cache._answers")
        with arena.cache_info() as info:
            assert await arena.items.tickets.list(guid) == first
        assert info.from_cache
        assert info.stale
        assert info.age == pytest.approx(300.0)
        with arena.cache_info() as again:
            assert await arena.items.tickets.list(guid) == first  # refused locally now
        assert again.stale
        assert arena.stats.cache_stale == 2
        warnings = [r for r in caplog.records if "cached answer" in r.getMessage()]
        assert len(warnings) == 1  # once per key
        assert "300 s old" in warnings[0].getMessage()
        assert "QuotaExhaustedError" in warnings[0].getMessage()
        fake_clock.now += 361.0  # now past ttl + stale_if_error
        with pytest.raises(QuotaExhaustedError):
            await arena.items.tickets.list(guid)
        assert arena.stats.cache_stale == 2


async def test_stale_answers_under_503s_and_connection_failures(fake_clock: FakeClock) -> None:
    policy = CachePolicy(ttl=10.0, stale_if_error=100.0)
    async with FakeArena.seeded(items=5, seed=1, clock=fake_clock) as fake, \
            client_for(fake, fake_clock, cache=policy,
                       retry=RetryPolicy(max_attempts=3, backoff=0.1)) as arena:
        a, b = fake.item_guids[:2]
        ref_a = await arena.items.tickets.list(a)
        ref_b = await arena.items.references.list(b)
        fake_clock.now += 50.0
        fake.faults.add(Fault("status", status=503, path="/tickets$"))
        fake.faults.add(Fault("reset_before_headers", path="/items$"))
        assert await arena.items.tickets.list(a) == ref_a
        assert await arena.items.references.list(b) == ref_b
        assert fake.stats.by_route[TICKETS] == 1 + 3  # the retries ran first
        assert fake.stats.by_route[REFS] == 1 + 3
        assert arena.stats.cache_stale == 2


async def test_no_stale_answer_without_stale_if_error_or_for_a_4xx(
        fake_clock: FakeClock) -> None:
    async with FakeArena.seeded(items=5, seed=1, clock=fake_clock) as fake, \
            client_for(fake, fake_clock, cache=CachePolicy(ttl=10.0),
                       retry=RetryPolicy(max_attempts=1)) as arena, \
            client_for(fake, fake_clock, cache=CachePolicy(ttl=10.0, stale_if_error=100.0),
                       retry=RetryPolicy(max_attempts=1)) as patient:
        guid = fake.item_guids[0]
        await arena.items.tickets.list(guid)
        await patient.items.tickets.list(guid)
        fake_clock.now += 11.0
        fault = fake.faults.add(Fault("status", status=503, path="/tickets$"))
        with pytest.raises(ServerError):
            await arena.items.tickets.list(guid)
        fake.faults.remove(fault)
        fake.faults.add(Fault("status", status=404, path="/tickets$"))
        with pytest.raises(NotFoundError):  # Arena answered: no such thing
            await patient.items.tickets.list(guid)
        assert patient.stats.cache_stale == arena.stats.cache_stale == 0


# -- writes and forget ---------------------------------------------------------------------
async def test_reference_writes_drop_both_ends(fake_clock: FakeClock) -> None:
    async with FakeArena.seeded(items=6, seed=2, max_item_refs=0) as fake, \
            client_for(fake, fake_clock, cache=CachePolicy(ttl=3600.0)) as arena:
        a, b, c = fake.item_guids[:3]

        async def ends() -> tuple[list[str | None], list[str | None], list[str | None]]:
            lists = [await arena.items.references.list(g) for g in (a, b, c)]
            la, lb, lc = ([r.note for r in refs] for refs in lists)
            return la, lb, lc

        assert await ends() == ([], [], [])
        link = await arena.items.references.create(a, b, note="one")
        assert await ends() == (["one"], ["one"], [])
        assert await arena.items.references.get(b, link.guid)  # B's view of it, cached
        before = fake.stats.by_route[REFS]
        await arena.items.references.update(a, link.guid, note="two")
        assert await ends() == (["two"], ["two"], [])
        assert (await arena.items.references.get(b, link.guid)).note == "two"
        assert fake.stats.by_route[REFS] == before + 2  # a and b asked again; c not
        await arena.items.references.delete(b, link.guid)  # from the other end
        assert await ends() == ([], [], [])
        assert fake.stats.by_route[REFS] == before + 4


async def test_a_failed_write_drops_too() -> None:
    async with FakeArena.seeded(items=4, seed=2, max_item_refs=0) as fake, \
            client_for(fake, cache=CachePolicy(ttl=3600.0),
                       retry=RetryPolicy(max_attempts=1)) as arena:
        a, b = fake.item_guids[:2]
        await arena.items.references.list(b)
        # Processed, then the connection dropped: the caller cannot know it happened.
        fake.faults.add(Fault("reset_after_headers", method="POST", times=1))
        with pytest.raises(TransportError):
            await arena.items.references.create(a, b)
        assert len(await arena.items.references.list(b)) == 1


async def test_forget_one_item_or_everything() -> None:
    async with FakeArena.seeded(items=6, seed=3) as fake, \
            client_for(fake, cache=CachePolicy(ttl=3600.0)) as arena:
        a, c = fake.item_guids[0], fake.item_guids[5]
        a_refs = fake.references(a)

        async def read(guid: str) -> None:
            await arena.items.get(guid)
            await arena.items.tickets.list(guid)
            await arena.items.references.list(guid)
            await arena.items.training_records.list(guid)

        for guid in (a, c):
            await read(guid)
        peers = [r["item"]["guid"] for r in a_refs]
        for peer in peers:
            await arena.items.references.list(peer)
        await arena.items.list(number="PN-000001")
        spent = sent(fake)
        await arena.forget(a)
        for guid in (a, c):
            await read(guid)
        for peer in peers:  # their references involve a
            await arena.items.references.list(peer)
        await arena.items.list(number="PN-000001")
        assert sent(fake) == spent + 4 + len(peers)
        await arena.forget()
        await read(c)
        await arena.items.list(number="PN-000001")
        assert sent(fake) == spent + 4 + len(peers) + 5
        with pytest.raises(ValueError, match="item_guid"):
            await arena.forget("../x")


async def test_forget_without_a_cache_does_nothing() -> None:
    async with FakeArena.seeded(items=2, seed=3) as fake, client_for(fake) as arena:
        await arena.forget(fake.item_guids[0])
        await arena.forget()
        with arena.cache_info() as info:
            await arena.items.get(fake.item_guids[0])
        assert info == AnswerInfo()
        assert not info.from_cache


async def test_a_write_during_a_fetch_keeps_that_answer_out() -> None:
    async with FakeArena.seeded(items=4, seed=2, max_item_refs=0) as fake, \
            client_for(fake, cache=CachePolicy(ttl=3600.0)) as arena:
        a, b = fake.item_guids[:2]
        await arena.items.get(a)
        fake.faults.add(Fault("slow_body", delay=0.3, path=f"/items/{b}/items$", times=1))
        reading = asyncio.ensure_future(arena.items.references.list(b))
        while not fake.stats.by_route[REFS]:
            await asyncio.sleep(0.005)
        await arena.items.references.create(a, b)  # answered while b's old list travels
        assert await reading == []
        assert len(await arena.items.references.list(b)) == 1


# -- provenance ---------------------------------------------------------------------------
async def test_each_task_learns_where_its_answers_came_from(fake_clock: FakeClock) -> None:
    async with FakeArena.seeded(items=4, seed=1) as fake, \
            client_for(fake, fake_clock, cache=CachePolicy(ttl=60.0)) as arena:
        a, b = fake.item_guids[:2]
        await arena.items.tickets.list(a)
        fake_clock.now += 12.5

        async def one(guid: str) -> AnswerInfo:
            with arena.cache_info() as info:
                await asyncio.sleep(0.01)  # both blocks open at once
                await arena.items.tickets.list(guid)
            return info

        cached, fetched = await asyncio.gather(one(a), one(b))
        assert cached == AnswerInfo(answers=1, cached=1, age=12.5, stale=False)
        assert cached.from_cache
        assert fetched == AnswerInfo(answers=1, cached=0, age=0.0, stale=False)
        assert not fetched.from_cache
        with arena.cache_info() as outer:
            with arena.cache_info() as inner:
                await arena.items.tickets.list(a)
            async for _ in arena.bulk(arena.items.tickets.list, fake.item_guids):
                pass  # the bulk's own tasks count in the block they started in
        assert inner.answers == 1
        assert (outer.answers, outer.cached) == (5, 3)
        assert not outer.from_cache


async def test_blocks_of_another_client_do_not_count() -> None:
    async with FakeArena.seeded(items=2, seed=1) as fake, \
            client_for(fake, cache=CachePolicy(ttl=60.0)) as one, \
            client_for(fake, cache=CachePolicy(ttl=60.0)) as two:
        with one.cache_info() as info:
            await two.items.get(fake.item_guids[0])
        assert info.answers == 0


# -- memory -------------------------------------------------------------------------------
async def test_the_memory_store_is_bounded_by_entries_and_bytes() -> None:
    policy = CachePolicy(ttl=3600.0, max_entries=4)
    async with FakeArena.seeded(items=10, seed=1) as fake, \
            client_for(fake, cache=policy) as arena:
        guids = fake.item_guids
        for guid in guids:
            await arena.items.get(guid)
        store = arena._cache.store if arena._cache else None
        assert isinstance(store, MemoryStore)
        assert len(store) == 4
        await arena.items.get(guids[6])  # a hit: now the most recently used
        assert fake.stats.by_route[ITEM] == 10
        await arena.items.get(guids[0])  # the least recently used (7) goes
        await arena.items.get(guids[6])
        assert fake.stats.by_route[ITEM] == 11
        await arena.items.get(guids[7])
        assert fake.stats.by_route[ITEM] == 12
    size = len(fake.item(guids[0])) * 40  # a few answers' worth of bytes
    async with FakeArena.seeded(items=10, seed=1) as fake, \
            client_for(fake, cache=CachePolicy(ttl=3600.0, max_bytes=size)) as arena:
        for guid in fake.item_guids:
            await arena.items.get(guid)
        store = arena._cache.store if arena._cache else None
        assert isinstance(store, MemoryStore)
        assert 0 < len(store) < 10
        assert store.bytes <= size


async def test_a_closed_client_serves_nothing_from_its_cache() -> None:
    async with FakeArena.seeded(items=2, seed=1) as fake:
        arena = client_for(fake, cache=CachePolicy(ttl=60.0))
        async with arena:
            await arena.items.get(fake.item_guids[0])
        with pytest.raises(RuntimeError, match="closed"):
            await arena.items.get(fake.item_guids[0])
