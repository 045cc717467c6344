"""``arena-async export``: stream records to JSONL or CSV with an exact resume.

See :mod:`arena_async.cli._checkpoint` for the checkpoint. The Arena exports fan out over
the items (``--concurrency`` at once, through :meth:`ArenaClient.bulk`); each item's
records are written as they arrive (a whole list, or page by page for training records),
and the item is marked complete in the same synchronous step as its last write.

A spent quota, refused credentials or an unreachable server stop the run (exit 3 for the
quota, else 1) with the checkpoint saved; other errors fail only their item, which the
next run retries. Ctrl-C and SIGTERM stop it the same way (exit 130 / 143).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import Any, Literal

import attrs

from ..akana import AkanaClient
from ..arena import ArenaClient
from ..errors import ArenaAsyncError, AuthenticationError, QuotaExhaustedError
from ..models.akana import Ticket
from ..models.common import Quota, Stats
from ..policies import QuotaPolicy
from ._checkpoint import Checkpoint, Output, fingerprint
from ._common import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_QUOTA,
    EXIT_TERMINATED,
    EXIT_USAGE,
    CliError,
    is_fatal,
    one_line,
)
from ._records import (
    AKANA_TICKET_COLUMNS,
    ItemKind,
    encode_csv,
    encode_jsonl,
    ticket_csv_row,
    to_wire,
)
from ._ui import Reporter, format_duration, format_quota, format_requests

__all__ = ["ExportOptions", "export_items", "export_tickets", "format_for", "read_items"]

Format = Literal["jsonl", "csv"]
_SUFFIXES: dict[str, Format] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
#: What an item GUID may hold here (URL-safe characters; Arena's are [A-Z0-9]).
_GUID = re.compile(r"[A-Za-z0-9._~-]+")
#: Failures listed on stderr at the end of a run.
SHOWN_FAILURES = 5


@attrs.frozen
class ExportOptions:
    """The options every export shares."""

    out: Path
    format: Format
    concurrency: int = 16
    page_size: int = 400
    restart: bool = False
    overwrite: bool = False
    checkpoint_interval: float = 1.0
    quota_reserve: int = 0
    wait_for_quota: bool = False
    max_wait: float = 3600.0


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


def read_items(source: str) -> list[str]:
    """Item GUIDs, one a line, from a file or ``-`` (stdin); blank lines and ``#``
    comments are skipped, repeats dropped. Raises :class:`CliError` (exit 2)."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CliError(f"cannot read items from {source}: {reason}", EXIT_USAGE) from None
    name = "stdin" if source == "-" else source
    guids: dict[str, None] = {}
    for number, line in enumerate(text.splitlines(), 1):
        guid = line.strip()
        if not guid or guid.startswith("#"):
            continue
        if not _GUID.fullmatch(guid) or ".." in guid:
            shown = guid if len(guid) <= 40 else guid[:39] + "…"
            raise CliError(f"{name}:{number}: not an item GUID (one GUID per line, letters "
                           f"and digits): {shown!r}", EXIT_USAGE)
        guids[guid] = None
    if not guids:
        raise CliError(f"no item GUIDs in {name} (one per line)", EXIT_USAGE)
    return list(guids)


@contextlib.contextmanager
def _sigterm_cancels() -> Iterator[list[bool]]:
    """While inside, SIGTERM cancels the current task (like Ctrl-C); yields a flag list
    that holds True once it fired."""
    fired: list[bool] = []
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()

    def handler() -> None:
        fired.append(True)
        if task is not None:
            task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, handler)
        installed = True
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / Windows
        installed = False
    try:
        yield fired
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGTERM)


@attrs.define
class _Run:
    """What one export run did, for the summary and the exit status."""

    started: float = attrs.field(factory=time.perf_counter)
    stop: BaseException | None = None
    interrupted: bool = False
    terminated: bool = False
    failures: dict[str, BaseException] = attrs.field(factory=dict)
    stats: Stats = attrs.field(factory=Stats)
    quota: Quota | None = None


