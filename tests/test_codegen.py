"""``arena_async._codegen``: the generated structurer agrees with cattrs on every input.

It may refuse input (``structure`` then asks cattrs' detailed converter), but whatever it
accepts must give exactly what cattrs gives for the same input, and whatever cattrs refuses
it must refuse too. Inputs: the Akana seed tickets and Arena records, randomly mutated
(keys dropped or renamed to aliases, values replaced by wrong types, lone items, wrappers).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arena_async import ResponseFormatError
from arena_async._codegen import _generated, _slot_setters, structurer
from arena_async._convert import _DETAILED, structure
from arena_async.models.akana import Ticket
from arena_async.models.arena import ItemReference, ItemTicketReference, TrainingRecord

SAMPLE = Path(__file__).parent / "models" / "data" / "akana_tickets_sample.json"
TICKETS: list[dict[str, Any]] = json.loads(SAMPLE.read_text())["Ticket"]
RECORD = {"guid": "TR1", "trainingplan": {"guid": "P1", "number": "TRP-1"},
          "dueDate": "2024-01-02T03:04:05Z", "signedDateTime": "2024-01-02T03:04:05+02:00"}
REFERENCE = {"guid": "R1", "item": {"guid": "I1", "url": {"api": "a", "app": "b"}},
             "notes": "x"}
TICKET_REF = {"guid": "A1", "ticket": {"guid": "T1", "number": "CO-1"}}

ODD = st.sampled_from([None, "5", 5, 5.0, True, False, [], {}, ["x"], [{}], {"a": 1},
                       "2024-01-02T03:04:05", "not a date", "", [None], {"TargetResource": "x"},
                       {"TargetResource": [{"Name": "n"}]}, {"Comment": {"Content": "c"}},
                       {"BoardItemArtifact": [{"k": 1}]}, [{1: 2}]])


def _mutate(data: Any, draw: Any) -> Any:
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            choice = draw(st.integers(0, 9))
            if choice == 0:
                continue  # dropped
            if choice == 1:
                out[key] = draw(ODD)
            elif choice == 2:
                out[key.lower()] = value  # another casing or an alias
            else:
                out[key] = _mutate(value, draw)
        if draw(st.integers(0, 5)) == 0:
            out[draw(st.sampled_from(["notes", "traningplan", "Text", "Label", "Tag"]))] = \
                draw(ODD)
        return out
    if isinstance(data, list):
        return [_mutate(item, draw) for item in data if draw(st.integers(0, 6))]
    return data


def _cattrs(value: Any, cl: Any) -> tuple[bool, Any]:
    try:
        return True, _DETAILED.structure(copy.deepcopy(value), cl)
    except Exception:
        return False, None


def _fast(value: Any, cl: Any) -> tuple[bool, Any]:
    try:
        return True, _generated(cl)(copy.deepcopy(value))
    except Exception:
        return False, None


CASES = [(Ticket, TICKETS[0]), (Ticket, TICKETS[1]), (list[Ticket], TICKETS),
         (TrainingRecord, RECORD), (list[TrainingRecord], [RECORD, RECORD]),
         (ItemReference, REFERENCE), (list[ItemTicketReference], [TICKET_REF])]


@pytest.mark.parametrize(("cl", "data"), CASES, ids=lambda v: getattr(v, "__name__", "data"))
def test_generated_accepts_the_samples(cl: Any, data: Any) -> None:
    accepted, result = _fast(data, cl)
    assert accepted
    assert result == _DETAILED.structure(data, cl)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(CASES), data=st.data())
def test_generated_agrees_with_cattrs(case: tuple[Any, Any], data: st.DataObject) -> None:
    cl, sample = case
    value = _mutate(sample, data.draw)
    accepted, result = _fast(value, cl)
    expected_ok, expected = _cattrs(value, cl)
    if accepted:
        assert expected_ok, f"the fast path accepted what cattrs refuses: {value!r}"
        assert result == expected
        assert type(result) is type(expected)
    # structure() answers as cattrs does either way (the detailed converter decides).
    try:
        got = structure(value, cl)
    except ResponseFormatError:
        assert not expected_ok
    else:
        assert expected_ok
        assert got == expected


def test_slots_set_only_for_plain_attrs_classes() -> None:
    @attrs.frozen
    class Validated:
        x: int = attrs.field(validator=attrs.validators.instance_of(int))

    @attrs.frozen
    class PostInit:
        x: int

        def __attrs_post_init__(self) -> None:
            pass

    @attrs.frozen(cache_hash=True)
    class CachedHash:
        x: int

    @attrs.frozen
    class Converted:
        x: int = attrs.field(converter=int)

    for cl in (Validated, PostInit, CachedHash, Converted):
        assert _slot_setters(cl) is None
    assert _slot_setters(TrainingRecord) is not None
    assert _generated(Converted)({"x": 5}) == Converted(5)  # built through __init__


def test_the_generated_structurer_accepts_or_raises_never_another_answer() -> None:
    fast: Any = structurer(list[ItemTicketReference])
    assert fast is structurer(list[ItemTicketReference])  # built once
    assert fast([TICKET_REF]) == structure([TICKET_REF], list[ItemTicketReference])
    for refused in ([{"guid": 5, "ticket": {"guid": "T"}}], [{"guid": "A"}], {"guid": "A"},
                    [{"guid": "A", "ticket": {"guid": "T", "number": 5}}]):
        with pytest.raises(Exception):  # noqa: B017
            fast(refused)
