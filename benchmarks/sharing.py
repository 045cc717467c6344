"""Benchmark 6 (issue #11): what share= costs one process, and what it saves four.

(a) Throughput of one process, unshared vs shared (SQLite, Redis): ``bulk`` of
    ``GET /items/{guid}/tickets`` against the load server (``benchmarks/load_server.py``:
    canned answers with quota headers, so the shared ledger works as in production),
    concurrency 32, the variants interleaved in each round. Target: a sharer keeps
    >= 0.9x the unshared throughput. Besides req/s: client CPU per request, and the
    share round trips (ledger batches) per 1,000 requests.
(b) Four processes on one integration user against FakeArena (``single_session``, as the
    real server: each login cancels the earlier session) with a quota and
    ``QuotaPolicy(reserve=R)``: without a share, with SQLite, with Redis. Per variant:
    keys ok / failed, logins, 401s, 429s, and the budget used (every request but logins).

Redis rows need ``redis-server`` on PATH (started on a free loopback port in a temp dir);
without it they read "skipped". Run alone: ``python benchmarks/sharing.py [--quick]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

from arena_async import ArenaClient, QuotaPolicy, RedisShare, Share, SQLiteShare

CONCURRENCY = 32
TARGET = 0.9
PROCS = 4
ROUTE_LOGIN = "POST /login"
FAKE_EMAIL, FAKE_PASSWORD = "user@example.com", "fake-password"  # FakeArena's defaults
TIMEOUT = 120.0


def guids(n: int) -> list[str]:
    return [f"ITEM{i:016d}" for i in range(n)]


# -- a redis-server for the Redis rows ----------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind((c.LOOPBACK, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis_server(cpu: int | None) -> Iterator[str | None]:
    """``redis://127.0.0.1:<port>/0`` of a fresh redis-server, or None when not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with tempfile.TemporaryDirectory() as directory:
        port = _free_port()
        proc = subprocess.Popen(
            [binary, "--port", str(port), "--bind", c.LOOPBACK, "--dir", directory,
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if cpu is not None:
                c.pin(proc.pid, cpu)
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection((c.LOOPBACK, port), timeout=0.2) as s:
                        s.sendall(b"PING\r\n")
                        if s.recv(16).startswith(b"+PONG"):
                            break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("redis-server did not start") from None
                    time.sleep(0.02)
            yield f"redis://{c.LOOPBACK}:{port}/0"
        finally:
            proc.terminate()
            proc.wait(5)


def make_share(url: str | None, prefix: str) -> Share | bool:
    """The share at ``url`` (Redis keys under ``prefix``: the same in every sharer);
    ``False`` (no share) without one."""
    if url is None:
        return False
    if url.startswith("sqlite:///"):
        return SQLiteShare(url[len("sqlite:///"):])
    return RedisShare(url, prefix=prefix)


# -- (a) one process ----------------------------------------------------------------------
async def one_process(url: str, keys: list[str], share: Share | bool) -> dict[str, float]:
    spent = [0.0]
    if isinstance(share, Share):  # measurement only: the wall time of every share round trip
        update = share._update

        async def timed_update(key: str, step: Any) -> Any:
            began = time.perf_counter()
            try:
                return await update(key, step)
            finally:
                spent[0] += time.perf_counter() - began

        share._update = timed_update  # type: ignore[method-assign]
    async with ArenaClient(email=c.EMAIL, password=c.PASSWORD, base_url=url,
                           max_concurrency=CONCURRENCY, share=share) as arena:
        await arena.items.tickets.list(keys[0])  # log in (and join the share) first
        link = arena.share_link
        contacts = link.ledger.contacts if link is not None else 0
        spent[0] = 0.0
        with c.timed() as t:
            failed = 0
            async for outcome in arena.bulk(arena.items.tickets.list, keys):
                failed += outcome.error is not None
        share_wall = spent[0]
        if link is not None:
            contacts = link.ledger.contacts - contacts
    if failed:
        raise RuntimeError(f"{failed} requests failed")
    return {"wall": t["wall"], "cpu": t["cpu"], "contacts": contacts, "share": share_wall}


def throughput(n: int, rounds: int, pinned: bool, redis_url: str | None,
               ) -> dict[str, dict[str, list[float]]]:
    keys = guids(n)
    out: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, \
            c.load_server(cpu=c.SERVER_CPU if pinned else None) as server:
        variants: dict[str, str | None] = {"unshared": None,
                                           "shared, SQLite": f"sqlite:///{tmp}/share.db"}
        if redis_url is not None:
            variants["shared, Redis"] = redis_url
        if pinned:
            c.pin(0, c.CLIENT_CPU)
        try:
            names = list(variants)
            for round_no in range(rounds):
                base = base_cpu = 0.0
                # The baseline first (the ratios need it), the shared variants rotated.
                shared = names[1:]
                order = ["unshared", *shared[round_no % len(shared):],
                         *shared[:round_no % len(shared)]]
                for name in order:
                    share_url = variants[name]
                    gc.collect()
                    share = make_share(share_url, f"bench:{time.time_ns()}:")
                    r = asyncio.run(one_process(server.url, keys, share))
                    rps, cpu_us = n / r["wall"], r["cpu"] / n * 1e6
                    if name == "unshared":
                        base, base_cpu = rps, cpu_us
                    figs = out.setdefault(name, {})
                    figs.setdefault("rps", []).append(rps)
                    figs.setdefault("ratio", []).append(rps / base)
                    figs.setdefault("cpu_us", []).append(cpu_us)
                    figs.setdefault("capacity", []).append(base_cpu / cpu_us)
                    figs.setdefault("contacts", []).append(r["contacts"] / n * 1000)
                    figs.setdefault("share_ms", []).append(r["share"] / n * 1e6)
        finally:
            c.unpin_self()
    return out


# -- (b) four processes --------------------------------------------------------------------
async def child(url: str, n: int, share_url: str | None, prefix: str, reserve: int,
                start_at: float) -> dict[str, Any]:
    kinds: Counter[str] = Counter()
    await asyncio.sleep(max(0.0, start_at - time.time()))
    started = time.time()
    async with asyncio.timeout(TIMEOUT), ArenaClient(
            email=FAKE_EMAIL, password=FAKE_PASSWORD, base_url=url, max_concurrency=8,
            quota=QuotaPolicy(reserve=reserve), share=make_share(share_url, prefix),
            timeout=10.0) as arena:
        items = seeded_guids()
        async for outcome in arena.bulk(arena.items.tickets.list,
                                        [items[i % len(items)] for i in range(n)]):
            kinds["ok" if outcome.error is None else type(outcome.error).__name__] += 1
    return {"kinds": dict(kinds), "elapsed": time.time() - started}


def seeded_guids() -> list[str]:
    """The seeded fake's item GUIDs (``--items 50 --seed 1``): deterministic, no request."""
    from arena_async.testing import FakeArena
    return FakeArena.seeded(items=50, seed=1).item_guids


def four_processes(share_url: str | None, n: int, quota: int, reserve: int,
                   ) -> dict[str, Any]:
    with c.fake_arena(items=50, quota=quota) as fake:
        start_at = time.time() + 2.5  # every child imported and ready, then all at once
        prefix = f"bench:{time.time_ns()}:"  # one ledger and session for these four
        procs = [subprocess.Popen(
            [sys.executable, __file__, "--child", "--url", fake.url, "--requests", str(n),
             "--reserve", str(reserve), "--start-at", str(start_at), "--prefix", prefix,
             *(["--share", share_url] if share_url else [])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(PROCS)]
        kinds: Counter[str] = Counter()
        longest = 0.0
        for proc in procs:
            out, err = proc.communicate(timeout=TIMEOUT + 30)
            if proc.returncode != 0:
                raise RuntimeError(f"sharing child failed: {err[-2000:]}")
            res = json.loads(out.strip().splitlines()[-1])
            kinds.update(res["kinds"])
            longest = max(longest, res["elapsed"])
        stats = fake.stats()
    used = sum(v for k, v in stats["by_route"].items() if k != ROUTE_LOGIN)
    return {"ok": kinds["ok"], "failed": sum(kinds.values()) - kinds["ok"],
            "errors": {k: v for k, v in kinds.items() if k != "ok"},
            "logins": stats["logins"], "401s": stats["unauthorized"],
            "429s": stats["quota_exhausted"], "used": used, "wall": longest}


# -- the report ------------------------------------------------------------------------------
# -- (a') instructions per request (callgrind) ---------------------------------------------
def ir_child(url: str, n: int, share_url: str, prefix: str) -> None:
    """One client run that callgrind watches: ``n`` requests through ``one_process``."""
    share = make_share(None if share_url == "-" else share_url, prefix)
    asyncio.run(one_process(url, guids(n), share))


def instructions_per_request(redis_url: str | None, short: int,
                             long: int) -> dict[str, float]:
    """Client instructions per request of each variant: two runs under callgrind (``long``
    and ``short`` requests; the difference cancels start-up, login and joining)."""
    from instructions import instructions as total_of

    def counted(share_url: str, n: int) -> int:
        with tempfile.TemporaryDirectory() as tmp:
            if share_url.startswith("sqlite"):
                share_url = f"sqlite:///{tmp}/share.db"
            out = Path(tmp) / "callgrind.out"
            subprocess.run(
                ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                 "--dump-instr=no", "--collect-jumps=no", sys.executable, __file__,
                 "--ir-child", server.url, str(n), share_url, f"ir:{tmp[-8:]}:"],
                check=True, env=dict(os.environ, PYTHONHASHSEED="0"),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900)
            return total_of(out.read_text())

    variants = {"unshared": "-", "shared, SQLite": "sqlite"}
    if redis_url is not None:
        variants["shared, Redis"] = redis_url
    with c.load_server() as server:
        return {name: (counted(url, long) - counted(url, short)) / (long - short)
                for name, url in variants.items()}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--ir-child"]:
        ir_child(argv[1], int(argv[2]), argv[3], argv[4])
        return 0
    if argv[:1] == ["--child"]:
        import argparse
        p = argparse.ArgumentParser()
        p.add_argument("--url", required=True)
        p.add_argument("--requests", type=int, required=True)
        p.add_argument("--reserve", type=int, required=True)
        p.add_argument("--start-at", type=float, required=True)
        p.add_argument("--share", default=None)
        p.add_argument("--prefix", default="bench:")
        a = p.parse_args(argv[1:])
        print(json.dumps(asyncio.run(child(a.url, a.requests, a.share, a.prefix, a.reserve,
                                           a.start_at))))
        return 0
    p = c.parser(__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=None, help="(a): requests per round")
    args = p.parse_args(argv)
    n = args.requests or (300 if args.quick else 5000)
    rounds = args.rounds or (1 if args.quick else 5)
    each, quota, reserve = (60, 200, 20) if args.quick else (500, 2000, 100)
    pinned = not args.no_pin and c.can_pin()
    env = c.environment()
    started = time.perf_counter()
    with redis_server(c.SERVER_CPU if pinned else None) as redis_url:
        figures = throughput(n, rounds, pinned, redis_url)
        counts = None
        if shutil.which("valgrind") is not None:
            counts = instructions_per_request(redis_url, *((100, 300) if args.quick
                                                           else (500, 2500)))
        with tempfile.TemporaryDirectory() as tmp:
            multi = {"no share": four_processes(None, each, quota, reserve),
                     "share, SQLite": four_processes(f"sqlite:///{tmp}/share.db", each,
                                                     quota, reserve)}
            if redis_url is not None:
                multi["share, Redis"] = four_processes(redis_url, each, quota, reserve)
    rows_a = []
    for name, figs in figures.items():
        ratio, capacity = c.median(figs["ratio"]), c.median(figs["capacity"])
        wall = cap = ""
        if name != "unshared":
            wall = f"{c.verdict(ratio >= TARGET)} ({ratio:.2f}x)"
            cap = f"{c.verdict(capacity >= TARGET)} ({capacity:.2f}x)"
        rows_a.append([name, c.fmt(c.median(figs["rps"])), f"{ratio:.2f}x",
                       f"{min(figs['ratio']):.2f}..{max(figs['ratio']):.2f}",
                       c.fmt(c.median(figs["cpu_us"])), f"{capacity:.2f}x",
                       c.fmt(c.median(figs["contacts"])), c.fmt(c.median(figs["share_ms"])),
                       wall, cap])
    if redis_url is None:
        rows_a.append(["shared, Redis", "skipped (no redis-server)", "", "", "", "", "", "",
                       "", ""])
    header_a = ["client (one process)", "req/s", "vs unshared", "vs unshared (min..max)",
                "client CPU us/req", "capacity vs unshared", "share round trips per 1,000 req",
                "share wall ms per 1,000 req", f"target >= {TARGET}x (wall)",
                f"target >= {TARGET}x (capacity)"]
    text_a, md_a = c.table(header_a, rows_a)
    md_ir = "(valgrind not installed: not measured)"
    text_ir = ""
    if counts is not None:
        base = counts["unshared"]
        rows_ir = [[name, f"{ir:,.0f}", f"{base / ir:.3f}x",
                    "" if name == "unshared"
                    else f"{c.verdict(base / ir >= TARGET)} ({base / ir:.2f}x)"]
                   for name, ir in counts.items()]
        text_ir, md_ir = c.table(["client (one process)", "instructions per request",
                                  "capacity vs unshared",
                                  f"target >= {TARGET}x (instructions)"], rows_ir)
    budget = quota - reserve
    rows_b = []
    for name, r in multi.items():
        errors = ", ".join(f"{k} {v}" for k, v in sorted(r["errors"].items())) or "-"
        rows_b.append([name, r["ok"], r["failed"], errors, r["logins"], r["401s"], r["429s"],
                       r["used"], f"{r['wall']:.1f}"])
    if redis_url is None:
        rows_b.append(["share, Redis", "skipped (no redis-server)", "", "", "", "", "", "",
                       ""])
    header_b = ["4 processes", "keys ok", "keys failed", "errors", "logins", "401s", "429s",
                f"budget used (of {quota}, reserve {reserve})", "slowest process, s"]
    text_b, md_b = c.table(header_b, rows_b)
    title = (f"Sharing (issue #11): one process unshared vs shared, {n:,} requests x "
             f"{rounds} rounds; {PROCS} processes x {each} keys on one user")
    markdown = "\n".join([
        f"## 6. {title}", "", c.env_line(env), "",
        f"(a) Load server (`benchmarks/load_server.py`, quota headers counting down from "
        f"10^9), {c.pin_note(pinned)}; redis-server on the server's core. `bulk` at "
        f"concurrency {CONCURRENCY}, after one request that logs in and joins the share; "
        "variants interleaved in each round, ratios per round. `capacity vs unshared` is the "
        "unshared client CPU per request over this one's (the client-bound throughput "
        "ratio, steadier than wall clock on this shared box); `share wall ms` is the time "
        "the share's round trips took, summed (a round trip holds back only the requests "
        "that wait for its batch). A sharer takes quota "
        "admissions from the shared ledger in batches of min(4 x max_concurrency, 512), "
        "asks for the next one ahead when half is spent, and reports what its answers said "
        "with the next ask, so it talks to the share once per batch, not per request; a "
        "Redis step is one script call when no other sharer changed the ledger since.",
        "", md_a, "",
        "(a') The same three clients, counted: the instructions the client process executes "
        "per request under `valgrind --tool=callgrind` (two runs of different lengths, the "
        "difference cancelling start-up, login and joining; `PYTHONHASHSEED=0`), as in "
        "section 1c. Unlike the CPU figures above, these do not move when other work lands "
        "on the box; the share's own server (redis-server) is not counted, as the load "
        "server is not. A sealed share: the session it holds is sealed as always.",
        "", md_ir, "",
        f"(b) FakeArena in a subprocess (`single_session`, as the real server), quota "
        f"{quota} with `QuotaPolicy(reserve={reserve})` in every process, so the workspace "
        f"may spend {budget}; each process wants {each} keys ({PROCS * each} in all), "
        "`max_concurrency=8`, all four start together. `budget used` counts every request "
        "the fake received but logins (logouts included). Took "
        f"{time.perf_counter() - started:.0f} s.", "", md_b,
    ])
    c.report(args, "sharing", title, "\n\n".join(t for t in (text_a, text_ir, text_b) if t),
             markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
