"""The site's pages stand alone and their examples run: every ```python block of every
page in docs/ runs against fresh fakes, one namespace per page (conventions:
tests/_doc_blocks.py), its ``{.pytest}`` blocks pass under pytest, and no page sends the
reader to the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ._doc_blocks import (
    DOCS,
    REPO,
    blocks,
    fakes,
    namespace,
    pages,
    run_blocks,
    run_pytest_blocks,
)

#: What some pages' examples print, seen on stdout: proof that they did their job.
PRINTED = {
    "quota.md": ["fetched 2, stopped with"],
    "testing.md": ["survived 3 faults"],
    "credentials.md": ["as a machine user; logins: 1"],
    "errors.md": ["no such item: 400 3011"],
    "processes.md": ["shared: 1 login, 0 401s, 1 logout"],
    "caching.md": ["again from the cache: True; requests sent for it: 0"],
    "items.md": ["'NO-SUCH-NUMBER': None", "released electrical items", "BOM of PN-"],
}


def runnable_pages() -> list[Path]:
    return [p for p in pages() if any(b.runs for b in blocks(p, "python"))]


def pytest_pages() -> list[Path]:
    return [p for p in pages() if any("pytest" in b.marks for b in blocks(p, "python"))]


def test_the_pages_have_examples_to_run() -> None:
    names = {p.name for p in runnable_pages()}
    assert {"index.md", "etl.md", "items.md", "quota.md", "processes.md", "testing.md",
            "credentials.md", "errors.md", "logging.md"} <= names
    assert set(PRINTED) <= names


@pytest.mark.parametrize("page", runnable_pages(), ids=lambda p: p.name)
def test_the_python_blocks_of_a_page_run(page: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with fakes(monkeypatch) as (arena, akana):
        assert run_blocks(page, namespace(arena, page.stem)) >= 1
        out = capsys.readouterr().out
        for words in PRINTED.get(page.name, []):
            assert words in out, f"{page.name} printed no {words!r}:\n{out}"
        if page.name == "credentials.md":
            assert arena.stats.tokens_issued >= 1  # the OAuth token, not a login
        if page.name == "index.md":
            assert akana.stats.logins >= 1
        if page.name == "etl.md":
            exported = (tmp_path / "ticket-refs.jsonl").read_text().splitlines()
            assert len(exported) == sum(len(arena.ticket_refs(g))
                                        for g in arena.item_guids[:20])
            assert (tmp_path / "links.jsonl").read_text()


def test_the_pytest_blocks_pass_under_pytest(tmp_path: Path) -> None:
    chosen = pytest_pages()
    assert "testing.md" in {p.name for p in chosen}
    result = run_pytest_blocks(chosen, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout


def test_every_block_compiles_and_is_marked_the_sites_way() -> None:
    """A bare ```python skip is no code block to the site's Markdown (pymdownx.superfences):
    marks are written in braces, ```python {.skip}."""
    checked = 0
    for page in pages():
        for block in blocks(page):
            if block.lang != "python":
                continue
            for word in block.words[1:]:
                assert re.fullmatch(r"\{(\s*\.\w+)+\s*\}|\w+=\"[^\"]*\"", word), \
                    f"{block.where}: write ```python {{.{word}}}, not ```python {word}"
            if not block.include:
                block.compile()
            checked += 1
    assert checked >= 20


def test_no_page_sends_the_reader_to_the_readme() -> None:
    # The changelog tells history (a README section moved): not a place a reader is sent.
    # API-ADDITIONS.md is checked too: the contract page shows it to users.
    for page in pages():
        if page.name == "changelog.md":
            continue
        text = page.read_text(encoding="utf-8")
        assert "README" not in text, f"{page.name} refers to the README"


def test_every_page_is_on_the_site() -> None:
    """Each page is in the navigation or deliberately out of it (not_in_nav)."""
    config = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    nav = set(re.findall(r":\s*([\w.-]+\.md)\s*$", config, re.MULTILINE))
    hidden = set(re.findall(r"^\s+/([\w.-]+\.md)\s*$", config, re.MULTILINE))
    on_disk = {p.name for p in DOCS.glob("*.md")}
    assert on_disk == nav | hidden, (on_disk - nav - hidden, (nav | hidden) - on_disk)
