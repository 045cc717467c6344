"""The README stays short and true: its setup commands are there, and every Python block
runs against the fakes (conventions: tests/_doc_blocks.py; the guides' blocks:
tests/test_guides.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._doc_blocks import README, blocks, fakes, namespace, run_blocks


def test_the_setup_commands_for_contributors() -> None:
    text = README.read_text(encoding="utf-8")
    sh = [block.code for block in blocks(README, "sh")]
    setup = [code for code in sh if code.startswith("make demo")]
    assert setup, "no ```sh block starting with make demo"
    assert setup[0].splitlines()[1].startswith("make test")
    assert "make test" in text
    # Short: the rest lives on the site.
    assert len(text.splitlines()) <= 250


def test_every_python_block_compiles() -> None:
    python = blocks(README, "python")
    assert len(python) >= 2
    for block in python:
        block.compile()


def test_python_blocks_run_against_the_fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with fakes(monkeypatch) as (arena, akana):
        ran = run_blocks(README, namespace(arena, "readme"))
        assert ran >= 2
        assert arena.stats.logins >= 1
        assert akana.stats.logins >= 1
    out = capsys.readouterr().out
    assert "ticket" in out
    assert "PN-00001" in out  # the search by number found items
