"""Which items an Arena export covers: ``--items FILE`` (GUIDs and item numbers, mixed) or a
query (``--number``, ``--category``, ``--lifecycle-stage``).

GUID or number? A line of exactly 16 or 20 characters of ``[A-Z0-9]`` (Arena's GUIDs) is
a GUID; anything else is an item number. A ``guid:`` or ``number:`` prefix says which
when the rule guesses wrong (an item number such as ``ABCD1234EFGH5678``).

Item numbers are looked up with :meth:`Items.guid_batches` (exact match, about 50 numbers
per request) by :class:`NumberLookup`, which saves the answers to ``<out>.selection.json``
as the batches complete (at most every ``--checkpoint-interval`` seconds, and whenever the
lookup stops): a run stopped half-way (Ctrl-C, a spent quota, a failed batch) keeps what
it learned, and the next run asks only for the numbers left. A number no item has is
reported (``<out>.failed.jsonl``), not fatal. A query is walked with ``view="minimum"``
(one request per page of the default size). The whole selection is kept in ``<out>.selection.json``
while the export is unfinished, so a resumed run asks nothing again and covers exactly the
same items.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import Any, Final

import attrs

from ..arena import ArenaClient
from ..arena.items import GuidBatch
from ._checkpoint import fingerprint, write_json
from ._common import EXIT_ERROR, EXIT_USAGE, CliError, is_fatal

__all__ = [
    "SELECTION_SUFFIX",
    "Entry",
    "NumberLookup",
    "Query",
    "Resolved",
    "Saved",
    "by_numbers",
    "counted",
    "load_resolved",
    "load_selection",
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


#: The command-line option of each query filter.
_OPTIONS: Final = {"number": "--number", "category_name": "--category",
                   "lifecycle_phase_stage": "--lifecycle-stage"}


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

    def options(self) -> str:
        """The query as the command line gave it: ``--number 'PN-10*' --category
        Resistor``."""
        return " ".join(f"{_OPTIONS[k]} {shlex.quote(v)}" for k, v in self.filters.items())

    def check(self) -> None:
        """Raise :class:`CliError` (exit 2) for an empty or multi-line filter."""
        for name, value in attrs.asdict(self).items():
            if value is not None and (not value.strip() or _CONTROL.search(value)):
                raise CliError(f"{_OPTIONS[name]} must be a non-empty one-line value",
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
    ``view="minimum"``. ``spent`` counts the requests (from the client's stats). An export
    looks numbers up with :class:`NumberLookup` instead (progress, saved per batch)."""
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
    return attrs.evolve(by_numbers(entries, found), spent=counted(arena) - before)


def by_numbers(entries: Sequence[Entry], found: Mapping[str, str | None]) -> Resolved:
    """The selection of ``entries`` once every number is in ``found`` (``{number: guid or
    None}``): the items in the order given, each once; a number no item has in
    ``unknown``. Pure: the same answers always give the same items.

    Example: ``by_numbers(parse_entries("PN-1\\n", "f"), {"PN-1": "G1"}).guids == ["G1"]``
    """
    ordered: dict[str, None] = {}
    labels: dict[str, str] = {}
    unknown: list[str] = []
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
    return Resolved(list(ordered), labels, unknown)


def counted(arena: ArenaClient) -> int:
    """Requests this client sent that count against the quota (logins do not)."""
    stats = arena.stats
    return stats.requests - stats.logins


def save_resolved(out: Path, spec: str, resolved: Resolved,
                  numbers: Mapping[str, str | None] | None = None) -> None:
    """Write ``<out>.selection.json`` atomically: the whole selection, and the answers of
    its item numbers (``numbers``) when it has some."""
    data: dict[str, Any] = {"version": 1, "fingerprint": spec, "guids": resolved.guids,
                            "labels": resolved.labels, "unknown": resolved.unknown}
    if numbers is not None:
        data["numbers"] = dict(numbers)
    write_json(selection_path(out), data)


@attrs.frozen
class Saved:
    """What ``<out>.selection.json`` holds for a selection: the whole selection once it
    was found (``resolved``), and the item numbers answered so far (``numbers``: ``{number:
    guid or None}``; a lookup stopped half-way saves only these)."""

    resolved: Resolved | None
    numbers: dict[str, str | None]


