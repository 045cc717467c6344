"""MEASUREMENT ONLY: library changes priced at run time, in the benchmark process only.

Nothing here is imported by the library, and no library file is changed: ``applied()``
patches classes and module globals of ``arena_async`` for the duration of a ``with``
block, so that a benchmark can show a change next to the library as it is. Fixes 1-6 of
the first analysis and 7-10 of the second are in the library; the patches here either take
one of them back out (to price it) or try a change the library does not make:

- ``"cattrs"`` (takes fix 7 out): ``_convert.structure`` through the cattrs fast converter
  instead of the generated per-model functions (``_codegen.cattrs_only``).
- ``"gated"`` (takes fix 8 out): every admission through ``Limiter._acquire`` (the
  quota gate's ``asyncio.Lock``), no synchronous fast path.
- ``"timer"`` (takes fix 10 out): an ``asyncio.timeout`` per attempt instead of the pool's
  shared attempt timer (``SessionPool._timed_transmit``).
- ``"timeout"`` (not in the library): the first attempt of a request bounded by aiohttp's
  per-request ``timeout=ClientTimeout(total=...)`` instead of a nested ``asyncio.timeout``.
  The library keeps ``asyncio.timeout``: the chaos tests' spec counts a send that its
  timeout ended as one cancelled from outside ``SessionPool._transmit``
  (``tests/chaos/_chaos.py``, ``Tally.cut``), and aiohttp's timer raises inside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import aiohttp

import arena_async._limiter as lim
import arena_async._pool as pool
import arena_async._protocol as proto

#: The per-request timeout the ``"timeout"`` patch hands aiohttp (None: none at all, which
#: ``breakdown.py`` uses to price the timeout).
TIMEOUT: aiohttp.ClientTimeout | None = aiohttp.ClientTimeout(total=30.0,
                                                              ceil_threshold=float("inf"))

_original_exchange = pool.SessionPool._exchange


async def _transmit(self: pool.SessionPool, request: proto.Request,
                    auth_headers: Mapping[str, str]) -> pool.Response:
    headers = {**self._headers, **(request.headers or {}), **auth_headers}
    data: bytes | None = request.data
    if request.json is not None:
        data = json.dumps(request.json, separators=(",", ":")).encode()
        headers.setdefault("Content-Type", "application/json")
    self._counters.requests += 1
    kw: dict[str, Any] = {} if TIMEOUT is None else {"timeout": TIMEOUT}
    async with self.session.request(
        request.method, pool.wire_url(request.url), params=request.params, data=data,
        headers=headers, allow_redirects=False, **kw,
    ) as resp:
        body = await resp.read()
    return pool.Response(resp.status, resp.headers, body)


async def _exchange(self: pool.SessionPool, request: proto.Request,
                    deadline_at: float | None, *rest: Any) -> pool.Response:
    # The common case, one attempt that succeeds, with the library's bookkeeping; anything
    # else (a deadline, a failure, a non-2xx) goes to the library's loop, from scratch
    # (the prototype only measures the fast path).
    if deadline_at is not None:
        return await _original_exchange(self, request, deadline_at, *rest)
    auth_headers: Mapping[str, str] = {}
    if request.auth:
        await self.auth.headers(self)
    async with self.limiter.slot() as permit:
        if request.auth:
            auth_headers, _ = await self.auth.current()
        try:
            response = await _transmit(self, request, auth_headers)
        except BaseException:
            permit.unsent()  # prototype: give the slot back and let the library retry
            raise
        quota = pool.parse_quota(response.headers, self.quota_limit)
        if 200 <= response.status < 300:
            permit.observe(quota)
            return response
        permit.unsent()
    return await _original_exchange(self, request, deadline_at, *rest)


def _no_fast_admission(self: lim.Limiter) -> None:
    return None


async def _timer_per_attempt(self: pool.SessionPool, request: proto.Request,
                             auth_headers: Mapping[str, str]) -> pool.Response:
    async with asyncio.timeout(self.timeout):
        return await self._transmit(request, auth_headers)


#: Patches taking a library fix back out (the library as it was before fixes 7, 8 and 10).
BEFORE = ("cattrs", "gated", "timer")
#: Patches the library does not have.
PATCHES = ("timeout",)


@contextlib.contextmanager
def applied(which: Iterable[str] = PATCHES) -> Iterator[None]:
    """Apply the named patches for the duration of the block (this process only)."""
    which = set(which)
    saved: list[tuple[Any, str, Any]] = []
    stack = contextlib.ExitStack()

    def patch(target: Any, name: str, value: Any) -> None:
        saved.append((target, name, getattr(target, name)))
        setattr(target, name, value)

    if "cattrs" in which:
        from _codegen import cattrs_only

        stack.enter_context(cattrs_only())
    if "gated" in which:
        patch(lim.Limiter, "_admit_at_once", _no_fast_admission)
    if "timer" in which:
        patch(pool.SessionPool, "_timed_transmit", _timer_per_attempt)
    if "timeout" in which:
        patch(pool.SessionPool, "_exchange", _exchange)
    try:
        yield
    finally:
        for target, name, value in reversed(saved):
            setattr(target, name, value)
        stack.close()


