"""The Guarantees page (docs/guarantees.md) names tests that exist: a renamed test cannot
leave a stale claim."""

from __future__ import annotations

import re

from tests.conftest import REPO


def test_every_named_test_exists() -> None:
    page = (REPO / "docs" / "guarantees.md").read_text()
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", page)
    assert len(named) >= 30
    missing = []
    for path, name in named:
        source = (REPO / path).read_text()
        if not re.search(rf"^(async )?def {name}\(", source, re.MULTILINE):
            missing.append(f"{path}::{name}")
    assert missing == []
