"""Where benchmark 1's client CPU goes: a ladder of variants, each one step from the last.

Same load server and workload as ``overhead.py`` (``GET /items/{guid}/tickets`` at
concurrency 32, client pinned to one core; 2,000 requests per run, 9 rounds: many
short interleaved rounds resist this box's bursts of noise better), client CPU per
request (``process_time``) of each variant, median of the rounds. The first rows take three
of the library's fixes back out (``_prototype``, applied at run time, measurement only) and
put them back one at a time; then pieces of the library's work are removed to price them:

  library without fixes 7, 10, 11 -> + fix 11 (inline first attempt) -> + fix 10 (shared
  attempt timer) -> + fix 7 (generated structuring) = the library -> no per-attempt
  timeout -> no quota gate (QuotaPolicy off) -> no structuring (dicts) -> ``pool.send``
  directly (no items layer, no bulk: prebuilt requests, gather + semaphore)

and raw aiohttp as the floor. The differences between consecutive rows are the prices.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
import _prototype
import overhead

from arena_async._convert import loads
from arena_async._protocol import Request

FIXES = [
    ("general", "fix 11: the first attempt inline in send (no general loop)"),
    ("timer", "fix 10: one shared attempt timer, not asyncio.timeout per attempt"),
    ("cattrs", "fix 7: generated structuring (per-model functions)"),
]
LIBRARY = "arena_async bulk (= the library)"


async def _run_stripped(url: str, keys: list[str], level: int) -> dict[str, float]:
    """Level 1: no per-attempt timeout; 2: no quota gate; 3: no structuring; 4: pool.send
    with prebuilt requests (no items layer, no bulk)."""
    patches = ["no_timeout"] + (["dicts"] if level >= 3 else [])
    with _prototype.applied(patches):
        async with overhead._client(url) as arena:
            if level >= 2:
                arena._transport.limiter.policy = None  # no quota gate
            await arena.items.tickets.list("WARMUP")
            if level >= 4:
                pool = arena._transport
                requests = [Request("GET", f"{url}/items/{k}/tickets", "/items/k/tickets")
                            for k in keys]
                sem = asyncio.Semaphore(overhead.CONCURRENCY)

                async def one(request: Request) -> int:
                    async with sem:
                        return len(loads((await pool.send(request)).body)["results"])

                with c.timed() as t:
                    await asyncio.gather(*(one(r) for r in requests))
            else:
                with c.timed() as t:
                    async for outcome in arena.bulk(arena.items.tickets.list, keys):
                        if not outcome.ok:
                            raise RuntimeError(repr(outcome.error))
    return {"wall": t["wall"], "cpu": t["cpu"]}


def variants() -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = [("raw aiohttp (floor)", overhead.run_raw_aiohttp)]
    for i in range(len(FIXES) + 1):
        taken_out = [name for name, _ in FIXES[i:]]

        async def run(u: str, k: list[str], which: list[str] = taken_out) -> dict[str, float]:
            with _prototype.applied(which):
                return await overhead.run_arena_bulk(u, k)

        label = ("arena_async bulk, without fixes 7, 10, 11" if i == 0 else
                 LIBRARY if i == len(FIXES) else f"+ {FIXES[i - 1][1]}")
        out.append((label, run))
    for level, label in ((1, "- per-attempt timeout"), (2, "- quota gate (no policy)"),
                         (3, "- structuring (dicts returned)"),
                         (4, "- items layer and bulk (pool.send, gather+sem)")):

        async def run(u: str, k: list[str], level: int = level) -> dict[str, float]:
            return await _run_stripped(u, k, level)

        out.append((label, run))
    return out


def main(argv: list[str] | None = None) -> int:
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=None)
    args = p.parse_args(argv)
    # Many short interleaved rounds: the median resists this box's bursts of noise.
    n = args.requests or (300 if args.quick else 2000)
    rounds = args.rounds or (1 if args.quick else 9)
    pinned = not args.no_pin and c.can_pin()
    env = c.environment()
    keys = overhead.guids(n)
    cpu: dict[str, list[float]] = {}
    with c.load_server(cpu=c.SERVER_CPU if pinned else None) as server:
        if pinned:
            c.pin(0, c.CLIENT_CPU)
        try:
            steps = variants()
            for _, run in steps:  # warm-up
                asyncio.run(run(server.url, keys[: min(n, 300)]))
            for _ in range(rounds):
                for name, run in steps:
                    gc.collect()
                    r = asyncio.run(run(server.url, keys))
                    cpu.setdefault(name, []).append(r["cpu"] / n * 1e6)
        finally:
            c.unpin_self()
    rows, previous = [], None
    floor = c.median(next(iter(cpu.values())))
    for name, values in cpu.items():
        m = c.median(values)
        step = "" if previous is None or name.startswith("arena_async bulk, without") \
            else f"{m - previous:+.1f}"
        rows.append([name, f"{m:.1f}", step, f"{m / floor:.2f}x"])
        previous = m
    text, md = c.table(["variant (cumulative from the library row down)", "client CPU us/req",
                        "step", "vs raw"], rows)
    title = (f"Overhead breakdown: client CPU per request, {n:,} requests at concurrency "
             f"{overhead.CONCURRENCY}, median of {rounds} rounds")
    markdown = "\n".join([
        f"## 1b. {title}", "", c.env_line(env), "",
        "The first arena_async row is the library with fixes 7, 10 and 11 taken back out "
        "(`benchmarks/_prototype.py`, measurement only); each row below it puts one back; "
        "the rows after the library remove one piece of its work each to price it; `step` "
        f"is the change from the row above. {c.pin_note(pinned)}. "
        "Steps of a few us are within the noise of this shared box; read the larger ones.",
        "", md,
    ])
    c.report(args, "breakdown", title, text, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
