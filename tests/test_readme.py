"""Every Python block of README.md runs, against the fakes.

Conventions (also stated at the end of the README):

- ```` ```python ```` blocks run in order, in one shared namespace, on the main thread
  (each calls ``asyncio.run`` itself). ``FakeArena`` and ``FakeAkana`` serve from a
  background thread; the ``ARENA_*`` / ``AKANA_*`` environment variables point at them,
  and ``item_guid``, ``other_item_guid`` and ``item_guids`` are predefined GUIDs of the
  fake's items. The working directory is a temporary one.
- ```` ```python pytest ```` blocks are written to a test file and run with pytest in a
  subprocess (as a user's test suite would run them, fixtures from the plugin).
- ```` ```python skip ```` blocks (excerpts) are only compiled.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from arena_async.testing import FakeArena
from arena_async.testing._fake_akana import FakeAkana

from .cli._helpers import served

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(?!`)([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def blocks(kind: str | None = None) -> list[tuple[int, list[str], str]]:
    """(line number, info words, code) of the README's fenced blocks."""
    text = README.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 2
        words = match.group(1).split()
        found.append((line, words, match.group(2)))
    if kind is None:
        return found
    return [b for b in found if b[1] and b[1][0] == kind]


def _namespace(fake: FakeArena) -> dict[str, Any]:
    guids = fake.item_guids
    item_guid = next(g for g in guids if fake.ticket_refs(g) and fake.training_records(g)
                     and fake.references(g))
    linked = {r["item"]["guid"] for r in fake.references(item_guid)}
    other = next(g for g in guids if g != item_guid and g not in linked)
    return {"__name__": "readme", "item_guid": item_guid, "other_item_guid": other,
            "item_guids": guids[:20]}


def test_the_setup_section_and_the_guarantees_heading() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text
    assert "make test" in text
    sh = [code for _, words, code in blocks("sh")]
    assert sh[0].splitlines()[0].startswith("make demo")
    assert sh[0].splitlines()[1].startswith("make test")
    assert "\n## Guarantees\n" in text


def test_every_python_block_compiles() -> None:
    python = blocks("python")
    assert len(python) >= 8
    for line, _, code in python:
        compile(code, f"README.md:{line}", "exec")


def test_python_blocks_run_against_the_fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    arena = FakeArena.seeded(items=50, seed=1)
    akana = FakeAkana.seeded(tickets=120, seed=1)
    monkeypatch.chdir(tmp_path)
    ran = 0
    with served(arena, akana):
        for name, value in {
            "ARENA_BASE_URL": arena.url, "ARENA_EMAIL": arena.email,
            "ARENA_PASSWORD": arena.password, "ARENA_WORKSPACE_ID": str(arena.workspace_id),
            "ARENA_CLIENT_ID": arena.client_id, "ARENA_CLIENT_SECRET": arena.client_secret,
            "ARENA_TOKEN_URL": arena.token_url,
            "AKANA_BASE_URL": akana.url, "AKANA_EMAIL": akana.email,
            "AKANA_PASSWORD": akana.password,
        }.items():
            monkeypatch.setenv(name, value)
        namespace = _namespace(arena)
        for line, words, code in blocks("python"):
            if "skip" in words or "pytest" in words:
                continue
            try:
                exec(compile(code, f"README.md:{line}", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"the README block at line {line} failed: {exc!r}") \
                    from exc
            ran += 1
        assert ran >= 7
        # What the blocks did, seen from the fakes.
        assert arena.stats.logins >= 3
        assert akana.stats.logins >= 1
    out = capsys.readouterr().out
    assert "ticket" in out
    assert "fetched 2, stopped with" in out
    assert "survived 3 faults" in out
    assert "as a machine user; logins: 1" in out
    assert arena.stats.tokens_issued >= 1
    assert "no such item: 400 3011" in out
    exported = (tmp_path / "ticket-refs.jsonl").read_text().splitlines()
    assert len(exported) == sum(len(arena.ticket_refs(g)) for g in arena.item_guids[:20])


def test_pytest_blocks_pass_under_pytest(tmp_path: Path) -> None:
    python = blocks("python")
    tests = [code for _, words, code in python if "pytest" in words]
    assert tests
    for number, code in enumerate(tests):
        (tmp_path / f"test_readme_block_{number}.py").write_text(code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
