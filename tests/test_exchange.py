"""The exchange's rules (`arena_async._exchange.Exchange`), event by event, without sockets.

Each test feeds an Exchange the events a driver would (``start``, ``on_answer``,
``on_failure``, ``on_login_failure``, ``on_relogin``) and checks the one action it answers
with: return, retry (after how long), log in again, hold every task until a time, raise
what. Answers are classified by the real :func:`~arena_async._protocol.classify`; the
end-to-end behaviour (what reaches a server) is in tests/test_retry.py, tests/chaos and
tests/test_deadline.py.
"""

from __future__ import annotations

import errno
import json
import random
import socket
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest

from arena_async import APIError, QuotaExhaustedError, RetryPolicy, TransportError
from arena_async._exchange import (
    Action,
    ActionKind,
    Exchange,
    Trail,
)
from arena_async._protocol import Request, Verdict, classify
from arena_async.errors import ErrorDetail, brief_failure, describe_failure

NOW = 1_800_000_000.0
GET = Request("GET", "http://h/v1/items/A/tickets", "/items/A/tickets")
POST = Request("POST", "http://h/v1/items/A/items", "/items/A/items")


def verdict(status: int, request: Request = GET, *, retry_after: str | None = None,
            code: int | None = None, policy: RetryPolicy | None = None) -> Verdict:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    body = json.dumps({"status": status, "errors": [
        {"code": code if code is not None else status, "message": "m"}]}).encode()
    return classify(status, headers, body, request, now=datetime.fromtimestamp(NOW, UTC),
                    retry_statuses=(policy or RetryPolicy()).retry_statuses)


def exchange(request: Request = GET, *, quota_waits: int = 0, deadline_at: float | None = None,
             **policy: Any) -> Exchange:
    return Exchange(request, RetryPolicy(**policy), rng=random.Random(1),
                    deadline_at=deadline_at, quota_waits=quota_waits)


def answer(ex: Exchange, status: int, **kw: Any) -> Action:
    ex.start()
    ex.sending()
    return ex.on_answer(status, verdict(status, ex.request, policy=ex.policy, **kw), NOW)


def refused() -> aiohttp.ClientConnectorError:
    """A connect that failed: the request never left."""
    key = SimpleNamespace(host="h", port=1, ssl=True)
    return aiohttp.ClientConnectorError(key,  # type: ignore[arg-type]
                                        OSError(errno.ECONNREFUSED, "Connection refused"))


def fail(ex: Exchange, exc: BaseException, now: float = NOW) -> Action:
    ex.start()
    ex.sending()
    return ex.on_failure(exc, now)


def note(error: BaseException | None) -> str:
    assert error is not None
    return " | ".join(getattr(error, "__notes__", []))


# -- retryable statuses ------------------------------------------------------------------
@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_a_retryable_status_is_retried_after_a_jittered_backoff(status: int) -> None:
    ex = exchange(backoff=1.0, max_backoff=8.0)
    action = answer(ex, status)
    assert action.kind is ActionKind.RETRY
    assert action.delay is not None
    assert 0.0 <= action.delay <= 1.0
    assert action.hold_until is None  # no Retry-After: nobody else waits
    action = answer(ex, status)
    assert ex.attempt == 2
    assert action.delay is not None
    assert 0.0 <= action.delay <= 2.0


def test_the_backoff_is_the_policys_full_jitter_from_the_rng() -> None:
    ex = exchange(backoff=1.0, max_backoff=8.0, max_attempts=5)
    delays = [answer(ex, 503).delay for _ in range(4)]
    rng = random.Random(1)
    assert delays == [rng.uniform(0, c) for c in (1.0, 2.0, 4.0, 8.0)]


@pytest.mark.parametrize("status", [400, 403, 404, 409, 501])
def test_another_status_is_raised_at_once(status: int) -> None:
    ex = exchange()
    action = answer(ex, status)
    assert action.kind is ActionKind.RAISE
    assert isinstance(action.error, APIError)
    assert (action.error.status, action.error.attempts) == (status, 1)
    assert note(action.error) == ""  # one attempt: no list of attempts


