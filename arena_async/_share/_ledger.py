"""A sharer's side of the shared quota ledger: admissions granted in small batches.

The limiter spends one granted admission per attempt (:meth:`SharedLedger.take_now`, no
I/O while the batch lasts) and reports how each ended (:meth:`SharedLedger.ended`); the
next ask for a batch carries the report, so a sharer talks to the share about once per
``batch`` requests, not once per request. Unused admissions go back when the sharer idles
or closes; a sharer that dies stops renewing its entry, which then expires with everything
it held.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from ..errors import QuotaExhaustedError
from ..policies import QuotaPolicy
from ._base import Share
from ._state import Decision, Report, ledger_step

__all__ = ["SharedLedger"]

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


class SharedLedger:
    """One member's view of the workspace's quota ledger in ``share`` at ``key``."""

    def __init__(self, share: Share, key: str, member: str, *, policy: QuotaPolicy,
                 batch: int, member_ttl: float, probe_ttl: float, sleep: Sleep,
                 opener: Callable[[], Awaitable[None]]) -> None:
        self.share = share
        self.key = key
        self.member = member
        self.policy = policy
        self.batch: int = max(1, batch)
        self.member_ttl = member_ttl
        self.probe_ttl = probe_ttl
        self._sleep = sleep
        self._opener = opener
        self._units = 0  # granted, not yet spent
        self._refill_at = self.batch // 2
        self._ahead = False  # the last ask got a whole batch: asking ahead is worth it
        self._held = 0  # granted and not yet reported back (the ledger counts them out)
        self._probing = False  # this member holds the ledger's probe of a new window
        self._used_since_sync = False
        # The report being gathered for the next contact.
        self._done = 0
        self._lost = 0
        self._returned = 0
        self._remaining: int | None = None
        self._reset_at: float | None = None
        self._exhausted = False
        self._fetch: asyncio.Task[Decision] | None = None
        self.contacts: int = 0  # round trips to the share (for tests and benchmarks)
        self.waits: int = 0
        self.wait_seconds: float = 0.0

    # -- the limiter's synchronous side ---------------------------------------------
    def take_now(self) -> bool:
        """Spend one granted admission, if one is at hand. When half the batch is spent,
        the next batch is asked for in the background (while the budget is plentiful), so
        the workers do not all stop and wait for one round trip to the share."""
        units = self._units
        if units > 0:
            self._units = units - 1
            self._used_since_sync = True
            if units <= self._refill_at and self._ahead:
                fetch = self._fetch
                if fetch is None or fetch.done():
                    self._start(self.batch)
            return True
        return False

    def give_back(self) -> None:
        """An admission taken but never sent (cancelled, refused locally): keep it."""
        self._units += 1

    def ended(self, remaining: int | None, reset_at: float | None, *, lost: bool = False,
              exhausted: bool = False) -> None:
        """An admitted attempt ended: with a reading, as a quota 429, or ``lost`` (maybe
        sent, no reading)."""
        self._done += 1
        if lost:
            self._lost += 1
        if self._probing:
            # The others wait for this reading: report it now, not at the next sync.
            self._probing = False
            self._start(0)
        if exhausted:
            remaining = 0
        if remaining is None:
            return
        if self._remaining is None or _newer(reset_at, self._reset_at):
            self._remaining, self._reset_at, self._exhausted = remaining, reset_at, exhausted
        elif not _newer(self._reset_at, reset_at) and remaining <= self._remaining:
            self._remaining = remaining
            self._exhausted = self._exhausted or exhausted
            if self._reset_at is None:
                self._reset_at = reset_at

    # -- talking to the share ------------------------------------------------------
    async def take(self) -> bool:
        """One admission from the ledger, asking the share for a batch when none is at hand.
        Returns True when it had to wait. Raises :class:`QuotaExhaustedError` when the
        budget is spent (policy ``raise``, or the reset too far or unknown)."""
        waited = False
        while not self.take_now():
            decision = await self._ask(self.batch)
            if decision.kind == "grant":
                continue
            if decision.kind == "spent":
                resets_at = (datetime.fromtimestamp(decision.resets_at, UTC)
                             if decision.resets_at is not None else None)
                raise QuotaExhaustedError(max(0, decision.remaining or 0), resets_at)
            waited = True
            delay = decision.delay
            if decision.until_reset:
                log.info("Arena request quota spent for every sharer; waiting %.1f s for the "
                         "reset", delay)
                delay += random.uniform(0, 0.05)
            self.waits += 1
            self.wait_seconds += delay
            await self._sleep(delay)
        return waited

    async def try_take(self) -> bool:
        """One admission now, or False (no wait): for a request that may be skipped, such
        as the last sharer's logout, which must not spend the workspace's reserve."""
        if self.take_now():
            return True
        decision = await self._ask(1)
        return decision.kind == "grant" and self.take_now()

    async def sync(self) -> None:
        """Report what ended; give back admissions unused since the last sync."""
        if not self._used_since_sync and self._units:
            self._returned += self._units
            self._units = 0
        self._used_since_sync = False
        if self._held or not self._report().empty:
            await self._ask(0)
        # (else the ledger holds nothing of this member: nothing to renew)

    async def close(self) -> None:
        """Give every unused admission back and report the rest."""
        self._returned += self._units
        self._units = 0
        if not self._report().empty:
            await self._ask(0)

    def _report(self) -> Report:
        return Report(done=self._done, returned=self._returned, lost=self._lost,
                      remaining=self._remaining, reset_at=self._reset_at,
                      exhausted=self._exhausted)

    def _ask(self, want: int) -> asyncio.Future[Decision]:
        """One round trip, single-flight: concurrent askers share it. It runs to the end
        even if the asker is cancelled, so a batch granted is never lost."""
        return asyncio.shield(self._start(want))

    def _start(self, want: int) -> asyncio.Task[Decision]:
        fetch = self._fetch
        if fetch is None or fetch.done():
            fetch = self._fetch = asyncio.ensure_future(self._round_trip(want))
            fetch.add_done_callback(_retrieve)  # a failure nobody awaits is not "unretrieved"
        return fetch

    async def _round_trip(self, want: int) -> Decision:
        await self._opener()
        report = self._report()
        self._done = self._lost = self._returned = 0
        self._remaining = self._reset_at = None
        self._exhausted = False
        policy = self.policy
        try:
            decision = await self.share.update(self.key, ledger_step(
                self.member, report, want=want, reserve=policy.reserve,
                on_exhausted=policy.on_exhausted, max_wait=policy.max_wait,
                member_ttl=self.member_ttl, probe_ttl=self.probe_ttl))
        except BaseException:
            self._restore(report)
            raise
        self.contacts += 1
        self._ahead = want > 0 and decision.granted >= want
        self._units += decision.granted
        self._held += decision.granted - report.done - report.returned
        if decision.probe:
            self._probing = True
        return decision

    def _restore(self, report: Report) -> None:
        """The report did not reach the share: keep it for the next contact."""
        self._done += report.done
        self._lost += report.lost
        self._returned += report.returned
        if report.remaining is not None:
            self.ended(report.remaining, report.reset_at, exhausted=report.exhausted)
            self._done -= 1


def _retrieve(fetch: asyncio.Future[Decision]) -> None:
    if not fetch.cancelled():
        fetch.exception()


def _newer(a: float | None, b: float | None) -> bool:
    return a is not None and (b is None or a > b)
