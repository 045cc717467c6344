"""Benchmark 2: latency-bound bulk: does arena_async keep ``max_concurrency`` requests busy?

5,000 ``GET /items/{guid}/tickets`` against the load server answering every request after
20 ms, with ``max_concurrency=50``, through ``arena.bulk(arena.items.tickets.list, ...)``.
The ideal wall time is ``5,000 * 0.02 / 50 = 2.0 s``; target: <= 1.15x the ideal. The
baseline of the same rounds is raw aiohttp (Semaphore(50) + gather, ``json.loads``), which
shows what the server and the loopback themselves add to the ideal.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

from arena_async import ArenaClient

LATENCY = 0.02
CONCURRENCY = 50
TARGET = 1.15


def guids(n: int) -> list[str]:
    return [f"ITEM{i:016d}" for i in range(n)]


async def run_raw(url: str, keys: list[str]) -> dict[str, float]:
    connector = aiohttp.TCPConnector(limit=100, limit_per_host=0)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=None),
    ) as session:
        headers = {"arena_session_id": "BENCH-SESSION|"}
        sem = asyncio.Semaphore(CONCURRENCY)

        async def one(key: str) -> int:
            async with sem, session.get(f"{url}/items/{key}/tickets", headers=headers,
                                        allow_redirects=False) as resp:
                body = await resp.read()
            return len(json.loads(body)["results"])

        await one("WARMUP")
        with c.timed() as t:
            await asyncio.gather(*(one(k) for k in keys))
    return {"wall": t["wall"], "cpu": t["cpu"], "in_flight": CONCURRENCY}


async def run_arena(url: str, keys: list[str]) -> dict[str, float]:
    async with ArenaClient(email=c.EMAIL, password=c.PASSWORD, base_url=url,
                           max_concurrency=CONCURRENCY, timeout=30.0,
                           share=False) as arena:  # the share's cost: sharing.py
        await arena.items.tickets.list("WARMUP")
        failed = 0
        with c.timed() as t:
            async for outcome in arena.bulk(arena.items.tickets.list, keys):
                failed += not outcome.ok
        if failed:
            raise RuntimeError(f"{failed} requests failed")
        in_flight = arena._transport.limiter.stats.max_in_flight
    return {"wall": t["wall"], "cpu": t["cpu"], "in_flight": in_flight}


async def lone_answer(url: str, n: int = 50) -> float:
    """The median time of one request at a time (raw aiohttp): the server's own latency."""
    times = []
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        for i in range(n):
            start = time.perf_counter()
            async with session.get(f"{url}/items/LONE{i:016d}/tickets") as resp:
                await resp.read()
            times.append(time.perf_counter() - start)
    return c.median(times)


def main(argv: list[str] | None = None) -> int:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=None)
    args = p.parse_args(argv)
    n = args.requests or (500 if args.quick else 5000)
    rounds = args.rounds or (1 if args.quick else 5)
    ideal = n * LATENCY / CONCURRENCY
    pinned = not args.no_pin and c.can_pin()
    env = c.environment()
    keys = guids(n)
    walls: dict[str, list[float]] = {"raw": [], "arena": []}
    cpus: dict[str, list[float]] = {"raw": [], "arena": []}
    in_flight = 0.0
    with c.load_server(latency=LATENCY, cpu=c.SERVER_CPU if pinned else None) as server:
        if pinned:
            c.pin(0, c.CLIENT_CPU)
        try:
            lone = asyncio.run(lone_answer(server.url))
            lateness = server.stats().get("sleep_lateness", 0.0)
            asyncio.run(run_arena(server.url, keys[: min(n, 500)]))  # warm-up
            for _ in range(rounds):
                for name, runner in (("raw", run_raw), ("arena", run_arena)):
                    gc.collect()
                    r = asyncio.run(runner(server.url, keys))
                    walls[name].append(r["wall"])
                    cpus[name].append(r["cpu"] / n * 1e6)
                    if name == "arena":
                        in_flight = max(in_flight, r["in_flight"])
        finally:
            c.unpin_self()
    ratio_arena = [w / ideal for w in walls["arena"]]
    ratio_raw = [w / ideal for w in walls["raw"]]
    vs_raw = [a / r for a, r in zip(walls["arena"], walls["raw"], strict=True)]
    med = c.median(ratio_arena)
    rows = [
        ["raw aiohttp (baseline)", f"{c.median(walls['raw']):.3f}", f"{c.median(ratio_raw):.3f}x",
         f"{min(ratio_raw):.3f}..{max(ratio_raw):.3f}", "1.00x",
         c.fmt(c.median(cpus["raw"])), ""],
        ["arena_async bulk", f"{c.median(walls['arena']):.3f}", f"{med:.3f}x",
         f"{min(ratio_arena):.3f}..{max(ratio_arena):.3f}", f"{c.median(vs_raw):.3f}x",
         c.fmt(c.median(cpus["arena"])), f"{c.verdict(med <= TARGET)} (<= {TARGET}x ideal)"],
    ]
    header = ["client", "wall s", "vs ideal", "vs ideal (min..max)", "vs raw",
              "client CPU us/req", "target"]
    text, md = c.table(header, rows)
    title = (f"Latency-bound bulk: {n:,} requests, server latency {LATENCY * 1000:.0f} ms, "
             f"max_concurrency={CONCURRENCY}, ideal {ideal:.2f} s, median of {rounds} rounds")
    markdown = "\n".join([
        f"## 2. {title}", "", c.env_line(env), "",
        f"Load server with `--latency {LATENCY}`; {c.pin_note(pinned)}. The server measured "
        f"`asyncio.sleep({LATENCY})` waking {lateness * 1000:.2f} ms late at start and sleeps "
        "that much less; a lone request (raw aiohttp, one at a time, median of 50) took "
        f"{lone * 1000:.2f} ms from send to body read, i.e. {lone / LATENCY:.3f}x the "
        f"latency before any concurrency. The limiter held at most {in_flight:.0f} requests "
        "in flight (max_in_flight).", "", md, "",
        f"Raw aiohttp itself needed {c.median(ratio_raw):.3f}x the ideal in the same rounds "
        "(the server's timer, the loopback, and the other work on this shared box); the "
        "client's own share of the arena_async figure is the `vs raw` column.",
    ])
    c.report(args, "latency", title, text, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
