"""``criteria`` checked against the vendor's rules, and number lookups planned in batches
(``arena_async.arena._item_query``), without sockets."""

from __future__ import annotations

import itertools
import json
import random
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import yarl

from arena_async.arena._item_query import (
    CRITERIA_ATTRIBUTES,
    MAX_LOOKUP_URL,
    NumberBatches,
    check_criteria,
    encode_criteria,
    number_criteria,
    search_params,
)


def crit(attribute: str, operator: str, value: Any) -> dict[str, Any]:
    return {"attribute": attribute, "operator": operator, "value": value}


NUMBER = crit("number", "STARTS_WITH", "PN-1")
CATEGORY = crit("category.name", "IS_EQUAL_TO", "Resistors")


@pytest.mark.parametrize("criteria", [
    [[NUMBER]],
    [[NUMBER], "OR", [CATEGORY]],
    [[NUMBER, "AND", CATEGORY, "OR", crit("description", "CONTAINS", "film")]],
    ([NUMBER], "AND", (CATEGORY,)),  # tuples are lists
    [[crit("guid", "IS_IN", ["ABC123DEF456GHI789JK", "XYZ"])]],  # alone: allowed
    [[crit("lifecyclePhase.guid", "IS_IN", ["9RBUDQB2PSADWFYH0AUY"])]],
    # the vendor's own example: category.guid IS_EQUAL_TO combined with others
    [[crit("category.guid", "IS_EQUAL_TO", "CUEXGTE5SVEO7Q29D8JI"), "OR",
      crit("category.guid", "IS_EQUAL_TO", "BTDWFSD4RUDN6P18C7I6")], "OR",
     [crit("number", "STARTS_WITH", "8")]],
    [[crit("creator.guid", "IS_EQUAL_TO", "WEYH0DYPCFWFYH0JSIPD")], "OR",
     [crit("creator.email", "CONTAINS", "hwalker@everyroadgps.com")]],
    [[crit("lifecyclePhase.stage", "IS_NOT_EQUAL_TO", "OBSOLETE")]],
    [[crit("lifecyclePhase.name", "IS_EQUAL_TO", ["In Design", "In Production"])]],
    [[crit("modifiedBOM", "IS_EQUAL_TO", False)]],
    [[crit("any", "CONTAINS", "10k")]],
    [[crit("creationDateTime", "IS_BETWEEN", ["2001-07-12T10:00:01Z", "2030-07-12T20:23:59Z"])]],
    [[crit("effectiveDateTime", "IS_AFTER", "2020-03-02T12:01:07Z")]],
    [[crit("VDXGZ7E0GO5N6P8PR55G", "IS_GREATER_THAN", 5)]],  # an additional attribute
    [[crit("VDXGZ7E0GO5N6P8PR55G", "IS_IN", ["Option 1", "Option 2"])]],
    [[crit("name", "STARTS_WITH", "Resistor")]],
])
def test_valid_criteria_are_kept_as_given(criteria: Any) -> None:
    checked = check_criteria(criteria)
    assert json.loads(encode_criteria(checked)) == json.loads(json.dumps(criteria))


def test_moments_become_arenas_zulu_form() -> None:
    plus2 = timezone(timedelta(hours=2))
    checked = check_criteria([[crit("effectiveDateTime", "IS_BETWEEN",
                                    [datetime(2020, 1, 1, 2, tzinfo=plus2),
                                     "2021-01-01T00:00:00+01:00"])],
                              "OR", [crit("creationDateTime", "IS_BEFORE",
                                          datetime(2019, 4, 1, 12, tzinfo=UTC))]])
    assert checked[0][0]["value"] == ["2020-01-01T00:00:00Z", "2020-12-31T23:00:00Z"]
    assert checked[2][0]["value"] == "2019-04-01T12:00:00Z"


