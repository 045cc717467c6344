"""The share's pure rules, without sockets or sleeps: session lease, members, quota ledger."""

from __future__ import annotations

from typing import Any

import pytest

from arena_async._share._state import (
    MIN_BACKOFF,
    RESET_MARGIN,
    Acquired,
    Decision,
    Doc,
    Held,
    Now,
    Report,
    Step,
    acquire_step,
    extend_step,
    heartbeat_step,
    leave_step,
    ledger_step,
    publish_step,
    release_step,
)


class Store:
    """One document and a share clock, as a backend would hold them (JSON round trip)."""

    def __init__(self, now: float = 1000.0) -> None:
        import json

        self._json = json
        self.text: str | None = None
        self.now = now  # the wall clock
        self.skew = 0.0  # the lease clock reads now + skew (a wall-clock step moves only now)

    def apply(self, step: Step[Any]) -> Any:
        doc = None if self.text is None else self._json.loads(self.text)
        new, result = step(doc, Now(self.now, self.now + self.skew))
        self.text = None if new is None else self._json.dumps(new)
        return result

    @property
    def doc(self) -> Doc:
        assert self.text is not None
        return dict(self._json.loads(self.text))


def acquire(store: Store, member: str, seen: int | None = None, **kw: Any) -> Acquired:
    kw.setdefault("lease_ttl", 10.0)
    kw.setdefault("member_ttl", 15.0)
    return store.apply(acquire_step(member, seen, **kw))  # type: ignore[no-any-return]


def publish(store: Store, member: str, token: str, expires_in: float | None = None,
            gen: int | None = None) -> int:
    """Publish under the member's current lease (its generation, unless given)."""
    if gen is None:
        lease = store.doc["lease"]
        gen = lease["gen"] if lease and lease["owner"] == member else 0
    published = store.apply(publish_step(member, token, expires_in, gen=gen))
    assert published.kind == "published", published
    return int(published.version)


# -- session, lease, members -----------------------------------------------------------
def test_the_first_sharer_logs_in_the_others_wait_then_adopt() -> None:
    store = Store()
    assert acquire(store, "a").kind == "login"
    waiting = acquire(store, "b")
    assert waiting.kind == "wait"
    assert waiting.wait == pytest.approx(10.0)
    assert publish(store, "a", "S1", None) == 1
    adopted = acquire(store, "b")
    assert (adopted.kind, adopted.token, adopted.version) == ("adopt", "S1", 1)
    assert store.doc["lease"] is None


def test_a_401_on_the_published_session_leads_to_one_login() -> None:
    store = Store()
    acquire(store, "a")
    publish(store, "a", "S1", None)
    # Both saw version 1 die: the first takes the lease, the second waits, then adopts S2.
    assert acquire(store, "a", seen=1).kind == "login"
    assert acquire(store, "b", seen=1).kind == "wait"
    publish(store, "a", "S2", None)
    got = acquire(store, "b", seen=1)
    assert (got.kind, got.token, got.version) == ("adopt", "S2", 2)
    # A sharer that already holds version 2 and sees it die logs in, it does not re-adopt it.
    assert acquire(store, "b", seen=2).kind == "login"


def test_a_session_of_the_seen_version_with_another_token_is_adopted() -> None:
    # A share file deleted and made again counts its versions anew: the version a sharer
    # saw refused (1, "S1") can name another sharer's session in the new file ("S9").
    store = Store()
    acquire(store, "late")
    publish(store, "late", "S9", None)
    got = acquire(store, "early", seen=1, seen_token="S1")
    assert (got.kind, got.token, got.version) == ("adopt", "S9", 1)
    # The very session seen refused (same version, same token) is never adopted again.
    assert acquire(store, "early", seen=1, seen_token="S9").kind == "login"


def test_a_dead_lease_holder_blocks_for_one_lease_ttl_at_most() -> None:
    store = Store()
    acquire(store, "a", lease_ttl=3.0)
    store.now += 2.9
    assert acquire(store, "b", lease_ttl=3.0).kind == "wait"
    store.now += 0.1
    assert acquire(store, "b", lease_ttl=3.0).kind == "login"


def test_extending_the_lease_keeps_others_out_only_for_its_holder() -> None:
    store = Store()
    acquire(store, "a", lease_ttl=3.0)
    store.now += 2.0
    assert store.apply(extend_step("a", 3.0)) is True
    assert store.apply(extend_step("b", 3.0)) is False
    store.now += 2.0
    assert acquire(store, "b", lease_ttl=3.0).kind == "wait"


def test_refused_credentials_are_not_tried_by_other_sharers() -> None:
    store = Store()
    acquire(store, "a")
    store.apply(release_step("a", refused_for=300.0, status=400, code=4001,
                             message="bad password"))
    got = acquire(store, "b")
    assert (got.kind, got.status, got.code, got.message) == ("refused", 400, 4001,
                                                              "bad password")
    store.now += 300.0
    assert acquire(store, "b").kind == "login"


def test_a_failed_login_releases_the_lease_for_the_next() -> None:
    store = Store()
    acquire(store, "a")
    store.apply(release_step("a"))
    assert acquire(store, "b").kind == "login"


