"""The quota estimate's rules, one by one, on the pure object: no event loop, no sockets.

Each test drives :class:`QuotaEstimate` with admissions (``admit``), readings (``observe``)
and endings (``settle``) at given times, and checks what it decides next and what it
estimates. The limiter's own tests (tests/test_limiter.py) check the same rules through
waits and wake-ups.
"""

from __future__ import annotations

import copy
import logging
import random
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from arena_async._estimate import QuotaEstimate, Step
from arena_async.policies import QuotaPolicy

T0 = 1_800_000_000.0
RESET = T0 + 3_600.0
RAISE = QuotaPolicy()
WAIT = QuotaPolicy(on_exhausted="wait", max_wait=7_200.0)


def answered(est: QuotaEstimate, remaining: int | None, reset: float | None = RESET, *,
             now: float = T0, exhausted: bool = False, probe: bool = False) -> int:
    """Admit one attempt at ``now`` and have it answered at once with this reading."""
    seq = est.admit(now, probe=probe)
    est.observe(seq, remaining, reset, exhausted=exhausted, now=now)
    est.settle(seq, probe=probe, spent=False)
    return seq


def known_window(remaining: int = 100, reset: float = RESET) -> QuotaEstimate:
    """A window read at T0 (``reset=T0``: one whose reset time has come by our clock, so
    that what the server says next may open a new one)."""
    est = QuotaEstimate()
    assert est.decide(RAISE, T0) == (Step.PROBE, 0.0)
    answered(est, remaining, reset, probe=True)
    return est


# -- the unknown state: one probe at a time ---------------------------------------------

def test_a_new_estimate_knows_nothing_and_holds_nothing() -> None:
    est = QuotaEstimate()
    assert (est.known, est.reset_at, est.expires_at, est.server_min, est.expired_reset) == (
        None, None, None, None, None)
    assert (est.min_mark, est.window_mark, est.admissions, est.outstanding) == (0, 0, 0, 0)
    assert (est.read_at, est.last_admit_at, est.probe_out, list(est.lost)) == (
        0.0, None, False, [])
    assert est.backoff == est.MIN_BACKOFF == 1.0
    assert est.MAX_BACKOFF == 60.0
    assert est.RESET_MARGIN == 0.05
    assert est.spent_state() == (0, None)


def test_nothing_known_admits_one_probe_then_waits_for_its_answer() -> None:
    est = QuotaEstimate()
    assert est.remaining(T0) is None
    assert est.decide(RAISE, T0) == (Step.PROBE, 0.0)
    seq = est.admit(T0, probe=True)
    assert est.decide(RAISE, T0) == (Step.ANSWER, 0.0)
    assert est.outstanding == 1
    est.settle(seq, probe=True, spent=False)  # never sent: the next may probe
    assert est.outstanding == 0
    assert est.decide(RAISE, T0) == (Step.PROBE, 0.0)


def test_a_probes_answer_opens_the_window() -> None:
    est = QuotaEstimate()
    seq = est.admit(T0, probe=True)
    assert est.observe(seq, 100, RESET, exhausted=False, now=T0) is True
    est.settle(seq, probe=True, spent=False)
    assert (est.known, est.reset_at, est.expires_at) == (100, RESET, RESET)
    assert est.remaining(T0) == 100
    assert est.decide(RAISE, T0) == (Step.ADMIT, 0.0)


def test_an_answer_without_headers_leaves_the_state_unknown() -> None:
    est = QuotaEstimate()
    seq = est.admit(T0, probe=True)
    assert est.observe(seq, None, None, exhausted=False, now=T0) is False
    est.settle(seq, probe=True, spent=True)
    assert est.remaining(T0) is None
    assert est.decide(RAISE, T0) == (Step.PROBE, 0.0)


def test_a_quota_429_without_headers_on_a_fresh_probe_means_zero_left() -> None:
    est = QuotaEstimate()
    seq = est.admit(T0, probe=True)
    assert est.observe(seq, None, None, exhausted=True, now=T0) is False
    est.settle(seq, probe=True, spent=False)
    assert (est.known, est.server_min, est.reset_at) == (0, 0, None)
    assert est.remaining(T0) == 0
    # spent, and no reset time: raise (even in wait mode: nothing to wait for)
    assert est.decide(WAIT, T0) == (Step.RAISE, 0.0)
    assert est.spent_state() == (0, None)


# -- the estimate: lowest reading minus lost minus outstanding ---------------------------

