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

The three jobs of the quota issue, before and after (the "jobs" table):

(1) The FastAPI backend on 4 workers: four clients on one SQLite share (as
    ``uvicorn --workers 4`` with the default share), 400 page views of 100 items in 2
    rounds of 200 (the views of a round spread over the workers, which run at once; a
    view is the 4 GETs of (a)). Before: the share, no cache (each worker asks every
    view); after: ``CachePolicy(ttl=...)``, the answers in the share, fetched once across
    the workers.
(2) A nightly ETL from item numbers: 300 numbers to GUIDs, then each item's tickets and
    references. Before: one lookup per number (``guids_for`` of one number each, as
    ``lookup_batches`` with a batch of one); after: one batched ``guids_for`` of all 300.
(3) 4 workers each resolving the same 100 distinct numbers, at once and one after
    another. Before: per-process number maps (``share=False``; the fake lets their 4
    sessions live) and one lookup per number; after: one batched ``guids_for`` per worker,
    the map in the share: a number another worker resolved is not asked again, and one
    another worker is asking for is waited for, not asked too (claims in the map).
"""

from __future__ import annotations

import asyncio
import contextlib
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


def client(url: str, *, cache: CachePolicy | None,
           share: Share | bool = False) -> ArenaClient:
    """A client; no share unless one is given (``share=None`` would be the default share:
    the user's own file, which a benchmark leaves alone)."""
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
                 share: Share | bool) -> None:
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


# -- the three jobs, before and after ------------------------------------------------------------
WORKERS = 4