def test_an_expiring_token_is_not_adopted_within_the_margin() -> None:
    store = Store()
    acquire(store, "a")
    publish(store, "a", "T1", 10.0)
    got = acquire(store, "b", margin=1.0)
    assert got.kind == "adopt"
    assert got.expires_in == pytest.approx(10.0)
    store.now += 9.5
    assert acquire(store, "c", margin=1.0).kind == "login"


def test_the_last_member_to_leave_gets_the_session_to_log_out_once() -> None:
    store = Store()
    acquire(store, "a")
    publish(store, "a", "S1", None)
    acquire(store, "b")
    assert store.apply(leave_step("a")).kind == "stay"
    assert store.apply(leave_step("b")).token == "S1"
    assert store.apply(leave_step("b")).kind == "stay"  # once
    assert store.doc["session"] is None


def test_a_crashed_member_expires_and_does_not_keep_the_session_alive() -> None:
    store = Store()
    acquire(store, "a", member_ttl=5.0)
    publish(store, "a", "S1", None)
    acquire(store, "b", member_ttl=5.0)  # b then dies: no heartbeat
    store.now += 4.0
    store.apply(heartbeat_step("a", 5.0))
    store.now += 2.0  # b's membership is over, a's is not
    assert store.apply(leave_step("a")).token == "S1"


def test_a_live_member_keeps_the_session_for_the_others() -> None:
    store = Store()
    acquire(store, "a", member_ttl=5.0)
    publish(store, "a", "S1", None)
    acquire(store, "b", member_ttl=5.0)
    store.now += 4.0
    store.apply(heartbeat_step("b", 5.0))
    store.now += 4.0
    assert store.apply(leave_step("a")).kind == "stay"


# -- the quota ledger -------------------------------------------------------------------
def ask(store: Store, member: str, report: Report | None = None, *, want: int = 8,
        reserve: int = 0, mode: str = "raise", max_wait: float = 3600.0,
        member_ttl: float = 15.0) -> Decision:
    return store.apply(ledger_step(  # type: ignore[no-any-return]
        member, report or Report(), want=want, reserve=reserve,
        on_exhausted=mode, max_wait=max_wait,  # type: ignore[arg-type]
        member_ttl=member_ttl, probe_ttl=10.0))


def reading(remaining: int, reset_at: float | None, done: int = 1, **kw: Any) -> Report:
    return Report(done=done, remaining=remaining, reset_at=reset_at, **kw)


def test_an_unknown_window_admits_one_probe_across_all_members() -> None:
    store = Store()
    first = ask(store, "a")
    assert (first.kind, first.granted, first.probe) == ("grant", 1, True)
    assert ask(store, "b").kind == "wait"
    assert ask(store, "a").kind == "wait"  # its own probe is still out
    # The probe's reading opens the window: both get batches.
    got = ask(store, "a", reading(100, store.now + 3600))
    assert (got.kind, got.granted, got.remaining) == ("grant", 8, 100)
    assert ask(store, "b").granted == 8


def test_the_workspace_limit_one_member_reports_comes_back_to_every_member() -> None:
    store = Store()
    assert ask(store, "b").limit is None  # nobody logged in yet
    assert ask(store, "a", Report(limit=5000), want=0).limit == 5000
    assert ask(store, "b").limit == 5000  # b adopted the session: no login told it
    assert ask(store, "b", reading(90, store.now + 3600)).limit == 5000  # kept on


def test_a_lost_probe_frees_the_window_at_once() -> None:
    # The probe's request got no answer (a reset connection): no reading, but it no longer
    # holds the window, so the next member probes now, not probe_ttl later.
    store = Store()
    assert ask(store, "a").probe
    assert ask(store, "b").kind == "wait"
    assert ask(store, "a", Report(lost=1), want=0).kind == "grant"
    got = ask(store, "b")
    assert (got.kind, got.granted, got.probe) == ("grant", 1, True)


def test_a_leaving_member_gives_up_its_entry_and_its_probe() -> None:
    store = Store()
    assert ask(store, "a").probe
    ask(store, "a", Report(returned=1, leaving=True), want=0)
    assert "a" not in store.doc["members"]
    assert store.doc["probe"] is None
    assert ask(store, "b").probe  # the next process probes at once


def test_grants_never_exceed_the_budget_above_the_reserve() -> None:
    store = Store()
    ask(store, "a")
    ask(store, "a", reading(30, store.now + 3600), want=0)
    grants = [ask(store, m, want=8, reserve=10).granted for m in ("a", "b", "c")]
    assert grants == [8, 8, 4]  # 30 - 10 reserve = 20 in all
    assert ask(store, "c", reserve=10).kind == "wait"  # in flight: their answers will tell


def test_a_member_with_a_larger_reserve_stops_earlier() -> None:
    store = Store()
    ask(store, "a")
    ask(store, "a", reading(30, store.now + 3600), want=0)
    assert ask(store, "a", want=8, reserve=25).granted == 5
    assert ask(store, "b", want=8, reserve=0).granted == 8


