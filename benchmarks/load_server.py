"""A minimal Arena-shaped load server for the benchmarks (not a fake: no checks, no state).

``python benchmarks/load_server.py --port 0 [--latency S] [--cpu N]`` listens on
127.0.0.1 only and prints ``READY http://127.0.0.1:<port>/v1``. It answers the paths
arena_async uses with the shapes FakeArena sends, from one aiohttp low-level handler (no
router, no middlewares), so that it costs the server as little CPU as possible:

- ``POST /v1/login``: a fixed session; ``PUT /v1/logout``: 200.
- ``GET /v1/items/{guid}/tickets``: canned JSON (two ticket references, like a seeded item).
- ``GET /v1/items/{guid}/trainingrecords?offset=&limit=``: records generated on the fly,
  deterministic, never stored. An item GUID ``REC<digits>`` has that many records
  (``REC1000000``: one million); any other item has 12.
- ``GET /_fake/stats``: ``{"requests": n, "statuses": {...}}``.

Every answer carries the quota headers (a counter from 10**9 down, a reset 24 h on), and
``--latency`` delays every answer by that many seconds. ``asyncio.sleep`` wakes late (the
loop's epoll timeout is rounded up to whole milliseconds: about 1 ms late for 20 ms on this
box), so the server measures that lateness at start (the median of 20 sleeps) and sleeps
that much less: a lone request is answered ``latency`` after it arrived, not 1-2 ms later.
``GET /_fake/stats`` reports the measured lateness (``sleep_lateness``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta

from aiohttp import web

from arena_async.testing._fake_arena import format_reset

HOST = "127.0.0.1"
JSON = "application/json"

LOGIN = json.dumps({"arenaSessionId": "BENCH-SESSION|", "workspaceId": 123456789,
                    "workspaceName": "Bench", "workspaceRequestLimit": 10**9}).encode()
TICKETS = json.dumps({"count": 2, "results": [
    {"guid": "C6RPOJVJXW5O7LNAHJ3L", "ticket": {"guid": "DX1LZ5S2P86R7S0KUEAJ",
                                                "number": "REQ-000123"}},
    {"guid": "G1B4Q0B2YF4C2Q6G1J2T", "ticket": {"guid": "M8SE5GS7O3BWF1ZF5F0W",
                                                "number": "CHG-000045"}},
]}, separators=(",", ":")).encode()
PLANS = [(f"PLAN{i:016d}", f"TRP-{i + 1:06d}") for i in range(50)]
DEFAULT_RECORDS = 12


def record_json(i: int) -> str:
    """Training record number ``i`` in the list form (as FakeArena renders it)."""
    plan, number = PLANS[i % 50]
    return f'{{"guid":"TR{i:018d}","trainingplan":{{"guid":"{plan}","number":"{number}"}}}}'


def records_page(total: int, offset: int, limit: int) -> bytes:
    stop = min(total, offset + limit)
    items = ",".join(record_json(i) for i in range(offset, stop))
    return f'{{"count":{max(0, stop - offset)},"results":[{items}]}}'.encode()


class LoadServer:
    def __init__(self, latency: float, sleep_for: float) -> None:
        self.latency = latency
        self.sleep_for = sleep_for  # latency minus asyncio.sleep's measured lateness
        self.remaining = 10**9
        self.reset = format_reset(datetime.now(UTC) + timedelta(days=1))
        self.requests = 0
        self.statuses: Counter[int] = Counter()

    def _answer(self, body: bytes, status: int = 200) -> web.Response:
        self.remaining -= 1
        self.statuses[status] += 1
        return web.Response(body=body, status=status, content_type=JSON, headers={
            "X-Arena-Requests-Remaining": str(self.remaining),
            "X-Arena-Next-Request-Limit-Reset": self.reset,
        })

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path == "/_fake/stats":
            return web.json_response({"requests": self.requests,
                                      "statuses": {str(k): v for k, v in self.statuses.items()},
                                      "sleep_lateness": self.latency - self.sleep_for})
        self.requests += 1
        if self.latency:
            await asyncio.sleep(self.sleep_for)
        if path.endswith("/tickets"):
            return self._answer(TICKETS)
        if path.endswith("/trainingrecords"):
            guid = path.split("/")[-2]
            total = int(guid[3:]) if guid.startswith("REC") and guid[3:].isdigit() \
                else DEFAULT_RECORDS
            query = request.query
            offset = int(query.get("offset", "0"))
            limit = int(query.get("limit", "20"))
            return self._answer(records_page(total, offset, limit))
        if path == "/v1/login":
            await request.read()
            self.statuses[200] += 1
            return web.Response(body=LOGIN, content_type=JSON)
        if path == "/v1/logout":
            return self._answer(b"")
        return self._answer(b'{"status":404,"errors":[{"code":404,"message":"Not Found"}]}',
                            404)


async def calibrate(latency: float, samples: int = 20) -> float:
    """How long to ``asyncio.sleep`` so that ``latency`` seconds have passed on waking."""
    if latency <= 0:
        return 0.0
    loop = asyncio.get_running_loop()
    late = []
    for _ in range(samples):
        start = loop.time()
        await asyncio.sleep(latency)
        late.append(loop.time() - start - latency)
    late.sort()
    return max(0.0, latency - max(0.0, late[len(late) // 2]))


async def serve(port: int, latency: float) -> None:
    app = LoadServer(latency, await calibrate(latency))
    server = web.Server(app.handle, access_log=None)
    runner = web.ServerRunner(server, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port, backlog=1024)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"READY http://{HOST}:{runner.addresses[0][1]}/v1", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    p.add_argument("--cpu", type=int, default=None, help="pin this process to one core")
    args = p.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    asyncio.run(serve(args.port, args.latency))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
