"""Benchmark 1: per-request overhead of arena_async against raw aiohttp and httpx.

``GET /items/{guid}/tickets`` for 5,000 items at concurrency 32 against the load server
(``load_server.py``, a separate process on 127.0.0.1), four ways, interleaved per round:

- ``aiohttp raw`` (the baseline): one ClientSession with the settings the library uses
  (TCPConnector(limit=100, limit_per_host=0), DummyCookieJar, sock_connect=30 and no
  sock_read, exactly as the library sets its own session), a
  Semaphore(32) and ``asyncio.gather``, ``json.loads`` of the body only;
- ``httpx``: ``httpx.AsyncClient`` (100 connections), the same semaphore and gather;
- ``arena_async bulk``: ``arena.bulk(arena.items.tickets.list, guids)`` with
  ``max_concurrency=32``: structured models, quota tracking, retry policy, the works;
- ``arena_async gather``: the same client, ``asyncio.gather`` over a Semaphore(32).

Figures: throughput (requests/s, wall clock) and client CPU per request
(``time.process_time()`` of this process, which runs only the client), each also as a
ratio to the raw aiohttp baseline of the same round; median of the rounds.
Targets: arena_async throughput >= 0.85x raw aiohttp, and ahead of httpx.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

from arena_async import ArenaClient

CONCURRENCY = 32
TARGET_VS_RAW = 0.85

Runner = Callable[[str, list[str]], Awaitable[dict[str, float]]]


def guids(n: int) -> list[str]:
    return [f"ITEM{i:016d}" for i in range(n)]


async def _gathered(one: Callable[[str], Awaitable[int]], keys: list[str]) -> int:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def bounded(key: str) -> int:
        async with sem:
            return await one(key)

    return sum(await asyncio.gather(*(bounded(k) for k in keys)))


async def run_raw_aiohttp(url: str, keys: list[str]) -> dict[str, float]:
    connector = aiohttp.TCPConnector(limit=100, limit_per_host=0)
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=None),
        cookie_jar=aiohttp.DummyCookieJar(), raise_for_status=False,
    ) as session:
        headers = {"arena_session_id": "BENCH-SESSION|"}

        async def one(key: str) -> int:
            async with session.get(f"{url}/items/{key}/tickets", headers=headers,
                                   allow_redirects=False) as resp:
                body = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
            return len(json.loads(body)["results"])

        await one("WARMUP")
        with c.timed() as t:
            refs = await _gathered(one, keys)
    return {"wall": t["wall"], "cpu": t["cpu"], "refs": refs}


async def run_httpx(url: str, keys: list[str]) -> dict[str, float]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as client:
        headers = {"arena_session_id": "BENCH-SESSION|"}

        async def one(key: str) -> int:
            resp = await client.get(f"{url}/items/{key}/tickets", headers=headers)
            if resp.status_code != 200:
                raise RuntimeError(f"HTTP {resp.status_code}")
            return len(json.loads(resp.content)["results"])

        await one("WARMUP")
        with c.timed() as t:
            refs = await _gathered(one, keys)
    return {"wall": t["wall"], "cpu": t["cpu"], "refs": refs}


def _client(url: str) -> ArenaClient:
    return ArenaClient(email=c.EMAIL, password=c.PASSWORD, base_url=url,
                       max_concurrency=CONCURRENCY, timeout=30.0,
                       share=False)  # the client alone (the share's cost: sharing.py)


async def run_arena_bulk(url: str, keys: list[str]) -> dict[str, float]:
    async with _client(url) as arena:
        await arena.items.tickets.list("WARMUP")  # login + first connection
        refs = 0
        with c.timed() as t:
            async for outcome in arena.bulk(arena.items.tickets.list, keys):
                if not outcome.ok:
                    raise RuntimeError(f"{outcome.key}: {outcome.error!r}")
                refs += len(outcome.value or ())
    return {"wall": t["wall"], "cpu": t["cpu"], "refs": refs}


async def run_arena_gather(url: str, keys: list[str]) -> dict[str, float]:
    async with _client(url) as arena:
        await arena.items.tickets.list("WARMUP")

        async def one(key: str) -> int:
            return len(await arena.items.tickets.list(key))

        with c.timed() as t:
            refs = await _gathered(one, keys)
    return {"wall": t["wall"], "cpu": t["cpu"], "refs": refs}


CLIENTS: dict[str, Runner] = {
    "aiohttp raw (baseline)": run_raw_aiohttp,
    "httpx.AsyncClient": run_httpx,
    "arena_async bulk": run_arena_bulk,
    "arena_async gather+sem": run_arena_gather,
}
BASELINE = "aiohttp raw (baseline)"


def measure(server: c.Server, n: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    """Interleaved rounds: every client once per round; ratios within the round."""
    url = server.url
    keys = guids(n)
    out: dict[str, dict[str, list[float]]] = {
        name: {"rps": [], "cpu_us": [], "rps_ratio": [], "cpu_ratio": [], "server_us": [],
               "capacity": []}
        for name in CLIENTS
    }
    clients = dict(CLIENTS)
    for runner in clients.values():  # warm-up: imports, first connections, hooks
        asyncio.run(runner(url, keys[: min(500, n)]))
    for _ in range(rounds):
        base: dict[str, float] = {}
        for name, runner in clients.items():
            gc.collect()
            server_cpu = server.cpu_seconds()
            r = asyncio.run(runner(url, keys))
            out[name]["server_us"].append((server.cpu_seconds() - server_cpu) / n * 1e6)
            rps, cpu_us = n / r["wall"], r["cpu"] / n * 1e6
            if name == BASELINE:
                base = {"rps": rps, "cpu_us": cpu_us}
            out[name]["rps"].append(rps)
            out[name]["cpu_us"].append(cpu_us)
            out[name]["rps_ratio"].append(rps / base["rps"])
            out[name]["cpu_ratio"].append(cpu_us / base["cpu_us"])
            out[name]["capacity"].append(base["cpu_us"] / cpu_us)
    return out


def main(argv: list[str] | None = None) -> int:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=None, help="requests per client per round")
    args = p.parse_args(argv)
    n = args.requests or (300 if args.quick else 5000)
    rounds = args.rounds or (1 if args.quick else 5)
    pinned = not args.no_pin and c.can_pin()
    env = c.environment()
    server = c.load_server(cpu=c.SERVER_CPU if pinned else None)
    with server:
        if pinned:
            c.pin(0, c.CLIENT_CPU)
        try:
            results = measure(server, n, rounds)
        finally:
            c.unpin_self()
    med = {name: {k: c.median(v) for k, v in figs.items()} for name, figs in results.items()}
    httpx = med["httpx.AsyncClient"]
    rows = []
    for name, figs in results.items():
        m = med[name]
        wall = cap = ""
        if name.startswith("arena_async"):
            ahead = m["rps"] > httpx["rps"] and m["cpu_us"] < httpx["cpu_us"]
            wall = (f"{c.verdict(m['rps_ratio'] >= TARGET_VS_RAW and ahead)} "
                    f"({m['rps_ratio']:.2f}x)")
            cap = (f"{c.verdict(m['capacity'] >= TARGET_VS_RAW and ahead)} "
                   f"({m['capacity']:.2f}x)")
        rows.append([name, c.fmt(m["rps"]), f"{m['rps_ratio']:.2f}x", spread(figs["rps_ratio"]),
                     c.fmt(m["cpu_us"]), f"{m['capacity']:.2f}x", spread(figs["capacity"]),
                     c.fmt(m["server_us"]), wall, cap])
    header = ["client", "req/s (wall)", "vs raw", "vs raw (min..max)", "client CPU us/req",
              "capacity vs raw", "capacity (min..max)", "server CPU us/req",
              f"target >= {TARGET_VS_RAW}x (wall)", f"target >= {TARGET_VS_RAW}x (capacity)"]
    text, md = c.table(header, rows)
    title = (f"Per-request overhead: GET /items/{{guid}}/tickets x {n:,}, concurrency "
             f"{CONCURRENCY}, median of {rounds} rounds")
    markdown = "\n".join([
        f"## 1. {title}", "", c.env_line(env), "",
        f"Load server: `benchmarks/load_server.py` (canned JSON, quota headers), "
        f"{c.pin_note(pinned)}. On a quiet box the client is the bottleneck in every row (it "
        "saturates its core; the server needs 35-50 us per request on the other), so "
        "req/s = 1 / client CPU per request. When other work lands on either core (this box "
        "is shared) the wall-clock figures swing by 2x from round to round and stop "
        "measuring the client: `capacity vs raw` (raw aiohttp's client CPU per request "
        "divided by this client's, per round) is the client-bound throughput ratio and "
        "stays steady, so it is the figure to judge by; both verdicts are shown. Both "
        "also require beating httpx (req/s and CPU). The raw aiohttp baseline uses the "
        "library's session settings exactly (TCPConnector(limit=100, limit_per_host=0), "
        "ClientTimeout(total=None, sock_connect=30, sock_read=None), DummyCookieJar), with "
        "no per-request timeout at all; the library bounds every attempt by its `timeout` "
        "(30 s) besides.", "", md,
    ])
    c.report(args, "overhead", title, text, markdown)
    return 0


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}..{max(values):.2f}"


if __name__ == "__main__":
    raise SystemExit(main())
