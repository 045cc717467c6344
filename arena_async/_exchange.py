"""The exchange as a pure state machine: what to do after each event of one request.

An :class:`Exchange` owns the attempt count, the re-logins, the quota waits, the
Retry-After holds and the trail of what each attempt met. The pool (a driver) makes the
attempts and reports each outcome: :meth:`Exchange.on_answer`, :meth:`Exchange.on_failure`,
:meth:`Exchange.on_login_failure`; each returns one :class:`Action` (return, retry after a
wait or at once, log in again, raise), possibly with a hold of every task until a time.
Nothing here sends, sleeps or reads a clock: ``now`` is handed in. The rules:

- a request is attempted at most ``max_attempts`` times; the first replay after a
  re-login is free (not an attempt); a further 401 costs one;
- a login that fails for a transient reason (connection, timeout, a transient status:
  :func:`~arena_async._protocol.is_transient_status`) costs an attempt and a backoff; any
  other login failure is raised;
- a POST is retried only when it never left (connect failed) or ``retry_post``;
- a quota 429 is raised, or (``QuotaPolicy("wait")``) tried again up to ``quota_waits``
  times, the limiter holding admissions until the reset (the replay is not an attempt);
- a Retry-After on 429/503 within ``max_backoff`` holds every task; beyond it, the error
  is raised at once;
- no wait starts that the deadline would cut.
"""

from __future__ import annotations

import enum
import random
from typing import Any, TypeVar

from ._protocol import Request, Verdict, VerdictKind, is_transient_status, with_attempts
from ._retry import backoff_delay, is_retryable_exception, may_retry, was_sent
from .errors import (
    APIError,
    ArenaAsyncError,
    QuotaExhaustedError,
    ShareUnavailableError,
    TransportError,
    brief_failure,
    failure_error,
    is_permanent_failure,
)
from .policies import RetryPolicy

__all__ = ["Action", "ActionKind", "Exchange", "Trail"]

_E = TypeVar("_E", bound=BaseException)


class ActionKind(enum.Enum):
    """What the driver does next."""

    RETURN = "return"  # the answer is the result
    RETRY = "retry"  # attempt again, after ``delay`` seconds when not None
    RELOGIN = "relogin"  # replace the session (``error`` is the 401), then attempt again
    RAISE = "raise"  # raise ``error`` from ``cause``


class Action:
    """One decision of an :class:`Exchange`.

    Example: ``Action(ActionKind.RETRY, delay=0.5)`` (wait half a second, then attempt
    again); ``hold_until`` (epoch seconds), when set, holds every task's admission.
    """

    __slots__ = ("cause", "delay", "error", "hold_until", "kind")

    def __init__(self, kind: ActionKind, *, delay: float | None = None,
                 error: BaseException | None = None, cause: BaseException | None = None,
                 hold_until: float | None = None) -> None:
        self.kind = kind
        self.delay = delay
        self.error = error
        self.cause = cause
        self.hold_until = hold_until

    def __repr__(self) -> str:
        return (f"Action({self.kind.name}, delay={self.delay!r}, "
                f"error={type(self.error).__name__ if self.error else None}, "
                f"hold_until={self.hold_until!r})")


_RETURN = Action(ActionKind.RETURN)
_AGAIN = Action(ActionKind.RETRY)