@pytest.mark.parametrize(("criteria", "message"), [
    ({"number": "PN-1"}, r"not a dict: e\.g\. criteria=\[\[\{\"attribute\": \"number\""),
    ("[[...]]", "criteria must be a list of criterion groups"),
    ([], r"^criteria must not be empty"),
    ([NUMBER], r"criteria\[0\] must be a criterion group \(a list\), got a dict"),
    ([[]], r"criteria\[0\] must not be empty"),
    ([[NUMBER], "OR"], r"criteria\[1\]: 'OR' ends the list"),
    ([[NUMBER], [CATEGORY]], r'criteria\[1\] must be "AND" or "OR"'),
    ([[NUMBER], "XOR", [CATEGORY]], r'criteria\[1\] must be "AND" or "OR".*got \'XOR\''),
    ([[NUMBER], "or", [CATEGORY]], r'criteria\[1\] must be "AND" or "OR"'),
    ([[NUMBER, CATEGORY]], r'criteria\[0\]\[1\] must be "AND" or "OR" \(between two criterions'),
    ([[NUMBER], "OR", [CATEGORY, "AND", "x"]], r"criteria\[2\]\[2\] must be a criterion"),
    ([[{"attribute": "number", "operator": "IS_EQUAL_TO"}]],
     r'criteria\[0\]\[0\]\["value"\] is missing'),
    ([[{**NUMBER, "note": 1}]], r"criteria\[0\]\[0\] has unknown keys \['note'\]"),
    ([[{1: "x", **NUMBER}]], r"criteria\[0\]\[0\] has a key that is not a string"),
    ([[NUMBER], "OR", [crit("number", "LIKE", "x")]],
     r'criteria\[2\]\[0\]\["operator"\] must be one of'),
    ([[NUMBER], "OR", [CATEGORY], "AND", [crit("number", "IS_IN", ["x"])]],
     r'criteria\[4\]\[0\]\["operator"\]: IS_IN is not valid for \'number\'; use IS_EQUAL_TO'),
    ([[crit("lifecyclePhase.stage", "STARTS_WITH", "IN")]],
     r'\["operator"\]: STARTS_WITH is not valid for \'lifecyclePhase.stage\''),
    ([[crit("effectiveDateTime", "IS_EQUAL_TO", "2020-01-01T00:00:00Z")]],
     r"IS_EQUAL_TO is not valid for 'effectiveDateTime'; use IS_BEFORE, IS_AFTER, IS_BETWEEN"),
    ([[crit("colour", "IS_EQUAL_TO", "red")]],
     r'criteria\[0\]\[0\]\["attribute"\]: \'colour\' is not a criteria attribute'),
    ([[crit("", "IS_EQUAL_TO", "red")]], r'\["attribute"\] must be a non-empty string'),
    ([[crit("number", "IS_EQUAL_TO", 5)]], r'\["value"\] must be a string, got int'),
    ([[crit("number", "IS_EQUAL_TO", "  ")]], r'\["value"\] must not be blank'),
    ([[crit("guid", "IS_IN", [])]], r'\["value"\] must be a non-empty list of strings'),
    ([[crit("guid", "IS_IN", ["A", 2])]], r'\["value"\]\[1\] must be a non-blank string'),
    ([[crit("modifiedFiles", "IS_EQUAL_TO", "true")]], r'\["value"\] must be True or False'),
    ([[crit("effectiveDateTime", "IS_AFTER", "2020-01-01")]],
     r'criteria\[0\]\[0\]\["value"\] must say its time zone'),
    ([[crit("effectiveDateTime", "IS_BETWEEN", ["2021-01-01T00:00:00Z"])]],
     r"a list of two moments"),
    ([[crit("effectiveDateTime", "IS_BETWEEN", ["2021-01-01T00:00:00Z", "2020-01-01T00:00:00Z"])]],
     r"chronological order"),
    ([[crit("VDXGZ7E0GO5N6P8PR55G", "IS_GREATER_THAN", float("nan"))]], r"finite number"),
    ([[crit("VDXGZ7E0GO5N6P8PR55G", "IS_EQUAL_TO", {"a": 1})]], r"must be a string, number"),
    # a guid criterion (or IS_IN on a GUID attribute) stands alone
    ([[NUMBER], "OR", [crit("guid", "IS_EQUAL_TO", "ABC")]],
     r"criteria\[2\]\[0\]: a 'guid' criterion with IS_EQUAL_TO must be the only criterion"),
    ([[crit("category.guid", "IS_IN", ["ABC"]), "AND", NUMBER]],
     r"criteria\[0\]\[0\]: a 'category.guid' criterion with IS_IN must be the only"),
])
def test_bad_criteria_name_the_element(criteria: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_criteria(criteria)
    with pytest.raises(ValueError, match=message):  # the same through the query builder
        search_params({}, None, None, criteria, "full")


def test_the_table_is_the_vendors() -> None:
    # Spot checks against "Criteria: Attributes and Operators".
    assert CRITERIA_ATTRIBUTES["number"][1] == (
        "IS_EQUAL_TO", "IS_NOT_EQUAL_TO", "CONTAINS", "DOES_NOT_CONTAIN", "STARTS_WITH",
        "DOES_NOT_START_WITH")
    assert CRITERIA_ATTRIBUTES["guid"][1] == ("IS_EQUAL_TO", "IS_IN")
    assert CRITERIA_ATTRIBUTES["creator.guid"][1] == ("IS_EQUAL_TO",)
    assert CRITERIA_ATTRIBUTES["lifecyclePhase.stage"][1] == ("IS_EQUAL_TO", "IS_NOT_EQUAL_TO")
    assert CRITERIA_ATTRIBUTES["any"][1] == ("CONTAINS",)
    assert CRITERIA_ATTRIBUTES["effectiveDateTime"][1] == ("IS_BEFORE", "IS_AFTER", "IS_BETWEEN")


# ------------------------------------------------------------------- batches of numbers

BASE = "https://api.arenasolutions.com/v1/items"


def test_number_criteria_are_or_groups_of_exact_numbers() -> None:
    assert number_criteria(["A*", "B"]) == [
        [{"attribute": "number", "operator": "IS_EQUAL_TO", "value": "A*"}], "OR",
        [{"attribute": "number", "operator": "IS_EQUAL_TO", "value": "B"}]]
    check_criteria(number_criteria(["A*", "B"]))  # the library's own rules accept them


def test_300_numbers_fit_in_at_most_10_requests_each_under_6_kb() -> None:
    plan = NumberBatches(BASE)
    numbers = [f"PN-{n:06d}" for n in range(300)]
    batches = plan.split(numbers)
    assert len(batches) <= 10
    assert [n for batch in batches for n in batch] == numbers  # every number, in order
    lengths = [plan.url_length(batch) for batch in batches]
    assert max(lengths) <= MAX_LOOKUP_URL
    # full: one more number would not have fitted
    for batch, after in itertools.pairwise(batches):
        assert plan.url_length([*batch, after[0]]) > MAX_LOOKUP_URL


def test_the_measure_is_the_url_aiohttp_sends() -> None:
    plan = NumberBatches(yarl.URL("http://[::1]:8080/v1/items"), page_size=100)
    batch = ["A%B", "1+1", "x y", "é€", "PN-1*", '"quoted"']
    sent = yarl.URL("http://[::1]:8080/v1/items").extend_query(plan.params(batch))
    assert plan.url_length(batch) == len(str(sent))
    assert sent.query["criteria"] == encode_criteria(number_criteria(batch))
    assert sent.query["limit"] == "100"
    # '%' and '+' go percent-encoded, '*' as it is
    raw = sent.raw_query_string
    assert "%22A%25B%22" in raw
    assert "%221%2B1%22" in raw
    assert "%22PN-1*%22" in raw


@pytest.mark.parametrize("seed", range(5))
def test_random_numbers_batch_exactly(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + "-_.*%+ /?#&=;:,\"'é€[]{}"
    numbers = list(dict.fromkeys(
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(400)))
    plan = NumberBatches(BASE, max_url=3000, page_size=rng.choice((7, 50, 400)))
    batches = plan.split(numbers)
    assert [n for batch in batches for n in batch] == numbers
    for batch, after in zip(batches, [*batches[1:], None], strict=True):
        assert plan.url_length(batch) <= 3000
        assert len(batch) <= plan.page_size
        if after is not None and len(batch) < plan.page_size:
            assert plan.url_length([*batch, after[0]]) > 3000


def test_a_number_too_long_for_any_url_is_refused() -> None:
    plan = NumberBatches(BASE)
    plan.check("PN-1")
    with pytest.raises(ValueError, match="too long to look up"):
        plan.check("%" * 3000)
