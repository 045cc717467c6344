"""Progress (stderr) and summary tables (stdout), with rich.

Progress comes in three forms (``--progress``): live bars on a terminal; plain lines
(``progress: ...``, one per running task every ``--progress-interval`` seconds) anywhere
else (a pipe, a file, cron, CI), so a log shows how a long run goes; or none. The summary
is plain text without control codes whenever stdout is not a terminal. ``--quiet`` prints
nothing but warnings and errors.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Literal, Protocol

import attrs
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ..models.common import Quota, Stats

__all__ = ["PROGRESS_MODES", "ProgressMode", "Reporter", "format_duration", "format_quota",
           "format_requests"]

#: ``--progress`` values: bars on a terminal and lines elsewhere (``auto``), live bars,
#: plain lines, nothing.
ProgressMode = Literal["auto", "bars", "plain", "none"]
PROGRESS_MODES: tuple[ProgressMode, ...] = ("auto", "bars", "plain", "none")


class _Watched(Protocol):
    """What plain lines read requests and the quota from (an Arena or Akana client)."""

    @property
    def stats(self) -> Stats: ...  # pragma: no cover - a protocol

    @property
    def quota(self) -> Quota | None: ...  # pragma: no cover - a protocol


@attrs.define
class _Task:
    """One unit of work being reported: its counts since it began and since this run."""

    description: str
    total: int | None
    completed: int
    records: int
    #: What ``completed`` counts (``items``, ``numbers``); whether records are counted.
    unit: str = "items"
    counts_records: bool = True
    started: float | None = None
    start_completed: int = 0
    start_records: int = 0
    finished: bool = False
    bar: TaskID | None = None
    #: Items not yet shown on the bar; whether the bar is behind the counts.
    pending: int = 0
    dirty: bool = False


class Reporter:
    """Where a command's progress, notes and summary go.

    ``progress``: ``"auto"`` (bars when stderr is a terminal, else plain lines),
    ``"bars"``, ``"plain"`` or ``"none"``; ``interval``: seconds between plain lines;
    ``quiet``: nothing but :meth:`warn` (and the command's errors); ``clock``: what
    elapsed times, rates and ETAs are measured with.

    Example::

        ui = Reporter(progress="plain", interval=10)
        ui.watch(arena)                       # requests and quota for the plain lines
        with ui:                              # inside the event loop: lines every 10 s
            task = ui.add("ticket references", total=len(guids))
            ui.advance(task, items=1, records=3)
        ui.table("summary", ["what", "records"], [["tickets", "3"]])
    """

    #: Seconds between bar updates.
    UPDATE_EVERY = 0.05
    #: Default seconds between plain progress lines.
    PLAIN_EVERY = 10.0
    #: What every plain progress line starts with.
    PREFIX = "progress: "

    def __init__(self, *, quiet: bool = False, progress: ProgressMode = "auto",
                 interval: float = PLAIN_EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if progress not in PROGRESS_MODES:
            raise ValueError(f"progress must be one of {', '.join(PROGRESS_MODES)}, "
                             f"not {progress!r}")
        if not interval > 0:
            raise ValueError(f"interval must be more than 0 seconds, not {interval!r}")
        self.quiet = quiet
        self.out = Console(highlight=False, soft_wrap=False)
        self.err = Console(stderr=True, highlight=False,
                           force_terminal=True if progress == "bars" and not quiet else None)
        if quiet:
            progress = "none"
        elif progress == "auto":
            progress = "bars" if self.err.is_terminal else "plain"
        #: ``"bars"``, ``"plain"`` or ``"none"``: what this reporter draws.
        self.mode: ProgressMode = progress
        self.live = progress == "bars"
        self.interval = interval
        self._clock = clock
        self._tasks: dict[TaskID, _Task] = {}
        self._watched: _Watched | None = None
        self._quota = False
        self._flushed = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._progress: Progress | None = None
        if self.live:
            self._progress = Progress(
                SpinnerColumn(finished_text="[green]✓[/]"),
                TextColumn("{task.description:<16}"),
                BarColumn(bar_width=None),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.err,
                refresh_per_second=8,
            )

    def __enter__(self) -> Reporter:
        if self._progress is not None:
            self._progress.start()
        if self.mode == "plain":
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop: lines only when tick() is called
                loop = None
            if loop is not None and self._timer is None:
                self._timer = loop.call_later(self.interval, self._on_timer)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop drawing and stop the plain lines (idempotent); what was drawn stays."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._progress is not None:
            self._flush()
            self._progress.stop()

    def watch(self, client: _Watched, *, quota: bool = True) -> None:
        """Read the requests (and, with ``quota``, the quota left) of ``client`` for the
        plain lines; Akana has no quota: ``quota=False``."""
        self._watched = client
        self._quota = quota

    def add(self, description: str, total: int | None, *, completed: int = 0,
            records: int | None = 0, unit: str = "items", start: bool = True) -> TaskID:
        """A new bar; ``total=None`` for a listing of unknown length; ``start=False`` for
        one that waits (its clock starts with :meth:`start`); ``records=None`` for work
        that writes no records (item numbers looked up: ``unit="numbers"``)."""
        task = _Task(description, total, completed, records or 0, unit=unit or "items",
                     counts_records=records is not None)
        if self._progress is not None:
            task.bar = self._progress.add_task(description, total=total,
                                               completed=completed, records=task.records,
                                               detail=_detail(task), unit=unit, start=start)
        task_id = TaskID(len(self._tasks))
        self._tasks[task_id] = task
        if start:
            self.start(task_id)
        return task_id

    def start(self, task: TaskID) -> None:
        """Start a bar added with ``start=False``."""
        state = self._tasks[task]
        if state.started is None:
            state.started = self._clock()
            state.start_completed, state.start_records = state.completed, state.records
        if self._progress is not None and state.bar is not None:
            self._progress.start_task(state.bar)

    def advance(self, task: TaskID, *, items: int = 0, records: int = 0) -> None:
        """Count finished items and written records (bars are redrawn at most every
        :attr:`UPDATE_EVERY` seconds: updating a bar costs more than fetching a record)."""
        state = self._tasks[task]
        state.completed += items
        state.records += records
        if self._progress is None:
            return
        state.pending += items
        state.dirty = True
        now = time.monotonic()
        if now - self._flushed >= self.UPDATE_EVERY:
            self._flush()
            self._flushed = now

    def _flush(self) -> None:
        if self._progress is None:
            return
        for state in self._tasks.values():
            if state.bar is not None and state.dirty:
                self._progress.update(state.bar, advance=state.pending,
                                      records=state.records, detail=_detail(state))
            state.pending, state.dirty = 0, False

    def finish(self, task: TaskID, *, total: int | None = None) -> None:
        """Mark a bar complete (a listing of unknown length gets its final total)."""
        state = self._tasks[task]
        self._flush()
        state.finished = True
        if total is not None:
            state.total = state.completed = total
        if self._progress is not None and state.bar is not None:
            if total is not None:
                self._progress.update(state.bar, total=total, completed=total)
            self._progress.stop_task(state.bar)

    # -- plain lines --------------------------------------------------------------------

    def _on_timer(self) -> None:
        self._timer = None
        self.tick()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - the timer runs in the loop
            return
        self._timer = loop.call_later(self.interval, self._on_timer)

    def tick(self) -> None:
        """Print :meth:`lines` on stderr (plain mode only); the event loop calls it every
        :attr:`interval` seconds between ``__enter__`` and :meth:`stop`."""
        if self.mode != "plain":
            return
        for line in self.lines():
            print(line, file=sys.stderr, flush=True)

    def lines(self) -> list[str]:
        """One plain progress line per task begun and not finished, e.g.
        ``progress: ticket refs 1,200/5,000 items (24%), 3,871 records, 1,201 requests,
        322 records/s, quota left 98,799 of 100,000, elapsed 12.0 s, ETA 38.0 s``."""
        now = self._clock()
        watched = self._watched
        stats = watched.stats if watched is not None else None
        quota = watched.quota if watched is not None and self._quota else None
        lines = []
        for task in self._tasks.values():
            if task.started is None or task.finished:
                continue
            elapsed = max(0.0, now - task.started)
            parts = []
            if task.total is not None:
                share = task.completed * 100 // task.total if task.total else 100
                parts.append(f"{task.completed:,}/{task.total:,} {task.unit} ({share}%)")
            if task.counts_records:
                parts.append(f"{task.records:,} records")
            if stats is not None:
                parts.append(f"{stats.requests:,} requests")
            if task.counts_records and elapsed > 0:
                done = task.records - task.start_records
                parts.append(f"{done / elapsed:,.0f} records/s")
            if watched is not None and self._quota:
                parts.append(_quota_left(quota))
            parts.append(f"elapsed {format_duration(elapsed)}")
            if task.total is not None:
                parts.append(f"ETA {_eta(task, elapsed)}")
            lines.append(f"{self.PREFIX}{task.description} " + ", ".join(parts))
        return lines

    # -- text ---------------------------------------------------------------------------

    def note(self, text: str) -> None:
        """One informational line on stderr (above the bars when they are live); none
        when quiet."""
        if not self.quiet:
            self._stderr(text)

    def warn(self, text: str) -> None:
        """One line on stderr that even ``quiet`` prints (something the user should act
        on that is not an error of the command)."""
        self._stderr(text)

    def _stderr(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)

    def say(self, text: str) -> None:
        """One line of result on stdout; none when quiet."""
        if not self.quiet:
            self.out.print(text, markup=False, highlight=False, soft_wrap=True)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]],
              *, right: Sequence[int] = (), footer: Sequence[str] = ()) -> None:
        """A summary table on stdout, then ``footer`` lines; none when quiet."""
        if self.quiet:
            return
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for index, name in enumerate(columns):
            table.add_column(name, justify="right" if index in right else "left",
                             no_wrap=index in right)
        for row in rows:
            table.add_row(*row)
        self.out.print(title, markup=False, highlight=False)
        self.out.print(table, markup=False)
        for line in footer:
            self.out.print(line, markup=False, highlight=False)

    def pairs(self, title: str, rows: Sequence[tuple[str, str]]) -> None:
        """A two-column (name, value) summary on stdout; none when quiet."""
        if self.quiet:
            return
        table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for name, value in rows:
            table.add_row(name, value)
        self.out.print(title, markup=False, highlight=False)
        self.out.print(table, markup=False)


def _detail(task: _Task) -> str:
    """The bar's records column: empty for work that writes no records."""
    return f"[cyan]{task.records:>9,}[/] records" if task.counts_records else ""


def _quota_left(quota: Quota | None) -> str:
    """``quota left 98,799 of 100,000`` (a plain line's part), and when it is spent (the
    run waits or stops) ``, resets in 2 h 03 min``."""
    if quota is None:
        return "quota left unknown"
    text = f"quota left {quota.remaining:,}"
    if quota.limit is not None:
        text += f" of {quota.limit:,}"
    if quota.resets_at is not None and quota.remaining <= 0:
        delta = (quota.resets_at - datetime.now(UTC)).total_seconds()
        text += f", resets in {format_duration(max(0.0, delta))}"
    return text


def _eta(task: _Task, elapsed: float) -> str:
    """The time left at this run's pace so far, or ``unknown`` before the first item."""
    assert task.total is not None
    done = task.completed - task.start_completed
    if done <= 0 or elapsed <= 0:
        return "unknown"
    return format_duration(max(0, task.total - task.completed) * elapsed / done)


def format_duration(seconds: float) -> str:
    """``0.84 s``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_quota(quota: Quota | None, *, now: datetime | None = None) -> str:
    """``84,998 of 100,000 (resets in 23 h 59 min)`` or ``unknown``."""
    if quota is None:
        return "unknown (no answer yet)"
    text = f"{quota.remaining:,}"
    if quota.limit is not None:
        text += f" of {quota.limit:,}"
    if quota.resets_at is not None:
        delta = (quota.resets_at - (now or datetime.now(UTC))).total_seconds()
        text += f" (resets in {format_duration(max(0.0, delta))})"
    return text


def format_requests(stats: Stats) -> str:
    """``5,001 (incl. 1 login)``; ``12 (incl. 1 login), 40 answers from the cache``."""
    text = f"{stats.requests:,}"
    if stats.logins:
        text += f" (incl. {stats.logins} login{'s' if stats.logins != 1 else ''})"
    if stats.cache_hits:
        text += (f", {stats.cache_hits:,} answer{'s' if stats.cache_hits != 1 else ''} "
                 "from the cache")
    return text