def test_the_estimate_subtracts_every_attempt_in_flight() -> None:
    est = known_window(10)
    seqs = [est.admit(T0, probe=False) for _ in range(3)]
    assert est.remaining(T0) == 7
    assert est.decide(QuotaPolicy(reserve=6), T0) == (Step.ADMIT, 0.0)
    assert est.decide(QuotaPolicy(reserve=7), T0) == (Step.ANSWER, 0.0)  # wait for answers
    assert est.observe(seqs[0], 9, RESET, exhausted=False, now=T0) is True
    est.settle(seqs[0], probe=False, spent=False)
    assert est.remaining(T0) == 7  # 9 - 2 in flight
    assert est.decide(QuotaPolicy(reserve=7), T0) == (Step.ANSWER, 0.0)


def test_the_estimate_never_goes_below_zero() -> None:
    est = known_window(2)
    for _ in range(5):
        est.admit(T0, probe=False)
    assert est.remaining(T0) == 0


@pytest.mark.parametrize(("reserve", "step"), [(9, Step.ADMIT), (10, Step.RAISE),
                                               (11, Step.RAISE)])
def test_the_reserve_is_never_spent(reserve: int, step: Step) -> None:
    est = known_window(10)
    assert est.decide(QuotaPolicy(reserve=reserve), T0)[0] is step


def test_the_lowest_reading_wins_and_a_late_higher_one_is_ignored() -> None:
    est = known_window(100)
    early, late = est.admit(T0, probe=False), est.admit(T0, probe=False)
    assert est.observe(late, 90, RESET, exhausted=False, now=T0) is True
    est.settle(late, probe=False, spent=False)
    # `early` was admitted before the 90 arrived: its 95 is older news, not a reset
    assert est.observe(early, 95, RESET, exhausted=False, now=T0) is False
    est.settle(early, probe=False, spent=False)
    assert est.known == 90
    assert est.server_min == 90


def test_a_reading_equal_to_the_lowest_is_the_servers_word_again() -> None:
    est = known_window(100)
    seq = est.admit(T0, probe=False)
    assert est.observe(seq, 100, RESET, exhausted=False, now=T0) is True
    assert est.known == 100


# -- new windows -------------------------------------------------------------------------

def test_a_higher_reading_sent_after_the_lowest_means_a_reset() -> None:
    est = known_window(5, T0)
    seq = answered(est, 3, T0)
    assert est.known == 3
    later = est.admit(T0 + 0.5, probe=False)
    assert later > seq
    assert est.observe(later, 500, T0, exhausted=False, now=T0 + 0.5) is True
    assert est.known == 500
    assert est.server_min == 500


def test_a_higher_reading_admitted_exactly_when_the_lowest_was_read_is_not_a_reset() -> None:
    est = known_window(5, T0)
    before = est.admit(T0, probe=False)  # admission 2, min_mark becomes 2 at the next read
    after = est.admit(T0, probe=False)  # admission 3
    assert est.observe(after, 3, T0, exhausted=False, now=T0) is True
    assert est.min_mark == 3
    assert est.observe(before, 4, T0, exhausted=False, now=T0) is False
    assert est.known == 3
    fresh = est.admit(T0, probe=False)  # admission 4, after the lowest: a rise is a reset
    assert est.observe(fresh, 4, T0, exhausted=False, now=T0) is True
    assert est.known == 4


def test_a_reset_time_that_moves_forward_opens_a_new_window() -> None:
    est = known_window(5, T0)
    seq = est.admit(T0, probe=False)
    assert est.observe(seq, 400, RESET + 86_400, exhausted=False, now=T0) is True
    assert (est.known, est.reset_at, est.expires_at) == (400, RESET + 86_400, RESET + 86_400)


def test_an_answer_from_an_older_window_is_ignored() -> None:
    est = known_window(50)
    seq = est.admit(T0, probe=False)
    assert est.observe(seq, 1, RESET - 86_400, exhausted=True, now=T0) is False
    assert est.known == 50
    assert est.reset_at == RESET


def test_the_window_expires_at_its_reset_time_exactly() -> None:
    est = known_window(50)
    assert est.remaining(RESET - 0.001) == 50
    assert est.remaining(RESET) is None
    assert est.decide(RAISE, RESET) == (Step.PROBE, 0.0)
    assert (est.known, est.reset_at, est.expires_at, est.server_min) == (None, None, None, None)
    assert est.expired_reset == RESET


