"""A sharer's side of the shared quota ledger: admissions granted in small batches.

The limiter spends one granted admission per attempt (:meth:`SharedLedger.take_now`, no
I/O while the batch lasts) and reports how each ended (:meth:`SharedLedger.ended`); the
next ask for a batch carries the report, so a sharer talks to the share about once per
``batch`` requests, not once per request. Unused admissions go back when the sharer idles
or closes; a sharer that dies stops renewing its entry, which then expires with everything
it held.

Every ask also registers what the sharer holds (its admissions, absolute, not a difference)
and, when the ledger lost its state (a new epoch), its newest genuine reading: so a ledger
made again re-seeds from the sharers instead of starting afresh (ledger_step). Granted
admissions are only spent while this sharer's entry in the ledger surely lives (its
``member_ttl`` from the last contact, by this machine's monotonic clock, less a margin): a
sharer stopped past it (SIGSTOP, a VM paused) gives them back and asks again on resuming,
since the ledger may have handed them to others meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
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
                 opener: Callable[[], Awaitable[None]], settle: float = 0.0,
                 monotonic: Callable[[], float] = time.monotonic,
                 concurrency: int | None = None) -> None:
        self.share = share
        self.key = key
        self.member = member
        self.policy = policy
        self.batch: int = max(1, batch)
        #: The most admissions this member can have in flight (the ledger keeps that many
        #: counted if this member's entry expires while it is paused).
        self.concurrency = concurrency
        self.member_ttl = member_ttl
        self.probe_ttl = probe_ttl
        self._sleep = sleep
        self._opener = opener
        self.settle = settle
        self._monotonic = monotonic
        #: The workspace's request limit, when known (the limiter sets it from login).
        self.limit: int | None = None
        #: The limit as the ledger last told it (a sharer that logged in wrote it there).
        self.shared_limit: int | None = None
        self.epoch: str | None = None  # the ledger document's, as last seen
        # (monotonic) granted admissions may be spent until then: the ledger keeps this
        # member's entry at least that long after the last contact began.
        self._valid_until = 0.0
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
        # The lowest count since the last report, whatever its reset (a reset that jitters
        # between answers must not hide a lower count behind a higher, later one).
        self._low: tuple[int, float | None] | None = None
        # The newest genuine reading seen (kept: re-sent to a ledger that lost its state),
        # and the admissions lost since it.
        self._latest: tuple[int, float | None] | None = None
        self._latest_lost = 0
        self._leaving = False
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
            if self._monotonic() >= self._valid_until:
                self._void()
                return False
            self._units = units - 1
            self._used_since_sync = True
            if units <= self._refill_at and self._ahead:
                fetch = self._fetch
                if fetch is None or fetch.done():
                    self._start(self.batch)
            return True
        return False

    def _void(self) -> None:
        """The ledger may have let this member's entry expire (it was stopped, or could not
        reach the share): its unspent admissions go back; the next ask re-registers."""
        log.debug("granted admissions outlived this sharer's entry in the ledger: asking "
                  "again")
        self._returned += self._units
        self._units = 0
        self._ahead = False

    def current(self) -> bool:
        """True while admissions granted now may still be spent (this sharer's entry in
        the ledger surely lives): the limiter asks after waiting with one in hand."""
        return self._monotonic() < self._valid_until

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
            self._latest_lost += 1
        if self._probing:
            # The others wait for this reading: report it now, not at the next sync (after
            # a round trip already under way, whose report was taken before this ended).
            self._probing = False
            self._start(0, fresh=True)
        if exhausted:
            remaining = 0
        if remaining is None:
            return
        if self._low is None or remaining < self._low[0]:
            self._low = (remaining, reset_at)
        latest = self._latest
        if latest is None or remaining <= latest[0] or _newer(
                reset_at, None if latest[1] is None else latest[1] + _JITTER):
            self._latest, self._latest_lost = (remaining, reset_at), 0
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
        deadline = self._monotonic() + self.settle
        joined = 0
        while True:
            decision = await self._ask(1)
            if self.take_now():
                return True
            if decision.kind == "grant":
                # A round trip under way (a sync's, which wanted none) was joined: the next
                # ask is a round trip of its own.
                joined += 1
                if joined > 2:
                    return False
                continue
            # A short wait (answers in flight, a recovery after the share lost its state)
            # is worth it, within the recovery's length; a spent budget is not.
            if decision.kind != "wait" or decision.until_reset \
                    or self._monotonic() + decision.delay > deadline:
                return False
            await asyncio.sleep(decision.delay)

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
        if self.contacts:  # a member of the ledger: leave it (and any probe it holds) now
            self._leaving = True
            await self._ask(0, fresh=True)

    def _report(self) -> Report:
        latest = self._latest
        return Report(done=self._done, returned=self._returned, lost=self._lost,
                      remaining=self._remaining, reset_at=self._reset_at,
                      exhausted=self._exhausted,
                      low_remaining=None if self._low is None else self._low[0],
                      low_reset_at=None if self._low is None else self._low[1],
                      held=self._held - self._done - self._returned,
                      latest_remaining=None if latest is None else latest[0],
                      latest_reset_at=None if latest is None else latest[1],
                      latest_lost=self._latest_lost, limit=self.limit,
                      leaving=self._leaving, concurrency=self.concurrency)

    def _ask(self, want: int, *, fresh: bool = False) -> asyncio.Future[Decision]:
        """One round trip, single-flight: concurrent askers share it. It runs to the end
        even if the asker is cancelled, so a batch granted is never lost. ``fresh``: the
        report must go out, so a round trip already under way (its report taken before)
        is followed by a new one, not joined."""
        return asyncio.shield(self._start(want, fresh=fresh))

    def _start(self, want: int, *, fresh: bool = False) -> asyncio.Task[Decision]:
        fetch = self._fetch
        if fetch is None or fetch.done():
            fetch = self._fetch = asyncio.ensure_future(self._round_trip(want))
        elif fresh:
            fetch = self._fetch = asyncio.ensure_future(self._round_trip_after(fetch, want))
        else:
            return fetch
        fetch.add_done_callback(_retrieve)  # a failure nobody awaits is not "unretrieved"
        return fetch

    async def _round_trip_after(self, previous: asyncio.Future[Decision],
                                want: int) -> Decision:
        await asyncio.wait({previous})  # (its outcome is its own askers')
        return await self._round_trip(want)

    async def _round_trip(self, want: int) -> Decision:
        await self._opener()
        report = self._report()
        self._done = self._lost = self._returned = 0
        self._remaining = self._reset_at = None
        self._exhausted = False
        self._low = None
        policy = self.policy
        started = self._monotonic()
        try:
            decision = await self.share.update(self.key, ledger_step(
                self.member, report, want=want, reserve=policy.reserve,
                on_exhausted=policy.on_exhausted, max_wait=policy.max_wait,
                member_ttl=self.member_ttl, probe_ttl=self.probe_ttl, epoch=self.epoch,
                settle=self.settle))
        except BaseException:
            self._restore(report)
            raise
        if decision.epoch is not None and self.epoch is not None \
                and decision.epoch != self.epoch:
            log.info("the share's quota ledger lost its state: re-registered this sharer's "
                     "admissions and newest reading")
        self.epoch = decision.epoch
        self.shared_limit = decision.limit
        # The ledger's clock read after `started`: the entry lives member_ttl from then.
        self._valid_until = started + self.member_ttl * 0.8
        self.contacts += 1
        # (Not after a probe, nor a one-off ask such as the logout's: asking ahead then
        # only meets the probe still out.)
        self._ahead = want >= self.batch and decision.granted >= want and not decision.probe
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
        if report.low_remaining is not None:
            self.ended(report.low_remaining, report.low_reset_at)
            self._done -= 1
        if report.remaining is not None:
            self.ended(report.remaining, report.reset_at, exhausted=report.exhausted)
            self._done -= 1


def _retrieve(fetch: asyncio.Future[Decision]) -> None:
    if not fetch.cancelled():
        fetch.exception()


#: Seconds by which readings' reset times may differ and still be one window, for the
#: reading kept to re-seed a ledger (the ledger itself judges windows by its clock).
_JITTER = 10.0


def _newer(a: float | None, b: float | None) -> bool:
    return a is not None and (b is None or a > b)
