"""``python -m arena_async demo``: bulk-fetch against the built-in fake Arena server."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence

__all__ = ["main"]


async def demo(items: int, seed: int, concurrency: int, latency: float) -> int:
    """Start FakeArena in-process, fetch every item's ticket references, print a summary."""
    from . import ArenaClient
    from .testing import FakeArena

    out = sys.stdout
    async with FakeArena.seeded(items=items, seed=seed, latency=latency) as fake:
        started = time.perf_counter()
        records = failures = 0
        async with ArenaClient(email=fake.email, password=fake.password,
                               workspace_id=fake.workspace_id, base_url=fake.url,
                               max_concurrency=concurrency) as arena:
            async for outcome in arena.bulk(arena.items.tickets.list, fake.item_guids):
                if outcome.ok and outcome.value is not None:
                    records += len(outcome.value)
                else:
                    failures += 1
            elapsed = time.perf_counter() - started
            stats, quota = arena.stats, arena.quota
        rows = [
            ("server", f"FakeArena at {fake.url} (seed {seed})"),
            ("items", f"{items:,}"),
            ("ticket references", f"{records:,}"),
            ("failed items", f"{failures:,}"),
            ("requests sent", f"{stats.requests:,} (+{stats.logins} login)"),
            ("retries", f"{stats.retries:,}"),
            ("time", f"{elapsed:.2f} s ({items / elapsed:,.0f} items/s)"),
            ("quota left", f"{quota.remaining:,}" if quota else "unknown"),
        ]
        width = max(len(name) for name, _ in rows)
        out.write("arena_async demo: ticket references of every item\n")
        for name, value in rows:
            out.write(f"  {name:<{width}}  {value}\n")
    return 0 if failures == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m arena_async`` and the ``arena-async`` command."""
    parser = argparse.ArgumentParser(prog="arena-async", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="bulk-fetch ticket references from a built-in fake server")
    d.add_argument("--items", type=int, default=2000)
    d.add_argument("--seed", type=int, default=1)
    d.add_argument("--concurrency", type=int, default=16)
    d.add_argument("--latency", type=float, default=0.0, help="fake server latency, seconds")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return asyncio.run(demo(args.items, args.seed, args.concurrency, args.latency))
    return 2  # pragma: no cover - argparse refuses unknown commands


if __name__ == "__main__":
    sys.exit(main())