def test_after_expiry_only_a_fresh_or_newer_reading_is_taken() -> None:
    est = known_window(50)
    old = est.admit(T0, probe=False)
    est.decide(RAISE, RESET)  # expires: probing again
    # an answer to an attempt admitted before the expiry, same old reset: ignored
    assert est.observe(old, 49, RESET, exhausted=False, now=RESET) is False
    assert est.known is None
    # ... unless its reset time is newer than the expired one
    assert est.observe(old, 480, RESET + 86_400, exhausted=False, now=RESET) is True
    assert est.known == 480


def test_a_probe_after_expiry_opens_the_window_even_without_a_reset_time() -> None:
    est = known_window(50)
    est.decide(RAISE, RESET)
    seq = est.admit(RESET, probe=True)
    assert est.observe(seq, 480, None, exhausted=False, now=RESET) is True
    assert (est.known, est.reset_at, est.expires_at) == (480, None, None)


def test_a_quota_429_without_headers_from_before_the_expiry_is_stale() -> None:
    est = known_window(50)
    last = est.admit(T0, probe=False)  # the last admission before the window expires
    assert est.decide(RAISE, RESET) == (Step.PROBE, 0.0)
    assert est.window_mark == last
    assert est.observe(last, None, None, exhausted=True, now=RESET) is False
    assert est.known is None  # not a fresh probe's answer: still unknown


def test_a_reading_at_the_reset_time_exactly_finds_the_window_expired() -> None:
    est = known_window(50)
    seq = est.admit(T0, probe=False)
    assert est.observe(seq, 49, RESET, exhausted=False, now=RESET) is False
    assert (est.known, est.expired_reset) == (None, RESET)


def test_a_reading_expiring_the_window_is_judged_in_the_new_state() -> None:
    est = known_window(50)
    seq = est.admit(T0, probe=False)  # admitted before the expiry
    assert est.observe(seq, 49, RESET, exhausted=False, now=RESET + 1) is False
    assert est.known is None


def test_a_window_without_reset_takes_the_first_future_reset_time() -> None:
    est = QuotaEstimate()
    answered(est, 100, None, probe=True)
    assert (est.reset_at, est.expires_at) == (None, None)
    seq = est.admit(T0, probe=False)
    assert est.observe(seq, 90, T0 + 60, exhausted=False, now=T0) is True
    assert (est.reset_at, est.expires_at, est.known) == (T0 + 60, T0 + 60, 90)


def test_a_window_without_reset_ignores_a_reset_time_already_past() -> None:
    est = QuotaEstimate()
    answered(est, 100, None, probe=True)
    early = est.admit(T0, probe=False)
    answered(est, 90, None)
    # a late, higher reading with a reset time: neither the lowest nor a future reset
    assert est.observe(early, 95, T0, exhausted=False, now=T0) is False
    assert (est.reset_at, est.expires_at, est.known) == (None, None, 90)
    # the same late reading with a future reset time: the window learns when it ends
    assert est.observe(early, 95, T0 + 60, exhausted=False, now=T0) is True
    assert (est.reset_at, est.expires_at, est.known) == (T0 + 60, T0 + 60, 90)


# -- clock skew and backoff --------------------------------------------------------------

def test_a_reset_time_already_past_is_re_probed_after_a_doubling_backoff() -> None:
    est = QuotaEstimate()
    now = T0
    for wait in (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0):
        seq = est.admit(now, probe=True)
        est.observe(seq, 10, T0 - 5, exhausted=False, now=now)  # the server's reset: past
        est.settle(seq, probe=True, spent=False)
        assert est.expires_at == now + wait
        assert est.remaining(now + wait - 0.01) == 10
        now += wait
        assert est.decide(RAISE, now) == (Step.PROBE, 0.0)
    # a reset time in the future again: the backoff starts over
    answered(est, 10, now + 100, now=now, probe=True)
    assert est.backoff == est.MIN_BACKOFF


def test_spent_with_no_reset_time_re_probes_after_a_backoff() -> None:
    est = QuotaEstimate()
    answered(est, 0, None, probe=True)
    assert est.decide(RAISE, T0) == (Step.RAISE, 0.0)
    assert est.expires_at == T0 + 1.0
    assert est.decide(RAISE, T0 + 0.5) == (Step.RAISE, 0.0)
    assert est.expires_at == T0 + 1.0  # set once per window, not per decision
    assert est.decide(RAISE, T0 + 1.0) == (Step.PROBE, 0.0)


# -- spent: raise, or sleep until the reset ----------------------------------------------

def test_spent_raises_under_raise() -> None:
    est = known_window(0)
    assert est.decide(RAISE, T0) == (Step.RAISE, 0.0)
    left, resets_at = est.spent_state()
    assert left == 0
    assert resets_at == datetime.fromtimestamp(RESET, UTC)