def test_spent_budget_raises_or_waits_for_the_reset() -> None:
    store = Store()
    reset = store.now + 120
    ask(store, "a")
    ask(store, "a", reading(10, reset), want=0)
    assert ask(store, "a", want=10, reserve=0).granted == 10
    ask(store, "a", reading(0, reset, done=10), want=0)
    spent = ask(store, "b", mode="raise")
    assert (spent.kind, spent.remaining, spent.resets_at) == ("spent", 0, reset)
    waited = ask(store, "b", mode="wait")
    assert waited.kind == "wait"
    assert waited.until_reset
    assert waited.delay == pytest.approx(120 + RESET_MARGIN)
    assert ask(store, "b", mode="wait", max_wait=119).kind == "spent"


def test_after_the_reset_one_probe_goes_first_no_stampede() -> None:
    store = Store()
    reset = store.now + 60
    ask(store, "a")
    ask(store, "a", reading(0, reset), want=0)
    store.now = reset + RESET_MARGIN
    decisions = [ask(store, m, mode="wait") for m in ("a", "b", "c", "d")]
    assert [(d.kind, d.granted) for d in decisions] == [("grant", 1), ("wait", 0),
                                                        ("wait", 0), ("wait", 0)]
    ask(store, "a", reading(5000, reset + 86400), want=0)
    assert ask(store, "b", mode="wait").granted == 8


def test_a_reading_from_an_older_window_is_ignored_a_newer_window_adopted() -> None:
    store = Store()
    reset = store.now + 60
    ask(store, "a")
    ask(store, "a", reading(50, reset), want=0)
    ask(store, "a", reading(40, reset - 86400), want=0)
    assert store.doc["remaining"] == 50
    ask(store, "a", reading(60, reset), want=0)  # same window: the lowest stays
    assert store.doc["remaining"] == 50
    ask(store, "a", reading(900, reset + 86400), want=0)  # before the reset: not evidence
    assert store.doc["remaining"] == 50
    store.now = reset
    ask(store, "a", reading(900, reset + 86400), want=0)  # the window is over: a new one
    assert store.doc["remaining"] == 900


def test_lost_attempts_count_as_spent() -> None:
    store = Store()
    ask(store, "a")
    ask(store, "a", reading(20, store.now + 60), want=0)
    ask(store, "a", Report(done=3, lost=3), want=0)
    assert store.doc["remaining"] == 17


def test_a_dead_members_unspent_batch_goes_back_its_in_flight_share_at_the_reset() -> None:
    store = Store()
    ask(store, "a")
    ask(store, "a", reading(20, store.now + 3600), want=0)
    assert ask(store, "dead", Report(concurrency=4), want=20, member_ttl=5.0).granted == 20
    assert ask(store, "b", member_ttl=5.0).kind == "wait"
    store.now += 5.0
    # Its entry expired: its batch goes back, but as many as it could have in flight (4)
    # stay counted: it may only be paused, and send them when it resumes.
    assert ask(store, "b", want=20, member_ttl=5.0).granted == 16
    ask(store, "b", Report(done=16), want=0, member_ttl=5.0)
    store.now += 3600.0  # the window ended; it may have been paused across the reset
    ask(store, "b", reading(20, store.now + 3600), want=0, member_ttl=5.0)
    assert ask(store, "b", want=20, member_ttl=5.0).granted == 16
    ask(store, "b", Report(done=16), want=0, member_ttl=5.0)
    store.now += 3600.0  # one window more: then it counts no more (it died)
    ask(store, "b", reading(20, store.now + 3600), want=0, member_ttl=5.0)
    assert ask(store, "b", want=20, member_ttl=5.0).granted == 20
    assert store.doc["graces"] == store.doc["carried"] == {}


def test_a_budget_held_only_by_an_expired_member_is_spent_not_awaited() -> None:
    store = Store()
    ask(store, "a")
    ask(store, "a", reading(20, store.now + 3600), want=0)
    assert ask(store, "paused", Report(concurrency=32), want=20, member_ttl=5.0).granted == 20
    assert ask(store, "b", member_ttl=5.0).kind == "wait"  # its answers will tell
    store.now += 6.0  # expired while stopped: all 20 may still come, and nobody will say
    assert ask(store, "b", member_ttl=5.0).kind == "spent"
    assert ask(store, "b", member_ttl=5.0, mode="wait").until_reset


def test_a_paused_member_that_comes_back_says_what_it_holds() -> None:
    store = Store()
    ask(store, "a")
    ask(store, "a", reading(20, store.now + 3600), want=0)
    granted = ask(store, "paused", Report(concurrency=8), want=20, member_ttl=5.0).granted
    assert granted == 20
    store.now += 6.0  # expired while stopped: 8 of its 20 may still come
    assert ask(store, "b", want=20, member_ttl=5.0).granted == 12
    # It resumes: 17 admissions never sent (given back), 3 in flight (held).
    ask(store, "paused", Report(returned=17, held=3), want=0, member_ttl=5.0)
    assert "paused" not in store.doc["graces"]
    assert ask(store, "c", want=20, member_ttl=5.0).granted == 5  # 20 - 12 - its 3


