"""``arena-async export``: stream records to JSONL or CSV with an exact resume.

See :mod:`arena_async.cli._checkpoint` for the checkpoint and :mod:`._select` for the
selection of items (GUIDs, item numbers, or a query). The Arena exports fan out over the
items (``--concurrency`` at once, through :meth:`ArenaClient.bulk`); each item's records
are written as they arrive (a whole list, or page by page for training records), and the
item is marked complete in the same synchronous step as its last write.

Before the fan-out an export prints its plan: the requests it will spend, against the
quota left (``--plan`` prints only that and exits 0).

Failures, by kind:

- fatal (a spent quota, refused credentials, an unreachable server): the run stops with
  the checkpoint saved (exit 3 for the quota, else 1); resumable;
- transient (5xx after the retries, 408/425/429, a malformed answer): the item fails,
  the others go on, the checkpoint stays (exit 1); the next run retries it;
- permanent (any other 4xx: an unknown item or GUID, no privilege; an unknown item
  number): the item is listed in ``<out>.failed.jsonl`` and counts as done; the export
  finishes, removes its checkpoint and exits 4.

A query or Akana filters that match nothing write nothing and exit 5 with a warning
naming them (nothing is recorded as complete: the next run asks again), unless
``--allow-empty``, which finishes the empty export (exit 0).

Ctrl-C and SIGTERM stop it resumably (exit 130 / 143); a second Ctrl-C while it saves
the checkpoint is ignored.

Run again, a finished export does nothing (exit 0) unless ``--fresh``, which exports again
into ``<out>.fresh`` and replaces the output only when that completes; see
:func:`arena_async.cli._checkpoint.target`.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import math
import random
import shlex
import signal
import statistics
import sys
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import Any, Final, Literal, TypeVar, get_type_hints

import attrs
from rich.progress import TaskID

from ..akana import AkanaClient
from ..akana.tickets import TicketFilters
from ..arena import ArenaClient
from ..arena._resource import DEFAULT_PAGE_SIZE
from ..arena.items import GuidBatch
from ..errors import APIError, ArenaAsyncError, QuotaExhaustedError
from ..models.akana import Ticket
from ..models.common import Page, Quota, Stats
from ..policies import CachePolicy, QuotaPolicy
from ._checkpoint import (
    Checkpoint,
    Output,
    Target,
    check_resumable,
    checkpoint_path,
    failed_path,
    fingerprint,
    fresh_path,
    target,
)
from ._common import (
    EXIT_EMPTY,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_PARTIAL,
    EXIT_QUOTA,
    EXIT_TERMINATED,
    EXIT_USAGE,
    CliError,
    UnknownItemNumber,
    auth_advice,
    is_fatal,
    is_permanent,
    one_line,
)
from ._network import cli_terms
from ._records import (
    AKANA_TICKET_CSV,
    ItemKind,
    encode_csv,
    encode_jsonl,
    to_wire,
)
from ._select import (
    Entry,
    NumberLookup,
    Query,
    Resolved,
    by_numbers,
    counted,
    load_selection,
    needs_resolving,
    resolve,
    save_resolved,
    selection_path,
    spec_fingerprint,
)
from ._ui import Reporter, format_duration, format_quota, format_requests

_T = TypeVar("_T")

__all__ = ["ExportOptions", "Plan", "export_items", "export_tickets", "format_for"]

Format = Literal["jsonl", "csv"]
_SUFFIXES: dict[str, Format] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
#: Failures listed on stderr at the end of a run.
SHOWN_FAILURES = 5


@attrs.frozen
class ExportOptions:
    """The options every export shares."""

    out: Path
    format: Format
    concurrency: int = 16
    page_size: int = DEFAULT_PAGE_SIZE
    restart: bool = False
    overwrite: bool = False
    checkpoint_interval: float = 1.0
    quota_reserve: int = 0
    wait_for_quota: bool = False
    max_wait: float = 3600.0
    #: Print the plan (requests against the quota left) and exit, writing nothing.
    plan: bool = False
    #: Export again when the output holds this export finished (into ``<out>.fresh``,
    #: which replaces it when complete); without it a finished export is not run again.
    fresh: bool = False
    #: ``--cache``: seconds the Arena answers are kept in the share for the next runs
    #: (None: nothing cached).
    cache: float | None = None
    #: ``--allow-empty``: a selection that matches nothing is an empty export, finished
    #: (exit 0); without it nothing is written and the run exits 5 with a warning.
    allow_empty: bool = False


def format_for(out: Path, explicit: str | None) -> Format:
    """The output format: ``explicit``, else from the suffix (.jsonl/.ndjson/.csv)."""
    if explicit is not None:
        if explicit not in ("jsonl", "csv"):
            raise CliError(f"unknown format {explicit!r}: use jsonl or csv", EXIT_USAGE)
        return "jsonl" if explicit == "jsonl" else "csv"
    try:
        return _SUFFIXES[out.suffix.lower()]
    except KeyError:
        raise CliError(f"cannot tell the format of {out} from its suffix: name it .jsonl or "
                       ".csv, or pass --format", EXIT_USAGE) from None


@attrs.define
class _Signals:
    """What :func:`_signals_stop` saw."""

    fired: list[int] = attrs.field(factory=list)

    @property
    def terminated(self) -> bool:
        """The first signal was SIGTERM."""
        return bool(self.fired) and self.fired[0] == signal.SIGTERM


@contextlib.contextmanager
def _signals_stop(ui: Reporter) -> Iterator[_Signals]:
    """While inside, Ctrl-C (SIGINT) and SIGTERM cancel the current task once, after
    stopping the progress bars (so the bars are drawn once, never redrawn over the
    summary); a second signal while the export saves its checkpoint is noted, not
    obeyed (a KeyboardInterrupt in the middle of the clean-up would leave the bars and
    the exit status in a mess)."""
    seen = _Signals()
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def handler(signum: int) -> None:
        seen.fired.append(signum)
        if len(seen.fired) == 1:
            ui.stop()
            if task is not None:
                task.cancel()
        elif len(seen.fired) == 2:
            ui.note("stopping: saving the checkpoint first")

    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, handler, signum)
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
            pass
    try:
        yield seen
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
            if seen.fired:
                # Stopping: a further Ctrl-C while the summary is written must not turn
                # into a KeyboardInterrupt (exit -2, a half-written summary). The command
                # exits right after, with 130 or 143.
                signal.signal(signum, signal.SIG_IGN)


@attrs.define
class _Run:
    """What one export run did, for the summary and the exit status."""

    started: float = attrs.field(factory=time.perf_counter)
    stop: BaseException | None = None
    interrupted: bool = False
    terminated: bool = False
    #: Transient failures (retried by the next run), by what the user called the item.
    failures: dict[str, BaseException] = attrs.field(factory=dict)
    #: Permanent failures written to <out>.failed.jsonl by this run.
    failed: int = 0
    stats: Stats = attrs.field(factory=Stats)
    quota: Quota | None = None


@attrs.frozen
class Plan:
    """The requests an export will spend, and the quota left to spend them from.

    ``finding``: requests to turn numbers or a query into items (already spent when the
    plan is shown before a run); ``low``..``high``: requests for the items themselves
    (``high`` None: open-ended, see ``more``).
    """

    items: int
    low: int
    high: int | None
    per_item: str
    finding: int = 0
    more: str = ""
    #: The logout at the end (it counts; a login does not).
    logout: int = 0

    @property
    def total(self) -> str:
        """The whole run's requests as text: ``42``, ``40 to 45``, ``at least 40``."""
        low = self.finding + self.low + self.logout
        if self.high is None:
            return f"at least {low:,}"
        high = self.finding + self.high + self.logout
        return f"{low:,}" if high == low else f"{low:,} to {high:,}"

    def line(self, quota: Quota | None, reserve: int) -> str:
        """One line for stderr before a run."""
        found = f"; {self.finding:,} spent finding the items" if self.finding else ""
        logout = " + 1 to log out" if self.logout else ""
        text = (f"plan: {self.low:,}{'' if self.high == self.low else '+'} requests for "
                f"{self.items:,} items ({self.per_item}{', ' + self.more if self.more else ''})"
                f"{logout}{found}; quota left: {_quota_text(quota)}")
        return text + _shortfall(self.low, quota, reserve)


