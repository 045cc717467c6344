"""The command line's page of the site (docs/cli.md), for the tests that keep it true."""

from __future__ import annotations

from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def cli_section() -> str:
    """The text of docs/cli.md, the command line's guide."""
    return PAGE.read_text(encoding="utf-8")