def test_a_member_paused_across_the_reset_is_counted_in_the_new_window_till_it_is_back() -> None:
    store = Store()
    ask(store, "a")
    ask(store, "a", reading(20, store.now + 3600), want=0)
    assert ask(store, "paused", Report(concurrency=8), want=20, member_ttl=5.0).granted == 20
    store.now += 6.0
    assert ask(store, "b", want=20, member_ttl=5.0).granted == 12
    ask(store, "b", Report(done=12), want=0, member_ttl=5.0)
    store.now += 3600.0  # the reset: still stopped, its 8 may land in the new window
    ask(store, "b", reading(30, store.now + 3600), want=0, member_ttl=5.0)
    assert ask(store, "b", want=30, member_ttl=5.0).granted == 22
    # It resumes: its 8 went out (done, answered), it holds nothing now.
    ask(store, "paused", Report(done=8, held=0, remaining=10, reset_at=store.now + 3600),
        want=0, member_ttl=5.0)
    assert store.doc["carried"] == {}
    ask(store, "b", Report(done=22), want=0, member_ttl=5.0)
    assert ask(store, "b", want=30, member_ttl=5.0).granted == 10


def test_returned_admissions_are_granted_again() -> None:
    store = Store()
    ask(store, "a")
    ask(store, "a", reading(10, store.now + 3600), want=0)
    assert ask(store, "a", want=10).granted == 10
    assert ask(store, "b").kind == "wait"
    ask(store, "a", Report(returned=6), want=0)
    assert ask(store, "b").granted == 6


def test_a_quota_429_spends_the_window() -> None:
    store = Store()
    reset = store.now + 60
    ask(store, "a")
    ask(store, "a", reading(500, reset), want=0)
    ask(store, "a", Report(done=1, remaining=500, reset_at=reset, exhausted=True), want=0)
    assert ask(store, "b").kind == "spent"


def test_spent_without_a_reset_time_reprobes_after_a_backoff() -> None:
    store = Store()
    ask(store, "a")
    ask(store, "a", reading(0, None), want=0)
    assert ask(store, "a", mode="wait").kind == "spent"  # no reset known: raise at once
    store.now += MIN_BACKOFF
    probe = ask(store, "a", mode="wait")
    assert (probe.kind, probe.probe) == ("grant", True)


def test_a_reset_time_already_past_is_looked_at_again_after_a_backoff() -> None:
    store = Store()
    ask(store, "a")
    ask(store, "a", reading(100, store.now - 5), want=0)  # the server's clock lags
    assert ask(store, "a").granted == 8
    store.now += MIN_BACKOFF
    assert ask(store, "b").probe  # the window is looked at again, one probe


# -- fencing ------------------------------------------------------------------------------
def test_a_holder_stopped_past_its_lease_is_fenced_and_adopts_the_newer_session() -> None:
    store = Store()
    stale = acquire(store, "a", lease_ttl=3.0)  # a logs in... and is stopped (SIGSTOP)
    store.now += 3.0
    fresh = acquire(store, "b", lease_ttl=3.0)
    assert (stale.kind, fresh.kind) == ("login", "login")
    assert fresh.gen > stale.gen  # the fencing token
    assert publish(store, "b", "S-b", gen=fresh.gen) == 1
    # a resumes: its session (cancelled by b's login) must not replace b's.
    fenced = store.apply(publish_step("a", "S-a", None, gen=stale.gen))
    assert fenced.kind == "fenced"
    got = acquire(store, "a", seen=None)
    assert (got.kind, got.token) == ("adopt", "S-b")


def test_a_holder_is_fenced_while_another_holds_a_newer_lease() -> None:
    store = Store()
    stale = acquire(store, "a", lease_ttl=3.0)
    store.now += 3.0
    acquire(store, "b", lease_ttl=3.0)  # b logs in now
    assert store.apply(publish_step("a", "S-a", None, gen=stale.gen)).kind == "fenced"
    assert acquire(store, "a").kind == "wait"  # for b's session


def test_an_expired_lease_nobody_took_still_publishes_and_a_retry_is_harmless() -> None:
    store = Store()
    got = acquire(store, "a", lease_ttl=3.0)
    store.now += 10.0  # slow login, nobody else wanted the lease
    assert publish(store, "a", "S1", gen=got.gen) == 1
    again = store.apply(publish_step("a", "S1", None, gen=got.gen))  # its answer was lost
    assert (again.kind, again.version) == ("published", 1)
    assert store.apply(extend_step("a", 3.0, got.gen)) is False  # the lease is gone


# -- the store lost its state -----------------------------------------------------------------
def held(token: str, version: int, gen: int = 1) -> Held:
    return Held(token, version, gen)