def _quota_text(quota: Quota | None) -> str:
    if quota is None:
        return "unknown until the first answer (Arena announces it with each answer)"
    return format_quota(quota)


def _shortfall(needed: int, quota: Quota | None, reserve: int) -> str:
    if quota is None or needed <= quota.remaining - reserve:
        return ""
    return ("\nwarning: the quota left is less than the plan: the export will stop when it "
            "is spent (exit 3) and resume after the reset, or pass --wait-for-quota")


def _per_item(kind: ItemKind, page_size: int) -> tuple[str, str]:
    if kind.own:
        return "1 per item", ""
    if not kind.paged:
        return "1 per item", ""
    more = f"+1 for each further {page_size} records of an item"
    if kind.details:
        more += ", +1 per record for its dates (--details)"
    return "at least 1 per item", more


def _logs_out(arena: ArenaClient) -> int:
    """1 when the client's credential logs out at the end (a counted request: a
    :class:`~arena_async.Login`), else 0 (a given session, an OAuth token)."""
    return 1 if arena.auth.logs_out else 0


def _arena_client(client: Mapping[str, Any], opts: ExportOptions,
                  ui: Reporter | None = None) -> ArenaClient:
    """The export's Arena client: ``client`` settings (credentials, share, network), the
    export's concurrency, quota policy and answer cache (``CliError`` with exit 2 for bad
    settings). ``--cache`` without a share keeps nothing for the next run: ``ui`` warns."""
    quota = QuotaPolicy(reserve=opts.quota_reserve,
                        on_exhausted="wait" if opts.wait_for_quota else "raise",
                        max_wait=opts.max_wait)
    extra: dict[str, Any] = {}
    try:
        if opts.cache is not None:
            extra["cache"] = CachePolicy(ttl=opts.cache)
        arena = ArenaClient(**client, max_concurrency=opts.concurrency, quota=quota, **extra)
    except (ValueError, TypeError) as exc:
        raise CliError(f"Arena settings: {cli_terms(str(exc))}", EXIT_USAGE) from None
    if opts.cache is not None and arena.share_link is None and ui is not None:
        ui.warn("--cache: this run has no share (--share none, ARENA_SHARE=none, --fake "
                "without --share, or a session id, which is never shared), so its answers "
                "are kept in memory for this run only, not for the next")
    return arena


async def _read_quota(arena: ArenaClient) -> None:
    """One cheap request (one minimal item) for the quota: Arena announces it with every
    answer. (With ``--cache`` it may come from the cache, which carries no quota: then the
    quota stays unknown, and nothing is spent.)"""
    pages = arena.items.pages(page_size=1, view="minimum")
    async with aclosing(pages):
        async for _ in pages:
            break


def _where(opts: ExportOptions, kind: str, spec: str) -> Target:
    """Where this export runs (:func:`target`), before any request."""
    return target(opts.out, kind, opts.format, spec, restart=opts.restart,
                  overwrite=opts.overwrite, fresh=opts.fresh)


def _already_complete(where: Target, ui: Reporter) -> None:
    """What a run of a finished export says: nothing to do."""
    done = where.complete
    assert done is not None
    failed = (f", {done.failed:,} item{'s' if done.failed != 1 else ''} failed for good "
              f"(listed in {failed_path(where.out)})" if done.failed else "")
    pending = (f"; an unfinished --fresh export is in {fresh_path(where.out)} (--fresh "
               "continues it)" if where.fresh_pending else "")
    ui.say(f"{where.out} is complete already ({done.kind}, {done.records:,} records, "
           f"finished {done.finished_at}{failed}): nothing to do; --fresh exports again"
           + pending)


