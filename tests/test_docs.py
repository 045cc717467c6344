"""The docs in the repository are self-contained: the API contract is here, and no link
in the README or docs/ leads outside the repository or to a file that is missing.
(The site itself is built with ``mkdocs build --strict`` by ``make docs``.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_API = REPO.parent / "shared" / "API.md"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def markdown_files() -> list[Path]:
    return [REPO / "README.md", REPO / "CHANGELOG.md", REPO / "CONTRIBUTING.md",
            *sorted((REPO / "docs").glob("*.md"))]


@pytest.mark.skipif(not SHARED_API.is_file(), reason="no ../shared/API.md beside the clone")
def test_the_contract_in_docs_is_the_shared_one() -> None:
    assert (REPO / "docs" / "API.md").read_text(encoding="utf-8") == \
        SHARED_API.read_text(encoding="utf-8"), "copy ../shared/API.md to docs/API.md"


def test_links_stay_inside_the_repository_and_resolve() -> None:
    checked = 0
    for path in markdown_files():
        text = path.read_text(encoding="utf-8")
        assert "../shared" not in text, f"{path.name} points at ../shared"
        for target in LINK.findall(text):
            if re.match(r"^[a-z]+:", target):  # http(s):, mailto: ...
                continue
            resolved = (path.parent / target).resolve()
            assert resolved.is_relative_to(REPO), f"{path.name}: {target} leaves the repo"
            assert resolved.exists(), f"{path.name}: {target} does not exist"
            checked += 1
    assert checked >= 10


def test_snippets_in_the_docs_name_existing_files() -> None:
    for path in sorted((REPO / "docs").glob("*.md")):
        for target in re.findall(r'^--8<-- "([^":]+)', path.read_text(encoding="utf-8"),
                                 re.MULTILINE):
            assert (REPO / target).is_file(), f"{path.name}: {target}"


def test_the_reference_shows_every_public_name() -> None:
    """docs/reference.md has a ``::: arena_async.<name>`` line for every public name (the
    errors come with their module's entry)."""
    import arena_async
    import arena_async.errors

    reference = (REPO / "docs" / "reference.md").read_text(encoding="utf-8")
    shown = set(re.findall(r"^::: arena_async\.(\w+)\s*$", reference, re.MULTILINE))
    errors = set(vars(arena_async.errors))
    missing = [name for name in arena_async.__all__
               if name not in shown | errors and not name.startswith("_")]
    assert "errors" in shown
    assert missing == [], f"add '::: arena_async.<name>' lines to docs/reference.md: {missing}"
