"""What a :class:`~arena_async._transport.Transport` is made of and hands out: the aiohttp
session it creates, the :class:`Response` of an attempt, the :class:`Auth` protocol its
clients implement and the narrow :class:`AuthTransport` an auth sees of the transport, and
the error for a pool used from another event loop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import aiohttp
import attrs

from .errors import AnswerTooLargeError, APIError

if TYPE_CHECKING:
    import ssl
    from datetime import datetime

    from ._protocol import Request

__all__ = ["DEFAULT_MAX_ANSWER_SIZE", "Auth", "AuthTransport", "Response", "new_session",
           "other_loop_error", "read_body"]

#: The largest answer a client reads by default: 64 MiB, far above any real page (400
#: full items are a few MB at most) and small enough that a runaway body cannot exhaust
#: memory.
DEFAULT_MAX_ANSWER_SIZE = 64 * 2**20


@attrs.frozen(slots=True)
class Response:
    """A complete answer: status, headers and the whole body; ``attempts`` it took, and the
    ``generation`` of the session (or token) the answered attempt carried (0: none)."""

    status: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)
    attempts: int = 1
    generation: int = 0


class AuthTransport(Protocol):
    """All an auth uses of the transport it authenticates: one login or logout attempt
    (outside admission and retries: the request that needed the login owns those), the
    clock, and what login taught about the quota. Nothing else of the transport (its
    limiter, its policies, its counters) is reached into: an auth is tested against any
    object with these members."""

    #: The workspace's 24-hour request limit, when login told it (set by the Arena auth).
    quota_limit: int | None

    def now(self) -> datetime:
        """The injected wall clock, as an aware datetime (cookie and token lifetimes)."""
        ...

    async def send_once(self, request: Request,
                        headers: Mapping[str, str] | None = None) -> Response:
        """One attempt, no admission, no retry (a logout, a token renewal)."""
        ...

    async def login_once(self, request: Request) -> Response:
        """One login attempt; a connection failure or a transient status raises (the
        request that needed the login retries it within its own attempts)."""
        ...

    def is_transient(self, status: int) -> bool:
        """Whether an answer of ``status`` is worth another try under the retry policy."""
        ...

    def budget_spent(self) -> bool:
        """Whether the quota estimate leaves nothing above the reserve (a logout, which
        counts, is then skipped)."""
        ...

    def count_renewal(self) -> None:
        """Count one renewal of the credential (for the transport's statistics)."""
        ...


class Auth(Protocol):
    """How a client authenticates; the pool calls it, it calls back ``pool.send_once``."""

    def ready(self, pool: AuthTransport) -> tuple[Mapping[str, str], int] | None:
        """The session's headers and generation when a request can be sent with them at
        once: a session is held, and no login, renewal or re-login is due or under way.
        None otherwise: the pool then goes through :meth:`headers` and :meth:`current`."""
        ...

    async def headers(self, pool: AuthTransport) -> tuple[Mapping[str, str], int]:
        """Headers proving the session (logging in first if needed) and their generation."""
        ...

    async def current(self) -> tuple[Mapping[str, str], int]:
        """The session's headers and generation, read just before sending (after waiting
        for a re-login under way, never sending a request itself), so a request that waited
        for admission never sends a session another task has replaced or is replacing."""
        ...

    async def refresh(self, pool: AuthTransport, generation: int, error: APIError) -> None:
        """Replace the session that got ``error`` (401), once for all concurrent callers."""
        ...

    async def close(self, pool: AuthTransport) -> None:
        """End the session if this client opened it."""
        ...


async def read_body(resp: aiohttp.ClientResponse, limit: int, method: str, url: str) -> bytes:
    """The whole body of ``resp``, at most ``limit`` bytes, else :class:`AnswerTooLargeError`.

    A ``Content-Length`` over the limit is refused before reading; a body without one
    (chunked, or compressed: its length is not the decoded size) is counted as it streams
    and reading stops at the limit, so no more than the limit and one chunk is ever held.
    Leaving the response unread closes its connection (aiohttp never reuses it).

    Example: ``body = await read_body(resp, 64 * 2**20, "GET", "/items")``"""
    length = resp.content_length
    if length is not None and length > limit:
        raise AnswerTooLargeError(limit=limit, size=length, declared=True, method=method,
                                  url=url)
    if length is not None and "Content-Encoding" not in resp.headers:
        return await resp.read()  # the parser reads no more than Content-Length
    # A list, not a growing bytearray: growing copies the body, briefly holding it twice.
    chunks: list[bytes] = []
    size = 0
    content = resp.content
    while chunk := await content.readany():
        size += len(chunk)
        if size > limit:
            raise AnswerTooLargeError(limit=limit, size=size, declared=False, method=method,
                                      url=url)
        chunks.append(chunk)
    return b"".join(chunks)


def new_session(*, timeout: float, limit: int,
                trace_configs: Sequence[aiohttp.TraceConfig] = (),
                ssl: ssl.SSLContext | bool = True) -> aiohttp.ClientSession:
    """The pool's own aiohttp session (call it inside the running loop): ``limit``
    connections, ``timeout`` to connect, no cookies, no status raised, every send one
    attempt; ``ssl`` verifies servers' certificates (``_network.Network.ssl``).

    Example: ``session = new_session(timeout=30.0, limit=100)``."""
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, ssl=ssl)
    session = aiohttp.ClientSession(
        connector=connector,
        # The per-attempt limit is enforced around each attempt (the shared AttemptTimer
        # or asyncio.timeout, which
        # covers the wait for a pooled connection, the send and the whole body read).
        # No sock_read: it could only fire after that limit, and aiohttp re-arms its
        # timer on every chunk received (two timers per request for nothing).
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout,
                                      sock_read=None),
        cookie_jar=aiohttp.DummyCookieJar(),
        raise_for_status=False,
        # Observability (OpenTelemetry, aiohttp tracing) on our own session: one
        # traced request per attempt, the send-once guarantee kept.
        trace_configs=list(trace_configs) or None,
    )
    # aiohttp sends an idempotent request a second time, unseen, when the
    # connection drops before any answer (any connection, not only a reused
    # keep-alive one). Every send must be an attempt that the RetryPolicy bounds and
    # the quota estimate counts, so our session leaves that to the retry loop.
    # (A caller's session is left as it is: there one attempt may be two sends.)
    if hasattr(session, "_retry_connection"):
        session._retry_connection = False
    return session


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