def _open_output(opts: ExportOptions, fresh: Checkpoint, columns: Sequence[str]) -> Output:
    header = encode_csv([list(columns)]) if opts.format == "csv" else b""
    return Output.open(opts.out, fresh, header=header, restart=opts.restart,
                       overwrite=opts.overwrite, interval=opts.checkpoint_interval)


def _close(out: Output, finished: bool, ui: Reporter) -> None:
    try:
        out.close(finished=finished)
    except OSError as exc:  # the previous checkpoint still matches a prefix of the file
        ui.note(f"could not write the checkpoint: {exc}")


async def export_items(kind: ItemKind, guids: Sequence[str], client: Mapping[str, Any],
                       opts: ExportOptions, ui: Reporter) -> None:
    """Export ``kind`` records of every item in ``guids``; raises :class:`CliError` unless
    the export is complete."""
    quota = QuotaPolicy(reserve=opts.quota_reserve,
                        on_exhausted="wait" if opts.wait_for_quota else "raise",
                        max_wait=opts.max_wait)
    try:
        arena = ArenaClient(**client, max_concurrency=opts.concurrency, quota=quota)
    except ValueError as exc:
        raise CliError(f"Arena settings: {exc}", EXIT_USAGE) from None
    fresh = Checkpoint(kind.name, opts.format, fingerprint(guids), items=len(guids))
    out = _open_output(opts, fresh, kind.columns)
    state = out.state
    if out.resumed:
        ui.note(f"resuming {out.path}: {state.items_done:,} of {state.items:,} items "
                f"({state.records:,} records) were written already")
    if opts.format == "csv":
        def encode(guid: str, records: Sequence[Any]) -> bytes:
            return encode_csv(kind.rows(guid, records))
    else:
        def encode(guid: str, records: Sequence[Any]) -> bytes:
            return encode_jsonl(kind.objects(guid, records))

    run = _Run()
    task = ui.add(kind.title, total=state.items, completed=state.items_done,
                  records=state.records)

    def write(guid: str, records: Sequence[Any]) -> None:
        if records:
            out.write(encode(guid, records), len(records))
            ui.advance(task, records=len(records))

    async def one(key: tuple[int, int]) -> None:
        index, offset = key
        guid = guids[index]
        if kind.paged:
            pages = arena.items.training_records.pages(guid, page_size=opts.page_size,
                                                       offset=offset)
            async with aclosing(pages):
                async for page in pages:
                    # No await from here to the bookkeeping: state matches the file.
                    write(guid, page.items)
                    if page.next_offset is None:
                        state.complete(index)
                    else:
                        state.advance(index, page.next_offset)
                    out.maybe_checkpoint()
        else:
            assert kind.fetch is not None
            records = await kind.fetch(arena, guid)
            write(guid, records)
            state.complete(index)
            out.maybe_checkpoint()

    try:
        with _sigterm_cancels() as terminated, ui:
            try:
                async with arena, arena.bulk(one, state.pending(),
                                             concurrency=opts.concurrency) as outcomes:
                    async for outcome in outcomes:
                        if outcome.ok:
                            ui.advance(task, items=1)
                        elif outcome.error is not None and is_fatal(outcome.error):
                            run.stop = outcome.error
                            break
                        elif outcome.error is not None:
                            run.failures[guids[outcome.key[0]]] = outcome.error
            except asyncio.CancelledError:
                run.interrupted = True
                run.terminated = bool(terminated)
            finally:
                run.stats, run.quota = arena.stats, arena.quota
    finally:
        finished = (run.stop is None and not run.failures and not run.interrupted
                    and state.items_done == state.items)
        _close(out, finished, ui)
    _summary(ui, f"export {kind.name}", out, run, [
        ("items", f"{state.items_done:,} of {state.items:,} complete"
                  + (f", {len(run.failures):,} failed" if run.failures else "")),
    ])
    _conclude(run, f"{state.items_done:,} of {state.items:,} items are complete")


