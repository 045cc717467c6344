"""Which items an Arena export covers: ``--items FILE`` (GUIDs and item numbers, mixed) or a
query (``--number``, ``--category``, ``--lifecycle-stage``).

GUID or number? A line of exactly 16 or 20 characters of ``[A-Z0-9]`` (Arena's GUIDs) is
a GUID; anything else is an item number. A ``guid:`` or ``number:`` prefix says which
when the rule guesses wrong (an item number such as ``ABCD1234EFGH5678``).

Item numbers are resolved with :meth:`Items.guids_for` (exact match, one request per
number); a number no item has is reported (``<out>.failed.jsonl``), not fatal. A query is
walked with ``view="minimum"`` (one request per page of the default size). Both
resolutions are kept in ``<out>.selection.json`` while the export is unfinished, so a
resumed run asks nothing again and covers exactly the same items.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..arena import ArenaClient
from ._checkpoint import fingerprint
from ._common import EXIT_ERROR, EXIT_USAGE, CliError

__all__ = [
    "SELECTION_SUFFIX",
    "Entry",
    "Query",
    "Resolved",
    "counted",
    "load_resolved",
    "read_entries",
    "resolve",
    "save_resolved",
    "selection_path",
]

SELECTION_SUFFIX = ".selection.json"
#: Arena's GUIDs: 20 (sometimes 16) characters of upper-case letters and digits.
_ARENA_GUID = re.compile(r"[A-Z0-9]{16}|[A-Z0-9]{20}")
#: What a GUID given explicitly may hold (URL-safe characters).
_GUID = re.compile(r"[A-Za-z0-9._~-]+")
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f,;]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SHOWN = 40


def selection_path(out: Path) -> Path:
    """``<out>.selection.json``: the resolved items of an unfinished export."""
    return out.with_name(out.name + SELECTION_SUFFIX)


@attrs.frozen
class Entry:
    """One line of an ``--items`` file: a GUID, or an item number to resolve."""

    text: str
    is_number: bool

    @property
    def key(self) -> str:
        """``guid:X`` or ``number:Y``: what the export's fingerprint is made of."""
        return f"{'number' if self.is_number else 'guid'}:{self.text}"

    @property
    def line(self) -> str:
        """The entry as a line of an ``--items`` file: its text, with a ``guid:`` or
        ``number:`` prefix only when the text alone would be read as the other.

        Example: ``Entry("PN-000001", is_number=True).line == "PN-000001"``
        """
        looks_like_guid = bool(_ARENA_GUID.fullmatch(self.text))
        plain = (self.is_number != looks_like_guid
                 and not self.text.startswith(("guid:", "number:", "#")))
        return self.text if plain else self.key


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…")


def parse_entries(text: str, name: str) -> list[Entry]:
    """The entries of an ``--items`` file's text: blank lines and ``#`` comments skipped,
    repeats dropped. Raises :class:`CliError` (exit 2) naming the line."""
    entries: dict[Entry, None] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{name}:{number}"
        if line.startswith("guid:"):
            entry = Entry(line.removeprefix("guid:").strip(), is_number=False)
        elif line.startswith("number:"):
            entry = Entry(line.removeprefix("number:").strip(), is_number=True)
        else:
            entry = Entry(line, is_number=not _ARENA_GUID.fullmatch(line))
        if _FORBIDDEN.search(entry.text) or "\t" in raw:
            raise CliError(f"{where}: not an item GUID or number (one per line, no commas "
                           f"or tabs: is this a CSV file?): {_shown(line)}", EXIT_USAGE)
        if not entry.text:
            raise CliError(f"{where}: nothing after {line!r}", EXIT_USAGE)
        if entry.is_number and entry.text.endswith("*"):
            raise CliError(f"{where}: {_shown(line)} ends with '*': a file lists items "
                           "exactly; select by prefix with --number 'PN-10*'", EXIT_USAGE)
        if not entry.is_number and (not _GUID.fullmatch(entry.text) or ".." in entry.text):
            raise CliError(f"{where}: not an item GUID (letters, digits, '.', '_', '~', "
                           f"'-'): {_shown(line)}", EXIT_USAGE)
        entries[entry] = None
    if not entries:
        raise CliError(f"no item GUIDs or numbers in {name} (one per line)", EXIT_USAGE)
    return list(entries)


