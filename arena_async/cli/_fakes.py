"""Start the built-in fake servers in-process, for ``demo``, ``export --fake`` and
``fake-server``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..testing import FakeArena, Fault, FaultPlan
from ..testing._banner import akana_kwargs_for, arena_kwargs_for
from ..testing._fake_akana import FakeAkana

__all__ = ["akana_kwargs_for", "arena_kwargs_for", "start_fake_akana", "start_fake_arena"]


@asynccontextmanager
async def start_fake_arena(*, items: int, seed: int, quota: int | None = None,
                           latency: float = 0.0, fault_rate: float = 0.0, port: int = 0,
                           host: str = "127.0.0.1",
                           quota_window: float = 86400.0) -> AsyncIterator[FakeArena]:
    """A started ``FakeArena.seeded(items, seed)``; ``fault_rate`` of the requests
    (login aside) answer 503 once, which the client retries."""
    plan = FaultPlan(seed=seed)
    if fault_rate > 0:
        plan.add(Fault("status", status=503, path=r"/items/", rate=fault_rate))
    fake = FakeArena.seeded(items=items, seed=seed, quota_limit=quota, latency=latency,
                            faults=plan, port=port, host=host, quota_window=quota_window)
    async with fake:
        yield fake


@asynccontextmanager
async def start_fake_akana(*, tickets: int, seed: int, latency: float = 0.0, port: int = 0,
                           host: str = "127.0.0.1") -> AsyncIterator[FakeAkana]:
    """A started ``FakeAkana.seeded(tickets, seed)``."""
    async with FakeAkana.seeded(tickets=tickets, seed=seed, latency=latency, port=port,
                                host=host) as fake:
        yield fake

