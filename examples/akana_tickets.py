"""Akana script: a report of the tickets in one state, per API, plus a JSON lines dump.

Streams the tickets (``akana.tickets.iter``: page by page, as they arrive), counts them per
API and per label, prints the oldest few, and writes every ticket as one JSON line
(``to_json``: snake_case fields, ISO 8601 UTC dates) when ``--jsonl`` is given.

Configuration from the environment: ``AKANA_BASE_URL`` (the portal root, e.g.
``https://portal.example.com``), ``AKANA_EMAIL``, ``AKANA_PASSWORD``. Against the
built-in fake::

    arena-async fake-server --no-arena           # prints the AKANA_* variables to export
    python examples/akana_tickets.py --state OPEN --jsonl open.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import attrs

from arena_async import AkanaClient, Ticket, to_json

DESCRIPTION = "Report the Akana tickets of one state, per API, and dump them as JSON lines."

__all__ = ["Report", "client_from_env", "main", "report"]


@attrs.define
class Report:
    """Tickets of one state: counts per API id and per label, and the oldest ones."""

    state: str | None
    total: int = 0
    per_api: Counter[str] = attrs.field(factory=Counter)
    per_label: Counter[str] = attrs.field(factory=Counter)
    oldest: list[Ticket] = attrs.field(factory=list)


def client_from_env(environ: Mapping[str, str] | None = None) -> AkanaClient:
    """An AkanaClient configured from ``AKANA_*`` environment variables."""
    env = os.environ if environ is None else environ
    return AkanaClient(base_url=env["AKANA_BASE_URL"], email=env["AKANA_EMAIL"],
                       password=env["AKANA_PASSWORD"])


async def report(akana: AkanaClient, state: str | None, *, jsonl: Path | None = None,
                 oldest: int = 3) -> Report:
    """Read every ticket in ``state`` (all when None) once, building the report."""
    result = Report(state=state)
    seen: list[Ticket] = []
    out = jsonl.open("w", encoding="utf-8") if jsonl is not None else None
    try:
        async for ticket in akana.tickets.iter(state=state, include_comments=False):
            result.total += 1
            result.per_api[ticket.api_id or "(no API)"] += 1
            result.per_label.update(ticket.labels)
            seen.append(ticket)
            if out is not None:
                out.write(to_json(ticket) + "\n")
    finally:
        if out is not None:
            out.close()
    never = datetime.max.replace(tzinfo=UTC)
    result.oldest = sorted(seen, key=lambda t: t.created or never)[:oldest]
    return result


def main(argv: list[str] | None = None) -> int:
    """Command line: ``akana_tickets.py [--state STATE] [--jsonl FILE]``."""
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--state", default="OPEN", help="OPEN, CLOSED, ... ('' for all)")
    parser.add_argument("--jsonl", type=Path, help="also write every ticket to this file")
    args = parser.parse_args(argv)

    async def job() -> Report:
        async with client_from_env() as akana:
            return await report(akana, args.state or None, jsonl=args.jsonl)

    result = asyncio.run(job())
    print(f"{result.total} tickets{f' in state {result.state}' if result.state else ''}")
    for api, count in result.per_api.most_common():
        print(f"  {count:5d}  {api}")
    for label, count in result.per_label.most_common(5):
        print(f"  label {label}: {count}")
    for ticket in result.oldest:
        created = ticket.created.isoformat() if ticket.created else "?"
        print(f"  oldest: {ticket.ticket_id}  {created}  {ticket.title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