def test_after_a_loss_sharers_put_back_their_session_and_one_logs_out_at_the_end() -> None:
    store = Store()
    a, b = acquire(store, "a"), acquire(store, "b")
    version = publish(store, "a", "S1", gen=a.gen)
    epoch = store.doc["epoch"]
    assert b.epoch == epoch
    store.text = None  # FLUSHALL
    # b's heartbeat puts back its membership and the session it holds: a newcomer adopts it
    # (no login: that would cancel the session a and b still use).
    store.apply(heartbeat_step("b", 15.0, epoch=epoch, settle=2.0,
                               held=held("S1", version, a.gen)))
    got = acquire(store, "c")
    assert (got.kind, got.token, got.version) == ("adopt", "S1", version)
    # Nobody is provably the last until every live sharer could re-register (the recovery).
    assert store.apply(leave_step("c", settle=2.0, epoch=got.epoch)).kind == "wait"
    store.apply(heartbeat_step("a", 15.0, epoch=epoch, settle=2.0,
                               held=held("S1", version, a.gen)))
    store.now += 2.0
    assert store.apply(leave_step("c", epoch=got.epoch)).kind == "stay"
    assert store.apply(leave_step("b", epoch=got.epoch)).kind == "stay"
    left = store.apply(leave_step("a", epoch=epoch, held=held("S1", version, a.gen)))
    assert (left.kind, left.token) == ("logout", "S1")
    # A sharer that still holds the logged-out session cannot put it back.
    store.apply(heartbeat_step("d", 15.0, held=held("S1", version, a.gen)))
    assert store.doc["session"] is None


def test_a_lone_sharer_leaving_a_lost_share_waits_then_logs_out() -> None:
    store = Store()
    a = acquire(store, "a")
    version = publish(store, "a", "S1", gen=a.gen)
    store.text = None
    left = store.apply(leave_step("a", epoch=a.epoch, settle=2.0, held=held("S1", version)))
    assert (left.kind, left.delay) == ("wait", 2.0)
    store.now += 2.0
    left = store.apply(leave_step("a", epoch=a.epoch, settle=2.0, held=held("S1", version)))
    assert (left.kind, left.token) == ("logout", "S1")


def test_a_newer_session_wins_over_a_stale_one_put_back_first() -> None:
    store = Store()
    store.apply(heartbeat_step("old", 15.0, epoch="gone", held=held("S1", 1, 1)))
    store.apply(heartbeat_step("new", 15.0, epoch="gone", held=held("S2", 2, 2)))
    store.apply(heartbeat_step("old", 15.0, epoch="gone", held=held("S1", 1, 1)))
    assert (store.doc["session"]["token"], store.doc["version"], store.doc["gen"]) == (
        "S2", 2, 2)
    assert acquire(store, "x", seen=2).gen == 3  # generations keep going up


def test_a_wall_clock_step_neither_expires_members_nor_leases() -> None:
    store = Store()
    acquire(store, "a", lease_ttl=3.0)
    acquire(store, "b")
    store.now += 600.0  # the wall clock steps; the lease clock does not
    store.skew = -600.0
    assert acquire(store, "b").kind == "wait"
    assert store.apply(leave_step("b")).kind == "stay"  # a is alive


def reg(member_held: int, latest: tuple[int, float] | None = None, lost: int = 0,
        **kw: Any) -> Report:
    return Report(held=member_held, latest_remaining=None if latest is None else latest[0],
                  latest_reset_at=None if latest is None else latest[1], latest_lost=lost,
                  **kw)


def ask2(store: Store, member: str, report: Report, *, epoch: str | None, want: int = 8,
         reserve: int = 0, settle: float = 1.0) -> Decision:
    return store.apply(ledger_step(  # type: ignore[no-any-return]
        member, report, want=want, reserve=reserve, on_exhausted="raise", max_wait=3600.0,
        member_ttl=15.0, probe_ttl=10.0, epoch=epoch, settle=settle))


def test_a_lost_ledger_recovers_then_reseeds_from_the_newest_genuine_reading() -> None:
    store = Store()
    reset = store.now + 3600
    first = ask2(store, "a", reg(0), epoch=None)
    ask2(store, "a", reg(0, remaining=120, reset_at=reset, done=1), epoch=first.epoch, want=0)
    assert ask2(store, "a", reg(0), epoch=first.epoch, want=40, reserve=20).granted == 40
    assert ask2(store, "b", reg(0), epoch=first.epoch, want=40, reserve=20).granted == 40
    epoch = first.epoch
    store.text = None  # Redis restarted without persistence
    # a comes back first: it still holds 40 unreported, and its newest reading was 120.
    got = ask2(store, "a", reg(40, (120, reset)), epoch=epoch, reserve=20)
    assert got.kind == "wait"  # b has not re-registered yet: nothing is granted, no probe
    assert store.doc["remaining"] == 120
    got = ask2(store, "b", reg(30, (95, reset), lost=2), epoch=epoch, reserve=20)
    assert got.kind == "wait"
    assert store.doc["remaining"] == 93  # the newest reading, less what b lost since
    store.now += 1.0  # the recovery is over
    got = ask2(store, "a", reg(40), epoch=got.epoch, want=100, reserve=20)
    assert (got.kind, got.granted) == ("grant", 93 - 20 - 40 - 30)


def test_a_lost_ledger_without_a_reading_admits_only_one_probe() -> None:
    store = Store()
    first = ask2(store, "a", reg(0), epoch=None)
    assert first.probe
    store.text = None
    assert ask2(store, "a", reg(1), epoch=first.epoch).kind == "wait"  # recovering
    store.now += 1.0
    got = ask2(store, "b", reg(0), epoch=None)
    assert (got.kind, got.granted, got.probe) == ("grant", 1, True)
    assert ask2(store, "a", reg(1), epoch=got.epoch).kind == "wait"