def _open_output(opts: ExportOptions, where: Target, fresh: Checkpoint,
                 columns: Sequence[str], ui: Reporter) -> Output:
    """The output at ``where.path`` (``opts.out``), resumed or begun."""
    header = encode_csv([list(columns)]) if opts.format == "csv" else b""
    out = Output.open(where.path, fresh, header=header, restart=where.restart,
                      overwrite=opts.overwrite or where.staged,
                      interval=opts.checkpoint_interval,
                      final=where.out if where.staged else None)
    if where.staged and not out.resumed:
        ui.note(f"exporting again into {where.path}: it replaces {where.out} when the "
                "export completes")
    elif not where.staged and not out.resumed:
        _discard_fresh(where.out)  # a --fresh run of the output just begun anew
    return out


def _discard_fresh(out: Path) -> None:
    staged = fresh_path(out)
    for path in (staged, checkpoint_path(staged), failed_path(staged),
                 selection_path(staged)):
        path.unlink(missing_ok=True)


def _close(out: Output, finished: bool, ui: Reporter) -> None:
    try:
        out.close(finished=finished)
    except OSError as exc:  # the previous checkpoint still matches a prefix of the file
        ui.warn(f"could not write the checkpoint or finish the output: {exc}")


def failed_entry(key: str, guid: str | None, exc: BaseException) -> dict[str, Any]:
    """One line of ``<out>.failed.jsonl``: what the user called the item, its GUID when
    known, and the error (status, code, message: the server's words, never a secret)."""
    if isinstance(exc, APIError):
        detail = exc.errors[0].message if exc.errors else one_line(exc)
        return {"key": key, "item_guid": guid, "status": exc.status, "code": exc.code,
                "message": detail}
    return {"key": key, "item_guid": guid, "status": None, "code": None,
            "message": one_line(exc)}


async def _details(arena: ArenaClient, kind: ItemKind, guid: str,
                   records: Sequence[Any]) -> list[Any]:
    """Each record fetched on its own (one request each: ``kind.detail``), for what a
    listing lacks (training records' dates)."""
    detail = kind.detail
    if not records or detail is None:
        return list(records)
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_awaited(detail(arena, guid, r))) for r in records]
    except BaseExceptionGroup as failed:
        raise _first(failed) from None
    return [t.result() for t in tasks]


async def _awaited(value: Awaitable[_T]) -> _T:
    """An awaitable as a coroutine (what a task runs)."""
    return await value


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group.exceptions[0]


async def _fetch_item(arena: ArenaClient, key: str) -> list[Any]:
    """``export items`` by key: ``guid:X`` (GET /items/X) or ``number:Y`` (GET /items
    ?number=Y: one request, no GUID lookup first)."""
    kind, _, text = key.partition(":")
    if kind == "number":
        found = await arena.items.list(number=text)
        if not found:
            raise UnknownItemNumber(text)
        return list(found)
    return [await arena.items.get(text)]


@attrs.frozen
class Selection:
    """What an Arena export covers: entries of an ``--items`` file, or a query."""

    entries: list[Entry] | None = None
    query: Query | None = None

    @classmethod
    def of_guids(cls, guids: Sequence[str]) -> Selection:
        """Every one of ``guids`` (``--fake`` without ``--items``)."""
        return cls(entries=[Entry(g, is_number=False) for g in guids])


async def export_items(kind: ItemKind, selection: Selection, client: Mapping[str, Any],
                       opts: ExportOptions, ui: Reporter) -> None:
    """Export ``kind`` records of every selected item; raises :class:`CliError` unless the
    export is complete (exit 4 when it finished with permanent failures)."""
    if kind.own and selection.query is not None:
        await export_item_listing(selection.query, client, opts, ui)
        return
    spec = spec_fingerprint(selection.entries, selection.query)
    if kind.own:
        assert selection.entries is not None
        spec = fingerprint(e.key for e in selection.entries)
    where = _where(opts, kind.name, spec)
    if where.complete is not None:
        _already_complete(where, ui)
        return
    opts = attrs.evolve(opts, out=where.path, restart=where.restart)
    arena = _arena_client(client, opts, ui)
    ui.watch(arena)
    with _signals_stop(ui) as signals:
        try:
            async with arena:
                await _export_items(arena, kind, selection=selection, opts=opts, ui=ui,
                                    signals=signals, logout=_logs_out(arena), spec=spec,
                                    where=where)
        except asyncio.CancelledError:
            if not signals.fired:
                raise
            # Stopped while finding the items or planning: nothing written yet.
            code = EXIT_TERMINATED if signals.terminated else EXIT_INTERRUPTED
            raise CliError("interrupted before the export began", code) from None


@attrs.frozen
class _Selected:
    """The items an export covers (:func:`_select`).

    ``looked_up``: finding them took requests this run (a query listed, numbers asked);
    ``left``: for ``--plan``, the item numbers a run would still look up (in batches).
    """

    resolved: Resolved
    looked_up: bool = False
    left: list[str] = attrs.field(factory=list)
    #: The answers of the item numbers (``{number: guid or None}``), kept beside the
    #: selection.
    numbers: dict[str, str | None] | None = None


