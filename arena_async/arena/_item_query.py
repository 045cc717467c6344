"""The ``GET /items`` query: every search argument checked and encoded, before anything is
sent (pure: no I/O).

``criteria`` is Arena's export-criteria format (the vendor's pages "Export Criteria" and
"Criteria: Attributes and Operators"): a list of criterion groups joined by ``"AND"`` /
``"OR"``, each group a list of criteria joined the same way, each criterion
``{"attribute", "operator", "value"}``::

    [[{"attribute": "number", "operator": "STARTS_WITH", "value": "PN-1"}],
     "OR",
     [{"attribute": "category.name", "operator": "IS_EQUAL_TO", "value": "Resistors"},
      "AND",
      {"attribute": "lifecyclePhase.stage", "operator": "IS_EQUAL_TO",
       "value": "IN_PRODUCTION"}]]

:class:`NumberBatches` plans the lookups of many item numbers: ``OR`` groups of exact
``IS_EQUAL_TO`` criteria, as many per request as fit in a URL of :data:`MAX_LOOKUP_URL`
bytes, measured as aiohttp will send it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import yarl

from .._checks import check_optional_flag, check_text

__all__ = [
    "ASSEMBLY_TYPES",
    "CRITERIA_ATTRIBUTES",
    "CRITERIA_OPERATORS",
    "MAX_LOOKUP_URL",
    "NumberBatches",
    "check_criteria",
    "check_number",
    "encode_criteria",
    "number_criteria",
    "search_params",
    "view_params",
]

#: The values ``GET /items`` accepts for ``assemblyType``.
ASSEMBLY_TYPES: Final = ("TOP_LEVEL_ASSEMBLY", "SUB_ASSEMBLY", "NOT_AN_ASSEMBLY")
_VIEWS: Final = ("full", "minimum")
#: ``GET /items`` text filters: keyword argument -> wire query field.
_TEXT_FILTERS: Final = {
    "number": "number",
    "name": "name",
    "description": "description",
    "revision_number": "revisionNumber",
    "category_guid": "category.guid",
    "category_name": "category.name",
    "lifecycle_phase_guid": "lifecyclePhase.guid",
    "lifecycle_phase_stage": "lifecyclePhase.stage",
    "owner_full_name": "owner.fullName",
    "creator_email": "creator.email",
    "creator_guid": "creator.guid",
    "creator_full_name": "creator.fullName",
}
#: ``GET /items`` boolean filters (sent as ``true`` / ``false``).
_FLAG_FILTERS: Final = {
    "include_child_categories": "includeChildCategories",
    "in_assembly": "inAssembly",
    "modified_bom": "modifiedBom",
    "modified_files": "modifiedFiles",
    "modified_sourcing": "modifiedSourcing",
    "modified_specs": "modifiedSpecs",
}


def search_params(
    filters: Mapping[str, object],
    assembly_type: object,
    effective_date_time: object,
    criteria: object,
    view: object,
) -> dict[str, str]:
    """The ``GET /items`` query for the given filters, every argument checked first.

    None is not sent; text goes as given (aiohttp/yarl percent-encode it, so ``%`` and
    ``+`` reach the server as ``%25`` and ``%2B``); booleans as ``true`` / ``false``.
    """
    params: dict[str, str] = {}
    for name, value in filters.items():
        if value is None:
            continue
        if name in _TEXT_FILTERS:
            params[_TEXT_FILTERS[name]] = str(check_text(name, value))
        else:
            params[_FLAG_FILTERS[name]] = "true" if check_optional_flag(name, value) else "false"
    if assembly_type is not None:
        if assembly_type not in ASSEMBLY_TYPES:
            raise ValueError(
                f"assembly_type must be one of {', '.join(ASSEMBLY_TYPES)} or None,"
                f" got {assembly_type!r}"
            )
        params["assemblyType"] = str(assembly_type)
    if effective_date_time is not None:
        params["effectiveDateTime"] = _wire_moment(effective_date_time)
    if criteria is not None:
        params["criteria"] = encode_criteria(check_criteria(criteria))
    params.update(view_params(view))
    return params


def view_params(view: object) -> dict[str, str]:
    """``view``: "full" (nothing sent) or "minimum" (``responseview=minimum``)."""
    if view not in _VIEWS:
        raise ValueError(f"view must be 'full' or 'minimum', got {view!r}")
    return {"responseview": "minimum"} if view == "minimum" else {}


def _wire_moment(value: object, name: str = "effective_date_time") -> str:
    """A moment as Arena reads it: UTC ``YYYY-MM-DDTHH:MM:SSZ`` (Zulu; the vendor's code
    4323 refuses any other form).

    An aware datetime is converted; so is an ISO 8601 string that says its offset (``Z`` or
    ``+02:00``), so a string that would cost a request and a 400 is either fixed or refused
    here. A moment without an offset (a naive datetime, ``"2024-07-01"``) is refused: Arena
    would read it as UTC and the caller may have meant local time. Fractions of a second are
    dropped (Arena's form has none).
    """
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"{name} {value!r} is not an ISO 8601 date and time: use an aware datetime or"
                " Arena's form, e.g. '2024-07-01T00:00:00Z'") from None
    else:
        raise ValueError(f"{name} must be an aware datetime or a date-time string such as "
                         f"'2024-07-01T00:00:00Z', got {value!r}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"{name} must say its time zone (UTC is what Arena uses): give an aware datetime"
            f" or a string ending in Z or an offset, e.g. '2024-07-01T00:00:00Z', got {value!r}")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_number(number: object) -> str:
    """One item number to look up exactly: a non-empty string without surrounding
    whitespace. ``*``, ``%`` and ``+`` are ordinary characters here (``IS_EQUAL_TO`` reads
    an asterisk literally; the query is percent-encoded).

    Example: ``check_number("PN-1*")`` is ``"PN-1*"`` (the number, not a prefix).
    """
    if not isinstance(number, str):
        raise ValueError(f"every item number must be a string, got {type(number).__name__}")
    if not number:
        raise ValueError("an item number must not be empty")
    if number != number.strip():
        raise ValueError(f"item number {number!r} has leading or trailing whitespace")
    return number


# -- criteria ---------------------------------------------------------------------------

_TEXT_OPERATORS: Final = ("IS_EQUAL_TO", "IS_NOT_EQUAL_TO", "CONTAINS", "DOES_NOT_CONTAIN",
                          "STARTS_WITH", "DOES_NOT_START_WITH")
_CHOICE_OPERATORS: Final = ("IS_EQUAL_TO", "IS_NOT_EQUAL_TO")
_DATE_OPERATORS: Final = ("IS_EQUAL_TO", "IS_BEFORE", "IS_AFTER", "IS_BETWEEN")
#: Every operator the vendor's tables name (both of its spellings of "greater"); an
#: additional attribute (named by its GUID) may take any of them.
CRITERIA_OPERATORS: Final = frozenset((
    *_TEXT_OPERATORS, "IS_IN", "IS_NOT_IN", "IS_BEFORE", "IS_AFTER", "IS_BETWEEN",
    "IS_LESS_THAN", "IS_LESS_THAN_OR_EQUAL_TO", "IS_GREATER_THAN",
    "IS_GREATER_THAN_OR_EQUAL_TO", "IS_GREATOR_THAN", "IS_GREATOR_THAN_OR_EQUAL_TO"))

#: The item attributes of the vendor's table "Supported Criteria Attributes and Their
#: Supported Operators": attribute -> (field type, operators). ``name`` is not in that
#: table but is a ``GET /items`` search field; it is taken as single-line text.
CRITERIA_ATTRIBUTES: Final[Mapping[str, tuple[str, tuple[str, ...]]]] = {
    "number": ("text", _TEXT_OPERATORS),
    "name": ("text", _TEXT_OPERATORS),
    "revisionNumber": ("text", _TEXT_OPERATORS),
    "description": ("text", _TEXT_OPERATORS),
    "owner.fullName": ("text", _TEXT_OPERATORS),
    "creator.fullName": ("text", _TEXT_OPERATORS),
    "creator.email": ("text", _TEXT_OPERATORS),
    "supplier.name": ("text", _TEXT_OPERATORS),
    "supplierItem.name": ("text", _TEXT_OPERATORS),
    "category.name": ("text", _TEXT_OPERATORS),
    "any": ("text", ("CONTAINS",)),
    "guid": ("guid", ("IS_EQUAL_TO", "IS_IN")),
    "category.guid": ("guid", ("IS_EQUAL_TO", "IS_IN")),
    "lifecyclePhase.guid": ("guid", ("IS_EQUAL_TO", "IS_IN")),
    "creator.guid": ("guid", ("IS_EQUAL_TO",)),
    "supplier.guid": ("guid", ("IS_EQUAL_TO",)),
    "supplierItem.guid": ("guid", ("IS_EQUAL_TO",)),
    "lifecyclePhase.name": ("choice", _CHOICE_OPERATORS),
    "lifecyclePhase.stage": ("choice", _CHOICE_OPERATORS),
    "effectiveDateTime": ("datetime", ("IS_BEFORE", "IS_AFTER", "IS_BETWEEN")),
    "creationDateTime": ("datetime", _DATE_OPERATORS),
    "modifiedBOM": ("boolean", ("IS_EQUAL_TO",)),
    "modifiedSpecs": ("boolean", ("IS_EQUAL_TO",)),
    "modifiedSourcing": ("boolean", ("IS_EQUAL_TO",)),
    "modifiedFiles": ("boolean", ("IS_EQUAL_TO",)),
}
#: An additional (custom) attribute is named by its GUID.
_ATTRIBUTE_GUID: Final = re.compile(r"[A-Z0-9]{8,40}")
_LOGIC: Final = ("AND", "OR")
_KEYS: Final = frozenset(("attribute", "operator", "value"))


def _where(path: tuple[int, ...], key: str | None = None) -> str:
    text = "criteria" + "".join(f"[{i}]" for i in path)
    return text if key is None else f'{text}["{key}"]'


def _old_form_hint(criteria: Mapping[Any, Any]) -> str:
    attribute, value = next(iter(criteria.items()), ("category.name", "Resistors"))
    example = [[{"attribute": str(attribute), "operator": "IS_EQUAL_TO", "value": value}]]
    try:
        shown = json.dumps(example)
    except (TypeError, ValueError):
        shown = '[[{"attribute": "category.name", "operator": "IS_EQUAL_TO", "value": "R"}]]'
    return ("criteria is Arena's list of criterion groups joined by \"AND\"/\"OR\", not a "
            f"dict: e.g. criteria={shown}")


def check_criteria(criteria: object) -> list[Any]:
    """``criteria`` checked against the vendor's rules, with every value in its wire form
    (an aware ``datetime`` becomes ``YYYY-MM-DDTHH:MM:SSZ``). A ``ValueError`` names the
    element at fault, e.g. ``criteria[2][0]["operator"]``.

    The rules: a non-empty list of groups (lists) joined by ``"AND"`` / ``"OR"``; a group
    is a non-empty list of criteria joined the same way; a criterion is a dict of exactly
    ``attribute``, ``operator`` and ``value``; the operator is one the vendor's table
    allows for that attribute (an attribute outside the table must be an additional
    attribute's GUID); the value has the operator's type (text: a non-blank string;
    ``IS_IN`` / ``IS_NOT_IN``: a non-empty list of strings; ``IS_BETWEEN``: two moments in
    chronological order; booleans for the ``modified*`` flags); a ``guid`` criterion, or
    an ``IS_IN`` on a GUID attribute, stands alone (the vendor: "if GUID is included, no
    other criterion or criterion groups are permitted"; its own examples combine
    ``IS_EQUAL_TO`` on ``category.guid`` with others, so that is allowed).

    Example::

        check_criteria([[{"attribute": "number", "operator": "STARTS_WITH",
                          "value": "PN-1"}]])
    """
    if isinstance(criteria, Mapping):
        raise ValueError(_old_form_hint(criteria))
    if not isinstance(criteria, list | tuple):
        raise ValueError(f"criteria must be a list of criterion groups joined by \"AND\"/\"OR\""
                         f" (or None), got {type(criteria).__name__}")
    groups = _joined(criteria, (), "criterion group", _check_group)
    count = sum(1 for group in groups[::2] for criterion in group[::2])
    if count > 1:
        for gi, group in enumerate(groups[::2]):
            for ci, criterion in enumerate(group[::2]):
                if _stands_alone(criterion):
                    raise ValueError(
                        f"{_where((2 * gi, 2 * ci))}: a {criterion['attribute']!r} criterion "
                        f"with {criterion['operator']} must be the only criterion (Arena "
                        "allows no other criterion or group beside it)")
    return groups


def _stands_alone(criterion: Mapping[str, Any]) -> bool:
    attribute = criterion["attribute"]
    kind = CRITERIA_ATTRIBUTES.get(attribute, ("", ()))[0]
    return attribute == "guid" or (kind == "guid" and criterion["operator"] == "IS_IN")


def _joined(elements: Sequence[Any], path: tuple[int, ...], what: str,
            check: Any) -> list[Any]:
    if not elements:
        raise ValueError(f"{_where(path)} must not be empty: give at least one {what}")
    out: list[Any] = []
    for index, element in enumerate(elements):
        here = (*path, index)
        if index % 2:
            if element not in _LOGIC or not isinstance(element, str):
                raise ValueError(f'{_where(here)} must be "AND" or "OR" (between two '
                                 f"{what}s), got {element!r}")
            out.append(element)
        else:
            out.append(check(element, here))
    if len(elements) % 2 == 0:
        raise ValueError(f"{_where((*path, len(elements) - 1))}: {elements[-1]!r} ends the "
                         f"list; \"AND\"/\"OR\" go only between two {what}s")
    return out


def _check_group(group: object, path: tuple[int, ...]) -> list[Any]:
    if isinstance(group, Mapping):
        raise ValueError(f"{_where(path)} must be a criterion group (a list), got a dict: "
                         "wrap the criterion in a list, e.g. criteria=[[{...}]]")
    if not isinstance(group, list | tuple):
        raise ValueError(f"{_where(path)} must be a criterion group (a list of criteria), "
                         f"got {group!r}")
    return _joined(group, path, "criterion", _check_criterion)


def _check_criterion(criterion: object, path: tuple[int, ...]) -> dict[str, Any]:
    if not isinstance(criterion, Mapping):
        raise ValueError(f"{_where(path)} must be a criterion, a dict with attribute, "
                         f"operator and value, got {criterion!r}")
    for key in criterion:
        if not isinstance(key, str):
            raise ValueError(f"{_where(path)} has a key that is not a string: {key!r}")
    unknown = sorted(set(criterion) - _KEYS)
    if unknown:
        raise ValueError(f"{_where(path)} has unknown keys {unknown}: a criterion has exactly "
                         "attribute, operator and value")
    for key in ("attribute", "operator", "value"):
        if key not in criterion:
            raise ValueError(f"{_where(path, key)} is missing")
    attribute, operator = criterion["attribute"], criterion["operator"]
    if not isinstance(attribute, str) or not attribute:
        raise ValueError(f"{_where(path, 'attribute')} must be a non-empty string, got "
                         f"{attribute!r}")
    if not isinstance(operator, str) or operator not in CRITERIA_OPERATORS:
        raise ValueError(f"{_where(path, 'operator')} must be one of "
                         f"{', '.join(sorted(CRITERIA_OPERATORS))}, got {operator!r}")
    known = CRITERIA_ATTRIBUTES.get(attribute)
    if known is None:
        if _ATTRIBUTE_GUID.fullmatch(attribute) is None:
            raise ValueError(
                f"{_where(path, 'attribute')}: {attribute!r} is not a criteria attribute; use "
                f"one of {', '.join(CRITERIA_ATTRIBUTES)}, or an additional attribute's GUID")
        kind = "any"
    else:
        kind, operators = known
        if operator not in operators:
            raise ValueError(f"{_where(path, 'operator')}: {operator} is not valid for "
                             f"{attribute!r}; use {', '.join(operators)}")
    value = _check_value(criterion["value"], kind, operator, _where(path, "value"))
    return {"attribute": attribute, "operator": operator, "value": value}


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"{where} must be a non-empty list of strings, got {value!r}")
    for index, entry in enumerate(value):
        if not isinstance(entry, str) or not entry.strip():
            raise ValueError(f"{where}[{index}] must be a non-blank string, got {entry!r}")
    return list(value)


def _check_value(value: object, kind: str, operator: str, where: str) -> Any:
    if operator in ("IS_IN", "IS_NOT_IN"):
        return _strings(value, where)
    if kind == "datetime":
        if operator == "IS_BETWEEN":
            if not isinstance(value, list | tuple) or len(value) != 2:
                raise ValueError(f"{where} must be a list of two moments (from, to) for "
                                 f"IS_BETWEEN, got {value!r}")
            low, high = (_wire_moment(v, f"{where}[{i}]") for i, v in enumerate(value))
            if low > high:  # the wire form sorts as the moments do
                raise ValueError(f"{where}: the two moments must be in chronological order, "
                                 f"got {low} after {high}")
            return [low, high]
        return _wire_moment(value, where)
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be True or False, got {value!r}")
        return value
    if kind == "choice" and isinstance(value, list | tuple):
        return _strings(value, where)
    if kind == "any":
        if isinstance(value, datetime):
            return _wire_moment(value, where)
        if isinstance(value, list | tuple):
            return [_check_value(v, kind, "", f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{where} must be a finite number, got {value!r}")
        if isinstance(value, bool | int | float | str):
            if isinstance(value, str) and not value.strip():
                raise ValueError(f"{where} must not be blank")
            return value
        raise ValueError(f"{where} must be a string, number, boolean or list, got {value!r}")
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{where} must not be blank (Arena refuses an empty value)")
    return value


def encode_criteria(criteria: Sequence[Any]) -> str:
    """Checked criteria as sent: compact JSON (non-ASCII as UTF-8, which the query's
    percent-encoding keeps shorter than ``\\u`` escapes).

    Example: ``encode_criteria(number_criteria(["PN-1"]))`` is
    ``'[[{"attribute":"number","operator":"IS_EQUAL_TO","value":"PN-1"}]]'``.
    """
    return json.dumps(criteria, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def number_criteria(numbers: Sequence[str]) -> list[Any]:
    """Criteria matching exactly these item numbers: one ``IS_EQUAL_TO`` group per number,
    joined by ``"OR"`` (an asterisk in ``IS_EQUAL_TO`` is literal).

    Example: ``number_criteria(["A", "B"])`` is ``[[{...: "A"}], "OR", [{...: "B"}]]``.
    """
    criteria: list[Any] = []
    for number in numbers:
        if criteria:
            criteria.append("OR")
        criteria.append([{"attribute": "number", "operator": "IS_EQUAL_TO", "value": number}])
    return criteria


# -- many numbers per request ------------------------------------------------------------

#: The longest lookup URL (bytes, base URL included) a batch of numbers may make: front ends
#: refuse request lines over about 8 KB (414, or 400 from the HTTP parser), so keep a margin.
MAX_LOOKUP_URL: Final = 6144


def _query_bytes(text: str) -> int:
    """Bytes ``text`` takes as a query value once percent-encoded (yarl encodes each
    character on its own, so the lengths of parts add up)."""
    return len(yarl.URL.build(query={"q": text}).raw_query_string) - 2


class NumberBatches:
    """Plans lookups of item numbers: ``GET <items_url>?criteria=<OR groups>&responseview=
    minimum&offset=0&limit=<page_size>``, each URL at most ``max_url`` bytes as aiohttp
    will send it, at most ``page_size`` numbers per request.

    Example::

        plan = NumberBatches("https://api.arenasolutions.com/v1/items")
        batches = plan.split(numbers)       # list of lists of numbers
        plan.params(batches[0], offset=0)   # the query of the first request
    """

    def __init__(self, items_url: str | yarl.URL, *, max_url: int = MAX_LOOKUP_URL,
                 page_size: int = 400) -> None:
        self.url: yarl.URL = items_url if isinstance(items_url, yarl.URL) else yarl.URL(
            items_url)
        self.max_url = max_url
        self.page_size = page_size
        one = self.url_length(["0"])
        # The URL of a one-number batch, less that number's encoded JSON string.
        self._fixed = one - _query_bytes('"0"')
        # What each further number adds besides its value: ,"OR",[{...,"value":}]
        self._per_more = _query_bytes(encode_criteria(number_criteria(["", ""]))) - _query_bytes(
            encode_criteria(number_criteria([""])))
        self._per_more -= _query_bytes('""')

    def params(self, numbers: Sequence[str], offset: int = 0) -> dict[str, str]:
        """The query of one page of one batch, in the order sent."""
        return {"criteria": encode_criteria(number_criteria(numbers)),
                "responseview": "minimum", "offset": str(offset), "limit": str(self.page_size)}

    def url_length(self, numbers: Sequence[str]) -> int:
        """The exact length of the first page's URL for ``numbers``, as aiohttp builds it
        (``URL.extend_query``)."""
        return len(str(self.url.extend_query(self.params(numbers))))

    def check(self, number: str) -> None:
        """``ValueError`` when ``number`` alone makes a URL over ``max_url`` bytes."""
        if self._fixed + _query_bytes(json.dumps(number, ensure_ascii=False)) > self.max_url:
            raise ValueError(f"item number {number[:40]!r}... is too long to look up: its "
                             f"request would exceed {self.max_url} bytes of URL")

    def split(self, numbers: Sequence[str]) -> list[list[str]]:
        """``numbers`` (each already :meth:`check`-ed) in batches, in order; every batch's
        URL measured exactly."""
        batches: list[list[str]] = []
        current: list[str] = []
        size = 0
        for number in numbers:
            value = _query_bytes(json.dumps(number, ensure_ascii=False))
            if current and len(current) < self.page_size \
                    and size + self._per_more + value <= self.max_url:
                current.append(number)
                size += self._per_more + value
                continue
            if current:
                batches.append(current)
            current, size = [number], self._fixed + value
        if current:
            batches.append(current)
        return [fitted for batch in batches for fitted in self._fit(batch)]

    def _fit(self, batch: list[str]) -> list[list[str]]:
        # The sum above is exact (yarl encodes character by character); measured anyway, so
        # a change in the encoder can only make more batches, never a URL too long.
        if len(batch) == 1 or self.url_length(batch) <= self.max_url:
            return [batch]
        half = len(batch) // 2
        return self._fit(batch[:half]) + self._fit(batch[half:])
