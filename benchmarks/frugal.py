"""Benchmark: requests spent per job with and without ``cache=``, and what a cache hit costs.

Real loopback against FakeArena in a subprocess (``python -m arena_async.testing arena``);
requests are counted by the fake (``GET /_fake/stats``: the GETs, logins and logouts left
out). Prints its table; ``--write`` records it in RESULTS.md (section ``frugal``).

(a) A web backend (the FastAPI example's loop, one client): 400 page views, each showing
    one item drawn at random from a population of 50 or 100 (the item, its ticket
    references, its item references and its first page of training records: 4 GETs).
    Without a cache every view costs 4 requests; with ``CachePolicy(ttl=...)`` longer than
    the run, each item costs its 4 requests once.
(b) A nightly ETL re-run: the same export (tickets, references and training records of
    every item) run twice in one night by two processes, e.g. a retry after a failure at
    the end. With the cache in the share (a SQLite file) the second run spends nothing.
(c) The cost of a hit against an uncached request: the median time of a
    ``tickets.list`` answered from the cache (in memory, in a SQLite share, in a Redis
    share) and of the same call sent to FakeArena on loopback (no added latency: the
    floor of a real request, which crosses a network and Arena's own work besides).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
from sharing import redis_server

from arena_async import ArenaClient, CachePolicy, RedisShare, Share, SQLiteShare
from arena_async.testing import FakeArena

FAKE_EMAIL, FAKE_PASSWORD = "user@example.com", "fake-password"  # FakeArena's defaults
TTL = 3600.0  # longer than any job here
TIMEOUT = 300.0


def client(url: str, *, cache: CachePolicy | None, share: Share | None = None) -> ArenaClient:
    return ArenaClient(email=FAKE_EMAIL, password=FAKE_PASSWORD, base_url=url,
                       max_concurrency=8, timeout=10.0, cache=cache, share=share)


def counted(fake: c.Server) -> int:
    """The GET requests the fake received (the job's own; logins and logouts left out)."""
    stats = fake.stats()
    return sum(v for k, v in stats["by_route"].items() if k.startswith("GET "))


def guids(items: int) -> list[str]:
    """The item GUIDs of the fake (``--items N --seed 1``): deterministic, no server."""
    return FakeArena.seeded(items=items, seed=1).item_guids


# -- (a) page views -------------------------------------------------------------------------
async def page_views(url: str, population: list[str], views: int,
                     cache: CachePolicy | None) -> None:
    rng = random.Random(7)
    async with asyncio.timeout(TIMEOUT), client(url, cache=cache) as arena:
        for _ in range(views):
            guid = rng.choice(population)
            await arena.items.get(guid)
            await arena.items.tickets.list(guid)
            await arena.items.references.list(guid)
            await arena.items.training_records.list(guid, page_size=100, max_items=100)


def web_backend(quick: bool) -> list[list[str]]:
    views = 40 if quick else 400
    rows = []
    for population in (50, 100):
        items = guids(100)[:population]
        spent = {}
        for name, cache in (("no cache", None), ("cache", CachePolicy(ttl=TTL))):
            with c.fake_arena(items=100) as fake:
                asyncio.run(page_views(fake.url, items, views, cache))
                spent[name] = counted(fake)
        rows.append([f"(a) {views} page views over {population} items", str(spent["no cache"]),
                     str(spent["cache"]), f"{spent['no cache'] / max(1, spent['cache']):.1f}x"])
    return rows


# -- (b) the ETL re-run ----------------------------------------------------------------------
async def export(url: str, items: list[str], cache: CachePolicy | None,
                 share: Share | None) -> None:
    async with asyncio.timeout(TIMEOUT), client(url, cache=cache, share=share) as arena:
        for fn in (arena.items.tickets.list, arena.items.references.list,
                   arena.items.training_records.list):
            async with arena.bulk(fn, items) as run:
                async for outcome in run:
                    if outcome.error is not None:
                        raise outcome.error


def etl_rerun(quick: bool) -> list[list[str]]:
    n = 30 if quick else 300
    items = guids(n)
    spent = {}
    for name, cache in (("no cache", None), ("cache", CachePolicy(ttl=TTL))):
        with tempfile.TemporaryDirectory() as tmp, c.fake_arena(items=n) as fake:
            path = Path(tmp, "share.db")
            for _ in range(2):  # two processes, one after the other, on one share
                asyncio.run(export(fake.url, items, cache, SQLiteShare(path)))
            spent[name] = counted(fake)
    return [[f"(b) ETL of {n} items, run twice in a night", str(spent["no cache"]),
             str(spent["cache"]), f"{spent['no cache'] / max(1, spent['cache']):.1f}x"]]


# -- (c) the cost of a hit ----------------------------------------------------------------------
async def per_call(url: str, calls: int, cache: CachePolicy | None,
                   share: Share | None) -> float:
    """Median seconds per ``tickets.list`` (hits when cached: the cache is filled first)."""
    keys = guids(50)
    async with asyncio.timeout(TIMEOUT), client(url, cache=cache, share=share) as arena:
        for guid in keys:  # login, and the cache filled
            await arena.items.tickets.list(guid)
        times = []
        for i in range(calls):
            started = time.perf_counter()
            await arena.items.tickets.list(keys[i % len(keys)])
            times.append(time.perf_counter() - started)
        if cache is not None:
            assert arena.stats.cache_hits >= calls
    return float(statistics.median(times))


def hit_cost(quick: bool, rounds: int) -> list[list[str]]:
    calls = 200 if quick else 2000
    cache = CachePolicy(ttl=TTL)
    figures: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, redis_server(None) as redis_url, \
            c.fake_arena(items=50) as fake:
        for r in range(rounds):
            variants: dict[str, tuple[CachePolicy | None, Share | None]] = {
                "uncached request (loopback FakeArena)": (None, None),
                "hit, in memory": (cache, None),
                "hit, SQLite share": (cache, SQLiteShare(Path(tmp, f"hits{r}.db"))),
            }
            if redis_url is not None:
                variants["hit, Redis share"] = (cache, RedisShare(redis_url,
                                                                  prefix=f"frugal{r}:"))
            for name, (policy, share) in variants.items():
                figures.setdefault(name, []).append(
                    asyncio.run(per_call(fake.url, calls, policy, share)))
    base = c.median(figures["uncached request (loopback FakeArena)"])
    return [[name, f"{c.median(values) * 1e6:,.0f} µs", c.spread([v * 1e6 for v in values]),
             f"{c.median(values) / base:.3f}x"] for name, values in figures.items()]


def main(argv: list[str] | None = None) -> int:
    p = c.parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    env = c.environment()
    started = time.perf_counter()
    jobs = web_backend(args.quick) + etl_rerun(args.quick)
    costs = hit_cost(args.quick, rounds)
    text_a, md_a = c.table(["job", "requests without cache", "with cache=", "fewer"], jobs)
    text_c, md_c = c.table(["one tickets.list", "median time", "spread (rounds)",
                            "vs uncached"], costs)
    elapsed = time.perf_counter() - started
    text = f"{text_a}\n\n{text_c}\n\n({elapsed:.0f} s)"
    markdown = (f"## Frugal: requests spent with `cache=`\n\n{c.env_line(env)}\n\n{md_a}\n\n"
                f"{md_c}\n")
    c.report(args, "frugal", "requests spent per job, and the cost of a cache hit", text,
             markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())

