"""``arena_async.arena._item_query``: the ``GET /items`` query, checked and encoded without
sockets (tests/arena/test_items_search.py sends the same filters to the fake server)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from arena_async.arena._item_query import (
    ASSEMBLY_TYPES,
    check_number,
    search_params,
    view_params,
)


def query(filters: dict[str, object] | None = None, *, assembly_type: object = None,
          effective_date_time: object = None, criteria: object = None,
          view: object = "full") -> dict[str, str]:
    return search_params(filters or {}, assembly_type, effective_date_time, criteria, view)


@pytest.mark.parametrize(("filters", "expected"), [
    ({}, {}),
    ({"number": "PN-1*", "name": None}, {"number": "PN-1*"}),  # None is not sent
    ({"revision_number": "A", "category_guid": "G", "lifecycle_phase_stage": "S",
      "owner_full_name": "Ann", "creator_email": "e@x", "creator_guid": "C",
      "creator_full_name": "Bo", "lifecycle_phase_guid": "L", "category_name": "R",
      "description": "d"},
     {"revisionNumber": "A", "category.guid": "G", "lifecyclePhase.stage": "S",
      "owner.fullName": "Ann", "creator.email": "e@x", "creator.guid": "C",
      "creator.fullName": "Bo", "lifecyclePhase.guid": "L", "category.name": "R",
      "description": "d"}),
    ({"include_child_categories": True, "in_assembly": False, "modified_bom": True,
      "modified_files": False, "modified_sourcing": True, "modified_specs": False},
     {"includeChildCategories": "true", "inAssembly": "false", "modifiedBom": "true",
      "modifiedFiles": "false", "modifiedSourcing": "true", "modifiedSpecs": "false"}),
    ({"name": "50% + tax"}, {"name": "50% + tax"}),  # as given: yarl percent-encodes it
])
def test_filters_go_by_their_wire_names(filters: dict[str, object],
                                        expected: dict[str, str]) -> None:
    assert query(filters) == expected


R_AND_FLAG = [[{"attribute": "category.name", "operator": "IS_EQUAL_TO", "value": "R"},
               "AND", {"attribute": "modifiedBOM", "operator": "IS_EQUAL_TO", "value": True}]]


def test_the_other_arguments() -> None:
    moment = datetime(2023, 6, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    assert query(assembly_type="SUB_ASSEMBLY", effective_date_time=moment,
                 criteria=R_AND_FLAG, view="minimum") == {
        "assemblyType": "SUB_ASSEMBLY", "effectiveDateTime": "2023-06-01T00:00:00Z",
        "criteria": '[[{"attribute":"category.name","operator":"IS_EQUAL_TO","value":"R"},'
                    '"AND",{"attribute":"modifiedBOM","operator":"IS_EQUAL_TO","value":true}]]',
        "responseview": "minimum"}
    assert set(ASSEMBLY_TYPES) == {"TOP_LEVEL_ASSEMBLY", "SUB_ASSEMBLY", "NOT_AN_ASSEMBLY"}
    for kind in ASSEMBLY_TYPES:
        assert query(assembly_type=kind) == {"assemblyType": kind}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"view": "compact"}, "view must be 'full' or 'minimum'"),
    ({"assembly_type": "ASSEMBLY"}, "assembly_type must be one of TOP_LEVEL_ASSEMBLY"),
    ({"criteria": [["number", "x"]]}, r"criteria\[0\]\[0\] must be a criterion"),
    ({"criteria": {"category.name": "R"}}, "not a dict: e.g. criteria=\\[\\[\\{\"attribute\": "
     "\"category.name\", \"operator\": \"IS_EQUAL_TO\", \"value\": \"R\"\\}\\]\\]"),
    ({"effective_date_time": datetime(2024, 1, 1)}, "must say its time zone"),
    ({"effective_date_time": "2024-07-01"}, "must say its time zone"),
    ({"effective_date_time": "yesterday"}, "not an ISO 8601 date and time"),
    ({"effective_date_time": ""}, "effective_date_time must be an aware datetime"),
    ({"effective_date_time": 5}, "effective_date_time must be an aware datetime"),
    ({"filters": {"number": 5}}, "number must be a string or None, got int"),
    ({"filters": {"in_assembly": 1}}, "in_assembly must be True, False or None"),
])
def test_bad_arguments_are_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        query(**kwargs)


def test_views() -> None:
    assert view_params("full") == {}
    assert view_params("minimum") == {"responseview": "minimum"}
    with pytest.raises(ValueError, match="view must be"):
        view_params(None)


@pytest.mark.parametrize(("number", "message"), [
    ("", "must not be empty"), (" PN-1", "whitespace"),
    ("PN-1\t", "whitespace"), (7, "must be a string, got int"),
])
def test_a_number_to_look_up_is_one_exact_number(number: object, message: str) -> None:
    # '*' is literal in IS_EQUAL_TO: a number ending in '*' is that number, not a prefix.
    for exact in ("PN-1", "PN-1*", "50%", "A+B", "*"):
        assert check_number(exact) == exact
    with pytest.raises(ValueError, match=message):
        check_number(number)


@pytest.mark.parametrize(("given", "sent"), [
    (datetime(2023, 6, 1, 2, 0, 5, 999, tzinfo=timezone(timedelta(hours=2))),
     "2023-06-01T00:00:05Z"),
    ("2024-07-01T00:00:00Z", "2024-07-01T00:00:00Z"),
    ("2024-07-01T02:00:00+02:00", "2024-07-01T00:00:00Z"),
    ("2024-07-01T00:00:00.750Z", "2024-07-01T00:00:00Z"),
])
def test_effective_date_time_is_sent_in_arenas_zulu_form(given: object, sent: str) -> None:
    assert query(effective_date_time=given)["effectiveDateTime"] == sent
