"""The public API is fully typed for users' type checkers, and ``help()`` shows it.

``pyright --verifytypes arena_async --ignoreexternal`` must score 100 %: every public
symbol's type known without inference a checker could do differently (public attributes
declared, error classes and functions fully typed). pyright is in the dev extra; the test
skips, saying so, only when it cannot run here.
"""

from __future__ import annotations

import inspect
import json
import os
import pydoc
import shutil
import subprocess
import sys
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from arena_async import AkanaClient, ArenaClient
from arena_async.akana.tickets import Tickets
from arena_async.arena.items import Items, ItemTrainingRecords

REPO = Path(__file__).resolve().parents[1]


def pyright() -> str | None:
    here = Path(sys.executable).parent
    return shutil.which("pyright", path=str(here)) or shutil.which("pyright")


def test_verifytypes_scores_100_percent() -> None:
    exe = pyright()
    if exe is None:
        pytest.skip("pyright is not installed (pip install -e '.[dev]')")
    try:
        # pyright asks the first `python` on PATH for the import paths: this venv's.
        env = {**os.environ,
               "PATH": os.pathsep.join([str(Path(sys.executable).parent),
                                        os.environ.get("PATH", "")])}
        run = subprocess.run(
            [exe, "--verifytypes", "arena_async", "--ignoreexternal", "--outputjson"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"pyright could not run here: {exc}")
    try:
        report: dict[str, Any] = json.loads(run.stdout)
    except json.JSONDecodeError:
        pytest.skip(f"pyright could not run here: {(run.stderr or run.stdout)[:500]}")
    completeness = report["typeCompleteness"]
    problems = [
        f"{symbol['name']}: {diag['message'].splitlines()[0]}"
        for symbol in completeness["symbols"]
        for diag in symbol["diagnostics"] if diag["severity"] == "error"
    ]
    assert completeness["packageName"] == "arena_async"
    assert completeness["exportedSymbolCounts"]["withKnownType"] > 500  # it did look
    assert problems == []
    assert completeness["completenessScore"] == 1.0


def render(thing: object) -> str:
    return pydoc.render_doc(thing, renderer=pydoc.plaintext)


def test_help_shows_the_resources() -> None:
    arena = render(ArenaClient)
    for name in ("arena.items", "arena.items.tickets", "arena.items.references",
                 "arena.items.training_records", "trace_configs"):
        assert name in arena, name
    items = render(Items)
    for name in ("tickets", "references", "training_records", "guids_for", "ItemTickets",
                 "ItemReferences", "ItemTrainingRecords"):
        assert name in items, name
    akana = render(AkanaClient)
    assert "akana.tickets" in akana
    assert "trace_configs" in akana
    # The public attributes are declared on the class, typed.
    assert get_type_hints(ArenaClient)["items"] is Items
    assert get_type_hints(AkanaClient)["tickets"] is Tickets
    assert get_type_hints(Items)["training_records"] is ItemTrainingRecords


# -- pages() / iter() / list(): one shape across Arena and Akana ----------------------

LISTINGS = [
    (ItemTrainingRecords.pages, ItemTrainingRecords.iter, ItemTrainingRecords.list),
    (Items.pages, Items.iter, Items.list),
    (Tickets.pages, Tickets.iter, Tickets.list),
]


@pytest.mark.parametrize(("pages", "iter_", "list_"), LISTINGS,
                         ids=["training_records", "items", "tickets"])
def test_pages_iter_and_list_take_the_same_arguments(pages: Any, iter_: Any,
                                                      list_: Any) -> None:
    signatures = [inspect.signature(f) for f in (pages, iter_, list_)]
    shapes = [[(p.name, p.kind, p.default) for p in s.parameters.values()]
              for s in signatures]
    assert shapes[0] == shapes[1] == shapes[2]
    params = signatures[0].parameters
    # max_items and deadline are keyword-only everywhere.
    assert params["max_items"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["deadline"].kind is inspect.Parameter.KEYWORD_ONLY


@pytest.mark.parametrize(("pages", "iter_", "list_"), LISTINGS,
                         ids=["training_records", "items", "tickets"])
def test_pages_and_iter_are_both_async_generators(pages: Any, iter_: Any,
                                                  list_: Any) -> None:
    for method in (pages, iter_):
        hint = get_type_hints(method)["return"]
        assert getattr(hint, "__origin__", None) is AsyncGenerator, (method, hint)
    assert getattr(get_type_hints(list_)["return"], "__origin__", None) is list
