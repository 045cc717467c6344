"""Benchmark 5 (issue #3's figures): how arena_async spends the Arena request quota.

Real loopback against FakeArena in a subprocess (``python -m arena_async.testing arena
--quota Q --quota-window W``), a fresh fake per scenario, its counters read from
``GET /_fake/stats`` (``by_route`` counts every request received, 429s included;
``quota_exhausted`` the quota 429s served). Every client call runs under a timeout.

(a) ``on_exhausted="raise"``, quota 500, 800 bulk requests: exactly 500 sent and
    answered, 300 QuotaExhaustedError raised locally, zero 429s served.
(b) ``on_exhausted="wait"``, 200 requests per 1 s window, 1,000 requests: about 5
    windows, zero 429s, steady rate >= 95 % of the quota's rate. The requests finish in
    bursts, one per window; the steady rate is the requests of the full windows between
    the second and the last burst over the time between their starts.
(c) three clients in separate processes on one user, ``on_exhausted="raise"``, sharing
    quota 600 on one fake (each wants 400) through ``share=`` (a SQLite file): one
    session and one quota ledger, as the real server needs (FakeArena keeps
    ``single_session``: each login cancels the user's earlier session). Exactly the
    budget answered, everything beyond it fails with QuotaExhaustedError before it is
    sent, no 429 served, every process ends well inside its timeout.
(d) ``reserve=50``, quota 500, 800 requests: 450 sent, the last 50 never spent.
(e) ``pace=True``, quota 200 per 20 s window: the spacing of requests matches
    remaining / time-to-reset (as the client knew them) within 10 %.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

from arena_async import ArenaClient, QuotaExhaustedError, QuotaPolicy
from arena_async.testing import FakeArena

ITEMS = 50
ROUTE = "GET /items/{item}/tickets"
TIMEOUT = 60.0  # on every scenario's client work
FAKE_EMAIL, FAKE_PASSWORD = "user@example.com", "fake-password"  # FakeArena's defaults
CONCURRENCY = 16


def item_guids() -> list[str]:
    """The GUIDs of ``FakeArena.seeded(items=ITEMS, seed=1)``: deterministic, no server."""
    return FakeArena.seeded(items=ITEMS, seed=1).item_guids


def keys(n: int) -> list[str]:
    guids = item_guids()
    return [guids[i % len(guids)] for i in range(n)]


def client(url: str, policy: QuotaPolicy, concurrency: int = CONCURRENCY,
           share: str | None = None) -> ArenaClient:
    return ArenaClient(email=FAKE_EMAIL, password=FAKE_PASSWORD, base_url=url,
                       max_concurrency=concurrency, timeout=10.0, quota=policy,
                       share=share if share is not None else False)


def classify(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    if isinstance(error, QuotaExhaustedError):
        return "quota 429" if error.status == 429 else "quota local"
    return type(error).__name__


async def bulk_run(url: str, policy: QuotaPolicy, n: int, *, concurrency: int = CONCURRENCY,
                   fake: c.Server | None = None) -> dict[str, Any]:
    """``n`` bulk calls; outcome kinds, completion times, the client's view of quota, and
    the fake's counters read before the client closes (its logout is a request too)."""
    done: list[tuple[float, int | None, float | None]] = []  # (t, remaining, resets_at)
    kinds: Counter[str] = Counter()
    async with asyncio.timeout(TIMEOUT), client(url, policy, concurrency) as arena:
        started = time.time()
        async for outcome in arena.bulk(arena.items.tickets.list, keys(n)):
            kind = classify(outcome.error)
            kinds[kind] += 1
            if kind == "ok":
                q = arena.quota
                done.append((time.time(), q.remaining if q else None,
                             q.resets_at.timestamp() if q and q.resets_at else None))
        elapsed = time.time() - started
        quota = arena.quota
        before_close = await asyncio.to_thread(fake.stats) if fake is not None else None
    return {"kinds": kinds, "done": done, "started": started, "elapsed": elapsed,
            "remaining": quota.remaining if quota else None, "stats": before_close}