def read_entries(source: str) -> list[Entry]:
    """:func:`parse_entries` of a file, or of stdin for ``-``."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CliError(f"cannot read items from {source}: {reason}", EXIT_USAGE) from None
    return parse_entries(text, "stdin" if source == "-" else source)


@attrs.frozen
class Query:
    """A selection by ``GET /items`` filters (None: not sent)."""

    number: str | None = None
    category_name: str | None = None
    lifecycle_phase_stage: str | None = None

    @property
    def filters(self) -> dict[str, str]:
        """The ``arena.items.iter`` keyword arguments that are set."""
        return {k: v for k, v in attrs.asdict(self).items() if v is not None}

    def describe(self) -> str:
        """``number=PN-10*, category_name=Resistor``."""
        return ", ".join(f"{k}={v}" for k, v in self.filters.items())

    def check(self) -> None:
        """Raise :class:`CliError` (exit 2) for an empty or multi-line filter."""
        options = {"number": "--number", "category_name": "--category",
                   "lifecycle_phase_stage": "--lifecycle-stage"}
        for name, value in attrs.asdict(self).items():
            if value is not None and (not value.strip() or _CONTROL.search(value)):
                raise CliError(f"{options[name]} must be a non-empty one-line value",
                               EXIT_USAGE)


def spec_fingerprint(entries: Sequence[Entry] | None, query: Query | None) -> str:
    """What the export covers, as a fingerprint of what the user gave: a file of GUIDs
    only keeps the fingerprint of its GUIDs (as before numbers and queries existed)."""
    if query is not None:
        return fingerprint(["query v1", *(f"{k}={v}" for k, v in query.filters.items())])
    assert entries is not None
    if not any(e.is_number for e in entries):
        return fingerprint(e.text for e in entries)
    return fingerprint(["entries v1", *(e.key for e in entries)])


@attrs.frozen
class Resolved:
    """The items an export covers, in order, and how they were found.

    ``guids``: the items; ``labels``: the item number a GUID was given as;
    ``unknown``: numbers no item has; ``spent``: requests the resolution took (0 when
    reused from ``<out>.selection.json``).
    """

    guids: list[str]
    labels: dict[str, str] = attrs.field(factory=dict)
    unknown: list[str] = attrs.field(factory=list)
    spent: int = 0

    def label(self, guid: str) -> str:
        """What the user called this item: its number, else its GUID."""
        return self.labels.get(guid, guid)


def needs_resolving(entries: Sequence[Entry] | None, query: Query | None) -> bool:
    """True when finding the items takes requests."""
    return query is not None or any(e.is_number for e in (entries or ()))


async def resolve(arena: ArenaClient, entries: Sequence[Entry] | None,
                  query: Query | None) -> Resolved:
    """The GUIDs of the selection: numbers through ``guids_for``, a query walked with
    ``view="minimum"``. ``spent`` counts the requests (from the client's stats)."""
    before = counted(arena)
    if query is not None:
        guids: dict[str, None] = {}
        labels: dict[str, str] = {}
        listing = arena.items.iter(number=query.number, category_name=query.category_name,
                                   lifecycle_phase_stage=query.lifecycle_phase_stage,
                                   view="minimum")
        async for item in listing:
            guids[item.guid] = None
            if item.number:
                labels[item.guid] = item.number
        return Resolved(list(guids), labels, [], counted(arena) - before)
    assert entries is not None
    numbers = [e.text for e in entries if e.is_number]
    found = await arena.items.guids_for(numbers) if numbers else {}
    ordered: dict[str, None] = {}
    labels = {}
    unknown = []
    for entry in entries:
        if not entry.is_number:
            ordered.setdefault(entry.text, None)
            continue
        guid = found.get(entry.text)
        if guid is None:
            unknown.append(entry.text)
        else:
            ordered.setdefault(guid, None)
            labels.setdefault(guid, entry.text)
    return Resolved(list(ordered), labels, unknown, counted(arena) - before)


def counted(arena: ArenaClient) -> int:
    """Requests this client sent that count against the quota (logins do not)."""
    stats = arena.stats
    return stats.requests - stats.logins


def save_resolved(out: Path, spec: str, resolved: Resolved) -> None:
    """Write ``<out>.selection.json`` atomically."""
    path = selection_path(out)
    tmp = path.with_name(path.name + ".tmp")
    data = {"version": 1, "fingerprint": spec, "guids": resolved.guids,
            "labels": resolved.labels, "unknown": resolved.unknown}
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(data, f, separators=(",", ":"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_resolved(out: Path, spec: str) -> Resolved | None:
    """The selection an unfinished export of ``spec`` saved, or None."""
    path = selection_path(out)
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path} ({exc}); start over with --restart",
                       EXIT_ERROR) from None
    if not isinstance(data, Mapping) or data.get("fingerprint") != spec:
        return None
    try:
        guids = [str(g) for g in data["guids"]]
        labels = {str(k): str(v) for k, v in data["labels"].items()}
        unknown = [str(n) for n in data["unknown"]]
    except (KeyError, TypeError, AttributeError) as exc:
        raise CliError(f"malformed {path} ({exc}); start over with --restart",
                       EXIT_ERROR) from None
    return Resolved(guids, labels, unknown, 0)
