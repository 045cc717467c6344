"""FakeArena's item search: the ``GET /items`` filters as one predicate, without HTTP.

:func:`item_filter` turns the query fields of a request into one test over an item's wire
fields, and :func:`criteria_filter` its ``criteria`` (the vendor's export-criteria list,
refused with the vendor's codes where Arena would refuse it): text fields match
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
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any, Final

import attrs

__all__ = [
    "ASSEMBLY_TYPES",
    "CRITERIA_TABLE",
    "BadCriteria",
    "BadQuery",
    "Category",
    "criteria_filter",
    "flag",
    "item_filter",
]

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

    #: The error code of the 400 answer.
    code: int = 400

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


#: Error codes and messages of the vendor's error tables for refused criteria.
CODE_BAD_FORMAT: Final = 400
CODE_BAD_VALUE: Final = 3003
CODE_UNKNOWN_ATTRIBUTE: Final = 3004
CODE_EMPTY_VALUE: Final = 3020
CODE_BAD_OPERATOR: Final = 3114
CODE_GUID_NOT_ALONE: Final = 3294
CODE_BAD_DATE: Final = 4323
_BAD_FORMAT: Final = "The format of the request is not valid. Please check the syntax."

_TEXT_OPS: Final = ("IS_EQUAL_TO", "IS_NOT_EQUAL_TO", "CONTAINS", "DOES_NOT_CONTAIN",
                    "STARTS_WITH", "DOES_NOT_START_WITH")
_ANY_OPS: Final[tuple[str, ...]] = (
                   *_TEXT_OPS, "IS_IN", "IS_NOT_IN", "IS_BEFORE", "IS_AFTER", "IS_BETWEEN",
                   "IS_LESS_THAN", "IS_LESS_THAN_OR_EQUAL_TO", "IS_GREATER_THAN",
                   "IS_GREATER_THAN_OR_EQUAL_TO", "IS_GREATOR_THAN",
                   "IS_GREATOR_THAN_OR_EQUAL_TO")
#: The vendor's "Supported Criteria Attributes and Their Supported Operators":
#: attribute -> (field type, operators, the item's wire field). ``name`` is not in that
#: table; the fake takes it as single-line text, like the ``name`` search field.
CRITERIA_TABLE: Final[Mapping[str, tuple[str, tuple[str, ...], str]]] = {
    "number": ("text", _TEXT_OPS, "number"),
    "name": ("text", _TEXT_OPS, "name"),
    "revisionNumber": ("text", _TEXT_OPS, "revisionNumber"),
    "description": ("text", _TEXT_OPS, "description"),
    "owner.fullName": ("text", _TEXT_OPS, "owner.fullName"),
    "creator.fullName": ("text", _TEXT_OPS, "creator.fullName"),
    "creator.email": ("text", _TEXT_OPS, "creator.email"),
    "category.name": ("text", _TEXT_OPS, "category.name"),
    "supplier.name": ("text", _TEXT_OPS, "supplier.name"),
    "supplierItem.name": ("text", _TEXT_OPS, "supplierItem.name"),
    "any": ("text", ("CONTAINS",), ""),
    "guid": ("guid", ("IS_EQUAL_TO", "IS_IN"), "guid"),
    "category.guid": ("guid", ("IS_EQUAL_TO", "IS_IN"), "category.guid"),
    "lifecyclePhase.guid": ("guid", ("IS_EQUAL_TO", "IS_IN"), "lifecyclePhase.guid"),
    "creator.guid": ("guid", ("IS_EQUAL_TO",), "creator.guid"),
    "supplier.guid": ("guid", ("IS_EQUAL_TO",), "supplier.guid"),
    "supplierItem.guid": ("guid", ("IS_EQUAL_TO",), "supplierItem.guid"),
    "lifecyclePhase.name": ("choice", ("IS_EQUAL_TO", "IS_NOT_EQUAL_TO"), "lifecyclePhase.name"),
    "lifecyclePhase.stage": ("choice", ("IS_EQUAL_TO", "IS_NOT_EQUAL_TO"),
                             "lifecyclePhase.stage"),
    "effectiveDateTime": ("datetime", ("IS_BEFORE", "IS_AFTER", "IS_BETWEEN"),
                          "effectiveDateTime"),
    "creationDateTime": ("datetime", ("IS_EQUAL_TO", "IS_BEFORE", "IS_AFTER", "IS_BETWEEN"),
                         "creationDateTime"),
    "modifiedBOM": ("boolean", ("IS_EQUAL_TO",), "modifiedBom"),
    "modifiedSpecs": ("boolean", ("IS_EQUAL_TO",), "modifiedSpecs"),
    "modifiedSourcing": ("boolean", ("IS_EQUAL_TO",), "modifiedSourcing"),
    "modifiedFiles": ("boolean", ("IS_EQUAL_TO",), "modifiedFiles"),
}
_ATTRIBUTE_GUID: Final = re.compile(r"[A-Z0-9]{8,40}")
_ZULU: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


class BadCriteria(BadQuery):
    """Criteria Arena would refuse: the vendor's ``code`` and ``message`` (the fake answers
    400 with them).

    Example: ``BadCriteria(3004, 'The attribute "color" is not recognized.')``
    """

    def __init__(self, code: int, message: str) -> None:
        Exception.__init__(self, message)
        self.code = code
        self.message = message


def _bad_format() -> BadCriteria:
    return BadCriteria(CODE_BAD_FORMAT, _BAD_FORMAT)


def criteria_filter(text: str) -> _Test:
    """``criteria`` (the URL-decoded JSON of ``GET /items``) as one predicate over an
    item's wire fields (``guid`` included), or :class:`BadCriteria` for what Arena refuses.

    The format is the vendor's export criteria: groups joined by ``"AND"`` / ``"OR"``, each
    a list of ``{"attribute", "operator", "value"}`` joined the same way. ``AND`` binds
    tighter than ``OR``, in groups and between them (the vendor does not say; this is the
    usual boolean reading). Text operators ignore case; ``IS_EQUAL_TO`` /
    ``IS_NOT_EQUAL_TO`` read ``*`` literally, ``CONTAINS`` / ``STARTS_WITH`` (and their
    negations) as a wildcard. A ``guid`` criterion, or ``IS_IN`` on a GUID attribute, must
    be the only criterion (3294).

    Example::

        test = criteria_filter('[[{"attribute":"number","operator":"STARTS_WITH",'
                               '"value":"PN-1"}]]')
    """
    try:
        criteria = json.loads(text)
    except ValueError:
        raise _bad_format() from None
    top = _split(criteria, _group_test)
    every = [c for conj in top for group in conj for inner in group for c in inner]
    if len(every) > 1 and any(c.alone for c in every):
        raise BadCriteria(CODE_GUID_NOT_ALONE, "Criteria cannot contain guid criterion.")

    def matches(data: dict[str, Any]) -> bool:
        return any(all(any(all(c.test(data) for c in inner) for inner in group)
                       for group in conj) for conj in top)

    return matches


@attrs.frozen(slots=True)
class _Criterion:
    test: _Test
    alone: bool


def _split(elements: Any, check: Callable[[Any], Any]) -> list[list[Any]]:
    """Elements joined by AND/OR -> OR of ANDs (lists of the checked elements)."""
    if not isinstance(elements, list) or not elements or len(elements) % 2 == 0:
        raise _bad_format()
    disjunction: list[list[Any]] = [[check(elements[0])]]
    for logic, element in zip(elements[1::2], elements[2::2], strict=True):
        if logic == "AND":
            disjunction[-1].append(check(element))
        elif logic == "OR":
            disjunction.append([check(element)])
        else:
            raise _bad_format()
    return disjunction


def _group_test(group: Any) -> list[list[_Criterion]]:
    return _split(group, _criterion)


def _criterion(raw: Any) -> _Criterion:
    if not isinstance(raw, dict) or set(raw) != {"attribute", "operator", "value"}:
        raise _bad_format()
    attribute, operator, value = raw["attribute"], raw["operator"], raw["value"]
    if not isinstance(attribute, str) or not isinstance(operator, str):
        raise _bad_format()
    known = CRITERIA_TABLE.get(attribute)
    if known is None:
        if _ATTRIBUTE_GUID.fullmatch(attribute) is None:
            raise BadCriteria(CODE_UNKNOWN_ATTRIBUTE, f'The attribute "{attribute}" is not '
                              "recognized.")
        kind, operators, field = "additional", _ANY_OPS, attribute
    else:
        kind, operators, field = known
    if operator not in operators:
        raise BadCriteria(CODE_BAD_OPERATOR, f'The specified operator "{operator}" is not '
                          f'valid for the attribute "{attribute}".')
    test = _value_test(kind, operator, field, attribute, value)
    alone = attribute == "guid" or (kind == "guid" and operator == "IS_IN")
    return _Criterion(test, alone)


def _bad_value(attribute: str) -> BadCriteria:
    return BadCriteria(CODE_BAD_VALUE, f'The value for the attribute "{attribute}" is not valid.')


def _text_value(value: Any, attribute: str) -> str:
    if not isinstance(value, str):
        raise _bad_value(attribute)
    if not value.strip():
        raise BadCriteria(CODE_EMPTY_VALUE,
                          f'The value for the attribute "{attribute}" cannot be empty.')
    return value


def _moment(value: Any) -> datetime:
    if not isinstance(value, str) or _ZULU.fullmatch(value) is None:
        raise BadCriteria(CODE_BAD_DATE, f'The value "{value}" is not valid for date and time '
                          "fields. Please format all date and time fields in UTC/Zulu format.")
    moment = _parse_moment(value)
    assert moment is not None
    return moment


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")),
                      re.IGNORECASE | re.DOTALL)


def _field(data: Mapping[str, Any], field: str) -> Any:
    if field == "":  # any: the item's text fields
        return " ".join(str(data.get(k) or "") for k in ("number", "name", "description"))
    if _ATTRIBUTE_GUID.fullmatch(field):
        for entry in data.get("additionalAttributes") or ():
            if isinstance(entry, Mapping) and entry.get("guid") == field:
                return entry.get("value")
        return None
    return _dig(data, field)


def _text_op(operator: str, pattern: str) -> Callable[[Any], bool]:
    if operator in ("IS_EQUAL_TO", "IS_NOT_EQUAL_TO"):
        folded = pattern.casefold()
        hit: Callable[[str], bool] = lambda v: v.casefold() == folded  # noqa: E731
    elif operator in ("STARTS_WITH", "DOES_NOT_START_WITH"):
        regex = _glob(pattern)
        hit = lambda v: regex.match(v) is not None  # noqa: E731
    else:
        regex = _glob(pattern)
        hit = lambda v: regex.search(v) is not None  # noqa: E731
    negated = operator.startswith(("IS_NOT", "DOES_NOT"))

    def test(value: Any) -> bool:
        found = isinstance(value, str) and hit(value)
        return not found if negated else found

    return test


def _value_test(kind: str, operator: str, field: str, attribute: str, value: Any) -> _Test:
    check: Callable[[Any], bool]
    if operator in ("IS_IN", "IS_NOT_IN"):
        if not isinstance(value, list) or not value or not all(
                isinstance(v, str) and v.strip() for v in value):
            raise _bad_value(attribute)
        wanted = {v.casefold() for v in value}

        def check(found: Any) -> bool:
            values = found if isinstance(found, list) else [found]
            hit = any(isinstance(v, str) and v.casefold() in wanted for v in values)
            return hit if operator == "IS_IN" else not hit
    elif kind == "datetime" or operator in ("IS_BEFORE", "IS_AFTER", "IS_BETWEEN"):
        if operator == "IS_BETWEEN":
            if not isinstance(value, list) or len(value) != 2:
                raise _bad_value(attribute)
            low, high = _moment(value[0]), _moment(value[1])
            if low > high:
                raise _bad_value(attribute)
        else:
            low = high = _moment(value)

        def check(found: Any) -> bool:
            moment = _parse_moment(found) if isinstance(found, str) else None
            if moment is None:
                return False
            if operator == "IS_BEFORE":
                return moment < low
            if operator == "IS_AFTER":
                return moment > low
            if operator == "IS_EQUAL_TO":
                return moment == low
            return low <= moment <= high
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise _bad_value(attribute)
        check = partial(operator_is, value)
    elif kind == "choice":
        choices = value if isinstance(value, list) else (
            value.split(";") if isinstance(value, str) else None)
        if not choices or not all(isinstance(c, str) and c.strip() for c in choices):
            raise _bad_value(attribute)
        wanted_choices = {c.strip().casefold() for c in choices}

        def check(found: Any) -> bool:
            hit = isinstance(found, str) and found.casefold() in wanted_choices
            return hit if operator == "IS_EQUAL_TO" else not hit
    elif kind == "additional" and operator not in _TEXT_OPS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad_value(attribute)
        compare = _COMPARE[operator.replace("GREATOR", "GREATER")]

        def check(found: Any) -> bool:
            return (isinstance(found, int | float) and not isinstance(found, bool)
                    and compare(found, value))
    else:
        check = _text_op(operator, _text_value(value, attribute))

    def test(data: dict[str, Any]) -> bool:
        return check(_field(data, field))

    return test


def operator_is(expected: bool, found: Any) -> bool:
    """``IS_EQUAL_TO`` on a boolean field."""
    return found is expected


_COMPARE: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "IS_LESS_THAN": lambda a, b: a < b,
    "IS_LESS_THAN_OR_EQUAL_TO": lambda a, b: a <= b,
    "IS_GREATER_THAN": lambda a, b: a > b,
    "IS_GREATER_THAN_OR_EQUAL_TO": lambda a, b: a >= b,
}


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
