"""The hot path's shortcuts answer exactly as the general code they stand in for, judged
by public snapshots only (``Limiter.quota``, ``estimated_remaining``, ``stats``, what
``admit_now`` admits; the client's ``stats``; what the fake server received).

- ``Limiter.report`` of a 2xx answer's reading tuple (the pool's 2xx path) leaves the
  limiter answering as ``Limiter.observe(permit, Quota(...))`` does, whatever the sequence
  of readings, resets, lost and unsent attempts and clock moves (both feed the one
  ``QuotaEstimate.observe``; this keeps the entry points from drifting apart), and
  ``admit_now`` admits exactly when ``slot()`` would not wait (both ask ``QuotaEstimate.decide``);
- ``read_quota`` reads what ``parse_quota`` reads;
- ``WireURLs`` hands aiohttp the same URL as ``wire_url``, and a ``Request.on`` a
  ``BaseURL`` carries (``target``) the URL ``wire_url`` makes of its ``url``;
- the limiter's own slot count keeps FIFO order and passes on a slot handed to a waiter
  that was cancelled before it could use it;
- ``Transport.send``'s inline first attempt (the same Exchange, not admitted) and the
  general loop agree on what a failed first attempt costs (attempts, retries, stats).
"""

from __future__ import annotations

import asyncio
import random
import string
from datetime import UTC, datetime
from typing import Any

import pytest
import yarl

from arena_async import ArenaClient, RetryPolicy
from arena_async._limiter import Limiter, Permit
from arena_async._protocol import BaseURL, Request, build_url, parse_quota, read_quota
from arena_async._transport import Transport
from arena_async._urls import WireURLs, wire_url
from arena_async.errors import APIError, QuotaExhaustedError
from arena_async.models.common import Quota
from arena_async.policies import QuotaPolicy
from arena_async.testing import FakeArena, Fault

from .test_limiter import ManualClock
from .test_transport import GivenSession

START = 1_800_000_000.0


def _state(limiter: Limiter) -> tuple[Any, ...]:
    """What the limiter shows: the server's word, the estimate, the counters."""
    return limiter.quota, limiter.estimated_remaining, limiter.stats


async def _admit(limiter: Limiter) -> Permit | str:
    permit = limiter.admit_now()
    if permit is not None:
        return permit
    try:  # the general path: a probe is admitted at once; anything else would wait
        async with asyncio.timeout(0.001), limiter.slot() as permit:
            limiter.end(permit, spent=False)
            return "slot"  # admitted by slot() only (given back unsent)
    except TimeoutError:
        return "waits"
    except QuotaExhaustedError:
        return "refused"


@pytest.mark.parametrize("seed", range(40))
async def test_reporting_a_reading_equals_observe(seed: int) -> None:
    rng = random.Random(seed)
    clock = ManualClock(START)
    policy = QuotaPolicy(reserve=rng.choice([0, 2, 5]))
    general = Limiter(max_concurrency=8, quota=policy, clock=clock, sleep=clock.sleep)
    fast = Limiter(max_concurrency=8, quota=policy, clock=clock, sleep=clock.sleep)
    general.set_limit(1000)
    fast.set_limit(1000)
    open_permits: list[tuple[Permit, Permit]] = []
    remaining = rng.randrange(20, 200)
    reset = START + rng.choice([5.0, 60.0, 3600.0])
    for _ in range(300):
        op = rng.random()
        if op < 0.4 and len(open_permits) < 8:
            a, b = await _admit(general), await _admit(fast)
            if isinstance(a, str) or isinstance(b, str):
                assert a == b
            else:
                assert a.probe == b.probe
                open_permits.append((a, b))
        elif op < 0.8 and open_permits:
            a, b = open_permits.pop(rng.randrange(len(open_permits)))
            fate = rng.random()
            if fate < 0.75:  # a 2xx answer with headers
                shift = rng.random()
                if shift < 0.05:
                    reset += rng.choice([60.0, 3600.0])  # a new window
                    remaining = rng.randrange(20, 200)
                elif shift < 0.08:
                    remaining += rng.randrange(1, 30)  # the counter went up: a reset
                remaining = max(0, remaining - rng.randrange(0, 3))
                told = reset - rng.choice([0.0, 0.0, 0.0, 60.0])  # sometimes an older window
                when = datetime.fromtimestamp(told, UTC) if rng.random() > 0.05 else None
                general.observe(a, Quota(remaining, when))
                fast.report(b, remaining=remaining,  # as the pool reports a 2xx answer
                            reset_ts=when.timestamp() if when is not None else None,
                            quota=(remaining, when,
                                   when.timestamp() if when is not None else None))
            elif fate < 0.9:
                general.observe(a, None)
                fast.observe(b, None)
            else:
                general.end(a, spent=False)
                fast.end(b, spent=False)
            general.release(a)
            fast.release(b)
        else:
            clock.advance(rng.choice([0.5, 2.0, 30.0]))
        assert _state(general) == _state(fast)


