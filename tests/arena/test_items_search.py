"""arena.items.iter / pages / list / get / guids_for over loopback HTTP against FakeArena."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import pytest_asyncio

import arena_async
from arena_async import (
    ArenaClient,
    BadRequestError,
    CategorySummary,
    Item,
    LifecyclePhaseSummary,
    LookupFailedError,
    ServerError,
    TransportError,
    Url,
    UserSummary,
)
from arena_async.arena.items import Items
from arena_async.testing import FakeArena, Fault
from tests.conftest import FakeClock

SEARCH = "GET /items"
ONE = "GET /items/{item}"


def client_for(fake: FakeArena, **kw: Any) -> ArenaClient:
    kw.setdefault("share", False)  # these are the in-process rules; tests/share has the share's
    return ArenaClient(email=fake.email, password=fake.password, workspace_id=fake.workspace_id,
                       base_url=fake.url, **kw)


def searches(fake: FakeArena) -> list[dict[str, str]]:
    return [r.query for r in fake.requests if r.route == SEARCH]


class Workspace:
    """Four items whose every searchable field is set by hand (the truth of the tests)."""

    def __init__(self, fake: FakeArena) -> None:
        self.fake = fake
        self.electronics = fake.add_category("Electronics")
        self.resistors = fake.add_category("Resistors", parent="Electronics")
        fake.add_category("Fasteners")
        self.in_design = fake.add_lifecycle_phase("In Design", "IN_DESIGN")
        fake.add_lifecycle_phase("In Production", "IN_PRODUCTION")
        fake.add_lifecycle_phase("Obsolete", "OBSOLETE")
        self.guids = {
            "PN-100100": fake.add_item(
                number="PN-100100", name="Resistor 10k", description="Thick film",
                revision_number="B", category="Resistors", lifecycle_phase="In Production",
                owner="Ann Lee", creator="Bob Roe", assembly_type="NOT_AN_ASSEMBLY",
                in_assembly=True, effective_date_time="2023-01-01T00:00:00Z",
                fields={"modifiedBom": True}),
            "PN-100200": fake.add_item(
                number="PN-100200", name="Resistor 1k", description="Thin film",
                revision_number="A", category="Resistors", lifecycle_phase="In Design",
                owner="Chen Wu", creator="Ann Lee", assembly_type="NOT_AN_ASSEMBLY",
                in_assembly=False, fields={"modifiedFiles": True}),
            "PN-200100": fake.add_item(
                number="PN-200100", name="Board", description="Main board",
                revision_number="A", category="Electronics", lifecycle_phase="In Production",
                owner="Ann Lee", creator="Chen Wu", assembly_type="TOP_LEVEL_ASSEMBLY",
                in_assembly=False, effective_date_time="2024-06-01T00:00:00Z",
                fields={"modifiedSourcing": True}),
            "PN-200200": fake.add_item(
                number="PN-200200", name="Screw M3", description="Steel",
                revision_number="C", category="Fasteners", lifecycle_phase="Obsolete",
                owner="Bob Roe", creator="Bob Roe", assembly_type="SUB_ASSEMBLY",
                in_assembly=True, effective_date_time="2020-01-01T00:00:00Z",
                fields={"modifiedSpecs": True, "supersededDateTime": "2022-01-01T00:00:00Z"}),
        }

    def creator_guid(self, number: str) -> str:
        guid: str = self.fake.item(self.guids[number])["creator"]["guid"]
        return guid


@pytest_asyncio.fixture
async def workspace() -> AsyncIterator[Workspace]:
    async with FakeArena(seed=5) as fake:
        yield Workspace(fake)


A, B, C, D = "PN-100100", "PN-100200", "PN-200100", "PN-200200"


@pytest.mark.parametrize(("kwargs", "wire", "expected"), [
    ({"number": A}, {"number": A}, [A]),
    ({"number": "pn-100100"}, {"number": "pn-100100"}, [A]),  # the fake ignores case
    ({"number": "PN-1*"}, {"number": "PN-1*"}, [A, B]),
    ({"number": "PN-1"}, {"number": "PN-1"}, []),  # exact unless it ends with *
    ({"name": "Resistor*"}, {"name": "Resistor*"}, [A, B]),
    ({"description": "Thick film"}, {"description": "Thick film"}, [A]),
    ({"revision_number": "A"}, {"revisionNumber": "A"}, [B, C]),
    ({"category_name": "Resistors"}, {"category.name": "Resistors"}, [A, B]),
    ({"category_name": "Electronics"}, {"category.name": "Electronics"}, [C]),
    ({"category_name": "Electronics", "include_child_categories": True},
     {"category.name": "Electronics", "includeChildCategories": "true"}, [A, B, C]),
    ({"category_name": "Electronics", "include_child_categories": False},
     {"category.name": "Electronics", "includeChildCategories": "false"}, [C]),
    ({"lifecycle_phase_stage": "IN_PRODUCTION"}, {"lifecyclePhase.stage": "IN_PRODUCTION"},
     [A, C]),
    ({"owner_full_name": "Ann Lee"}, {"owner.fullName": "Ann Lee"}, [A, C]),
    ({"creator_email": "bob.roe@example.com"}, {"creator.email": "bob.roe@example.com"}, [A, D]),
    ({"creator_full_name": "Chen Wu"}, {"creator.fullName": "Chen Wu"}, [C]),
    ({"in_assembly": True}, {"inAssembly": "true"}, [A, D]),
    ({"in_assembly": False}, {"inAssembly": "false"}, [B, C]),
    ({"assembly_type": "TOP_LEVEL_ASSEMBLY"}, {"assemblyType": "TOP_LEVEL_ASSEMBLY"}, [C]),
    ({"assembly_type": "SUB_ASSEMBLY"}, {"assemblyType": "SUB_ASSEMBLY"}, [D]),
    ({"modified_bom": True}, {"modifiedBom": "true"}, [A]),
    ({"modified_files": True}, {"modifiedFiles": "true"}, [B]),
    ({"modified_sourcing": True}, {"modifiedSourcing": "true"}, [C]),
    ({"modified_specs": True}, {"modifiedSpecs": "true"}, [D]),
    ({"modified_specs": False}, {"modifiedSpecs": "false"}, [A, B, C]),
    ({"effective_date_time": datetime(2023, 6, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))},
     {"effectiveDateTime": "2023-06-01T00:00:00Z"}, [A]),
    ({"effective_date_time": "2024-07-01T00:00:00Z"},
     {"effectiveDateTime": "2024-07-01T00:00:00Z"}, [A, C]),
    ({"criteria": [[{"attribute": "category.name", "operator": "IS_EQUAL_TO",
                     "value": "Resistors"}, "AND",
                    {"attribute": "modifiedBOM", "operator": "IS_EQUAL_TO", "value": True}]]},
     {"criteria": '[[{"attribute":"category.name","operator":"IS_EQUAL_TO","value":"Resistors"},'
                  '"AND",{"attribute":"modifiedBOM","operator":"IS_EQUAL_TO","value":true}]]'},
     [A]),
    ({"criteria": [[{"attribute": "number", "operator": "STARTS_WITH", "value": "PN-2"}], "OR",
                   [{"attribute": "owner.fullName", "operator": "IS_EQUAL_TO",
                     "value": "Chen Wu"}]],
      "in_assembly": False},
     {"criteria": '[[{"attribute":"number","operator":"STARTS_WITH","value":"PN-2"}],"OR",'
                  '[{"attribute":"owner.fullName","operator":"IS_EQUAL_TO","value":"Chen Wu"}]]',
      "inAssembly": "false"}, [B, C]),
    ({"number": "PN-*", "lifecycle_phase_stage": "IN_PRODUCTION", "owner_full_name": "Ann Lee",
      "category_name": None, "in_assembly": None},
     {"number": "PN-*", "lifecyclePhase.stage": "IN_PRODUCTION", "owner.fullName": "Ann Lee"},
     [A, C]),
    ({}, {}, [A, B, C, D]),
])
async def test_every_filter_is_sent_by_its_wire_name_and_selects(
    workspace: Workspace, kwargs: dict[str, Any], wire: dict[str, str], expected: list[str],
) -> None:
    fake = workspace.fake
    async with client_for(fake) as arena:
        items = await arena.items.list(**kwargs)
    assert [i.number for i in items] == expected
    assert [i.guid for i in items] == [workspace.guids[n] for n in expected]
    # One request: the filters (None left out), the first page of 400.
    assert searches(fake) == [{**wire, "offset": "0", "limit": "400"}]


async def test_guid_filters(workspace: Workspace) -> None:
    fake = workspace.fake
    async with client_for(fake) as arena:
        assert [i.number for i in await arena.items.list(category_guid=workspace.resistors)] \
            == [A, B]
        assert [i.number for i in await arena.items.list(
            category_guid=workspace.electronics, include_child_categories=True)] == [A, B, C]
        assert [i.number for i in await arena.items.list(
            lifecycle_phase_guid=workspace.in_design)] == [B]
        assert [i.number for i in await arena.items.list(
            creator_guid=workspace.creator_guid(B))] == [B]
    assert [q.get("category.guid") for q in searches(fake)] == [
        workspace.resistors, workspace.electronics, None, None]
    assert searches(fake)[2]["lifecyclePhase.guid"] == workspace.in_design
    assert searches(fake)[3]["creator.guid"] == workspace.creator_guid(B)


async def test_full_view_structures_every_field(workspace: Workspace) -> None:
    fake = workspace.fake
    async with client_for(fake) as arena:
        (item,) = await arena.items.list(number=A)
        single = await arena.items.get(workspace.guids[A])
    wire = fake.item(workspace.guids[A])
    assert item == single
    assert "responseview" not in searches(fake)[0]
    assert fake.requests_to(ONE)[0].query == {}
    assert item.name == "Resistor 10k"
    assert item.description == "Thick film"
    assert item.revision_number == "B"
    assert item.revision_status == "EFFECTIVE"
    assert item.category == CategorySummary(workspace.resistors, "Resistors")
    assert item.lifecycle_phase == LifecyclePhaseSummary(
        wire["lifecyclePhase"]["guid"], "In Production", "IN_PRODUCTION")
    assert item.owner == UserSummary(full_name="Ann Lee")
    assert item.creator == UserSummary(full_name="Bob Roe", email="bob.roe@example.com",
                                       guid=wire["creator"]["guid"])
    assert item.assembly_type == "NOT_AN_ASSEMBLY"
    assert (item.is_assembly, item.in_assembly, item.modified_bom) == (False, True, True)
    assert item.effective_date_time == datetime(2023, 1, 1, tzinfo=UTC)
    assert item.creation_date_time is not None
    assert item.creation_date_time.tzinfo is UTC
    assert item.standard_cost == wire["standardCost"]
    assert item.uom == "each"
    assert item.additional_attributes == []
    assert item.url == Url(f"{fake.url}/items/{item.guid}", wire["url"]["app"])


async def test_minimum_view_has_guid_number_url_only(workspace: Workspace) -> None:
    fake = workspace.fake
    async with client_for(fake) as arena:
        items = await arena.items.list(number="PN-2*", view="minimum")
        single = await arena.items.get(workspace.guids[C], view="minimum")
    assert searches(fake)[0]["responseview"] == "minimum"
    assert fake.requests_to(ONE)[0].query == {"responseview": "minimum"}
    assert [i.number for i in items] == [C, D]
    assert items[0] == single
    for item in items:
        assert item.url is not None
        assert item.url.api == f"{fake.url}/items/{item.guid}"
        assert item == Item(item.guid, item.number, url=item.url)  # every other field None


async def test_percent_and_plus_reach_the_server_encoded() -> None:
    async with FakeArena() as fake:
        odd = fake.add_item(number="A%B+C D&E=F")
        fake.add_item(number="A%B C D&E=F")  # what a '+' sent raw would mean
        async with client_for(fake) as arena:
            items = await arena.items.list(number="A%B+C D&E=F")
            assert [i.guid for i in items] == [odd]
            prefix = await arena.items.list(name=None, number="A%B+*")
            assert [i.guid for i in prefix] == [odd]
        raw = [r.query_string for r in fake.requests if r.route == SEARCH]
        assert raw[0].lower().startswith("number=a%25b%2bc+d%26e%3df&")
        assert raw[1].lower().startswith("number=a%25b%2b*&")


@pytest.mark.parametrize("total", [0, 1, 4, 5, 6, 10, 11])
async def test_paging_edges(total: int) -> None:
    async with FakeArena(seed=total) as fake:
        guids = [fake.add_item(number=f"PN-{n:03d}") for n in range(total)]
        async with client_for(fake) as arena:
            pages = [p async for p in arena.items.pages(number="PN-*", page_size=5)]
        assert [i.guid for p in pages for i in p.items] == guids
        # Ends at the first short page: an empty one when total is a multiple of 5.
        assert [(p.offset, p.next_offset, len(p.items)) for p in pages] == [
            (5 * k, None if k == total // 5 else 5 * k + 5, min(5, total - 5 * k))
            for k in range(total // 5 + 1)]
        assert [(q["offset"], q["limit"]) for q in searches(fake)] == [
            (str(5 * k), "5") for k in range(total // 5 + 1)]


@pytest.mark.parametrize(("max_items", "offset", "expected_requests", "expected"), [
    (7, 0, [("0", "5"), ("5", "2")], range(0, 7)),
    (10, 0, [("0", "5"), ("5", "5")], range(0, 10)),  # no request once max_items is reached
    (0, 0, [], range(0)),
    (3, 9, [("9", "3")], range(9, 12)),
    (None, 10, [("10", "5")], range(10, 12)),
])
async def test_max_items_and_offset(max_items: int | None, offset: int,
                                    expected_requests: list[tuple[str, str]],
                                    expected: range) -> None:
    async with FakeArena() as fake:
        guids = [fake.add_item() for _ in range(12)]
        async with client_for(fake) as arena:
            got = [i.guid async for i in arena.items.iter(page_size=5, offset=offset,
                                                          max_items=max_items)]
        assert got == [guids[k] for k in expected]
        assert [(q["offset"], q["limit"]) for q in searches(fake)] == expected_requests


async def test_a_failed_page_says_where_to_resume() -> None:
    async with FakeArena() as fake:
        guids = [fake.add_item() for _ in range(12)]
        fake.faults.add(Fault("status", status=400, path=r"/items$", after=1, times=1))
        async with client_for(fake) as arena:
            pages = arena.items.pages(page_size=5)
            first = await anext(pages)
            with pytest.raises(BadRequestError) as caught:
                await anext(pages)
            assert caught.value.resume_from == 5
            rest = [i.guid async for i in arena.items.iter(page_size=5, offset=5)]
        assert [i.guid for i in first.items] + rest == guids


async def test_deadline_is_passed_and_checked() -> None:
    async with FakeArena() as fake:
        fake.add_item()
        async with client_for(fake) as arena:
            assert len(await arena.items.list(deadline=30.0)) == 1
            with pytest.raises(ValueError, match="deadline"):
                arena.items.iter(deadline=0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"view": "compact"}, "view must be 'full' or 'minimum'"),
    ({"assembly_type": "ASSEMBLY"}, "assembly_type must be one of TOP_LEVEL_ASSEMBLY"),
    ({"criteria": [["number", "x"]]}, "criteria[0][0] must be a criterion"),
    ({"criteria": "{}"}, "criteria must be a list of criterion groups"),
    ({"criteria": {"number": "PN-1"}}, "not a dict: e.g. criteria=[[{"),
    ({"criteria": [[{"attribute": "number", "operator": "IS_EQUAL_TO", "value": object()}]]},
     'criteria[0][0]["value"] must be a string'),
    ({"number": 5}, "number must be a string or None, got int"),
    ({"category_name": ""}, "category_name must not be empty"),
    ({"in_assembly": "yes"}, "in_assembly must be True, False or None"),
    ({"include_child_categories": 1}, "include_child_categories must be True, False or None"),
    ({"effective_date_time": datetime(2024, 1, 1)}, "effective_date_time must say its time"),
    ({"effective_date_time": 20240101}, "effective_date_time must be an aware datetime"),
    ({"page_size": 0}, "page_size must be 1..400"),
    ({"page_size": 401}, "page_size must be 1..400"),
    ({"offset": -1}, "offset must be >= 0"),
    ({"max_items": -1}, "max_items must be None or an integer >= 0"),
])
async def test_bad_arguments_are_refused_before_sending(kwargs: dict[str, Any],
                                                        message: str) -> None:
    async with FakeArena() as fake, client_for(fake) as arena:
        with pytest.raises(ValueError, match=re.escape(message)):
            arena.items.iter(**kwargs)
        with pytest.raises(ValueError, match=re.escape(message)):
            await arena.items.list(**kwargs)
        with pytest.raises(TypeError):
            arena.items.iter(numbr="x")
        assert fake.stats.requests == 0  # not even the login


async def test_get_checks_its_arguments_and_reports_unknown_items() -> None:
    async with FakeArena() as fake, client_for(fake) as arena:
        with pytest.raises(ValueError, match="item_guid"):
            await arena.items.get("AB/../logout")
        with pytest.raises(ValueError, match="view"):
            await arena.items.get("ABC", view="short")  # type: ignore[arg-type]
        assert fake.stats.requests == 0
        with pytest.raises(BadRequestError) as caught:
            await arena.items.get("NOSUCHITEM0000000000")
        assert caught.value.code == 3011


# ------------------------------------------------------------------------- guids_for


def asked(fake: FakeArena) -> list[list[str]]:
    """The numbers of each lookup request, in the order received."""
    out = []
    for query in searches(fake):
        groups = json.loads(query["criteria"])
        assert groups[1::2] == ["OR"] * (len(groups) // 2)
        out.append([g[0]["value"] for g in groups[::2]])
    return out


async def test_guids_for_found_missing_and_duplicates() -> None:
    async with FakeArena() as fake:
        guids = {n: fake.add_item(number=n) for n in ("PN-1", "PN-2", "PN-3")}
        fake.add_item(number="PN-10")  # a prefix of nothing asked: exact match only
        async with client_for(fake) as arena:
            got = await arena.items.guids_for(["PN-2", "PN-1", "NOPE", "PN-2", "PN-1"])
            assert got == {"PN-2": guids["PN-2"], "PN-1": guids["PN-1"], "NOPE": None}
            assert list(got) == ["PN-2", "PN-1", "NOPE"]
            assert asked(fake) == [["PN-2", "PN-1", "NOPE"]]  # one request for all three
            sent = searches(fake)
            assert all(q["responseview"] == "minimum" and q["limit"] == "400" for q in sent)
            assert all(set(q) == {"criteria", "responseview", "offset", "limit"} for q in sent)
            # Asked again (None included): nothing is spent.
            fake.clear_requests()
            again = await arena.items.guids_for(("PN-1", "NOPE"))
            assert again == {"PN-1": guids["PN-1"], "NOPE": None}
            assert fake.stats.requests == 0
            # Only what is new is asked.
            third = await arena.items.guids_for(iter(["PN-3", "PN-2"]))
            assert third == {"PN-3": guids["PN-3"], "PN-2": guids["PN-2"]}
            assert asked(fake) == [["PN-3"]]
            assert await arena.items.guids_for([]) == {}
            assert fake.stats.requests == 1


@pytest.mark.parametrize(("numbers", "message"), [
    ("PN-1", "not one string"),
    (["PN-1", ""], "must not be empty"),
    ([" PN-1"], "whitespace"),
    (["PN-1", 7], "must be a string, got int"),
    (None, "iterable"),
    (["PN-1", "%" * 3000], "too long to look up"),
])
async def test_guids_for_refuses_bad_numbers_before_sending(numbers: Any, message: str) -> None:
    async with FakeArena() as fake, client_for(fake) as arena:
        with pytest.raises(ValueError, match=message):
            await arena.items.guids_for(numbers)
        with pytest.raises(ValueError, match=message):
            arena.items.guid_batches(numbers)  # at the call, not at the first iteration
        for bad in ({"page_size": 0}, {"page_size": 401}, {"deadline": -1}):
            with pytest.raises(ValueError):
                arena.items.guid_batches(["PN-1"], **bad)
        assert fake.stats.requests == 0


async def test_guids_for_revisions_and_case(caplog: pytest.LogCaptureFixture) -> None:
    async with FakeArena() as fake:
        first = fake.add_item(number="PN-7", revision_number="A")
        fake.add_item(number="PN-7", revision_number="B")
        lower = fake.add_item(number="pn-8")
        async with client_for(fake) as arena:
            with caplog.at_level(logging.WARNING, logger="arena_async.arena.items"):
                got = await arena.items.guids_for(["PN-7", "PN-8"])
        assert got == {"PN-7": first, "PN-8": lower}
        assert "2 items have number 'PN-7'" in caplog.text


async def test_guids_for_exact_match_wins_over_case_variant() -> None:
    async with FakeArena() as fake:
        fake.add_item(number="pn-9")
        exact = fake.add_item(number="PN-9")
        async with client_for(fake) as arena:
            assert await arena.items.guids_for(["PN-9"]) == {"PN-9": exact}


async def test_asterisk_percent_and_plus_are_sent_and_matched_exactly() -> None:
    async with FakeArena() as fake:
        tricky = ["PN-1*", "PN-1", "50%", "50%25", "1+1", "1 1", "A*B", "AxB", "*", "%2B"]
        guids = {n: fake.add_item(number=n) for n in tricky}
        async with client_for(fake) as arena:
            got = await arena.items.guids_for(["PN-1*", "50%", "1+1", "A*B", "*", "%2B"])
            assert got == {n: guids[n] for n in ["PN-1*", "50%", "1+1", "A*B", "*", "%2B"]}
            assert asked(fake) == [["PN-1*", "50%", "1+1", "A*B", "*", "%2B"]]
            raw = fake.requests_to(SEARCH)[0].query_string
            assert "%2525" not in raw
            assert "50%25" in raw
            assert "1%2B1" in raw  # encoded once
            assert await arena.items.guids_for(["PN-1", "1 1", "AxB"]) == {
                n: guids[n] for n in ["PN-1", "1 1", "AxB"]}


async def test_300_numbers_cost_at_most_10_requests_none_over_6_kb() -> None:
    async with FakeArena() as fake:
        guids = {f"PN-{n:06d}": fake.add_item(number=f"PN-{n:06d}") for n in range(300)}
        async with client_for(fake, max_concurrency=4) as arena:
            got = await arena.items.guids_for([*guids, "MISSING"])
        assert got == {**guids, "MISSING": None}
        assert fake.stats.by_route[SEARCH] <= 10
        assert fake.stats.by_route == {SEARCH: fake.stats.by_route[SEARCH], "POST /login": 1,
                                       "PUT /logout": 1}
        for record in fake.requests_to(SEARCH):
            line = f"GET {record.path}?{record.query_string} HTTP/1.1"
            assert len(line) <= 6144
            assert record.status == 200
        assert sorted(n for batch in asked(fake) for n in batch) == sorted([*guids, "MISSING"])
        assert fake.stats.uri_too_long == 0


async def test_a_thousand_numbers_within_max_concurrency() -> None:
    async with FakeArena(latency=0.01) as fake:
        guids = {f"PN-{n:05d}": fake.add_item(number=f"PN-{n:05d}") for n in range(1000)}
        async with client_for(fake, max_concurrency=3) as arena:
            fake.clear_requests()
            got = await arena.items.guids_for([*guids, "MISSING"])
        assert got == {**guids, "MISSING": None}
        assert 2 <= fake.stats.max_in_flight <= 3
        assert fake.stats.by_route[SEARCH] == len(asked(fake)) <= 25


async def test_a_full_page_is_paged_on() -> None:
    async with FakeArena() as fake:
        # A workspace that allows duplicate numbers: 3 items for 2 numbers, pages of 2.
        a1, a2 = fake.add_item(number="A"), fake.add_item(number="A")
        b = fake.add_item(number="B")
        async with client_for(fake) as arena:
            got = await arena.items.guids_for(["A", "B"], page_size=2)
        assert got == {"A": a1, "B": b}
        assert a2 != a1
        assert [(q["offset"], q["limit"]) for q in searches(fake)] == [("0", "2"), ("2", "2")]


async def test_a_failed_batch_fails_only_its_numbers() -> None:
    async with FakeArena() as fake:
        numbers = [f"PN-{n:06d}" for n in range(150)]
        guids = {n: fake.add_item(number=n) for n in numbers}
        # Every request whose criteria hold PN-000070 answers 503 (after the retries too).
        fault = fake.faults.add(Fault("status", status=503, query=r'"value":"PN-000070"'))
        async with client_for(fake, max_concurrency=2) as arena:
            with pytest.raises(LookupFailedError) as caught:
                await arena.items.guids_for(numbers)
            error = caught.value
            failed_batch = next(b for b in asked(fake) if "PN-000070" in b)
            assert list(error.failed) == failed_batch
            assert all(isinstance(e, ServerError) and e.status == 503
                       for e in error.failed.values())
            assert isinstance(error.__cause__, ServerError)
            assert error.found == {n: guids[n] for n in numbers if n not in failed_batch}
            assert list(error.found) == [n for n in numbers if n not in failed_batch]
            assert f"{len(failed_batch)} of 150 item numbers could not be looked up" in str(error)
            assert "ServerError: HTTP 503" in str(error)
            assert "criteria" not in str(error)
            # Asked again, only the failed numbers cost requests.
            fake.faults.remove(fault)
            fake.clear_requests()
            assert await arena.items.guids_for(numbers) == guids
            assert sorted(n for batch in asked(fake) for n in batch) == sorted(failed_batch)


async def test_guid_batches_report_progress_per_batch() -> None:
    async with FakeArena() as fake:
        numbers = [f"PN-{n:06d}" for n in range(120)]
        guids = {n: fake.add_item(number=n) for n in numbers}
        fake.faults.add(Fault("status", status=400, query=r'"value":"PN-000000"'))
        async with client_for(fake, max_concurrency=1) as arena:
            await arena.items.guids_for(numbers[60:70])  # known beforehand
            fake.clear_requests()
            batches = [b async for b in arena.items.guid_batches([*numbers, "NOPE"])]
        assert batches[0].source == "memory"
        assert batches[0].requests == 0
        assert list(batches[0].found) == numbers[60:70]
        asked_now = [b for b in batches if b.source == "arena"]
        assert [b.numbers for b in asked_now] == asked(fake)
        # one request per batch (a 400 is not retried, and counts too)
        assert sum(b.requests for b in asked_now) == fake.stats.by_route[SEARCH] == 3
        bad = [b for b in batches if not b.ok]
        assert len(bad) == 1
        assert "PN-000000" in bad[0].failed
        assert isinstance(bad[0].failed["PN-000000"], BadRequestError)
        every = [n for b in batches for n in b.numbers]
        assert sorted(every) == sorted([*numbers, "NOPE"])  # each number once
        found = {n: g for b in batches for n, g in b.found.items()}
        assert found == {**{n: guids[n] for n in numbers if n not in bad[0].failed},
                         "NOPE": None}


async def test_breaking_out_of_guid_batches_cancels_the_rest() -> None:
    async with FakeArena() as fake:
        numbers = [f"PN-{n:06d}" for n in range(300)]
        for number in numbers:
            fake.add_item(number=number)
        async with client_for(fake, max_concurrency=2) as arena:
            await arena.items.get(fake.item_guids[0])  # logged in
            fake.clear_requests()
            fake.latency = 0.05
            async with contextlib.aclosing(arena.items.guid_batches(numbers)) as batches:
                first = await anext(batches)
            await asyncio.sleep(0.1)
            assert first.ok
            assert first.source == "arena"
            assert fake.stats.by_route[SEARCH] == 2  # the two running; none started after
            assert [t for t in asyncio.all_tasks() if "NumberLookups" in repr(t.get_coro())] == []
            # What was answered is kept; the rest is asked next time.
            fake.latency = 0.0
            fake.clear_requests()
            assert None not in (await arena.items.guids_for(numbers)).values()
            again = len([n for b in asked(fake) for n in b])
            # the other batch in flight was cancelled, unless it had answered already
            assert again in (300 - len(first.found), 300 - 2 * len(first.found))


async def test_guids_for_cancelled_leaves_no_task_behind() -> None:
    async with FakeArena() as fake:
        numbers = [f"PN-{n:06d}" for n in range(300)]
        for number in numbers:
            fake.add_item(number=number)
        async with client_for(fake, max_concurrency=4) as arena:
            await arena.items.get(fake.item_guids[0])  # logged in
            fake.latency = 0.3
            lookup = asyncio.ensure_future(arena.items.guids_for(numbers))
            for _ in range(200):
                await asyncio.sleep(0.001)
                if fake.stats.in_flight == 4:
                    break
            assert fake.stats.in_flight == 4
            lookup.cancel()
            with pytest.raises(asyncio.CancelledError):
                await lookup
            assert [t for t in asyncio.all_tasks() if "NumberLookups" in repr(t.get_coro())] == []
            assert fake.stats.by_route[SEARCH] == 4
            # Nothing was answered: everything is asked next time, nobody waits on a claim.
            fake.latency = 0.0
            fake.clear_requests()
            got = await arena.items.guids_for(numbers)
            assert list(got) == numbers
            assert None not in got.values()
            assert sorted(n for b in asked(fake) for n in b) == numbers


async def test_guids_for_cache_is_per_client_without_a_share() -> None:
    async with FakeArena() as fake:
        guid = fake.add_item(number="PN-1")
        for _ in range(2):
            async with client_for(fake) as arena:
                assert await arena.items.guids_for(["PN-1"]) == {"PN-1": guid}
        assert fake.stats.by_route[SEARCH] == 2


async def test_answers_expire_found_after_a_day_missing_after_ten_minutes(
        fake_clock: FakeClock) -> None:
    async with FakeArena() as fake:
        guid = fake.add_item(number="PN-1")
        async with client_for(fake, clock=fake_clock, sleep=fake_clock.sleep) as arena:
            assert await arena.items.guids_for(["PN-1", "LATER"]) == {"PN-1": guid,
                                                                      "LATER": None}
            later = fake.add_item(number="LATER")
            fake_clock.now += 599
            assert await arena.items.guids_for(["PN-1", "LATER"]) == {"PN-1": guid,
                                                                      "LATER": None}
            assert fake.stats.by_route[SEARCH] == 1
            fake_clock.now += 2  # "no such item" is forgotten after 10 minutes
            assert await arena.items.guids_for(["PN-1", "LATER"]) == {"PN-1": guid,
                                                                      "LATER": later}
            assert asked(fake)[-1] == ["LATER"]
            fake_clock.now += 86400  # a GUID is kept for a day
            assert await arena.items.guids_for(["PN-1"]) == {"PN-1": guid}
            assert asked(fake)[-1] == ["PN-1"]


def test_items_help_lists_resources_and_methods() -> None:
    doc = Items.__doc__ or ""
    for name in ("iter", "pages", "list", "get", "guids_for", "guid_batches", "tickets",
                 "references", "training_records"):
        assert name in doc
    for name in ("Item", "CategorySummary", "LifecyclePhaseSummary", "UserSummary",
                 "AdditionalAttribute", "OnShape", "GuidBatch", "LookupFailedError"):
        assert name in arena_async.__all__
        assert getattr(arena_async, name).__doc__


async def test_concurrent_guids_for_calls_share_the_lookups_in_flight() -> None:
    async with FakeArena() as fake:
        guids = {n: fake.add_item(number=n) for n in ("PN-1", "PN-2", "PN-3", "PN-4")}
        async with client_for(fake, max_concurrency=8) as arena:
            await arena.items.get(fake.item_guids[0])  # logged in
            fake.clear_requests()
            fake.latency = 0.05
            first, second, third = await asyncio.gather(
                arena.items.guids_for(["PN-1", "PN-2", "PN-3"]),
                arena.items.guids_for(["PN-3", "PN-2", "NOPE"]),
                arena.items.guids_for(["PN-2", "PN-4", "NOPE"]))
            assert first == {n: guids[n] for n in ("PN-1", "PN-2", "PN-3")}
            assert second == {"PN-3": guids["PN-3"], "PN-2": guids["PN-2"], "NOPE": None}
            assert third == {"PN-2": guids["PN-2"], "PN-4": guids["PN-4"], "NOPE": None}
            # each distinct number asked once, whichever call asked it
            assert asked(fake) == [["PN-1", "PN-2", "PN-3"], ["NOPE"], ["PN-4"]]


async def test_a_waiting_call_asks_itself_when_the_asking_call_is_cancelled() -> None:
    async with FakeArena() as fake:
        guid = fake.add_item(number="PN-1")
        async with client_for(fake) as arena:
            await arena.items.get(fake.item_guids[0])  # logged in
            fake.clear_requests()
            fake.latency = 0.2
            asking = asyncio.ensure_future(arena.items.guids_for(["PN-1"]))
            for _ in range(200):
                await asyncio.sleep(0.001)
                if fake.stats.in_flight == 1:
                    break
            waiting = asyncio.ensure_future(arena.items.guids_for(["PN-1"]))
            await asyncio.sleep(0.01)
            assert len(searches(fake)) == 1  # the second call waits for the first's answer
            asking.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asking
            assert await waiting == {"PN-1": guid}
            assert asked(fake) == [["PN-1"], ["PN-1"]]


async def test_a_waiting_call_asks_itself_when_the_asking_batch_fails() -> None:
    async with FakeArena() as fake:
        guid = fake.add_item(number="PN-1")
        fake.faults.add(Fault("status", status=400, path="/items$", times=1))
        async with client_for(fake) as arena:
            await arena.items.get(fake.item_guids[0])  # logged in
            fake.clear_requests()
            fake.latency = 0.1
            first, second = await asyncio.gather(
                arena.items.guids_for(["PN-1"]), arena.items.guids_for(["PN-1"]),
                return_exceptions=True)
            assert isinstance(first, LookupFailedError)
            assert isinstance(first.failed["PN-1"], BadRequestError)
            assert second == {"PN-1": guid}
            assert asked(fake) == [["PN-1"], ["PN-1"]]


async def test_a_wait_for_another_calls_lookup_is_bounded_by_the_deadline() -> None:
    async with FakeArena() as fake:
        guid = fake.add_item(number="PN-1")
        async with client_for(fake) as arena:
            await arena.items.get(fake.item_guids[0])  # logged in
            fake.clear_requests()
            fake.latency = 0.4
            asking = asyncio.ensure_future(arena.items.guids_for(["PN-1"]))
            await asyncio.sleep(0.02)
            with pytest.raises(LookupFailedError) as caught:
                await arena.items.guids_for(["PN-1"], deadline=0.05)
            error = caught.value.failed["PN-1"]
            assert isinstance(error, TransportError)
            assert "deadline passed while another call" in str(error)
            assert await asking == {"PN-1": guid}
            assert len(searches(fake)) == 1


async def test_lookup_batches_plan_what_a_lookup_sends() -> None:
    async with FakeArena() as fake:
        numbers = [f"PN-{n:06d}" for n in range(300)]
        for number in numbers:
            fake.add_item(number=number)
        async with client_for(fake) as arena:
            planned = arena.items.lookup_batches([*numbers, numbers[0]])
            assert fake.stats.requests == 0  # nothing sent
            assert [n for b in planned for n in b] == numbers
            await arena.items.guids_for(numbers)
            assert sorted(map(sorted, asked(fake))) == sorted(map(sorted, planned))
            assert len(arena.items.lookup_batches(numbers[:5], page_size=2)) == 3
            with pytest.raises(ValueError, match="not one string"):
                arena.items.lookup_batches("PN-1")


async def test_a_search_too_long_for_a_url_is_refused_before_sending() -> None:
    async with FakeArena() as fake, client_for(fake) as arena:
        many = [[{"attribute": "number", "operator": "IS_EQUAL_TO", "value": f"PN-{n:06d}"}]
                for n in range(200)]
        criteria = [part for group in many for part in (group, "OR")][:-1]
        with pytest.raises(ValueError, match=r"URL would be [\d,]+ bytes; front ends refuse"):
            arena.items.iter(criteria=criteria)
        assert fake.stats.requests == 0
        assert len(await arena.items.list(criteria=criteria[:99])) == 0  # 50 numbers fit
        assert fake.stats.uri_too_long == 0
