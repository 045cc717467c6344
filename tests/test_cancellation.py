"""Cancelling a call leaves nothing behind: no tasks, no held slots, no open sockets.

The in-process tests check, through public behaviour only, that every admission slot is
free (as many calls as the client has slots reach the server at once) and that the login
is not left locked (the next call logs in); the subprocess test runs the same
cancellations under ``python -X dev -W error::ResourceWarning`` (asyncio debug mode,
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

import pytest

from arena_async import ArenaClient, RetryPolicy
from arena_async.bulk import _worker as bulk_worker
from arena_async.testing import FakeArena, Fault
from tests.conftest import Stalls

REPO = Path(__file__).resolve().parents[1]


def client_for(fake: FakeArena, **kw: Any) -> ArenaClient:
    return ArenaClient(email=fake.email, password=fake.password, base_url=fake.url, **kw)


async def until(condition: Any, timeout: float = 10.0) -> None:
    """Wait for ``condition`` (what it checks holds within milliseconds, or never: the
    timeout only has to outlast a stalled machine)."""
    deadline = time.perf_counter() + timeout
    while not condition():
        assert time.perf_counter() < deadline, "condition never held"
        await asyncio.sleep(0.002)


async def assert_slots_free(arena: ArenaClient, fake: FakeArena, slots: int,
                            timeout: float = 10.0, busy: int = 0) -> None:
    """All ``slots`` of the client's admission slots are free, the session usable and the
    quota estimate intact: ``slots`` calls, held at the server, all reach it at once. (A
    slot a cancelled call kept would hold one of them back; so would a login left locked,
    or an estimate lost to probing, one request at a time.) The calls are then cancelled,
    which ends them at the server too. ``busy``: requests in flight at the server that are
    not the probe's (it waits for the others to end, before and after)."""
    guid = fake.item_guids[0]
    path = f"/v1/items/{guid}/items"
    probe = fake.faults.add(Fault("slow_headers", delay=30, path=f"{path}$"))
    await until(lambda: fake.stats.in_flight <= busy)  # what cancelled calls left there
    start = len(fake.requests)

    def arrived() -> int:
        return sum(1 for r in fake.requests[start:] if r.path == path)

    calls = [asyncio.create_task(arena.items.references.list(guid)) for _ in range(slots)]
    try:
        await until(lambda: arrived() == slots, timeout)
    finally:
        fake.faults.remove(probe)
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        await until(lambda: fake.stats.in_flight <= busy)  # the server ended them too


async def test_the_slot_probe_sees_a_held_slot() -> None:
    """The probe above can fail: with one of two slots held by a call in flight, only one
    of its calls reaches the server."""
    async with FakeArena.seeded(items=2, seed=1) as fake, \
            client_for(fake, max_concurrency=2, timeout=5.0) as arena:
        a, b = fake.item_guids
        await arena.items.tickets.list(a)  # logged in; the quota state is known
        await assert_slots_free(arena, fake, 2)
        fake.faults.add(Fault("slow_headers", delay=30, path=f"{b}/tickets$", times=1))
        hog = asyncio.create_task(arena.items.tickets.list(b))
        await until(lambda: fake.stats.in_flight == 1)
        with pytest.raises(AssertionError, match="condition never held"):
            await assert_slots_free(arena, fake, 2, timeout=0.3, busy=1)
        hog.cancel()
        await asyncio.gather(hog, return_exceptions=True)
        await assert_slots_free(arena, fake, 2)