def test_a_registration_is_absolute_so_a_lost_answer_or_a_lapsed_entry_heals() -> None:
    store = Store()
    reset = store.now + 3600
    first = ask2(store, "a", reg(0), epoch=None)
    ask2(store, "a", reg(0, remaining=100, reset_at=reset, done=1), epoch=first.epoch, want=0)
    ask2(store, "a", reg(0), epoch=first.epoch, want=50)  # granted 50, the answer was lost
    ask2(store, "a", reg(0), epoch=first.epoch, want=10)  # a still holds none: 10 now
    assert store.doc["members"]["a"]["out"] == 10
    store.now += 20.0  # a was stopped past its entry's life
    store.skew = 0.0
    assert "a" in store.doc["members"]
    ask2(store, "b", reg(0), epoch=first.epoch, want=0)
    assert "a" not in store.doc["members"]
    ask2(store, "a", reg(7), epoch=first.epoch, want=0)  # it resumes with 7 in flight
    assert store.doc["members"]["a"]["out"] == 7


@pytest.mark.parametrize(("remaining", "reset_in", "limit", "counts"), [
    (1_000_000, 30 * 86400.0, None, False),  # a reset 30 days out: no window
    (90, 30 * 86400.0, None, True),  # ... though a lower count still lowers it
    (20_000, 3600.0, 10_000, False),  # above the workspace's limit: no reading
    (500, 3601.0, None, False),  # a reset a second later: jitter, the lowest count counts
    (40, 3599.0, None, True),  # a second earlier, still ahead: the same window
])
def test_readings_are_evidence(remaining: int, reset_in: float, limit: int | None,
                               counts: bool) -> None:
    store = Store()
    reset = store.now + 3600.0
    ask(store, "a")
    ask(store, "a", Report(done=1, remaining=100, reset_at=reset, limit=limit), want=0)
    ask(store, "b", reading(remaining, store.now + reset_in), want=0)
    # (an earlier reset still ahead: the same window, ending then)
    assert store.doc["reset_at"] == min(reset, store.now + reset_in)
    assert store.doc["remaining"] == (remaining if counts else 100)


def test_readings_that_never_open_an_unknown_window() -> None:
    store = Store()
    assert ask(store, "a", Report(limit=10_000)).probe
    ask(store, "a", reading(9_000_000, store.now + 30 * 86400.0), want=0)
    assert store.doc["remaining"] is None
    assert ask(store, "a").probe  # the next probe asks again
    ask(store, "a", reading(20_000, store.now + 3600.0), want=0)
    assert store.doc["remaining"] is None
    assert ask(store, "a").probe
    ask(store, "a", reading(9_000, store.now + 3600.0), want=0)
    assert store.doc["remaining"] == 9_000


def test_a_probe_that_finds_the_window_still_open_is_believed() -> None:
    store = Store()
    reset = store.now + 600.0
    ask(store, "a")
    ask(store, "a", reading(50, reset), want=0)
    store.now += 600.0  # the share's wall clock steps past the server's reset
    assert ask(store, "a", reserve=40).probe
    ask(store, "b", reading(45, reset), want=0)  # a late answer of the old window: ignored
    assert store.doc["remaining"] is None
    # The probe's answer (sent after the expiry) says the window still runs: the budget
    # holds again, and no probe after probe spends the reserve.
    ask(store, "a", reading(44, reset), want=0)
    assert store.doc["remaining"] == 44
    assert ask(store, "a", reserve=40).granted == 4
    assert ask(store, "b", reserve=40).kind == "wait"


def test_a_window_spent_by_answers_announcing_a_later_reset_is_not_probed_early() -> None:
    # The server rolled its window before the reset it announced (it rounds the reset up to
    # whole seconds): answers already count in the next window and announce the next
    # reset, and they spend that window too before the share's clock reaches the first
    # reset. A probe then would be refused (a quota 429): the count holds until the later
    # reset.
    store = Store()
    reset, later = store.now + 1.0, store.now + 2.0
    ask(store, "a")
    ask(store, "a", reading(29, reset), want=0)
    ask(store, "a", reading(15, reset, done=14), want=0)
    ask(store, "b", reading(3, later, done=12), want=0)  # the next window's answers
    ask(store, "b", reading(0, later, done=3), want=0)
    store.now = reset + RESET_MARGIN
    waited = ask(store, "a", mode="wait")
    assert (waited.kind, waited.until_reset, waited.resets_at) == ("wait", True, later)
    assert waited.delay == pytest.approx(later + RESET_MARGIN - store.now)
    store.now = later + RESET_MARGIN
    probe = ask(store, "a", mode="wait")
    assert (probe.kind, probe.granted, probe.probe) == ("grant", 1, True)


