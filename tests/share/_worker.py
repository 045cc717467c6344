"""One sharer, as a real OS process, for tests/share/test_multiprocess.py.

Run as ``python tests/share/_worker.py '<json config>'``, or forked by
tests/share/_zygote.py (what the tests do: ``run(config)`` in a process that has already
imported arena_async). It prints ``STARTED`` once its
imports are done, waits for the ``go`` file (when given, so every process starts at once),
runs ``arena.items.tickets.list`` over its keys with ``arena.bulk`` and prints one JSON
line (``RESULT {...}``): the outcome counts by kind, when its first request succeeded
(epoch seconds), when it started, and its client's counters. It exits 0 whatever the
outcomes; the test decides.

Config keys: ``base_url``, ``email``, ``password``, ``workspace_id``, ``share`` (a URL,
``none`` for no share, ``default`` for the default share),
``timings`` (SQLiteShare/RedisShare keywords), ``prefix`` (Redis key prefix), ``keys``
(GUIDs), ``concurrency``, ``reserve``, ``on_exhausted``, ``stop_on_quota`` (stop at the
first QuotaExhaustedError), ``go`` (a path to wait for), ``joined`` (a directory: once its
first call succeeded the worker marks itself there, and it closes its client only when
``joined_count`` workers have, so that none leaves the share before the others joined),
``close_after`` (a path to wait for before closing the client), ``numbers`` (item numbers:
the worker resolves them with ``arena.items.guids_for`` instead, and its RESULT carries
``guids``), ``cache_ttl`` (seconds: ``cache=CachePolicy(ttl=...)``), ``timeout`` (the
client's request timeout, 20 s by default).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from arena_async import (
    ArenaClient,
    CachePolicy,
    QuotaExhaustedError,
    QuotaPolicy,
    RedisShare,
    Share,
    SQLiteShare,
)


def make_share(config: dict[str, Any]) -> Share | bool | None:
    url: str = config["share"]
    if url == "none":  # no share (for a test that shows what the share prevents)
        return False
    if url == "default":  # the default share (ARENA_SHARE or the user's state folder)
        return None
    timings: dict[str, Any] = config.get("timings", {})
    if url.startswith("sqlite:///"):
        return SQLiteShare(url[len("sqlite:///"):], **timings)
    return RedisShare(url, prefix=config.get("prefix", "arena_async:"), **timings)


async def wait_for(path: str) -> None:
    while not os.path.exists(path):
        await asyncio.sleep(0.005)


def dump_tasks() -> None:
    """SIGUSR1: every task's stack to stderr (the test asks when a worker seems stuck)."""
    for task in asyncio.all_tasks():
        task.print_stack(file=sys.stderr)
    sys.stderr.flush()


async def main(config: dict[str, Any]) -> dict[str, Any]:
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks)
    if config.get("go"):
        await wait_for(config["go"])
    started = time.time()
    first_ok: float | None = None
    kinds: Counter[str] = Counter()
    guids: dict[str, str | None] = {}
    policy = QuotaPolicy(reserve=config.get("reserve", 0),
                         on_exhausted=config.get("on_exhausted", "raise"))
    async with ArenaClient(email=config["email"], password=config["password"],
                           workspace_id=config["workspace_id"], base_url=config["base_url"],
                           max_concurrency=config.get("concurrency", 8), quota=policy,
                           timeout=config.get("timeout", 20.0), share=make_share(config),
                           cache=CachePolicy(ttl=config["cache_ttl"]) if config.get("cache_ttl")
                           else None) as arena:
        if config.get("numbers") is not None:
            guids = await arena.items.guids_for(config["numbers"])
            kinds["ok"] += len(guids)
            first_ok = time.time()
        async with arena.bulk(arena.items.tickets.list, config["keys"]) as run:
            async for outcome in run:
                if outcome.error is None:
                    kinds["ok"] += 1
                    if first_ok is None:
                        first_ok = time.time()
                        if config.get("joined"):
                            Path(config["joined"], str(os.getpid())).touch()
                    continue
                kinds[type(outcome.error).__name__] += 1
                if config.get("stop_on_quota") and isinstance(outcome.error,
                                                              QuotaExhaustedError):
                    break
        if config.get("joined"):
            while len(os.listdir(config["joined"])) < config["joined_count"]:
                await asyncio.sleep(0.005)
        if config.get("close_after"):
            print("WAITING", flush=True)
            await wait_for(config["close_after"])
        stats = arena.stats
        counters = {name: getattr(stats, name) for name in
                    ("requests", "retries", "rate_limited", "logins", "waits", "cache_hits",
                     "cache_misses")}
    result = {"pid": os.getpid(), "kinds": dict(kinds), "started": started,
              "first_ok": first_ok, "ended": time.time(), "stats": counters}
    if config.get("numbers") is not None:
        result["guids"] = guids
    return result


def run(config: dict[str, Any]) -> None:
    """The whole worker: STARTED, the run, RESULT (tests/share/_zygote.py calls it in each
    process it forks)."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    print("STARTED", flush=True)
    result = asyncio.run(main(config))
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    run(json.loads(sys.argv[1]))
