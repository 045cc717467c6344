"""What sharers keep in a share, and the pure rules that change it.

A share stores one small JSON document per key; every change is a *step*: a pure function
``(document | None, now) -> (new document | None, result)`` that a backend applies
atomically (SQLite: one ``BEGIN IMMEDIATE`` transaction; Redis: compare-and-set), with
``now`` read from the share's own clock (Redis ``TIME``), never from a sharer's. So the
rules live once, here, and are tested without sockets or sleeps; a backend only stores.

Two documents per integration:

- the **session document** (one per base URL + user + workspace): the session (or OAuth
  token) every sharer sends, its version, the login lease, the members (sharers with a lease
  that expires), and refused credentials;
- the **ledger** (one per workspace): the lowest ``X-Arena-Requests-Remaining`` reading of
  the window, its reset time, and the admissions each member holds and has not yet reported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

import attrs

__all__ = [
    "Acquired",
    "Decision",
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
#: A pure change of one document: ``(document or None, share time) -> (new document, result)``.
Step = Callable[[Doc | None, float], tuple[Doc | None, R]]


# -- the session document ------------------------------------------------------------
@attrs.frozen(slots=True)
class Acquired:
    """What :func:`acquire_step` decided for a sharer that needs a session.

    ``adopt``: a session newer than the one the sharer saw is there (``token``, ``version``,
    ``expires_in`` seconds or None); ``login``: the sharer holds the login lease and must log
    in and publish; ``wait``: another sharer holds the lease (for ``wait`` more seconds at
    most); ``refused``: the credentials were refused recently (``status``, ``code``,
    ``message``), so nobody tries them again before ``wait`` seconds.
    """

    kind: Literal["adopt", "login", "wait", "refused"]
    token: str | None = attrs.field(default=None, repr=False)
    version: int = 0
    expires_in: float | None = None
    wait: float = 0.0
    status: int = 0
    code: int | None = None
    message: str = ""


def _session_doc(doc: Doc | None) -> Doc:
    doc = dict(doc) if doc else {}
    doc.setdefault("session", None)
    doc.setdefault("version", 0)
    doc.setdefault("lease", None)
    doc["members"] = dict(doc.get("members") or {})
    doc.setdefault("refused", None)
    return doc


def _live_members(doc: Doc, now: float) -> dict[str, float]:
    members: dict[str, float] = {m: float(exp) for m, exp in doc["members"].items() if exp > now}
    doc["members"] = members
    return members


def acquire_step(member: str, seen_version: int | None, *, lease_ttl: float,
                 member_ttl: float, margin: float = 0.0) -> Step[Acquired]:
    """A sharer needs a session: adopt one newer than ``seen_version`` (None: any), else take
    the login lease if it is free (or expired, or already this member's), else wait.

    A session that expires within ``margin`` seconds (an OAuth token) is not adopted.
    Joining as a member is part of the step (the member's lease runs ``member_ttl``)."""

    def step(doc: Doc | None, now: float) -> tuple[Doc | None, Acquired]:
        d = _session_doc(doc)
        _live_members(d, now)[member] = now + member_ttl
        refused = d["refused"]
        if refused is not None and refused["until"] > now:
            return d, Acquired("refused", wait=refused["until"] - now, status=refused["status"],
                               code=refused.get("code"), message=refused.get("message", ""))
        d["refused"] = None
        session = d["session"]
        if session is not None and session["version"] != seen_version:
            expires = session.get("expires")
            if expires is None or expires - margin > now:
                return d, Acquired("adopt", token=session["token"], version=session["version"],
                                   expires_in=None if expires is None else expires - now)
        lease = d["lease"]
        if lease is None or lease["exp"] <= now or lease["owner"] == member:
            d["lease"] = {"owner": member, "exp": now + lease_ttl}
            return d, Acquired("login")
        return d, Acquired("wait", wait=lease["exp"] - now)

    return step


def extend_step(member: str, lease_ttl: float) -> Step[bool]:
    """Extend the login lease while its holder is still logging in; False if it lost it."""

    def step(doc: Doc | None, now: float) -> tuple[Doc | None, bool]:
        d = _session_doc(doc)
        lease = d["lease"]
        if lease is None or lease["owner"] != member:
            return doc, False
        lease = dict(lease, exp=now + lease_ttl)
        d["lease"] = lease
        return d, True

    return step


def publish_step(member: str, token: str, expires_in: float | None) -> Step[int]:
    """Publish the session the member just obtained and release its lease; its version."""

    def step(doc: Doc | None, now: float) -> tuple[Doc | None, int]:
        d = _session_doc(doc)
        version = int(d["version"]) + 1
        d["version"] = version
        d["session"] = {"token": token, "version": version,
                        "expires": None if expires_in is None else now + expires_in}
        if d["lease"] is not None and d["lease"]["owner"] == member:
            d["lease"] = None
        d["refused"] = None
        return d, version

    return step


def release_step(member: str, *, refused_for: float = 0.0, status: int = 0,
                 code: int | None = None, message: str = "") -> Step[None]:
    """Give the login lease back without a session (the login failed); with
    ``refused_for`` > 0 the credentials were refused: nobody tries them that long."""

    def step(doc: Doc | None, now: float) -> tuple[Doc | None, None]:
        d = _session_doc(doc)
        if d["lease"] is not None and d["lease"]["owner"] == member:
            d["lease"] = None
        if refused_for > 0:
            d["refused"] = {"until": now + refused_for, "status": status, "code": code,
                            "message": message}
        return d, None

    return step


def heartbeat_step(member: str, member_ttl: float) -> Step[None]:
    """Keep the member's lease alive (a sharer that stops renewing it is gone)."""

    def step(doc: Doc | None, now: float) -> tuple[Doc | None, None]:
        d = _session_doc(doc)
        _live_members(d, now)[member] = now + member_ttl
        return d, None

    return step


def leave_step(member: str) -> Step[str | None]:
    """The member closes. The last member takes the session out of the share and gets its
    token back to log it out (once: the document no longer holds it); others get None."""

    def step(doc: Doc | None, now: float) -> tuple[Doc | None, str | None]:
        if doc is None:
            return None, None
        d = _session_doc(doc)
        members = _live_members(d, now)
        members.pop(member, None)
        session = d["session"]
        lease = d["lease"]
        if members or session is None or (lease is not None and lease["exp"] > now):
            return d, None
        d["session"] = None
        return d, str(session["token"])

    return step


# -- the quota ledger -----------------------------------------------------------------
@attrs.frozen(slots=True)
class Report:
    """What a member's admissions came to since its last report.

    ``done``: admissions that ended (answered, or maybe sent and never answered);
    ``returned``: admissions given back unused (never sent); ``lost``: of ``done``, those
    maybe sent that brought no reading (they count as spent); ``remaining`` / ``reset_at``:
    the lowest reading of the newest window among the answers (None: none); ``exhausted``:
    an answer was a quota 429 in that window.
    """

    done: int = 0
    returned: int = 0
    lost: int = 0
    remaining: int | None = None
    reset_at: float | None = None
    exhausted: bool = False

    @property
    def empty(self) -> bool:
        """True when there is nothing to report."""
        return not (self.done or self.returned or self.lost or self.remaining is not None
                    or self.exhausted)


@attrs.frozen(slots=True)
class Decision:
    """The ledger's answer to a member that wants admissions.

    ``grant``: ``granted`` admissions (``probe``: the one probe of an unknown window);
    ``wait``: ask again in ``delay`` seconds (``until_reset``: the budget is spent and the
    reset is that far; else others' answers or the probe are awaited); ``spent``: the budget
    is spent for this member's reserve and its policy says raise (or the reset is unknown or
    further than ``max_wait``). ``remaining`` / ``resets_at``: the ledger's reading.
    """

    kind: Literal["grant", "wait", "spent"]
    granted: int = 0
    probe: bool = False
    delay: float = 0.0
    until_reset: bool = False
    remaining: int | None = None
    resets_at: float | None = None


#: Seconds past the reset time before a new window is probed (small clock differences).
RESET_MARGIN = 0.05
#: Seconds between asks while others' answers (or the probe's) are awaited.
POLL = 0.05
MIN_BACKOFF = 1.0
MAX_BACKOFF = 60.0


def _ledger_doc(doc: Doc | None) -> Doc:
    d = dict(doc) if doc else {}
    for name in ("remaining", "reset_at", "expires_at", "expired_reset", "probe"):
        d.setdefault(name, None)
    d.setdefault("read_at", 0.0)
    d.setdefault("backoff", MIN_BACKOFF)
    d["members"] = {m: dict(v) for m, v in (d.get("members") or {}).items()}
    return d


def _next_backoff(d: Doc) -> float:
    backoff = float(d["backoff"])
    d["backoff"] = min(MAX_BACKOFF, backoff * 2)
    return backoff


def _adopt(d: Doc, remaining: int, reset_at: float | None, now: float) -> None:
    d["remaining"] = max(0, remaining)
    d["reset_at"] = reset_at
    d["read_at"] = now
    if reset_at is None:
        d["expires_at"] = None
    elif reset_at > now:
        d["expires_at"] = reset_at
        d["backoff"] = MIN_BACKOFF
    else:  # the server's reset time is already past by the share's clock: look again soon
        d["expires_at"] = now + _next_backoff(d)


def _apply_reading(d: Doc, report: Report, now: float) -> None:
    if report.remaining is None and not report.exhausted:
        return
    remaining = 0 if report.exhausted else report.remaining
    assert remaining is not None
    reset_at = report.reset_at
    if d["remaining"] is None:
        expired = d["expired_reset"]
        if reset_at is None or expired is None or reset_at > expired:
            _adopt(d, remaining, reset_at, now)
        return  # else: an answer from the window that ended
    current = d["reset_at"]
    if reset_at is not None and current is not None:
        if reset_at < current:
            return  # an answer from an older window
        if reset_at > current:
            _adopt(d, remaining, reset_at, now)
            return
    if current is None and reset_at is not None and reset_at > now:
        d["reset_at"] = d["expires_at"] = reset_at
    d["remaining"] = max(0, min(int(d["remaining"]), remaining))
    d["read_at"] = now


def ledger_step(member: str, report: Report, *, want: int, reserve: int,
                on_exhausted: Literal["raise", "wait"], max_wait: float,
                member_ttl: float, probe_ttl: float) -> Step[Decision]:
    """Take a member's report into the ledger and, when it ``want``s admissions, decide.

    The estimate is ``remaining - outstanding``: the lowest reading of the window minus every
    admission any live member holds unreported (conservative: an answered admission the
    server already counted is subtracted until its member reports it). Admissions are granted
    while the estimate stays above the member's ``reserve``; so members together never spend
    a reserve, and none sends a request the server would refuse. An unknown window (before
    any reading, or past its reset) admits one probe across all members; the others wait for
    its reading instead of storming the server at the reset.
    """

    def step(doc: Doc | None, now: float) -> tuple[Doc | None, Decision]:
        d = _ledger_doc(doc)
        members = {m: v for m, v in d["members"].items() if v["exp"] > now}
        entry = members.setdefault(member, {"out": 0, "exp": now})
        entry["out"] = max(0, int(entry["out"]) - report.done - report.returned)
        entry["exp"] = now + member_ttl
        d["members"] = members
        probe = d["probe"]
        if probe is not None and (probe["exp"] <= now or probe["owner"] not in members
                                  or (probe["owner"] == member
                                      and (report.done or report.returned))):
            d["probe"] = probe = None
        _apply_reading(d, report, now)
        if report.lost and d["remaining"] is not None:
            d["remaining"] = max(0, int(d["remaining"]) - report.lost)
        # The window passed its reset time: forget it and probe for a fresh reading.
        if d["expires_at"] is not None and now >= d["expires_at"]:
            d["expired_reset"] = d["reset_at"]
            d["remaining"] = d["reset_at"] = d["expires_at"] = None
        remaining = d["remaining"]
        reset_at = d["reset_at"]
        if want <= 0:
            return d, Decision("grant", remaining=remaining, resets_at=reset_at)
        if remaining is None:
            if probe is not None:
                return d, Decision("wait", delay=POLL)
            d["probe"] = {"owner": member, "exp": now + probe_ttl}
            entry["out"] += 1
            return d, Decision("grant", granted=1, probe=True)
        outstanding = sum(int(v["out"]) for v in members.values())
        budget = int(remaining) - reserve
        available = budget - outstanding
        if available > 0:
            granted = min(want, available)
            entry["out"] += granted
            return d, Decision("grant", granted=granted, remaining=remaining,
                               resets_at=reset_at)
        if budget > 0:  # answers in flight will tell
            return d, Decision("wait", delay=POLL, remaining=remaining, resets_at=reset_at)
        if d["expires_at"] is None:
            # Spent, and the server never said when it resets: re-probe after a backoff.
            d["expires_at"] = float(d["read_at"]) + _next_backoff(d)
        wake = float(d["expires_at"]) + RESET_MARGIN
        if on_exhausted == "raise" or reset_at is None or wake - now > max_wait:
            return d, Decision("spent", remaining=remaining, resets_at=reset_at)
        return d, Decision("wait", delay=wake - now, until_reset=True, remaining=remaining,
                           resets_at=reset_at)

    return step