def test_a_later_reset_keeps_only_the_lowest_count_past_the_earlier_reset() -> None:
    store = Store()
    reset, later = store.now + 60.0, store.now + 61.0
    ask(store, "a")
    ask(store, "a", reading(50, reset), want=0)
    ask(store, "a", reading(40, later), want=0)  # the lowest count, with a later reset
    store.now = reset + RESET_MARGIN
    assert ask(store, "a", want=5).granted == 5  # that count holds past the first reset
    assert store.doc["reset_at"] == later
    store.now = later + RESET_MARGIN
    assert ask(store, "a").probe  # then the window is over
    # A later reset whose count is not the lowest (a fresh window's high count, read
    # before the share's clock reached the reset) does not hold the window: the window
    # ends at its own reset, and a probe asks for the truth.
    store = Store()
    reset = store.now + 60.0
    ask(store, "a")
    ask(store, "a", reading(5, reset), want=0)
    ask(store, "a", reading(9_000, reset + 86400), want=0)
    ask(store, "a", reading(40, reset + 1.0), want=0)
    ask(store, "a", reading(4, reset), want=0)  # the current window's own count is lowest
    store.now = reset + RESET_MARGIN
    assert ask(store, "a").probe


# -- rules the tests above leave open (found by tools/mutate.py on this module) -------------
def test_a_session_step_of_a_sharer_from_a_lost_share_starts_the_recovery() -> None:
    """The first sharer back after a loss may come by the session document (a login): the
    ledger's recovery starts then too, so nothing is granted before the others re-register."""
    store = Store()
    first = acquire(store, "a")
    store.text = None  # lost
    again = acquire(store, "a", epoch=first.epoch, settle=2.0)
    assert again.epoch != first.epoch
    assert store.doc["recover_until"] == pytest.approx(store.now + 2.0)
    assert acquire(store, "b", epoch=again.epoch, settle=2.0).kind == "wait"
    assert store.doc["recover_until"] == pytest.approx(store.now + 2.0)  # once per epoch


def test_a_session_published_after_a_loss_keeps_the_fencing_counter_above_it() -> None:
    """A holder whose lease came from the lost document publishes its generation into the
    new one: the next lease must be newer, or a stale holder of that generation could
    publish over it."""
    store = Store()
    for member in "abcd":  # generations 1-4 taken in the old document
        acquire(store, member, lease_ttl=0.0)
    holder = acquire(store, "e", lease_ttl=0.0)
    assert holder.gen == 5
    store.text = None  # lost while e logged in
    assert publish(store, "e", "S-e", gen=holder.gen) == 1
    store.now += 1.0
    next_lease = acquire(store, "f", seen=1)
    assert (next_lease.kind, next_lease.gen) == ("login", 6)
    assert store.apply(publish_step("e", "S-old", None, gen=holder.gen)).kind == "fenced"


def test_a_published_session_clears_a_refusal_recorded_before() -> None:
    """A slow login outlived its lease; the next holder's login was refused (a password
    changed meanwhile); then the slow one succeeds: its session is good, so the others
    adopt it instead of meeting the refusal."""
    store = Store()
    slow = acquire(store, "a", lease_ttl=1.0)
    store.now += 1.0
    assert acquire(store, "b").kind == "login"
    store.apply(release_step("b", refused_for=300.0, status=401, message="bad password"))
    assert acquire(store, "c").kind == "refused"
    assert publish(store, "a", "S-a", gen=slow.gen) == 1
    got = acquire(store, "c")
    assert (got.kind, got.token) == ("adopt", "S-a")


def test_a_leaving_member_waiting_out_a_recovery_stays_a_member_till_it_ends() -> None:
    store = Store()
    a = acquire(store, "a")
    version = publish(store, "a", "S1", gen=a.gen)
    store.text = None
    left = store.apply(leave_step("a", epoch=a.epoch, settle=30.0, held=held("S1", version),
                                  member_ttl=5.0))
    assert left.kind == "wait"
    store.now += 20.0  # past its member_ttl, within the recovery: still a member
    assert store.apply(leave_step("b", epoch=store.doc["epoch"])).kind == "wait"
    assert "a" in store.doc["members"]


def test_the_probe_is_counted_out_while_another_members_reading_opens_the_window() -> None:
    store = Store()
    assert ask(store, "a").probe  # a's probe is out
    # b's reading of an answer the server counted before a's probe was sent
    got = ask(store, "b", reading(5, store.now + 3600, done=0))
    assert (got.kind, got.granted) == ("grant", 4)  # 5 less a's probe, still out


def test_one_admission_is_granted_when_one_is_wanted_and_one_is_left() -> None:
    store = Store()
    assert ask(store, "a").probe
    ask(store, "a", reading(2, store.now + 3600), want=0)
    got = ask(store, "b", want=1)  # the last sharer's logout asks for one
    assert (got.kind, got.granted) == ("grant", 1)
    got = ask(store, "a", want=8)  # one left
    assert (got.kind, got.granted) == ("grant", 1)


def test_a_budget_of_one_in_flight_is_awaited_not_spent() -> None:
    store = Store()
    assert ask(store, "a").probe
    ask(store, "a", reading(1, store.now + 3600), want=0)
    assert ask(store, "a", want=1).granted == 1
    got = ask(store, "b")  # the last admission is in flight: its answer will tell
    assert got.kind == "wait"
    assert got.until_reset is False


