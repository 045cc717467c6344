"""MEASUREMENT ONLY: library changes priced at run time, in the benchmark process only.

Nothing here is imported by the library, and no library file is changed: ``applied()``
patches classes and module globals of ``arena_async`` for the duration of a ``with``
block, so that a benchmark can show the library with one piece of its work taken out or
done the way it was before a fix (``breakdown.py`` prices each that way):

- ``"cattrs"`` (takes fix 7 out): structuring through the cattrs fast converter instead of
  the generated per-model functions (``_codegen.cattrs_only``).
- ``"timer"`` (takes fix 10 out): an ``asyncio.timeout`` per attempt instead of the pool's
  shared attempt timer (``_attempt_timer.AttemptTimer.bound``).
- ``"general"`` (takes fix 11 out): no inline first attempt; every request goes through the
  general exchange loop (``auth.headers()``, ``limiter.slot()``, ``auth.current()``, an
  ``Exchange``), as before fix 11.
- ``"no_timeout"``: no per-attempt timeout at all (what it costs).
- ``"dicts"``: the list structuring returns the decoded dicts (what structuring costs).

The library's other fixes of the third round (the bulk run's workers, the wire URL on a
cached origin, the reading without a ``Quota``) are not reproduced here: they were priced by
interleaved A/B runs against the previous commit (see the analysis).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

import arena_async._envelope as envelope
import arena_async._transport as pool
from arena_async._attempt_timer import AttemptTimer


async def _timer_per_attempt(self: AttemptTimer, work: Awaitable[Any]) -> Any:
    async with asyncio.timeout(self.budget):
        return await work


async def _no_timeout(self: AttemptTimer, work: Awaitable[Any]) -> Any:
    return await work


def _never_ready(self: Any, pool_: pool.Transport) -> None:
    return None


def _as_is(cl: Any) -> Callable[[Any], Any]:
    return lambda value: value


#: Every patch ``applied()`` knows.
PATCHES = ("cattrs", "timer", "general", "no_timeout", "dicts")


@contextlib.contextmanager
def applied(which: Iterable[str]) -> Iterator[None]:
    """Apply the named patches for the duration of the block (this process only)."""
    which = set(which)
    unknown = which - set(PATCHES)
    if unknown:
        raise ValueError(f"unknown patches: {sorted(unknown)}")
    saved: list[tuple[Any, str, Any]] = []
    stack = contextlib.ExitStack()

    def patch(target: Any, name: str, value: Any) -> None:
        saved.append((target, name, getattr(target, name)))
        setattr(target, name, value)

    if "cattrs" in which:
        from _codegen import cattrs_only

        stack.enter_context(cattrs_only())
    if "timer" in which:
        patch(AttemptTimer, "bound", _timer_per_attempt)
    if "no_timeout" in which:
        patch(AttemptTimer, "bound", _no_timeout)
    if "general" in which:
        from arena_async.akana._auth import AkanaAuth
        from arena_async.arena._auth import ArenaAuth

        patch(ArenaAuth, "ready", _never_ready)
        patch(AkanaAuth, "ready", _never_ready)
    if "dicts" in which:
        patch(envelope, "_list_structurer", _as_is)
    try:
        yield
    finally:
        for target, name, value in reversed(saved):
            setattr(target, name, value)
        stack.close()