def test_spent_sleeps_until_just_past_the_reset_under_wait() -> None:
    est = known_window(0)
    assert est.decide(WAIT, T0) == (Step.SLEEP, RESET + est.RESET_MARGIN)


@pytest.mark.parametrize(("max_wait", "step"), [(3_600.05, Step.SLEEP), (3_600.0, Step.RAISE)])
def test_a_wait_longer_than_max_wait_raises(max_wait: float, step: Step) -> None:
    est = known_window(0)
    policy = QuotaPolicy(on_exhausted="wait", max_wait=max_wait)
    assert est.decide(policy, T0)[0] is step


def test_a_quota_429_sets_the_window_to_zero() -> None:
    est = known_window(50)
    seq = est.admit(T0, probe=False)
    assert est.observe(seq, None, None, exhausted=True, now=T0 + 2) is False
    est.settle(seq, probe=False, spent=False)
    assert est.known == 0
    assert est.read_at == T0 + 2
    seq = est.admit(T0, probe=False)
    assert est.observe(seq, 40, RESET, exhausted=True, now=T0) is True
    assert est.known == 0  # the headers said 40, the 429 says none


def test_a_quota_429_with_a_new_reset_opens_a_spent_window() -> None:
    est = known_window(50, T0)
    seq = est.admit(T0, probe=False)
    assert est.observe(seq, 40, RESET + 86_400, exhausted=True, now=T0) is True
    assert (est.known, est.server_min, est.reset_at) == (0, 0, RESET + 86_400)


# -- lost attempts ------------------------------------------------------------------------

def test_a_lost_attempt_counts_as_spent_until_a_later_reading_covers_it() -> None:
    est = known_window(10)
    lost = est.admit(T0, probe=False)
    in_flight = est.admit(T0, probe=False)
    est.settle(lost, probe=False, spent=True)
    assert list(est.lost) == [3]
    assert est.remaining(T0) == 8  # 10 - 1 lost - 1 in flight
    assert est.spent_state()[0] == 9
    # the answer to an attempt admitted before the loss does not cover it
    est.observe(in_flight, 9, RESET, exhausted=False, now=T0)
    est.settle(in_flight, probe=False, spent=False)
    assert est.remaining(T0) == 8
    # a reading from an attempt admitted after the loss does
    answered(est, 8)
    assert list(est.lost) == []
    assert est.remaining(T0) == 8


def test_a_new_window_covers_the_lost_attempts_before_it() -> None:
    est = known_window(10, T0)
    est.settle(est.admit(T0, probe=False), probe=False, spent=True)
    answered(est, 500, RESET + 86_400)
    assert list(est.lost) == []
    assert est.remaining(T0) == 500


def test_an_unsent_attempt_gives_its_budget_back() -> None:
    est = known_window(1)
    seq = est.admit(T0, probe=False)
    assert est.decide(RAISE, T0) == (Step.ANSWER, 0.0)
    est.settle(seq, probe=False, spent=False)
    assert est.remaining(T0) == 1
    assert est.decide(RAISE, T0) == (Step.ADMIT, 0.0)


# -- pacing -------------------------------------------------------------------------------

def test_pace_spreads_what_is_left_until_the_reset() -> None:
    policy = QuotaPolicy(reserve=10, pace=True)
    est = known_window(110)  # 100 to spend over 3,600 s
    assert est.decide(policy, T0) == (Step.SLEEP, T0 + 36.0)  # the probe was the last admission
    assert est.decide(policy, T0 + 36.0) == (Step.ADMIT, 0.0)
    est.admit(T0 + 36.0, probe=False)  # one in flight: 99 left to spread over 3,564 s
    assert est.decide(policy, T0 + 36.0) == (Step.SLEEP, T0 + 36.0 + 36.0)


def test_pace_does_not_apply_without_a_trusted_reset_time() -> None:
    policy = QuotaPolicy(pace=True)
    est = QuotaEstimate()
    answered(est, 100, None, probe=True)
    assert est.decide(policy, T0) == (Step.ADMIT, 0.0)
    skewed = QuotaEstimate()
    answered(skewed, 100, T0 - 1, probe=True)  # past reset: expires_at is a backoff
    assert skewed.decide(policy, T0) == (Step.ADMIT, 0.0)