def test_read_quota_reads_what_parse_quota_reads() -> None:
    reset = "Fri, 02-May-2099 14:22:13 GMT-0700 (PDT)"
    cases: list[dict[str, str]] = [
        {},
        {"X-Arena-Requests-Remaining": "17"},
        {"X-Arena-Requests-Remaining": " 17 ", "X-Arena-Next-Request-Limit-Reset": reset},
        {"X-Arena-Requests-Remaining": "-3", "X-Arena-Next-Request-Limit-Reset": "soon"},
        {"X-Arena-Requests-Remaining": "many", "X-Arena-Next-Request-Limit-Reset": reset},
        {"X-Arena-Requests-Remaining": "0", "X-Arena-Next-Request-Limit-Reset":
            "Fri, 02 May 2099 21:22:13 GMT"},
    ]
    for headers in cases:
        quota = parse_quota(headers)
        reading = read_quota(headers)
        if quota is None:
            assert reading is None, headers
            continue
        assert reading is not None
        remaining, when, ts = reading
        assert (remaining, when) == (quota.remaining, quota.resets_at), headers
        assert ts == (when.timestamp() if when is not None else None)


def test_wire_urls_equal_wire_url() -> None:
    rng = random.Random(7)
    chars = string.ascii_letters + string.digits + "-._~:/?#[]@!$&'()*+,;=% \u00e9"
    bases = ["http://127.0.0.1:45678", "https://user:pw@[::1]:8443", "http://h",
             "https://a.b.c/v1", "http://x:1?q", "https://h%20x:1", "http://u%zz@h:1",
             "nonsense"]
    wire = WireURLs()
    reused = 0
    for _ in range(20_000):
        url = rng.choice(bases) + "/" + "".join(
            rng.choice(chars) for _ in range(rng.randrange(13)))
        got, expected = wire(url), wire_url(url)
        assert type(got) is type(expected), url
        assert str(got) == str(expected), url
        if isinstance(got, yarl.URL):
            assert isinstance(expected, yarl.URL)
            assert (got.raw_path, got.raw_query_string, got.raw_fragment, got.raw_authority) \
                == (expected.raw_path, expected.raw_query_string, expected.raw_fragment,
                    expected.raw_authority), url
            reused += 1
    assert reused > 10_000  # most of them took the cached-origin path


def test_a_request_on_a_base_carries_what_wire_url_makes_of_its_url() -> None:
    rng = random.Random(11)
    chars = string.ascii_letters + string.digits + "-._~:@!$&'()*+,;=% \u00e9/?#"
    bases = ["http://127.0.0.1:45678", "https://[::1]:8443/v1/", "http://h/a%20b",
             "https://a.b.c/v1", "http://x:1/p?q", "https://h x:1/v1", "nonsense"]
    targets = 0
    for _ in range(5_000):
        text = rng.choice(bases)
        base = BaseURL(text)
        segments = tuple("".join(rng.choice(chars) for _ in range(rng.randrange(1, 9)))
                         for _ in range(rng.randrange(1, 4)))
        request = Request.on(base, "GET", *segments)
        assert request.url == build_url(text, *segments)
        assert request.path == "/" + "/".join(segments)
        expected = wire_url(request.url)
        if request.target is None:
            assert text in ("http://x:1/p?q", "https://h x:1/v1", "nonsense"), text
            continue
        targets += 1
        assert isinstance(expected, yarl.URL), request.url
        assert str(request.target) == str(expected) == request.url
        assert (request.target.raw_path, request.target.raw_authority) == (
            expected.raw_path, expected.raw_authority)
        assert len(request.target.raw_parts) == len(expected.raw_parts)
    assert targets > 2_500  # four bases of seven are plain


