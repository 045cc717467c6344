"""The command line in nightly jobs (cron, pipes, CI): plain progress lines when stderr is
not a terminal, ``--quiet`` silence, a finished export run again (nothing to do, exit 0)
or exported again with ``--fresh`` (the output replaced only when the new run completes),
``fake-server --write-numbers``, and the exit statuses in every export's help."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

from arena_async.__main__ import main
from arena_async.cli._checkpoint import (
    checkpoint_path,
    complete_path,
    failed_path,
    fresh_path,
    read_completion,
)
from arena_async.cli._select import Entry, parse_entries, selection_path
from arena_async.cli._serve import item_numbers
from arena_async.cli._ui import Reporter
from arena_async.models.common import Quota, Stats
from arena_async.testing import FakeArena
from arena_async.testing._fake_akana import FakeAkana

from ._helpers import banner, canonical, problems, read_jsonl, truth
from .test_select_plan import arena_env, spent, ticket_rows

REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(
    r"^progress: training records (\d+)/30 items \((\d+)%\), ([\d,]+) records, "
    r"([\d,]+) requests, [\d,]+ records/s, quota left (?:[\d,]+ of 100,000|unknown), "
    r"elapsed [\d.]+ s, ETA (?:[\d.]+ s|unknown)$")


def progress_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("progress: ")]


# ---------------------------------------------------------------- plain progress lines


@attrs.define
class Watched:
    """What plain lines read: a client's stats and quota."""

    stats: Stats = attrs.field(factory=Stats)
    quota: Quota | None = None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_plain_line_has_counts_rate_quota_and_eta_on_an_injected_clock(
        capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock()
    ui = Reporter(progress="plain", interval=10, clock=clock)
    client = Watched()
    ui.watch(client)
    task = ui.add("ticket refs", total=5000, completed=1000, records=2000)  # resumed
    waiting = ui.add("later", total=10, start=False)
    assert ui.lines() == ["progress: ticket refs 1,000/5,000 items (20%), 2,000 records, "
                          "0 requests, quota left unknown, elapsed 0.00 s, ETA unknown"]
    clock.now += 40
    ui.advance(task, items=400, records=1200)
    client.stats = Stats(requests=401)
    client.quota = Quota(remaining=98_000, resets_at=None, limit=100_000)
    assert ui.lines() == [
        "progress: ticket refs 1,400/5,000 items (28%), 3,200 records, 401 requests, "
        "30 records/s, quota left 98,000 of 100,000, elapsed 40.0 s, ETA 6 min 00 s"]
    # A spent quota says when it resets; a listing of unknown length has no ETA.
    client.quota = Quota(remaining=0, limit=100_000,
                         resets_at=datetime.now(UTC) + timedelta(hours=2, minutes=3, seconds=30))
    ui.start(waiting)
    ui.finish(task)
    listing = ui.add("Akana tickets", total=None, unit="")
    clock.now += 5
    ui.advance(listing, items=50, records=50)
    ui.watch(client, quota=False)
    assert ui.lines() == [
        "progress: later 0/10 items (0%), 0 records, 401 requests, 0 records/s, "
        "elapsed 5.00 s, ETA unknown",
        "progress: Akana tickets 50 records, 401 requests, 10 records/s, elapsed 5.00 s"]
    ui.watch(client)
    assert "quota left 0 of 100,000, resets in 2 h 03 min" in ui.lines()[0]
    assert capsys.readouterr().err == ""  # lines() only builds them
    ui.tick()
    assert progress_lines(capsys.readouterr().err) == ui.lines()


@pytest.mark.parametrize(("progress", "quiet", "printed"), [
    ("plain", False, True), ("none", False, False), ("bars", False, False),
    ("plain", True, False)])
def test_tick_prints_only_in_plain_mode_and_never_when_quiet(
        progress: str, quiet: bool, printed: bool,
        capsys: pytest.CaptureFixture[str]) -> None:
    ui = Reporter(progress=progress, quiet=quiet)  # type: ignore[arg-type]
    ui.add("items", total=3)
    ui.tick()
    assert bool(capsys.readouterr().err) is printed


def test_auto_is_plain_lines_when_stderr_is_not_a_terminal() -> None:
    assert Reporter().mode == "plain"  # pytest captures stderr: not a terminal
    assert Reporter(quiet=True).mode == "none"
    with pytest.raises(ValueError, match="progress must be one of"):
        Reporter(progress="fancy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="interval must be more than 0"):
        Reporter(interval=0)


async def test_the_event_loop_prints_a_line_every_interval_until_stopped(
        capsys: pytest.CaptureFixture[str]) -> None:
    ui = Reporter(progress="plain", interval=0.02)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with ui:
        task = ui.add("ticket refs", total=10)
        for _ in range(10):
            await asyncio.sleep(0.012)
            ui.advance(task, items=1)
        ui.finish(task)
        await asyncio.sleep(0.05)  # a finished task has no line
    elapsed = loop.time() - began
    lines = progress_lines(capsys.readouterr().err)
    # One line per interval while it ran (a loaded machine stretches the run, and may
    # delay a timer: bounds from the time it really took).
    assert 2 <= len(lines) <= elapsed / 0.02 + 1, (lines, elapsed)
    done = [int(re.search(r" (\d+)/10 items", line).group(1)) for line in lines]  # type: ignore[union-attr]
    assert done == sorted(done)
    await asyncio.sleep(0.05)
    assert capsys.readouterr().err == ""  # stopped with the block


def test_a_piped_export_prints_plain_progress_lines_then_the_summary(tmp_path: Path) -> None:
    """A real pipe (a child process): stderr is not a terminal, so plain lines come every
    --progress-interval seconds while it runs; no control codes; the summary as before."""
    out = tmp_path / "records.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "arena_async", "export", "training-records", "--fake",
         "--fake-items", "30", "--fake-quota", "100000", "--fake-latency", "0.02",
         "--concurrency", "1", "--page-size", "3", "--progress-interval", "0.1",
         "--out", str(out)],
        cwd=REPO, env={**os.environ, "COLUMNS": "200"}, capture_output=True, text=True,
        timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = progress_lines(proc.stderr)
    assert len(lines) >= 3, proc.stderr
    for line in lines:
        assert LINE.match(line), line
    done = [int(LINE.match(line).group(1)) for line in lines]  # type: ignore[union-attr]
    assert done == sorted(done)
    # Lines while it ran; the last may come after the last item and before the summary.
    assert done[0] < 30
    assert done[-1] <= 30
    # The quota is known from the first answer on (a line before it may say "unknown").
    assert "quota left unknown" not in lines[-1], lines
    assert "\x1b" not in proc.stderr + proc.stdout
    assert problems(proc.stderr) == []
    assert re.search(r"^items\s+30 of 30 complete", proc.stdout, re.M)
    assert canonical(read_jsonl(out)) == canonical(truth("training-records", items=30))


def test_progress_none_keeps_the_summary_and_quiet_prints_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["export", "training-records", "--fake", "--fake-items", "20", "--fake-latency",
            "0.01", "--concurrency", "1", "--progress-interval", "0.02"]
    assert main([*args, "--out", str(tmp_path / "a.jsonl"), "--progress", "none"]) == 0
    captured = capsys.readouterr()
    assert progress_lines(captured.err) == []
    assert captured.err.startswith("plan: ")
    assert "20 of 20 complete" in captured.out

    assert main([*args, "--out", str(tmp_path / "b.jsonl"), "-q"]) == 0
    assert capsys.readouterr() == ("", "")  # cron mails nothing when all went well
    assert main([*args, "--out", str(tmp_path / "b.jsonl"), "-q"]) == 0  # complete already
    assert capsys.readouterr() == ("", "")

    assert main([*args, "--out", str(tmp_path / "c.jsonl"), "--fake-quota", "5", "-q"]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("arena-async: error: Arena request quota exhausted")
    assert len(captured.err.splitlines()) == 1


# ---------------------------------------------------------------- running a finished export


def test_a_finished_export_run_again_does_nothing_and_exits_0(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeArena.seeded(items=12, seed=3, quota_limit=1_000_000)
    items = tmp_path / "items.txt"
    items.write_text("\n".join(fake.item_guids))
    out = tmp_path / "refs.jsonl"
    argv = ["export", "ticket-refs", "--items", str(items), "--out", str(out)]
    with arena_env(monkeypatch, fake):
        assert main(argv) == 0
        assert not checkpoint_path(out).exists()
        done = read_completion(out)
        assert done is not None
        assert (done.kind, done.format, done.bytes) == ("ticket-refs", "jsonl",
                                                        out.stat().st_size)
        assert done.records == len(ticket_rows(fake, fake.item_guids))
        capsys.readouterr()
        content, before = out.read_bytes(), spent(fake)

        assert main(argv) == 0
        captured = capsys.readouterr()
        assert spent(fake) == before  # not even a login
        assert fake.stats.logins == 1
        assert out.read_bytes() == content
        assert captured.out == (f"{out} is complete already (ticket-refs, {done.records:,} "
                                f"records, finished {done.finished_at}): nothing to do; "
                                "--fresh exports again\n")
        assert captured.err == ""
        assert main([*argv, "--plan"]) == 0  # a plan of nothing: no request either
        assert "complete already" in capsys.readouterr().out
        assert spent(fake) == before

        # Other items, another kind or format, or a changed file: refused, before any request.
        items.write_text("\n".join(fake.item_guids[:5]))
        assert main(argv) == 2
        assert "holds a finished export of other items or filters; pass --fresh" in \
            capsys.readouterr().err
        items.write_text("\n".join(fake.item_guids))
        assert main(["export", "references", *argv[2:]]) == 2
        assert "holds a finished export of ticket-refs as jsonl" in capsys.readouterr().err
        with out.open("ab") as f:
            f.write(b"\n")
        assert main(argv) == 2
        assert "was changed since its export finished" in capsys.readouterr().err
        assert spent(fake) == before


def test_fresh_replaces_the_output_only_when_the_new_export_completes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A nightly snapshot: --fresh exports again into <out>.fresh; stopped half-way (the
    quota), <out> is still the last complete export byte for byte, and the next --fresh run
    resumes the new export exactly, then replaces <out> with one rename."""
    fake = FakeArena.seeded(items=30, seed=1, quota_limit=1_000_000)
    out = tmp_path / "refs.jsonl"
    argv = ["export", "ticket-refs", "--number", "PN-0000*", "--out", str(out),
            "--concurrency", "2", "--checkpoint-interval", "0", "-q"]
    with arena_env(monkeypatch, fake):
        assert main(argv) == 0
        first = out.read_bytes()
        assert canonical(read_jsonl(out)) == canonical(
            ticket_rows(fake, fake.item_guids, numbered=True))
        # Overnight: a new item and new ticket references.
        new = fake.add_item(number="PN-000077")
        fake.add_ticket_refs(new, 3)
        fake.add_ticket_refs(fake.item_guids[4], 2)
        assert main(argv) == 0  # without --fresh: complete already
        assert out.read_bytes() == first

        fake.set_quota(remaining=12)
        assert main([*argv, "--fresh"]) == 3
        staged = fresh_path(out)
        assert checkpoint_path(staged).exists()
        assert selection_path(staged).exists()
        assert out.read_bytes() == first  # readers still see the last complete export
        assert read_completion(out) is not None
        capsys.readouterr()
        assert main([*argv[:-1]]) == 0  # without --fresh: says a fresh run is pending
        assert "an unfinished --fresh export is in" in capsys.readouterr().out

        fake.set_quota(remaining=1_000_000)
        before = spent(fake)
        assert main([*argv[:-1], "--fresh"]) == 0
        assert "resuming" in capsys.readouterr().err
        listings = fake.requests_to("GET /items")
        assert len(listings) == 2  # the first run's and the fresh run's: not listed again
        assert spent(fake) - before < 31 + 1  # only what was left (and the logout)
    assert canonical(read_jsonl(out)) == canonical(
        ticket_rows(fake, fake.item_guids, numbered=True))
    assert len(read_jsonl(out)) > len(first.splitlines())
    for path in (staged, checkpoint_path(staged), selection_path(staged),
                 checkpoint_path(out)):
        assert not path.exists(), path
    done = read_completion(out)
    assert done is not None
    assert done.bytes == out.stat().st_size


def test_fresh_moves_the_failed_items_with_the_output(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeArena.seeded(items=6, seed=2, quota_limit=1_000_000)
    items = tmp_path / "items.txt"
    items.write_text("\n".join([*fake.item_guids, "PN-999999"]))
    out = tmp_path / "refs.jsonl"
    argv = ["export", "ticket-refs", "--items", str(items), "--out", str(out)]
    monkeypatch.setenv("COLUMNS", "300")  # the summary's paths on one line
    with arena_env(monkeypatch, fake):
        assert main([*argv, "-q"]) == 4
        assert [f["key"] for f in read_jsonl(failed_path(out))] == ["PN-999999"]
        assert main(argv) == 0
        assert "1 item failed for good (listed in" in capsys.readouterr().out
        fake.add_item(number="PN-999999")
        assert main([*argv, "--fresh"]) == 0  # the number exists now: nothing failed
        captured = capsys.readouterr()
        assert "exporting again into" in captured.err
        assert re.search(rf"^output\s+{re.escape(str(out))} \(jsonl", captured.out, re.M)
    assert not failed_path(out).exists()
    assert not fresh_path(out).exists()
    assert not failed_path(fresh_path(out)).exists()
    assert len(read_jsonl(out)) == len(ticket_rows(fake, fake.item_guids))


def test_overwrite_and_restart_still_start_over_in_place(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.jsonl"
    args = ["export", "references", "--fake", "--fake-items", "10", "--out", str(out), "-q"]
    assert main(args) == 0
    assert main([*args, "--fresh", "--fake-quota", "3"]) == 3
    assert checkpoint_path(fresh_path(out)).exists()
    for flag in ("--overwrite", "--restart"):
        assert main([*args, flag]) == 0
        assert not fresh_path(out).exists()  # the unfinished --fresh run is dropped
        assert not checkpoint_path(fresh_path(out)).exists()
        assert canonical(read_jsonl(out)) == canonical(truth("references", items=10))
        assert read_completion(out) is not None
    out.write_text("precious\n")
    complete_path(out).unlink()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "exists (and has no checkpoint to resume from); pass --fresh" in err
    assert "--overwrite" in err
    assert out.read_text() == "precious\n"
    assert main([*args, "--fresh"]) == 0
    assert canonical(read_jsonl(out)) == canonical(truth("references", items=10))


def test_a_replace_stopped_half_way_is_begun_again_by_fresh(tmp_path: Path) -> None:
    """The --fresh run's checkpoint without its file (it was moved over the output, then
    the process died): --fresh starts a new fresh export rather than failing."""
    out = tmp_path / "r.jsonl"
    args = ["export", "references", "--fake", "--fake-items", "8", "--out", str(out), "-q"]
    assert main(args) == 0
    assert main([*args, "--fresh", "--fake-quota", "3"]) == 3
    fresh_path(out).unlink()
    assert main([*args, "--fresh"]) == 0
    assert canonical(read_jsonl(out)) == canonical(truth("references", items=8))
    assert not checkpoint_path(fresh_path(out)).exists()


def test_akana_tickets_run_again_and_fresh(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.jsonl"
    args = ["export", "akana-tickets", "--fake", "--fake-tickets", "30", "--out", str(out)]
    assert main([*args, "-q"]) == 0
    assert main(args) == 0
    assert "is complete already (akana-tickets, 30 records" in capsys.readouterr().out
    assert main([*args, "--fake-tickets", "40", "--fresh", "-q"]) == 0
    assert [r["ticket_id"] for r in read_jsonl(out)] == [
        t["TicketID"] for t in FakeAkana.seeded(tickets=40, seed=1).tickets]


# ---------------------------------------------------------------- fake-server --write-numbers


def test_numbers_are_written_as_lines_an_items_file_reads_back_as_numbers() -> None:
    fake = FakeArena.seeded(items=5, seed=3)
    fake.add_item(number="ABCD1234EFGH5678")  # a number that looks like a GUID
    fake.add_item(number=fake.item(fake.item_guids[0])["number"])  # a second revision
    lines = item_numbers(fake)
    assert lines == [*(fake.item(g)["number"] for g in fake.item_guids[:5]),
                     "number:ABCD1234EFGH5678"]
    entries = parse_entries("\n".join(lines), "numbers.txt")
    assert all(e.is_number for e in entries)
    assert [e.text for e in entries] == [line.removeprefix("number:") for line in lines]
    assert Entry("ABCD1234EFGH5678", is_number=False).line == "ABCD1234EFGH5678"
    assert Entry("abc-1", is_number=False).line == "guid:abc-1"


def test_fake_server_writes_the_item_numbers_for_an_export_by_number(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shlex
    import signal

    numbers = tmp_path / "numbers.txt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "arena_async", "fake-server", "--no-akana", "--items", "9",
         "--seed", "4", "--write-numbers", str(numbers)],
        cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        lines = banner(proc)
        assert f"item numbers written to {numbers}" in lines
        fake = FakeArena.seeded(items=9, seed=4)
        assert numbers.read_text().splitlines() == [fake.item(g)["number"]
                                                    for g in fake.item_guids]
        for line in lines:
            if line.startswith("export "):
                for part in shlex.split(line.removeprefix("export ")):
                    monkeypatch.setenv(*part.split("=", 1))
        out = tmp_path / "refs.jsonl"
        assert main(["export", "ticket-refs", "--items", str(numbers), "--out", str(out),
                     "-q"]) == 0
        assert canonical(read_jsonl(out)) == canonical(
            ticket_rows(fake, fake.item_guids, numbered=True))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


# ---------------------------------------------------------------- exit statuses in --help


@pytest.mark.parametrize("command", [
    [], ["export"], ["export", "items"], ["export", "ticket-refs"], ["export", "references"],
    ["export", "training-records"], ["export", "akana-tickets"]],
    ids=lambda c: " ".join(c) or "root")
def test_every_export_help_lists_the_exit_statuses(
        command: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main([*command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for words in ("Exit status: 0 done (or complete already: nothing to do)", "1 error",
                  "2 bad usage", "3 Arena quota exhausted (resumable after the reset)",
                  "4 finished but some items failed for good (listed in "
                  "<out>.failed.jsonl)", "5 the query or filters matched nothing (nothing is "
                  "written, the next run asks again; --allow-empty: exit 0 with an empty "
                  "output)", "130 interrupted by Ctrl-C",
                  "143 by SIGTERM (both resumable)"):
        assert words in text, words
    if command[:1] == ["export"] and len(command) == 2:
        for option in ("--fresh", "--progress", "--progress-interval", "--quiet"):
            assert re.search(rf"(^| ){option} ", text), option