def test_a_probe_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    est = QuotaEstimate()
    with caplog.at_level(logging.DEBUG, logger="arena_async._estimate"):
        est.admit(T0, probe=False)
        assert caplog.messages == []
        est.admit(T0, probe=True)
    assert caplog.messages == ["quota state unknown: admitting one probe request"]


def test_spent_state_never_reports_below_zero() -> None:
    est = known_window(1)
    for _ in range(3):
        est.settle(est.admit(T0, probe=False), probe=False, spent=True)
    assert est.spent_state()[0] == 0


def test_a_fresh_probes_quota_429_with_headers_opens_a_spent_window() -> None:
    est = QuotaEstimate()
    seq = est.admit(T0, probe=True)
    assert est.observe(seq, 30, RESET, exhausted=True, now=T0) is True
    assert (est.known, est.server_min) == (0, 0)


def test_a_rise_that_is_a_429_opens_a_spent_window() -> None:
    est = known_window(5, T0)
    seq = est.admit(T0, probe=False)
    assert est.observe(seq, 400, T0, exhausted=True, now=T0) is True
    assert (est.known, est.server_min) == (0, 0)


def test_a_429s_zero_is_not_undone_by_the_same_reading_again() -> None:
    est = known_window(50)
    seq = est.admit(T0, probe=False)
    est.observe(seq, 40, RESET, exhausted=True, now=T0)  # 40 by the headers, none by the 429
    est.settle(seq, probe=False, spent=False)
    assert (est.known, est.server_min) == (0, 40)
    again = est.admit(T0, probe=False)  # admitted after the 40 was read
    assert est.observe(again, 40, RESET, exhausted=False, now=T0) is True  # not a rise
    assert est.known == 0


def test_an_equal_reading_does_not_move_the_lowest_readings_mark() -> None:
    est = known_window(100, T0)  # the probe (admission 1) read 100
    early = est.admit(T0, probe=False)  # admission 2: after the 100 was read
    later = est.admit(T0, probe=False)  # admission 3
    assert est.observe(later, 100, T0, exhausted=False, now=T0) is True
    assert est.min_mark == 1  # the lowest reading is still the probe's
    # `early` was sent after the lowest reading arrived: a rise can only be a reset
    assert est.observe(early, 150, T0, exhausted=False, now=T0) is True
    assert est.known == 150


def test_an_answer_sent_before_a_new_window_opened_never_reopens_it() -> None:
    est = known_window(100, T0)
    early = est.admit(T0, probe=False)  # admission 2
    opener = est.admit(T0, probe=False)  # admission 3
    assert est.observe(opener, 500, RESET + 86_400, exhausted=False, now=T0) is True
    assert est.min_mark == 3
    # admitted before the new window's reading arrived: its higher count is not a reset
    assert est.observe(early, 600, RESET + 86_400, exhausted=False, now=T0) is False
    assert est.known == 500


def test_a_new_window_without_a_reset_time_does_not_keep_the_old_expiry() -> None:
    est = known_window(5, T0)
    seq = est.admit(T0, probe=False)
    assert est.observe(seq, 400, None, exhausted=False, now=T0) is True  # a rise: a reset
    est.settle(seq, probe=False, spent=False)
    assert (est.reset_at, est.expires_at) == (None, None)
    assert est.remaining(RESET + 1) == 400


def test_a_negative_count_reads_as_zero() -> None:
    est = QuotaEstimate()
    answered(est, -5, RESET, probe=True)
    assert (est.known, est.remaining(T0)) == (0, 0)
    est = known_window(10)
    answered(est, -1)
    assert (est.known, est.remaining(T0)) == (0, 0)


def test_spent_without_a_reset_time_backs_off_from_the_last_reading() -> None:
    est = QuotaEstimate()
    answered(est, 10, None, probe=True)
    answered(est, 0, None, now=T0 + 10)  # the same window, read again ten seconds later
    assert est.read_at == T0 + 10
    assert est.decide(RAISE, T0 + 10) == (Step.RAISE, 0.0)
    assert est.expires_at == T0 + 11


def test_a_reading_covers_only_the_losses_before_its_admission() -> None:
    est = known_window(100)
    est.settle(est.admit(T0, probe=False), probe=False, spent=True)  # lost at admission 2
    between = est.admit(T0, probe=False)  # admission 3
    est.settle(est.admit(T0, probe=False), probe=False, spent=True)  # lost at admission 4
    assert list(est.lost) == [2, 4]
    est.observe(between, 99, RESET, exhausted=False, now=T0)
    assert list(est.lost) == [4]


