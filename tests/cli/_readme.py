"""The README's CLI section, for the tests that keep it true."""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def cli_section() -> str:
    """The text of README's "## The command line" section."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## The command line\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]