async def _select(arena: ArenaClient, kind: ItemKind, *, selection: Selection,
                  opts: ExportOptions, spec: str, ui: Reporter,
                  signals: _Signals | None = None) -> _Selected:
    """The items of the export. Item numbers are looked up in batches, with progress,
    their answers saved per batch (:class:`NumberLookup`); ``--plan`` counts them only.
    Raises :class:`CliError` when a lookup stops (a signal, a fatal error, failed
    batches): what was answered is kept for the next run."""
    entries, query = selection.entries, selection.query
    if kind.own:  # export items --items: fetched by GUID or by number, nothing to resolve
        assert entries is not None
        return _Selected(Resolved([e.key for e in entries]))
    if not needs_resolving(entries, query):
        assert entries is not None
        return _Selected(Resolved([e.text for e in entries]))
    saved = None if opts.restart else load_selection(opts.out, spec)
    if (saved is not None and saved.resolved is not None
            and check_resumable(opts.out, kind.name, opts.format, spec)):
        return _Selected(saved.resolved)
    if query is not None:
        ui.note(f"finding the items matching {query.describe()} ...")
        return _Selected(await resolve(arena, None, query), looked_up=True)
    assert entries is not None
    lookup = NumberLookup(opts.out, spec, entries, saved.numbers if saved else {},
                          interval=opts.checkpoint_interval)
    if opts.plan:  # numbers: counted, not looked up, for a plan
        known = [e for e in entries if not e.is_number or e.text in lookup.found]
        return _Selected(by_numbers(known, lookup.found), left=lookup.left)
    if lookup.left:
        again = (f" ({lookup.reused:,} looked up already by an earlier run)"
                 if lookup.reused else "")
        ui.note(f"finding the items of {len(lookup.left):,} item numbers{again} ...")
    task = ui.add("item numbers", total=len(lookup.numbers), completed=len(lookup.found),
                  records=None, unit="numbers") if lookup.left else None

    def advance(batch: GuidBatch) -> None:
        if task is not None:
            ui.advance(task, items=len(batch.numbers))

    try:
        await lookup.run(arena, advance)
    except asyncio.CancelledError:
        if signals is None or not signals.fired:
            raise
        code = EXIT_TERMINATED if signals.terminated else EXIT_INTERRUPTED
        raise CliError(f"interrupted while looking up item numbers; {_looked_up(lookup)}: "
                       "run the same command again to resume", code) from None
    if task is not None:
        ui.finish(task)
    if lookup.stop is not None:
        if isinstance(lookup.stop, QuotaExhaustedError):
            raise CliError(f"{one_line(lookup.stop)}; {_looked_up(lookup)}: run the same "
                           "command again after the reset", EXIT_QUOTA)
        advice = auth_advice(lookup.stop, "arena")
        raise CliError(f"{one_line(lookup.stop)}; {_looked_up(lookup)}: "
                       f"{advice + ', then ' if advice else ''}run the same command again "
                       "to resume", EXIT_ERROR)
    if lookup.failed:
        failed = list(lookup.failed)
        shown = ", ".join(failed[:SHOWN_FAILURES])
        more = f", ... {len(failed) - SHOWN_FAILURES:,} more" if len(failed) > 5 else ""
        reason = one_line(next(iter(lookup.failed.values())))
        raise CliError(f"{len(failed):,} item number{'s' if len(failed) != 1 else ''} could "
                       f"not be looked up ({shown}{more}: {reason}); {_looked_up(lookup)}: "
                       "run the same command again to retry them", EXIT_ERROR)
    return _Selected(lookup.resolved(), looked_up=True, numbers=lookup.found)


def _looked_up(lookup: NumberLookup) -> str:
    """``104 of 300 item numbers are looked up (kept in <out>.selection.json)``."""
    kept = f" (kept in {selection_path(lookup.out)})" if lookup.found else ""
    return (f"{len(lookup.found):,} of {len(lookup.numbers):,} item numbers are looked "
            f"up{kept}")


def _numbered(kind: ItemKind, selection: Selection) -> bool:
    """The export has an ``item_number`` column: its items were selected by number (item
    numbers in ``--items``, or ``--number``); ``export items`` has the items' own."""
    if kind.own:
        return False
    if selection.query is not None:
        return selection.query.number is not None
    return any(e.is_number for e in selection.entries or ())


def _csv_header(path: Path) -> list[str]:
    """The header of a CSV output (empty when unreadable)."""
    try:
        with path.open(encoding="utf-8", newline="") as f:
            return next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


async def _export_items(arena: ArenaClient, kind: ItemKind, *, selection: Selection,
                        opts: ExportOptions, ui: Reporter, signals: _Signals,
                        logout: int, spec: str, where: Target) -> None:
    """An Arena per-item export at ``where`` (``opts.out`` is ``where.path``)."""
    run = _Run()  # from here: the summary's time includes finding the items
    if opts.plan:
        selected = await _select(arena, kind, selection=selection, opts=opts, spec=spec,
                                 ui=ui)
        await _print_plan(arena, kind, selection=selection, opts=opts, spec=spec,
                          selected=selected, ui=ui, logout=logout)
        return
    per_item, more = _per_item(kind, opts.page_size)
    matched = _matching("items", selection.query.options() if selection.query else "")
    plain = kind
    numbered = _numbered(kind, selection)
    if numbered:
        kind = kind.with_numbers()
    out: Output | None = None
    try:
        with ui:
            selected = await _select(arena, kind, selection=selection, opts=opts,
                                     spec=spec, ui=ui, signals=signals)
            resolved = selected.resolved
            guids = resolved.guids
            fresh = Checkpoint(kind.name, opts.format, spec, items=len(guids))
            out = _open_output(opts, where, fresh, kind.columns, ui)
            state = out.state
            if out.resumed and opts.format == "csv" and numbered:
                # A CSV begun without the column (by an older version) goes on without it.
                numbered = "item_number" in _csv_header(out.path)
                kind = kind if numbered else plain
            if out.resumed:
                ui.note(f"resuming {out.path}: {state.items_done:,} of {state.items:,} items "
                        f"({state.records:,} records) were written already")
            elif resolved.unknown:
                out.write_failed(encode_jsonl([
                    {"key": n, "item_guid": None, "status": None, "code": None,
                     "message": "no item has this number"} for n in resolved.unknown]),
                    len(resolved.unknown))
                shown = ", ".join(resolved.unknown[:SHOWN_FAILURES])
                more_unknown = len(resolved.unknown) - SHOWN_FAILURES
                ui.warn(f"{len(resolved.unknown):,} item number"
                        f"{'s' if len(resolved.unknown) != 1 else ''} unknown ({shown}"
                        f"{f', ... {more_unknown:,} more' if more_unknown > 0 else ''}): "
                        f"listed in {out.failed_path}")
            if needs_resolving(selection.entries, selection.query) and not kind.own:
                # Kept until the export finishes: a resume asks nothing again.
                save_resolved(opts.out, spec, resolved, selected.numbers)
                out.checkpoint()
            pending = sum(1 for _ in state.pending())
            plan = Plan(pending, pending, pending if not kind.paged else None, per_item,
                        finding=resolved.spent, more=more, logout=logout)
            if state.items:  # nothing to plan for no items: the end says what matched
                ui.note(plan.line(arena.quota, opts.quota_reserve))
            await _fan_out(arena, kind, out, resolved, run, opts=opts, ui=ui,
                           signals=signals, plan=plan, numbered=numbered)
    finally:
        empty = False
        if out is not None:
            state = out.state
            finished = (run.stop is None and not run.failures and not run.interrupted
                        and state.items_done == state.items)
            # No items and no unknown number: the query matched nothing.
            empty = (finished and state.items == 0 and state.failed == 0
                     and selection.query is not None
                     and _empty(out, matched, opts, ui))
            if empty:
                out.discard()
            else:
                _close(out, finished, ui)
            if finished:
                selection_path(opts.out).unlink(missing_ok=True)
    assert out is not None
    state = out.state
    rows = [("items", f"{state.items_done:,} of {state.items:,} complete"
             + (f", {state.failed:,} failed for good" if state.failed else "")
             + (f", {len(run.failures):,} failed" if run.failures else ""))]
    if state.failed:
        rows.append(("failed", f"{state.failed:,} listed in {out.failed_path}"))
    _summary(ui, f"export {kind.name}", out, run, rows, discarded=empty)
    if empty:
        raise _nothing_matched(matched, out)
    _conclude(run, f"{state.items_done:,} of {state.items:,} items are complete",
              failed=state.failed, failed_file=out.failed_path)