def test_windows_and_resets_are_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="arena_async._estimate"):
        est = known_window(5, T0)
        answered(est, 3, T0)
        answered(est, 400, T0)  # went up
        answered(est, 300, RESET + 86_400)  # the reset moved forward
        est.decide(RAISE, RESET + 86_400)  # expired
    assert caplog.messages == [
        "quota state unknown: admitting one probe request",
        f"quota window: 5 remaining, reset at {T0}",
        "quota reset recognised: remaining went up from 3 to 400",
        f"quota window: 400 remaining, reset at {T0}",
        "quota reset recognised: the reset time moved forward",
        f"quota window: 300 remaining, reset at {RESET + 86_400}",
        "quota window passed its reset time: probing for fresh headers",
    ]


def test_admissions_are_numbered_and_timed() -> None:
    est = QuotaEstimate()
    assert est.admit(T0, probe=False) == 1
    assert est.admit(T0 + 5, probe=False) == 2
    assert est.last_admit_at == T0 + 5
    assert est.probe_out is False


# -- readings are evidence, not gospel -------------------------------------------------------

def test_a_reset_that_jitters_before_the_window_ends_is_the_same_window() -> None:
    est = known_window(100)
    answered(est, 90)
    # An answer processed earlier (higher count) arrives later, its reset a second off
    # either way: the same window, whose lowest count counts.
    for jitter, ends in ((1.0, RESET), (3.0, RESET), (-1.0, RESET - 1.0)):
        seq = est.admit(T0, probe=False)
        est.observe(seq, 95, RESET + jitter, exhausted=False, now=T0)
        est.settle(seq, probe=False, spent=False)
        # (an earlier reset still ahead: the same window, ending then)
        assert (est.known, est.reset_at, est.expires_at) == (90, ends, ends)
    answered(est, 80, RESET + 1.0)
    assert est.known == 80  # a lower count with a jittered reset still lowers it


def test_a_poisoned_reading_never_opens_a_window() -> None:
    est = known_window(100)
    far = T0 + 30 * 86_400.0
    # A reset 30 days out: no reset; its count may only lower the window's.
    answered(est, 1_000_000, far)
    assert (est.known, est.reset_at) == (100, RESET)
    answered(est, 60, far)
    assert (est.known, est.reset_at) == (60, RESET)
    # A count above the workspace's limit: no reading at all, even with a plausible reset.
    seq = est.admit(T0, probe=False)
    assert est.observe(seq, 20_000, RESET, exhausted=False, now=T0, limit=10_000) is False
    assert est.known == 60
    # Nor does either open an unknown window.
    est = QuotaEstimate()
    seq = est.admit(T0, probe=True)
    assert est.observe(seq, 500, far, exhausted=False, now=T0) is False
    assert est.observe(seq, 20_000, RESET, exhausted=False, now=T0, limit=10_000) is False
    assert est.known is None
    # A day and a little (a 25-hour day) is still a window.
    assert est.observe(seq, 500, T0 + 25 * 3600.0, exhausted=False, now=T0) is True


# -- observe's common case, taken by itself, comes to what the general rules decide -------
def _state(est: QuotaEstimate) -> tuple[object, ...]:
    return tuple(list(v) if isinstance(v := getattr(est, name), deque) else v
                 for name in QuotaEstimate.__slots__)


def _answers(rng: random.Random) -> Iterator[tuple[int, int | None, float | str | None,
                                                  float | None, bool, int | None, str]]:
    """Random attempts ending in any order: ``(which in flight, remaining, reset, now,
    exhausted, limit, fate)``, with the reset mostly the window's own and ``now`` at or
    around the window's reset (where the rules change) or well before it."""
    for _ in range(rng.randint(1, 16)):
        yield (rng.randint(0, 3),
               rng.choice([None, *range(-2, 13)]),
               rng.choice([None, "window", "window", RESET, RESET - 60.0, T0 + 200_000.0]),
               rng.choice([None, -1.0, 0.0, 0.5, 5.0]),
               rng.random() < 0.2,
               rng.choice([None, 5, 10]),
               rng.choice(["answered", "answered", "lost", "unsent"]))


