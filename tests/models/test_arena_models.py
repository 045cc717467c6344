"""Arena models: every vendor response sample structures without loss; variants accepted."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest

from arena_async import (
    ItemReference,
    ItemSummary,
    ItemTicketReference,
    ResponseFormatError,
    TicketSummary,
    TrainingPlanSummary,
    TrainingRecord,
    Url,
)
from arena_async._convert import structure
from arena_async.models.arena import ArenaLogin
from tests.conftest import vendor_dir

SAMPLES = vendor_dir() / "arena-samples"


def load(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


# Which class each response sample is; request bodies and error bodies are listed apart.
LISTS = {
    "item_tickets_1.json": ItemTicketReference,
    "item_references_list_1.json": ItemReference,
    "item_trainingrecords_1.json": TrainingRecord,
}
SINGLES = {
    "item_tickets_2.json": ItemTicketReference,
    "item_reference_create_2.json": ItemReference,
    "item_reference_update_3.json": ItemReference,
    "item_reference_update_4.json": ItemReference,
    "item_trainingrecord_get_1.json": TrainingRecord,
    "login_2.json": ArenaLogin,
}
REQUESTS = {"item_reference_create_1.json", "item_reference_update_1.json",
            "item_reference_update_2.json", "login_1.json"}


def unstructure(obj: Any, cl: type) -> Any:
    """Back to wire form using the same metadata, to prove nothing was lost."""
    from arena_async._convert import wire_name

    if isinstance(obj, list):
        return [unstructure(o, cl) for o in obj]
    if isinstance(obj, datetime):
        return obj.strftime("%Y-%m-%dT%H:%M:%SZ")
    if attrs.has(type(obj)):
        out = {}
        for f in attrs.fields(type(obj)):
            value = getattr(obj, f.name)
            if value is None and f.default is None:
                continue
            out[wire_name(f)] = unstructure(value, f.type)
        return out
    return obj


def test_every_sample_is_classified() -> None:
    names = {p.name for p in SAMPLES.glob("*.json")}
    errors = {n for n in names if "errors" in load(n)}
    assert names == set(LISTS) | set(SINGLES) | REQUESTS | errors
    assert len(names) == 24


@pytest.mark.parametrize("name", sorted(LISTS))
def test_list_samples_round_trip(name: str) -> None:
    body = load(name)
    results = structure(body["results"], list[LISTS[name]], path="$.results")
    assert len(results) == body["count"]
    assert unstructure(results, LISTS[name]) == body["results"]


@pytest.mark.parametrize("name", sorted(SINGLES))
def test_single_samples_round_trip(name: str) -> None:
    body = load(name)
    obj = structure(body, SINGLES[name])
    wire = unstructure(obj, SINGLES[name])
    if SINGLES[name] is ArenaLogin:
        wire["arena_session_id"] = wire.pop("arenaSessionId")
    if body.get("note", "") is None:  # an explicit null note (after a clear)
        assert obj.note is None
        wire["note"] = None
    assert wire == body


def test_training_record_fields_exactly() -> None:
    rec = structure(load("item_trainingrecord_get_1.json"), TrainingRecord)
    assert rec == TrainingRecord(
        guid="L3N6P2NE14K2L4N6D8E2",
        training_plan=TrainingPlanSummary(guid="FXH0JWH8VYF0J2L4NZB8", number="TRP-000004"),
        due_date=datetime(2022, 7, 7, 6, 59, 59, tzinfo=UTC),
        signed_date_time=datetime(2022, 4, 29, 6, 42, 37, tzinfo=UTC),
    )
    assert rec.due_date is not None
    assert rec.due_date.tzinfo is UTC


def test_variants_are_accepted() -> None:
    spec = structure({"guid": "A", "traningplan": {"guid": "B", "number": "N"}}, TrainingRecord)
    assert spec.training_plan == TrainingPlanSummary("B", "N")
    notes = structure({"guid": "R", "item": {"guid": "I", "url": {"api": "a", "app": "b"}},
                       "notes": "n", "extra": 1}, ItemReference)
    assert notes == ItemReference("R", ItemSummary("I", Url("a", "b")), "n")
    spec_login = structure({"arenaSessionId": "SECRET-TOKEN", "workspaceId": 1}, ArenaLogin)
    assert spec_login.session_id == "SECRET-TOKEN"
    assert "SECRET" not in repr(spec_login)
    ticket = structure({"guid": "G", "ticket": {"guid": "T", "number": "REQ-1"}},
                       ItemTicketReference)
    assert ticket.ticket == TicketSummary("T", "REQ-1")


def test_models_are_frozen_and_slotted() -> None:
    for cl in (ItemReference, ItemSummary, Url, ItemTicketReference, TicketSummary,
               TrainingRecord, TrainingPlanSummary, ArenaLogin):
        assert "__slots__" in cl.__dict__
    rec = TrainingRecord("A", TrainingPlanSummary("B"))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        rec.guid = "C"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "path", "reason"),
    [
        ([{"guid": "A", "trainingplan": {"guid": 5}}], "$.results[0].trainingplan.guid",
         "expected a string"),
        ([{"guid": "A", "trainingplan": {"guid": "B"}}, {"guid": "A"}],
         "$.results[1].trainingplan", "required key is missing"),
        ([{"guid": "A", "trainingplan": {"guid": "B"}, "dueDate": "yesterday"}],
         "$.results[0].dueDate", "ISO 8601"),
        ([{"guid": 1.5, "trainingplan": {"guid": "B"}}], "$.results[0].guid", "expected a string"),
        ([["not", "an", "object"]], "$.results[0]", "expected an object"),
    ],
)
def test_wrong_shapes_name_the_wire_path(value: Any, path: str, reason: str) -> None:
    with pytest.raises(ResponseFormatError) as info:
        structure(value, list[TrainingRecord], path="$.results", body=b'{"results": ...}')
    assert info.value.path == path
    assert reason in str(info.value)
    assert path in str(info.value)


def test_no_coercion() -> None:
    with pytest.raises(ResponseFormatError, match=r"expected an integer.*\$\.workspaceId"):
        structure({"arenaSessionId": "s", "workspaceId": "5"}, ArenaLogin)


def test_samples_dir_exists() -> None:
    assert isinstance(SAMPLES, Path)
    assert SAMPLES.is_dir()