async def _fan_out(arena: ArenaClient, kind: ItemKind, out: Output, resolved: Resolved,
                   run: _Run, *, opts: ExportOptions, ui: Reporter, signals: _Signals,
                   plan: Plan, numbered: bool) -> None:
    """Fetch and write every pending item, ``opts.concurrency`` at once; what happened goes
    to ``run`` (a fatal error stops it; a signal interrupts it)."""
    state = out.state
    guids = resolved.guids

    def number(guid: str) -> str | None:
        return resolved.labels.get(guid) if numbered else None

    if opts.format == "csv":
        def encode(key: str, records: Sequence[Any]) -> bytes:
            return encode_csv(kind.rows(key, records, number=number(key)))
    else:
        def encode(key: str, records: Sequence[Any]) -> bytes:
            return encode_jsonl(kind.objects(key, records, number=number(key)))

    task = ui.add(kind.title, total=state.items, completed=state.items_done,
                  records=state.records)

    def write(guid: str, records: Sequence[Any]) -> None:
        if records:
            out.write(encode(guid, records), len(records))
            ui.advance(task, records=len(records))

    async def one(key: tuple[int, int]) -> None:
        index, offset = key
        guid = guids[index]
        if kind.pages is not None:
            pages = kind.pages(arena, guid, opts.page_size, offset)
            async with aclosing(pages):
                async for page in pages:
                    records: Sequence[Any] = (await _details(arena, kind, guid, page.items)
                                              if kind.details else page.items)
                    # No await from here to the bookkeeping: state matches the file.
                    write(guid, records)
                    if page.next_offset is None:
                        state.complete(index)
                    else:
                        state.advance(index, page.next_offset)
                    out.maybe_checkpoint()
        else:
            fetch = _fetch_item if kind.own else kind.fetch
            assert fetch is not None  # ItemKind refuses a kind with neither pages nor fetch
            records = await fetch(arena, guid)
            write(guid, records)
            state.complete(index)
            out.maybe_checkpoint()

    def label(guid: str) -> str:
        return guid.partition(":")[2] if kind.own else resolved.label(guid)

    quota_known = arena.quota is not None
    try:
        async with arena.bulk(one, state.pending(),
                              concurrency=opts.concurrency) as outcomes:
            async for outcome in outcomes:
                if not quota_known and arena.quota is not None:
                    quota_known = True
                    ui.note(f"quota left after the first answer: "
                            f"{format_quota(arena.quota)}"
                            + _shortfall(plan.low, arena.quota, opts.quota_reserve))
                error = outcome.error
                if outcome.ok:
                    ui.advance(task, items=1)
                elif error is not None and is_fatal(error):
                    run.stop = error
                    break
                elif error is not None and is_permanent(error):
                    index = outcome.key[0]
                    guid = guids[index]
                    out.write_failed(encode_jsonl([failed_entry(
                        label(guid), _item_guid(kind, guid), error)]), 1)
                    state.complete(index)
                    run.failed += 1
                    ui.advance(task, items=1)
                    out.maybe_checkpoint()
                elif error is not None:
                    run.failures[label(guids[outcome.key[0]])] = error
    except asyncio.CancelledError:
        run.interrupted = True
        run.terminated = signals.terminated
    finally:
        run.stats, run.quota = arena.stats, arena.quota


def _item_guid(kind: ItemKind, key: str) -> str | None:
    """The GUID behind a key: ``export items`` keys are ``guid:X`` or ``number:Y``."""
    if not kind.own:
        return key
    prefix, _, text = key.partition(":")
    return text if prefix == "guid" else None


#: Items whose training records ``--plan`` counts to estimate a ``--details`` run.
PLAN_SAMPLE = 32
#: The estimate's range: this many standard errors either side of it.
PLAN_SPREAD = 2.5


@attrs.frozen
class _Estimate:
    """The requests a ``--details`` run would spend on its items, estimated from a sample:
    ``low``..``high``, the mean per item, the items sampled, and what sampling cost."""

    low: int
    high: int
    mean: float
    sampled: int
    spent: int


async def _records_left(arena: ArenaClient, kind: ItemKind, guid: str, offset: int) -> int:
    """An item's records from ``offset`` on (``kind.pages``), counted in pages of 400."""
    assert kind.pages is not None  # only a paged kind has details to estimate
    count = 0
    pages = kind.pages(arena, guid, DEFAULT_PAGE_SIZE, offset)
    async with aclosing(pages):
        async for page in pages:
            count += len(page.items)
    return count