@pytest.mark.parametrize("seed", range(4))
def test_observe_decides_as_the_general_rules_do(seed: int) -> None:
    """Attempts in flight end in any order (answered, lost or never sent); at each answer,
    :meth:`QuotaEstimate.observe` (which takes the common case itself) and the general
    rules alone, on a copy, return the same and leave the same state."""
    rng = random.Random(seed)
    for _ in range(1000):
        est = QuotaEstimate()
        in_flight: list[int] = []
        for pick, remaining, reset_choice, offset, exhausted, limit, fate in _answers(rng):
            window = est.reset_at if est.reset_at is not None else RESET
            now = T0 if offset is None else window + offset
            reset = window if reset_choice == "window" else reset_choice
            assert not isinstance(reset, str)
            if rng.random() < 0.6 or not in_flight:
                in_flight.append(est.admit(now, probe=False))
            seq = in_flight.pop(min(pick, len(in_flight) - 1))
            if fate != "answered":
                est.settle(seq, probe=False, spent=fate == "lost")
                continue
            general = copy.deepcopy(est)
            expected = general._observe(seq, remaining, reset, exhausted, now, limit=limit)
            assert est.observe(seq, remaining, reset, exhausted, now, limit=limit) is expected
            assert _state(est) == _state(general)
            est.settle(seq, probe=False, spent=False)


def test_a_lowest_count_announcing_a_later_reset_holds_until_that_reset() -> None:
    # The server rolled its window before the reset it announced (rounded up to whole
    # seconds): answers read before our clock reaches that reset already count in the next
    # window and announce its reset. When they spend it, a probe at the first reset would
    # be refused: the count holds until the later reset.
    later = RESET + 1.0
    est = known_window(10)
    answered(est, 5)
    answered(est, 3, later)
    answered(est, 0, later)
    assert est.decide(WAIT, RESET - 0.5) == (Step.SLEEP, RESET + est.RESET_MARGIN)
    assert est.remaining(RESET + 0.5) == 0
    assert est.decide(WAIT, RESET + est.RESET_MARGIN) == (Step.SLEEP,
                                                          later + est.RESET_MARGIN)
    assert (est.known, est.reset_at, est.expires_at) == (0, later, later)
    assert est.decide(WAIT, later) == (Step.PROBE, 0.0)
    # A later reset whose count is not the lowest (a fresh window's count, read early)
    # leaves the window ending at its own reset; so does a lower count of the window's own.
    for readings in ([(9_000, RESET + 86_400.0)], [(4, later), (2, RESET)]):
        est = known_window(10)
        answered(est, 5)
        for remaining, reset in readings:
            answered(est, remaining, reset)
        assert est.decide(RAISE, RESET) == (Step.PROBE, 0.0)


# -- the evidence rules at their edges --------------------------------------------------------

def test_a_reset_a_day_and_the_slack_ahead_is_believed_one_second_more_is_not() -> None:
    # DAY is 24 h and RESET_SLACK 2 h: a reset 26 h out opens a window, 26 h + 1 s does not.
    assert (QuotaEstimate.DAY, QuotaEstimate.RESET_SLACK) == (86_400.0, 7_200.0)
    edge = T0 + 26 * 3600.0
    for reset, opens in ((edge - 1.0, True), (edge, True), (edge + 1.0, False)):
        est = QuotaEstimate()
        seq = est.admit(T0, probe=True)
        assert est.observe(seq, 500, reset, exhausted=False, now=T0) is opens
        assert est.known == (500 if opens else None)


def test_a_reset_header_without_a_count_in_the_window_is_no_reading() -> None:
    est = known_window(100)
    seq = est.admit(T0, probe=False)
    assert est.observe(seq, None, RESET, exhausted=False, now=T0) is False
    est.settle(seq, probe=False, spent=False)
    assert (est.known, est.server_min, est.reset_at) == (100, 100, RESET)


def test_a_count_equal_to_the_workspace_limit_is_a_reading() -> None:
    est = known_window(100)
    seq = est.admit(T0, probe=False)
    assert est.observe(seq, 100, RESET, exhausted=False, now=T0, limit=100) is True
    seq = est.admit(T0, probe=False)
    assert est.observe(seq, 100, RESET, exhausted=False, now=T0, limit=99) is False
    seq = est.admit(T0, probe=False)
    assert est.observe(seq, 40, RESET, exhausted=False, now=T0, limit=40) is True
    assert (est.known, est.server_min) == (40, 40)


def test_an_equal_count_after_the_reset_time_opens_no_window() -> None:
    # The window's reset time has come (its expiry is a backoff away: the server's clock
    # lags): a count equal to the lowest, from a request sent after it, is no rise.
    est = known_window(5, T0)
    assert est.expires_at == T0 + 1.0
    seq = est.admit(T0, probe=False)
    assert est.observe(seq, 5, T0, exhausted=False, now=T0) is True
    est.settle(seq, probe=False, spent=False)
    assert (est.expires_at, est.backoff, est.min_mark) == (T0 + 1.0, 2.0, 1)
    assert est.decide(RAISE, T0 + 1.0) == (Step.PROBE, 0.0)


