"""Installing arena_async into a project that has pytest but not pytest-asyncio.

The pytest11 entry point loads ``arena_async.testing.plugin`` into every pytest run of
such a project; it must not break those runs, and its fixtures must still serve (from a
background thread). A real venv: this project (built, not editable) and its runtime
dependencies (the versions installed here, ``--no-deps``, from uv's or pip's cache) plus
pytest, nothing else.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]

USER_TESTS = '''
import asyncio

import pytest

from arena_async import AkanaClient, ArenaClient


def test_an_unrelated_test():
    assert sum([1, 2]) == 3


def test_pytest_asyncio_is_absent():
    with pytest.raises(ImportError):
        import pytest_asyncio  # noqa: F401


def test_fake_arena_from_a_sync_test(fake_arena):
    guid = fake_arena.item_guids[0]

    async def fetch():
        async with ArenaClient(email=fake_arena.email, password=fake_arena.password,
                               workspace_id=fake_arena.workspace_id,
                               base_url=fake_arena.url) as arena:
            return await arena.items.tickets.list(guid)

    refs = asyncio.run(fetch())
    assert [r.guid for r in refs] == [t["guid"] for t in fake_arena.ticket_refs(guid)]
    assert fake_arena.stats.logins == 1


def test_factory_returns_started_fakes(fake_arena_factory):
    fake = fake_arena_factory(items=3, quota_limit=7)
    assert len(fake.item_guids) == 3
    assert fake.url.startswith("http://127.0.0.1:")


def test_fake_akana_from_a_sync_test(fake_akana):
    async def fetch():
        async with AkanaClient(base_url=fake_akana.url, email=fake_akana.email,
                               password=fake_akana.password) as akana:
            return await akana.tickets.list(state="OPEN")

    tickets = asyncio.run(fetch())
    assert [t.ticket_id for t in tickets] == [
        t["TicketID"] for t in fake_akana.tickets if t["State"] == "OPEN"]
'''


def _closure(roots: list[str]) -> dict[str, str]:
    """name -> installed version of ``roots`` and everything they need here (markers
    evaluated for this interpreter, extras not followed)."""
    found: dict[str, str] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in found:
            continue
        found[key] = importlib.metadata.version(name)
        for spec in importlib.metadata.requires(name) or []:
            req = Requirement(spec)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return found


def _run(*cmd: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _uv() -> str | None:
    """uv beside this interpreter, in the project's venv or on PATH (make test-lowest's
    venv is uv's, without pip)."""
    for where in (Path(sys.executable).parent, REPO / ".venv" / "bin"):
        if (where / "uv").is_file():
            return str(where / "uv")
    return shutil.which("uv")


def test_plugin_in_a_venv_without_pytest_asyncio(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    try:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)],
                       check=True, capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot create a virtual environment here: {exc}")
    python = venv / "bin" / "python"

    deps = _closure(["arena_async", "pytest"])
    deps.pop("arena-async")
    assert "pytest-asyncio" not in deps
    pins = [f"{name}=={version}" for name, version in sorted(deps.items())]
    if (uv := _uv()) is not None:  # the fastest; uv's cache serves the wheels
        _run(uv, "pip", "install", "--quiet", "--python", str(python), "--no-deps",
             str(REPO), *pins)
    elif importlib.util.find_spec("pip") is not None:  # pip's cache serves them
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
        _run(*pip, "wheel", "--no-deps", "--wheel-dir", str(tmp_path / "dist"), str(REPO))
        wheel = next((tmp_path / "dist").glob("arena_async-*.whl"))
        _run(*pip, "--python", str(python), "install", "--no-deps", str(wheel), *pins)
    else:
        pytest.skip("neither pip nor uv is available to install into the venv")

    project = tmp_path / "project"
    project.mkdir()
    (project / "test_user.py").write_text(textwrap.dedent(USER_TESTS), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHON"))}
    proc = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-W", "error::pytest.PytestUnraisableExceptionWarning"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 passed" in proc.stdout, proc.stdout
