"""Field metadata that ties a Python field name to its wire name(s)."""

from __future__ import annotations

from typing import Any

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
