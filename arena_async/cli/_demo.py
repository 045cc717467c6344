"""``arena-async demo``: bulk-fetch a seeded fake workspace, with progress and a summary.

Starts FakeArena and FakeAkana in-process on loopback, so it needs no credentials and no
network.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

import attrs
from rich.progress import TaskID

from ..akana import AkanaClient
from ..arena import ArenaClient
from ..models.common import Stats
from ..testing._fake_akana import FakeAkana
from ._common import one_line
from ._fakes import akana_kwargs_for, arena_kwargs_for, start_fake_akana, start_fake_arena
from ._ui import Reporter, format_duration, format_quota

__all__ = ["run_demo"]


@attrs.define
class _Phase:
    title: str
    items: int | None = None
    records: int = 0
    failed: int = 0
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    first_error: str | None = None


def _delta(before: Stats, after: Stats) -> tuple[int, int]:
    return after.requests - before.requests, after.retries - before.retries


async def run_demo(*, items: int, seed: int, concurrency: int, latency: float,
                   fault_rate: float, quota: int, tickets: int, ui: Reporter,
                   arena_extra: dict[str, Any] | None = None, notes: bool = True) -> int:
    """Run the demo; returns the exit status (1 when anything failed). ``notes``: say
    which fakes run (``-q``: no); the summary table is the demo's result, always printed."""
    started = time.perf_counter()
    phases: list[_Phase] = []
    async with AsyncExitStack() as stack:
        fake = await stack.enter_async_context(start_fake_arena(
            items=items, seed=seed, quota=quota, latency=latency, fault_rate=fault_rate))
        fake_akana = None
        if tickets > 0:
            fake_akana = await stack.enter_async_context(
                start_fake_akana(tickets=tickets, seed=seed, latency=latency))
        guids = fake.item_guids
        if notes:
            ui.note(f"Fake servers on loopback: Arena with {items:,} items (seed {seed}, quota "
                    f"{quota:,}/day, {fault_rate:.1%} of requests fail once with 503)"
                    + (f", Akana with {tickets:,} tickets" if tickets else ""))
        arena = await stack.enter_async_context(
            # Alone unless --share says otherwise: a demo never touches the real default share.
            ArenaClient(**{"share": False, **arena_kwargs_for(fake), **(arena_extra or {})},
                        max_concurrency=concurrency))
        ui.watch(arena)
        jobs: list[tuple[str, Callable[[str], Awaitable[Sequence[Any]]]]] = [
            ("ticket refs", arena.items.tickets.list),
            ("item refs", arena.items.references.list),
            ("training records", arena.items.training_records.list),
        ]
        with ui:
            bars = [ui.add(title, total=len(guids), start=False) for title, _ in jobs]
            akana_bar = ui.add("Akana tickets", total=None, unit="", start=False) \
                if fake_akana is not None else None
            for (title, fn), bar in zip(jobs, bars, strict=True):
                phases.append(await _arena_phase(arena, title, fn=fn, guids=guids,
                                                 concurrency=concurrency, ui=ui, bar=bar))
            if fake_akana is not None and akana_bar is not None:
                phases.append(await _akana_phase(fake_akana, ui, akana_bar))
        quota_left = format_quota(arena.quota)
        url = fake.url
    _print_summary(ui, phases, url=url, seed=seed, quota_left=quota_left,
                   elapsed=time.perf_counter() - started)
    return 1 if any(p.failed for p in phases) else 0


async def _arena_phase(arena: ArenaClient, title: str, *,
                       fn: Callable[[str], Awaitable[Sequence[Any]]], guids: Sequence[str],
                       concurrency: int, ui: Reporter, bar: TaskID) -> _Phase:
    phase = _Phase(title, items=len(guids))
    ui.start(bar)
    before, t0 = arena.stats, time.perf_counter()
    async for outcome in arena.bulk(fn, guids, concurrency=concurrency):
        if outcome.ok and outcome.value is not None:
            phase.records += len(outcome.value)
            ui.advance(bar, items=1, records=len(outcome.value))
        else:
            phase.failed += 1
            if phase.first_error is None and outcome.error is not None:
                phase.first_error = f"{outcome.key}: {one_line(outcome.error)}"
            ui.advance(bar, items=1)
    phase.seconds = time.perf_counter() - t0
    phase.requests, phase.retries = _delta(before, arena.stats)
    ui.finish(bar)
    return phase


async def _akana_phase(fake: FakeAkana, ui: Reporter, bar: TaskID) -> _Phase:
    phase = _Phase("Akana tickets")
    ui.start(bar)
    t0 = time.perf_counter()
    async with AkanaClient(**akana_kwargs_for(fake)) as akana:
        ui.watch(akana, quota=False)
        before = akana.stats
        try:
            async for page in akana.tickets.pages():
                phase.records += len(page.items)
                ui.advance(bar, items=len(page.items), records=len(page.items))
        except Exception as exc:  # shown in the summary, like a failed item
            phase.failed, phase.first_error = 1, one_line(exc)
        phase.requests, phase.retries = _delta(before, akana.stats)
    phase.seconds = time.perf_counter() - t0
    ui.finish(bar, total=phase.records)
    return phase


def _print_summary(ui: Reporter, phases: Sequence[_Phase], *, url: str, seed: int,
                   quota_left: str, elapsed: float) -> None:
    rows = []
    for p in phases:
        rows.append([p.title, "" if p.items is None else f"{p.items:,}", f"{p.records:,}",
                     f"{p.failed:,}", f"{p.requests:,}", f"{p.retries:,}",
                     format_duration(p.seconds)])
    total = [sum(getattr(p, name) for p in phases)
             for name in ("records", "failed", "requests", "retries")]
    rows.append(["total", "", *(f"{n:,}" for n in total), format_duration(elapsed)])
    footer = [f"Arena quota left: {quota_left}"]
    footer += [f"{p.title}: first failure: {p.first_error}" for p in phases if p.first_error]
    footer.append("Next: arena-async export training-records --fake --out records.jsonl")
    ui.table(f"arena_async demo: FakeArena at {url} (seed {seed})",
             ["fetched", "items", "records", "failed", "requests", "retries", "time"],
             rows, right=range(1, 7), footer=footer)