class Exchange:
    """The state of one request's exchange; see the module docstring for its rules.

    Example (a 503, then a 200; ``verdict`` from :func:`~arena_async._protocol.classify`)::

        ex = Exchange(request, RetryPolicy(), rng=random.Random(1))
        ex.start()                                   # attempt 1
        action = ex.on_answer(503, verdict, now=0.0)  # RETRY with a backoff delay
        ex.start()                                   # attempt 2
        ex.on_answer(200, OK, now=1.0).kind          # ActionKind.RETURN; ex.attempt == 2
    """

    __slots__ = ("_quota_waits", "_reauths", "_replay", "attempt", "deadline_at",
                 "policy", "quota_waits", "request", "rng", "trail")

    def __init__(self, request: Request, policy: RetryPolicy, *, rng: random.Random,
                 deadline_at: float | None = None, quota_waits: int = 0) -> None:
        self.request = request
        self.policy = policy
        self.rng = rng
        self.deadline_at = deadline_at
        #: Replays after a quota 429 allowed (0 unless the quota policy waits).
        self.quota_waits = quota_waits
        self.attempt = 0
        self.trail = Trail()
        self._reauths = 0
        self._quota_waits = 0
        self._replay = False

    # -- the attempt under way -----------------------------------------------------------
    def start(self) -> int:
        """An attempt begins (its login, admission, send): its number. A replay (after
        the first re-login or a quota wait) keeps the number of the attempt it replays."""
        if self._replay:
            self._replay = False
        else:
            self.attempt += 1
        return self.attempt

    def phase(self, words: str) -> None:
        """What the exchange is doing now, for a message if the deadline cuts it."""
        self.trail.phase = words

    def sending(self) -> None:
        """The attempt is on the wire."""
        self.trail.sending(self.attempt)

    def time_left(self, now: float) -> float | None:
        """Seconds until the deadline (None: no deadline)."""
        return None if self.deadline_at is None else self.deadline_at - now

    # -- events --------------------------------------------------------------------------
    def on_answer(self, status: int, verdict: Verdict, now: float) -> Action:
        """The server answered ``status``, meaning ``verdict``."""
        kind = verdict.kind
        if kind is VerdictKind.OK:
            return _RETURN
        error = verdict.error
        assert error is not None
        attempt = self.attempt
        policy = self.policy
        self.trail.failed(attempt, error)
        if kind is VerdictKind.REAUTH:
            # The first re-login of a request is free: its replay is not a retry. A later
            # 401 (the new session expired too, or the server refuses every session) costs
            # an attempt, so re-logins stay bounded by max_attempts.
            if self._reauths and attempt >= policy.max_attempts:
                return self._fail(with_attempts(error, attempt))
            self.trail.phase = "logging in again"
            return Action(ActionKind.RELOGIN, error=error)
        if kind is VerdictKind.QUOTA:
            if self._quota_waits < self.quota_waits:
                self._quota_waits += 1  # the limiter now holds requests until the reset
                self._replay = True
                return _AGAIN
            return Action(ActionKind.RAISE, error=error)
        hold = None
        retry_after = verdict.retry_after
        if kind is VerdictKind.RETRY and retry_after is not None and status in (429, 503) \
                and retry_after <= policy.max_backoff:
            # The server asked this client to slow down: every task waits, not just this.
            hold = now + retry_after
        if kind is VerdictKind.RETRY and attempt < policy.max_attempts \
                and may_retry(policy, self.request, sent=True):
            if retry_after is not None and retry_after > policy.max_backoff:
                return self._fail(with_attempts(error, attempt))
            action = self._backoff(error, retry_after, now)
        else:
            action = self._fail(with_attempts(error, attempt))
        action.hold_until = hold
        return action

    def on_relogin(self) -> None:
        """The re-login asked for by a :attr:`ActionKind.RELOGIN` succeeded."""
        self._reauths += 1
        if self._reauths == 1:
            self._replay = True

    def on_failure(self, exc: BaseException, now: float) -> Action:
        """The attempt got no answer: ``exc`` (connection, timeout, body cut short...)."""
        attempt = self.attempt
        self.trail.failed(attempt, exc)
        if (is_retryable_exception(exc) and attempt < self.policy.max_attempts
                and may_retry(self.policy, self.request, sent=was_sent(exc))):
            return self._backoff(exc, None, now)
        request = self.request
        return self._fail(failure_error("request", exc, method=request.method,
                                        url=request.display, attempts=attempt), cause=exc)

    def on_login_failure(self, exc: ArenaAsyncError, now: float) -> Action:
        """Logging in (first or again) failed with ``exc``. Login spends no quota and
        replaces the session, so trying it again is safe; the failed try costs an
        attempt, and is tried again only when transient."""
        attempt = self.attempt
        # A share that fails has already waited out its outage (its own outage_wait), or
        # can never work (ShareMisconfiguredError): not tried again here.
        transient = (isinstance(exc, TransportError) and not is_permanent_failure(exc)
                     and not isinstance(exc, ShareUnavailableError)) or (
            isinstance(exc, APIError)
            and is_transient_status(exc.status, self.policy.retry_statuses))
        self.trail.failed(attempt, exc, login=True)
        if not transient or attempt >= self.policy.max_attempts:
            # The login's own error, re-stated with the attempts this request made.
            return self._fail(_restated(exc, attempt))
        return self._backoff(exc, None, now)

    def out_of_time(self, message: str) -> Action:
        """The deadline passed (``message`` says when): between attempts, what the last
        attempt met when that was an answer from the server; else a TransportError."""
        trail = self.trail
        last = trail.last
        if not trail.in_flight:
            if isinstance(last, QuotaExhaustedError):  # QuotaPolicy "wait" was waiting
                last.add_note(f"{message} (waiting for the quota to reset)")
                return Action(ActionKind.RAISE, error=last)
            if isinstance(last, APIError):
                return self._fail(with_attempts(last, trail.attempts))
        request = self.request
        error = TransportError(message, method=request.method, url=request.display,
                               attempts=trail.attempts)
        return Action(ActionKind.RAISE, error=trail.annotate(error, minimum=1), cause=last)

    # -- helpers -------------------------------------------------------------------------
    def _fail(self, error: BaseException, cause: BaseException | None = None) -> Action:
        return Action(ActionKind.RAISE, error=self.trail.annotate(error), cause=cause)

    def _backoff(self, cause: BaseException, retry_after: float | None,
                 now: float) -> Action:
        attempt = self.attempt
        delay = retry_after if retry_after is not None else backoff_delay(
            self.policy, attempt, self.rng)
        if self.deadline_at is not None and now + delay >= self.deadline_at:
            if isinstance(cause, APIError):
                return self._fail(with_attempts(cause, attempt))
            request = self.request
            return self._fail(failure_error("the deadline leaves no time to retry; last",
                                            cause, method=request.method,
                                            url=request.display, attempts=attempt),
                              cause=cause)
        self.trail.phase = f"waiting {delay:.2f} s to retry"
        return Action(ActionKind.RETRY, delay=delay)


