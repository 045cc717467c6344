"""ETL job: every listed item's ticket references, item references and training records
into a SQLite database, resumable.

The pattern:

- one ``ArenaClient`` for the whole job, ``client.bulk`` over the item GUIDs (at most
  ``--concurrency`` items in flight; the three listings of an item side by side in a
  ``TaskGroup``);
- one transaction per item: its rows and its ``done`` mark are committed together, so a
  job stopped anywhere (Ctrl-C, a crash, a spent quota) leaves every item either complete
  or absent, and the next run skips the complete ones without a request;
- a spent Arena quota (bare, or inside the TaskGroup's ``ExceptionGroup``) stops the job
  with exit status 3: run it again after the reset. Other failures are counted, reported
  and retried by the next run;
- several runs at once, and other programs of the same OS user on the machine, share one
  Arena session and one quota ledger through the library's default share (nothing to
  configure; ``ARENA_SHARE=redis://...`` for jobs on several machines, ``none`` for none).

Configuration from the environment: ``ARENA_EMAIL``, ``ARENA_PASSWORD``,
``ARENA_WORKSPACE_ID``, ``ARENA_BASE_URL`` (default: the US region), ``ARENA_SHARE`` (read
by the library); the quota reserve from ``ARENA_QUOTA_RESERVE`` (default 100). Against
the built-in fake::

    arena-async fake-server --no-akana --items 200 --write-items guids.txt  # prints ARENA_*
    python examples/etl_sqlite.py guids.txt arena.db                          # after exporting
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
from collections.abc import Iterable, Mapping
from contextlib import closing
from pathlib import Path

import attrs

from arena_async import (
    ArenaClient,
    Failure,
    ItemReference,
    ItemTicketReference,
    QuotaExhaustedError,
    QuotaPolicy,
    Stats,
    TrainingRecord,
    to_json,
)

DESCRIPTION = "Load items' ticket references, item references and training records into SQLite."

__all__ = ["Summary", "client_from_env", "main", "open_db", "run_etl"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS ticket_refs (
    item_guid TEXT NOT NULL, guid TEXT NOT NULL, ticket_guid TEXT, ticket_number TEXT,
    PRIMARY KEY (item_guid, guid));
CREATE TABLE IF NOT EXISTS item_refs (
    item_guid TEXT NOT NULL, guid TEXT NOT NULL, other_item_guid TEXT, note TEXT,
    PRIMARY KEY (item_guid, guid));
CREATE TABLE IF NOT EXISTS training_records (
    item_guid TEXT NOT NULL, guid TEXT NOT NULL, plan_guid TEXT, plan_number TEXT,
    json TEXT NOT NULL,
    PRIMARY KEY (item_guid, guid));
CREATE TABLE IF NOT EXISTS done (item_guid TEXT PRIMARY KEY);
"""

Rows = tuple[list[ItemTicketReference], list[ItemReference], list[TrainingRecord]]


@attrs.define
class Summary:
    """What one run did."""

    items_done: int = 0
    items_skipped: int = 0  # complete from an earlier run
    failures: dict[str, str] = attrs.field(factory=dict)  # item GUID -> error
    quota_spent: QuotaExhaustedError | None = None


def open_db(path: str | Path) -> sqlite3.Connection:
    """The database, with its tables."""
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    return db


def client_from_env(environ: Mapping[str, str] | None = None) -> ArenaClient:
    """An ArenaClient configured from ``ARENA_*`` environment variables."""
    env = os.environ if environ is None else environ
    return ArenaClient(
        email=env["ARENA_EMAIL"],
        password=env["ARENA_PASSWORD"],
        workspace_id=int(env["ARENA_WORKSPACE_ID"]),
        base_url=env.get("ARENA_BASE_URL", "https://api.arenasolutions.com/v1"),
        quota=QuotaPolicy(reserve=int(env.get("ARENA_QUOTA_RESERVE", "100"))),
    )


def _leaves(error: Exception) -> list[Exception]:
    """The errors themselves: ``error``, or those an ExceptionGroup (a TaskGroup's) holds."""
    if isinstance(error, ExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


def _describe(error: Exception) -> str:
    return "; ".join(f"{type(e).__name__}: {e}" for e in _leaves(error))


def _save(db: sqlite3.Connection, guid: str, rows: Rows) -> None:
    tickets, refs, records = rows
    with db:  # one transaction: the item's rows and its done mark, or nothing
        db.executemany("INSERT OR REPLACE INTO ticket_refs VALUES (?, ?, ?, ?)",
                       [(guid, t.guid, t.ticket.guid, t.ticket.number) for t in tickets])
        db.executemany("INSERT OR REPLACE INTO item_refs VALUES (?, ?, ?, ?)",
                       [(guid, r.guid, r.item.guid, r.note) for r in refs])
        db.executemany("INSERT OR REPLACE INTO training_records VALUES (?, ?, ?, ?, ?)",
                       [(guid, r.guid, r.training_plan.guid, r.training_plan.number,
                         to_json(r)) for r in records])
        db.execute("INSERT OR REPLACE INTO done VALUES (?)", (guid,))


async def run_etl(arena: ArenaClient, guids: Iterable[str], db: sqlite3.Connection,
                  *, concurrency: int = 8) -> Summary:
    """Load every item of ``guids`` not yet done into ``db``."""
    summary = Summary()
    done = {row[0] for row in db.execute("SELECT item_guid FROM done")}

    def todo() -> Iterable[str]:
        for guid in guids:
            if guid in done:
                summary.items_skipped += 1
            else:
                yield guid

    async def fetch(guid: str) -> Rows:
        async with asyncio.TaskGroup() as tg:
            tickets = tg.create_task(arena.items.tickets.list(guid))
            refs = tg.create_task(arena.items.references.list(guid))
            records = tg.create_task(arena.items.training_records.list(guid))
        return tickets.result(), refs.result(), records.result()

    async with arena.bulk(fetch, todo(), concurrency=concurrency) as run:
        async for outcome in run:
            if isinstance(outcome, Failure):
                errors = _leaves(outcome.error)
                spent = [e for e in errors if isinstance(e, QuotaExhaustedError)]
                if spent:
                    summary.quota_spent = spent[0]  # leaving the loop cancels the rest
                    break
                summary.failures[outcome.key] = _describe(outcome.error)
                continue
            _save(db, outcome.key, outcome.value)
            summary.items_done += 1
    return summary


def main(argv: list[str] | None = None) -> int:
    """Command line: ``etl_sqlite.py GUIDS_FILE DATABASE [--concurrency N]``."""
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("guids", type=Path, help="a file of item GUIDs, one a line")
    parser.add_argument("database", type=Path, help="the SQLite file (created if missing)")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    guids = [line.strip() for line in args.guids.read_text(encoding="utf-8").splitlines()
             if line.strip()]

    async def job() -> tuple[Summary, Stats]:
        with closing(open_db(args.database)) as db:
            async with client_from_env() as arena:
                summary = await run_etl(arena, guids, db, concurrency=args.concurrency)
                return summary, arena.stats

    summary, stats = asyncio.run(job())
    print(f"{summary.items_done} items loaded, {summary.items_skipped} already done, "
          f"{len(summary.failures)} failed; {stats.requests} requests")
    for guid, error in sorted(summary.failures.items()):
        print(f"failed: {guid}: {error}", file=sys.stderr)
    if summary.quota_spent is not None:
        print(f"Arena quota spent; run again after {summary.quota_spent.resets_at}",
              file=sys.stderr)
        return 3
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
