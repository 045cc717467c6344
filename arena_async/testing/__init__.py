"""Test kit: fake Arena and Akana servers on real loopback HTTP, with fault injection.

The fakes are products, not test glue: users run their own tests against them. Both
derive from :class:`FakeServer` (lifecycle, ``url``, request recording as
:class:`RecordedRequest`, latency, faults, stats with ``reset()``, HTTPS with
``ssl_context=``). :class:`ForwardProxy` is an HTTP forward proxy (``CONNECT`` tunnels,
absolute-form requests, optional Basic proxy auth) that counts what passes. The
pytest plugin (``arena_async.testing.plugin``, auto-registered) gives the fixtures
``fake_arena``, ``fake_arena_factory`` and ``fake_akana``.

Example::

    from arena_async.testing import FakeArena, Fault

    async with FakeArena.seeded(items=100, seed=1) as fake:
        fake.faults.add(Fault("status", status=503, times=1))
        ...  # point a client at fake.url with fake.email / fake.password
"""

from __future__ import annotations

from typing import Any

from ._fake_arena import FakeArena, FakeArenaStats, format_reset
from ._faults import FAULT_KINDS, Fault, FaultKind, FaultPlan, arena_error_body, faults_middleware
from ._proxy import ForwardProxy, ProxiedRequest
from ._server import STATS_PATH, FakeServer, FakeServerStats, RecordedRequest

__all__ = [
    "FAULT_KINDS",
    "STATS_PATH",
    "FakeAkana",
    "FakeAkanaStats",
    "FakeArena",
    "FakeArenaStats",
    "FakeServer",
    "FakeServerStats",
    "FakeUser",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "ForwardProxy",
    "ProxiedRequest",
    "RecordedRequest",
    "arena_error_body",
    "faults_middleware",
    "format_reset",
]


def __getattr__(name: str) -> Any:
    # FakeAkana is imported on first use so this package works without it loaded.
    if name in ("FakeAkana", "FakeAkanaStats", "FakeUser"):
        from . import _fake_akana

        return getattr(_fake_akana, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
