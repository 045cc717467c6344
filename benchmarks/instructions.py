"""Benchmark 1c: client instructions per request (callgrind), arena_async against raw aiohttp.

Wall-clock and CPU-time figures on this shared 2-core box swing by 2x when other work lands
on a core (see section 1). Instruction counts do not: ``valgrind --tool=callgrind`` counts
the instructions the client process executes, whatever else the machine is doing. Each
client runs ``GET /items/{guid}/tickets`` against the load server (a separate process, not
counted) twice, for ``short`` and ``long`` request counts, under callgrind with a fixed hash
seed; ``(Ir(long) - Ir(short)) / (long - short)`` is its instructions per request, with
start-up, imports, login and the first connections cancelled out. The same client functions
as section 1 (``overhead.py``): raw aiohttp with the library's session settings and
``json.loads``; ``arena.bulk`` over ``items.tickets.list`` with structured models, quota
tracking and the retry policy; the same client under ``gather`` + a semaphore.

Instructions are not time (cache misses, branch mispredictions and system calls are not
weighed), but for the same Python interpreter running the same kind of work the ratio of
instructions tracks the ratio of client CPU closely, and the figure is reproducible to a
fraction of a percent, so a change of 1 % is visible. ``capacity vs raw`` is raw aiohttp's
instructions per request divided by the client's (target >= 0.90x, the issue-12 figure).

Requires valgrind (Debian package ``valgrind``); about 2 minutes (``--quick``: 20 s).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
import overhead

TARGET_VS_RAW = 0.90
CLIENTS = {
    "aiohttp raw (baseline)": "run_raw_aiohttp",
    "arena_async bulk": "run_arena_bulk",
    "arena_async gather+sem": "run_arena_gather",
}
BASELINE = "aiohttp raw (baseline)"
_TOTALS = re.compile(r"^(?:summary|totals):\s+(\d+)", re.M)


def child(runner: str, url: str, n: int) -> None:
    """One client run (the process callgrind watches)."""
    asyncio.run(getattr(overhead, runner)(url, overhead.guids(n)))


def instructions(callgrind_out: str) -> int:
    """The total instruction count (``Ir``) of a callgrind output file's text."""
    match = _TOTALS.search(callgrind_out)
    if match is None:
        raise ValueError("no 'summary:' or 'totals:' line in the callgrind output")
    return int(match.group(1))


def counted(runner: str, url: str, n: int) -> int:
    """Instructions of one child run of ``n`` requests, under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        env = dict(os.environ, PYTHONHASHSEED="0")
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             "--dump-instr=no", "--collect-jumps=no", sys.executable, __file__,
             "--child", runner, url, str(n)],
            check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            timeout=900,
        )
        return instructions(out.read_text())


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return 0
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--short", type=int, default=None, help="requests of the short run")
    p.add_argument("--long", type=int, default=None, help="requests of the long run")
    args = p.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install -y valgrind): nothing measured")
        return 2
    short = args.short or (100 if args.quick else 500)
    long = args.long or (300 if args.quick else 2500)
    rounds = args.rounds or 1
    env = c.environment()
    per_request: dict[str, list[float]] = {name: [] for name in CLIENTS}
    with c.load_server() as server:
        for _ in range(rounds):
            for name, runner in CLIENTS.items():
                low = counted(runner, server.url, short)
                high = counted(runner, server.url, long)
                per_request[name].append((high - low) / (long - short))
    base = c.median(per_request[BASELINE])
    rows = []
    for name, values in per_request.items():
        ir = c.median(values)
        verdict = ""
        if name != BASELINE:
            verdict = f"{c.verdict(base / ir >= TARGET_VS_RAW)} ({base / ir:.2f}x)"
        rows.append([name, f"{ir:,.0f}", f"{ir / base:.3f}x", f"{base / ir:.3f}x", verdict])
    header = ["client", "instructions per request", "vs raw", "capacity vs raw",
              f"target >= {TARGET_VS_RAW}x"]
    text, md = c.table(header, rows)
    title = (f"Client instructions per request (callgrind): GET /items/{{guid}}/tickets, "
             f"{long:,} - {short:,} requests, concurrency {overhead.CONCURRENCY}")
    markdown = "\n".join([
        f"## 1c. {title}", "", c.env_line(env), "",
        "Instructions the client process executes per request, from two runs of different "
        "lengths under `valgrind --tool=callgrind` (the difference cancels start-up, login "
        "and the first connections; `PYTHONHASHSEED=0`); the load server runs in its own "
        "process and is not counted. Unlike the wall-clock figures of section 1, these do "
        "not move when other work shares the box. `capacity vs raw` is raw aiohttp's count "
        "divided by the client's.", "", md,
    ])
    c.report(args, "instructions", title, text, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
