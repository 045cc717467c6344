"""MEASUREMENT ONLY: the library fixes proposed in RESULTS.md, applied at run time.

Nothing here is imported by the library, and no library file is changed: ``applied()``
patches classes and module globals of ``arena_async`` in the benchmark process only, for
the duration of a ``with`` block, so that a benchmark can show what a proposed fix would
buy next to the library as it is. Each patch is a copy of the library code with the
change described next to it; the semantics (errors, cancellation, quota bookkeeping) are
the library's.

1. ``_limiter.Limiter.slot``: a class-based async context manager instead of
   ``@asynccontextmanager`` (no async generator per request, no loop asyncgen hooks).
2. ``_pool.parse_quota``: the reset header parsed once per distinct string (LRU cache):
   the header only changes when the window does.
3. ``_pool.SessionPool._exchange``: a 2xx answer skips ``classify`` / ``self.now()``, and
   the response is returned without ``attrs.evolve`` on the first attempt.
4. ``_protocol.build_url`` (as used by ``arena/items.py``): segments made only of
   unreserved characters are not run through ``urllib.parse.quote`` (same result);
5. ``bulk.BulkRun._run``: completions reported by a done-callback into a deque, O(1) per
   completion, instead of ``asyncio.wait(pending, FIRST_COMPLETED)``, which adds and
   removes a callback on every pending task at every wake-up (O(concurrency)).
6. ``_convert._FAST``: the same converter plus a hook factory for ``X | None`` that
   resolves ``X``'s hook once (cattrs' default dispatches on every call), and an exact
   ``type(value) is dict`` fast path before ``isinstance(value, Mapping)``.
6b. (``"codegen"``, not applied by default) ``_convert._FAST`` replaced by generated
   per-model functions with the strict checks inlined (``benchmarks/_codegen.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections import deque
from collections.abc import AsyncGenerator, Iterable, Iterator, Mapping
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin
from urllib.parse import quote

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

import arena_async._convert as conv
import arena_async._limiter as lim
import arena_async._pool as pool
import arena_async._protocol as proto
import arena_async.arena.items as items
import arena_async.bulk as bulk
from arena_async.models._wire import ALIASES, UNWRAP, WIRE
from arena_async.models.common import Outcome

# -- 1. Limiter.slot without an async generator --------------------------------------------


class _Slot:
    __slots__ = ("_limiter", "_permit")

    def __init__(self, limiter: lim.Limiter) -> None:
        self._limiter = limiter

    async def __aenter__(self) -> lim.Permit:
        self._permit = await self._limiter._acquire()
        return self._permit

    async def __aexit__(self, *exc: object) -> None:
        limiter = self._limiter
        limiter._settle(self._permit, spent=True)
        limiter._in_flight -= 1
        limiter._slots.release()


def _slot(self: lim.Limiter) -> _Slot:
    return _Slot(self)


# -- 2. parse_quota with the reset date cached -------------------------------------------
_reset_date = functools.lru_cache(maxsize=64)(proto.parse_reset_date)


def _parse_quota(headers: Mapping[str, str], limit: int | None = None) -> Any:
    raw = headers.get(proto.REMAINING_HEADER)
    if raw is None:
        return None
    try:
        remaining = int(raw.strip())
    except ValueError:
        return None
    return proto.Quota(remaining=max(0, remaining),
                       resets_at=_reset_date(headers.get(proto.RESET_HEADER)), limit=limit)


# -- 3. _exchange: 2xx fast path, no evolve on the first attempt -----------------------------
_original_exchange = pool.SessionPool._exchange
#: The per-attempt timeout of the fast path; ``breakdown.py`` swaps it to price it.
TIMEOUT: Any = asyncio.timeout


async def _exchange(self: pool.SessionPool, request: proto.Request,
                    deadline_at: float | None, *rest: Any) -> pool.Response:
    # The common case, one attempt that succeeds, with exactly the library's bookkeeping;
    # anything else (no slot budget, failure, non-2xx) is handed to the library's loop,
    # which starts from scratch (the prototype only measures the fast path).
    if deadline_at is not None:
        return await _original_exchange(self, request, deadline_at, *rest)
    auth_headers: Mapping[str, str] = {}
    if request.auth:
        auth_headers, _ = await self.auth.headers(self)
    async with self.limiter.slot() as permit:
        try:
            async with TIMEOUT(self.timeout):
                response = await self._transmit(request, auth_headers)
        except BaseException:
            permit.unsent()  # prototype: give the slot back and let the library retry
            raise
        quota = pool.parse_quota(response.headers, self.quota_limit)
        if 200 <= response.status < 300:
            permit.observe(quota, exhausted=False)
            return response
        permit.unsent()
    return await _original_exchange(self, request, deadline_at, *rest)


# -- 4. build_url without quote() for plain segments -----------------------------------------
_PLAIN = re.compile(r"[A-Za-z0-9_.~-]+")


def _build_url(base_url: str, *segments: str) -> str:
    tail = "/".join(s if _PLAIN.fullmatch(s) else quote(s, safe="") for s in segments)
    return f"{base_url.rstrip('/')}/{tail}"


# -- 5. BulkRun._run with O(1) completions -------------------------------------------------
async def _bulk_run(self: bulk.BulkRun[Any, Any]) -> AsyncGenerator[Outcome[Any, Any], None]:
    keys = self._keys
    sync_keys = iter(keys) if isinstance(keys, Iterable) else None
    async_keys = aiter(keys) if sync_keys is None else None
    pending: dict[asyncio.Task[Outcome[Any, Any]], int] = {}
    completed: deque[asyncio.Task[Outcome[Any, Any]]] = deque()
    ready: dict[int, Outcome[Any, Any]] = {}
    state = {"next_index": 0, "next_out": 0, "exhausted": False}
    waiter: list[asyncio.Future[None] | None] = [None]
    window = self._concurrency * 4
    loop = asyncio.get_running_loop()

    def on_done(task: asyncio.Task[Outcome[Any, Any]]) -> None:
        completed.append(task)
        fut = waiter[0]
        if fut is not None and not fut.done():
            fut.set_result(None)

    async def draw() -> tuple[bool, Any]:
        if sync_keys is not None:
            for key in sync_keys:
                return True, key
            return False, None
        assert async_keys is not None
        try:
            return True, await anext(async_keys)
        except StopAsyncIteration:
            return False, None

    async def refill() -> None:
        while not state["exhausted"] and len(pending) < self._concurrency \
                and (not self._ordered or len(ready) + len(pending) < window):
            more, key = await draw()
            if not more:
                state["exhausted"] = True
                return
            task = asyncio.create_task(self._call(key))
            task.add_done_callback(on_done)
            pending[task] = state["next_index"]
            state["next_index"] += 1
            self.max_tasks = max(self.max_tasks, len(pending))

    try:
        await refill()
        while pending:
            if not completed:
                waiter[0] = loop.create_future()
                try:
                    await waiter[0]
                finally:
                    waiter[0] = None
            finished: list[Outcome[Any, Any]] = []
            while completed:
                task = completed.popleft()
                index = pending.pop(task)
                outcome = task.result()
                if self._ordered:
                    ready[index] = outcome
                else:
                    finished.append(outcome)
            while state["next_out"] in ready:
                finished.append(ready.pop(state["next_out"]))
                state["next_out"] += 1
            await refill()
            for outcome in finished:
                yield outcome
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


# -- 6. the converter: Optional resolved once, dict fast path ---------------------------------
def _is_optional(t: Any) -> bool:
    origin = get_origin(t)
    if origin is not Union and origin is not UnionType:
        return False
    args = get_args(t)
    return len(args) == 2 and NoneType in args


def _optional_factory(t: Any, converter: cattrs.Converter) -> Any:
    inner_type = next(a for a in get_args(t) if a is not NoneType)
    inner = converter.get_structure_hook(inner_type)

    def structure(value: Any, _: Any) -> Any:
        return None if value is None else inner(value, inner_type)

    return structure


def _attrs_factory(cl: type[Any], converter: cattrs.Converter) -> Any:
    fields = attrs.fields(cl)
    overrides = {f.name: override(rename=conv.wire_name(f)) for f in fields if WIRE in f.metadata}
    inner = make_dict_structure_fn(cl, converter, _cattrs_forbid_extra_keys=False,
                                   _cattrs_detailed_validation=False,
                                   **overrides)  # type: ignore[arg-type]
    aliases = [(conv.wire_name(f), f.metadata[ALIASES]) for f in fields if ALIASES in f.metadata]
    unwraps = [(conv.wire_name(f), f.metadata[UNWRAP]) for f in fields if UNWRAP in f.metadata]

    def structure(value: Any, target: Any) -> Any:
        if type(value) is not dict and not isinstance(value, Mapping):
            raise TypeError(f"expected an object, got {conv._describe(value)}")
        copied: dict[str, Any] | None = None
        for key, alternatives in aliases:
            if key not in value:
                for alt in alternatives:
                    if alt in value:
                        copied = dict(value) if copied is None else copied
                        copied[key] = copied.pop(alt)
                        break
        for key, inner_key in unwraps:
            wrapped = (copied or value).get(key)
            if isinstance(wrapped, Mapping):
                copied = dict(value) if copied is None else copied
                copied[key] = wrapped.get(inner_key, [])
        return inner(copied if copied is not None else value, target)

    return structure


def fast_converter() -> cattrs.Converter:
    c = conv._make(detailed=False)
    c.register_structure_hook_factory(attrs.has, _attrs_factory)  # later factories win
    c.register_structure_hook_factory(_is_optional, _optional_factory)
    return c


# -- applying ---------------------------------------------------------------------------
PATCHES = ("slot", "quota", "exchange", "build_url", "bulk", "converter")
#: Not in PATCHES (the default set): the generated structuring fast path of fix 6b.
CODEGEN = "codegen"


@contextlib.contextmanager
def applied(which: Iterable[str] = PATCHES) -> Iterator[None]:
    """Apply the named patches for the duration of the block (this process only)."""
    which = set(which)
    saved: list[tuple[Any, str, Any]] = []

    def patch(target: Any, name: str, value: Any) -> None:
        saved.append((target, name, getattr(target, name)))
        setattr(target, name, value)

    if "slot" in which:
        patch(lim.Limiter, "slot", _slot)
    if "quota" in which:
        patch(pool, "parse_quota", _parse_quota)
    if "exchange" in which:
        patch(pool.SessionPool, "_exchange", _exchange)
    if "build_url" in which:
        patch(items, "build_url", _build_url)
    if "bulk" in which:
        patch(bulk.BulkRun, "_run", _bulk_run)
    if "converter" in which and CODEGEN not in which:
        patch(conv, "_FAST", fast_converter())
    if CODEGEN in which:
        from _codegen import FastStructurer

        patch(conv, "_FAST", FastStructurer(fast_converter()))
    try:
        yield
    finally:
        for target, name, value in reversed(saved):
            setattr(target, name, value)
