"""Benchmark 3: streaming memory: iterate training records and drop them.

``arena.items.training_records.iter(guid, page_size=400)`` over 100,000 and 1,000,000
records (the load server generates them on the fly, deterministically; nothing is stored
on either side), each size in a fresh client subprocess. The child samples its RSS with
psutil after every page and reports the peak growth over its RSS just before the first
request (imports done, client open, logged in), plus ``ru_maxrss``. Baseline of the same
rounds: raw aiohttp paging through the same URLs with ``json.loads`` only.

Targets: peak RSS growth <= 50 MB, and independent of the total (1M vs 100k).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

PAGE = 400
TARGET_MB = 50.0
#: "Independent of the total": the 1M growth may exceed the 100k growth by this much.
TOLERANCE_MB = 5.0
MB = 1024 * 1024


# -- the child: one client, one listing, RSS sampled ------------------------------------
async def _child_arena(url: str, total: int, proc: object) -> dict[str, float]:
    from arena_async import ArenaClient

    async with ArenaClient(email=c.EMAIL, password=c.PASSWORD, base_url=url,
                           max_concurrency=4, timeout=60.0, share=False) as arena:
        await arena.items.tickets.list("WARMUP")  # login, first connection
        base = proc.memory_info().rss  # type: ignore[attr-defined]
        peak = base
        count = 0
        started = time.perf_counter()
        cpu = time.process_time()
        async for page in arena.items.training_records.pages(f"REC{total}", page_size=PAGE):
            count += len(page.items)
            rss = proc.memory_info().rss  # type: ignore[attr-defined]
            peak = max(peak, rss)
        return {"base": base, "peak": peak, "records": count,
                "wall": time.perf_counter() - started, "cpu": time.process_time() - cpu}


async def _child_raw(url: str, total: int, proc: object) -> dict[str, float]:
    import aiohttp

    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        headers = {"arena_session_id": "BENCH-SESSION|"}
        async with session.get(f"{url}/items/WARMUP/tickets", headers=headers) as resp:
            await resp.read()
        base = proc.memory_info().rss  # type: ignore[attr-defined]
        peak = base
        count = offset = 0
        started = time.perf_counter()
        cpu = time.process_time()
        while True:
            async with session.get(f"{url}/items/REC{total}/trainingrecords", headers=headers,
                                   params={"offset": str(offset), "limit": str(PAGE)}) as resp:
                body = await resp.read()
            results = json.loads(body)["results"]
            count += len(results)
            offset += len(results)
            peak = max(peak, proc.memory_info().rss)  # type: ignore[attr-defined]
            if len(results) < PAGE:
                break
            del results, body
        return {"base": base, "peak": peak, "records": count,
                "wall": time.perf_counter() - started, "cpu": time.process_time() - cpu}


def child(argv: list[str]) -> int:
    import psutil

    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--total", type=int, required=True)
    p.add_argument("--kind", choices=("arena", "raw"), required=True)
    p.add_argument("--cpu", type=int, default=None)
    args = p.parse_args(argv)
    if args.cpu is not None:
        c.pin(0, args.cpu)
    proc = psutil.Process()
    run = _child_arena if args.kind == "arena" else _child_raw
    out = asyncio.run(run(args.url, args.total, proc))
    out["maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps(out))
    return 0


def run_child(url: str, total: int, kind: str, cpu: int | None) -> dict[str, float]:
    argv = [sys.executable, __file__, "--child", "--url", url, "--total", str(total),
            "--kind", kind]
    if cpu is not None:
        argv += ["--cpu", str(cpu)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child failed: {done.stderr[-2000:]}")
    out: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    if out["records"] != total:
        raise RuntimeError(f"child read {out['records']} records, expected {total}")
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(argv[1:])
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=None)
    args = p.parse_args(argv)
    sizes = args.sizes or ([2_000, 20_000] if args.quick else [100_000, 1_000_000])
    rounds = args.rounds or (1 if args.quick else 3)
    pinned = not args.no_pin and c.can_pin()
    env = c.environment()
    client_cpu = c.CLIENT_CPU if pinned else None
    res: dict[tuple[str, int], list[dict[str, float]]] = {}
    with c.load_server(cpu=c.SERVER_CPU if pinned else None) as server:
        for _ in range(rounds):
            for total in sizes:
                for kind in ("raw", "arena"):
                    res.setdefault((kind, total), []).append(
                        run_child(server.url, total, kind, client_cpu))
    rows = []
    growth: dict[tuple[str, int], float] = {}
    for (kind, total), runs in res.items():
        g = c.median([(r["peak"] - r["base"]) / MB for r in runs])
        growth[kind, total] = g
        maxrss = c.median([r["maxrss"] / MB for r in runs])
        rate = c.median([r["records"] / r["wall"] for r in runs])
        cpu_us = c.median([r["cpu"] / r["records"] * 1e6 for r in runs])
        name = "raw aiohttp + json.loads (baseline)" if kind == "raw" else \
            "arena_async training_records (TrainingRecord)"
        target = ""
        if kind == "arena":
            target = f"{c.verdict(g <= TARGET_MB)} (<= {TARGET_MB:.0f} MB)"
        rows.append([name, f"{total:,}", f"{g:.1f}", f"{maxrss:.1f}", c.fmt(rate),
                     f"{cpu_us:.2f}", target])
    small, big = min(sizes), max(sizes)
    delta = growth["arena", big] - growth["arena", small]
    independent = delta <= TOLERANCE_MB
    rows.append([f"arena_async: growth at {big:,} minus growth at {small:,}", "",
                 f"{delta:+.1f}", "", "", "",
                 f"{c.verdict(independent)} (independent of the total: <= "
                 f"+{TOLERANCE_MB:.0f} MB)"])
    header = ["client", "records", "peak RSS growth MB", "ru_maxrss MB", "records/s",
              "client CPU us/record", "target"]
    text, md = c.table(header, rows)
    title = (f"Streaming memory: training records, page size {PAGE}, fresh process per run, "
             f"median of {rounds} rounds")
    markdown = "\n".join([
        f"## 3. {title}", "", c.env_line(env), "",
        "RSS sampled with psutil after every page in the client process; growth is over the "
        "RSS just before the first page (imports done, client open and logged in). "
        f"Load server generates the records on the fly; {c.pin_note(pinned)}.", "", md,
    ])
    c.report(args, "streaming", title, text, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
