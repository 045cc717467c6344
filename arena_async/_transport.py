"""The transport: the one place where bytes move, a short driver of the exchange.

(It pools nothing itself: aiohttp's connector pools the connections. One per client.)

Every request is admitted through the :class:`~arena_async._limiter.Limiter`, sent once per
attempt (our session never re-sends unseen: :func:`~arena_async._session.new_session`),
its answer classified by :mod:`arena_async._protocol`, and what to do next (retry, log in
again, wait for the quota, hold everyone for a Retry-After, raise) is decided by the pure
:class:`~arena_async._exchange.Exchange`: the transport carries it out. ``deadline`` bounds it
all: the exchange's checks on the injected clock, and a backstop on the loop's.

Beside it: the aiohttp session and its loop (open, close) in
:mod:`~arena_async._lifecycle`, the counters and their :class:`Stats` in
:mod:`~arena_async._transport_stats`, :class:`Response` and the :class:`Auth` protocol in
:mod:`~arena_async._session`, the per-attempt timer in :mod:`~arena_async._attempt_timer`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
import attrs
import yarl
from aiohttp import hdrs

from ._attempt_timer import AttemptTimer
from ._checks import check_deadline, check_timeout
from ._exchange import Action, ActionKind, Exchange
from ._lifecycle import Lifecycle
from ._limiter import Limiter, Permit
from ._network import Network, Route
from ._protocol import (
    Request,
    Verdict,
    VerdictKind,
    classify,
    is_transient_status,
    parse_error_body,
    parse_quota,
    read_quota,
)
from ._retry import was_sent
from ._session import DEFAULT_MAX_ANSWER_SIZE, Auth, Response, other_loop_error, read_body
from ._transport_stats import TransportCounters
from ._urls import WireURLs
from .errors import (
    APIError,
    ArenaAsyncError,
    ProxyUnreachable,
    error_for_status,
    excerpt,
    failure_error,
)
from .models.common import Quota, Stats
from .policies import QuotaPolicy, RetryPolicy

if TYPE_CHECKING:
    from ._cache import AnswerCache

__all__ = ["Auth", "Response", "Transport", "other_loop_error"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

_OK = Verdict(VerdictKind.OK)
_NO_AUTH: tuple[Mapping[str, str], int] = ({}, 0)
_CONTENT_LENGTH = hdrs.CONTENT_LENGTH
_CONTENT_ENCODING = hdrs.CONTENT_ENCODING


class Transport(Lifecycle):
    """Sends :class:`Request` objects with admission, auth, retries and quota tracking."""

    def __init__(
        self,
        *,
        auth: Auth,
        limiter: Limiter,
        retry: RetryPolicy,
        timeout: float,
        session: aiohttp.ClientSession | None = None,
        headers: Mapping[str, str] | None = None,
        connector_limit: int = 100,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        quota: QuotaPolicy | None = None,
        quota_waits: int = 2,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
        network: Network | None = None,
        max_answer_size: int = DEFAULT_MAX_ANSWER_SIZE,
    ) -> None:
        self.auth: Auth = auth
        self.limiter: Limiter = limiter
        self.retry: RetryPolicy = retry
        self.timeout: float = check_timeout(timeout)
        super().__init__(timeout=self.timeout, session=session,
                         connector_limit=connector_limit, trace_configs=trace_configs,
                         network=network)
        self.max_answer_size = max_answer_size
        # The proxy of each origin; None when nothing goes through a proxy (no work then).
        self._route = self.network.route_for if self.network.proxied else None
        if self.network.ssl is False:
            log.warning("TLS certificate verification is off (ssl=False, allow_insecure="
                        "True): the password and the session go to whoever answers")
        self._headers = dict(headers or {})
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._quota_policy = quota
        self._quota_waits = quota_waits
        self._quota_limit: int | None = None
        self._counters = TransportCounters()
        self._timer = AttemptTimer(self.timeout)
        self._wire_url = WireURLs()  # for requests without a target
        #: The answer cache (``cache=``), which the resources ask before sending a GET.
        self.answer_cache: AnswerCache | None = None

    @property
    def max_answer_size(self) -> int:
        """The largest answer read, in bytes (``max_answer_size``)."""
        return self._max_answer_size

    @max_answer_size.setter
    def max_answer_size(self, value: int) -> None:
        self._max_answer_size = value
        # A Content-Length of fewer digits than the limit is below it, whatever its value:
        # most answers are judged by the length of the header's text, with no int() made.
        self._short_length = len(str(value))

    @property
    def counters(self) -> TransportCounters:
        """The running counts behind :attr:`stats` (the answer cache adds its own)."""
        return self._counters

    @property
    def quota_limit(self) -> int | None:
        """The workspace's 24-hour request limit, when login told us."""
        return self._quota_limit

    @quota_limit.setter
    def quota_limit(self, value: int | None) -> None:
        self._quota_limit = value
        # The limiter keeps only a usable limit (a server may send -1 for "none").
        usable = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        self.limiter.set_limit(value if usable else None)

    # -- lifecycle: Lifecycle's open / close / session, and what closing ends -------------
    async def _end_server_session(self) -> None:
        try:
            await self.auth.close(self)
        except ArenaAsyncError as exc:
            log.warning("ending the session failed: %s", exc)

    def _abandoned(self) -> None:
        log.warning("the event loop this client was opened on is closed: its server "
                    "session (if any) was not ended; use one client per event loop")

    @property
    def quota(self) -> Quota | None:
        """The latest quota the server announced."""
        return self.limiter.quota

    @property
    def stats(self) -> Stats:
        """A snapshot of what this pool has done."""
        return self._counters.snapshot(self.limiter.stats)

    def count_login(self) -> None:
        """Called by auth implementations for each login they perform."""
        self._counters.logins += 1

    def count_renewal(self) -> None:
        """Called by auth implementations for each session renewal they perform."""
        self._counters.renewals += 1

    def is_transient(self, status: int) -> bool:
        """Whether an answer of ``status`` is worth another try under the retry policy."""
        return is_transient_status(status, self.retry.retry_statuses)

    def budget_spent(self) -> bool:
        """Whether the quota estimate leaves nothing above the reserve: a logout (which
        counts against the quota) is then skipped."""
        limiter = self.limiter
        left = limiter.estimated_remaining
        reserve = limiter.policy.reserve if limiter.policy is not None else 0
        return left is not None and left <= reserve

    def now(self) -> datetime:
        """The injected wall clock as an aware datetime."""
        return datetime.fromtimestamp(self._clock(), UTC)

    # -- one attempt ----------------------------------------------------------------
    async def send_once(self, request: Request,
                        headers: Mapping[str, str] | None = None) -> Response:
        """One attempt, no admission, no retry: used for login and logout."""
        async with asyncio.timeout(self.timeout):
            return await self._transmit(request, headers or {})

    async def login_once(self, request: Request) -> Response:
        """Send one login attempt (not admitted: login spends no quota) and count it.

        A connection failure raises :class:`TransportError` and a transient status (a 5xx or
        another the retry policy retries: :func:`~arena_async._protocol.is_transient_status`)
        the matching :class:`APIError`: both are transient, and the
        request that needed the login retries it within its own attempts. Any other answer
        is returned for the auth to judge (2xx: a session; 4xx: refused credentials).
        """
        try:
            response = await self.send_once(request)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise failure_error("login", exc, method=request.method,
                                url=request.display) from None
        if 200 <= response.status < 300:
            self.count_login()
        if is_transient_status(response.status, self.retry.retry_statuses):
            details = parse_error_body(response.body)
            raise error_for_status(response.status)(
                response.status, details, method=request.method, url=request.display,
                body_excerpt="" if details else excerpt(response.body))
        return response

    async def _transmit(self, request: Request, auth_headers: Mapping[str, str],
                        generation: int = 0) -> Response:
        headers = {**self._headers, **(request.headers or {}), **auth_headers}
        data: bytes | None = request.data
        if request.json is not None:
            data = json.dumps(request.json, separators=(",", ":")).encode()
            headers.setdefault("Content-Type", "application/json")
        session = self._session
        if session is None:
            session = self.session  # raises: not open, or closed
        self._counters.requests += 1
        debug = log.isEnabledFor(logging.DEBUG)
        started = time.perf_counter() if debug else 0.0
        target = request.target
        url = target if target is not None else self._wire_url(request.url)
        if self._route is None:
            sending = session.request(
                request.method, url,
                params=request.params, data=data,
                headers=headers, allow_redirects=False,
                raise_for_status=False,  # a caller's session may say True
            )
        else:
            sending = self._through_proxy(session, request, url, data, headers)
        async with sending as resp:
            answer_headers = resp.headers
            # Digits only: aiohttp's parser refuses any other Content-Length. The names are
            # istr: a case-insensitive lookup without lower-casing a new string each time.
            length = answer_headers.get(_CONTENT_LENGTH)
            if length is not None and _CONTENT_ENCODING not in answer_headers and (
                    len(length) < self._short_length
                    or int(length) <= self._max_answer_size):
                body = await resp.read()  # the parser reads no more than Content-Length
            else:
                body = await read_body(resp, self._max_answer_size, request.method,
                                       request.display)
        if debug:
            log.debug("%s %s -> %d (%.0f ms)", request.method, request.display, resp.status,
                      (time.perf_counter() - started) * 1000)
        return Response(resp.status, resp.headers, body, 1, generation)

    def _through_proxy(self, session: aiohttp.ClientSession, request: Request,
                       url: str | yarl.URL, data: bytes | None,
                       headers: dict[str, str]) -> Any:
        """``session.request`` through the proxy of ``url``'s origin (or direct, when
        ``NO_PROXY`` says so); a proxy's 407 to a plain-http request becomes the error a
        refused ``CONNECT`` raises."""
        assert self._route is not None
        route = self._route(url)
        proxy = proxy_headers = None
        if route is not None:
            proxy, proxy_headers = route.proxy, route.headers
            if proxy_headers and not str(url).startswith("https:"):
                # Plain http goes to the proxy in absolute form: it reads the credentials
                # off the request itself (aiohttp sends proxy_headers on CONNECT only).
                headers.update(proxy_headers)
        return _ProxiedRequest(session.request(
            request.method, url, params=request.params, data=data, headers=headers,
            allow_redirects=False, raise_for_status=False, proxy=proxy,
            proxy_headers=proxy_headers), route=route)

    # -- the exchange: a driver of _exchange.Exchange -------------------------------------
    async def send(self, request: Request, *, deadline: float | None = None) -> Response:
        """Send with admission, auth, re-login, and retries; return a 2xx response.

        ``deadline`` bounds the whole exchange in seconds: admission, login, every attempt
        and every wait. When it passes, :class:`TransportError` is raised at once (or the
        last :class:`APIError`, when the wait before a retry would not fit).
        """
        try:
            if deadline is not None:
                return await self._send_within(request, deadline)
            ready = self.auth.ready(self) if request.auth else _NO_AUTH
            limiter = self.limiter
            permit = limiter.admit_now() if ready is not None else None
            if ready is None or permit is None:
                return await self._drive(self._exchange(request, None))
            # The common case, with no suspension before sending: a session at hand and a
            # slot free. Attempt 1 of the same Exchange, without waiting for admission; only
            # an answer other than a 2xx builds the Exchange: building it for every request
            # cost more than the request itself on loopback (benchmarks/analysis.md §1).
            auth_headers, generation = ready
            failure: BaseException | None = None
            try:
                response = await self._timer.bound(self._transmit(request, auth_headers,
                                                                         generation))
            except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
                _report_failure(limiter, permit, exc)
                failure = exc
            except BaseException:
                limiter.release(permit)
                raise
            if failure is not None:  # (outside the except clause: no implicit __context__)
                limiter.release(permit)
                ex = self._sent_once(request)
                return await self._drive(ex, self._failed(ex, failure), generation)
            try:
                verdict = self._report(permit, request, response)
            finally:
                limiter.release(permit)
            if verdict.kind is VerdictKind.OK:
                return response
            ex = self._sent_once(request)
            return await self._drive(ex, self._answered(ex, response, verdict), generation,
                                     response)
        except RuntimeError as exc:
            # Only on the error path (nothing per request): a pool used from another loop
            # than its own fails deep in aiohttp or asyncio ("Event loop is closed", "got
            # Future attached to a different loop"); say what happened instead.
            if self.on_other_loop():
                raise other_loop_error() from exc
            raise

    def _exchange(self, request: Request, deadline_at: float | None) -> Exchange:
        policy = self._quota_policy
        waits = policy is not None and policy.on_exhausted == "wait"
        return Exchange(request, self.retry, rng=self._rng, deadline_at=deadline_at,
                        quota_waits=self._quota_waits if waits else 0)

    def _sent_once(self, request: Request) -> Exchange:
        """The Exchange of a request whose attempt 1 :meth:`send` made inline."""
        ex = self._exchange(request, None)
        ex.start()
        ex.sending()
        return ex

    def _report(self, permit: Permit, request: Request, response: Response) -> Verdict:
        """Tell the limiter what an answer said of the quota; return what the answer means."""
        if 200 <= response.status < 300:  # nothing to classify; no Quota built
            reading = read_quota(response.headers)
            if reading is None:
                self.limiter.report(permit, remaining=None, reset_ts=None, quota=None)
            else:
                self.limiter.report(permit, remaining=reading[0], reset_ts=reading[2],
                                    quota=reading)
            return _OK
        quota = parse_quota(response.headers, self.quota_limit)
        verdict = classify(response.status, response.headers, response.body, request,
                           now=self.now(), retry_statuses=self.retry.retry_statuses,
                           quota=quota)
        self.limiter.observe(permit, quota, exhausted=verdict.kind is VerdictKind.QUOTA)
        return verdict

    def _answered(self, ex: Exchange, response: Response, verdict: Verdict) -> Action:
        self._counters.answered(response.status)
        return ex.on_answer(response.status, verdict, self._clock())

    def _failed(self, ex: Exchange, failure: BaseException) -> Action:
        self._counters.failed()
        return ex.on_failure(failure, self._clock())

    async def _send_within(self, request: Request, deadline: float) -> Response:
        seconds = check_deadline(deadline)
        assert seconds is not None
        ex = self._exchange(request, self._clock() + seconds)
        # The exchange's checks run on the injected clock; this backstop, on the loop's
        # clock, also cuts what they cannot: a wait for admission, a slow login.
        backstop = asyncio.timeout(seconds)
        try:
            async with backstop:
                return await self._drive(ex)
        except TimeoutError:
            if not backstop.expired():
                raise
            action = ex.out_of_time(f"the deadline of {seconds:g} s passed while "
                                    f"{ex.trail.doing()}")
        assert action.error is not None
        raise action.error from action.cause

    async def _drive(self, ex: Exchange, action: Action | None = None, generation: int = 0,
                     response: Response | None = None) -> Response:
        """Make attempts and carry out what ``ex`` decides after each, until it returns or
        raises. ``action``: attempt 1 was made already (by :meth:`send`), and this is what
        the exchange decided of it."""
        request = ex.request
        while True:
            if action is None:
                action, generation, response = await self._attempt(ex)
            if action.hold_until is not None:
                self.limiter.hold_until(action.hold_until)
            kind = action.kind
            if kind is ActionKind.RETURN:
                assert response is not None
                return response if ex.attempt == 1 else attrs.evolve(response,
                                                                     attempts=ex.attempt)
            if kind is ActionKind.RAISE:
                assert action.error is not None
                raise action.error from action.cause
            if kind is ActionKind.RELOGIN:
                assert isinstance(action.error, APIError)
                try:
                    await self.auth.refresh(self, generation, action.error)
                except ArenaAsyncError as exc:
                    action = ex.on_login_failure(exc, self._clock())
                    continue
                ex.on_relogin()
            elif action.delay is not None:  # a retry after a wait
                delay = action.delay
                log.debug("retrying %s %s after %.2f s (attempt %d failed: %s)",
                          request.method, request.display, delay, ex.attempt,
                          type(ex.trail.last).__name__)
                self._counters.retried(delay)  # a replay (re-login, quota) is not a retry
                await self._sleep(delay)
            action = None

    async def _attempt(self, ex: Exchange) -> tuple[Action, int, Response | None]:
        """One attempt: log in if needed, wait for admission, send, report to the limiter.
        Returns what the exchange decided, the session generation used, and the answer."""
        request = ex.request
        ex.start()
        auth_headers: Mapping[str, str] = {}
        generation = 0
        if request.auth:
            ex.phase("logging in")
            try:
                await self.auth.headers(self)  # logs in (or renews) first when needed
            except ArenaAsyncError as exc:
                return ex.on_login_failure(exc, self._clock()), 0, None
        failure: BaseException | None = None
        response: Response | None = None
        verdict = _OK
        ex.phase("waiting for admission")
        limiter = self.limiter
        async with limiter.slot() as permit:
            if request.auth:
                auth_headers, generation = await self.auth.current()
            left = ex.time_left(self._clock())
            if left is not None and left <= 0:
                limiter.end(permit, spent=False)
                action = ex.out_of_time("the deadline passed before the request could "
                                        "be sent")
                assert action.error is not None
                raise action.error from action.cause
            ex.sending()
            try:
                if left is None or left >= self.timeout:  # the pool's shared timer
                    response = await self._timer.bound(self._transmit(request, auth_headers,
                                                                         generation))
                else:  # the deadline shortens this attempt
                    async with asyncio.timeout(left):
                        response = await self._transmit(request, auth_headers, generation)
            except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
                _report_failure(limiter, permit, exc)
                failure = exc
            else:
                verdict = self._report(permit, request, response)
        if failure is not None:
            return self._failed(ex, failure), generation, None
        assert response is not None
        return self._answered(ex, response, verdict), generation, response


