"""Users' code type-checks: the Python blocks of the README and of the site's pages, and
examples/, under mypy --strict and pyright, and the narrowing that a bulk loop relies on.

The ``python`` blocks of a file share one namespace (see tests/_doc_blocks.py), so each
file's are checked as one module, after declarations of the names the documentation says
stand for your GUIDs; the ``pytest`` blocks as test modules. ``skip`` blocks are excerpts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ._doc_blocks import README, blocks, pages

REPO = Path(__file__).resolve().parents[1]
PYRIGHT = shutil.which("pyright", path=str(Path(sys.executable).parent))

PREAMBLE = """\
item_guid: str = "ITEM0000000000000001"
other_item_guid: str = "ITEM0000000000000002"
item_guids: list[str] = [item_guid, other_item_guid]
"""

NARROWING = """\
from typing import assert_type

from arena_async import Failure, ItemTicketReference, Outcome, Success


def handle(outcome: Success[str, list[ItemTicketReference]] | Failure[str]) -> None:
    if isinstance(outcome, Failure):
        assert_type(outcome.error, Exception)
        assert_type(outcome.value, None)
    else:
        assert_type(outcome.value, list[ItemTicketReference])
        assert_type(outcome.error, None)
    if outcome.ok is False:
        assert_type(outcome.error, Exception)
        return
    assert_type(outcome.value, list[ItemTicketReference])


def matched(outcome: Success[str, int] | Failure[str]) -> int:
    match outcome:
        case Success(_, value):
            assert_type(value, int)
            return value
        case Failure(error=error):
            assert_type(error, Exception)
            return -1


def widened(outcome: Success[str, int] | Failure[str]) -> Outcome[str, int]:
    return outcome  # both kinds are Outcomes (the type variables are covariant)
"""

NARROWING_MYPY = """\
from typing import assert_type

from arena_async import Failure, Success


def by_ok(outcome: Success[str, int] | Failure[str]) -> None:
    if outcome.ok:
        assert_type(outcome.value, int)
    else:
        assert_type(outcome.error, Exception)
"""


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The files to check, written to a temporary directory."""
    root = tmp_path_factory.mktemp("typing")
    files = {"narrowing.py": NARROWING}
    tests = 0
    for path in [README, *pages()]:
        python = blocks(path, "python")
        run = [b.code for b in python if b.runs]
        if run:
            stem = path.stem.lower().replace("-", "_")
            files[f"{stem}_blocks.py"] = PREAMBLE + "\n\n".join(run)
        for block in python:
            if "pytest" in block.marks:
                files[f"test_{path.stem.lower()}_block_{tests}.py"] = block.code
                tests += 1
    assert "readme_blocks.py" in files
    assert len(files) >= 8
    assert tests
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    examples = sorted((REPO / "examples").glob("*.py"))
    assert len(examples) >= 4
    for path in examples:
        shutil.copy(path, root / path.name)
    return sorted(root.glob("*.py"))


def test_mypy_strict(sources: list[Path]) -> None:
    (sources[0].parent / "narrowing_mypy.py").write_text(NARROWING_MYPY, encoding="utf-8")
    # Run from the repo so that mypy's cache there (make typecheck's) is reused.
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--python-version", "3.11",
         "--no-error-summary", *map(str, sources), str(sources[0].parent / "narrowing_mypy.py")],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(PYRIGHT is None, reason="pyright is not installed (the dev extra has it)")
def test_pyright(sources: list[Path]) -> None:
    assert PYRIGHT is not None
    proc = subprocess.run(
        [PYRIGHT, "--outputjson", "--pythonpath", sys.executable, *map(str, sources)],
        cwd=sources[0].parent, capture_output=True, text=True, timeout=300, check=False)
    report = json.loads(proc.stdout)
    problems = [f"{Path(d['file']).name}:{d['range']['start']['line'] + 1}: {d['message']}"
                for d in report["generalDiagnostics"] if d["severity"] == "error"]
    assert not problems, "\n".join(problems)
    assert report["summary"]["filesAnalyzed"] == len(sources)
