"""The session pool: the one place where bytes move.

One aiohttp session (ours, created on entry, or the caller's, never closed by us), every
request admitted through the :class:`~arena_async._limiter.Limiter`, answers classified by
:mod:`arena_async._protocol`, retries per :class:`~arena_async.RetryPolicy`, and auth that
logs in again on 401, single-flight.

What an exchange promises:

- Every attempt is one send on the wire (our session does not let aiohttp re-send
  unseen), and a request is attempted at most ``max_attempts`` times. The first replay
  after a re-login is free; a further 401 costs an attempt, so re-logins stay bounded.
- A login that fails for a transient reason (connection, timeout, 5xx) costs the request
  an attempt and a backoff, like any other transient failure, instead of failing it.
- ``deadline`` bounds everything: admission, login, attempts and waits.
- The error that ends an exchange names method, path and query (never headers), the
  attempts made, and carries a note listing what each attempt met.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import random
import re
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn, Protocol, TypeVar

import aiohttp
import attrs
import yarl

from ._limiter import Limiter, Permit
from ._protocol import (
    Request,
    Verdict,
    VerdictKind,
    check_deadline,
    classify,
    parse_error_body,
    parse_quota,
    read_quota,
    with_attempts,
)
from ._retry import backoff_delay, is_retryable_exception, may_retry, was_sent
from .errors import (
    APIError,
    ArenaAsyncError,
    QuotaExhaustedError,
    TransportError,
    error_for_status,
    excerpt,
)
from .models.common import Quota, Stats
from .policies import QuotaPolicy, RetryPolicy

__all__ = ["Auth", "Response", "SessionPool", "brief_failure", "describe_failure",
           "other_loop_error"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

#: A URL made only of RFC 3986 characters ('%' included; see _BAD_ESCAPE).
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
#: A '%' that does not start an escape.
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def wire_url(url: str) -> str | yarl.URL:
    """The URL to hand to aiohttp, its percent-encoding kept exactly as built.

    Given a ``str``, yarl re-quotes the path and decodes escapes of characters a path
    may hold, so an id's ``%3B`` would go out as ``;``, which servlet containers read as
    the start of a path parameter (``/items/ABC;x/tickets`` means item ``ABC`` there).
    An already encoded URL is marked so; anything else is left to yarl.
    """
    if _URL_CHARS.fullmatch(url) and ("%" not in url or _BAD_ESCAPE.search(url) is None):
        return yarl.URL(url, encoded=True)
    return url


#: A path (no query, no fragment) made only of RFC 3986 characters.
_PATH_CHARS = re.compile(r"/[A-Za-z0-9\-._~:/@!$&'()*+,;=%]*")


class _WireURLs:
    """:func:`wire_url`, with each origin (``scheme://authority``) parsed once: an encoded
    path is set on the cached origin (``with_path(encoded=True)``, the same URL), which
    costs yarl a third of parsing the whole URL again. At most 16 origins are kept."""

    __slots__ = ("_origins",)

    def __init__(self) -> None:
        self._origins: dict[str, yarl.URL] = {}

    def __call__(self, url: str) -> str | yarl.URL:
        scheme_end = url.find("://")
        cut = url.find("/", scheme_end + 3) if scheme_end > 0 else -1
        if cut > 0:
            path = url[cut:]
            if _PATH_CHARS.fullmatch(path) and ("%" not in path
                                                 or _BAD_ESCAPE.search(path) is None):
                origin_text = url[:cut]
                origin = self._origins.get(origin_text)
                if origin is None and len(self._origins) < 16 \
                        and _URL_CHARS.fullmatch(origin_text) and "?" not in origin_text \
                        and "#" not in origin_text and _BAD_ESCAPE.search(origin_text) is None:
                    origin = self._origins[origin_text] = yarl.URL(origin_text, encoded=True)
                if origin is not None:
                    return origin.with_path(path, encoded=True)
        return wire_url(url)


@attrs.frozen(slots=True)
class Response:
    """A complete answer: status, headers and the whole body."""

    status: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)
    attempts: int = 1


_OK = Verdict(VerdictKind.OK)
_NO_AUTH: tuple[Mapping[str, str], int] = ({}, 0)


class Auth(Protocol):
    """How a client authenticates; the pool calls it, it calls back ``pool.send_once``."""

    def ready(self, pool: SessionPool) -> tuple[Mapping[str, str], int] | None:
        """The session's headers and generation when a request can be sent with them at
        once: a session is held, and no login, renewal or re-login is due or under way.
        None otherwise: the pool then goes through :meth:`headers` and :meth:`current`."""
        ...

    async def headers(self, pool: SessionPool) -> tuple[Mapping[str, str], int]:
        """Headers proving the session (logging in first if needed) and their generation."""
        ...

    async def current(self) -> tuple[Mapping[str, str], int]:
        """The session's headers and generation, read just before sending (after waiting
        for a re-login under way, never sending a request itself), so a request that waited
        for admission never sends a session another task has replaced or is replacing."""
        ...

    async def refresh(self, pool: SessionPool, generation: int, error: APIError) -> None:
        """Replace the session that got ``error`` (401), once for all concurrent callers."""
        ...

    async def close(self, pool: SessionPool) -> None:
        """End the session if this client opened it."""
        ...


@attrs.define(slots=True)
class _Counters:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    waits: int = 0
    wait_seconds: float = 0.0
    logins: int = 0
    renewals: int = 0


class SessionPool:
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
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        self.auth: Auth = auth
        self.limiter: Limiter = limiter
        self.retry: RetryPolicy = retry
        self.timeout: float = float(timeout)
        self._trace_configs = list(trace_configs)
        if self._trace_configs and session is not None:
            raise ValueError("trace_configs go to the client's own aiohttp session; with "
                             "session= give them to that session instead "
                             "(aiohttp.ClientSession(trace_configs=[...]))")
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop it was opened on
        self._given_session = session
        self._session: aiohttp.ClientSession | None = session
        self._headers = dict(headers or {})
        self._connector_limit = connector_limit
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._quota_policy = quota
        self._quota_waits = quota_waits
        self._quota_limit: int | None = None
        self._counters = _Counters()
        self._closed = False
        self._deadlines = _Deadlines()
        self._wire_url = _WireURLs()

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

    # -- lifecycle -------------------------------------------------------------------
    async def open(self) -> None:
        """Create our aiohttp session (needs a running loop) unless the caller gave one.

        The pool belongs to the loop it is first opened on: opening it again from another
        loop raises :class:`RuntimeError` (see :func:`other_loop_error`)."""
        if self._closed:
            raise RuntimeError("this client is closed; create a new one")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise other_loop_error()
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._connector_limit, limit_per_host=0)
            self._session = aiohttp.ClientSession(
                connector=connector,
                # The per-attempt limit is enforced around each attempt (asyncio.timeout, which
                # covers the wait for a pooled connection, the send and the whole body read).
                # No sock_read: it could only fire after that limit, and aiohttp re-arms its
                # timer on every chunk received (two timers per request for nothing).
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout,
                                              sock_read=None),
                cookie_jar=aiohttp.DummyCookieJar(),
                raise_for_status=False,
                # Observability (OpenTelemetry, aiohttp tracing) on our own session: one
                # traced request per attempt, the send-once guarantee kept.
                trace_configs=self._trace_configs or None,
            )
            # aiohttp sends an idempotent request a second time, unseen, when the
            # connection drops before any answer (any connection, not only a reused
            # keep-alive one). Every send must be an attempt that the RetryPolicy bounds and
            # the quota estimate counts, so our session leaves that to the retry loop.
            # (A caller's session is left as it is: there one attempt may be two sends.)
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False

    async def close(self) -> None:
        """End the auth session (if ours), then close our aiohttp session. Idempotent.

        From another loop than the one the pool was opened on, it raises
        :class:`RuntimeError` and closes nothing (close it on its own loop), unless that
        loop is closed: then nothing can be ended there, and the pool is only marked
        closed (a warning says the server session was not ended)."""
        if self._closed:
            return
        if self._loop is not None and asyncio.get_running_loop() is not self._loop:
            if not self._loop.is_closed():
                raise other_loop_error()
            self._closed = True
            session, self._session = self._session, None
            log.warning("the event loop this client was opened on is closed: its server "
                        "session (if any) was not ended; use one client per event loop")
            if session is not None and session is not self._given_session:
                with contextlib.suppress(RuntimeError):  # its connections need that loop
                    await session.close()
            return
        self._closed = True
        try:
            if self._session is not None and not self._session.closed:
                try:
                    await self.auth.close(self)
                except ArenaAsyncError as exc:
                    log.warning("ending the session failed: %s", exc)
        finally:
            if self._session is not None and self._session is not self._given_session:
                await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session in use."""
        if self._session is None:
            raise RuntimeError(
                "the client is not open: use 'async with ArenaClient(...) as client:'"
                if not self._closed else "this client is closed; create a new one"
            )
        return self._session

    @property
    def quota(self) -> Quota | None:
        """The latest quota the server announced."""
        return self.limiter.quota

    @property
    def stats(self) -> Stats:
        """A snapshot of what this pool has done."""
        c = self._counters
        limiter = self.limiter.stats
        return Stats(
            requests=c.requests,
            retries=c.retries,
            rate_limited=c.rate_limited,
            server_errors=c.server_errors,
            transport_errors=c.transport_errors,
            quota_rejections=limiter.quota_rejections,
            waits=c.waits + limiter.waits,
            wait_seconds=c.wait_seconds + limiter.wait_seconds,
            logins=c.logins,
            renewals=c.renewals,
        )

    def count_login(self) -> None:
        """Called by auth implementations for each login they perform."""
        self._counters.logins += 1

    def count_renewal(self) -> None:
        """Called by auth implementations for each session renewal they perform."""
        self._counters.renewals += 1

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

        A connection failure raises :class:`TransportError` and a 5xx (or another status the
        retry policy retries) the matching :class:`APIError`: both are transient, and the
        request that needed the login retries it within its own attempts. Any other answer
        is returned for the auth to judge (2xx: a session; 4xx: refused credentials).
        """
        try:
            response = await self.send_once(request)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransportError(f"login {describe_failure(exc)}", method=request.method,
                                 url=request.display, brief=brief_failure(exc)) from None
        if 200 <= response.status < 300:
            self.count_login()
        if response.status in self.retry.retry_statuses or response.status >= 500:
            details = parse_error_body(response.body)
            raise error_for_status(response.status)(
                response.status, details, method=request.method, url=request.display,
                body_excerpt="" if details else excerpt(response.body))
        return response

    async def _transmit(self, request: Request, auth_headers: Mapping[str, str]) -> Response:
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
        async with session.request(
            request.method, self._wire_url(request.url), params=request.params, data=data,
            headers=headers, allow_redirects=False,
            raise_for_status=False,  # a caller's session may say True
        ) as resp:
            body = await resp.read()
        if debug:
            log.debug("%s %s -> %d (%.0f ms)", request.method, request.display, resp.status,
                      (time.perf_counter() - started) * 1000)
        return Response(resp.status, resp.headers, body)

    async def _timed_transmit(self, request: Request,
                              auth_headers: Mapping[str, str]) -> Response:
        """``_transmit`` within the pool's ``timeout``, as ``asyncio.timeout(self.timeout)``
        would bound it (the task is cancelled from outside; the cancellation becomes
        TimeoutError), on the pool's one shared timer instead of a timer per attempt."""
        attempt = self._deadlines.start(self.timeout)
        try:
            response = await self._transmit(request, auth_headers)
        except BaseException as exc:
            self._deadlines.end(attempt)
            if attempt.expired and attempt.task.uncancel() <= attempt.cancelling \
                    and isinstance(exc, asyncio.CancelledError):
                raise TimeoutError from exc
            raise
        self._deadlines.end(attempt)
        if attempt.expired:
            attempt.task.uncancel()
        return response

    # -- the full exchange ------------------------------------------------------------
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
                return await self._exchange(request, None, _Trail())
            # The common case, with no suspension before sending: a session at hand and a slot
            # free. The first attempt runs here; whatever it meets but a 2xx answer goes on in
            # _exchange as attempt 1 (the same steps the loop there would take).
            auth_headers, generation = ready
            failure: BaseException | None = None
            try:
                response = await self._timed_transmit(request, auth_headers)
            except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
                _report_failure(permit, exc)
                failure = exc
            except BaseException:
                limiter.release(permit)
                raise
            if failure is not None:  # (outside the except clause: no implicit __context__)
                limiter.release(permit)
                return await self._exchange(request, None, _Trail(),
                                            first=(failure, None, _OK, generation))
            try:
                verdict = self._report(permit, request, response)
            finally:
                limiter.release(permit)
            if verdict.kind is VerdictKind.OK:
                return response
            return await self._exchange(request, None, _Trail(),
                                        first=(None, response, verdict, generation))
        except RuntimeError as exc:
            # Only on the error path (nothing per request): a pool used from another loop
            # than its own fails deep in aiohttp or asyncio ("Event loop is closed", "got
            # Future attached to a different loop"); say what happened instead.
            if self._loop is not None and asyncio.get_running_loop() is not self._loop:
                raise other_loop_error() from exc
            raise

    def _report(self, permit: Permit, request: Request, response: Response) -> Verdict:
        """Tell the limiter what an answer said of the quota; return what the answer means."""
        if 200 <= response.status < 300:  # nothing to classify; no Quota built
            reading = read_quota(response.headers)
            if reading is None:
                permit.observe(None)
            else:
                self.limiter.observe_reading(permit, reading[0], reading[1], reading[2])
            return _OK
        quota = parse_quota(response.headers, self.quota_limit)
        verdict = classify(response.status, response.headers, response.body, request,
                           now=self.now(), retry_statuses=self.retry.retry_statuses,
                           quota=quota)
        permit.observe(quota, exhausted=verdict.kind is VerdictKind.QUOTA)
        return verdict

    async def _send_within(self, request: Request, deadline: float) -> Response:
        trail = _Trail()
        seconds = check_deadline(deadline)
        assert seconds is not None
        # The checks in _exchange run on the injected clock; this backstop, on the loop's
        # clock, also cuts what they cannot: a wait for admission, a slow login.
        backstop = asyncio.timeout(seconds)
        try:
            async with backstop:
                return await self._exchange(request, self._clock() + seconds, trail)
        except TimeoutError:
            if not backstop.expired():
                raise
            self._out_of_time(request, trail, f"the deadline of {seconds:g} s passed while "
                                              f"{trail.doing()}")

    async def _exchange(
        self, request: Request, deadline_at: float | None, trail: _Trail,
        first: tuple[BaseException | None, Response | None, Verdict, int] | None = None,
    ) -> Response:
        """The exchange, attempt by attempt. ``first``: attempt 1 was already made (by
        :meth:`send`), with this outcome: ``(failure, response, verdict, generation)``."""
        retry = self.retry
        attempt = 0
        reauths = 0
        quota_waits = 0
        while True:
            attempt += 1
            verdict: Verdict = _OK
            failure: BaseException | None = None
            response: Response | None = None
            generation = 0
            if first is not None:
                failure, response, verdict, generation = first
                first = None
                trail.sending(attempt)
                if response is not None:
                    trail.in_flight = False
            else:
                made = await self._attempt(request, attempt, deadline_at, trail)
                if made is None:  # the login failed; _after_auth_failure waited
                    continue
                failure, response, verdict, generation = made

            if failure is not None:
                self._counters.transport_errors += 1
                trail.failed(attempt, failure)
                sent = was_sent(failure)
                if (is_retryable_exception(failure) and attempt < retry.max_attempts
                        and may_retry(retry, request, sent=sent)):
                    await self._backoff(request, attempt, failure, retry_after=None,
                                        deadline_at=deadline_at, trail=trail)
                    continue
                raise trail.annotate(TransportError(
                    f"request {describe_failure(failure)}", method=request.method,
                    url=request.display, attempts=attempt,
                    brief=brief_failure(failure))) from failure

            assert response is not None
            if response.status == 429:
                self._counters.rate_limited += 1
            elif response.status >= 500:
                self._counters.server_errors += 1
            if verdict.kind is VerdictKind.OK:
                return response if attempt == 1 else attrs.evolve(response, attempts=attempt)
            error = verdict.error
            assert error is not None
            trail.failed(attempt, error)
            if verdict.kind is VerdictKind.REAUTH:
                assert isinstance(error, APIError)
                # The first re-login of a request is free: its replay is not a retry. A
                # later 401 (the new session expired too, or the server refuses every
                # session) costs an attempt, so re-logins stay bounded by max_attempts.
                if reauths and attempt >= retry.max_attempts:
                    raise trail.annotate(with_attempts(error, attempt)) from None
                trail.phase = "logging in again"
                try:
                    await self.auth.refresh(self, generation, error)
                except ArenaAsyncError as exc:
                    await self._after_auth_failure(request, attempt, exc, deadline_at, trail)
                    continue
                reauths += 1
                if reauths == 1:
                    attempt -= 1
                continue
            if verdict.kind is VerdictKind.QUOTA:
                assert isinstance(error, QuotaExhaustedError)
                waits = self._quota_policy is not None and self._quota_policy.on_exhausted == "wait"
                if waits and quota_waits < self._quota_waits:
                    quota_waits += 1  # the limiter now holds requests until the reset
                    attempt -= 1
                    continue
                raise error
            if verdict.kind is VerdictKind.RETRY and verdict.retry_after is not None \
                    and response.status in (429, 503) \
                    and verdict.retry_after <= retry.max_backoff:
                # The server asked this client to slow down: every task waits, not just this.
                self.limiter.hold_until(self._clock() + verdict.retry_after)
            if verdict.kind is VerdictKind.RETRY and attempt < retry.max_attempts \
                    and may_retry(retry, request, sent=True):
                retry_after = verdict.retry_after
                if retry_after is not None and retry_after > retry.max_backoff:
                    raise trail.annotate(with_attempts(error, attempt)) from None
                await self._backoff(request, attempt, error, retry_after=retry_after,
                                    deadline_at=deadline_at, trail=trail)
                continue
            raise trail.annotate(with_attempts(error, attempt)) from None

    async def _attempt(
        self, request: Request, attempt: int, deadline_at: float | None, trail: _Trail,
    ) -> tuple[BaseException | None, Response | None, Verdict, int] | None:
        """One attempt: log in if needed, wait for admission, send, report to the limiter.
        Returns ``(failure, response, verdict, generation)``, or None when the login
        failed and may be tried again (``_after_auth_failure`` has waited)."""
        auth_headers: Mapping[str, str] = {}
        generation = 0
        if request.auth:
            trail.phase = "logging in"
            try:
                await self.auth.headers(self)  # logs in (or renews) first when needed
            except ArenaAsyncError as exc:
                await self._after_auth_failure(request, attempt, exc, deadline_at, trail)
                return None
        verdict: Verdict = _OK
        failure: BaseException | None = None
        response: Response | None = None
        trail.phase = "waiting for admission"
        async with self.limiter.slot() as permit:
            if request.auth:
                auth_headers, generation = await self.auth.current()
            budget = self.timeout
            if deadline_at is not None:
                budget = min(budget, deadline_at - self._clock())
                if budget <= 0:
                    permit.unsent()
                    self._out_of_time(request, trail, "the deadline passed before the "
                                                      "request could be sent")
            trail.sending(attempt)
            try:
                if budget == self.timeout:  # the common case: the pool's shared timer
                    response = await self._timed_transmit(request, auth_headers)
                else:  # a deadline shortens this attempt
                    async with asyncio.timeout(budget):
                        response = await self._transmit(request, auth_headers)
            except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
                _report_failure(permit, exc)
                failure = exc
            else:
                trail.in_flight = False
                verdict = self._report(permit, request, response)
        return failure, response, verdict, generation

    @staticmethod
    def _out_of_time(request: Request, trail: _Trail, message: str) -> NoReturn:
        """Raise for a deadline that passed: between attempts, what the last attempt met
        when that was an answer from the server; else a TransportError."""
        last = trail.last
        if not trail.in_flight:
            if isinstance(last, QuotaExhaustedError):  # QuotaPolicy "wait" was waiting
                last.add_note(f"{message} (waiting for the quota to reset)")
                raise last from None
            if isinstance(last, APIError):
                raise trail.annotate(with_attempts(last, trail.attempts)) from None
        error = TransportError(message, method=request.method, url=request.display,
                               attempts=trail.attempts)
        raise trail.annotate(error, minimum=1) from last  # the message names the last step

    async def _after_auth_failure(self, request: Request, attempt: int, exc: ArenaAsyncError,
                                  deadline_at: float | None, trail: _Trail) -> None:
        """A login failed: wait and go on if it was transient and attempts are left, else
        raise it. Login is not counted against the quota and replaces the session, so
        trying it again is safe; the failed try costs this request an attempt."""
        transient = isinstance(exc, TransportError) or (
            isinstance(exc, APIError) and exc.status in self.retry.retry_statuses)
        trail.failed(attempt, exc, login=True)
        if not transient or attempt >= self.retry.max_attempts:
            # The login's own error, re-stated with the attempts this request made.
            raise trail.annotate(_restated(exc, attempt)) from None
        await self._backoff(request, attempt, exc, retry_after=None, deadline_at=deadline_at,
                            trail=trail)

    async def _backoff(self, request: Request, attempt: int, cause: BaseException, *,
                       retry_after: float | None, deadline_at: float | None,
                       trail: _Trail) -> None:
        delay = retry_after if retry_after is not None else backoff_delay(self.retry, attempt,
                                                                          self._rng)
        if deadline_at is not None and self._clock() + delay >= deadline_at:
            if isinstance(cause, APIError):
                raise trail.annotate(with_attempts(cause, attempt)) from None
            raise trail.annotate(TransportError(
                f"the deadline leaves no time to retry; last {describe_failure(cause)}",
                method=request.method, url=request.display, attempts=attempt,
                brief=brief_failure(cause))) from cause
        log.debug("retrying %s %s after %.2f s (attempt %d failed: %s)", request.method,
                  request.display, delay, attempt, type(cause).__name__)
        trail.phase = f"waiting {delay:.2f} s to retry"
        self._counters.retries += 1  # a replay after a re-login is not a retry: no wait
        self._counters.waits += 1
        self._counters.wait_seconds += delay
        await self._sleep(delay)


