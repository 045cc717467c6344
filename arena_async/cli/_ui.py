"""Progress bars (stderr, only on a terminal) and summary tables (stdout), with rich.

On a terminal the bars are live; anywhere else (a pipe, a file, CI) nothing is drawn while
the work runs and the summary is plain text without control codes.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType

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

__all__ = ["Reporter", "format_duration", "format_quota", "format_requests"]


class Reporter:
    """Where a command's progress and summary go.

    Example::

        with Reporter(quiet=False) as ui:
            task = ui.add("ticket references", total=len(guids))
            ui.advance(task, items=1, records=3)
        ui.table("summary", ["what", "records"], [["tickets", "3"]])
    """

    #: Seconds between bar updates.
    UPDATE_EVERY = 0.05

    def __init__(self, *, quiet: bool = False) -> None:
        self.out = Console(highlight=False, soft_wrap=False)
        self.err = Console(stderr=True, highlight=False)
        self.live = self.err.is_terminal and not quiet
        self._records: dict[TaskID, int] = {}
        self._pending: dict[TaskID, int] = {}
        self._flushed = 0.0
        self._progress: Progress | None = None
        if self.live:
            self._progress = Progress(
                SpinnerColumn(finished_text="[green]✓[/]"),
                TextColumn("{task.description:<16}"),
                BarColumn(bar_width=None),
                MofNCompleteColumn(),
                TextColumn("[cyan]{task.fields[records]:>9,}[/] records"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.err,
                refresh_per_second=8,
            )

    def __enter__(self) -> Reporter:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop drawing (idempotent); what was drawn stays on screen."""
        if self._progress is not None:
            self._flush()
            self._progress.stop()

    def add(self, description: str, total: int | None, *, completed: int = 0,
            records: int = 0, unit: str = "items", start: bool = True) -> TaskID:
        """A new bar; ``total=None`` for a listing of unknown length; ``start=False`` for
        one that waits (its clock starts with :meth:`start`)."""
        if self._progress is None:
            return TaskID(len(self._records))
        task = self._progress.add_task(description, total=total, completed=completed,
                                       records=records, unit=unit, start=start)
        self._records[task] = records
        return task

    def start(self, task: TaskID) -> None:
        """Start a bar added with ``start=False``."""
        if self._progress is not None:
            self._progress.start_task(task)

    def advance(self, task: TaskID, *, items: int = 0, records: int = 0) -> None:
        """Count finished items and written records (shown at most every
        :attr:`UPDATE_EVERY` seconds: updating a bar costs more than fetching a record)."""
        if self._progress is None:
            return
        self._records[task] = self._records.get(task, 0) + records
        self._pending[task] = self._pending.get(task, 0) + items
        now = time.monotonic()
        if now - self._flushed >= self.UPDATE_EVERY:
            self._flush()
            self._flushed = now

    def _flush(self) -> None:
        if self._progress is None:
            return
        for task, items in self._pending.items():
            self._progress.update(task, advance=items, records=self._records[task])
        self._pending.clear()

    def finish(self, task: TaskID, *, total: int | None = None) -> None:
        """Mark a bar complete (a listing of unknown length gets its final total)."""
        if self._progress is None:
            return
        self._flush()
        if total is not None:
            self._progress.update(task, total=total, completed=total)
        self._progress.stop_task(task)

    def note(self, text: str) -> None:
        """One informational line on stderr (above the bars when they are live)."""
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]],
              *, right: Sequence[int] = (), footer: Sequence[str] = ()) -> None:
        """A summary table on stdout, then ``footer`` lines."""
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
        """A two-column (name, value) summary on stdout."""
        table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for name, value in rows:
            table.add_row(name, value)
        self.out.print(title, markup=False, highlight=False)
        self.out.print(table, markup=False)


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
    """``5,001 (incl. 1 login)``."""
    if not stats.logins:
        return f"{stats.requests:,}"
    return f"{stats.requests:,} (incl. {stats.logins} login{'s' if stats.logins != 1 else ''})"