async def _estimate_details(arena: ArenaClient, kind: ItemKind, page_size: int,
                            pending: Sequence[tuple[str, int]],
                            numbers: Sequence[str]) -> _Estimate:
    """Estimate what a ``--details`` run spends on its items: a random sample of up to
    :data:`PLAN_SAMPLE` of them (items left, and item numbers not looked up yet: those
    are looked up, in one request) has its training records counted; each item costs one
    request per page of ``page_size`` records (one more when the last page is full) plus
    one per record. The range is the sample's total plus the others at the sample's mean,
    :data:`PLAN_SPREAD` standard errors either side (the exact cost when every item is
    sampled)."""
    before = counted(arena)
    population: list[tuple[str, int] | str] = [*pending, *numbers]
    sample = random.Random(len(population)).sample(population, min(PLAN_SAMPLE,
                                                                   len(population)))
    asked = [s for s in sample if isinstance(s, str)]
    found = await arena.items.guids_for(asked) if asked else {}
    items: list[tuple[str, int]] = []
    for entry in sample:
        if isinstance(entry, tuple):
            items.append(entry)
        elif (guid := found.get(entry)) is not None:
            items.append((guid, 0))
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(_records_left(arena, kind, guid, offset))
                 for guid, offset in items]
    # An item number no item has costs nothing: it goes to <out>.failed.jsonl.
    costs = [r // page_size + 1 + r for r in (t.result() for t in tasks)]
    costs += [0] * (len(sample) - len(costs))
    known, n, others = sum(costs), len(sample), len(population) - len(sample)
    mean = known / n if n else 0.0
    if others == 0 or n == 0:
        return _Estimate(known, known, mean, n, counted(arena) - before)
    spread = statistics.stdev(costs) if n > 1 else 0.0
    # At least one request's doubt per item: a sample that happens to be uniform says
    # little about the items it missed.
    spread = max(spread, 1.0)
    error = spread * math.sqrt(others + others * others / n)
    middle = known + others * mean
    floor = known + (0 if numbers else others)  # every item by GUID costs a page at least
    low = max(floor, math.floor(middle - PLAN_SPREAD * error))
    high = max(low, math.ceil(middle + PLAN_SPREAD * error))
    return _Estimate(low, high, mean, n, counted(arena) - before)


async def _print_plan(arena: ArenaClient, kind: ItemKind, *, selection: Selection,
                      opts: ExportOptions, spec: str, selected: _Selected, ui: Reporter,
                      logout: int) -> None:
    """``--plan``: what the run would spend, against the quota left; writes nothing.

    The run's requests: finding the items (item numbers: one per batch, looked up by the
    run, not by the plan, :meth:`Items.lookup_batches` counts them; a query: listed by the
    plan, and again by the run; none when a resumed export reuses its saved selection)
    plus those for the items left to do. With ``--details`` the items' part is a range
    estimated from a sample (:func:`_estimate_details`), which the plan spends.
    """
    resolved, looked_up, left = selected.resolved, selected.looked_up, selected.left
    numbers = len(left)
    per_item, more = _per_item(kind, opts.page_size)
    state = None if opts.restart else check_resumable(opts.out, kind.name, opts.format,
                                                       spec)
    todo = [(guid, 0) for guid in resolved.guids]
    if state is not None and state.items == len(todo):
        todo = [(resolved.guids[i], offset) for i, offset in state.pending()]
    pending = len(todo)
    lookups = len(arena.items.lookup_batches(left)) if left else 0
    finding = lookups or (resolved.spent if looked_up else 0)
    spent_before = counted(arena)
    estimate = None
    if kind.details and (todo or left):
        estimate = await _estimate_details(arena, kind, opts.page_size, todo, left)
        plan = Plan(pending, estimate.low, estimate.high, per_item, finding=finding,
                    more=more, logout=logout)
        per_item = f"about {estimate.mean:,.1f}"
        more = (f"measured on {estimate.sampled:,} of the items: 1 per page of "
                f"{opts.page_size} records, +1 per record for its dates")
    else:
        plan = Plan(pending, pending, None if kind.paged else pending + numbers, per_item,
                    finding=finding, more=more, logout=logout)
    if arena.quota is None:
        await _read_quota(arena)
    probe = counted(arena) - spent_before
    items = f"{pending:,}"
    if numbers:
        items += f" by GUID + up to {numbers:,} by item number"
    if state is not None and state.items:
        items += f" (left of {state.items:,}: resuming)"
    if resolved.unknown:
        items += f"; {len(resolved.unknown):,} item numbers unknown"
    rows = [("items", items)]
    if numbers:
        rows.append(("finding", f"{lookups:,} requests: {numbers:,} item numbers in "
                                "batches"))
    elif looked_up and selection.query is not None:
        rows.append(("finding", f"{finding:,} requests to list the items matching "
                                f"{selection.query.describe()}"))
    why = (f" ({estimate.spent:,} to sample the training records)" if estimate
           else " (one to read the quota)" if probe else "")
    rows += [
        ("per item", per_item + (f" ({more})" if more else "")),
        ("requests", plan.total),
        ("quota left", format_quota(arena.quota) if arena.quota else _unknown(opts)),
        *_cache_rows(opts),
        ("this plan", f"spent {(resolved.spent if looked_up else 0) + probe + logout:,} "
                      "requests" + why + (", its logout included" if logout else "")),
    ]
    ui.pairs(f"plan: export {kind.name} -> {opts.out}", rows)
    shortfall = _shortfall(plan.finding + plan.low, arena.quota, opts.quota_reserve)
    if shortfall:
        ui.note(shortfall.strip())
    if selection.query is not None and not resolved.guids and not opts.allow_empty:
        ui.warn(f"warning: {_matching('items', selection.query.options())}: the export "
                "would write nothing and exit 5 (check the spelling, or pass --allow-empty "
                "when an empty export is a result)")


def _unknown(opts: ExportOptions) -> str:
    """The quota left, when no answer said it."""
    return "unknown (answered from the cache, which keeps no quota)" if opts.cache else \
        "unknown"


def _cache_rows(opts: ExportOptions) -> list[tuple[str, str]]:
    """The plan's row about ``--cache``."""
    if opts.cache is None:
        return []
    return [("cache", f"answers kept {opts.cache:g} s in the share: those cached already "
                      "cost no request, so the run may spend less")]


def _summary(ui: Reporter, title: str, out: Output, run: _Run,
             extra: Sequence[tuple[str, str]], *, quota: bool = True,
             discarded: bool = False) -> None:
    elapsed = time.perf_counter() - run.started
    written = out.records_written
    rate = f" ({written / elapsed:,.0f} records/s)" if elapsed > 0 and written else ""
    shown = out.final or out.path
    rows = [
        ("output", f"{shown}: not written (nothing matched)" if discarded
         else f"{out.path} ({out.state.format}, {out.size:,} bytes)"),
        *extra,
        ("records", f"{written:,} written by this run, {out.state.records:,} in the file"),
        ("requests", format_requests(run.stats)),
        ("retries", f"{run.stats.retries:,}"),
        ("quota left", format_quota(run.quota) if quota else "n/a (Akana has no quota)"),
        ("time", format_duration(elapsed) + rate),
    ]
    ui.pairs(title, rows)


def _conclude(run: _Run, progress: str, *, failed: int = 0,
              failed_file: Path | None = None,
              server: Literal["arena", "akana"] = "arena") -> None:
    resume = "run the same command again to resume"
    if run.interrupted:
        code = EXIT_TERMINATED if run.terminated else EXIT_INTERRUPTED
        raise CliError(f"interrupted; {progress}: {resume}", code)
    if run.stop is not None:
        if isinstance(run.stop, QuotaExhaustedError):
            raise CliError(f"{one_line(run.stop)}; {progress}: {resume} after the reset",
                           EXIT_QUOTA)
        advice = auth_advice(run.stop, server)
        if advice:
            resume = f"{advice}, then {resume}"
        raise CliError(f"{one_line(run.stop)}; {progress}: {resume}", EXIT_ERROR)
    if run.failures:
        for key, exc in list(run.failures.items())[:SHOWN_FAILURES]:
            print(f"  failed {key}: {one_line(exc)}", file=sys.stderr)
        more = len(run.failures) - SHOWN_FAILURES
        if more > 0:
            print(f"  ... and {more:,} more", file=sys.stderr)
        count = len(run.failures)
        raise CliError(f"{count:,} item{'s' if count != 1 else ''} failed; {progress}: run "
                       "the same command again to retry them", EXIT_ERROR)
    if failed:
        raise CliError(f"finished, but {failed:,} item{'s' if failed != 1 else ''} failed "
                       f"for good (an unknown item, number or GUID, or no privilege): see "
                       f"{failed_file}", EXIT_PARTIAL)


def _empty(out: Output, matched: str, opts: ExportOptions, ui: Reporter) -> bool:
    """Whether the finished export ``out``, whose selection (``matched``: ``no items match
    --category X``) matched nothing, is to be discarded (:func:`_nothing_matched`); with
    ``--allow-empty`` it is kept as the (empty) result, with a note."""
    if opts.allow_empty:
        ui.note(f"{matched}: the output is empty (--allow-empty)")
        return False
    return True


def _nothing_matched(matched: str, out: Output) -> CliError:
    """The warning (exit 5) of an export whose selection matched nothing, after
    :meth:`Output.discard`: a misspelt filter must not pass for an empty export, tonight
    or on any later night (nothing is recorded as complete: the next run asks again)."""
    kept = (f"; {out.final} is left as it was (the last complete export)"
            if out.final is not None else "")
    # Without filters there is nothing to misspell (:func:`_matching`).
    spelling = "check the spelling, or " if matched.startswith("no ") else ""
    return CliError(f"{matched}: nothing is written{kept}, and the next run asks again; "
                    f"{spelling}pass --allow-empty when an empty export is a result",
                    EXIT_EMPTY, warning=True)


def _matching(what: str, options: str) -> str:
    """``no items match --category X`` (``options``: the selection in command-line
    terms; empty: every one)."""
    return f"no {what} match {options}" if options else f"there are no {what} at all"


async def export_item_listing(query: Query, client: Mapping[str, Any], opts: ExportOptions,
                              ui: Reporter) -> None:
    """``export items`` by query: the ``GET /items`` listing itself (``view="full"``), page
    by page, one request per ``page_size`` items; resumes at the next offset (the last
    page's GUIDs are kept to skip repeats, like the Akana export)."""
    spec = fingerprint(["items query v1", *(f"{k}={v}" for k, v in query.filters.items())])
    where = _where(opts, "items", spec)
    if where.complete is not None:
        _already_complete(where, ui)
        return
    opts = attrs.evolve(opts, out=where.path, restart=where.restart)
    arena = _arena_client(client, opts, ui)
    logout = _logs_out(arena)
    more = f"1 per {opts.page_size} items, and 1 more when the count is a multiple of it"
    if opts.plan:
        state = None if opts.restart else check_resumable(opts.out, "items", opts.format,
                                                           spec)
        async with arena:
            await _read_quota(arena)
            rows = [("items", f"matching {query.describe()} (how many is known only by "
                              "listing them, which costs as much as the export)"),
                    ("requests", f"at least {1 + logout} ({more}"
                                 + (", +1 to log out)" if logout else ")")),
                    ("quota left", format_quota(arena.quota) if arena.quota
                     else _unknown(opts)),
                    *_cache_rows(opts),
                    ("this plan", f"spent {counted(arena) + logout:,} requests (one to "
                                  "read the quota" + (", one to log out)" if logout else ")"))]
            if state is not None and state.next_start is not None:
                rows.insert(1, ("resuming", f"at offset {state.next_start:,}"))
            ui.pairs(f"plan: export items -> {opts.out}", rows)
        return
    from ._records import ITEM_KINDS
    kind = ITEM_KINDS["items"]
    out = _open_output(opts, where, Checkpoint("items", opts.format, spec), kind.columns, ui)

    def encode(items: Sequence[Any]) -> bytes:
        if opts.format == "csv":
            return encode_csv(kind.rows("", items))
        return encode_jsonl(kind.objects("", items))

    def pages(offset: int) -> AsyncGenerator[Page[Any], None]:
        return arena.items.pages(number=query.number, category_name=query.category_name,
                                 lifecycle_phase_stage=query.lifecycle_phase_stage,
                                 page_size=opts.page_size, offset=offset)

    await _export_listing(arena, out, pages, lambda i: i.guid, encode, ui=ui,
                          what="items", extra=[("query", query.describe())],
                          plan=f"plan: at least 1 request ({more}); quota left: "
                               f"{_quota_text(arena.quota)}",
                          matched=_matching("items", query.options()), opts=opts)


async def _export_listing(client: ArenaClient | AkanaClient, out: Output,
                          pages: Callable[[int], AsyncGenerator[Page[_T], None]],
                          key: Callable[[_T], str], encode: Callable[[Sequence[_T]], bytes],
                          *, ui: Reporter, what: str, extra: Sequence[tuple[str, str]],
                          matched: str, opts: ExportOptions, plan: str | None = None,
                          title: str | None = None) -> None:
    """An export of one listing (``export items`` by query, ``export akana-tickets``):
    ``pages(start)`` from the checkpoint's next start, written by :func:`_write_pages`;
    any error stops it resumably. Raises :class:`CliError` unless it is complete, and
    (exit 5) when it matched nothing (``matched`` says what), unless ``--allow-empty``."""
    state = out.state
    if out.resumed:
        ui.note(f"resuming {out.path}: {state.records:,} {what} were written already")
    if plan is not None:
        ui.note(plan)
    ui.watch(client, quota=isinstance(client, ArenaClient))
    run = _Run()
    task = ui.add(title or what, total=None, records=state.records, unit="")
    try:
        with _signals_stop(ui) as signals, ui:
            try:
                async with client:
                    if state.next_start is not None:
                        await _write_pages(pages(state.next_start), key, encode, out,
                                           ui=ui, task=task)
            except asyncio.CancelledError:
                run.interrupted = True
                run.terminated = signals.terminated
            except ArenaAsyncError as exc:  # one listing: any error stops it
                run.stop = exc
            finally:
                run.stats, run.quota = client.stats, client.quota
    finally:
        done = not run.interrupted and run.stop is None and state.next_start is None
        empty = done and state.records == 0 and _empty(out, matched, opts, ui)
        if empty:
            out.discard()
        else:
            _close(out, done, ui)
    _summary(ui, f"export {out.state.kind}", out, run, extra,
             quota=isinstance(client, ArenaClient), discarded=empty)
    if empty:
        raise _nothing_matched(matched, out)
    _conclude(run, f"{state.records:,} {what} are written",
              server="arena" if isinstance(client, ArenaClient) else "akana")


async def _write_pages(pages: AsyncGenerator[Page[_T], None], key: Callable[[_T], str],
                       encode: Callable[[Sequence[_T]], bytes], out: Output, *,
                       ui: Reporter, task: TaskID) -> None:
    """Write a listing page by page, the checkpoint following each page. Items of the page
    before a resume that were written already (``state.tail``, by ``key``) are skipped: the
    server may have shifted the listing meanwhile."""
    state = out.state
    async with aclosing(pages):
        async for page in pages:
            tail = set(state.tail)
            new = [item for item in page.items if key(item) not in tail]
            if new:
                out.write(encode(new), len(new))
            if page.items:
                state.tail = [key(item) for item in page.items]
            state.next_start = page.next_offset
            ui.advance(task, items=len(new), records=len(new))
            out.maybe_checkpoint()


#: The keywords of :class:`~arena_async.TicketFilters` (declared there only), in order.
TICKET_FILTERS: Final = tuple(get_type_hints(TicketFilters))


async def export_tickets(filters: Mapping[str, Any], client: Mapping[str, Any],
                         opts: ExportOptions, ui: Reporter) -> None:
    """Export the Akana tickets matching ``filters`` (``AkanaClient.tickets`` keywords)."""
    chosen = {k: v for k, v in filters.items() if v is not None}
    spec = fingerprint(f"{k}={chosen[k]!r}" for k in sorted(chosen))
    where = _where(opts, "akana-tickets", spec)
    if where.complete is not None:
        _already_complete(where, ui)
        return
    opts = attrs.evolve(opts, out=where.path, restart=where.restart)
    try:
        akana = AkanaClient(**client)
    except (ValueError, TypeError) as exc:
        raise CliError(f"Akana settings: {cli_terms(str(exc))}", EXIT_USAGE) from None
    fresh = Checkpoint("akana-tickets", opts.format, spec)
    out = _open_output(opts, where, fresh, AKANA_TICKET_CSV.names, ui)

    def encode(tickets: Sequence[Ticket]) -> bytes:
        if opts.format == "csv":
            return encode_csv([AKANA_TICKET_CSV.row(t) for t in tickets])
        return encode_jsonl([to_wire(t) for t in tickets])

    def pages(start: int) -> AsyncGenerator[Page[Ticket], None]:
        return akana.tickets.pages(**chosen, page_size=opts.page_size, start=start)

    await _export_listing(akana, out, pages, lambda t: t.ticket_id, encode, ui=ui,
                          what="tickets", extra=[], title="Akana tickets",
                          matched=_matching("tickets", _ticket_options(chosen)), opts=opts)


#: The ticket filters that select tickets (the others shape each ticket or the order).
_SELECTING: Final = ("api_id", "app_id", "retrieving_user_id", "author_id", "item_id", "tag",
                     "label", "state")


def _ticket_options(chosen: Mapping[str, Any]) -> str:
    """The selecting filters as the command line gave them: ``--state OPEN --tag x``."""
    return " ".join(f"--{k.replace('_', '-')} {shlex.quote(str(chosen[k]))}"
                    for k in _SELECTING if k in chosen)
