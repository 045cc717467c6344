"""Cancelling a call leaves nothing behind: no tasks, no held slots, no open sockets.

The in-process tests check the limiter and the auth lock; the subprocess test runs the
same cancellations under ``python -X dev -W error::ResourceWarning`` (asyncio debug mode,
every ResourceWarning an error) with the fake server on a loop of its own in another
thread, so every task left on the client's loop is the client's.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from arena_async import ArenaClient, RetryPolicy
from arena_async.bulk import _worker as bulk_worker
from arena_async.testing import FakeArena, Fault

REPO = Path(__file__).resolve().parents[1]


def client_for(fake: FakeArena, **kw: Any) -> ArenaClient:
    return ArenaClient(email=fake.email, password=fake.password, base_url=fake.url, **kw)


async def until(condition: Any, timeout: float = 2.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        assert time.perf_counter() < deadline, "condition never held"
        await asyncio.sleep(0.002)


async def test_cancelled_requests_give_their_slots_back() -> None:
    async with FakeArena.seeded(items=3, seed=1) as fake, \
            client_for(fake, max_concurrency=2, timeout=5.0) as arena:
        a, b, c = fake.item_guids
        await arena.items.tickets.list(c)  # logged in; the quota state is known
        fake.faults.add(Fault("slow_headers", delay=0.5, path=f"({a}|{b})/tickets$"))
        stuck = [asyncio.create_task(arena.items.tickets.list(g)) for g in (a, b)]
        await until(lambda: fake.stats.in_flight == 2)
        limiter = arena._pool.limiter
        assert limiter.stats.in_flight == 2
        for task in stuck:
            task.cancel()
        results = await asyncio.gather(*stuck, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        assert limiter.stats.in_flight == 0
        started = time.perf_counter()
        refs = await arena.items.tickets.list(c)  # admitted at once: both slots are free
        assert time.perf_counter() - started < 0.2
        assert [r.guid for r in refs] == [t["guid"] for t in fake.ticket_refs(c)]
        assert limiter.estimated_remaining is not None  # the quota estimate is intact


async def test_cancelling_a_retry_wait_and_a_login_holds_nothing() -> None:
    async with FakeArena.seeded(items=2, seed=1) as fake, \
            client_for(fake, max_concurrency=1, timeout=5.0, seed=1,
                       retry=RetryPolicy(backoff=30, max_backoff=60)) as arena:
        a, b = fake.item_guids
        # A login that hangs, cancelled while the auth lock is held.
        fake.faults.add(Fault("slow_headers", delay=0.5, path="/login$", times=1))
        task = asyncio.create_task(arena.items.tickets.list(a))
        await until(lambda: fake.stats.in_flight == 1)
        assert arena._auth._lock.locked()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert not arena._auth._lock.locked()
        # A retry wait (backoff of some seconds with this seed), cancelled while sleeping.
        # (No Retry-After: that would rightly hold every request of the client.)
        fake.faults.add(Fault("status", status=503, path="/tickets$", times=1))
        task = asyncio.create_task(arena.items.tickets.list(a))
        await until(lambda: arena._pool.stats.waits >= 1)
        assert arena._pool.limiter.stats.in_flight == 0  # the slot is not held while waiting
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        started = time.perf_counter()
        await arena.items.tickets.list(b)  # the one slot is free, the session is usable
        assert time.perf_counter() - started < 0.2


async def test_cancelling_iter_and_bulk_leaves_no_task_and_no_slot() -> None:
    async with FakeArena.seeded(items=40, seed=1, max_training_records=0) as fake, \
            client_for(fake, max_concurrency=8, timeout=5.0) as arena:
        guid = fake.add_item()
        fake.add_training_records(guid, 50)
        fake.faults.add(Fault("slow_headers", delay=0.5, path="/trainingrecords$", after=2,
                              times=1))
        got: list[str] = []

        async def listing() -> None:
            async for rec in arena.items.training_records.iter(guid, page_size=10):
                got.append(rec.guid)

        task = asyncio.create_task(listing())
        await until(lambda: fake.stats.in_flight == 1 and len(got) == 20)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert arena._pool.limiter.stats.in_flight == 0

        fake.faults.add(Fault("slow_headers", delay=0.5, path="/tickets$"))
        run = arena.bulk(arena.items.tickets.list, fake.item_guids[:40])

        async def fan_out() -> None:
            async for _ in run:
                pass

        task = asyncio.create_task(fan_out())
        await until(lambda: fake.stats.in_flight == 8)
        assert run.max_tasks == 8

        def workers() -> list[asyncio.Task[Any]]:
            return [t for t in asyncio.all_tasks()
                    if getattr(t.get_coro(), "cr_code", None) is bulk_worker.__code__]

        assert len(workers()) == 8
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert arena._pool.limiter.stats.in_flight == 0
        assert workers() == []


SCRIPT = r'''
import asyncio, gc, sys, threading, time
from arena_async import ArenaClient, RetryPolicy
from arena_async.testing import FakeArena, Fault


def serve():
    """The fake on its own loop in a thread: this loop then holds only client tasks."""
    box, ready = {}, threading.Event()

    def run():
        loop = asyncio.new_event_loop()
        fake = FakeArena.seeded(items=40, seed=1, max_training_records=0)
        loop.run_until_complete(fake.start())
        box.update(fake=fake, loop=loop)
        ready.set()
        loop.run_forever()
        loop.run_until_complete(fake.close())
        loop.close()

    thread = threading.Thread(target=run)
    thread.start()
    ready.wait()
    return box["fake"], box["loop"], thread


def on(loop, fn):
    """Run fn on the fake's loop and wait for it."""
    done = threading.Event()
    def call():
        fn()
        done.set()
    loop.call_soon_threadsafe(call)
    done.wait()