# -- a lowest count announcing a later reset holds until that reset, exactly -----------------

LATER = RESET + 10.0


def held_window(count: int = 3) -> QuotaEstimate:
    """A window whose lowest count ``count`` came with the later reset LATER."""
    est = known_window(10)
    answered(est, 5)
    answered(est, count, LATER)
    assert (est.known, est.low_reset, est.reset_at) == (count, LATER, RESET)
    return est


def test_the_hold_lasts_until_the_later_reset_exactly() -> None:
    est = held_window()
    assert est.remaining(RESET) == 3
    assert est.remaining(LATER - 0.001) == 3
    assert est.remaining(LATER) is None
    # The first decision after the window's reset comes exactly at the later reset: over.
    assert est.decide(WAIT, LATER) == (Step.PROBE, 0.0)


def test_a_later_reset_with_a_count_equal_to_the_lowest_holds_it() -> None:
    est = known_window(10)
    answered(est, 3)
    answered(est, 3, LATER)
    assert est.low_reset == LATER
    assert est.remaining(RESET + 1.0) == 3
    assert est.decide(RAISE, RESET + 1.0) == (Step.ADMIT, 0.0)
    assert (est.reset_at, est.expires_at) == (LATER, LATER)


def test_an_equal_count_of_the_windows_own_reset_keeps_the_hold() -> None:
    est = held_window()
    answered(est, 3)  # the window's own reset, not lower: the lowest still came with LATER
    assert est.low_reset == LATER
    assert est.remaining(RESET + 1.0) == 3


def test_a_lower_count_of_the_windows_own_reset_clears_the_hold() -> None:
    est = held_window()
    answered(est, 2)
    assert est.low_reset is None
    assert est.remaining(RESET) is None


def test_a_quota_429_of_the_windows_own_reset_keeps_a_hold_on_zero() -> None:
    est = held_window(0)
    seq = est.admit(T0, probe=False)
    est.observe(seq, 0, RESET, exhausted=True, now=T0)
    est.settle(seq, probe=False, spent=False)
    assert (est.known, est.low_reset) == (0, LATER)
    assert est.decide(WAIT, RESET) == (Step.SLEEP, LATER + est.RESET_MARGIN)


def test_a_quota_429_with_a_later_reset_holds_a_spent_window() -> None:
    est = known_window(10)
    answered(est, 0)
    assert est.low_reset is None
    seq = est.admit(T0, probe=False)
    est.observe(seq, 0, LATER, exhausted=True, now=T0)
    est.settle(seq, probe=False, spent=False)
    assert (est.known, est.low_reset) == (0, LATER)
    assert est.decide(WAIT, RESET + est.RESET_MARGIN) == (Step.SLEEP, LATER + est.RESET_MARGIN)


def test_a_held_window_ends_at_an_earlier_reset_announced_later() -> None:
    # Once held, the window's reset is LATER; an earlier reset still ahead then ends it.
    est = held_window(0)
    assert est.decide(WAIT, RESET + est.RESET_MARGIN) == (Step.SLEEP, LATER + est.RESET_MARGIN)
    assert (est.reset_at, est.expires_at, est.low_reset) == (LATER, LATER, None)
    answered(est, 0, RESET + 5.0, now=RESET + 1.0)
    assert (est.reset_at, est.expires_at) == (RESET + 5.0, RESET + 5.0)
    assert est.remaining(RESET + 5.0) is None
    assert est.decide(WAIT, RESET + 5.0) == (Step.PROBE, 0.0)


def test_a_new_window_drops_the_old_windows_hold() -> None:
    # Only a wall clock stepping back can leave a hold in place until a new window opens:
    # the window's reset (T0 - 1) is past when read, so it expires a backoff later (T0 + 1).
    est = known_window(10, T0 - 1.0)
    assert (est.reset_at, est.expires_at) == (T0 - 1.0, T0 + 1.0)
    answered(est, 3, T0 + 5.0, now=T0 - 10.0)  # the clock stepped back: a later reset
    assert est.low_reset == T0 + 5.0
    answered(est, 400, T0 + 86_400.0)  # the clock is back: the reset moved forward
    assert (est.known, est.reset_at, est.low_reset) == (400, T0 + 86_400.0, None)
    answered(est, 400, T0 + 0.5)  # an earlier reset still ahead: the new window ends then
    assert est.remaining(T0 + 0.5) is None
