"""Issue 14 item 7: help without ``<bool>`` placeholders or cut option names, the exit
codes documented, and a double Ctrl-C on a terminal (bars drawn once, exit 130)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import sys
import time
from pathlib import Path

import pytest

from arena_async.__main__ import main
from arena_async.cli._checkpoint import Checkpoint, checkpoint_path

from ._helpers import canonical, read_jsonl, truth

REPO = Path(__file__).resolve().parents[2]
COMMANDS = [[], ["demo"], ["fake-server"], ["export"], ["export", "items"],
            ["export", "ticket-refs"], ["export", "references"],
            ["export", "training-records"], ["export", "akana-tickets"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_help_fits_80_columns_without_placeholders_or_cut_names(
        command: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main([*command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "<bool>" not in text
    assert "…" not in text
    assert "\x1b" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    for option in re.findall(r"--[a-z][a-z-]+", text):
        assert not option.endswith("-"), option
    if command == ["export", "training-records"]:
        for name in ("--checkpoint-interval", "--wait-for-quota", "--lifecycle-stage",
                     "--details", "--plan", "--share"):
            assert re.search(rf"^\s+(-\w, )?{name}\b", text, re.M), name


def test_the_exit_codes_are_documented(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for words in ("0 done", "1 error", "2 bad usage", "3 Arena quota exhausted",
                  "4 finished but some items failed for good",
                  "5 the query or filters matched nothing", "130 interrupted by Ctrl-C",
                  "143 by SIGTERM"):
        assert words in text, words


def visible_lines(text: str) -> list[str]:
    """What stays on screen, line by line: a line's content after its last erase
    (``ESC [2K``) or carriage return, which is how a live bar redraws itself."""
    lines = []
    for raw in text.split("\n"):
        line = raw.removesuffix("\r")
        for mark in ("\x1b[2K", "\r"):
            line = line.rpartition(mark)[2] if mark in line else line
        lines.append(line)
    return lines


def _read(fd: int, seconds: float, buffer: bytearray) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.02)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                return
            if not chunk:
                return
            buffer += chunk


@pytest.mark.parametrize("gap", [0.0, 0.03])
def test_a_double_ctrl_c_on_a_terminal_draws_the_bars_once_and_exits_130(
        tmp_path: Path, gap: float) -> None:
    out = tmp_path / "records.jsonl"
    args = ["export", "training-records", "--fake", "--fake-items", "120", "--page-size",
            "2", "--concurrency", "4", "--out", str(out)]
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.chdir(REPO)
        os.environ.update(COLUMNS="100", LINES="30", TERM="xterm-256color")
        os.execv(sys.executable, [sys.executable, "-m", "arena_async", *args,
                                  "--checkpoint-interval", "0", "--fake-latency", "0.005"])
    screen = bytearray()
    cp = checkpoint_path(out)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            _read(fd, 0.05, screen)
            try:
                if cp.exists() and Checkpoint.from_json(
                        json.loads(cp.read_text())).records > 20:
                    break
            except ValueError:  # pragma: no cover - read between replace calls
                pass
        os.kill(pid, signal.SIGINT)
        _read(fd, gap, screen)
        os.kill(pid, signal.SIGINT)
        _read(fd, 10, screen)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    text = screen.decode("utf-8", "replace")
    assert os.waitstatus_to_exitcode(status) == 130, text[-2000:]
    assert "Traceback" not in text
    finals = [line for line in visible_lines(text)
              if "training records" in line and "━" in line]
    assert len(finals) == 1, text[-3000:]  # the bar's last frame, once
    assert text.count("export training-records") == 1  # the summary, once
    assert "run the same command again to resume" in text

    assert main([*args, "-q"]) == 0
    assert canonical(read_jsonl(out)) == canonical(truth("training-records", items=120))


@pytest.mark.parametrize("command", ["items", "ticket-refs", "references", "bom",
                                     "training-records"])
def test_each_plan_help_names_only_the_command_s_own_options(
        command: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["export", command, "--help"]) == 0
    text = capsys.readouterr().out
    block = re.search(r"^  --plan (.*?)(?=^  -)", text, re.M | re.S)
    assert block is not None
    plan = " ".join(block.group(1).split())
    options = set(re.findall(r"^\s+(?:-\w, )?(--[a-z-]+)", text, re.M))
    for named in re.findall(r"--[a-z][a-z-]+", plan):
        assert named in options, (named, plan)
    assert ("--details" in plan) == (command == "training-records")
    if command == "items":  # a query's items are not listed by its plan
        assert "those needed to list the items of a query" not in plan