def test_max_attempts_bounds_the_attempts() -> None:
    ex = exchange(max_attempts=3)
    kinds = [answer(ex, 503).kind for _ in range(3)]
    assert kinds == [ActionKind.RETRY, ActionKind.RETRY, ActionKind.RAISE]
    assert ex.attempt == 3


def test_a_2xx_is_returned() -> None:
    ex = exchange()
    assert answer(ex, 200).kind is ActionKind.RETURN
    assert answer(ex, 503).kind is ActionKind.RETRY
    assert answer(ex, 201).kind is ActionKind.RETURN
    assert ex.attempt == 3


# -- Retry-After -------------------------------------------------------------------------
@pytest.mark.parametrize(("status", "held"), [(429, True), (503, True), (500, False)])
def test_retry_after_seconds_is_the_wait_and_holds_everyone_on_429_and_503(
        status: int, held: bool) -> None:
    ex = exchange(max_backoff=30.0)
    action = answer(ex, status, retry_after="7")
    assert (action.kind, action.delay) == (ActionKind.RETRY, 7.0)
    assert action.hold_until == (NOW + 7.0 if held else None)


def test_retry_after_as_a_date() -> None:
    when = datetime.fromtimestamp(NOW + 12, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
    action = answer(exchange(), 503, retry_after=when)
    assert (action.delay, action.hold_until) == (12.0, NOW + 12.0)


def test_retry_after_zero_retries_at_once_and_holds_until_now() -> None:
    action = answer(exchange(), 429, retry_after="0")
    assert (action.kind, action.delay, action.hold_until) == (ActionKind.RETRY, 0.0, NOW)


def test_retry_after_up_to_max_backoff_is_waited_beyond_it_raised_at_once() -> None:
    action = answer(exchange(max_backoff=30.0), 503, retry_after="30")
    assert (action.kind, action.delay, action.hold_until) == (ActionKind.RETRY, 30.0, NOW + 30)
    ex = exchange(max_backoff=30.0)
    action = answer(ex, 503, retry_after="31")
    assert action.kind is ActionKind.RAISE
    assert action.hold_until is None  # not held: nobody waits that long
    assert isinstance(action.error, APIError)
    assert action.error.retry_after == 31.0


def test_retry_after_on_the_last_attempt_still_holds_the_others() -> None:
    ex = exchange(max_attempts=1)
    action = answer(ex, 429, retry_after="5")
    assert (action.kind, action.hold_until) == (ActionKind.RAISE, NOW + 5)


# -- 429: quota vs rate ------------------------------------------------------------------
@pytest.mark.parametrize("code", [4084, 4014])
def test_a_quota_429_is_raised_not_retried(code: int) -> None:
    ex = exchange(max_attempts=5)
    action = answer(ex, 429, code=code)
    assert action.kind is ActionKind.RAISE
    assert isinstance(action.error, QuotaExhaustedError)


def test_a_rate_429_is_retried() -> None:
    action = answer(exchange(), 429, code=1234)
    assert action.kind is ActionKind.RETRY
    assert action.delay is not None


def test_quota_waits_replay_at_once_bounded_by_quota_waits_and_cost_no_attempt() -> None:
    ex = exchange(max_attempts=1, quota_waits=2)
    first = answer(ex, 429, code=4084)
    second = answer(ex, 429, code=4084)
    assert [first.kind, second.kind] == [ActionKind.RETRY, ActionKind.RETRY]
    assert (first.delay, second.delay) == (None, None)  # the limiter holds admission
    assert ex.attempt == 1  # replays of attempt 1
    third = answer(ex, 429, code=4084)
    assert third.kind is ActionKind.RAISE
    assert isinstance(third.error, QuotaExhaustedError)
    assert answer(exchange(quota_waits=2), 200).kind is ActionKind.RETURN


# -- POST --------------------------------------------------------------------------------
def test_a_post_that_was_sent_is_not_retried() -> None:
    ex = exchange(POST)
    action = fail(ex, aiohttp.ServerDisconnectedError())
    assert action.kind is ActionKind.RAISE
    assert isinstance(action.error, TransportError)
    assert isinstance(action.cause, aiohttp.ServerDisconnectedError)
    assert answer(exchange(POST), 503).kind is ActionKind.RAISE


def test_a_post_that_never_left_is_retried() -> None:
    ex = exchange(POST)
    assert fail(ex, refused()).kind is ActionKind.RETRY
    assert fail(ex, aiohttp.ServerDisconnectedError()).kind is ActionKind.RAISE


def test_retry_post_retries_a_sent_post() -> None:
    assert fail(exchange(POST, retry_post=True),
                aiohttp.ServerDisconnectedError()).kind is ActionKind.RETRY
    assert answer(exchange(POST, retry_post=True), 503).kind is ActionKind.RETRY


def test_a_permanent_failure_is_raised_at_once() -> None:
    ex = exchange()
    action = fail(ex, aiohttp.InvalidURL("x"))
    assert action.kind is ActionKind.RAISE
    assert ex.attempt == 1


def test_transport_failures_are_retried_then_raised_with_the_note() -> None:
    ex = exchange(max_attempts=3)
    kinds = [fail(ex, exc).kind for exc in (refused(), TimeoutError(), TimeoutError())]
    assert kinds == [ActionKind.RETRY, ActionKind.RETRY, ActionKind.RAISE]
    ex2 = exchange(max_attempts=3)
    for exc in (refused(), TimeoutError()):
        fail(ex2, exc)
    last = fail(ex2, TimeoutError())
    assert isinstance(last.error, TransportError)
    assert str(last.error) == "request timed out (GET /items/A/tickets, 3 attempts)"
    assert note(last.error) == "attempts: 1: connection refused; 2: timed out; 3: the same"


# -- re-login ----------------------------------------------------------------------------
def test_the_first_relogin_is_free_later_ones_cost_an_attempt() -> None:
    ex = exchange(max_attempts=2)
    action = answer(ex, 401)
    assert action.kind is ActionKind.RELOGIN
    assert isinstance(action.error, APIError)
    assert action.error.status == 401
    ex.on_relogin()
    action = answer(ex, 401)  # the replay: still attempt 1
    assert ex.attempt == 1
    assert action.kind is ActionKind.RELOGIN  # attempt 1 < 2: a second re-login
    ex.on_relogin()
    action = answer(ex, 401)
    assert ex.attempt == 2
    assert action.kind is ActionKind.RAISE
    assert isinstance(action.error, APIError)
    assert action.error.attempts == 2
    assert note(action.error) == "attempts: 1: HTTP 401; 1 again: HTTP 401; 2: the same"


def test_a_relogin_with_max_attempts_one_still_gets_its_free_replay() -> None:
    ex = exchange(max_attempts=1)
    assert answer(ex, 401).kind is ActionKind.RELOGIN
    ex.on_relogin()
    assert answer(ex, 200).kind is ActionKind.RETURN
    assert ex.attempt == 1


def test_a_401_on_a_request_without_auth_is_raised() -> None:
    login = Request("POST", "http://h/v1/login", "/login", auth=False)
    action = answer(exchange(login), 401)
    assert action.kind is ActionKind.RAISE


# -- login failures ----------------------------------------------------------------------
def transient_login() -> TransportError:
    return TransportError("login failed: cannot connect", method="POST", url="/login",
                          brief="connection refused")


def test_a_transient_login_failure_costs_an_attempt_and_a_backoff() -> None:
    ex = exchange(max_attempts=3, backoff=1.0)
    ex.start()
    action = ex.on_login_failure(transient_login(), NOW)
    assert action.kind is ActionKind.RETRY
    assert action.delay is not None
    assert 0 <= action.delay <= 1.0
    assert ex.start() == 2  # the failed login cost attempt 1


def test_a_login_5xx_is_transient_a_login_4xx_fatal() -> None:
    ex = exchange()
    ex.start()
    unavailable = APIError(503, [], method="POST", url="/login")
    assert ex.on_login_failure(unavailable, NOW).kind is ActionKind.RETRY
    ex.start()
    refused_login = APIError(400, [], method="POST", url="/login")
    action = ex.on_login_failure(refused_login, NOW)
    assert action.kind is ActionKind.RAISE
    assert isinstance(action.error, APIError)
    assert (action.error.status, action.error.attempts) == (400, 2)  # restated


@pytest.mark.parametrize(("status", "retry_statuses", "kind"), [
    (501, None, ActionKind.RETRY),  # a 5xx the policy does not name: the server's trouble
    (503, frozenset(), ActionKind.RETRY),
    (408, None, ActionKind.RETRY),
    (408, frozenset(), ActionKind.RAISE),  # a 4xx is transient only when the policy says
    (404, None, ActionKind.RAISE),
])
def test_a_login_answer_is_retried_by_the_one_transient_rule(
        status: int, retry_statuses: frozenset[int] | None, kind: ActionKind) -> None:
    # The rule login_once raises by (is_transient_status): what it raises as transient,
    # the exchange retries.
    policy = {} if retry_statuses is None else {"retry_statuses": retry_statuses}
    ex = exchange(**policy)
    ex.start()
    login = APIError(status, [], method="POST", url="/login")
    assert ex.on_login_failure(login, NOW).kind is kind


def test_transient_login_failures_end_at_max_attempts_restated() -> None:
    ex = exchange(max_attempts=2)
    actions = []
    for _ in range(2):
        ex.start()
        actions.append(ex.on_login_failure(transient_login(), NOW))
    assert [a.kind for a in actions] == [ActionKind.RETRY, ActionKind.RAISE]
    error = actions[-1].error
    assert isinstance(error, TransportError)
    assert error.attempts == 2
    assert note(error) == "attempts: 1: login: connection refused; 2: the same"


def test_a_failed_relogin_costs_the_attempt_it_replaced() -> None:
    ex = exchange(max_attempts=3)
    assert answer(ex, 401).kind is ActionKind.RELOGIN
    assert ex.on_login_failure(transient_login(), NOW).kind is ActionKind.RETRY
    assert ex.start() == 2  # no free replay: the re-login did not happen


# -- deadlines ---------------------------------------------------------------------------
def test_a_backoff_the_deadline_would_cut_raises_the_last_error() -> None:
    ex = exchange(deadline_at=NOW + 5, max_backoff=30.0)
    action = answer(ex, 503, retry_after="6")
    assert action.kind is ActionKind.RAISE
    assert isinstance(action.error, APIError)
    assert action.error.status == 503
    assert action.hold_until == NOW + 6  # the others are still told to wait
    ex = exchange(deadline_at=NOW + 5, max_backoff=30.0)
    assert answer(ex, 503, retry_after="5").kind is ActionKind.RAISE  # the wait would end at it
    ex = exchange(deadline_at=NOW + 5, max_backoff=30.0)
    assert answer(ex, 503, retry_after="4").kind is ActionKind.RETRY


def test_a_transport_failure_the_deadline_leaves_no_retry_for() -> None:
    ex = exchange(deadline_at=NOW + 1, backoff=10.0, max_backoff=10.0)
    action = fail(ex, TimeoutError(), now=NOW + 1)
    assert action.kind is ActionKind.RAISE
    assert isinstance(action.error, TransportError)
    assert "the deadline leaves no time to retry; last timed out" in str(action.error)


def test_time_left_and_out_of_time() -> None:
    assert exchange().time_left(NOW) is None
    ex = exchange(deadline_at=NOW + 3)
    assert ex.time_left(NOW + 1) == 2.0
    ex.start()
    ex.phase("waiting for admission")
    action = ex.out_of_time(f"the deadline of 3 s passed while {ex.trail.doing()}")
    assert action.kind is ActionKind.RAISE
    assert isinstance(action.error, TransportError)
    assert "the deadline of 3 s passed while waiting for admission" in str(action.error)
    ex.sending()
    assert ex.trail.doing() == "attempt 1 was in flight"


def test_out_of_time_between_attempts_raises_what_the_last_answer_was() -> None:
    ex = exchange(deadline_at=NOW + 100)
    answer(ex, 503)
    action = ex.out_of_time("the deadline passed")
    assert isinstance(action.error, APIError)
    assert action.error.status == 503
    ex = exchange(deadline_at=NOW + 100, quota_waits=2)
    answer(ex, 429, code=4084)
    answer(ex, 429, code=4084)
    action = ex.out_of_time("the deadline passed")
    assert isinstance(action.error, QuotaExhaustedError)
    # the quota's own error, told why it ends now (no list of attempts: all replays of 1)
    assert note(action.error) == "the deadline passed (waiting for the quota to reset)"


# -- the trail ---------------------------------------------------------------------------
def test_the_note_states_runs_once_and_replays_as_again() -> None:
    trail = Trail()
    for attempt, what in [(1, TimeoutError()), (2, TimeoutError()), (3, TimeoutError()),
                          (4, aiohttp.ServerDisconnectedError())]:
        trail.failed(attempt, what)
    error = trail.annotate(ValueError("x"))
    assert note(error) == ("attempts: 1: timed out; 2-3: the same; "
                           "4: server disconnected")
    single = Trail()
    single.failed(1, TimeoutError())
    assert note(single.annotate(ValueError("y"))) == ""
    assert note(single.annotate(ValueError("z"), minimum=1)) == "attempts: 1: timed out"


def test_a_long_note_is_cut_in_the_middle() -> None:
    trail = Trail()
    for attempt in range(1, 21):
        trail.failed(attempt, TimeoutError() if attempt % 2 else refused())
    shown = note(trail.annotate(ValueError("x")))
    assert shown.startswith("attempts: 1: timed out; 2: connection refused; ")
    assert "; ...; " in shown
    assert shown.endswith("20: connection refused")
    assert shown.count(";") == 11


def test_brief_failure_words() -> None:
    assert brief_failure(refused()) == "connection refused"
    assert brief_failure(TimeoutError()) == "timed out"
    assert brief_failure(APIError(503, [], method="GET", url="/x")) == "HTTP 503"
    assert brief_failure(aiohttp.ClientPayloadError()) == "body cut short"
    assert brief_failure(OSError(errno.ECONNRESET, "x")) == "connection reset"


def test_the_action_repr_names_no_secret() -> None:
    action = Action(ActionKind.RAISE, error=TransportError("t", method="GET", url="/x"))
    assert repr(action) == ("Action(RAISE, delay=None, error=TransportError, "
                            "hold_until=None)")


# -- edges found by mutation testing (docs/mutation.md) -----------------------------------
def test_by_default_a_quota_429_is_raised_at_once() -> None:
    ex = Exchange(GET, RetryPolicy(max_attempts=5), rng=random.Random(1))
    assert ex.quota_waits == 0
    action = answer(ex, 429, code=4084)
    assert action.kind is ActionKind.RAISE
    assert isinstance(action.error, QuotaExhaustedError)


def test_a_relogin_is_what_the_exchange_is_doing_until_the_replay() -> None:
    ex = exchange(deadline_at=NOW + 10)
    assert ex.trail.doing() == "waiting for admission"
    assert answer(ex, 401).kind is ActionKind.RELOGIN
    assert ex.trail.doing() == "logging in again"
    action = ex.out_of_time(f"the deadline passed while {ex.trail.doing()}")
    assert isinstance(action.error, APIError)  # the 401 it was replacing the session for
    assert action.error.status == 401


def test_a_backoff_says_how_long_it_waits() -> None:
    ex = exchange(max_backoff=30.0)
    action = answer(ex, 503, retry_after="7")
    assert action.kind is ActionKind.RETRY
    assert ex.trail.doing() == "waiting 7.00 s to retry"
    ex.start()
    ex.phase("waiting for admission")
    assert ex.trail.doing() == "waiting for admission"
    ex.sending()
    assert ex.trail.doing() == "attempt 2 was in flight"


def test_out_of_time_before_anything_failed_lists_no_attempts() -> None:
    ex = exchange(deadline_at=NOW + 1)
    ex.start()
    action = ex.out_of_time("the deadline passed while waiting for admission")
    assert isinstance(action.error, TransportError)
    assert action.error.attempts == 0
    assert action.cause is None
    assert note(action.error) == ""


def test_out_of_time_while_a_retry_is_in_flight_is_a_transport_error() -> None:
    # Attempt 1 met a 503; attempt 2 was on the wire when the deadline passed: what ends
    # the exchange is the cut attempt, not the 503 (which the note lists).
    ex = exchange(deadline_at=NOW + 100)
    assert answer(ex, 503).kind is ActionKind.RETRY
    ex.start()
    ex.sending()
    action = ex.out_of_time("the deadline passed while attempt 2 was in flight")
    assert isinstance(action.error, TransportError)
    assert action.error.attempts == 2
    assert isinstance(action.cause, APIError)
    assert note(action.error) == "attempts: 1: HTTP 503"


def test_a_transient_login_failure_the_deadline_leaves_no_retry_for() -> None:
    ex = exchange(deadline_at=NOW + 0.5, backoff=10.0, max_backoff=10.0)
    ex.start()
    action = ex.on_login_failure(transient_login(), NOW + 0.5)
    assert action.kind is ActionKind.RAISE
    assert isinstance(action.error, TransportError)
    assert str(action.error).startswith(
        "the deadline leaves no time to retry; last TransportError: login failed: "
        "cannot connect")
    assert action.error.brief == "connection refused"
    assert action.error.attempts == 1


def test_a_failed_login_counts_as_an_attempt_when_the_deadline_ends_the_wait() -> None:
    # The login of attempt 1 failed (nothing was sent); the deadline passes in the backoff.
    ex = exchange(deadline_at=NOW + 100)
    ex.start()
    assert ex.on_login_failure(transient_login(), NOW).kind is ActionKind.RETRY
    action = ex.out_of_time("the deadline passed")
    assert isinstance(action.error, TransportError)
    assert action.error.attempts == 1
    assert note(action.error) == "attempts: 1: login: connection refused"
    ex = exchange(deadline_at=NOW + 100)
    ex.start()
    unavailable = APIError(503, [], method="POST", url="/login")
    assert ex.on_login_failure(unavailable, NOW).kind is ActionKind.RETRY
    action = ex.out_of_time("the deadline passed")
    assert isinstance(action.error, APIError)
    assert (action.error.status, action.error.attempts) == (503, 1)


@pytest.mark.parametrize(("count", "cut"), [(12, False), (13, True)])
def test_a_note_is_cut_only_past_12_entries(count: int, cut: bool) -> None:
    trail = Trail()
    for attempt in range(1, count + 1):
        trail.failed(attempt, TimeoutError() if attempt % 2 else refused())
    shown = note(trail.annotate(ValueError("x"))).removeprefix("attempts: ").split("; ")
    assert ("..." in shown) is cut
    assert len(shown) == (12 if cut else count)
    assert shown[-1] == f"{count}: {'timed out' if count % 2 else 'connection refused'}"


def test_describe_failure_words() -> None:
    assert describe_failure(APIError(503, [], method="GET", url="/x")) == "HTTP 503"
    assert describe_failure(APIError(409, [ErrorDetail(3011, "m")], method="GET",
                                     url="/x")) == "HTTP 409 (code 3011)"
    assert describe_failure(TimeoutError()) == "timed out"
    assert describe_failure(refused()) == ("failed: cannot connect to h:1: connection "
                                           "refused (ClientConnectorError)")
    tls = aiohttp.ClientConnectorCertificateError(
        SimpleNamespace(host="h", port=1, ssl=True, is_ssl=True),  # type: ignore[arg-type]
        ValueError("self-signed"))
    assert describe_failure(tls).startswith("failed: ClientConnectorCertificateError: ")
    assert brief_failure(tls) == "TLS failed"
    assert describe_failure(ValueError("odd")) == "failed: ValueError: odd"
    assert describe_failure(ValueError()) == "failed: ValueError"


def connector_error(os_error: OSError) -> aiohttp.ClientConnectorError:
    key = SimpleNamespace(host="h", port=1, ssl=True)
    return aiohttp.ClientConnectorError(key, os_error)  # type: ignore[arg-type]


def test_brief_failure_words_for_every_kind_of_connect_failure() -> None:
    assert brief_failure(connector_error(OSError(errno.EACCES, "Permission denied"))) \
        == "Permission denied"  # an errno without words of its own: the OS's words
    assert brief_failure(connector_error(OSError("no errno"))) == "cannot connect"
    assert brief_failure(connector_error(socket.gaierror(
        socket.EAI_AGAIN, "Temporary failure in name resolution"))) == "host name not resolved"
    assert brief_failure(connector_error(OSError("Name or service not known"))) \
        == "host name not resolved"
    assert brief_failure(OSError("odd")) == "OSError"
    assert brief_failure(ConnectionResetError(errno.ECONNRESET, "x")) == "connection reset"
    assert brief_failure(ValueError("odd")) == "ValueError"
    assert brief_failure(aiohttp.ServerDisconnectedError()) == "server disconnected"
