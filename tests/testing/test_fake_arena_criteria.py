"""FakeArena evaluates ``GET /items?criteria=`` as the vendor documents it (groups, AND/OR,
the operator table) and refuses what Arena refuses, with the vendor's codes; front-end
limits (414) and faults keyed on the query. Driven with a plain aiohttp.ClientSession."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from arena_async.testing import FakeArena, Fault
from arena_async.testing._item_search import BadCriteria, criteria_filter


def crit(attribute: str, operator: str, value: Any) -> dict[str, Any]:
    return {"attribute": attribute, "operator": operator, "value": value}


class World:
    """Five items with every field a criterion reads set by hand."""

    def __init__(self, fake: FakeArena) -> None:
        self.fake = fake
        fake.add_category("Resistors")
        fake.add_category("Fasteners")
        add = fake.add_item
        self.a = add(number="PN-100", name="Resistor 10k", description="Thick film",
                     category="Resistors", lifecycle_phase="In Production",
                     lifecycle_stage="IN_PRODUCTION", owner="Ann Lee",
                     effective_date_time="2023-01-01T00:00:00Z", fields={"modifiedBom": True})
        self.b = add(number="PN-1*", name="Resistor 1k", description="Thin film",
                     category="Resistors", lifecycle_phase="In Design",
                     lifecycle_stage="IN_DESIGN", owner="Bob Roe")
        self.c = add(number="PN-200", name="Screw M3", description="Steel",
                     category="Fasteners", lifecycle_phase="In Production", owner="Bob Roe",
                     effective_date_time="2020-06-01T00:00:00Z",
                     fields={"additionalAttributes": [{"guid": "TOLERANCE000000000001",
                                                       "value": 5}]})
        self.d = add(number="XX-9", name="Board", description="Main board (rev 2)",
                     category="Fasteners", lifecycle_phase="Obsolete", owner="Chen Wu",
                     lifecycle_stage="OBSOLETE", effective_date_time="2019-01-01T00:00:00Z")
        self.e = add(number="pn-100x", name="resistor pack", description="",
                     category="Resistors", lifecycle_phase="In Design", owner="Bob Roe")
        self.by_guid = {self.a: "A", self.b: "B", self.c: "C", self.d: "D", self.e: "E"}

    def names(self, body: Any) -> str:
        return "".join(sorted(self.by_guid[item["guid"]] for item in body["results"]))


@pytest_asyncio.fixture
async def world() -> AsyncIterator[World]:
    async with FakeArena(seed=3) as fake:
        yield World(fake)


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def search(http: aiohttp.ClientSession, fake: FakeArena, criteria: Any,
                 **params: str) -> tuple[int, Any]:
    async with http.post(f"{fake.url}/login",
                         json={"email": fake.email, "password": fake.password}) as resp:
        session = (await resp.json())["arenaSessionId"]
    text = criteria if isinstance(criteria, str) else json.dumps(criteria)
    async with http.get(f"{fake.url}/items", params={"criteria": text, "limit": "400", **params},
                        headers={"arena_session_id": session}) as resp:
        return resp.status, await resp.json()


def test_operators_and_logic_without_http() -> None:
    # A vendor example, evaluated on bare wire data (no server).
    test = criteria_filter(json.dumps([[crit("creator.guid", "IS_EQUAL_TO", "G1")], "OR",
                                       [crit("creator.email", "CONTAINS", "hwalker@")]]))
    assert test({"creator": {"guid": "G1"}})
    assert test({"creator": {"guid": "G2", "email": "HWalker@everyroadgps.com"}})
    assert not test({"creator": {"guid": "G2", "email": "x@y"}})
    with pytest.raises(BadCriteria) as caught:
        criteria_filter("[[]]")
    assert caught.value.code == 400


@pytest.mark.parametrize(("criteria", "expected"), [
    # text operators: case-insensitive; '*' literal in IS_EQUAL_TO / IS_NOT_EQUAL_TO
    ([[crit("number", "IS_EQUAL_TO", "PN-100")]], "A"),
    ([[crit("number", "IS_EQUAL_TO", "pn-100")]], "A"),
    ([[crit("number", "IS_EQUAL_TO", "PN-1*")]], "B"),
    ([[crit("number", "IS_NOT_EQUAL_TO", "PN-1*")]], "ACDE"),
    ([[crit("number", "STARTS_WITH", "PN-1")]], "ABE"),
    ([[crit("number", "STARTS_WITH", "P*-2")]], "C"),  # a wildcard in STARTS_WITH
    ([[crit("number", "DOES_NOT_START_WITH", "PN-")]], "D"),
    ([[crit("number", "CONTAINS", "00")]], "ACE"),
    ([[crit("number", "DOES_NOT_CONTAIN", "00")]], "BD"),
    ([[crit("name", "STARTS_WITH", "resistor")]], "ABE"),
    ([[crit("description", "CONTAINS", "film")]], "AB"),
    ([[crit("description", "CONTAINS", "(rev 2)")]], "D"),  # regex characters are literal
    ([[crit("category.name", "IS_EQUAL_TO", "Fasteners")]], "CD"),
    ([[crit("owner.fullName", "STARTS_WITH", "Ann")]], "A"),
    ([[crit("any", "CONTAINS", "board")]], "D"),
    ([[crit("lifecyclePhase.stage", "IS_EQUAL_TO", "IN_PRODUCTION")]], "AC"),
    ([[crit("lifecyclePhase.stage", "IS_NOT_EQUAL_TO", "IN_PRODUCTION")]], "BDE"),
    ([[crit("lifecyclePhase.name", "IS_EQUAL_TO", "In Design;Obsolete")]], "BDE"),
    ([[crit("lifecyclePhase.name", "IS_EQUAL_TO", ["Obsolete"])]], "D"),
    ([[crit("modifiedBOM", "IS_EQUAL_TO", True)]], "A"),
    ([[crit("effectiveDateTime", "IS_AFTER", "2021-01-01T00:00:00Z")]], "A"),
    ([[crit("effectiveDateTime", "IS_BEFORE", "2021-01-01T00:00:00Z")]], "CD"),
    ([[crit("effectiveDateTime", "IS_BETWEEN",
            ["2020-01-01T00:00:00Z", "2023-01-01T00:00:00Z"])]], "AC"),
    ([[crit("TOLERANCE000000000001", "IS_GREATER_THAN", 4)]], "C"),
    # AND binds tighter than OR, inside a group and between groups
    ([[crit("number", "STARTS_WITH", "PN-2"), "OR", crit("name", "STARTS_WITH", "Resistor"),
       "AND", crit("description", "CONTAINS", "thin")]], "BC"),
    ([[crit("number", "STARTS_WITH", "PN-2")], "OR",
      [crit("name", "STARTS_WITH", "Resistor")], "AND",
      [crit("description", "CONTAINS", "thin")]], "BC"),
    ([[crit("category.name", "IS_EQUAL_TO", "Resistors"), "AND",
       crit("lifecyclePhase.stage", "IS_EQUAL_TO", "IN_DESIGN")], "OR",
      [crit("number", "IS_EQUAL_TO", "XX-9")]], "BDE"),
])
async def test_criteria_select(world: World, http: aiohttp.ClientSession, criteria: Any,
                               expected: str) -> None:
    status, body = await search(http, world.fake, criteria)
    assert status == 200, body
    assert world.names(body) == expected


async def test_guid_criteria(world: World, http: aiohttp.ClientSession) -> None:
    fake = world.fake
    status, body = await search(http, fake, [[crit("guid", "IS_IN", [world.a, world.d])]])
    assert (status, world.names(body)) == (200, "AD")
    phase = fake.item(world.c)["lifecyclePhase"]["guid"]
    status, body = await search(http, fake, [[crit("lifecyclePhase.guid", "IS_IN", [phase])]])
    assert world.names(body) == "AC"
    category = fake.item(world.c)["category"]["guid"]
    status, body = await search(http, fake, [[crit("category.guid", "IS_EQUAL_TO", category)],
                                             "OR", [crit("number", "IS_EQUAL_TO", "PN-100")]])
    assert world.names(body) == "ACD"
    # criteria AND the other query fields
    status, body = await search(http, fake, [[crit("guid", "IS_IN", [world.a, world.d])]],
                                number="XX*")
    assert world.names(body) == "D"


@pytest.mark.parametrize(("criteria", "code", "message"), [
    ("{bad", 400, "The format of the request is not valid. Please check the syntax."),
    ('{"number": "PN-1"}', 400, "The format of the request is not valid"),
    ([crit("number", "IS_EQUAL_TO", "x")], 400, "The format"),  # a criterion, no group
    ([[crit("number", "IS_EQUAL_TO", "x")], "XOR", [crit("name", "CONTAINS", "y")]], 400,
     "The format"),
    ([[crit("number", "IS_EQUAL_TO", "x"), crit("name", "CONTAINS", "y")]], 400, "The format"),
    ([[{"attribute": "number", "operator": "IS_EQUAL_TO"}]], 400, "The format"),
    ([[crit("colour", "IS_EQUAL_TO", "red")]], 3004, 'The attribute "colour" is not recognized.'),
    ([[crit("number", "IS_IN", ["x"])]], 3114,
     'The specified operator "IS_IN" is not valid for the attribute "number".'),
    ([[crit("lifecyclePhase.stage", "CONTAINS", "IN")]], 3114, '"CONTAINS" is not valid'),
    ([[crit("effectiveDateTime", "IS_EQUAL_TO", "2020-01-01T00:00:00Z")]], 3114, "not valid"),
    ([[crit("number", "IS_EQUAL_TO", 5)]], 3003,
     'The value for the attribute "number" is not valid.'),
    ([[crit("modifiedFiles", "IS_EQUAL_TO", "true")]], 3003, "not valid"),
    ([[crit("guid", "IS_IN", "ABC")]], 3003, "not valid"),
    ([[crit("number", "IS_EQUAL_TO", " ")]], 3020,
     'The value for the attribute "number" cannot be empty.'),
    ([[crit("effectiveDateTime", "IS_AFTER", "2020-01-01")]], 4323,
     "Please format all date and time fields in UTC/Zulu format."),
    ([[crit("effectiveDateTime", "IS_BETWEEN", ["2021-01-01T00:00:00Z",
                                                 "2020-01-01T00:00:00Z"])]], 3003, "not valid"),
    ([[crit("guid", "IS_EQUAL_TO", "ABC")], "OR", [crit("number", "IS_EQUAL_TO", "x")]], 3294,
     "Criteria cannot contain guid criterion."),
    ([[crit("category.guid", "IS_IN", ["ABC"]), "AND", crit("number", "IS_EQUAL_TO", "x")]],
     3294, "guid criterion"),
])
async def test_refused_as_arena_refuses(world: World, http: aiohttp.ClientSession,
                                        criteria: Any, code: int, message: str) -> None:
    status, body = await search(http, world.fake, criteria)
    assert status == 400
    assert body["errors"][0]["code"] == code
    assert message in body["errors"][0]["message"]


async def test_a_request_line_over_8_kb_gets_414_and_is_not_counted(
        http: aiohttp.ClientSession) -> None:
    async with FakeArena(quota_limit=10) as fake:
        fake.add_item(number="PN-1")
        async with http.post(f"{fake.url}/login",
                             json={"email": fake.email, "password": fake.password}) as resp:
            auth = {"arena_session_id": (await resp.json())["arenaSessionId"]}
        path = f"{fake.url.split(':', 2)[2].split('/', 1)[1]}"  # v1
        fits = "x" * (8192 - len(f"GET /{path}/items?number= HTTP/1.1"))
        async with http.get(f"{fake.url}/items?number={fits}", headers=auth) as resp:
            assert resp.status == 200
        async with http.get(f"{fake.url}/items?number={fits}y", headers=auth) as resp:
            assert resp.status == 414
            assert resp.headers.get("X-Arena-Requests-Remaining") is None  # a front end's
        assert fake.stats.uri_too_long == 1
        assert fake.quota_remaining == 9  # the 414 did not reach Arena's quota
        last = fake.requests[-1]
        assert (last.route, last.status) == ("GET /items", 414)
        assert len(f"GET {last.path}?{last.query_string} HTTP/1.1") == 8193
    async with FakeArena(max_request_line=None) as fake:
        async with http.post(f"{fake.url}/login",
                             json={"email": fake.email, "password": fake.password}) as resp:
            auth = {"arena_session_id": (await resp.json())["arenaSessionId"]}
        async with http.get(f"{fake.url}/items?number={'x' * 20000}", headers=auth) as resp:
            assert resp.status == 200
    with pytest.raises(ValueError, match="max_request_line"):
        FakeArena(max_request_line=10)


async def test_a_fault_can_key_on_the_decoded_query(world: World,
                                                    http: aiohttp.ClientSession) -> None:
    fault = world.fake.faults.add(Fault("status", status=503, query=r'"value": ?"PN-1\*"'))
    status, _ = await search(http, world.fake, [[crit("number", "IS_EQUAL_TO", "PN-100")]])
    assert status == 200
    status, _ = await search(http, world.fake, [[crit("number", "IS_EQUAL_TO", "PN-100")], "OR",
                                                [crit("number", "IS_EQUAL_TO", "PN-1*")]])
    assert status == 503
    assert world.fake.faults.fired_count(fault) == 1
    assert Fault("status", query="a=1").matches("GET", "/x", "b=2&a=1")
    assert not Fault("status", query="a=1").matches("GET", "/x", "")
