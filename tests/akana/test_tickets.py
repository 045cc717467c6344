"""akana.tickets over real loopback HTTP against FakeAkana: pages, filters, checks, errors."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from arena_async import AkanaClient, NotFoundError, ServerError, Ticket
from arena_async.akana.tickets import TICKET_STATES
from arena_async.testing import FakeAkana, Fault
from arena_async.testing._fake_akana import LABELS, STATES, TICKET_PARAMS
from tests.conftest import FakeClock


def client_for(fake: FakeAkana, **kw: Any) -> AkanaClient:
    return AkanaClient(base_url=fake.url, email=fake.email, password=fake.password, **kw)


def listings(fake: FakeAkana) -> list[tuple[int, int]]:
    return [(int(r.query["start"]), int(r.query["count"])) for r in fake.requests
            if r.method == "GET" and r.path == "/api/tickets"]


@pytest.fixture(scope="module")
def seeded_1001() -> tuple[FakeAkana, list[str]]:
    """One generated fake (started per test), with its tickets in server order."""
    fake = FakeAkana.seeded(tickets=1001, seed=3)
    return fake, [t["TicketID"] for t in fake.tickets]


@pytest.mark.parametrize("page_size", [1, 100, 1000])
async def test_1001_tickets_come_back_once_each_in_server_order(
        page_size: int, seeded_1001: tuple[FakeAkana, list[str]]) -> None:
    fake, truth = seeded_1001
    fake.clear_requests()
    async with fake:
        async with client_for(fake) as akana:
            got = [t.ticket_id async for t in akana.tickets.iter(page_size=page_size)]
        assert got == truth
        assert len(set(got)) == 1001
        pages = 1001 // page_size + 1  # the last page is short (maybe empty)
        assert listings(fake) == [(i * page_size, page_size) for i in range(pages)]
        assert fake.unknown_params == []


async def test_tickets_are_fully_structured(fake_akana: FakeAkana) -> None:
    async with client_for(fake_akana) as akana:
        tickets = await akana.tickets.list()
    assert all(isinstance(t, Ticket) for t in tickets)
    wire = fake_akana.tickets
    for ticket, raw in zip(tickets, wire, strict=True):
        assert ticket.created is not None
        assert ticket.created.tzinfo is not None
        assert ticket.labels == raw["Label"]
        assert ticket.tags == raw["Tag"]
        assert ticket.comment_count == raw["Comments"]
        assert [a.value for a in ticket.actions] == [a["value"] for a in raw["Action"]]
        assert [r.id for r in ticket.target_resources] == [
            r["ID"] for r in raw["TargetResources"]["TargetResource"]]
        assert (ticket.image is None) == ("Image" not in raw)
        assert ticket.comments_preview is not None
        assert len(ticket.comments_preview.comments) == len(raw["CommentsPreview"]["Comment"])
        assert ticket.authoring_user is not None
        assert ticket.authoring_user.user_id == raw["AuthoringUser"]["UserID"]


async def test_pages_report_start_and_the_end_and_resume() -> None:
    async with FakeAkana.seeded(tickets=10, seed=1) as fake:
        truth = [t["TicketID"] for t in fake.tickets]
        async with client_for(fake) as akana:
            pages = [p async for p in akana.tickets.pages(page_size=5)]
            assert [(p.start, p.next_start, len(p.items)) for p in pages] == [
                (0, 5, 5), (5, 10, 5), (10, None, 0)]
            short = [p async for p in akana.tickets.pages(page_size=4, start=3)]
            assert [(p.start, p.next_start, len(p.items)) for p in short] == [
                (3, 7, 4), (7, None, 3)]
            first = await akana.tickets.list(page_size=4, max_items=6)
            rest = await akana.tickets.list(page_size=4, start=6)
        assert [t.ticket_id for t in first + rest] == truth
        # max_items shrinks the last count instead of fetching tickets to drop them.
        assert listings(fake)[-4:] == [(0, 4), (4, 2), (6, 4), (10, 4)]


async def test_every_filter_reaches_the_server_under_its_exact_name(
        fake_akana: FakeAkana) -> None:
    sample = fake_akana.tickets[0]
    async with client_for(fake_akana) as akana:
        await akana.tickets.list(
            api_id=sample["APIID"], app_id="app-1.acmepaymentscorp",
            retrieving_user_id=fake_akana.user.user_id, author_id=sample["UserID"],
            item_id=sample["TicketID"], tag="bug", label=LABELS[0], state="OPEN",
            include_comments=False, number_of_comments=0, include_actions=True,
            sort_by="com.soa.sort.order.updated", page_size=7, start=2)
        await akana.tickets.list(include_comments=True, include_actions=False,
                                 number_of_comments=5, page_size=1000)
        await akana.tickets.list(page_size=1000)
    sent = [r.query_items for r in fake_akana.requests if r.path == "/api/tickets"]
    assert sent[0] == [
        ("APIID", sample["APIID"]), ("AppID", "app-1.acmepaymentscorp"),
        ("RetrievingUserID", fake_akana.user.user_id), ("AuthorID", sample["UserID"]),
        ("ItemID", sample["TicketID"]), ("Tag", "bug"), ("Label", LABELS[0]),
        ("State", "OPEN"), ("IncludeComments", "false"), ("NumberOfComments", "0"),
        ("IncludeActions", "true"), ("SortBy", "com.soa.sort.order.updated"),
        ("start", "2"), ("count", "7"),
    ]
    assert [name for name, _ in sent[0]] == list(TICKET_PARAMS)
    assert sent[1] == [("IncludeComments", "true"), ("NumberOfComments", "5"),
                       ("IncludeActions", "false"), ("start", "0"), ("count", "1000")]
    assert sent[2] == [("start", "0"), ("count", "1000")]  # None filters are not sent
    assert fake_akana.unknown_params == []


@pytest.mark.parametrize(("kw", "expected"), [
    ({"state": "OPEN"}, {"State": "OPEN"}),
    ({"tag": "bug"}, {"Tag": "bug"}),
    ({"label": LABELS[1]}, {"Label": LABELS[1]}),
])
async def test_filters_select_what_the_server_selects(
        fake_akana: FakeAkana, kw: dict[str, str], expected: dict[str, str]) -> None:
    (wire, value), = expected.items()
    truth = [t["TicketID"] for t in fake_akana.tickets
             if (t.get(wire) == value if isinstance(t.get(wire), str) else value in t[wire])]
    assert truth
    async with client_for(fake_akana) as akana:
        got = [t.ticket_id for t in await akana.tickets.list(page_size=10, **kw)]
    assert got == truth


@pytest.mark.parametrize("other", ["NOPE", "REOPENED", "Pending"])
async def test_an_undocumented_state_is_sent_as_given_with_a_warning(
        fake_akana: FakeAkana, other: str, caplog: pytest.LogCaptureFixture) -> None:
    # (The documented list is unconfirmed: a platform with more states must still work.)
    async with client_for(fake_akana) as akana:
        with caplog.at_level(logging.WARNING, logger="arena_async.akana.tickets"):
            assert await akana.tickets.list(state=other) == []
    assert [r.query["State"] for r in fake_akana.requests if r.path == "/api/tickets"] \
        == [other]
    [record] = [r for r in caplog.records if r.name == "arena_async.akana.tickets"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        f"state {other!r} is not one of the documented ticket states (OPEN, RESOLVED, "
        "CLOSED, REOPEN): sent as given; a state the platform does not have matches no "
        "ticket")


async def test_a_state_in_any_case_is_sent_as_the_platform_spells_it(
        fake_akana: FakeAkana) -> None:
    truth = [t["TicketID"] for t in fake_akana.tickets if t["State"] == "RESOLVED"]
    assert truth
    async with client_for(fake_akana) as akana:
        for spelled in ("RESOLVED", "resolved", "Resolved"):
            assert [t.ticket_id for t in await akana.tickets.list(state=spelled)] == truth
    assert {r.query["State"] for r in fake_akana.requests if r.path == "/api/tickets"} \
        == {"RESOLVED"}


def test_the_documented_states_are_the_fakes() -> None:
    assert TICKET_STATES == STATES


async def test_comment_and_action_options_shape_the_tickets(fake_akana: FakeAkana) -> None:
    async with client_for(fake_akana) as akana:
        bare = await akana.tickets.list(include_comments=False, include_actions=False)
        one = await akana.tickets.list(number_of_comments=1)
        ordered = await akana.tickets.list(sort_by="com.soa.sort.order.updated")
    assert all(t.comments_preview is None and t.actions == [] for t in bare)
    assert all(t.comments_preview is not None and len(t.comments_preview.comments) <= 1
               for t in one)
    assert [t.ticket_id for t in ordered] == [
        t["TicketID"] for t in fake_akana.tickets_for(None, sort_by="com.soa.sort.order.updated")]


async def test_a_restricted_user_sees_fewer_tickets_not_an_error(fake_akana: FakeAkana) -> None:
    async with AkanaClient(base_url=fake_akana.url, email=fake_akana.restricted_email,
                           password=fake_akana.restricted_password) as akana:
        got = [t.ticket_id for t in await akana.tickets.list()]
    truth = [t["TicketID"] for t in fake_akana.tickets_for(fake_akana.restricted_email)]
    assert got == truth
    assert 0 < len(got) < len(fake_akana.tickets)


@pytest.mark.parametrize("kw", [
    {"page_size": 0}, {"page_size": -1}, {"page_size": True}, {"page_size": 2.0},
    {"start": -1}, {"start": "0"}, {"max_items": -1},
    {"api_id": ""}, {"app_id": "  "}, {"retrieving_user_id": 5}, {"author_id": b"x"},
    {"item_id": ""}, {"tag": ""}, {"label": 1}, {"state": ""}, {"sort_by": ""},
    {"include_comments": "true"}, {"include_comments": 1}, {"include_actions": "false"},
    {"number_of_comments": -1}, {"number_of_comments": True}, {"number_of_comments": "2"},
])
async def test_bad_arguments_raise_before_anything_is_sent(kw: dict[str, Any]) -> None:
    # Nothing listens on port 1: sending anything would be a TransportError, not ValueError.
    async with AkanaClient(base_url="http://127.0.0.1:1", email="a@b", password="p") as akana:
        name = next(iter(kw))
        with pytest.raises(ValueError, match=name):
            akana.tickets.pages(**kw)
        with pytest.raises(ValueError, match=name):
            akana.tickets.iter(**kw)
        with pytest.raises(ValueError, match=name):
            await akana.tickets.list(**kw)


@pytest.mark.parametrize("bad", ["", "a/b", "../x", "a b", "a?b", "a#b", "a%2F", 5, None])
async def test_get_refuses_ids_that_could_change_the_path(bad: Any) -> None:
    async with AkanaClient(base_url="http://127.0.0.1:1", email="a@b", password="p") as akana:
        with pytest.raises(ValueError, match="ticket_id"):
            await akana.tickets.get(bad)


async def test_get_and_bulk_get(fake_akana: FakeAkana) -> None:
    ids = [t["TicketID"] for t in fake_akana.tickets[:20]]
    missing = "ticket99999.acmepaymentscorp"
    async with client_for(fake_akana) as akana:
        one = await akana.tickets.get(ids[0])
        assert one.ticket_id == ids[0]
        outcomes = [o async for o in akana.bulk(akana.tickets.get, [*ids, missing],
                                                ordered=True)]
    assert [o.key for o in outcomes] == [*ids, missing]
    assert all(o.ok and o.value is not None and o.value.ticket_id == o.key
               for o in outcomes[:-1])
    error = outcomes[-1].error
    assert isinstance(error, NotFoundError)
    assert missing in str(error)
    assert "v81" in str(error)
    assert fake_akana.stats.logins == 1


async def test_concurrent_listings_share_one_login(fake_akana: FakeAkana) -> None:
    async with client_for(fake_akana, max_concurrency=4) as akana:
        results = await asyncio.gather(*(akana.tickets.list(page_size=1000)
                                         for _ in range(10)))
    assert all(len(r) == len(fake_akana.tickets) for r in results)
    assert fake_akana.stats.logins == 1


async def test_a_failed_page_says_where_to_resume(fake_clock: FakeClock) -> None:
    async with FakeAkana.seeded(tickets=30, seed=1) as fake:
        fake.faults.add(Fault("status", status=500, path=r"^/api/tickets$", after=2))
        async with client_for(fake, clock=fake_clock, sleep=fake_clock.sleep) as akana:
            got: list[str] = []

            async def drain() -> None:
                async for t in akana.tickets.iter(page_size=10):
                    got.append(t.ticket_id)

            with pytest.raises(ServerError) as info:
                await drain()
        assert info.value.resume_from == 20
        assert info.value.attempts == 4
        assert len(fake_clock.sleeps) == 3
        assert got == [t["TicketID"] for t in fake.tickets[:20]]
