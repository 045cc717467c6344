"""FakeArena's item search: the ``GET /items`` filters as one predicate, without HTTP.

:func:`item_filter` turns the query fields of a request (or of its ``criteria``, read
by :func:`read_criteria`) into one test over an item's wire fields: text fields match
case-insensitively (a trailing ``*`` is a prefix), flags are ``true`` / ``false``,
``assemblyType`` one of :data:`ASSEMBLY_TYPES`, ``effectiveDateTime`` a moment the item
is effective at, and ``includeChildCategories=true`` widens a category filter to the
categories below it. A value the fake cannot read raises :class:`BadQuery`, which the
fake answers with 400.

Example::

    test = item_filter({"number": "PN-10*", "inAssembly": "true"}, categories={})
    found = [data for data in items if test(data)]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final

import attrs

__all__ = ["ASSEMBLY_TYPES", "BadQuery", "Category", "flag", "item_filter", "read_criteria"]

ASSEMBLY_TYPES: Final = ("TOP_LEVEL_ASSEMBLY", "SUB_ASSEMBLY", "NOT_AN_ASSEMBLY")
#: ``GET /items`` query fields holding text: a value matches exactly (case-insensitively)
#: unless it ends with ``*`` (prefix match).
_TEXT_FILTERS: Final = (
    "number",
    "name",
    "description",
    "revisionNumber",
    "category.guid",
    "category.name",
    "lifecyclePhase.guid",
    "lifecyclePhase.stage",
    "owner.fullName",
    "creator.email",
    "creator.guid",
    "creator.fullName",
)
_BOOL_FILTERS: Final = (
    "inAssembly",
    "modifiedBom",
    "modifiedFiles",
    "modifiedSourcing",
    "modifiedSpecs",
)
_ITEM_FILTERS: Final = frozenset(
    (*_TEXT_FILTERS, *_BOOL_FILTERS, "assemblyType", "effectiveDateTime", "includeChildCategories")
)

_Test = Callable[[dict[str, Any]], bool]


class BadQuery(Exception):
    """A query value the fake cannot read: ``The value "<value>" of <name> is not valid:
    <expected>.`` (the fake answers 400 with Arena's bad-format code).

    Example: ``raise BadQuery("responseview", "tiny", "use minimum or full")``
    """

    def __init__(self, name: str, value: str, expected: str) -> None:
        self.message = f'The value "{value}" of {name} is not valid: {expected}.'
        super().__init__(self.message)


@attrs.define(slots=True)
class Category:
    """An item category of the fake workspace (``parent``: the parent's GUID)."""

    guid: str
    name: str
    parent: str | None


def flag(name: str, value: str) -> bool:
    """A ``true`` / ``false`` query value, any case (``BadQuery`` for anything else).

    Example: ``flag("inAssembly", "TRUE")`` is True.
    """
    if value.lower() not in ("true", "false"):
        raise BadQuery(name, value, "use true or false")
    return value.lower() == "true"


def item_filter(query: Mapping[str, str], categories: Mapping[str, Category]) -> _Test:
    """One predicate over an item's wire fields for every filter in ``query`` (other
    fields are not filters and are ignored); ``categories`` by GUID, for
    ``includeChildCategories``."""
    tests: list[_Test] = []
    children = query.get("includeChildCategories")
    with_children = children is not None and flag("includeChildCategories", children)
    for key, value in query.items():
        if key in ("category.guid", "category.name") and with_children:
            field = key.partition(".")[2]
            roots = {c.guid for c in categories.values() if _text_match(value, getattr(c, field))}
            tests.append(partial(_in_categories, guids=_with_descendants(categories, roots)))
        elif key in _TEXT_FILTERS:
            tests.append(partial(_text_test, key=key, pattern=value))
        elif key in _BOOL_FILTERS:
            tests.append(partial(_flag_test, key=key, flag=flag(key, value)))
        elif key == "assemblyType":
            if value not in ASSEMBLY_TYPES:
                raise BadQuery(key, value, f"use one of {', '.join(ASSEMBLY_TYPES)}")
            tests.append(partial(_text_test, key=key, pattern=value))
        elif key == "effectiveDateTime":
            moment = _parse_moment(value)
            if moment is None:
                raise BadQuery(key, value, "use YYYY-MM-DDTHH:MM:SSZ")
            tests.append(partial(_effective_at, moment=moment))

    def matches(data: dict[str, Any]) -> bool:
        return all(test(data) for test in tests)

    return matches


def read_criteria(text: str) -> dict[str, str]:
    """``criteria``: URL-encoded JSON. The fake reads an object of query fields to values
    (``{"category.name": "Resistors", "inAssembly": true}``), ANDed with the rest.

    Example: ``read_criteria('{"inAssembly": true}')`` is ``{"inAssembly": "true"}``.
    """
    shown = text[:60]
    try:
        criteria = json.loads(text)
    except ValueError:
        raise BadQuery("criteria", shown, "use URL-encoded JSON") from None
    if not isinstance(criteria, dict):
        raise BadQuery("criteria", shown, "use a JSON object")
    converted: dict[str, str] = {}
    for key, value in criteria.items():
        if key not in _ITEM_FILTERS:
            raise BadQuery("criteria", shown, f"unknown field {key!r}")
        if isinstance(value, bool):
            converted[key] = "true" if value else "false"
        elif isinstance(value, str):
            converted[key] = value
        else:
            raise BadQuery("criteria", shown, f"{key!r} must be text or a boolean")
    return converted


def _text_match(pattern: str, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if pattern.endswith("*"):
        return value.casefold().startswith(pattern[:-1].casefold())
    return value.casefold() == pattern.casefold()


def _dig(data: Mapping[str, Any], dotted: str) -> Any:
    value: Any = data
    for key in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _parse_moment(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _text_test(data: dict[str, Any], *, key: str, pattern: str) -> bool:
    return _text_match(pattern, _dig(data, key))


def _flag_test(data: dict[str, Any], *, key: str, flag: bool) -> bool:
    return data.get(key) is flag


def _in_categories(data: dict[str, Any], *, guids: set[str]) -> bool:
    return _dig(data, "category.guid") in guids


def _effective_at(data: Mapping[str, Any], *, moment: datetime) -> bool:
    start = data.get("effectiveDateTime")
    begun = _parse_moment(start) if isinstance(start, str) else None
    if begun is None or begun > moment:
        return False
    end = data.get("supersededDateTime")
    ended = _parse_moment(end) if isinstance(end, str) else None
    return ended is None or moment < ended


def _with_descendants(categories: Mapping[str, Category], roots: set[str]) -> set[str]:
    tree = set(roots)
    grew = True
    while grew:
        grew = False
        for category in categories.values():
            if category.parent in tree and category.guid not in tree:
                tree.add(category.guid)
                grew = True
    return tree