async def test_cancelled_requests_give_their_slots_back() -> None:
    async with FakeArena.seeded(items=3, seed=1) as fake, \
            client_for(fake, max_concurrency=2, timeout=5.0) as arena:
        a, b, c = fake.item_guids
        await arena.items.tickets.list(c)  # logged in; the quota state is known
        # (5 s: held at the server until cancelled, however long this process is stopped)
        fake.faults.add(Fault("slow_headers", delay=5.0, path=f"({a}|{b})/tickets$"))
        stuck = [asyncio.create_task(arena.items.tickets.list(g)) for g in (a, b)]
        await until(lambda: fake.stats.in_flight == 2)  # both slots held
        for task in stuck:
            task.cancel()
        results = await asyncio.gather(*stuck, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        async with Stalls() as stalls:
            started = time.perf_counter()
            refs = await arena.items.tickets.list(c)  # admitted at once: both slots are free
            # (at once, not after the cancelled calls' 5 s answers; slack: a loaded
            # machine, and the time it stopped this process)
            assert time.perf_counter() - started < 0.35 + stalls.lost(), stalls.gaps
        assert [r.guid for r in refs] == [t["guid"] for t in fake.ticket_refs(c)]
        await assert_slots_free(arena, fake, 2)


async def test_cancelling_a_retry_wait_and_a_login_holds_nothing() -> None:
    async with FakeArena.seeded(items=2, seed=1) as fake, \
            client_for(fake, max_concurrency=1, timeout=5.0, seed=1,
                       retry=RetryPolicy(backoff=30, max_backoff=60)) as arena:
        a, b = fake.item_guids
        # A login that hangs (the only request in flight: the call waits for it),
        # cancelled while it holds the login (5 s: still held however long this process
        # is stopped before it cancels).
        fake.faults.add(Fault("slow_headers", delay=5.0, path="/login$", times=1))
        task = asyncio.create_task(arena.items.tickets.list(a))
        await until(lambda: fake.stats.in_flight == 1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert fake.stats.logins == 0
        # The login is not left locked: the next call logs in (a held lock would hang it).
        await asyncio.wait_for(arena.items.tickets.list(b), 10.0)
        assert arena.stats.logins == 1
        # A retry wait (backoff of some seconds with this seed), cancelled while sleeping.
        # (No Retry-After: that would rightly hold every request of the client.)
        fake.faults.add(Fault("status", status=503, path="/tickets$", times=1))
        task = asyncio.create_task(arena.items.tickets.list(a))
        await until(lambda: arena.stats.waits >= 1)
        # The one slot is not held while waiting: another call goes through meanwhile (at
        # once, not after the wait of seconds; slack: a loaded machine, and the time it
        # stopped this process).
        async with Stalls() as stalls:
            started = time.perf_counter()
            await asyncio.wait_for(arena.items.tickets.list(b), 10.0)
            assert time.perf_counter() - started < 0.35 + stalls.lost(), stalls.gaps
        assert not task.done()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        async with Stalls() as stalls:
            started = time.perf_counter()
            await arena.items.tickets.list(b)  # the one slot is free, the session is usable
            assert time.perf_counter() - started < 0.35 + stalls.lost(), stalls.gaps
        await assert_slots_free(arena, fake, 1)


async def test_cancelling_iter_and_bulk_leaves_no_task_and_no_slot() -> None:
    async with FakeArena.seeded(items=40, seed=1, max_training_records=0) as fake, \
            client_for(fake, max_concurrency=8, timeout=5.0) as arena:
        guid = fake.add_item()
        fake.add_training_records(guid, 50)
        # (5 s: the third page still in flight however long this process is stopped)
        fake.faults.add(Fault("slow_headers", delay=5.0, path="/trainingrecords$", after=2,
                              times=1))
        got: list[str] = []

        async def listing() -> None:
            async for rec in arena.items.training_records.iter(guid, page_size=10):
                got.append(rec.guid)

        task = asyncio.create_task(listing())
        await until(lambda: fake.stats.in_flight == 1 and len(got) == 20)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await assert_slots_free(arena, fake, 8)

        slow = fake.faults.add(Fault("slow_headers", delay=0.5, path="/tickets$"))
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
        assert workers() == []
        fake.faults.remove(slow)
        await assert_slots_free(arena, fake, 8)


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


def no_tasks_left(where):
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not others, (where, others)


async def check(arena, fake, loop, where):
    """No task left, and (public behaviour only) every slot free and the login usable: as
    many calls as the client has slots, held at the server, all reach it at once (a slot
    kept by a cancelled call, or a login left locked, would hold one back); then they are
    cancelled in turn."""
    no_tasks_left(where)
    guid = fake.item_guids[0]
    # One call first: after a cancelled login the client logs in and, knowing nothing of
    # the quota yet, sends one probe request before any other.
    await asyncio.wait_for(arena.items.references.list(guid), 5)
    path = "/v1/items/" + guid + "/items"
    probe = Fault("slow_headers", delay=30, path=path + "$")
    on(loop, lambda: fake.faults.add(probe))
    await until(lambda: fake.stats.in_flight == 0)
    start = len(fake.requests)
    calls = [asyncio.create_task(arena.items.references.list(guid)) for _ in range(8)]
    try:
        await until(lambda: sum(1 for r in fake.requests[start:] if r.path == path) == 8)
    finally:
        on(loop, lambda: fake.faults.remove(probe))
        for call in calls:
            await cancel(call)
    await until(lambda: fake.stats.in_flight == 0)
    no_tasks_left(where)


async def cancel(task):
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


async def main(fake, loop):
    arena = ArenaClient(email=fake.email, password=fake.password, base_url=fake.url,
                        max_concurrency=8, timeout=5.0, seed=1, share=False,
                        retry=RetryPolicy(backoff=30, max_backoff=60))
    async with arena:
        guid = fake.item_guids[0]
        big = fake.item_guids[-1]
        on(loop, lambda: fake.add_training_records(big, 50))
        # 1. a login in flight (each slow answer here lasts until cancelled, however long
        # the machine stops this process)
        on(loop, lambda: fake.faults.add(Fault("slow_headers", delay=30, path="/login$",
                                               times=1)))
        task = asyncio.create_task(arena.items.tickets.list(guid))
        await until(lambda: fake.stats.in_flight == 1)
        await cancel(task)
        await check(arena, fake, loop, "login")
        # 2. iter, in the middle of the third page
        on(loop, lambda: fake.faults.add(Fault("slow_headers", delay=30,
                                               path="/trainingrecords$", after=2, times=1)))
        got = []
        async def listing():
            async for rec in arena.items.training_records.iter(big, page_size=10):
                got.append(rec)
        task = asyncio.create_task(listing())
        await until(lambda: len(got) == 20 and fake.stats.in_flight == 1)
        await cancel(task)
        await check(arena, fake, loop, "iter")
        # 3. bulk, eight calls in flight, with and without 'async with'
        slow = Fault("slow_headers", delay=30, path="/tickets$")
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
            await check(arena, fake, loop, f"bulk scoped={scoped}")
        on(loop, lambda: fake.faults.remove(slow))
        # 4. a retry wait of some seconds (seeded backoff; no Retry-After, which would
        # rightly hold every later request of the client too)
        on(loop, lambda: fake.faults.add(Fault("status", status=503, path="/tickets$",
                                               times=1)))
        task = asyncio.create_task(arena.items.tickets.list(guid))
        await until(lambda: arena.stats.waits >= 1)
        await cancel(task)
        await check(arena, fake, loop, "retry wait")
        # the client still works
        await arena.items.tickets.list(guid)
        await check(arena, fake, loop, "after")
    gc.collect()
    no_tasks_left("closed")
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