def served(stats: dict[str, Any]) -> tuple[int, int]:
    """(requests received on the tickets route, quota 429s served)."""
    return int(stats["by_route"].get(ROUTE, 0)), int(stats["quota_exhausted"])


def counted(stats: dict[str, Any]) -> int:
    """Requests the fake counted against the quota: every one but login."""
    return sum(v for k, v in stats["by_route"].items() if k != "POST /login")


# -- scenarios ---------------------------------------------------------------------------
Row = list[str]


def scenario_a(quick: bool) -> list[tuple[str, float, float, Callable[[float], bool], str]]:
    quota, n = (50, 80) if quick else (500, 800)
    with c.fake_arena(items=ITEMS, quota=quota) as fake:
        r = asyncio.run(bulk_run(fake.url, QuotaPolicy(on_exhausted="raise"), n, fake=fake))
        sent, s429 = served(r["stats"])
        _, s429_all = served(fake.stats())
    k = r["kinds"]
    return [
        ("(a) raise: requests sent", sent, quota, lambda v, q=quota: v == q, f"== {quota}"),
        ("(a) raise: answered OK", k["ok"], quota, lambda v, q=quota: v == q, f"== {quota}"),
        ("(a) raise: QuotaExhaustedError raised locally", k["quota local"], n - quota,
         lambda v, e=n - quota: v == e, f"== {n - quota}"),
        ("(a) raise: 429s served to the bulk requests", s429, 0, lambda v: v == 0, "== 0"),
        ("(a) raise: 429s served in all, PUT /logout on close included", s429_all, 0,
         lambda v: v == 0, "== 0"),
    ]


def bursts(times: list[float], gap: float = 0.25) -> list[list[float]]:
    groups: list[list[float]] = []
    for t in sorted(times):
        if groups and t - groups[-1][-1] <= gap:
            groups[-1].append(t)
        else:
            groups.append([t])
    return groups


def scenario_b(quick: bool) -> list[tuple[str, float, float, Callable[[float], bool], str]]:
    quota, window, n = (50, 1.0, 200) if quick else (200, 1.0, 1000)
    windows = n / quota
    policy = QuotaPolicy(on_exhausted="wait", max_wait=10.0)
    with c.fake_arena(items=ITEMS, quota=quota, window=window) as fake:
        r = asyncio.run(bulk_run(fake.url, policy, n, fake=fake))
        _, s429 = served(r["stats"])
        _, s429_all = served(fake.stats())
    groups = bursts([t for t, _, _ in r["done"]])
    if len(groups) >= 3:
        middle = sum(len(g) for g in groups[1:-1])
        steady = middle / (groups[-1][0] - groups[1][0]) / (quota / window)
    else:  # everything fitted in fewer windows than expected: no waiting to judge
        steady = float("nan")
    return [
        ("(b) wait: requests answered OK", r["kinds"]["ok"], n, lambda v, n=n: v == n,
         f"== {n}"),
        ("(b) wait: 429s served to the bulk requests", s429, 0, lambda v: v == 0, "== 0"),
        ("(b) wait: 429s served in all, PUT /logout on close included", s429_all, 0,
         lambda v: v == 0, "== 0"),
        ("(b) wait: windows used (bursts)", len(groups), windows,
         lambda v, w=windows: abs(v - w) <= 1, f"about {windows:.0f}"),
        ("(b) wait: wall time / windows' time", r["elapsed"] / (windows * window), 1.0,
         lambda v: v <= 1.05, "<= 1.05"),
        ("(b) wait: steady rate / quota rate", steady, 0.95, lambda v: v >= 0.95, ">= 0.95"),
    ]


