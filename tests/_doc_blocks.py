"""The fenced code blocks of the documentation (README.md and the site's pages in docs/),
and how the tests run them.

Conventions (CONTRIBUTING.md, "Tests"):

- ```` ```python ```` blocks run in order, in one namespace per file, on the main thread
  (each calls ``asyncio.run`` itself). ``FakeArena`` and ``FakeAkana`` serve from a
  background thread; the ``ARENA_*`` / ``AKANA_*`` environment variables point at them,
  and ``item_guid``, ``other_item_guid`` and ``item_guids`` are GUIDs of the fake's items.
- ```` ```python pytest ```` (README) or ```` ```python {.pytest} ```` (site) blocks are
  written to test files and run with pytest in a subprocess.
- ```` ```python skip ```` (README) or ```` ```python {.skip} ```` (site) blocks are
  excerpts: only compiled, top-level ``await`` allowed. So is a block that holds only a
  ``--8<--`` include (a file of examples/, run by tests/test_examples.py).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from arena_async.testing import FakeArena
from arena_async.testing._fake_akana import FakeAkana

from .cli._helpers import served

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
FENCE = re.compile(r"^```(?!`)([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
MARKS = ("skip", "pytest")
#: Pages whose blocks are not examples: the shared contract (a byte copy, signatures).
NOT_RUN = ("API.md",)


@dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its marks (``skip``, ``pytest``),
    the words of its info string as written, and its code."""

    path: Path
    line: int
    lang: str
    marks: frozenset[str]
    words: tuple[str, ...]
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"

    @property
    def include(self) -> bool:
        """A block that only includes a file (pymdownx.snippets)."""
        return self.code.lstrip().startswith("--8<--")

    @property
    def runs(self) -> bool:
        return self.lang == "python" and not self.marks and not self.include

    def compile(self) -> Any:
        return compile(self.code, self.where, "exec",
                       flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if self.marks else 0)


def blocks(path: Path, lang: str | None = None) -> list[Block]:
    """The fenced blocks of a Markdown file, in order (``lang``: only those)."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        words = tuple(match.group(1).split())
        marks = frozenset(w.strip("{}").lstrip(".") for w in words[1:]) & set(MARKS)
        block = Block(path, text.count("\n", 0, match.start()) + 2,
                      words[0] if words else "", marks, words, match.group(2))
        if lang is None or block.lang == lang:
            found.append(block)
    return found


def pages() -> list[Path]:
    """The site's pages whose blocks are examples (every docs/*.md but the contract)."""
    return [p for p in sorted(DOCS.glob("*.md")) if p.name not in NOT_RUN]


def fake_env(arena: FakeArena, akana: FakeAkana) -> dict[str, str]:
    """The environment variables the examples read, pointing at the fakes."""
    return {
        "ARENA_BASE_URL": arena.url, "ARENA_EMAIL": arena.email,
        "ARENA_PASSWORD": arena.password, "ARENA_WORKSPACE_ID": str(arena.workspace_id),
        "ARENA_CLIENT_ID": arena.client_id, "ARENA_CLIENT_SECRET": arena.client_secret,
        "ARENA_TOKEN_URL": arena.token_url,
        "AKANA_BASE_URL": akana.url, "AKANA_EMAIL": akana.email,
        "AKANA_PASSWORD": akana.password,
    }


def namespace(fake: FakeArena, name: str) -> dict[str, Any]:
    """A fresh namespace with the GUIDs the examples say stand for yours."""
    guids = fake.item_guids
    item_guid = next(g for g in guids if fake.ticket_refs(g) and fake.training_records(g)
                     and fake.references(g))
    linked = {r["item"]["guid"] for r in fake.references(item_guid)}
    other = next(g for g in guids if g != item_guid and g not in linked)
    return {"__name__": name, "item_guid": item_guid, "other_item_guid": other,
            "item_guids": guids[:20]}


@contextmanager
def fakes(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeArena, FakeAkana]]:
    """A fresh FakeArena and FakeAkana served from a thread, the environment at them."""
    arena = FakeArena.seeded(items=50, seed=1)
    akana = FakeAkana.seeded(tickets=120, seed=1)
    with ExitStack() as stack:
        stack.enter_context(served(arena, akana))
        for key, value in fake_env(arena, akana).items():
            monkeypatch.setenv(key, value)
        yield arena, akana


def run_blocks(path: Path, namespace: dict[str, Any]) -> int:
    """Run the runnable Python blocks of ``path`` in ``namespace``; how many ran."""
    ran = 0
    for block in blocks(path, "python"):
        if not block.runs:
            continue
        try:
            exec(block.compile(), namespace)
        except Exception as exc:
            raise AssertionError(f"the block at {block.where} failed: {exc!r}") from exc
        ran += 1
    return ran


def run_pytest_blocks(paths: list[Path], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Write the ``pytest`` blocks of ``paths`` to test files and run pytest on them."""
    number = 0
    for path in paths:
        for block in blocks(path, "python"):
            if "pytest" in block.marks:
                stem = re.sub(r"\W", "_", path.stem.lower())
                (tmp_path / f"test_{stem}_block_{number}.py").write_text(block.code,
                                                                       encoding="utf-8")
                number += 1
    assert number, f"no pytest block in {[p.name for p in paths]}"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=180, check=False)
