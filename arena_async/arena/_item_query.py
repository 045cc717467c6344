"""The ``GET /items`` query: every search argument checked and encoded, before anything is
sent (pure: no I/O)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

from .._checks import check_optional_flag, check_text

__all__ = ["ASSEMBLY_TYPES", "check_number", "search_params", "view_params"]

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
        if not isinstance(criteria, Mapping):
            raise ValueError(
                f"criteria must be a dict (sent as JSON) or None, got {type(criteria).__name__}"
            )
        try:
            params["criteria"] = json.dumps(criteria, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"criteria must be JSON-serializable: {exc}") from None
    params.update(view_params(view))
    return params


def view_params(view: object) -> dict[str, str]:
    """``view``: "full" (nothing sent) or "minimum" (``responseview=minimum``)."""
    if view not in _VIEWS:
        raise ValueError(f"view must be 'full' or 'minimum', got {view!r}")
    return {"responseview": "minimum"} if view == "minimum" else {}


def _wire_moment(value: object) -> str:
    """``effective_date_time``: an aware datetime (sent as UTC ``YYYY-MM-DDTHH:MM:SSZ``) or
    a string sent as given."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("effective_date_time must be timezone-aware (UTC is what Arena uses)")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, str) and value:
        return value
    raise ValueError(
        f"effective_date_time must be an aware datetime, a string or None, got {value!r}"
    )


def check_number(number: object) -> str:
    if not isinstance(number, str):
        raise ValueError(f"every item number must be a string, got {type(number).__name__}")
    if not number:
        raise ValueError("an item number must not be empty")
    if number != number.strip():
        raise ValueError(f"item number {number!r} has leading or trailing whitespace")
    if number.endswith("*"):
        raise ValueError(
            f"item number {number!r} ends with '*', a prefix search, not one number:"
            " use arena.items.iter(number=...) for prefixes"
        )
    return number