async def until(condition):
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.002)
    raise AssertionError("condition never held")


def check(arena, where):
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not others, (where, others)
    assert arena._pool.limiter.stats.in_flight == 0, where
    assert not arena._auth._lock.locked(), where


async def cancel(task):
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


async def main(fake, loop):
    arena = ArenaClient(email=fake.email, password=fake.password, base_url=fake.url,
                        max_concurrency=8, timeout=5.0, seed=1,
                        retry=RetryPolicy(backoff=30, max_backoff=60))
    async with arena:
        guid = fake.item_guids[0]
        big = fake.item_guids[-1]
        on(loop, lambda: fake.add_training_records(big, 50))
        # 1. a login in flight
        on(loop, lambda: fake.faults.add(Fault("slow_headers", delay=0.5, path="/login$",
                                               times=1)))
        task = asyncio.create_task(arena.items.tickets.list(guid))
        await until(lambda: fake.stats.in_flight == 1)
        await cancel(task)
        check(arena, "login")
        # 2. iter, in the middle of the third page
        on(loop, lambda: fake.faults.add(Fault("slow_headers", delay=0.5,
                                               path="/trainingrecords$", after=2, times=1)))
        got = []
        async def listing():
            async for rec in arena.items.training_records.iter(big, page_size=10):
                got.append(rec)
        task = asyncio.create_task(listing())
        await until(lambda: len(got) == 20 and fake.stats.in_flight == 1)
        await cancel(task)
        check(arena, "iter")
        # 3. bulk, eight calls in flight, with and without 'async with'
        slow = Fault("slow_headers", delay=0.5, path="/tickets$")
        on(loop, lambda: fake.faults.add(slow))
        async def fan_out(scoped):
            run = arena.bulk(arena.items.tickets.list, fake.item_guids)
            if scoped:
                async with run:
                    async for _ in run:
                        pass
            else:
                async for _ in run:
                    pass
        for scoped in (True, False):
            task = asyncio.create_task(fan_out(scoped))
            await until(lambda: fake.stats.in_flight == 8)
            await cancel(task)
            check(arena, f"bulk scoped={scoped}")
            await until(lambda: fake.stats.in_flight == 0)
        on(loop, lambda: fake.faults.remove(slow))
        # 4. a retry wait of some seconds (seeded backoff; no Retry-After, which would
        # rightly hold every later request of the client too)
        on(loop, lambda: fake.faults.add(Fault("status", status=503, path="/tickets$",
                                               times=1)))
        task = asyncio.create_task(arena.items.tickets.list(guid))
        await until(lambda: arena._pool.stats.waits >= 1)
        await cancel(task)
        check(arena, "retry wait")
        # the client still works
        await arena.items.tickets.list(guid)
        check(arena, "after")
    gc.collect()
    check(arena, "closed")
    print("OK", flush=True)


fake, loop, thread = serve()
try:
    asyncio.run(main(fake, loop))
finally:
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
gc.collect()
'''


def test_cancellation_under_dev_mode_leaves_no_warning(tmp_path: Path) -> None:
    script = tmp_path / "cancel_everything.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, "-X", "dev", "-W", "error::ResourceWarning",
                           str(script)], capture_output=True, text=True, timeout=60, cwd=REPO,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "OK"
    for bad in ("Unclosed", "unclosed", "Task was destroyed", "never awaited",
                "ResourceWarning", "Traceback", "Exception ignored"):
        assert bad not in done.stderr, done.stderr
