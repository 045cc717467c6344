"""Exports selected by item number: the numbers looked up in batches with progress, the
answers saved per batch (a stopped run's lookups are never asked again), failed batches
asked again by the next run, the ``item_number`` column, and ``--plan --details`` giving
a range that holds what the run then spends. Requests are counted on the fake."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import pytest

from arena_async import ArenaClient
from arena_async.__main__ import main
from arena_async.cli._checkpoint import checkpoint_path, failed_path
from arena_async.cli._select import selection_path
from arena_async.testing import FakeArena, Fault, FaultPlan

from ._helpers import canonical, problems, read_csv, read_jsonl
from .test_select_plan import LIMIT, arena_env, planned, spent, ticket_rows

REPO = Path(__file__).resolve().parents[2]
LOOKUP = "GET /items"
NUMBER = re.compile(r'"value":"(PN-\d+)"')


def numbers_of(fake: FakeArena, guids: list[str]) -> list[str]:
    return [fake.item(g)["number"] for g in guids]


def batches(fake: FakeArena, numbers: list[str]) -> list[list[str]]:
    """The batches a lookup of ``numbers`` sends to ``fake`` (nothing is sent)."""
    return ArenaClient(base_url=fake.url, session_id="unused").items.lookup_batches(numbers)


def asked(fake: FakeArena, *, since: int = 0, answered: bool = False) -> list[str]:
    """The item numbers in the lookups the fake received (from the ``since``-th on);
    ``answered``: only those it answered 200."""
    lookups = fake.requests_to(LOOKUP)[since:]
    return [n for r in lookups if "criteria" in r.query_string
            and (not answered or r.status == 200)
            for n in NUMBER.findall(unquote(r.query_string))]


def saved_numbers(out: Path) -> dict[str, str | None]:
    data = json.loads(selection_path(out).read_text())
    numbers: dict[str, str | None] = data.get("numbers", {})
    return numbers


# ---------------------------------------------------------------- batches, progress, time


def test_numbers_are_looked_up_in_batches_with_progress_lines_and_timed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Piped (not a terminal): plain progress lines while the numbers are looked up, one
    request per batch, and the summary's time includes the lookups."""
    faults = FaultPlan(seed=1)
    faults.add(Fault("slow_headers", delay=0.3, query="criteria"))
    fake = FakeArena.seeded(items=120, seed=2, quota_limit=LIMIT, faults=faults)
    numbers = numbers_of(fake, fake.item_guids)
    items = tmp_path / "numbers.txt"
    items.write_text("\n".join([*numbers, "PN-999998", "PN-999999"]) + "\n")
    out = tmp_path / "refs.jsonl"
    with arena_env(monkeypatch, fake):
        expected = batches(fake, [*numbers, "PN-999998", "PN-999999"])
        assert 2 <= len(expected) <= 4
        assert main(["export", "ticket-refs", "--items", str(items), "--out", str(out),
                     "--concurrency", "1", "--progress-interval", "0.05"]) == 4
        assert fake.stats.by_route[LOOKUP] == len(expected)
        assert spent(fake) == len(expected) + 120 + 1
    captured = capsys.readouterr()
    line = re.compile(r"^progress: item numbers (\d+)/122 numbers \(\d+%\), [\d,]+ requests, "
                      r"quota left (?:[\d,]+ of 1,000,000|unknown), elapsed [\d.]+ s, "
                      r"ETA (?:[\d.]+ s|unknown)$")
    lines = [x for x in captured.err.splitlines() if x.startswith("progress: item numbers")]
    assert len(lines) >= 3, captured.err
    for text in lines:
        assert line.match(text), text
    done = [int(line.match(x).group(1)) for x in lines]  # type: ignore[union-attr]
    assert done == sorted(done)
    assert done[-1] < 122
    assert "\x1b" not in captured.err
    seconds = re.search(r"^time\s+([\d.]+) s", captured.out, re.M)
    assert seconds, captured.out
    assert float(seconds.group(1)) >= 0.3 * len(expected)  # the lookups are in it
    assert canonical(read_jsonl(out)) == canonical(
        ticket_rows(fake, fake.item_guids, numbered=True))
    assert [f["key"] for f in read_jsonl(failed_path(out))] == ["PN-999998", "PN-999999"]