class Trail:
    """What one exchange has tried so far, for the error that ends it.

    Example: after ``failed(1, TimeoutError())`` and ``failed(2, TimeoutError())``,
    ``annotate(error)`` adds the note ``attempts: 1: timed out; 2: the same``.
    The phase of an attempt in flight is only put into words when an error needs it."""

    __slots__ = ("attempts", "failures", "in_flight", "last", "phase")

    def __init__(self) -> None:
        self.attempts = 0  # attempts made (sent, or failed at their login)
        self.phase: str | None = "waiting for admission"  # None: attempt `attempts` in flight
        self.in_flight = False
        self.failures: list[tuple[int, str]] = []  # (attempt, what it met), in order
        self.last: BaseException | None = None

    def doing(self) -> str:
        """What the exchange was doing, for a message."""
        phase = self.phase
        return f"attempt {self.attempts} was in flight" if phase is None else phase

    def sending(self, attempt: int) -> None:
        self.attempts = attempt
        self.in_flight = True
        self.phase = None

    def failed(self, attempt: int, exc: BaseException, *, login: bool = False) -> None:
        self.attempts = max(self.attempts, attempt)
        self.in_flight = False
        self.last = exc
        what = brief_failure(exc)
        self.failures.append((attempt, f"login: {what}" if login else what))

    def annotate(self, error: _E, *, minimum: int = 2) -> _E:
        """Add a note listing what every failed attempt met (when there were ``minimum``
        or more); a run of attempts that met the same is stated once:
        ``attempts: 1: login: connection refused; 2-4: the same``."""
        if len(self.failures) >= minimum:
            # Runs of consecutive attempts that met the same. An attempt number seen twice
            # is a replay (after a re-login, or a wait for the quota): "N again".
            runs: list[list[Any]] = []  # [first attempt, last attempt, what, again]
            previous = 0
            for attempt, what in self.failures:
                again = attempt == previous
                previous = attempt
                last = runs[-1] if runs else None
                if last is not None and not again and last[2] == what \
                        and attempt == last[1] + 1:
                    last[1] = attempt
                else:
                    runs.append([attempt, attempt, what, again])
            shown: list[str] = []
            for first, last_attempt, what, again in runs:
                shown.append(f"{first}{' again' if again else ''}: {what}")
                if last_attempt > first:
                    more = (f"{last_attempt}" if last_attempt == first + 1
                            else f"{first + 1}-{last_attempt}")
                    shown.append(f"{more}: the same")
            if len(shown) > 12:
                shown = [*shown[:6], "...", *shown[-5:]]
            error.add_note("attempts: " + "; ".join(shown))
        return error


def _restated(error: ArenaAsyncError, attempts: int) -> ArenaAsyncError:
    """``error`` (a login's) re-stated with the attempts the request made."""
    if isinstance(error, APIError):
        restated = with_attempts(error, attempts)
        assert isinstance(restated, APIError)
        return restated
    if type(error) is TransportError and error.attempts != attempts:
        return TransportError(error.reason, method=error.method, url=error.url,
                              attempts=attempts, brief=error.brief)
    return error
