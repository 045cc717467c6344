"""Helpers of the CLI tests: the fake's truth in export form, a fake server on a thread."""

from __future__ import annotations

import asyncio
import csv
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from arena_async.testing import FakeArena

T = TypeVar("T")


def truth(kind: str, *, items: int, seed: int = 1) -> list[dict[str, Any]]:
    """What ``export <kind> --fake --fake-items items --fake-seed seed`` must write (JSONL
    objects), in item order."""
    fake = FakeArena.seeded(items=items, seed=seed)
    rows: list[dict[str, Any]] = []
    for guid in fake.item_guids:
        if kind == "ticket-refs":
            rows += [{"item_guid": guid, **t} for t in fake.ticket_refs(guid)]
        elif kind == "references":
            rows += [{"item_guid": guid, "guid": r["guid"],
                      "item": {"guid": r["item"]["guid"], "url": None}, "note": r["note"]}
                     for r in fake.references(guid)]
        else:
            rows += [{"item_guid": guid, "guid": r["guid"], "training_plan": r["trainingplan"]}
                     for r in fake.training_records(guid)]
    return rows


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def canonical(rows: list[dict[str, Any]]) -> list[str]:
    """Rows as sorted JSON strings: equal lists mean no duplicate and nothing missing."""
    return sorted(json.dumps(r, sort_keys=True) for r in rows)


class ThreadedLoop:
    """An event loop on a daemon thread, to serve fakes while a test calls ``main()``
    (which runs its own ``asyncio.run``) on the main thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@contextmanager
def served(*fakes: Any) -> Iterator[ThreadedLoop]:
    """Start the fakes on a thread for the duration of the block."""
    loop = ThreadedLoop()
    started: list[Any] = []
    try:
        for fake in fakes:
            loop.run(fake.start())
            started.append(fake)
        yield loop
    finally:
        for fake in reversed(started):
            loop.run(fake.close())
        loop.close()


#: Informational lines an export prints on stderr before and while it runs.
NOTE_PREFIXES = ("plan: ", "quota left after the first answer", "resuming ", "finding the ",
                 "warning: the quota left", "progress: ", "exporting again into ")


def problems(err: str) -> list[str]:
    """stderr without the export's informational lines (its plan, resuming ...): what
    went wrong, which must be one line."""
    return [line for line in err.splitlines() if not line.startswith(NOTE_PREFIXES)]


def point_at(env: Any, fake: FakeArena) -> None:
    """The ``ARENA_*`` variables of a CLI run against ``fake`` (``env``: a MonkeyPatch)."""
    env.setenv("ARENA_BASE_URL", fake.url)
    env.setenv("ARENA_EMAIL", fake.email)
    env.setenv("ARENA_PASSWORD", fake.password)


def items_file(tmp_path: Path, fake: FakeArena) -> Path:
    """A file of every item GUID of ``fake``, one a line."""
    path = tmp_path / "items.txt"
    path.write_text("\n".join(fake.item_guids))
    return path


def banner(proc: Any) -> list[str]:
    """The lines ``arena-async fake-server`` (a ``subprocess.Popen`` in text mode) prints
    before it serves, up to its ``Serving ...`` line."""
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("Serving"):
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        lines.append(line.strip())
    return lines
