"""Shared pieces of the chaos tests: the fault mix, a free sleep, wire accounting (from
an aiohttp trace config and the pool's documented log lines: no private field read)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable
from types import SimpleNamespace
from typing import Any

import aiohttp

from arena_async.testing import Fault, FaultPlan, RecordedRequest

#: Per-attempt timeout of the chaos clients, and the delay of a ``slow_headers`` fault.
#: (An answer that is not faulted must come well within TIMEOUT on a loaded machine: at
#: 0.2 s a page of 100 Akana tickets once timed out twelve times in a row.)
TIMEOUT = 0.4
SLOW = 0.8

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


#: The faults after which a send never reaches the client whole (a dropped connection, a
#: cut body, headers later than the client's timeout).
BREAKING = frozenset({"reset_before_headers", "reset_after_headers", "truncate",
                      "slow_headers"})

#: The pool's documented DEBUG line for each answer it read in full (docs/logging.md).
_ANSWER = re.compile(r"^(?P<method>\S+) (?P<display>\S+) -> (?P<status>\d+) \(\d+ ms\)$")


def display(hit: RecordedRequest, prefix: str = "") -> str:
    """A recorded request as the client displays it (its path under ``prefix``, the API's
    base path, and its query): the key :class:`Tally` counts by."""
    path = hit.path.removeprefix(prefix)
    return f"{path}?{hit.query_string}" if hit.query_string else path


def hits_by_display(requests: Iterable[RecordedRequest], route: str,
                    prefix: str = "") -> dict[str, list[RecordedRequest]]:
    """The fake's recorded requests of ``route``, grouped by :func:`display`."""
    grouped: dict[str, list[RecordedRequest]] = defaultdict(list)
    for r in requests:
        if r.route == route:
            grouped[display(r, prefix)].append(r)
    return grouped


class Tally(logging.Handler):
    """What a client sent and what it read, per request, from public signals only.

    Sends come from an aiohttp trace config given to the client (``trace_configs=``: one
    ``on_request_start`` per send, whatever became of it); answers read in full from the
    pool's DEBUG line per answer (``GET /path?query -> 200 (3 ms)``, docs/logging.md),
    heard while :meth:`listening`. Both are keyed by the display form of the request
    (path under the API's base path ``prefix``, then the query).

    ``sent`` counts sends per key; ``read`` the answers read in full, ``statuses`` them by
    status; ``logins_ok`` the login answers (2xx, read in full) that reached the client.
    """

    def __init__(self, prefix: str, login_path: str) -> None:
        super().__init__(logging.DEBUG)
        self.prefix = prefix
        self.login_path = login_path
        self.sent: Counter[str] = Counter()
        self.read: Counter[str] = Counter()
        self.statuses: defaultdict[str, Counter[int]] = defaultdict(Counter)
        self.logins_ok = 0
        self.config = aiohttp.TraceConfig()
        self.config.on_request_start.append(self._on_start)

    @property
    def trace_configs(self) -> list[aiohttp.TraceConfig]:
        """For the client's ``trace_configs=``."""
        return [self.config]

    async def _on_start(self, session: aiohttp.ClientSession, ctx: SimpleNamespace,
                        params: aiohttp.TraceRequestStartParams) -> None:
        url = params.url
        path = url.path.removeprefix(self.prefix)
        query = "&".join(f"{k}={v}" for k, v in url.query.items())
        self.sent[f"{path}?{query}" if query else path] += 1

    def emit(self, record: logging.LogRecord) -> None:
        found = _ANSWER.match(record.getMessage())
        if found is None:
            return
        key, status = found["display"], int(found["status"])
        self.read[key] += 1
        self.statuses[key][status] += 1
        if found["method"] == "POST" and key == self.login_path and 200 <= status < 300:
            self.logins_ok += 1

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[Tally]:
        """Hear the pool's DEBUG lines (its logger at DEBUG) for the duration (``async
        with``, beside the client's)."""
        logger = logging.getLogger("arena_async._transport")
        level = logger.level
        logger.addHandler(self)
        logger.setLevel(logging.DEBUG)
        try:
            yield self
        finally:
            logger.removeHandler(self)
            logger.setLevel(level)

    def attempts(self, k: str) -> int:
        """The attempts the client made of request ``k``, by its own record: every send but
        the one free replay after a re-login (a 401 read in full)."""
        return self.sent[k] - min(1, self.statuses[k][401])

    def check_sends(self, k: str, hits: list[RecordedRequest],
                    schedule: list[str | None], *, asked: int = 1) -> int:
        """Check one request's sends against the server's record; return the number of
        clean sends the client gave up on (its timeout, under CPU load). ``asked``: how
        many times the client asked it on purpose (an empty Akana page answered with a
        token replaced meanwhile is asked again)."""
        # No send the client did not make (aiohttp's silent re-send is off).
        assert len(hits) <= self.sent[k], k
        # Each send met the fault the seed gave it, and the last one succeeded ...
        assert [h.fault for h in hits] == schedule, k
        assert hits[-1].fault is None, k
        assert hits[-1].status == 200, k
        # ... and the client read that success once: each page / item asked once.
        assert self.statuses[k][200] == asked, (k, self.statuses[k])
        # It was sent again only after a fault, a 401, or a send its timeout cut: a clean
        # send before the last was not read in full. So the answers read in full are at
        # most the hits less those a fault broke and the clean ones sent again (a send the
        # server never recorded was never read either).
        broken = sum(1 for h in hits if h.fault in BREAKING)
        clean = [h for h in hits[:-1] if h.fault is None and h.status != 401]
        assert self.read[k] <= len(hits) - broken - len(clean) + asked - 1, \
            (k, self.read[k], hits)
        return len(clean) - (asked - 1)
