"""``arena_async._convert``: the converter of record. What the generated structurer refuses,
the detailed cattrs converter decides, naming the wire path; it is the one cattrs converter.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import attrs
import pytest

import arena_async._codegen as codegen
import arena_async._convert as conv
import arena_async._envelope as envelope
from arena_async._codegen import structurer
from arena_async._convert import loads, structure, structure_json
from arena_async.errors import ResponseFormatError
from arena_async.models.arena import ItemTicketReference, TrainingRecord

REF = {"guid": "A", "ticket": {"guid": "T", "number": "N"}}


@attrs.frozen
class Node:
    name: str
    children: list[Node] = attrs.field(factory=list)


def test_a_type_the_generator_cannot_build_always_refuses_and_cattrs_answers() -> None:
    fast: Any = structurer(Node)  # recursive: not generated
    with pytest.raises(Exception):  # noqa: B017 (any exception is the contract)
        fast({"name": "a"})
    tree = {"name": "a", "children": [{"name": "b"}]}
    assert structure(tree, Node) == Node("a", [Node("b")])
    with pytest.raises(ResponseFormatError) as caught:
        structure({"name": "a", "children": [{"name": 5}]}, Node)
    assert caught.value.path == "$.children[0].name"


def test_there_is_one_cattrs_converter() -> None:
    import cattrs

    converters = [v for module in (codegen, conv, envelope) for v in vars(module).values()
                  if isinstance(v, cattrs.BaseConverter)]
    assert converters == [conv._DETAILED]


def test_what_the_generated_function_refuses_and_cattrs_accepts_is_cattrs_answer() -> None:
    proxy = MappingProxyType(REF)  # a Mapping, not a dict: the generated function refuses
    with pytest.raises(Exception):  # noqa: B017
        structurer(ItemTicketReference)(proxy)
    assert structure(proxy, ItemTicketReference) == structure(REF, ItemTicketReference)


def test_a_wrong_shape_names_the_wire_path_under_the_given_prefix() -> None:
    with pytest.raises(ResponseFormatError) as caught:
        structure([{"guid": "R", "trainingplan": {"number": "P"}}], list[TrainingRecord],
                  path="$.results", url="/items/A/trainingrecords")
    assert caught.value.path == "$.results[0].trainingplan.guid"
    assert "required key is missing" in str(caught.value)
    assert caught.value.url == "/items/A/trainingrecords"


def test_loads_refuses_what_is_not_json_naming_the_url() -> None:
    assert loads(b'{"a": [1]}') == {"a": [1]}
    with pytest.raises(ResponseFormatError, match="not valid JSON") as caught:
        loads(b"<html>", url="/x")
    assert (caught.value.path, caught.value.url) == ("$", "/x")


def test_structure_json_decodes_then_structures() -> None:
    assert structure_json(b'{"guid": "A", "ticket": {"guid": "T", "number": "N"}}',
                          ItemTicketReference) == structure(REF, ItemTicketReference)
    with pytest.raises(ResponseFormatError) as caught:
        structure_json(b'{"guid": 5, "ticket": {"guid": "T"}}', ItemTicketReference,
                       url="/y")
    assert caught.value.path == "$.guid"