def other_loop_error() -> RuntimeError:
    """The error for a client used (or opened, or closed) from another event loop than the
    one it was opened on: its aiohttp session, connections and locks belong to that loop."""
    return RuntimeError(
        "this client was opened on another event loop than the one running now (a second "
        "asyncio.run(), or a client kept in a global or in a fixture of another loop "
        "scope?): its aiohttp session, connections and locks belong to the loop it was "
        "opened on. Use one client per event loop, opened inside it: 'async with "
        "ArenaClient(...) as client:' (or AkanaClient) in the coroutine that uses it"
    )


def _report_failure(permit: Permit, exc: BaseException) -> None:
    """Tell the limiter of an attempt that got no answer: maybe sent (spent), or not."""
    if was_sent(exc):
        permit.observe(None)
    else:
        permit.unsent()


def describe_failure(exc: BaseException) -> str:
    """A short account of one failed attempt, for messages: never headers or bodies."""
    if isinstance(exc, APIError):
        return f"HTTP {exc.status}" + (f" (code {exc.code})" if exc.code is not None else "")
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ArenaAsyncError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, aiohttp.ClientConnectorError) and not isinstance(
            exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return (f"failed: cannot connect to {exc.host}:{exc.port}: {brief_failure(exc)} "
                f"({type(exc).__name__})")
    detail = str(exc)
    return f"failed: {type(exc).__name__}" + (f": {detail}" if detail else "")


def brief_failure(exc: BaseException) -> str:
    """A few words for what one attempt met (``"connection refused"``, ``"HTTP 503"``,
    ``"timed out"``), for the note that lists the attempts: never a host, header or body."""
    if isinstance(exc, APIError):  # a code that only repeats the status is left out
        code = exc.code
        return f"HTTP {exc.status}" + (f" (code {code})" if code not in (None, exc.status)
                                       else "")
    if isinstance(exc, TransportError):
        return exc.brief
    if isinstance(exc, QuotaExhaustedError):
        return "quota exhausted"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return "TLS failed"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _os_words(exc.os_error, exc.os_error.strerror or "cannot connect")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "body cut short"
    if isinstance(exc, OSError):
        return _os_words(exc, type(exc).__name__)
    return type(exc).__name__


_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
    errno.EPIPE: "connection broken",
    errno.ETIMEDOUT: "connect timed out",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
}