async def workers_page_views(url: str, population: list[str], views: int, rounds: int,
                             cache: CachePolicy | None, path: Path) -> None:
    """``views`` page views over ``rounds``; each round's views spread over 4 clients on one
    share that run at once (the worker of a view drawn at random, as a load balancer)."""
    rng = random.Random(11)
    async with contextlib.AsyncExitStack() as stack:
        workers = [await stack.enter_async_context(
            client(url, cache=cache, share=SQLiteShare(path))) for _ in range(WORKERS)]

        async def serve(arena: ArenaClient, guids: list[str]) -> None:
            for guid in guids:
                await arena.items.get(guid)
                await arena.items.tickets.list(guid)
                await arena.items.references.list(guid)
                await arena.items.training_records.list(guid, page_size=100, max_items=100)

        async with asyncio.timeout(TIMEOUT):
            for _ in range(rounds):
                queues: list[list[str]] = [[] for _ in workers]
                for _ in range(views // rounds):
                    queues[rng.randrange(WORKERS)].append(rng.choice(population))
                await asyncio.gather(*(serve(a, q) for a, q in zip(workers, queues,
                                                                    strict=True)))


def numbers_of(items: int) -> list[str]:
    fake = FakeArena.seeded(items=items, seed=1)
    return [fake.item(guid)["number"] for guid in fake.item_guids]


async def one_by_one(arena: ArenaClient, numbers: list[str]) -> dict[str, str | None]:
    """Before batching: one lookup (one request) per number not known to the client."""
    found: dict[str, str | None] = {}
    for number in numbers:
        found.update(await arena.items.guids_for([number]))
    return found


async def etl_from_numbers(url: str, numbers: list[str], batched: bool) -> int:
    """The lookups' requests (the export's are counted by the fake with them)."""
    async with asyncio.timeout(TIMEOUT), client(url, cache=None, share=False) as arena:
        found = (await arena.items.guids_for(numbers) if batched
                 else await one_by_one(arena, numbers))
        assert None not in found.values()
        guids = [g for g in found.values() if g is not None]
        for fn in (arena.items.tickets.list, arena.items.references.list):
            async with arena.bulk(fn, guids) as run:
                async for outcome in run:
                    if outcome.error is not None:
                        raise outcome.error
    return len(numbers)


async def workers_numbers(url: str, numbers: list[str], shared: bool, path: Path,
                          at_once: bool = True) -> None:
    async with contextlib.AsyncExitStack() as stack:
        workers = [await stack.enter_async_context(
            client(url, cache=None, share=SQLiteShare(path) if shared else False))
            for _ in range(WORKERS)]
        order = [random.Random(i).sample(numbers, len(numbers)) for i in range(WORKERS)]
        async with asyncio.timeout(TIMEOUT):
            jobs = [a.items.guids_for(o) if shared else one_by_one(a, o)
                    for a, o in zip(workers, order, strict=True)]
            if at_once:
                answers = await asyncio.gather(*jobs)
            else:
                answers = [await job for job in jobs]
        assert all(None not in found.values() for found in answers)


def lookups(fake: c.Server) -> int:
    """The item searches the fake received (number lookups are ``GET /items``)."""
    return int(fake.stats()["by_route"].get("GET /items", 0))


def three_jobs(quick: bool) -> list[list[str]]:
    rows = []
    views, population = (40, 20) if quick else (400, 100)
    spent = {}
    for name, cache in (("before", None), ("after", CachePolicy(ttl=TTL))):
        with tempfile.TemporaryDirectory() as tmp, c.fake_arena(items=population) as fake:
            asyncio.run(workers_page_views(fake.url, guids(population), views, 2, cache,
                                           Path(tmp, "share.db")))
            spent[name] = counted(fake)
    rows.append([f"(1) FastAPI backend, {WORKERS} workers: {views} page views of "
                 f"{population} items in 2 rounds", str(spent["before"]), str(spent["after"]),
                 f"{spent['before'] / max(1, spent['after']):.1f}x", "cache= in the share"])

    n = 30 if quick else 300
    spent, looked = {}, {}
    for name, batched in (("before", False), ("after", True)):
        with c.fake_arena(items=n) as fake:
            asyncio.run(etl_from_numbers(fake.url, numbers_of(n), batched))
            spent[name], looked[name] = counted(fake), lookups(fake)
    rows.append([f"(2) nightly ETL of {n} items from their numbers (of which lookups)",
                 f"{spent['before']} ({looked['before']})",
                 f"{spent['after']} ({looked['after']})",
                 f"{spent['before'] / max(1, spent['after']):.1f}x", "batched guids_for"])

    n = 20 if quick else 100
    for at_once, when in ((True, "at once"), (False, "one after another")):
        for name, shared in (("before", False), ("after", True)):
            # Without a share the 4 clients log in 4 times: the fake lets the sessions live
            # (the workers of the issue shared the session, not the number map).
            with tempfile.TemporaryDirectory() as tmp, \
                    c.fake_arena(items=n, multi_session=not shared) as fake:
                asyncio.run(workers_numbers(fake.url, numbers_of(n), shared,
                                            Path(tmp, "share.db"), at_once))
                looked[name] = lookups(fake)
        rows.append([f"(3) {WORKERS} workers x the same {n} distinct numbers, {when} "
                     "(lookups)", str(looked["before"]), str(looked["after"]),
                     f"{looked['before'] / max(1, looked['after']):.1f}x",
                     "batched, the number map in the share"])
    return rows


# -- (c) the cost of a hit ----------------------------------------------------------------------
async def per_call(url: str, calls: int, cache: CachePolicy | None,
                   share: Share | bool) -> float:
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
            variants: dict[str, tuple[CachePolicy | None, Share | bool]] = {
                "uncached request (loopback FakeArena)": (None, False),
                "hit, in memory": (cache, False),
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
    issue = three_jobs(args.quick)
    jobs = web_backend(args.quick) + etl_rerun(args.quick)
    costs = hit_cost(args.quick, rounds)
    text_i, md_i = c.table(["job", "requests before", "after", "fewer", "by"], issue)
    text_a, md_a = c.table(["job", "requests without cache", "with cache=", "fewer"], jobs)
    text_c, md_c = c.table(["one tickets.list", "median time", "spread (rounds)",
                            "vs uncached"], costs)
    elapsed = time.perf_counter() - started
    text = f"{text_i}\n\n{text_a}\n\n{text_c}\n\n({elapsed:.0f} s)"
    markdown = (f"## Frugal: requests spent with `cache=` and batched lookups\n\n"
                f"{c.env_line(env)}\n\nThe three jobs, requests spent before and after "
                f"(the Arena requests the fake counted, logins and logouts left out; "
                f"\"before\": no cache, one lookup per number, per-process number maps):"
                f"\n\n{md_i}\n\nWith and without `cache=`, one client:\n\n{md_a}\n\n"
                f"{md_c}\n")
    c.report(args, "frugal", "requests spent per job, and the cost of a cache hit", text,
             markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())