# ---------------------------------------------------------------- stopped, then resumed


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_the_lookups_keeps_them_and_the_resume_asks_none_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int, code: int) -> None:
    faults = FaultPlan(seed=1)
    faults.add(Fault("slow_headers", delay=0.25, query="criteria"))
    fake = FakeArena.seeded(items=400, seed=3, quota_limit=LIMIT, faults=faults)
    numbers = numbers_of(fake, fake.item_guids)
    items = tmp_path / "numbers.txt"
    items.write_text("\n".join(numbers) + "\n")
    out = tmp_path / "refs.jsonl"
    argv = ["export", "ticket-refs", "--items", str(items), "--out", str(out),
            "--concurrency", "1", "--checkpoint-interval", "0"]
    with arena_env(monkeypatch, fake):
        assert len(batches(fake, numbers)) >= 6
        proc = subprocess.Popen([sys.executable, "-m", "arena_async", *argv], cwd=REPO,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    if len(saved_numbers(out)) >= 100:
                        break
                except (OSError, ValueError):  # not there yet
                    pass
                time.sleep(0.02)
            proc.send_signal(signum)
            _, stderr = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:  # pragma: no cover
                proc.kill()
        assert proc.returncode == code, stderr
        saved = saved_numbers(out)
        assert 100 <= len(saved) < 400
        assert problems(stderr) == [
            f"arena-async: error: interrupted while looking up item numbers; {len(saved)} "
            f"of 400 item numbers are looked up (kept in {selection_path(out)}): run the "
            f"same command again to resume"], stderr
        assert "Traceback" not in stderr
        assert not out.exists()
        assert set(asked(fake, answered=True)) <= set(saved)  # every answer was kept
        first = fake.stats.by_route[LOOKUP]

        faults.clear()
        before = len(fake.requests_to(LOOKUP))
        assert main([*argv, "-q"]) == 0
        again = asked(fake, since=before)
        assert not set(again) & set(saved)  # no number answered before is asked again
        assert sorted(again) == sorted(set(numbers) - set(saved))
        left = [n for n in numbers if n not in saved]
        assert fake.stats.by_route[LOOKUP] - first == len(batches(fake, left))
    assert canonical(read_jsonl(out)) == canonical(
        ticket_rows(fake, fake.item_guids, numbered=True))
    assert not selection_path(out).exists()
    assert not checkpoint_path(out).exists()


def test_a_spent_quota_during_the_lookups_stops_resumably(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeArena.seeded(items=300, seed=4, quota_limit=LIMIT)
    numbers = numbers_of(fake, fake.item_guids)
    items = tmp_path / "numbers.txt"
    items.write_text("\n".join(numbers) + "\n")
    out = tmp_path / "refs.csv"
    argv = ["export", "ticket-refs", "--items", str(items), "--out", str(out),
            "--concurrency", "1", "-q"]
    with arena_env(monkeypatch, fake):
        plan = batches(fake, numbers)
        fake.set_quota(remaining=2)
        assert main(argv) == 3
        err = capsys.readouterr().err
        assert re.search(r"^arena-async: error: Arena request quota exhausted.*; "
                         rf"{len(plan[0]) + len(plan[1])} of 300 item numbers are looked "
                         r"up \(kept in .*\): run the same command again after the reset$",
                         err, re.M), err
        assert len(saved_numbers(out)) == len(plan[0]) + len(plan[1])
        fake.set_quota(remaining=LIMIT)
        before = len(fake.requests_to(LOOKUP))
        assert main(argv) == 0
        assert sorted(asked(fake, since=before)) == sorted(
            n for batch in plan[2:] for n in batch)
    header, rows = read_csv(out)
    assert header[:2] == ["item_guid", "item_number"]
    assert len(rows) == len(ticket_rows(fake, fake.item_guids))


def test_a_failed_batch_is_asked_again_by_the_next_run_and_only_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A batch failing after the retries fails its numbers only: the run stops before the
    export with the others kept (exit 1); the next run asks for the failed ones only."""
    faults = FaultPlan(seed=1)
    fake = FakeArena.seeded(items=200, seed=5, quota_limit=LIMIT, faults=faults)
    numbers = numbers_of(fake, fake.item_guids)
    items = tmp_path / "numbers.txt"
    items.write_text("\n".join(numbers) + "\n")
    out = tmp_path / "refs.jsonl"
    argv = ["export", "ticket-refs", "--items", str(items), "--out", str(out), "-q"]
    with arena_env(monkeypatch, fake):
        plan = batches(fake, numbers)
        doomed = plan[1]
        faults.add(Fault("status", status=503, query=f'"value":"{doomed[0]}"'))
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert problems(err) == [
            f"arena-async: error: {len(doomed)} item numbers could not be looked up "
            f"({', '.join(doomed[:5])}, ... {len(doomed) - 5} more: "
            + err.split(" more: ", 1)[1].split("\n")[0]]
        assert sorted(saved_numbers(out)) == sorted(set(numbers) - set(doomed))
        assert not out.exists()
        faults.clear()
        before = len(fake.requests_to(LOOKUP))
        assert main(argv) == 0
        assert sorted(asked(fake, since=before)) == sorted(doomed)
        assert fake.stats.by_route[LOOKUP] - before == 1
    assert canonical(read_jsonl(out)) == canonical(
        ticket_rows(fake, fake.item_guids, numbered=True))


# ---------------------------------------------------------------- item_number


def test_item_number_in_jsonl_and_csv_when_selected_by_number(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeArena.seeded(items=10, seed=6, quota_limit=LIMIT)
    guids = fake.item_guids
    items = tmp_path / "items.txt"
    items.write_text("\n".join([*numbers_of(fake, guids[:6]), guids[6]]) + "\n")
    guids_only = tmp_path / "guids.txt"
    guids_only.write_text("\n".join(guids[:7]) + "\n")
    jsonl, csv_out = tmp_path / "refs.jsonl", tmp_path / "refs.csv"
    plain = tmp_path / "plain.csv"
    with arena_env(monkeypatch, fake):
        for path in (jsonl, csv_out):
            assert main(["export", "references", "--items", str(items), "--out", str(path),
                         "-q"]) == 0
        assert main(["export", "references", "--items", str(guids_only), "--out",
                     str(plain), "-q"]) == 0
        # From the selection: one lookup, one request per item, the logout.
        assert spent(fake) == 2 * (1 + 7 + 1) + 7 + 1
    number = {g: fake.item(g)["number"] for g in guids[:6]}
    rows = read_jsonl(jsonl)
    assert rows
    assert all(list(r)[:2] == ["item_guid", "item_number"] for r in rows)
    assert {r["item_guid"]: r["item_number"] for r in rows} == {
        g: number.get(g) for g in guids[:7] if fake.references(g)}
    header, csv_rows = read_csv(csv_out)
    assert header == ["item_guid", "item_number", "guid", "other_item_guid",
                      "other_item_url_api", "other_item_url_app", "note"]
    assert {r[0]: r[1] for r in csv_rows} == {
        g: number.get(g, "") for g in guids[:7] if fake.references(g)}
    assert len(csv_rows) == len(rows)
    assert read_csv(plain)[0][:2] == ["item_guid", "guid"]  # by GUID: no such column


# ---------------------------------------------------------------- --plan --details


@pytest.mark.parametrize(("select", "seed"), [("numbers", 1), ("numbers", 7),
                                              ("guids", 2), ("mixed", 3)])
def test_plan_of_details_gives_a_range_holding_what_the_run_spends(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], select: str, seed: int) -> None:
    fake = FakeArena.seeded(items=120, seed=seed, quota_limit=LIMIT)
    guids = fake.item_guids
    lines = {"numbers": numbers_of(fake, guids), "guids": guids,
             "mixed": [*guids[:60], *numbers_of(fake, guids[60:])]}[select]
    items = tmp_path / "items.txt"
    items.write_text("\n".join(lines) + "\n")
    out = tmp_path / "records.jsonl"
    argv = ["export", "training-records", "--details", "--items", str(items), "--out",
            str(out), "--page-size", "5", "-q"]
    with arena_env(monkeypatch, fake):
        assert main([*argv, "--plan"]) == 0
        text = capsys.readouterr().out
        plan_cost = spent(fake)
        assert f"spent {plan_cost:,} requests" in text
        assert re.search(r"^per item\s+about [\d.]+ \(measured on 32 of the items", text,
                         re.M), text
        low, high = planned(text)
        assert main(argv) == 0
        run_cost = spent(fake) - plan_cost
    assert high is not None
    assert low <= run_cost <= high, (low, run_cost, high)
    assert high <= 2 * low  # a range that says something
    assert plan_cost <= 32 + 2 + 1  # the sample (one listing each), a lookup, the logout


def test_plan_of_details_is_exact_when_every_item_is_sampled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeArena.seeded(items=12, seed=8, quota_limit=LIMIT)
    items = tmp_path / "items.txt"
    items.write_text("\n".join([*fake.item_guids[:6], *numbers_of(fake, fake.item_guids[6:]),
                                "PN-424242"]) + "\n")
    out = tmp_path / "records.csv"
    argv = ["export", "training-records", "--details", "--items", str(items), "--out",
            str(out), "--page-size", "3", "-q"]
    with arena_env(monkeypatch, fake):
        assert main([*argv, "--plan"]) == 0
        low, high = planned(capsys.readouterr().out)
        before = spent(fake)
        assert main(argv) == 4  # the unknown number
        assert low == high == spent(fake) - before