def _os_words(exc: OSError, default: str) -> str:
    """``connection refused`` and the like from an OSError's errno; ``default`` else."""
    words = _ERRNO_WORDS.get(exc.errno) if exc.errno is not None else None
    if words is not None:
        return words
    if isinstance(exc, socket.gaierror) or "Name or service not known" in str(exc):
        return "host name not resolved"
    return default


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


_E = TypeVar("_E", bound=BaseException)


class _Attempt:
    __slots__ = ("cancelling", "done", "expired", "task", "when")

    def __init__(self, task: asyncio.Task[object], when: float) -> None:
        self.task = task
        self.when = when
        self.cancelling = task.cancelling()
        self.done = False
        self.expired = False


class _Deadlines:
    """One timer for every attempt bounded by the pool's ``timeout``.

    Those attempts all get the same budget, so their deadlines (loop clock) come in order:
    a deque holds them, and one ``TimerHandle``, armed for the oldest attempt not yet ended,
    cancels each attempt whose time is up (what ``asyncio.timeout`` does, with a timer per
    attempt). An attempt that ends is only marked; marked ones are dropped from the front,
    or all at once when they outnumber the live ones (a slow attempt at the front)."""

    __slots__ = ("_live", "_loop", "_queue", "_timer")

    def __init__(self) -> None:
        self._queue: deque[_Attempt] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._live = 0

    def start(self, budget: float) -> _Attempt:
        loop = self._loop
        # The task running on the pool's loop (no get_running_loop(): on Python 3.11 it
        # costs a getpid() system call); any other loop starts afresh.
        task = asyncio.current_task(loop) if loop is not None else None
        if task is None:
            loop = asyncio.get_running_loop()
            task = asyncio.current_task(loop)
            assert task is not None
            if loop is not self._loop:  # (a pool lives on one loop; be safe anyway)
                self._reset(loop)
        assert loop is not None
        attempt = _Attempt(task, loop.time() + budget)
        queue = self._queue
        queue.append(attempt)
        self._live += 1
        if self._timer is None:
            self._timer = loop.call_at(queue[0].when, self._fire)
        return attempt

    def end(self, attempt: _Attempt) -> None:
        if attempt.done:
            return
        attempt.done = True
        self._live -= 1
        queue = self._queue
        while queue and queue[0].done:
            queue.popleft()
        if len(queue) > 2 * self._live + 64:
            self._queue = deque(a for a in queue if not a.done)

    def _reset(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._loop = loop
        self._queue = deque(a for a in self._queue if not a.done)

    def _fire(self) -> None:
        self._timer = None
        loop = self._loop
        assert loop is not None
        now = loop.time()
        queue = self._queue
        while queue:
            head = queue[0]
            if head.done:
                queue.popleft()
            elif head.when <= now:
                queue.popleft()
                head.expired = True
                head.task.cancel()
            else:
                self._timer = loop.call_at(head.when, self._fire)
                break


class _Trail:
    """What one exchange has tried so far, for the error that ends it.

    A plain slotted class, built once per request: the phase of an attempt in flight is
    only put into words when an error needs it."""

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