def _summary(ui: Reporter, title: str, out: Output, run: _Run,
             extra: Sequence[tuple[str, str]], *, quota: bool = True) -> None:
    elapsed = time.perf_counter() - run.started
    written = out.records_written
    rate = f" ({written / elapsed:,.0f} records/s)" if elapsed > 0 and written else ""
    rows = [
        ("output", f"{out.path} ({out.state.format}, {out.size:,} bytes)"),
        *extra,
        ("records", f"{written:,} written by this run, {out.state.records:,} in the file"),
        ("requests", format_requests(run.stats)),
        ("retries", f"{run.stats.retries:,}"),
        ("quota left", format_quota(run.quota) if quota else "n/a (Akana has no quota)"),
        ("time", format_duration(elapsed) + rate),
    ]
    ui.pairs(title, rows)


def _conclude(run: _Run, progress: str) -> None:
    resume = "run the same command again to resume"
    if run.interrupted:
        code = EXIT_TERMINATED if run.terminated else EXIT_INTERRUPTED
        raise CliError(f"interrupted; {progress}: {resume}", code)
    if run.stop is not None:
        if isinstance(run.stop, QuotaExhaustedError):
            raise CliError(f"{one_line(run.stop)}; {progress}: {resume} after the reset",
                           EXIT_QUOTA)
        if isinstance(run.stop, AuthenticationError):
            resume = "check the credentials in the environment, then " + resume
        raise CliError(f"{one_line(run.stop)}; {progress}: {resume}", EXIT_ERROR)
    if run.failures:
        for guid, exc in list(run.failures.items())[:SHOWN_FAILURES]:
            print(f"  failed {guid}: {one_line(exc)}", file=sys.stderr)
        more = len(run.failures) - SHOWN_FAILURES
        if more > 0:
            print(f"  ... and {more:,} more", file=sys.stderr)
        count = len(run.failures)
        raise CliError(f"{count:,} item{'s' if count != 1 else ''} failed; {progress}: run "
                       "the same command again to retry them", EXIT_ERROR)


TICKET_FILTERS = ("api_id", "app_id", "retrieving_user_id", "author_id", "item_id", "tag",
                  "label", "state", "include_comments", "number_of_comments",
                  "include_actions", "sort_by")


async def export_tickets(filters: Mapping[str, Any], client: Mapping[str, Any],
                         opts: ExportOptions, ui: Reporter) -> None:
    """Export the Akana tickets matching ``filters`` (``AkanaClient.tickets`` keywords)."""
    chosen = {k: v for k, v in filters.items() if v is not None}
    try:
        akana = AkanaClient(**client)
    except ValueError as exc:
        raise CliError(f"Akana settings: {exc}", EXIT_USAGE) from None
    fresh = Checkpoint("akana-tickets", opts.format,
                       fingerprint(f"{k}={chosen[k]!r}" for k in sorted(chosen)))
    out = _open_output(opts, fresh, AKANA_TICKET_COLUMNS)
    state = out.state
    if out.resumed:
        ui.note(f"resuming {out.path}: {state.records:,} tickets were written already")
    run = _Run()
    task = ui.add("Akana tickets", total=None, records=state.records, unit="")

    def encode(tickets: Sequence[Ticket]) -> bytes:
        if opts.format == "csv":
            return encode_csv([ticket_csv_row(t) for t in tickets])
        return encode_jsonl([to_wire(t) for t in tickets])

    try:
        with _sigterm_cancels() as terminated, ui:
            try:
                async with akana:
                    if state.next_start is not None:
                        pages = akana.tickets.pages(**chosen, page_size=opts.page_size,
                                                    start=state.next_start)
                        async with aclosing(pages):
                            async for page in pages:
                                tail = set(state.tail)
                                new = [t for t in page.items if t.ticket_id not in tail]
                                if new:
                                    out.write(encode(new), len(new))
                                if page.items:
                                    state.tail = [t.ticket_id for t in page.items]
                                state.next_start = page.next_start
                                ui.advance(task, items=len(new), records=len(new))
                                out.maybe_checkpoint()
            except asyncio.CancelledError:
                run.interrupted = True
                run.terminated = bool(terminated)
            except ArenaAsyncError as exc:  # one listing: any error stops it
                run.stop = exc
            finally:
                run.stats = akana.stats
    finally:
        _close(out, not run.interrupted and run.stop is None and state.next_start is None, ui)
    _summary(ui, "export akana-tickets", out, run, [], quota=False)
    _conclude(run, f"{state.records:,} tickets are written")