async def test_an_id_sent_through_a_target_keeps_its_encoding_on_the_wire() -> None:
    async with FakeArena.seeded(items=1, seed=1) as fake:
        pool = Transport(auth=GivenSession(), limiter=Limiter(max_concurrency=1),
                           retry=RetryPolicy(max_attempts=1), timeout=5.0)
        await pool.open()
        try:
            request = Request.on(BaseURL(fake.url), "GET", "items", "A;x", "tickets",
                                 auth=False)
            assert request.target is not None
            with pytest.raises(APIError):  # no session: 401
                await pool.send(request)
        finally:
            await pool.close()
        assert fake.requests[-1].path.endswith("/items/A%3Bx/tickets")


async def test_a_slot_handed_to_a_cancelled_waiter_goes_to_the_next() -> None:
    limiter = Limiter(max_concurrency=1)
    order: list[int] = []
    holder = limiter.admit_now()
    assert holder is not None

    async def wait(i: int) -> None:
        async with limiter.slot():
            order.append(i)

    first = asyncio.create_task(wait(1))
    second = asyncio.create_task(wait(2))
    await asyncio.sleep(0)
    assert limiter.admit_now() is None  # waiters queued: no jumping ahead of them
    limiter.release(holder)  # handed to the first waiter ...
    first.cancel()  # ... which is cancelled before it runs
    await asyncio.gather(first, second, return_exceptions=True)
    assert first.cancelled()
    assert order == [2]
    assert limiter.stats.in_flight == 0
    again = limiter.admit_now()
    assert again is not None
    limiter.release(again)


async def test_a_failed_first_attempt_goes_on_in_the_general_loop() -> None:
    """A first attempt made inline by ``send`` (the fast path) and one made by the loop
    (a deadline given: the general path) cost the same attempts and stats."""
    results = []
    for deadline in (None, 30.0):
        async with FakeArena.seeded(items=2, seed=1) as fake, ArenaClient(
                email=fake.email, password=fake.password, base_url=fake.url,
                retry=RetryPolicy(max_attempts=4, backoff=0.001, max_backoff=0.001),
        ) as arena:
            guid = fake.item_guids[0]
            await arena.items.tickets.list(guid)  # logged in, the quota known: fast path
            fake.faults.add(Fault("status", status=503, times=1, path="/tickets$"))
            fake.faults.add(Fault("reset_before_headers", times=1, path="/tickets$"))
            before = arena.stats
            refs = await arena.items.tickets.list(guid, deadline=deadline)
            after = arena.stats
            results.append((len(refs), after.requests - before.requests,
                            after.retries - before.retries,
                            after.server_errors - before.server_errors,
                            after.transport_errors - before.transport_errors,
                            len(fake.requests)))
    assert results[0] == results[1]
    assert results[0][1:5] == (3, 2, 1, 1)


async def test_a_2xx_with_an_unreadable_reset_date_keeps_the_count_and_the_slot() -> None:
    """The fast path's 2xx branch: a reset header out of datetime's range (an
    OverflowError in astimezone) is read as no date, and the slot always comes back."""
    async with FakeArena.seeded(items=1, seed=1) as fake, ArenaClient(
            email=fake.email, password=fake.password, base_url=fake.url,
            max_concurrency=1) as arena:
        guid = fake.item_guids[0]
        await arena.items.tickets.list(guid)
        fake.faults.add(Fault("status", status=200, body={"count": 0, "results": []},
                              headers={"X-Arena-Requests-Remaining": "5",
                                       "X-Arena-Next-Request-Limit-Reset":
                                           "9999-12-31T23:59:59-01:00"},
                              times=1, path="/tickets$"))
        assert await arena.items.tickets.list(guid) == []
        async with asyncio.timeout(5):  # the one slot is free again
            assert len(await arena.items.tickets.list(guid)) > 0


