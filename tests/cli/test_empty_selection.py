"""A query or filters that match nothing: a warning naming them (even with -q), exit 5,
no file that could pass for a result and no completion record, so a misspelt filter in a
cron line is noticed every night; ``--allow-empty`` makes the empty export a result."""

from __future__ import annotations

from pathlib import Path

import pytest

from arena_async.__main__ import main

from ._helpers import read_csv

#: The exit status of a selection that matched nothing.
EXIT_EMPTY = 5


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def warning_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "warning" in line]


@pytest.mark.parametrize(("command", "selection"), [
    (["items", "--category", "NoSuchCat"], "--category NoSuchCat"),
    (["items", "--lifecycle-stage", "BOGUS"], "--lifecycle-stage BOGUS"),
    (["training-records", "--number", "PN-10*", "--details"], "--number 'PN-10*'"),
    (["ticket-refs", "--category", "Resistors", "--lifecycle-stage", "BOGUS"],
     "--category Resistors --lifecycle-stage BOGUS"),
], ids=["items-category", "items-stage", "readme-training-records", "ticket-refs-and"])
def test_a_query_matching_nothing_warns_exits_5_and_asks_again_next_time(
        tmp_path: Path, command: list[str], selection: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.csv"
    argv = ["export", *command, "--fake", "--out", str(out), "-q"]
    for _night in range(2):  # never "complete already": the next run asks again
        assert main(argv) == EXIT_EMPTY
        captured = capsys.readouterr()
        assert captured.out == ""
        assert warning_lines(captured.err) == [
            f"arena-async: warning: no items match {selection}: nothing is written, and the "
            "next run asks again; check the spelling, or pass --allow-empty when an empty "
            "export is a result"], captured.err
        assert "complete already" not in captured.err + captured.out
        assert files(tmp_path) == []  # no header-only file, checkpoint, selection, record


def test_the_summary_says_nothing_was_written(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)  # a short path: the summary's line is not wrapped
    assert main(["export", "items", "--fake", "--category", "NoSuchCat", "--out",
                 "x.csv"]) == 5
    assert "x.csv: not written (nothing matched)" in capsys.readouterr().out


def test_allow_empty_finishes_the_empty_export_and_exits_0(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.csv"
    argv = ["export", "ticket-refs", "--fake", "--category", "NoSuchCat", "--out", str(out),
            "--allow-empty"]
    assert main(argv) == 0
    header, rows = read_csv(out)
    assert header[0] == "item_guid"
    assert rows == []
    assert files(tmp_path) == ["x.csv", "x.csv.complete.json"]
    captured = capsys.readouterr()
    assert "no items match --category NoSuchCat: the output is empty (--allow-empty)" in \
        captured.err
    assert "warning" not in captured.err
    assert main(argv) == 0
    assert "complete already" in capsys.readouterr().out


def test_fresh_matching_nothing_keeps_the_last_complete_export(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "items.csv"
    assert main(["export", "items", "--fake", "--category", "Resistors", "--out", str(out),
                 "-q"]) == 0
    before = out.read_bytes()
    assert len(read_csv(out)[1]) > 0
    assert main(["export", "items", "--fake", "--category", "Resistor", "--out", str(out),
                 "--fresh", "-q"]) == 5
    err = capsys.readouterr().err
    assert f"nothing is written; {out} is left as it was (the last complete export)" in err
    assert out.read_bytes() == before
    assert files(tmp_path) == ["items.csv", "items.csv.complete.json"]


def test_akana_filters_matching_nothing(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.csv"
    argv = ["export", "akana-tickets", "--fake", "--fake-tickets", "30", "--state", "BOGUS",
            "--tag", "a b", "--out", str(out), "-q"]
    assert main(argv) == 5
    assert warning_lines(capsys.readouterr().err) == [
        "arena-async: warning: no tickets match --tag 'a b' --state BOGUS: nothing is "
        "written, and the next run asks again; check the spelling, or pass --allow-empty "
        "when an empty export is a result"]
    assert files(tmp_path) == []
    assert main([*argv, "--allow-empty"]) == 0
    assert files(tmp_path) == ["t.csv", "t.csv.complete.json"]


def test_the_plan_warns_when_a_query_matches_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.csv"
    argv = ["export", "training-records", "--fake", "--number", "PN-10*", "--details",
            "--out", str(out), "--plan", "-q"]
    assert main(argv) == 0  # a plan exits 0: it only says what the run would do
    captured = capsys.readouterr()
    assert "plan: export training-records+details" in captured.out
    assert ("warning: no items match --number 'PN-10*': the export would write nothing and "
            "exit 5") in captured.err
    assert files(tmp_path) == []
    assert main([*argv, "--allow-empty"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_items_that_match_but_have_no_records_are_a_complete_export(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bom.jsonl"
    # Resistors are not assemblies: the query matches items, which have no BOM lines.
    argv = ["export", "bom", "--fake", "--category", "Resistors", "--out", str(out), "-q"]
    assert main(argv) == 0
    assert out.read_bytes() == b""
    assert files(tmp_path) == ["bom.jsonl", "bom.jsonl.complete.json"]
    assert main(argv[:-1]) == 0
    assert "complete already" in capsys.readouterr().out
    assert main([*argv[:-1], "--fresh"]) == 0  # exported again, in place: nothing to keep
    again = capsys.readouterr().out
    assert "complete already" not in again
    assert "records     0 written by this run" in again
    assert files(tmp_path) == ["bom.jsonl", "bom.jsonl.complete.json"]