class _ProxiedRequest:
    """``async with`` a request sent through a proxy: a 407 answer (the proxy's own, to a
    plain-http request) raises ``ClientHttpProxyError``, as a refused ``CONNECT`` does; a
    proxy that cannot be reached raises :class:`ProxyUnreachable`, naming the setting
    that named it."""

    __slots__ = ("_route", "_sending")

    def __init__(self, sending: Any, *, route: Route | None) -> None:
        self._sending = sending
        self._route = route

    async def __aenter__(self) -> aiohttp.ClientResponse:
        try:
            resp: aiohttp.ClientResponse = await self._sending.__aenter__()
        except aiohttp.ClientProxyConnectionError as exc:
            if self._route is None or isinstance(exc, ProxyUnreachable):
                raise
            raise ProxyUnreachable(exc, self._route.setting) from None
        if resp.status == 407 and self._route is not None:
            resp.release()
            raise aiohttp.ClientHttpProxyError(resp.request_info, resp.history, status=407,
                                               message=resp.reason or "")
        return resp

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._sending.__aexit__(*exc_info)


def _report_failure(limiter: Limiter, permit: Permit, exc: BaseException) -> None:
    """Tell the limiter of an attempt that got no answer: maybe sent (spent), or not."""
    if was_sent(exc):
        limiter.report(permit, remaining=None, reset_ts=None, quota=None)
    else:
        limiter.end(permit, spent=False)