async def test_an_error_after_a_failed_first_attempt_has_no_stray_context() -> None:
    """A first attempt that failed on the connection is not the implicit context of the
    error that ends the request later (the retries run outside its except clause)."""
    async with FakeArena.seeded(items=1, seed=1) as fake, ArenaClient(
            email=fake.email, password=fake.password, base_url=fake.url,
            retry=RetryPolicy(max_attempts=3, backoff=0.001, max_backoff=0.001)) as arena:
        guid = fake.item_guids[0]
        await arena.items.tickets.list(guid)
        fake.faults.add(Fault("reset_before_headers", times=1, path="/tickets$"))
        fake.faults.add(Fault("status", status=429, times=1, path="/tickets$", body={
            "status": 429, "errors": [{"code": 4084, "message": "quota spent"}]}))
        with pytest.raises(QuotaExhaustedError) as caught:
            await arena.items.tickets.list(guid)
        assert caught.value.__context__ is None


def test_an_unusable_workspace_limit_is_not_the_limiters() -> None:
    limiter = Limiter(max_concurrency=1)
    pool = Transport(auth=object(), limiter=limiter,  # type: ignore[arg-type]
                       retry=RetryPolicy(), timeout=1.0)
    pool.quota_limit = -1  # a login answer may say -1 for "no limit"
    assert pool.quota_limit == -1
    assert limiter.quota is None
    pool.quota_limit = 1000
    permit = limiter.admit_now()
    assert permit is not None
    limiter.observe(permit, Quota(5, None))
    limiter.release(permit)
    assert limiter.quota == Quota(5, None, limit=1000)


ODD_BODIES = [
    # orjson refuses these; json accepts them: the checked path must answer
    b'{"count": 1, "results": [{"guid": "A", "ticket": {"guid": "T", "number": "N"}}], '
    b'"x": NaN}',
    b'{"count": 1, "results": [{"guid": "A\\ud800", "ticket": {"guid": "T"}}]}',
    '{"count": 1, "results": [{"guid": "A", "ticket": {"guid": "T"}}]}'.encode("utf-16"),
    # orjson reads this integer as a float; it sits in an unknown key, ignored by both
    b'{"count": 123456789012345678901234567890, "results": [{"guid": "A", '
    b'"ticket": {"guid": "T", "big": 99999999999999999999999}}]}',
    # plain, and wrong in ways the checked path names
    b'{"count": 1, "results": [{"guid": "A", "ticket": {"guid": "T", "number": "N"}}]}',
    b'{"count": 0}',
    b'{"count": 1}',
    b'{"count": 1, "results": {"guid": "A"}}',
    b'{"count": 1, "results": [{"guid": 5, "ticket": {"guid": "T"}}]}',
    b'{"count": 1, "resu',
]


@pytest.mark.parametrize("body", ODD_BODIES)
async def test_listing_answers_as_the_json_path_would(body: bytes) -> None:
    from arena_async._convert import loads, structure
    from arena_async.errors import ResponseFormatError
    from arena_async.models.arena import ItemTicketReference

    expected: Any
    try:  # what the checked path decides, written out independently of _results
        data = loads(body)
        assert isinstance(data, dict)
        results = data.get("results")
        if results is None and data.get("count") == 0:
            expected = []
        elif not isinstance(results, list):
            expected = (ResponseFormatError, "$.results")
        else:
            expected = structure(results, list[ItemTicketReference], path="$.results")
    except ResponseFormatError as exc:
        expected = (ResponseFormatError, exc.path)
    async with FakeArena.seeded(items=1, seed=1) as fake, ArenaClient(
            email=fake.email, password=fake.password, base_url=fake.url) as arena:
        fake.faults.add(Fault("status", status=200, body=body, times=1, path="/tickets$"))
        try:
            got: Any = await arena.items.tickets.list(fake.item_guids[0])
        except ResponseFormatError as exc:
            got = (ResponseFormatError, exc.path)
    assert got == expected


def test_a_body_nested_past_the_recursion_limit_is_a_format_error() -> None:
    from arena_async._convert import loads
    from arena_async.errors import ResponseFormatError

    body = b'{"results": [], "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(ResponseFormatError, match="not valid JSON"):
        loads(body)
