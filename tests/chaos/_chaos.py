"""Shared pieces of the chaos tests: the fault mix, a free sleep, wire accounting."""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from arena_async._pool import Response, SessionPool
from arena_async._protocol import Request
from arena_async.testing import Fault, FaultPlan, RecordedRequest

#: Per-attempt timeout of the chaos clients, and the delay of a ``slow_headers`` fault.
TIMEOUT = 0.2
SLOW = 0.5

#: The fault mix as *marginal* probabilities per request (20 % in all). A FaultPlan tries
#: its rules in order and a later rule only sees requests no earlier rule took, so each
#: rule's ``rate`` is the conditional probability that gives these marginals.
MIX: tuple[tuple[dict[str, Any], float], ...] = (
    ({"kind": "status", "status": 500}, 1 / 30),
    ({"kind": "status", "status": 502}, 1 / 30),
    ({"kind": "status", "status": 503}, 1 / 30),  # 10 % 5xx
    ({"kind": "reset_before_headers"}, 0.025),
    ({"kind": "reset_after_headers"}, 0.025),  # 5 % connection resets
    ({"kind": "truncate"}, 0.03),  # 3 % truncated bodies
    ({"kind": "slow_headers", "delay": SLOW}, 0.02),  # 2 % timeouts (SLOW > TIMEOUT)
)
FAULT_RATE = sum(p for _, p in MIX)


class KeyedPlan(FaultPlan):
    """A FaultPlan whose draws do not depend on the order requests arrive in.

    FaultPlan draws from one seeded RNG in arrival order, so with concurrent requests
    which request meets which fault changes from run to run. Here the draws for a request
    come from an RNG seeded with (seed, method, raw path and query, how many times this
    exact request was seen before): the n-th send of a given request meets the same fault
    in every run, however the sends interleave. (Only ``rate`` rules are meaningful here:
    ``every`` / ``after`` / ``times`` still count in arrival order.)
    """

    def __init__(self, seed: int) -> None:
        super().__init__(seed=seed)
        self.seed = seed
        self._seen: Counter[tuple[str, str]] = Counter()

    def draws(self, method: str, target: str, n: int) -> random.Random:
        """The RNG of the ``n``-th (0-based) send of ``method target``."""
        return random.Random(f"{self.seed}|{method}|{target}|{n}")

    def pick(self, request: Any) -> Fault | None:
        target = getattr(request, "raw_path", request.path)
        key = (request.method, target)
        self._rng = self.draws(request.method, target, self._seen[key])
        self._seen[key] += 1
        return super().pick(request)

    def schedule(self, method: str, target: str, sends: int) -> list[str | None]:
        """The faults (kinds, None for none) the first ``sends`` sends of a request meet;
        ``target`` is the raw path with its query, as sent."""
        path = target.partition("?")[0]
        kinds: list[str | None] = []
        for n in range(sends):
            rng, kind = self.draws(method, target, n), None
            for fault in self.faults:
                if fault.matches(method, path) and (fault.rate is None
                                                    or rng.random() < fault.rate):
                    kind = fault.kind
                    break
            kinds.append(kind)
        return kinds


def chaos_plan(seed: int, *, mix: Iterable[tuple[dict[str, Any], float]] = MIX,
               scale: float = 1.0, **scope: Any) -> KeyedPlan:
    """A seeded plan whose rules fire with the marginal probabilities of ``mix``."""
    plan = KeyedPlan(seed=seed)
    left = 1.0
    for kwargs, p in mix:
        share = p * scale
        plan.add(Fault(**kwargs, rate=min(1.0, share / left), **scope))
        left -= share
    return plan


class FreeSleep:
    """An injected sleep that records the delay and costs no real time."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


def target(hit: RecordedRequest) -> str:
    """The raw path and query of a recorded request, as the client sent it."""
    return f"{hit.path}?{hit.query_string}" if hit.query_string else hit.path


def faults_before_success(plan: KeyedPlan, method: str, target: str, limit: int = 64) -> int:
    """How many sends of a request fail (by the plan alone) before one meets no fault."""
    schedule = plan.schedule(method, target, limit)
    return schedule.index(None) if None in schedule else limit


def hits_by_key(requests: Iterable[RecordedRequest], route: str,
                key: tuple[str, ...] = ()) -> dict[tuple[str, ...], list[RecordedRequest]]:
    """The fake's recorded requests of ``route``, grouped by path and the ``key`` params."""
    grouped: dict[tuple[str, ...], list[RecordedRequest]] = defaultdict(list)
    for r in requests:
        if r.route == route:
            grouped[(r.path, *(r.query.get(k, "") for k in key))].append(r)
    return grouped


class Tally:
    """Wraps a pool: what it sent per request, how each send ended, what it reported.

    ``transmits`` counts sends per ``key(request)``; ``failed`` those that raised,
    ``cut`` those the per-attempt timeout cancelled; ``attempts`` the attempts the pool
    reported with each success; ``logins_ok`` the login answers (2xx) that reached the
    client.
    """

    def __init__(self, pool: SessionPool, key: Callable[[Request], Any],
                 login_path: str) -> None:
        self.transmits: Counter[Any] = Counter()
        self.failed: Counter[Any] = Counter()
        self.cut: Counter[Any] = Counter()
        self.attempts: dict[Any, int] = {}
        self.logins_ok = 0
        transmit, send = pool._transmit, pool.send

        async def counting_transmit(request: Request, auth: Any) -> Response:
            k = key(request)
            self.transmits[k] += 1
            try:
                response = await transmit(request, auth)
            except asyncio.CancelledError:
                self.cut[k] += 1
                raise
            except Exception:
                self.failed[k] += 1
                raise
            if request.path == login_path and 200 <= response.status < 300:
                self.logins_ok += 1
            return response

        async def reporting_send(request: Request, *, deadline: float | None = None) -> Response:
            response = await send(request, deadline=deadline)
            assert key(request) not in self.attempts  # each page / item is asked once
            self.attempts[key(request)] = response.attempts
            return response

        pool._transmit = counting_transmit  # type: ignore[method-assign]
        pool.send = reporting_send  # type: ignore[method-assign]

    def check_sends(self, k: Any, hits: list[Any], schedule: list[str | None]) -> int:
        """Check one request's sends against the server's record; return the number of
        clean sends the client gave up on (its timeout, under CPU load)."""
        sent = self.transmits[k]
        # No send the client did not make (aiohttp's silent re-send is off) ...
        assert len(hits) <= sent, k
        # ... and a send the server never recorded failed on the client (a dead connection,
        # or the client's timeout ending it before the server read it).
        assert sent - len(hits) <= self.failed[k] + self.cut[k], k
        # Each send met the fault the seed gave it, and the last one succeeded.
        assert [h.fault for h in hits] == schedule, k
        assert hits[-1].fault is None, k
        assert hits[-1].status == 200, k
        # It was sent again only after a fault, a 401, or a send its timeout cut.
        clean = [h for h in hits[:-1] if h.fault is None and h.status != 401]
        assert len(clean) <= self.cut[k], k
        return len(clean)
