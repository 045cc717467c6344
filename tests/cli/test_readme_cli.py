"""The command line guide (docs/cli.md) stays true: its ``--fake`` commands run, and every
option it names exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from arena_async.__main__ import main

from ._readme import cli_section

COMMANDS = [["demo"], ["fake-server"], ["export", "items"], ["export", "ticket-refs"],
            ["export", "references"], ["export", "training-records"],
            ["export", "akana-tickets"]]


def _sh_lines() -> list[str]:
    section = cli_section()
    block = re.search(r"^```sh\n(.*?)^```", section, re.M | re.S)
    assert block
    text = block.group(1).replace("\\\n", " ")
    return [line.split(" #")[0].strip() for line in text.splitlines()
            if line.startswith("arena-async ")]


def test_the_fake_commands_of_the_cli_section_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    fake = [line for line in _sh_lines() if " --fake " in line]
    assert len(fake) >= 2
    for line in fake:
        argv = shlex.split(line)[1:]
        assert main([*argv, "--fake-items", "60", "-q"]) == 0, line
    out = capsys.readouterr().out
    assert re.search(r"^requests\s+\d", out, re.M)  # the --plan line ran
    assert (tmp_path / "fake-items.csv").read_text().startswith("guid,number,name")


def test_every_option_the_cli_section_names_exists(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    helps = ""
    for command in COMMANDS:
        assert main([*command, "--help"]) == 0
        helps += capsys.readouterr().out
    named = set(re.findall(r"(?<![\w-])--(?:\[no-\])?([a-z][a-z-]*[a-z])", cli_section()))
    assert {"items", "number", "category", "lifecycle-stage", "details", "plan",
            "share"} <= named
    for option in sorted(named):
        assert re.search(rf"--(no-)?{option}\b", helps), option
    for words in ("<out>.failed.jsonl", "ARENA_SHARE", "ARENA_CLIENT_ID", "`4` finished",
                  "`143`"):
        assert words in cli_section(), words