def scenario_c(quick: bool) -> list[tuple[str, float, float, Callable[[float], bool], str]]:
    quota, each, conc = (60, 40, 4) if quick else (600, 400, 8)
    procs = 3
    with tempfile.TemporaryDirectory() as tmp, \
            c.fake_arena(items=ITEMS, quota=quota) as fake:  # single_session, as Arena
        share = f"sqlite:///{tmp}/share.db"  # one session and one ledger for the three
        start_at = time.time() + 2.0  # every child logs in first, then all start together
        children = [subprocess.Popen(
            [sys.executable, __file__, "--child", "--url", fake.url, "--requests", str(each),
             "--concurrency", str(conc), "--start-at", str(start_at), "--share", share],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ) for _ in range(procs)]
        results, hung, longest = [], 0, 0.0
        for child in children:
            try:
                out, err = child.communicate(timeout=TIMEOUT + 10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.communicate()
                hung += 1
                continue
            if child.returncode != 0:
                raise RuntimeError(f"shared-quota child failed: {err[-2000:]}")
            res = json.loads(out.strip().splitlines()[-1])
            results.append(res)
            longest = max(longest, res["elapsed"])
        stats = fake.stats()
        _, s429 = served(stats)
    kinds: Counter[str] = Counter()
    for res in results:
        kinds.update(res["kinds"])
    total = procs * each
    clean = kinds["ok"] + kinds["quota local"] + kinds["quota 429"]
    return [
        (f"(c) {procs} processes: answered OK (all processes)", kinds["ok"], quota,
         lambda v, q=quota: v == q, f"== {quota}"),
        ("(c) shared: failed cleanly (QuotaExhaustedError)", clean - kinds["ok"],
         total - quota, lambda v, e=total - quota: v == e, f"== {total - quota}"),
        ("(c) shared: other errors", total - clean if not hung else float("nan"), 0,
         lambda v: v == 0, "== 0"),
        ("(c) shared: 429s served (logouts on close included)", s429, 0,
         lambda v: v == 0, "== 0"),
        ("(c) shared: logins (one session for the three)", stats["logins"], 1,
         lambda v: v <= 2, "<= 2"),
        ("(c) shared: 401s (a session cancelled by another login)", stats["unauthorized"], 0,
         lambda v: v == 0, "== 0"),
        ("(c) shared: processes hung (killed at the timeout)", hung, 0, lambda v: v == 0,
         "== 0"),
        ("(c) shared: slowest process, s", longest, TIMEOUT, lambda v: v < TIMEOUT / 4,
         f"< {TIMEOUT / 4:.0f} (timeout {TIMEOUT:.0f})"),
    ]


async def shared_child(url: str, n: int, concurrency: int, start_at: float,
                       share: str | None) -> dict[str, Any]:
    kinds: Counter[str] = Counter()
    async with asyncio.timeout(TIMEOUT), client(url, QuotaPolicy(on_exhausted="raise"),
                                                concurrency, share) as arena:
        # Log in now (a login is not counted), so that the three start spending together;
        # private API: if it changes, the login just happens with the first request.
        with contextlib.suppress(AttributeError, TypeError):
            await arena._transport.auth.headers(arena._transport)
        await asyncio.sleep(max(0.0, start_at - time.time()))
        started = time.time()
        async for outcome in arena.bulk(arena.items.tickets.list, keys(n)):
            kinds[classify(outcome.error)] += 1
        elapsed = time.time() - started
    return {"kinds": dict(kinds), "elapsed": elapsed}


def scenario_d(quick: bool) -> list[tuple[str, float, float, Callable[[float], bool], str]]:
    quota, reserve, n = (50, 10, 80) if quick else (500, 50, 800)
    with c.fake_arena(items=ITEMS, quota=quota) as fake:
        r = asyncio.run(bulk_run(fake.url, QuotaPolicy(reserve=reserve), n, fake=fake))
        sent, s429 = served(r["stats"])
        after = counted(fake.stats())
    spend = quota - reserve
    return [
        (f"(d) reserve={reserve}: requests sent", sent, spend, lambda v, s=spend: v == s,
         f"== {spend}"),
        (f"(d) reserve={reserve}: unspent before close", quota - counted(r["stats"]), reserve,
         lambda v, rs=reserve: v == rs, f"== {reserve}"),
        (f"(d) reserve={reserve}: unspent after close (PUT /logout counts)", quota - after,
         reserve, lambda v, rs=reserve: v == rs, f"== {reserve}"),
        (f"(d) reserve={reserve}: raised locally", r["kinds"]["quota local"], n - spend,
         lambda v, e=n - spend: v == e, f"== {n - spend}"),
        (f"(d) reserve={reserve}: 429s served", s429, 0, lambda v: v == 0, "== 0"),
    ]


def scenario_e(quick: bool) -> list[tuple[str, float, float, Callable[[float], bool], str]]:
    quota, window, n = (200, 20.0, 8) if quick else (200, 20.0, 40)
    with c.fake_arena(items=ITEMS, quota=quota, window=window) as fake:
        r = asyncio.run(bulk_run(fake.url, QuotaPolicy(pace=True), n, concurrency=4))
        _, s429 = served(fake.stats())
    done = sorted(r["done"])
    observed, expected = [], []
    for (t0, rem0, reset0), (t1, _, _) in itertools.pairwise(done):
        if rem0 and reset0:
            observed.append(t1 - t0)
            expected.append((reset0 - t0) / rem0)
    ratio = c.median(observed) / c.median(expected) if observed else float("nan")
    return [
        ("(e) pace: median gap / (time-to-reset / remaining)", ratio, 1.0,
         lambda v: 0.9 <= v <= 1.1, "1.0 +- 10 %"),
        ("(e) pace: median gap, s", c.median(observed) if observed else float("nan"),
         0.0, lambda v: True,
         f"info (expected {c.median(expected) if expected else float('nan'):.3f})"),
        ("(e) pace: 429s served", s429, 0, lambda v: v == 0, "== 0"),
    ]


SCENARIOS = (scenario_a, scenario_b, scenario_c, scenario_d, scenario_e)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        p = argparse.ArgumentParser()
        p.add_argument("--url", required=True)
        p.add_argument("--requests", type=int, required=True)
        p.add_argument("--concurrency", type=int, required=True)
        p.add_argument("--start-at", type=float, required=True)
        p.add_argument("--share", default=None)
        a = p.parse_args(argv[1:])
        print(json.dumps(asyncio.run(shared_child(a.url, a.requests, a.concurrency,
                                                  a.start_at, a.share))))
        return 0
    p = c.parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    env = c.environment()
    figures: dict[str, list[float]] = {}
    meta: dict[str, tuple[float, Callable[[float], bool], str]] = {}
    started = time.perf_counter()
    for _ in range(rounds):
        for scenario in SCENARIOS:
            for name, value, expect, check, target in scenario(args.quick):
                figures.setdefault(name, []).append(float(value))
                meta[name] = (expect, check, target)
    rows = []
    for name, values in figures.items():
        expect, check, target = meta[name]
        med = c.median(values)
        passes = sum(bool(check(v)) for v in values)
        rows.append([name, c.fmt(med), " ".join(c.fmt(v) for v in values), target,
                     "info" if target.startswith("info") else
                     f"{c.verdict(bool(check(med)))} ({passes}/{len(values)} rounds)"])
        del expect
    header = ["figure", "median", "rounds", "target", "verdict"]
    text, md = c.table(header, rows)
    title = f"Quota use (issue #3): FakeArena over loopback, {rounds} rounds"
    markdown = "\n".join([
        f"## 5. {title}", "", c.env_line(env), "",
        f"A fresh `python -m arena_async.testing arena --quota Q --quota-window W` per "
        f"scenario; client `max_concurrency={CONCURRENCY}` unless stated ((c): 8 per process, "
        f"(e): 4). (c) shares one session and ledger through `share=` (SQLite) on a "
        f"single-session fake, as the real server. Not pinned (three client processes in "
        f"(c)). Took "
        f"{time.perf_counter() - started:.0f} s.", "", md,
    ])
    c.report(args, "quota", title, text, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
