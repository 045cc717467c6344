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


def test_the_other_arguments() -> None:
    moment = datetime(2023, 6, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    assert query(assembly_type="SUB_ASSEMBLY", effective_date_time=moment,
                 criteria={"inAssembly": True, "category.name": "R"}, view="minimum") == {
        "assemblyType": "SUB_ASSEMBLY", "effectiveDateTime": "2023-06-01T00:00:00Z",
        "criteria": '{"inAssembly":true,"category.name":"R"}', "responseview": "minimum"}
    assert query(effective_date_time="2024-07-01")["effectiveDateTime"] == "2024-07-01"
    assert set(ASSEMBLY_TYPES) == {"TOP_LEVEL_ASSEMBLY", "SUB_ASSEMBLY", "NOT_AN_ASSEMBLY"}
    for kind in ASSEMBLY_TYPES:
        assert query(assembly_type=kind) == {"assemblyType": kind}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"view": "compact"}, "view must be 'full' or 'minimum'"),
    ({"assembly_type": "ASSEMBLY"}, "assembly_type must be one of TOP_LEVEL_ASSEMBLY"),
    ({"criteria": [["number", "x"]]}, "criteria must be a dict"),
    ({"criteria": {"x": float("nan")}}, "criteria must be JSON-serializable"),
    ({"effective_date_time": datetime(2024, 1, 1)}, "must be timezone-aware"),
    ({"effective_date_time": ""}, "effective_date_time must be an aware datetime"),
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
    ("PN-1*", "prefix search"), ("", "must not be empty"), (" PN-1", "whitespace"),
    ("PN-1\t", "whitespace"), (7, "must be a string, got int"),
])
def test_a_number_to_look_up_is_one_exact_number(number: object, message: str) -> None:
    assert check_number("PN-1") == "PN-1"
    with pytest.raises(ValueError, match=message):
        check_number(number)