def test_lost_attempts_never_leave_a_count_below_zero_that_grants_again() -> None:
    store = Store()
    assert ask(store, "a").probe
    ask(store, "a", reading(3, store.now + 3600), want=0)
    assert ask(store, "a", want=3).granted == 3
    ask(store, "a", Report(done=3, lost=3), want=0)
    assert store.doc["remaining"] == 0
    ask(store, "a", Report(lost=2, done=0), want=0)  # (more lost than left: still 0)
    assert store.doc["remaining"] == 0
    assert ask(store, "b").kind == "spent"


def test_a_window_without_a_reset_re_probes_after_a_doubling_backoff() -> None:
    store = Store()
    assert ask(store, "a").probe
    ask(store, "a", Report(done=1, remaining=0, exhausted=True), want=0)  # spent, no reset
    assert ask(store, "a").kind == "spent"
    first = store.doc["expires_at"] - store.now
    store.now += first + RESET_MARGIN
    assert ask(store, "a").probe  # re-probed once the backoff passed
    ask(store, "a", Report(done=1, remaining=0, exhausted=True), want=0)  # still spent
    assert ask(store, "a").kind == "spent"
    assert store.doc["expires_at"] - store.now == pytest.approx(2 * first)


def test_a_far_reset_that_lowers_the_count_does_not_hold_the_window_past_its_reset() -> None:
    """A poisoned answer (a reset 30 days out) may lower the count, but the window still
    ends at its own reset: a probe asks then, not 30 days later."""
    store = Store()
    reset = store.now + 3600.0
    ask(store, "a")
    ask(store, "a", reading(100, reset), want=0)
    ask(store, "b", reading(0, store.now + 30 * 86400.0), want=0)
    assert store.doc["remaining"] == 0
    store.now = reset + RESET_MARGIN
    assert ask(store, "a", mode="wait").probe


def test_an_earlier_reset_still_ahead_ends_the_window_then() -> None:
    store = Store()
    reset, earlier = store.now + 3600.0, store.now + 1800.0
    ask(store, "a")
    ask(store, "a", reading(100, reset), want=0)
    ask(store, "b", reading(0, earlier), want=0)  # spent; the window ends at 1800 s
    waited = ask(store, "a", mode="wait")
    assert (waited.kind, waited.until_reset) == ("wait", True)
    assert waited.delay == pytest.approx(earlier + RESET_MARGIN - store.now)
    store.now = earlier + RESET_MARGIN
    assert ask(store, "a", mode="wait").probe


def test_a_window_opened_without_a_reset_learns_it_from_a_later_answer() -> None:
    store = Store()
    reset = store.now + 3600.0
    ask(store, "a")
    ask(store, "a", reading(10, None), want=0)  # (a server that sent no reset date)
    ask(store, "a", reading(0, reset), want=0)  # spent, and now the reset is known
    waited = ask(store, "a", mode="wait", max_wait=7200.0)
    assert (waited.kind, waited.until_reset, waited.resets_at) == ("wait", True, reset)


def test_a_count_equal_to_the_workspace_limit_is_a_reading() -> None:
    store = Store()
    assert ask(store, "a", Report(limit=500)).probe
    ask(store, "a", reading(500, store.now + 3600.0), want=0)  # a fresh window: all of it
    assert store.doc["remaining"] == 500


def test_the_lowest_count_of_a_members_batch_is_taken_with_its_latest() -> None:
    store = Store()
    reset = store.now + 3600.0
    ask(store, "a")
    ask(store, "a", reading(100, reset), want=0)
    # Answers that crossed on the way: the lowest count came first, the latest is higher.
    ask(store, "a", Report(done=2, low_remaining=10, low_reset_at=reset, remaining=50,
                           reset_at=reset), want=0)
    assert store.doc["remaining"] == 10


def test_a_new_members_latest_reading_is_only_for_a_ledger_it_knew_lost() -> None:
    store = Store()
    reset = store.now + 3600.0
    first = ask2(store, "a", reg(0), epoch=None)
    ask2(store, "a", reg(0, remaining=100, reset_at=reset, done=1), epoch=first.epoch, want=0)
    # A newcomer (no epoch known) registers with a reading of its own, older and lower:
    # that is no re-seeding of a lost ledger, and the count stays.
    ask2(store, "b", reg(0, (40, reset)), epoch=None, want=0)
    assert store.doc["remaining"] == 100


def test_a_lease_is_extended_only_under_its_own_generation() -> None:
    store = Store()
    got = acquire(store, "a", lease_ttl=3.0)
    assert store.apply(extend_step("a", 3.0, got.gen)) is True
    assert store.apply(extend_step("a", 3.0, got.gen + 1)) is False


def test_only_the_holder_releases_the_login_lease() -> None:
    store = Store()
    acquire(store, "a")
    store.apply(release_step("b"))  # b never held it
    assert acquire(store, "c").kind == "wait"  # a still logs in


def test_a_spent_window_without_a_reset_backs_off_from_its_last_reading() -> None:
    store = Store()
    ask(store, "a")
    ask(store, "a", reading(100, None), want=0)
    store.now += 500.0
    ask(store, "a", Report(done=1, remaining=0, exhausted=True), want=0)
    assert ask(store, "a").kind == "spent"  # not a probe: the backoff runs from now
    assert store.doc["expires_at"] == pytest.approx(store.now + MIN_BACKOFF)