def load_selection(out: Path, spec: str) -> Saved | None:
    """What an earlier run of the export of ``spec`` saved, or None (no file, or one of
    other items). Raises :class:`CliError` (exit 1) for a file that cannot be read."""
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
        resolved = None
        if "guids" in data:
            resolved = Resolved([str(g) for g in data["guids"]],
                                {str(k): str(v) for k, v in data["labels"].items()},
                                [str(n) for n in data["unknown"]], 0)
        numbers = {str(k): None if v is None else str(v)
                   for k, v in data.get("numbers", {}).items()}
    except (KeyError, TypeError, AttributeError) as exc:
        raise CliError(f"malformed {path} ({exc}); start over with --restart",
                       EXIT_ERROR) from None
    return Saved(resolved, numbers)


def load_resolved(out: Path, spec: str) -> Resolved | None:
    """The whole selection an unfinished export of ``spec`` saved, or None."""
    saved = load_selection(out, spec)
    return saved.resolved if saved is not None else None


class NumberLookup:
    """The item numbers of an export, looked up in batches (:meth:`Items.guid_batches`),
    the answers saved to ``<out>.selection.json`` as the batches complete: at most every
    ``interval`` seconds, and whenever :meth:`run` ends (done, failed, cancelled).

    ``known``: answers an earlier run saved (not asked again). After :meth:`run`:
    ``found`` (every answer), ``failed`` (numbers whose batch failed after retries, with
    the error: asked again by the next run), ``stop`` (a fatal error: a spent quota,
    refused credentials, an unreachable server), ``requests`` (sent by this run).

    Example::

        lookup = NumberLookup(out, spec, entries, saved.numbers, interval=1.0)
        await lookup.run(arena, lambda batch: bar.advance(len(batch.numbers)))
        resolved = lookup.resolved()   # when lookup.done
    """

    def __init__(self, out: Path, spec: str, entries: Sequence[Entry],
                 known: Mapping[str, str | None], *, interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self.spec = spec
        self.entries = list(entries)
        #: Every distinct number of the selection, in order.
        self.numbers = list(dict.fromkeys(e.text for e in self.entries if e.is_number))
        wanted = set(self.numbers)
        self.found: dict[str, str | None] = {n: g for n, g in known.items() if n in wanted}
        #: Answers saved by an earlier run.
        self.reused = len(self.found)
        self.failed: dict[str, BaseException] = {}
        self.stop: BaseException | None = None
        self.requests = 0
        self._interval = interval
        self._clock = clock
        self._saved = clock()
        self._dirty = False

    @property
    def left(self) -> list[str]:
        """The numbers not answered yet, in order."""
        return [n for n in self.numbers if n not in self.found]

    @property
    def done(self) -> bool:
        """Every number is answered."""
        return len(self.found) == len(self.numbers)

    async def run(self, arena: ArenaClient, on_batch: Callable[[GuidBatch], None]) -> None:
        """Look up :attr:`left`; ``on_batch`` is called with each batch as it completes.
        Stops at the first fatal error (:attr:`stop`); a failed batch fails its own
        numbers only (:attr:`failed`)."""
        self.failed = {}
        left = self.left
        try:
            if not left:
                return
            batches = arena.items.guid_batches(left)
            async with aclosing(batches):
                async for batch in batches:
                    self.found.update(batch.found)
                    self.failed.update(batch.failed)
                    self.requests += batch.requests
                    self._dirty = self._dirty or bool(batch.found)
                    on_batch(batch)
                    fatal = [e for e in batch.failed.values() if is_fatal(e)]
                    if fatal:
                        self.stop = fatal[0]
                        break
                    if self._clock() - self._saved >= self._interval:
                        self.save()
        finally:
            self.save()

    def save(self) -> None:
        """Write the answers so far to ``<out>.selection.json`` (when any is new)."""
        if not self._dirty:
            return
        write_json(selection_path(self.out), {"version": 1, "fingerprint": self.spec,
                                                    "numbers": self.found})
        self._dirty = False
        self._saved = self._clock()

    def resolved(self) -> Resolved:
        """The selection, once :attr:`done`; ``spent``: the requests of this run."""
        return attrs.evolve(by_numbers(self.entries, self.found), spent=self.requests)
