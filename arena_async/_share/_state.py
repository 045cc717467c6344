"""What sharers keep in a share, and the pure rules that change it.

A share stores one small JSON document per key; every change is a *step*: a pure function
``(document | None, now) -> (new document | None, result)`` that a backend applies
atomically (SQLite: one ``BEGIN IMMEDIATE`` transaction; Redis: compare-and-set), with
``now`` read from the share's own clocks (:class:`Now`: Redis ``TIME``; on one host, the
wall clock for quota windows and the boot clock every process shares for leases), never
from one sharer's. So the rules live once, here, and are tested without sockets or sleeps;
a backend only stores.

Two documents per integration:

- the **session document** (one per base URL + user + workspace): the session (or OAuth
  token) every sharer sends, its version, the login lease and its generation (the fencing
  token a publisher must still hold), the members (sharers with a lease that expires), and
  refused credentials;
- the **ledger** (one per workspace): the lowest ``X-Arena-Requests-Remaining`` reading of
  the window, its reset time, and the admissions each member holds and has not yet reported.

The store is fallible: a document can vanish (a Redis restart or ``FLUSHALL``, a SQLite file
replaced). Each document has an ``epoch`` (named when it is made); a sharer that talked to
an earlier epoch *re-registers* what it holds (its membership and session, its outstanding
admissions, its newest reading), and the first such sharer opens a short **recovery**
(``settle`` seconds, two sync intervals: every live sharer re-registers within one) during
which the ledger grants nothing and nobody decides it is the last sharer. Readings are
evidence, not gospel (:func:`ledger_step`).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import attrs

__all__ = [
    "Acquired",
    "Decision",
    "Held",
    "Left",
    "Now",
    "Published",
    "Report",
    "Step",
    "acquire_step",
    "extend_step",
    "heartbeat_step",
    "leave_step",
    "ledger_step",
    "publish_step",
    "release_step",
]

Doc = dict[str, Any]
R = TypeVar("R")


@attrs.frozen(slots=True)
class Now:
    """The share's time for one step: ``wall`` (epoch seconds: quota windows, whose reset
    times are the server's wall-clock dates) and ``tick`` (seconds on a clock no sharer's
    wall-clock step moves: leases, memberships, probes, recovery). Redis gives both from
    its ``TIME``; a SQLite share reads its host's boot clock for ``tick``.

    Example: ``Now(1_700_000_000.0, 1_700_000_000.0)``."""

    wall: float
    tick: float


#: A pure change of one document: ``(document or None, share time) -> (new document, result)``.
Step = Callable[[Doc | None, Now], tuple[Doc | None, R]]


def _new_epoch(member: str, now: Now) -> str:
    """A new name for a document made now by ``member`` (never one it had before)."""
    return f"{member}@{now.tick:.3f}/{secrets.token_hex(4)}"


def _note_loss(d: Doc, epoch: str | None, now: Now, settle: float) -> None:
    """A sharer that knew an earlier epoch: the document was lost and made again. The first
    such sharer opens the recovery (once per epoch)."""
    if epoch is not None and epoch != d["epoch"] and d.get("recover_until") is None \
            and settle > 0:
        d["recover_until"] = now.tick + settle


def _recovering(d: Doc, now: Now) -> float:
    """Seconds of recovery left (0: none)."""
    until = d.get("recover_until")
    return max(0.0, float(until) - now.tick) if until is not None else 0.0


# -- the session document ------------------------------------------------------------
@attrs.frozen(slots=True)
class Acquired:
    """What :func:`acquire_step` decided for a sharer that needs a session.

    ``adopt``: a session newer than the one the sharer saw is there (``token``, ``version``,
    ``expires_in`` seconds or None, ``gen``); ``login``: the sharer holds the login lease
    (generation ``gen``, its fencing token) and must log in and publish with it; ``wait``:
    another sharer holds the lease (for ``wait`` more seconds at most); ``refused``: the
    credentials were refused recently (``status``, ``code``, ``message``), so nobody tries
    them again before ``wait`` seconds. ``epoch``: the document's.
    """

    kind: Literal["adopt", "login", "wait", "refused"]
    token: str | None = attrs.field(default=None, repr=False)
    version: int = 0
    expires_in: float | None = None
    wait: float = 0.0
    status: int = 0
    code: int | None = None
    message: str = ""
    gen: int = 0
    epoch: str | None = None


@attrs.frozen(slots=True)
class Published:
    """What :func:`publish_step` did: ``published`` (``version``), or ``fenced``: the lease
    generation the publisher logged in under is no longer the newest (it was stopped past
    its lease and another sharer took over), so its session was not published."""

    kind: Literal["published", "fenced"]
    version: int = 0


@attrs.frozen(slots=True)
class Held:
    """The session a sharer holds, re-registered when the share lost its document:
    ``token``, ``version``, ``gen`` (its lease generation), ``expires_in`` seconds or None.
    """

    token: str = attrs.field(repr=False)
    version: int
    gen: int = 0
    expires_in: float | None = None


@attrs.frozen(slots=True)
class Left:
    """What :func:`leave_step` decided: ``logout`` (this was the last sharer: ``token`` to
    log out, taken out of the share), ``stay`` (others still use the session, or there is
    none), or ``wait`` ``delay`` seconds and leave again (the share is recovering from a
    loss: not every sharer has re-registered yet, so nobody is provably the last)."""

    kind: Literal["logout", "stay", "wait"]
    token: str | None = attrs.field(default=None, repr=False)
    delay: float = 0.0


def _session_doc(doc: Doc | None, member: str, now: Now) -> Doc:
    d: Doc = dict(doc) if doc else {"epoch": _new_epoch(member, now)}
    d.setdefault("epoch", _new_epoch(member, now))
    d.setdefault("session", None)
    d.setdefault("version", 0)
    d.setdefault("gen", 0)
    d.setdefault("lease", None)
    d["members"] = dict(d.get("members") or {})
    d.setdefault("refused", None)
    d.setdefault("ended", None)
    d.setdefault("recover_until", None)
    return d


def _live_members(doc: Doc, now: Now) -> dict[str, float]:
    members: dict[str, float] = {m: float(exp) for m, exp in doc["members"].items()
                                 if exp > now.tick}
    doc["members"] = members
    return members


def _reregister(d: Doc, held: Held | None, now: Now) -> None:
    """Put back the session a sharer holds when the share has none as new (lost), unless
    it was logged out; keep the version and generation counters above it."""
    if held is None:
        return
    d["version"] = max(int(d["version"]), held.version)
    d["gen"] = max(int(d["gen"]), held.gen)
    ended = d["ended"]
    if ended is not None and held.version <= ended:
        return
    session = d["session"]
    if session is None or int(session["version"]) < held.version:
        d["session"] = {"token": held.token, "version": held.version, "gen": held.gen,
                        "expires": None if held.expires_in is None
                        else now.tick + held.expires_in}


def acquire_step(member: str, seen_version: int | None, *, lease_ttl: float,
                 member_ttl: float, margin: float = 0.0, epoch: str | None = None,
                 settle: float = 0.0, seen_token: str | None = None) -> Step[Acquired]:
    """A sharer needs a session: adopt one newer than ``seen_version`` (None: any), else take
    the login lease if it is free (or expired, or already this member's), else wait.

    ``seen_token``: the session of ``seen_version`` as the share held it, when known. A
    session of that version with another token is not the one seen (the store was made
    again since, its versions counted anew): it is adopted.

    A session that expires within ``margin`` seconds (an OAuth token) is not adopted.
    Joining as a member is part of the step (the member's lease runs ``member_ttl``).
    Each lease taken has a new generation: the fencing token :func:`publish_step` checks."""

    def step(doc: Doc | None, now: Now) -> tuple[Doc | None, Acquired]:
        d = _session_doc(doc, member, now)
        _note_loss(d, epoch, now, settle)
        tick = now.tick
        _live_members(d, now)[member] = tick + member_ttl
        refused = d["refused"]
        if refused is not None and refused["until"] > tick:
            return d, Acquired("refused", wait=refused["until"] - tick,
                               status=refused["status"], code=refused.get("code"),
                               message=refused.get("message", ""), epoch=d["epoch"])
        d["refused"] = None
        session = d["session"]
        if session is not None and (session["version"] != seen_version or (
                seen_token is not None and session["token"] != seen_token)):
            expires = session.get("expires")
            if expires is None or expires - margin > tick:
                return d, Acquired("adopt", token=session["token"], version=session["version"],
                                   expires_in=None if expires is None else expires - tick,
                                   gen=int(session.get("gen", 0)), epoch=d["epoch"])
        lease = d["lease"]
        if lease is None or lease["exp"] <= tick or lease["owner"] == member:
            gen = int(d["gen"]) + 1
            d["gen"] = gen
            d["lease"] = {"owner": member, "exp": tick + lease_ttl, "gen": gen}
            return d, Acquired("login", gen=gen, epoch=d["epoch"])
        return d, Acquired("wait", wait=lease["exp"] - tick, epoch=d["epoch"])

    return step


def extend_step(member: str, lease_ttl: float, gen: int | None = None) -> Step[bool]:
    """Extend the login lease while its holder is still logging in; False if it lost it
    (another sharer took it: a newer generation)."""

    def step(doc: Doc | None, now: Now) -> tuple[Doc | None, bool]:
        if doc is None:
            return None, False
        d = _session_doc(doc, member, now)
        lease = d["lease"]
        if lease is None or lease["owner"] != member or (
                gen is not None and lease.get("gen", 0) != gen):
            return doc, False
        d["lease"] = dict(lease, exp=now.tick + lease_ttl)
        return d, True

    return step


def publish_step(member: str, token: str, expires_in: float | None, *,
                 gen: int) -> Step[Published]:
    """Publish the session the member obtained under the lease of generation ``gen`` and
    release that lease; ``fenced`` (nothing published) when another sharer has taken the
    lease since (a newer generation) or published a session from a newer one: a holder
    stopped past its lease cannot overwrite the newer session with the one it got."""

    def step(doc: Doc | None, now: Now) -> tuple[Doc | None, Published]:
        d = _session_doc(doc, member, now)
        session = d["session"]
        lease = d["lease"]
        if session is not None and int(session.get("gen", 0)) == gen and gen \
                and session["token"] == token:
            return doc, Published("published", int(session["version"]))  # (a retried step)
        if lease is not None:
            if int(lease.get("gen", 0)) != gen:
                return doc, Published("fenced")
        elif session is not None and int(session.get("gen", 0)) > gen:
            return doc, Published("fenced")
        version = int(d["version"]) + 1
        d["version"] = version
        d["gen"] = max(int(d["gen"]), gen)
        d["session"] = {"token": token, "version": version, "gen": gen,
                        "expires": None if expires_in is None else now.tick + expires_in}
        d["lease"] = None
        d["refused"] = None
        return d, Published("published", version)

    return step


def release_step(member: str, *, refused_for: float = 0.0, status: int = 0,
                 code: int | None = None, message: str = "") -> Step[None]:
    """Give the login lease back without a session (the login failed); with
    ``refused_for`` > 0 the credentials were refused: nobody tries them that long."""

    def step(doc: Doc | None, now: Now) -> tuple[Doc | None, None]:
        d = _session_doc(doc, member, now)
        if d["lease"] is not None and d["lease"]["owner"] == member:
            d["lease"] = None
        if refused_for > 0:
            d["refused"] = {"until": now.tick + refused_for, "status": status, "code": code,
                            "message": message}
        return d, None

    return step


def heartbeat_step(member: str, member_ttl: float, *, epoch: str | None = None,
                   settle: float = 0.0, held: Held | None = None) -> Step[str]:
    """Keep the member's lease alive (a sharer that stops renewing it is gone), and put
    back the session it holds if the share lost it. Returns the document's epoch."""

    def step(doc: Doc | None, now: Now) -> tuple[Doc | None, str]:
        d = _session_doc(doc, member, now)
        _note_loss(d, epoch, now, settle)
        _live_members(d, now)[member] = now.tick + member_ttl
        _reregister(d, held, now)
        return d, str(d["epoch"])

    return step


def leave_step(member: str, *, epoch: str | None = None, settle: float = 0.0,
               held: Held | None = None, member_ttl: float = 15.0) -> Step[Left]:
    """The member closes. The last member takes the session out of the share and gets its
    token back to log it out (once: the document no longer holds it, and a sharer that
    re-registers that session later is refused); others ``stay``. While the share recovers
    from a loss, the member ``wait``s (and stays a member) until every live sharer has had
    the time to re-register: only then is "the last" provable."""

    def step(doc: Doc | None, now: Now) -> tuple[Doc | None, Left]:
        if doc is None and epoch is None:
            return None, Left("stay")
        d = _session_doc(doc, member, now)
        _note_loss(d, epoch, now, settle)
        _reregister(d, held, now)
        members = _live_members(d, now)
        wait = _recovering(d, now)
        if wait > 0:
            members[member] = now.tick + max(member_ttl, wait + 1.0)
            return d, Left("wait", delay=wait)
        members.pop(member, None)
        session = d["session"]
        lease = d["lease"]
        if members or session is None or (lease is not None and lease["exp"] > now.tick):
            return d, Left("stay")
        d["session"] = None
        d["ended"] = max(int(d["ended"] or 0), int(session["version"]))
        return d, Left("logout", token=str(session["token"]))

    return step


# -- the quota ledger -----------------------------------------------------------------
@attrs.frozen(slots=True)
class Report:
    """What a member's admissions came to since its last report, and what it holds.

    ``done``: admissions that ended (answered, or maybe sent and never answered);
    ``returned``: admissions given back unused (never sent); ``lost``: of ``done``, those
    maybe sent that brought no reading (they count as spent); ``remaining`` / ``reset_at``:
    the lowest reading of the newest window among the answers (None: none); ``exhausted``:
    an answer was a quota 429 in that window; ``low_remaining`` / ``low_reset_at``: the
    lowest count among the answers, whatever its reset (a reset that jitters between
    answers must not hide it).

    Registration (what the member holds, whatever the ledger remembers): ``held``: the
    admissions it holds once this report is taken in (None: count down from the ledger's
    own entry); ``latest_remaining`` / ``latest_reset_at``: the newest genuine reading it
    has seen, and ``latest_lost`` the admissions lost since (to re-seed a ledger that lost
    its state); ``limit``: the workspace's request limit, when known (login's
    ``workspaceRequestLimit``); ``leaving``: the member closes (its entry and any probe it
    holds go at once, instead of blocking the others until they expire); ``concurrency``:
    the most admissions it can have taken and not ended at once (its ``max_concurrency``):
    what stays counted if its entry expires while it is paused.
    """

    done: int = 0
    returned: int = 0
    lost: int = 0
    remaining: int | None = None
    reset_at: float | None = None
    exhausted: bool = False
    low_remaining: int | None = None
    low_reset_at: float | None = None
    held: int | None = None
    latest_remaining: int | None = None
    latest_reset_at: float | None = None
    latest_lost: int = 0
    limit: int | None = None
    leaving: bool = False
    concurrency: int | None = None

    @property
    def empty(self) -> bool:
        """True when there is nothing to report."""
        return not (self.done or self.returned or self.lost or self.remaining is not None
                    or self.exhausted or self.leaving)


@attrs.frozen(slots=True)
class Decision:
    """The ledger's answer to a member that wants admissions.

    ``grant``: ``granted`` admissions (``probe``: the one probe of an unknown window);
    ``wait``: ask again in ``delay`` seconds (``until_reset``: the budget is spent and the
    reset is that far; else others' answers, the probe, or the end of a recovery are
    awaited); ``spent``: the budget is spent for this member's reserve and its policy says
    raise (or the reset is unknown or further than ``max_wait``). ``remaining`` /
    ``resets_at``: the ledger's reading; ``epoch``: the ledger document's; ``limit``: the
    workspace's request limit a member learned at login (so members that adopted the
    session, and never logged in, know it too).
    """

    kind: Literal["grant", "wait", "spent"]
    granted: int = 0
    probe: bool = False
    delay: float = 0.0
    until_reset: bool = False
    remaining: int | None = None
    resets_at: float | None = None
    epoch: str | None = None
    limit: int | None = None


#: Seconds past the reset time before a new window is probed (small clock differences).
RESET_MARGIN = 0.05
#: Seconds between asks while others' answers (or the probe's) are awaited.
POLL = 0.05
MIN_BACKOFF = 1.0
MAX_BACKOFF = 60.0
#: A window lasts 24 hours (from midnight Pacific time); a reset announced further ahead
#: than that plus this slack (a 25-hour day at a daylight-saving change, clock skew) is
#: not evidence of a window.
DAY = 86400.0
RESET_SLACK = 2 * 3600.0


def _ledger_doc(doc: Doc | None, member: str, now: Now) -> Doc:
    d: Doc = dict(doc) if doc else {"epoch": _new_epoch(member, now)}
    d.setdefault("epoch", _new_epoch(member, now))
    for name in ("remaining", "reset_at", "expires_at", "expired_reset", "probe", "limit",
                 "recover_until", "low_reset"):
        d.setdefault(name, None)
    d.setdefault("read_at", 0.0)
    d.setdefault("backoff", MIN_BACKOFF)
    d["members"] = {m: dict(v) for m, v in (d.get("members") or {}).items()}
    d["graces"] = dict(d.get("graces") or {})  # expired members: admissions kept counted
    d["carried"] = dict(d.get("carried") or {})  # ... and from the window before
    return d


def _next_backoff(d: Doc) -> float:
    backoff = float(d["backoff"])
    d["backoff"] = min(MAX_BACKOFF, backoff * 2)
    return backoff


def _adopt(d: Doc, remaining: int, reset_at: float | None, wall: float) -> None:
    # A window of its own. What expired members could still send stays counted one window
    # more (one paused across the reset sends it in this one), then goes (one that died
    # never sends it).
    d["carried"] = dict(d["graces"])
    d["graces"].clear()
    d["remaining"] = max(0, remaining)
    d["reset_at"] = reset_at
    d["low_reset"] = None
    d["read_at"] = wall
    if reset_at is None:
        d["expires_at"] = None
    elif reset_at > wall:
        d["expires_at"] = reset_at
        d["backoff"] = MIN_BACKOFF
    else:  # the server's reset time is already past by the share's clock: look again soon
        d["expires_at"] = wall + _next_backoff(d)


def _apply_reading(d: Doc, remaining: int | None, reset_at: float | None, exhausted: bool,
                   wall: float, *, fresh: bool = False) -> None:
    """Take in one reading, as evidence (PROTOCOL.md, "Quota"):

    - a count above the workspace's limit (when known) is no reading at all;
    - a reset further ahead than a day plus :data:`RESET_SLACK` is no reset: such a reading
      may lower the current window's count, never open a window;
    - a new window opens only when the current one is over by the share's clock: a later
      reset before then (jitter of a few seconds between answers, or a server whose clock
      runs ahead) is the same window, so only the lowest count counts;
    - a reading with an earlier reset is from an older window only when that reset is
      past; before then it is the same window too, which then ends at the earlier reset;
    - after the window expired by the share's clock, a reading of the window that ended
      is ignored, unless it is the probe's (``fresh``: sent after the expiry, so the
      server says that window still runs: the share's clock is ahead of the server's);
    - when the window's lowest count came with a later reset (``low_reset``), that count
      holds until the later reset: the server may have rolled its window before the reset
      it announced (a reset rounded up to whole seconds, a clock ahead of the share's),
      and the count is then the new window's, so the window does not end at the earlier
      reset (a probe of a window already spent would be refused).
    """
    if remaining is None and not exhausted:
        return
    count = 0 if exhausted or remaining is None else remaining
    limit = d["limit"]
    if limit is not None and count > int(limit):
        return
    opens = True
    if reset_at is not None and reset_at > wall + DAY + RESET_SLACK:
        reset_at, opens = None, False
    if d["remaining"] is None:
        if not opens:
            return
        expired = d["expired_reset"]
        if reset_at is None or expired is None or reset_at > expired or fresh:
            _adopt(d, count, reset_at, wall)
        return  # else: an answer from the window that ended
    current = d["reset_at"]
    later: float | None = None  # a later reset, taken as the same window
    if reset_at is not None and current is not None and reset_at != current:
        if reset_at > current:
            if wall >= current:
                _adopt(d, count, reset_at, wall)
                return
            later = reset_at
        elif reset_at <= wall:
            return  # an answer from an older window
        else:  # an earlier reset, still ahead: the same window, ending by then
            if d["expires_at"] == current:
                d["expires_at"] = reset_at
            d["reset_at"] = current = reset_at
        reset_at = current  # the same window
    if current is None and reset_at is not None and reset_at > wall:
        d["reset_at"] = d["expires_at"] = reset_at
    low = int(d["remaining"])
    if later is not None and count <= low:
        d["low_reset"] = max(later, d["low_reset"] or later)
    elif count < low:
        d["low_reset"] = None  # the lowest count is the current window's own again
    d["remaining"] = max(0, min(low, count))
    d["read_at"] = wall


def ledger_step(member: str, report: Report, *, want: int, reserve: int,
                on_exhausted: Literal["raise", "wait"], max_wait: float,
                member_ttl: float, probe_ttl: float, epoch: str | None = None,
                settle: float = 0.0) -> Step[Decision]:
    """Take a member's report into the ledger and, when it ``want``s admissions, decide.

    The estimate is ``remaining - outstanding``: the lowest reading of the window minus every
    admission any live member holds unreported (conservative: an answered admission the
    server already counted is subtracted until its member reports it), and those a member
    whose entry expired could still send (at most its ``concurrency``), until it comes back
    or the window after the one it expired in ends. Admissions are granted while the
    estimate stays above the member's ``reserve``; so members together never spend a
    reserve, and none sends a request the server would refuse. An unknown window (before
    any reading, or past its reset) admits one probe across all members; the others wait
    for its reading instead of storming the server at the reset.

    A member whose ``epoch`` is not the document's talked to a ledger that was lost: it
    re-registers (its ``held`` admissions, its newest reading less what it lost since), and
    the first such member starts a recovery of ``settle`` seconds during which nothing is
    granted, not even a probe: the other live members re-register meanwhile, and the ledger
    re-seeds from the newest genuine reading any of them holds. Readings are evidence only
    as :func:`_apply_reading` says.
    """

    def step(doc: Doc | None, now: Now) -> tuple[Doc | None, Decision]:
        wall, tick = now.wall, now.tick
        d = _ledger_doc(doc, member, now)
        if report.limit is not None:
            d["limit"] = report.limit
        rejoined = epoch is not None and epoch != d["epoch"]
        _note_loss(d, epoch, now, settle)
        members: dict[str, Any] = {}
        graces = d["graces"]  # (the document's own dict: changes here are written)
        for m, v in d["members"].items():
            if v["exp"] > tick:
                members[m] = v
            elif int(v["out"]) > 0:
                # Expired holding admissions. It may only be paused (SIGSTOP, a suspended
                # VM) with requests taken and not yet written, which it sends when it
                # resumes: no check closes the gap between the last check and the write.
                # Its unspent batch is void when it resumes (it asks again), but as many as
                # it can have in flight stay counted until it comes back, in this window and
                # the next (a process paused across the reset sends them in the new one).
                cap = v.get("cap")
                kept = int(v["out"]) if cap is None else min(int(v["out"]), int(cap))
                graces[m] = int(graces.get(m, 0)) + kept
        entry = members.setdefault(member, {"out": 0, "exp": tick})
        if report.concurrency is not None:
            entry["cap"] = report.concurrency
        if report.held is not None:
            entry["out"] = max(0, report.held)
            graces.pop(member, None)  # back: what it holds is known again
            d["carried"].pop(member, None)
        else:
            entry["out"] = max(0, int(entry["out"]) - report.done - report.returned)
        entry["exp"] = tick + member_ttl
        d["members"] = members
        probe = d["probe"]
        # A probe that was answered, given back or lost (no answer: no reading) no longer
        # holds the window: another member probes at once rather than after probe_ttl.
        probe_done = probe is not None and probe["owner"] == member and bool(
            report.done or report.returned or report.lost or report.leaving)
        if probe is not None and (probe["exp"] <= tick or probe["owner"] not in members
                                  or probe_done):
            d["probe"] = probe = None
        if report.low_remaining is not None:
            _apply_reading(d, report.low_remaining, report.low_reset_at, False, wall)
        _apply_reading(d, report.remaining, report.reset_at, report.exhausted, wall,
                       fresh=probe_done)
        if report.lost and d["remaining"] is not None:
            d["remaining"] = max(0, int(d["remaining"]) - report.lost)
        if rejoined and report.latest_remaining is not None:
            _apply_reading(d, report.latest_remaining, report.latest_reset_at, False, wall)
            if d["remaining"] is not None:
                d["remaining"] = max(0, int(d["remaining"]) - report.latest_lost)
        # The window passed its reset time: forget it and probe for a fresh reading, unless
        # its lowest count came with a later reset, still ahead: that count holds till then.
        if d["expires_at"] is not None and wall >= d["expires_at"]:
            low_reset = d["low_reset"]
            if low_reset is not None and low_reset > wall:
                d["reset_at"] = d["expires_at"] = low_reset
            else:
                d["expired_reset"] = d["reset_at"]
                d["remaining"] = d["reset_at"] = d["expires_at"] = None
            d["low_reset"] = None
        remaining = d["remaining"]
        reset_at = d["reset_at"]
        ep = str(d["epoch"])
        limit = d["limit"]
        if report.leaving:
            members.pop(member, None)
        if want <= 0:
            return d, Decision("grant", remaining=remaining, resets_at=reset_at, epoch=ep,
                               limit=limit)
        recovering = _recovering(d, now)
        if recovering > 0:
            return d, Decision("wait", delay=min(recovering, 4 * POLL), remaining=remaining,
                               resets_at=reset_at, epoch=ep, limit=limit)
        if remaining is None:
            if probe is not None:
                return d, Decision("wait", delay=POLL, epoch=ep, limit=limit)
            d["probe"] = {"owner": member, "exp": tick + probe_ttl}
            entry["out"] += 1
            return d, Decision("grant", granted=1, probe=True, epoch=ep, limit=limit)
        kept = sum(int(n) for n in graces.values()) + sum(
            int(n) for n in d["carried"].values())
        outstanding = sum(int(v["out"]) for v in members.values()) + kept
        budget = int(remaining) - reserve
        available = budget - outstanding
        if available > 0:
            granted = min(want, available)
            entry["out"] += granted
            return d, Decision("grant", granted=granted, remaining=remaining,
                               resets_at=reset_at, epoch=ep, limit=limit)
        if budget - kept > 0:  # answers in flight will tell
            # (What expired members keep is not in flight here: it ends with the windows.)
            return d, Decision("wait", delay=POLL, remaining=remaining, resets_at=reset_at,
                               epoch=ep, limit=limit)
        if d["expires_at"] is None:
            # Spent, and the server never said when it resets: re-probe after a backoff.
            d["expires_at"] = float(d["read_at"]) + _next_backoff(d)
        wake = float(d["expires_at"]) + RESET_MARGIN
        if on_exhausted == "raise" or reset_at is None or wake - wall > max_wait:
            return d, Decision("spent", remaining=remaining, resets_at=reset_at, epoch=ep,
                               limit=limit)
        return d, Decision("wait", delay=wake - wall, until_reset=True, remaining=remaining,
                           resets_at=reset_at, epoch=ep, limit=limit)

    return step
