"""The Arena quota estimate: pure rules, no I/O, no asyncio, no clock of its own.

:class:`QuotaEstimate` decides whether one more request may go (:meth:`~QuotaEstimate.decide`)
and takes in what became of each admitted attempt (:meth:`~QuotaEstimate.observe`,
:meth:`~QuotaEstimate.settle`). Every method is given the time; the
:class:`~arena_async._limiter.Limiter` drives it (slots, waits, wake-ups) and the table
tests in ``tests/test_estimate.py`` drive it with no event loop at all.

The estimate
------------
Arena's quota is per workspace per 24 h and shared with every other process of the
workspace; each response's ``remaining`` (and reset time) is the only truth, and it is
stale the moment other requests are in flight. The estimate keeps:

- ``known``: the *lowest* ``remaining`` any response of the current window reported
  (0 after a quota 429);
- ``outstanding``: attempts admitted and not yet answered (or given back as unsent);
- ``lost``: attempts that may have been sent but brought no headers back (a connection
  error after sending, or a block left without a report). Each counts as spent until a
  reading arrives from a request admitted after it ended: the server counted it by then.

The estimate is ``known - lost - outstanding`` and a request is admitted only while
``estimate - reserve > 0``. It is conservative: the server's counter only goes down
within a window, so the lowest reading is the freshest one (answers arrive out of order; a
late, higher reading is ignored), and every unanswered attempt is subtracted even when the
server has already counted it in ``known`` (it is then subtracted twice until its answer
arrives, which only delays admissions). Another process's spending shows up as a lower
reading and lowers the estimate at once. So one process never sends a request the server
would refuse (apart from a probe of an unknown state, below); several processes sharing a
quota overshoot by at most the requests each had in flight on stale readings (``share=``
closes that gap with a ledger: :mod:`arena_async._share._ledger`).

A new window is recognised when a response's reset time moves forward; when a request
*sent after* the lowest reading was received reports more than that reading (the counter
went up, which no amount of in-flight traffic can explain); or when the clock passes the
known reset time. A reading from an older window (earlier reset time, already past) is
ignored.

Readings are evidence, not gospel (PROTOCOL.md, "Quota"): the first two signs count only
once the current window is over by the clock (before then a later reset is jitter between
answers, or a server clock running ahead: the same window, whose lowest count counts; when
that lowest count came with the later reset, it holds until the later reset, since the
server may have rolled its window before the reset it announced, rounded up to whole
seconds, and the count is then the new window's: a probe at the earlier reset could find
it spent); a
count above the workspace's limit (login's ``workspaceRequestLimit``) is no reading; and a
reset further ahead than a day plus :attr:`QuotaEstimate.RESET_SLACK` is no reset (such a
reading may lower the count, never open a window).

Unknown state: before any response, and once the reset time has passed with no fresh
headers, the estimate admits one probe at a time until a response tells the truth; that is
what keeps many waiters (or several processes) from storming the server right after a reset.

When the budget is spent: ``on_exhausted="raise"`` raises at once (waiting only for
in-flight answers when the estimate, not the server, says "spent"); ``"wait"`` sleeps until
the reset time plus :attr:`QuotaEstimate.RESET_MARGIN` (0.05 s, for small clock
differences), then probes, or raises at once when the reset is unknown or further away than
``max_wait``. A quota 429 sets the estimate to 0 until the reset. If the server still
answers with a reset time our clock has passed (its clock lags, or it resets late), the
estimate re-probes after a backoff that doubles from 1 s to 60 s, so that costs a handful of
429s, not a storm; the same backoff paces re-probes of a spent budget whose reset time could
not be parsed.

With ``pace=True`` the estimate spreads what is left: admission ``n+1`` waits until
``last_admission + (reset - last_admission) / (estimate - reserve)``.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from datetime import UTC, datetime

from .policies import QuotaPolicy

__all__ = ["QuotaEstimate", "Step"]

log = logging.getLogger(__name__)


class Step(enum.Enum):
    """What :meth:`QuotaEstimate.decide` tells the driver to do next."""

    ADMIT = enum.auto()
    PROBE = enum.auto()  # admit, as the one probe of an unknown state
    ANSWER = enum.auto()  # wait for an in-flight answer, then decide again
    SLEEP = enum.auto()  # wait until a time (the reset, or the pace), then decide again
    RAISE = enum.auto()  # the budget is spent: QuotaExhaustedError


_ADMIT = (Step.ADMIT, 0.0)
_PROBE = (Step.PROBE, 0.0)
_ANSWER = (Step.ANSWER, 0.0)
_RAISE = (Step.RAISE, 0.0)


class QuotaEstimate:
    """The quota estimate of one process (see the module doc); every method is pure state.

    Admissions are numbered from 1 (:meth:`admit` returns the number); an attempt is reported
    once by :meth:`settle`, after :meth:`observe` when its answer carried quota headers.

    Example::

        estimate = QuotaEstimate()
        step, until = estimate.decide(QuotaPolicy(), now)   # Step.PROBE: nothing known
        seq = estimate.admit(now, probe=True)
        estimate.observe(seq, 500, reset_ts, exhausted=False, now=now)
        estimate.settle(seq, probe=True, spent=False)
        estimate.remaining(now)                             # 500
    """

    #: Seconds slept past the announced reset time before probing again.
    RESET_MARGIN = 0.05
    #: Backoff (seconds) before re-probing when the reset time is unknown or already past.
    MIN_BACKOFF = 1.0
    MAX_BACKOFF = 60.0
    #: A window lasts a day; a reset announced further ahead than a day and this slack (a
    #: 25-hour day at a daylight-saving change, clock skew) is not believed.
    DAY = 86400.0
    RESET_SLACK = 2 * 3600.0

    __slots__ = ("admissions", "backoff", "expired_reset", "expires_at", "known",
                 "last_admit_at", "lost", "low_reset", "min_mark", "outstanding", "probe_out",
                 "read_at", "reset_at", "server_min", "window_mark")

    def __init__(self) -> None:
        self.known: int | None = None  # None: unknown, probe mode
        self.reset_at: float | None = None  # the server's reset time of the current window
        self.expires_at: float | None = None  # when the estimate stops trusting `known`
        self.server_min: int | None = None  # lowest reading of the window (server's word)
        self.min_mark = 0  # admissions counted when server_min was last lowered
        self.window_mark = 0  # admissions counted when probing (the unknown state) began
        self.expired_reset: float | None = None  # reset time of the window that expired
        # A later reset that came with the window's lowest count: the count holds until then.
        self.low_reset: float | None = None
        self.read_at = 0.0  # when the server last told us something about this window
        self.outstanding = 0
        # Attempts that were maybe sent but brought no answer, as the admission count when
        # each ended: they count as spent until a reading from a later request includes them.
        self.lost: deque[int] = deque()
        self.probe_out = False
        self.backoff = self.MIN_BACKOFF
        self.last_admit_at: float | None = None
        self.admissions = 0  # number of the last admission

    # -- queries ----------------------------------------------------------------------
    def remaining(self, now: float) -> int | None:
        """Requests the server will still accept once everything in flight has landed;
        None while unknown (no answer yet, or the reset time passed)."""
        if self.known is None or self._expired(now):
            return None
        return max(0, self.known - len(self.lost) - self.outstanding)

    def spent_state(self) -> tuple[int, datetime | None]:
        """What a :class:`~arena_async.QuotaExhaustedError` says: the requests left by the
        server's word minus the lost ones, and the reset time (None when unknown)."""
        resets_at = (datetime.fromtimestamp(self.reset_at, UTC)
                     if self.reset_at is not None else None)
        return max(0, (self.known or 0) - len(self.lost)), resets_at

    # -- decisions --------------------------------------------------------------------
    def decide(self, policy: QuotaPolicy, now: float) -> tuple[Step, float]:
        """Whether one more attempt may go now: ``(step, until)``, ``until`` being the time
        to sleep to for :attr:`Step.SLEEP` (else 0). Call :meth:`admit` on ADMIT or PROBE."""
        known = self.known
        if known is not None and self.expires_at is not None and now >= self.expires_at:
            self._pass_reset(now)
            known = self.known
        if known is None:
            return _ANSWER if self.probe_out else _PROBE
        budget = known - len(self.lost) - policy.reserve
        estimate = budget - self.outstanding
        if budget <= 0:
            if self.expires_at is None:
                # Spent, and the server never said when it resets: re-probe after a backoff.
                self.expires_at = self.read_at + self._next_backoff()
            if policy.on_exhausted == "raise" or self.reset_at is None:
                return _RAISE
            wake = self.expires_at + self.RESET_MARGIN
            if wake - now > policy.max_wait:
                return _RAISE
            return Step.SLEEP, wake
        if estimate <= 0:
            return _ANSWER  # in-flight answers will settle the estimate
        if policy.pace and self.last_admit_at is not None and self.reset_at is not None \
                and self.expires_at == self.reset_at:
            due = self.last_admit_at + (self.reset_at - self.last_admit_at) / estimate
            if due > now:
                return Step.SLEEP, due
        return _ADMIT

    def admit(self, now: float, probe: bool) -> int:
        """Count one admission (after :meth:`decide` said ADMIT or PROBE); its number."""
        self.admissions += 1
        self.outstanding += 1
        self.last_admit_at = now
        if probe:
            self.probe_out = True
            log.debug("quota state unknown: admitting one probe request")
        return self.admissions

    # -- events -----------------------------------------------------------------------
    def observe(self, seq: int, remaining: int | None, reset_ts: float | None,
                exhausted: bool, now: float, *, limit: int | None = None) -> bool:
        """Take in what admission ``seq``'s answer said: ``remaining`` and the reset time
        (epoch seconds) from its headers (None when absent), ``exhausted`` for a quota 429;
        ``limit`` the workspace's request limit when known (a count above it is no reading).

        True when the reading is the server's latest word on the quota (what the client
        shows as its ``quota``); False when it was ignored (an older window, a late higher
        reading) or carried no count. Call :meth:`settle` for the attempt afterwards."""
        known = self.known
        current = self.reset_at
        if (reset_ts == current and remaining is not None and known is not None
                and current is not None and now < current and not exhausted
                and (limit is None or remaining <= limit)):
            # Nearly every answer: a count in the current window, read before its reset
            # (so before the window expires too: it never expires before its reset), which
            # neither opens a window nor is ignored. The general rules (_observe) come to
            # this, without the checks of the rarer cases.
            server_min = self.server_min
            assert server_min is not None  # set with `known`, by _adopt
            announce = False
            if remaining <= server_min:
                if remaining < server_min:
                    self.server_min = remaining
                    self.min_mark = self.admissions
                announce = True
            if remaining < known:
                self.known = remaining if remaining > 0 else 0
                self.low_reset = None
            if self.lost:
                self._cover(seq)
            self.read_at = now
            return announce
        return self._observe(seq, remaining, reset_ts, exhausted, now, limit=limit)

    def _observe(self, seq: int, remaining: int | None, reset_ts: float | None,
                 exhausted: bool, now: float, *, limit: int | None) -> bool:
        """:meth:`observe` by the general rules, which decide every case (the common one
        included: :meth:`observe` takes that one itself, to the same result)."""
        if self.known is not None and self.expires_at is not None and now >= self.expires_at:
            self._pass_reset(now)
        if remaining is not None and limit is not None and remaining > limit:
            remaining = None  # not a reading of this workspace's quota
        opens = True  # may this reading open a window?
        if reset_ts is not None and reset_ts > now + self.DAY + self.RESET_SLACK:
            reset_ts, opens = None, False
        if remaining is None:
            if exhausted:
                if self.known is not None:
                    self.known = 0
                    self.read_at = now
                elif seq > self.window_mark:  # a fresh probe hit the limit
                    self._adopt(seq, 0, None, now)
            return False
        if self.known is None:
            if not opens:
                return False
            newer = reset_ts is not None and (self.expired_reset is None
                                              or reset_ts > self.expired_reset)
            if seq > self.window_mark or newer:  # sent after probing began, or a newer reset
                self._adopt(seq, 0 if exhausted else remaining, reset_ts, now)
                return True
            return False
        current = self.reset_at
        over = current is None or now >= current  # the window may have ended
        later: float | None = None  # a later reset, taken as the same window
        if reset_ts is not None and current is not None and reset_ts != current:
            if reset_ts > current and over:
                log.debug("quota reset recognised: the reset time moved forward")
                self._adopt(seq, 0 if exhausted else remaining, reset_ts, now)
                return True
            if reset_ts > current:
                later = reset_ts
            elif reset_ts <= now:
                return False  # an answer from an older window
            else:
                # An earlier reset, still ahead: the same window, ending by then.
                if self.expires_at == current:
                    self.expires_at = reset_ts
                self.reset_at = current = reset_ts
            reset_ts = current  # the same window: jitter, or a server clock ahead of ours
        server_min = self.server_min
        assert server_min is not None  # set with `known`, by _adopt
        if remaining > server_min and seq > self.min_mark and opens and over:
            # Sent after the lowest reading was received, yet the server reports more:
            # only a reset explains it (in-flight requests can only lower the counter).
            log.debug("quota reset recognised: remaining went up from %d to %d",
                      server_min, remaining)
            self._adopt(seq, 0 if exhausted else remaining, reset_ts, now)
            return True
        announce = False
        if current is None and reset_ts is not None and reset_ts > now:
            self.reset_at = self.expires_at = reset_ts
            announce = True
        if remaining <= server_min:
            if remaining < server_min:
                self.server_min = remaining
                self.min_mark = self.admissions
            announce = True
        count = 0 if exhausted else remaining
        if later is not None and count <= self.known:
            self.low_reset = later if self.low_reset is None else max(later, self.low_reset)
        elif count < self.known:
            self.low_reset = None  # the lowest count is the current window's own again
        if remaining < self.known:
            self.known = max(0, remaining)
        self._cover(seq)
        self.read_at = now
        if exhausted:
            self.known = 0
        return announce

    def settle(self, seq: int, probe: bool, spent: bool) -> None:
        """Admission ``seq`` is over: answered (``spent=False`` after :meth:`observe`),
        never sent (``spent=False``: its budget comes back), or maybe sent and never heard
        of (``spent=True``: it counts as spent until a later reading covers it)."""
        self.outstanding -= 1
        if probe:
            self.probe_out = False
        if spent:
            self.lost.append(self.admissions)

    # -- window bookkeeping -----------------------------------------------------------
    def _expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at and not (
            self.low_reset is not None and self.low_reset > now)

    def _pass_reset(self, now: float) -> None:
        """The window's expiry time has come: it ends, unless its lowest count came with a
        later reset, still ahead (that count holds until then)."""
        low_reset = self.low_reset
        self.low_reset = None
        if low_reset is not None and low_reset > now:
            log.debug("quota window: its lowest count announced a later reset; kept until %s",
                      low_reset)
            self.reset_at = self.expires_at = low_reset
            return
        self._expire()

    def _expire(self) -> None:
        log.debug("quota window passed its reset time: probing for fresh headers")
        self.low_reset = None
        self.expired_reset = self.reset_at
        self.known = None
        self.reset_at = None
        self.expires_at = None
        self.server_min = None
        self.window_mark = self.admissions

    def _next_backoff(self) -> float:
        backoff = self.backoff
        self.backoff = min(self.MAX_BACKOFF, backoff * 2)
        return backoff

    def _adopt(self, seq: int, remaining: int, reset_ts: float | None, now: float) -> None:
        """Start a new window from a reading the server just gave."""
        self._cover(seq)
        self.known = max(0, remaining)
        self.low_reset = None
        self.server_min = remaining
        self.min_mark = self.admissions
        self.reset_at = reset_ts
        self.read_at = now
        if reset_ts is None:
            self.expires_at = None
        elif reset_ts > now:
            self.expires_at = reset_ts
            self.backoff = self.MIN_BACKOFF
        else:  # the server's reset time is already past by our clock: skew; look again soon
            self.expires_at = now + self._next_backoff()
        log.debug("quota window: %d remaining, reset at %s", remaining, reset_ts)

    def _cover(self, seq: int) -> None:
        """A reading from admission ``seq`` was taken in: the window's lowest reading now
        includes every lost attempt that ended before ``seq`` was admitted (the counter
        only goes down, so the lowest reading is from a request processed no earlier)."""
        lost = self.lost
        while lost and lost[0] < seq:
            lost.popleft()
