"""The wire form of the models: field metadata that ties a Python field name to its wire
name(s), the value rules both structurers share (strict numbers, UTC datetimes), and
:func:`to_dict` / :func:`to_json` back to the wire.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

import attrs

__all__ = ["to_dict", "to_json", "wire"]

WIRE = "arena_async.wire"
ALIASES = "arena_async.aliases"
UNWRAP = "arena_async.unwrap"
LONE = "arena_async.lone"


def wire(name: str, *aliases: str, unwrap: str | None = None, lone: bool = False,
         ) -> dict[str, Any]:
    """Metadata for ``attrs.field``: the wire key, accepted alternative keys, and, for
    Akana's wrapper objects (``"TargetResources": {"TargetResource": [...]}``), the inner
    key whose value is the field's value. ``lone=True`` (Akana lists) also accepts a lone
    item where a list is expected, as XML-to-JSON mappers write one-element lists
    (``"Label": "x"`` for ``["x"]``)."""
    meta: dict[str, Any] = {WIRE: name}
    if aliases:
        meta[ALIASES] = tuple(aliases)
    if unwrap is not None:
        meta[UNWRAP] = unwrap
    if lone:
        meta[LONE] = True
    return meta


def wire_name(field: attrs.Attribute[Any]) -> str:
    """The wire key of an attrs field (its metadata, else its Python name)."""
    return cast(str, field.metadata.get(WIRE, field.name))


def describe(value: Any) -> str:
    """A value's type and a short repr, for error messages (``str 'abc'``)."""
    text = repr(value)
    if len(text) > 40:
        text = text[:39] + "…"
    return f"{type(value).__name__} {text}"


def float_value(value: Any, _: Any) -> float:
    """A JSON number as a float (a cattrs hook; the generated functions call it too)."""
    if type(value) is float or type(value) is int:
        return float(value)
    raise TypeError(f"expected a number, got {describe(value)}")


def datetime_value(value: Any, _: Any) -> datetime:
    """An ISO 8601 string as an aware UTC datetime; naive means UTC (the servers document
    UTC). A cattrs hook; the generated functions inline the same rule."""
    if type(value) is not str:
        raise TypeError(f"expected a date-time string, got {describe(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected an ISO 8601 date-time, got {value[:40]!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def to_dict(model: Any, *, wire: bool = False) -> dict[str, Any]:
    """A model as a JSON-ready dict: nested models as dicts, lists as lists, datetimes as
    ISO 8601 UTC strings (``"2026-03-01T12:00:00Z"``).

    ``wire=False`` (default) keys fields by their snake_case Python names, as the CLI's
    JSONL exports do; ``wire=True`` by the server's names (the first one where the
    documentation and the servers disagree, e.g. ``note``, ``trainingplan``), with Akana's
    wrapper objects put back, so the client reads the result back into an equal model.
    Fields hidden from ``repr`` (a login's session id) are left out. Works for every model,
    ``Page``, ``Quota`` and ``Stats``; anything else raises ``ValueError``.

    Example::

        from arena_async import to_dict
        to_dict(ref)             # {"guid": "...", "ticket": {"guid": "...", "number": "..."}}
        to_dict(ref, wire=True)  # the same here; Akana tickets: {"TicketID": ..., ...}
    """
    if not attrs.has(type(model)):
        raise ValueError("to_dict takes a model instance (an attrs class of arena_async), "
                         f"got {type(model).__name__}")
    result: dict[str, Any] = _value(model, wire)
    return result


def to_json(model: Any, *, wire: bool = False, indent: int | None = None) -> str:
    """:func:`to_dict` as a JSON string (UTF-8 text, non-ASCII kept).

    Example::

        from arena_async import to_json
        line = to_json(record)   # '{"guid":"...","training_plan":{...},"due_date":null,...}'
    """
    separators = (",", ":") if indent is None else None
    return json.dumps(to_dict(model, wire=wire), ensure_ascii=False, indent=indent,
                      separators=separators)


def _value(value: Any, wire: bool) -> Any:
    if attrs.has(type(value)):
        out: dict[str, Any] = {}
        for field in attrs.fields(type(value)):
            if not field.repr:
                continue  # a secret: never exported
            item = _value(getattr(value, field.name), wire)
            if not wire:
                out[field.name] = item
                continue
            name = field.metadata.get(WIRE, field.name)
            inner = field.metadata.get(UNWRAP)
            out[name] = item if inner is None or item is None else {inner: item}
        return out
    if isinstance(value, datetime):
        text = value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
        return text.removesuffix("+00:00") + ("Z" if value.tzinfo else "")
    if isinstance(value, list | tuple):
        return [_value(v, wire) for v in value]
    if isinstance(value, dict):
        return {str(k): _value(v, wire) for k, v in value.items()}
    return value
