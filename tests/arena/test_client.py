"""ArenaClient over real loopback HTTP against FakeArena."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from arena_async import (
    ArenaClient,
    AuthenticationError,
    BadRequestError,
    ItemReference,
    LoginError,
    QuotaExhaustedError,
    QuotaPolicy,
    RateLimitError,
    ResponseFormatError,
    RetryPolicy,
    ServerError,
    TransportError,
)
from arena_async.testing import FakeArena, Fault
from tests.conftest import FakeClock

TRAINING = "GET /items/{item}/trainingrecords"


def client_for(fake: FakeArena, **kw: Any) -> ArenaClient:
    return ArenaClient(email=fake.email, password=fake.password, workspace_id=fake.workspace_id,
                       base_url=fake.url, **kw)


@pytest.mark.parametrize("page_size", [1, 7, 400])
@pytest.mark.parametrize("total", [0, 1, 399, 400, 401, 1234])
async def test_pagination_yields_every_record_once_in_order(total: int, page_size: int) -> None:
    async with FakeArena(seed=total) as fake:
        guid = fake.add_item()
        fake.add_training_records(guid, total)
        truth = [r["guid"] for r in fake.training_records(guid)]
        async with client_for(fake) as arena:
            got = [r.guid async for r in arena.items.training_records.iter(guid,
                                                                          page_size=page_size)]
        assert got == truth
        sent = [(int(r.query["offset"]), int(r.query["limit"]))
                for r in fake.requests if r.route == TRAINING]
        expected_pages = total // page_size + 1  # the last page is short (maybe empty)
        assert sent == [(i * page_size, page_size) for i in range(expected_pages)]


async def test_pages_report_offsets_and_the_end() -> None:
    async with FakeArena() as fake:
        guid = fake.add_item()
        fake.add_training_records(guid, 10)
        async with client_for(fake) as arena:
            pages = [p async for p in arena.items.training_records.pages(guid, page_size=5)]
            assert [(p.offset, p.next_offset, len(p.items)) for p in pages] == [
                (0, 5, 5), (5, 10, 5), (10, None, 0)]
            assert [(p.start, p.next_start) for p in pages][-1] == (10, None)
            short = [p async for p in arena.items.training_records.pages(guid, page_size=4)]
            assert [(p.offset, p.next_offset, len(p.items)) for p in short] == [
                (0, 4, 4), (4, 8, 4), (8, None, 2)]


async def test_max_items_and_resume_from_offset() -> None:
    async with FakeArena() as fake:
        guid = fake.add_item()
        fake.add_training_records(guid, 50)
        truth = [r["guid"] for r in fake.training_records(guid)]
        async with client_for(fake) as arena:
            first = [r.guid async for r in arena.items.training_records.iter(
                guid, page_size=20, max_items=30)]
            rest = await arena.items.training_records.list(guid, page_size=20, offset=30)
        assert first + [r.guid for r in rest] == truth
        limits = [(r.query["offset"], r.query["limit"]) for r in fake.requests
                  if r.route == TRAINING]
        # max_items shrinks the last request instead of fetching records to drop them.
        assert limits == [("0", "20"), ("20", "10"), ("30", "20"), ("50", "20")]


async def test_max_items_zero_sends_nothing() -> None:
    async with FakeArena() as fake:
        guid = fake.add_item()
        async with client_for(fake) as arena:
            assert await arena.items.training_records.list(guid, max_items=0) == []
        assert [r for r in fake.requests if r.route == TRAINING] == []


@pytest.mark.parametrize("bad", ["AB/../logout", "", "a b", "x?y", "%2e%2e", "a#b"])
async def test_bad_guid_raises_before_anything_is_sent(bad: str) -> None:
    async with FakeArena() as fake, client_for(fake) as arena:
        with pytest.raises(ValueError, match="item_guid"):
            await arena.items.tickets.list(bad)
        with pytest.raises(ValueError, match="item_guid"):
            arena.items.training_records.iter(bad)
        with pytest.raises(ValueError, match="ref_guid"):
            await arena.items.references.get("A" * 20, bad)
        assert fake.requests == []


@pytest.mark.parametrize(("kw", "match"), [
    ({"page_size": 0}, "page_size"), ({"page_size": 401}, "page_size"),
    ({"offset": -1}, "offset"), ({"max_items": -1}, "max_items"),
])
async def test_bad_paging_arguments(kw: dict[str, int], match: str) -> None:
    async with FakeArena() as fake, client_for(fake) as arena:
        with pytest.raises(ValueError, match=match):
            arena.items.training_records.pages("A" * 20, **kw)
        assert fake.requests == []


async def test_fifty_concurrent_requests_on_an_expired_session_log_in_once() -> None:
    async with FakeArena.seeded(items=50, seed=3) as fake, client_for(fake) as arena:
        guids = fake.item_guids
        await arena.items.tickets.list(guids[0])
        assert fake.stats.logins == 1
        fake.expire_sessions()
        results = await asyncio.gather(*(arena.items.tickets.list(g) for g in guids))
        assert [[r.guid for r in refs] for refs in results] == [
            [t["guid"] for t in fake.ticket_refs(g)] for g in guids]
        assert fake.stats.logins == 2
        assert arena.stats.logins == 2


async def test_post_is_not_retried_after_a_500(fake_clock: FakeClock) -> None:
    async with FakeArena.seeded(items=3, seed=1) as fake, \
            client_for(fake, sleep=fake_clock.sleep) as arena:
        a, b = fake.item_guids[:2]
        fake.faults.add(Fault("status", status=500, method="POST", path=r"/items$", times=1))
        before = len(fake.references(a))
        with pytest.raises(ServerError) as info:
            await arena.items.references.create(a, b, note="x")
        assert info.value.status == 500
        assert info.value.attempts == 1
        posts = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/items")]
        assert len(posts) == 1
        assert fake_clock.sleeps == []
        assert len(fake.references(a)) == before


async def test_get_is_retried_on_503_with_backoff(fake_clock: FakeClock) -> None:
    async with FakeArena.seeded(items=2, seed=1) as fake, \
            client_for(fake, sleep=fake_clock.sleep, seed=7,
                       retry=RetryPolicy(max_attempts=4, backoff=0.5, max_backoff=30)) as arena:
        guid = fake.item_guids[0]
        fake.faults.add(Fault("status", status=503, path="/tickets", times=3))
        refs = await arena.items.tickets.list(guid)
        assert [r.guid for r in refs] == [t["guid"] for t in fake.ticket_refs(guid)]
        assert arena.stats.retries == 3
        assert len(fake_clock.sleeps) == 3
        for attempt, slept in enumerate(fake_clock.sleeps, 1):
            assert 0 <= slept <= 0.5 * 2 ** (attempt - 1)  # full jitter under the ceiling


async def test_retries_are_bounded(fake_clock: FakeClock) -> None:
    async with FakeArena.seeded(items=2, seed=1) as fake, \
            client_for(fake, sleep=fake_clock.sleep, retry=RetryPolicy(max_attempts=3)) as arena:
        fake.faults.add(Fault("status", status=502, path="/tickets"))
        with pytest.raises(ServerError) as info:
            await arena.items.tickets.list(fake.item_guids[0])
        assert info.value.attempts == 3
        assert "after 3 attempts" in str(info.value)
        assert len([r for r in fake.requests if r.path.endswith("/tickets")]) == 3


async def test_retry_after_is_honoured(fake_clock: FakeClock) -> None:
    async with FakeArena.seeded(items=2, seed=1) as fake, \
            client_for(fake, sleep=fake_clock.sleep, clock=fake_clock) as arena:
        fake.faults.add(Fault("status", status=429, retry_after="7", path="/tickets", times=1,
                              body={"status": 429, "errors": [{"code": 9, "message": "slow"}]}))
        await arena.items.tickets.list(fake.item_guids[0])
        assert fake_clock.sleeps == [7.0]
        assert arena.stats.rate_limited == 1


async def test_retry_after_beyond_max_backoff_is_not_waited(fake_clock: FakeClock) -> None:
    async with FakeArena.seeded(items=2, seed=1) as fake, \
            client_for(fake, sleep=fake_clock.sleep,
                       retry=RetryPolicy(max_backoff=10)) as arena:
        fake.faults.add(Fault("status", status=503, retry_after="3600", path="/tickets"))
        with pytest.raises(ServerError) as info:
            await arena.items.tickets.list(fake.item_guids[0])
        assert info.value.retry_after == 3600.0
        assert fake_clock.sleeps == []


async def test_quota_429_is_never_retried(fake_clock: FakeClock) -> None:
    async with FakeArena.seeded(items=2, seed=1, quota_limit=100) as fake, \
            client_for(fake, sleep=fake_clock.sleep) as arena:
        fake.set_quota(remaining=0)
        with pytest.raises(QuotaExhaustedError) as info:
            await arena.items.tickets.list(fake.item_guids[0])
        assert info.value.status == 429
        assert info.value.resets_at is not None
        assert fake.stats.quota_exhausted == 1
        assert fake_clock.sleeps == []
        # The limiter now knows: the next call fails locally, nothing is sent.
        with pytest.raises(QuotaExhaustedError):
            await arena.items.tickets.list(fake.item_guids[0])
        assert fake.stats.quota_exhausted == 1


async def test_non_quota_429_is_a_rate_limit_error(fake_clock: FakeClock) -> None:
    async with FakeArena.seeded(items=2, seed=1) as fake, \
            client_for(fake, sleep=fake_clock.sleep, retry=RetryPolicy(max_attempts=1)) as arena:
        fake.faults.add(Fault("status", status=429, path="/tickets",
                              body={"status": 429, "errors": [{"code": 1, "message": "slow"}]}))
        with pytest.raises(RateLimitError):
            await arena.items.tickets.list(fake.item_guids[0])


async def test_quota_headers_are_tracked() -> None:
    async with FakeArena.seeded(items=5, seed=1, quota_limit=1000) as fake, \
            client_for(fake) as arena:
        assert arena.quota is None
        for guid in fake.item_guids:
            await arena.items.tickets.list(guid)
        quota = arena.quota
        assert quota is not None
        assert quota.remaining == fake.quota_remaining == 995
        assert quota.limit == 1000  # workspaceRequestLimit from login
        assert quota.resets_at is not None
        assert abs((quota.resets_at - fake.quota_resets_at).total_seconds()) < 1.0


@pytest.mark.parametrize("fmt", ["arena", "rfc1123", "iso"])
async def test_every_reset_header_form_is_understood(fmt: str) -> None:
    async with FakeArena.seeded(items=1, seed=1, quota_limit=10,
                                reset_header_format=fmt) as fake, client_for(fake) as arena:
        await arena.items.tickets.list(fake.item_guids[0])
        assert arena.quota is not None
        assert arena.quota.resets_at is not None
        assert abs((arena.quota.resets_at - fake.quota_resets_at).total_seconds()) < 1.0


async def test_a_given_session_is_used_and_not_ended() -> None:
    def logouts() -> list[str]:
        """Every logout the fake received, live session or not (its counter counts only
        the live ones), as the session id it named."""
        return [r.headers.get("arena_session_id", "") for r in fake.requests
                if r.method == "PUT" and r.path.endswith("/logout")]

    async with FakeArena.seeded(items=2, seed=1) as fake, client_for(fake) as owner:
        await owner.items.tickets.list(fake.item_guids[0])
        session_id = fake.requests[-1].headers["arena_session_id"]
        async with ArenaClient(session_id=session_id, base_url=fake.url) as guest:
            await guest.items.tickets.list(fake.item_guids[1])
            assert fake.requests[-1].headers["arena_session_id"] == session_id
        assert logouts() == []  # the guest closed with the session alive: left alone
        await owner.items.tickets.list(fake.item_guids[0])  # and it still works
        assert fake.requests[-1].status == 200
        async with ArenaClient(session_id=session_id, base_url=fake.url) as guest:
            fake.expire_sessions()
            with pytest.raises(AuthenticationError):
                await guest.items.tickets.list(fake.item_guids[1])  # no credentials
        assert logouts() == []
        assert fake.stats.logins == 1
        assert fake.stats.logouts == 0


async def test_logout_on_close_only_when_we_logged_in() -> None:
    async with FakeArena.seeded(items=1, seed=1) as fake:
        async with client_for(fake) as arena:
            await arena.items.tickets.list(fake.item_guids[0])
        assert fake.stats.logouts == 1
        async with client_for(fake):
            pass  # never used: no login, no logout
        assert (fake.stats.logins, fake.stats.logouts) == (1, 1)


async def test_bad_credentials_raise_login_error_without_the_password(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeArena.seeded(items=1, seed=1) as fake:
        async with ArenaClient(email=fake.email, password="Wr0ng-Secret!",
                               base_url=fake.url) as arena:
            with pytest.raises(LoginError) as info:
                await arena.items.tickets.list(fake.item_guids[0])
        assert info.value.code == 4001
        assert info.value.status == 400
        assert "Wr0ng-Secret!" not in str(info.value)
        assert "Wr0ng-Secret!" not in repr(arena)
        assert "Wr0ng-Secret!" not in caplog.text


async def test_references_round_trip() -> None:
    async with FakeArena.seeded(items=3, seed=5) as fake, client_for(fake) as arena:
        a, b = fake.item_guids[:2]
        link = await arena.items.references.create(a, b, note="see also")
        assert isinstance(link, ItemReference)
        assert (link.item.guid, link.note) == (b, "see also")
        assert link.guid in {r.guid for r in await arena.items.references.list(a)}
        got = await arena.items.references.get(a, link.guid)
        assert got == link
        updated = await arena.items.references.update(a, link.guid, note="changed")
        assert updated.note == "changed"
        cleared = await arena.items.references.update(a, link.guid, note=None)
        assert cleared.note is None
        put = [r for r in fake.requests if r.method == "PUT" and "/items/" in r.path][-1]
        assert put.query == {"setnull": "true"}
        assert put.body == {"note": None}
        await arena.items.references.delete(a, link.guid)
        assert link.guid not in {r.guid for r in await arena.items.references.list(a)}
        with pytest.raises(ValueError, match="itself"):
            await arena.items.references.create(a, a)


async def test_unknown_guid_is_a_bad_request_with_code_3011() -> None:
    async with FakeArena.seeded(items=1, seed=1) as fake, client_for(fake) as arena:
        with pytest.raises(BadRequestError) as info:
            await arena.items.tickets.list("NOSUCHITEMNOSUCHITEM")
        assert info.value.code == 3011
        assert "NOSUCHITEMNOSUCHITEM" in str(info.value)


async def test_training_record_detail_and_variants() -> None:
    async with FakeArena.seeded(items=3, seed=2, trainingplan_key="traningplan",
                                note_key="notes", item_url=True,
                                login_session_key="arena_session_id") as fake, \
            client_for(fake) as arena:
        guid = next(g for g in fake.item_guids if fake.training_records(g))
        truth = fake.training_records(guid, detail=True)[0]
        rec = await arena.items.training_records.get(guid, truth["guid"])
        assert rec.training_plan.guid == truth["traningplan"]["guid"]
        assert (rec.due_date is None) == ("dueDate" not in truth)
        listed = await arena.items.training_records.list(guid)
        assert [r.guid for r in listed] == [r["guid"] for r in fake.training_records(guid)]
        with_refs = next(g for g in fake.item_guids if fake.references(g))
        refs = await arena.items.references.list(with_refs)
        assert refs[0].item.url is not None
        assert [r.note for r in refs] == [r.get("notes") for r in fake.references(with_refs)]


async def test_connection_resets_and_truncations_are_retried(fake_clock: FakeClock) -> None:
    async with FakeArena.seeded(items=2, seed=1) as fake, \
            client_for(fake, sleep=fake_clock.sleep) as arena:
        guid = fake.item_guids[0]
        truth = [t["guid"] for t in fake.ticket_refs(guid)]
        for kind in ("reset_after_headers", "truncate"):
            fake.faults.add(Fault(kind, path="/tickets$", times=1))
            assert [r.guid for r in await arena.items.tickets.list(guid)] == truth
        assert arena.stats.transport_errors == 2
        assert arena.stats.retries == 2


async def test_a_slow_answer_times_out_per_attempt(fake_clock: FakeClock) -> None:
    async with FakeArena.seeded(items=1, seed=1) as fake, \
            client_for(fake, sleep=fake_clock.sleep, timeout=0.05,
                       retry=RetryPolicy(max_attempts=2)) as arena:
        fake.faults.add(Fault("slow_headers", delay=0.3, path="/tickets$"))
        with pytest.raises(TransportError) as info:
            await arena.items.tickets.list(fake.item_guids[0])
        assert info.value.attempts == 2
        assert "timed out" in str(info.value)
        assert f"/items/{fake.item_guids[0]}/tickets" in str(info.value)


@pytest.mark.parametrize("kind", ["invalid_json", "wrong_shape"])
async def test_bad_bodies_raise_response_format_error(kind: str) -> None:
    async with FakeArena.seeded(items=1, seed=1) as fake, client_for(fake) as arena:
        fake.faults.add(Fault(kind, path="/tickets$", times=1))
        with pytest.raises(ResponseFormatError) as info:
            await arena.items.tickets.list(fake.item_guids[0])
        assert info.value.path == "$" if kind == "invalid_json" else "$.results"
        assert info.value.excerpt


async def test_bulk_over_ten_thousand_keys_is_bounded_and_isolates_errors() -> None:
    async with FakeArena.seeded(items=9_000, seed=11, max_item_refs=0,
                                max_training_records=0) as fake, \
            client_for(fake, max_concurrency=16) as arena:
        bad = [f"MISSING{i:013d}" for i in range(1_000)]
        keys = fake.item_guids + bad
        run = arena.bulk(arena.items.tickets.list, keys)
        seen: dict[str, Any] = {}
        async for outcome in run:
            assert outcome.key not in seen
            seen[outcome.key] = outcome
        assert len(seen) == 10_000
        assert run.max_tasks <= 16
        assert fake.stats.max_in_flight <= 16
        failed = {k for k, o in seen.items() if not o.ok}
        assert failed == set(bad)
        assert all(isinstance(seen[k].error, BadRequestError) and seen[k].error.code == 3011
                   for k in bad)
        sample = fake.item_guids[::997]
        assert all([r.guid for r in seen[g].value] == [t["guid"] for t in fake.ticket_refs(g)]
                   for g in sample)


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="email and password"):
        ArenaClient()
    with pytest.raises(ValueError, match="plain http"):
        ArenaClient(session_id="s", base_url="http://arena.example.com/v1")
    ArenaClient(session_id="s", base_url="http://arena.example.com/v1", allow_insecure=True)
    with pytest.raises(ValueError, match="max_concurrency"):
        ArenaClient(session_id="s", max_concurrency=0)
    with pytest.raises(ValueError, match="timeout"):
        ArenaClient(session_id="s", timeout=0)
    with pytest.raises(ValueError, match="retry"):
        ArenaClient(session_id="s", retry=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="credentials") as info:
        ArenaClient(session_id="s", base_url="ftp://user:pa55word@arena.example.com/v1")
    assert "pa55word" not in str(info.value)
    client = ArenaClient(email="me@example.com", password="hunter2-secret")
    assert "hunter2" not in repr(client)


async def test_logout_never_spends_a_spent_budget() -> None:
    async with FakeArena.seeded(items=3, seed=1, quota_limit=3) as fake:
        async with client_for(fake) as arena:
            for guid in fake.item_guids:
                await arena.items.tickets.list(guid)
            with pytest.raises(QuotaExhaustedError):
                await arena.items.tickets.list(fake.item_guids[0])
        assert fake.stats.logouts == 0
        assert fake.stats.quota_exhausted == 0  # nothing was sent past the budget


async def test_logout_leaves_the_reserve_alone() -> None:
    async with FakeArena.seeded(items=4, seed=1, quota_limit=5) as fake:
        async with client_for(fake, quota=QuotaPolicy(reserve=2)) as arena:
            for guid in fake.item_guids[:3]:
                await arena.items.tickets.list(guid)
            with pytest.raises(QuotaExhaustedError):
                await arena.items.tickets.list(fake.item_guids[3])
        assert fake.quota_remaining == 2
        assert fake.stats.logouts == 0


async def test_requests_that_waited_for_a_slot_send_the_new_session() -> None:
    async with FakeArena.seeded(items=100, seed=4) as fake, \
            client_for(fake, max_concurrency=4) as arena:
        await arena.items.tickets.list(fake.item_guids[0])
        fake.expire_sessions()
        fake.clear_requests()
        await asyncio.gather(*(arena.items.tickets.list(g) for g in fake.item_guids))
        statuses = [r.status for r in fake.requests if r.path.endswith("/tickets")]
        # Only the requests already holding a slot met the dead session.
        assert statuses.count(401) <= 4
        assert statuses.count(200) == 100
        assert arena.stats.logins == 2


async def test_refused_credentials_are_tried_once_for_a_whole_bulk_run() -> None:
    async with FakeArena.seeded(items=40, seed=1) as fake, \
            ArenaClient(email=fake.email, password="wrong-password", base_url=fake.url) as arena:
        outcomes = [o async for o in arena.bulk(arena.items.tickets.list, fake.item_guids)]
        assert len(outcomes) == 40
        assert all(isinstance(o.error, LoginError) and o.error.code == 4001 for o in outcomes)
        assert len({id(o.error) for o in outcomes}) == 40  # a fresh error each
        assert fake.stats.failed_logins == 1


async def test_late_checks_happen_before_sending() -> None:
    async with FakeArena.seeded(items=1, seed=1) as fake, client_for(fake) as arena:
        with pytest.raises(ValueError, match="deadline"):
            arena.items.training_records.pages(fake.item_guids[0], deadline=-1)

        async def fn(key: str) -> str:
            return key

        with pytest.raises(ValueError, match="concurrency"):
            arena.bulk(fn, ["a"], concurrency=0)
        assert fake.requests == []
    with pytest.raises(ValueError, match="usage_reason"):
        ArenaClient(session_id="s", usage_reason="line\nbreak")
    with pytest.raises(ValueError, match="allow_insecure"):
        ArenaClient(session_id="s", allow_insecure="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="clock"):
        ArenaClient(session_id="s", clock=5)  # type: ignore[arg-type]


async def test_retry_after_holds_every_request_not_just_the_one_told(
        fake_clock: FakeClock) -> None:
    async with FakeArena.seeded(items=3, seed=1) as fake, \
            client_for(fake, sleep=fake_clock.sleep, clock=fake_clock,
                       retry=RetryPolicy(max_attempts=1)) as arena:
        a, b = fake.item_guids[:2]
        fake.faults.add(Fault("status", status=503, retry_after="5", path=f"{a}/tickets$",
                              times=1))
        with pytest.raises(ServerError):
            await arena.items.tickets.list(a)
        assert fake_clock.sleeps == []
        await arena.items.tickets.list(b)  # another request: it waits out the server's ask
        assert fake_clock.sleeps == [5.0]
        await arena.items.tickets.list(b)  # the hold is over
        assert fake_clock.sleeps == [5.0]
