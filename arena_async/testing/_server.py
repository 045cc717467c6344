"""FakeServer: what FakeArena and FakeAkana share, written once.

The base owns the lifecycle (``start()`` returning the fake, ``close()``, ``async with``,
IPv4 or IPv6 hosts), :attr:`~FakeServer.url`, request recording (one
:class:`RecordedRequest` class for both fakes), ``latency``, the fault plan
(:mod:`arena_async.testing._faults`), the counters every fake keeps
(:class:`FakeServerStats`, with ``reset()``) and ``GET /_fake/stats``. Everything a
server speaks (routes, quota, sessions, OAuth, cookies, CSRF) stays in its own fake.

The middlewares run in this order: recording (and latency) outermost, then the fake's
outer middlewares (FakeArena's quota), then the faults, then the fake's inner middlewares
(its error answers and session checks), then the route handler.

Example::

    async with FakeArena() as arena, FakeAkana() as akana:
        for fake in (arena, akana):
            assert isinstance(fake, FakeServer)
            ...  # send requests
            print(fake.url, len(fake.requests), fake.stats.requests)
            fake.stats.reset()
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, ClassVar, Final, Self

import attrs
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict, MultiDictProxy

from ._faults import FAULT_KEY, FaultPlan, arena_error_body, faults_middleware

__all__ = ["STATS_PATH", "FakeServer", "FakeServerStats", "RecordedRequest"]

#: ``GET`` this path (outside any API prefix) for :attr:`FakeServer.stats` as JSON; the
#: request is not recorded, counted, delayed or faulted.
STATS_PATH: Final = "/_fake/stats"


def _authorization(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """The ``Authorization`` header as (scheme in lower case, credentials), or None."""
    value = headers.get("Authorization")
    if value is None:
        return None
    scheme, _, credentials = value.strip().partition(" ")
    return scheme.lower(), credentials.strip()


def _bearer(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    authorization = _authorization(headers)
    if authorization is None or authorization[0] != "bearer":
        return None
    return authorization[1]


def _empty_query() -> MultiDictProxy[str]:
    return MultiDictProxy(MultiDict())


def _empty_headers() -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict())


@attrs.frozen(slots=True)
class RecordedRequest:
    """One request as a fake received it (recorded before quota, faults and auth).

    - ``method``; ``path`` the raw path as sent (percent-encoding kept, no query).
    - ``query`` a read-only multidict (``query["offset"]`` is the first value,
      ``query.getall(name)`` every one; it compares equal to a plain ``dict`` of the
      same pairs); ``query_string`` the raw query text; :attr:`query_items` the pairs in
      the order sent.
    - ``headers`` (case-insensitive), ``cookies`` what the client sent; ``content`` the
      raw body bytes; :attr:`body` the body decoded as JSON (None when empty or not
      JSON); :meth:`json` decodes it or raises.
    - ``route`` the matched route like ``"GET /items/{item}/tickets"`` (FakeArena, without
      ``/v1``) or ``"GET /api/tickets/{ticket_id}"`` (FakeAkana); None when no route
      matched.
    - ``received_at`` the fake's clock when it arrived; ``status`` the status line sent
      (None while in flight or when the connection was dropped before it); ``fault`` the
      kind of the injected fault that fired, if any.
    - ``has_session`` whether it carried the fake's session credential (FakeArena: the
      ``arena_session_id`` header; FakeAkana: the ``AtmoAuthToken_{tenant}`` cookie);
      :attr:`has_bearer` whether it carried ``Authorization: Bearer``.
    - ``unknown_params`` the query names the route ignored (FakeAkana's
      ``GET /api/tickets``: a mis-cased ``apiid``, say).

    ``headers``, ``cookies`` and the body hold secrets (password, session id, token,
    CSRF): they stay out of ``repr``.

    Example: ``[r.query.get("offset") for r in fake.requests_to("GET /items")]``
    """

    method: str
    path: str
    query: MultiDictProxy[str] = attrs.field(factory=_empty_query)
    query_string: str = ""
    headers: CIMultiDictProxy[str] = attrs.field(factory=_empty_headers, repr=False)
    content: bytes = attrs.field(default=b"", repr=False)
    cookies: dict[str, str] = attrs.field(factory=dict, repr=False)
    route: str | None = None
    received_at: float = 0.0
    status: int | None = None
    fault: str | None = None
    has_session: bool = False
    unknown_params: list[str] = attrs.field(factory=list, repr=False)
    # FakeAkana's records answer ``body`` with the raw bytes for one more release.
    _bytes_body: bool = attrs.field(default=False, repr=False, eq=False, alias="bytes_body")

    @property
    def body(self) -> Any:
        """The body decoded as JSON; None when it is empty or not JSON.

        Deprecated for one release on FakeAkana's records, where ``body`` is still the
        raw bytes (with a ``DeprecationWarning``): read :attr:`content` for the bytes.
        """
        if self._bytes_body:
            warnings.warn(
                "FakeAkana's RecordedRequest.body is the raw bytes only until the next "
                "release, then the decoded JSON as on FakeArena: read .content for the "
                "bytes, or .json()",
                DeprecationWarning,
                stacklevel=2,
            )
            return self.content
        if not self.content:
            return None
        try:
            return json.loads(self.content)
        except ValueError:
            return None

    def json(self) -> Any:
        """The body decoded as JSON (``ValueError`` when it is not JSON)."""
        return json.loads(self.content)

    @property
    def query_items(self) -> list[tuple[str, str]]:
        """The query as ``(name, value)`` pairs, in the order sent."""
        return list(self.query.items())

    @property
    def has_bearer(self) -> bool:
        """True when the request carried an ``Authorization: Bearer ...`` header."""
        return _bearer(self.headers) is not None


@attrs.define(slots=True)
class FakeServerStats:
    """The counters every fake keeps; ``reset()`` zeroes them (not the gauge).

    ``requests`` counts every request received; ``by_route`` requests per route key
    (``"unmatched"`` for none); ``statuses`` answers per status; ``unauthorized`` the
    401s answered; ``faults_fired`` the requests a fault fired on; ``in_flight`` /
    ``max_in_flight`` the requests being handled now / at most at once (latency included).
    Each fake's own counters extend these (:class:`~arena_async.testing.FakeArenaStats`,
    :class:`~arena_async.testing.FakeAkanaStats`).

    Example: ``assert fake.stats.max_in_flight <= 8; fake.stats.reset()``
    """

    requests: int = 0
    by_route: Counter[str] = attrs.field(factory=Counter)
    statuses: Counter[int] = attrs.field(factory=Counter)
    unauthorized: int = 0
    faults_fired: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    def reset(self) -> None:
        """Zero every counter; ``max_in_flight`` restarts from the current ``in_flight``."""
        in_flight = self.in_flight
        for field in attrs.fields(type(self)):
            value = getattr(self, field.name)
            setattr(self, field.name, Counter() if isinstance(value, Counter) else 0)
        self.in_flight = in_flight
        self.max_in_flight = in_flight

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able copy."""
        data = attrs.asdict(self)
        data["by_route"] = dict(self.by_route)
        data["statuses"] = {str(k): v for k, v in self.statuses.items()}
        return data


#: Key under which the recording middleware stores the request's record for handlers.
RECORD_KEY: Final = web.RequestKey("arena_async.fake_record", RecordedRequest)


class FakeServer:
    """The base of :class:`~arena_async.testing.FakeArena` and
    :class:`~arena_async.testing.FakeAkana`: lifecycle, URL, recording, latency, faults
    and stats. Use one of those; the hooks a fake overrides are private.

    - ``host`` / ``port``: where to listen (``127.0.0.1`` and a free port by default;
      ``"::1"`` listens on IPv6 loopback and :attr:`url` brackets it).
    - ``latency``: seconds slept before each answer (real sleep; settable later).
    - ``faults``: a :class:`~arena_async.testing.FaultPlan` (a fresh one by default).
    - ``clock``: ``() -> epoch seconds``, read for ``received_at`` and the fake's timers.
    - ``ssl_context``: serve HTTPS with this server-side ``ssl.SSLContext`` (its
      certificate must name the host the client uses: ``127.0.0.1``, ``localhost``);
      :attr:`url` then starts with ``https://``. E.g. with ``trustme``::

          ca = trustme.CA()
          context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
          ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
          async with FakeArena(ssl_context=context) as fake:
              ...  # ArenaClient(base_url=fake.url, ssl=<path of ca.cert_pem>, ...)

    Example::

        fake = await FakeAkana(host="::1").start()   # start() returns the fake
        try:
            print(fake.url)                          # http://[::1]:<port>
        finally:
            await fake.close()
    """

    #: What :attr:`url` appends to ``http://host:port`` (FakeArena: ``"/v1"``).
    base_path: ClassVar[str] = ""
    #: Stripped from route keys (FakeArena: ``"/v1"``).
    _route_prefix: ClassVar[str] = ""
    #: Records of this fake answer ``body`` with the raw bytes (deprecated: FakeAkana).
    _bytes_body: ClassVar[bool] = False

    stats: FakeServerStats
    """The counters; each fake sets its own subclass of :class:`FakeServerStats`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        faults: FaultPlan | None = None,
        clock: Callable[[], float] = time.time,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if not host:
            raise ValueError("host must be a non-empty host name or address")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer from 0 to 65535, not {port!r}")
        if not latency >= 0:
            raise ValueError("latency must be >= 0")
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise ValueError(f"ssl_context must be an ssl.SSLContext or None, got "
                             f"{type(ssl_context).__name__}")
        self._ssl_context = ssl_context
        self._host = host
        self._port = port
        self._bound_port: int | None = None
        #: Seconds slept before each answer; settable at any time.
        self.latency: float = float(latency)
        self._faults = faults if faults is not None else FaultPlan()
        self._clock = clock
        self._requests: list[RecordedRequest] = []
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> Self:
        """Listen on ``host``:``port``; returns the fake. :attr:`url` is valid afterwards.

        Example: ``fake = await FakeArena().start()``
        """
        name = type(self).__name__
        if self._runner is not None:
            raise RuntimeError(f"{name} is already started")
        app = web.Application(middlewares=self._middlewares(),
                              handler_args=self._handler_args() or None)
        self._setup_app(app)
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port, ssl_context=self._ssl_context)
            await site.start()
            port: int = runner.addresses[0][1]
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._bound_port = port
        host = f"[{self._host}]" if ":" in self._host else self._host  # IPv6 literal
        scheme = "https" if self._ssl_context is not None else "http"
        self._url = f"{scheme}://{host}:{port}{self.base_path}"
        self._logger.debug("%s listening on %s", name, self._url)
        return self

    async def close(self) -> None:
        """Stop listening and drop open connections. Safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            self._logger.debug("%s on %s closed", type(self).__name__, self._url)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self._url!r})"

    @property
    def _logger(self) -> logging.Logger:
        # The fake's own module logger (``arena_async.testing._fake_arena``, ...): what a
        # fake does is logged under its name, as the logging guide's table (docs/logging.md) says.
        return logging.getLogger(type(self).__module__)

    @property
    def url(self) -> str:
        """``http://<host>:<port>`` (``https://`` with ``ssl_context``) plus
        :attr:`base_path`; once started (and after :meth:`close`, when it points at
        nothing)."""
        if self._url is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._url

    @property
    def host(self) -> str:
        """The host listened on, as given (``"::1"``, not bracketed)."""
        return self._host

    @property
    def port(self) -> int:
        """The port listened on (before :meth:`start`: the one asked for, 0 for any)."""
        return self._bound_port if self._bound_port is not None else self._port

    @property
    def clock(self) -> Callable[[], float]:
        """The clock the fake reads (``() -> epoch seconds``)."""
        return self._clock

    @property
    def faults(self) -> FaultPlan:
        """The fault plan applied to every request: ``fake.faults.add(Fault(...))``."""
        return self._faults

    # ------------------------------------------------------------------ recording

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received (logins included), in arrival order (a copy)."""
        return list(self._requests)

    @property
    def paths(self) -> list[str]:
        """The raw path of every request received, in arrival order."""
        return [r.path for r in self._requests]

    def requests_to(self, route: str) -> list[RecordedRequest]:
        """The requests that matched ``route``, e.g. ``"GET /items/{item}/trainingrecords"``."""
        return [r for r in self._requests if r.route == route]

    def clear_requests(self) -> None:
        """Forget the recorded requests (each fake says what else it clears)."""
        self._requests.clear()

    # ------------------------------------------------------------------ hooks

    def _setup_app(self, app: web.Application) -> None:
        """Add the fake's routes (and signals) to ``app``."""
        raise NotImplementedError

    def _handler_args(self) -> dict[str, Any]:
        """Arguments of aiohttp's request handler (``max_line_size``, ...)."""
        return {}

    def _outer_middlewares(self) -> list[Middleware]:
        """Middlewares between recording and the faults (they see faulted requests)."""
        return []

    def _inner_middlewares(self) -> list[Middleware]:
        """Middlewares between the faults and the handlers (they see what faults let by)."""
        return []

    def _expire_request_session(self, request: web.Request) -> None:
        """End the session (or token) ``request`` carries: an ``expire_session`` fault."""

    def _fault_error_body(self, status: int) -> Any:
        """The default body of a ``status`` fault."""
        return arena_error_body(status)

    def _has_session(self, request: web.Request) -> bool:
        """Whether ``request`` carries this fake's session credential."""
        return False

    # ------------------------------------------------------------------ the app

    def _middlewares(self) -> list[Middleware]:
        return [
            self._record_middleware,
            *self._outer_middlewares(),
            faults_middleware(
                self._faults,
                expire=self._expire_request_session,
                error_body=self._fault_error_body,
            ),
            *self._inner_middlewares(),
        ]

    def _route_key(self, request: web.Request) -> str | None:
        if request.match_info.http_exception is not None:
            return None
        resource = request.match_info.route.resource
        if resource is None:  # pragma: no cover - every route has a resource
            return None
        return f"{request.method} {resource.canonical.removeprefix(self._route_prefix)}"

    @web.middleware
    async def _record_middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        if request.path == STATS_PATH:  # test plumbing: no recording, faults or quota
            return web.json_response(self.stats.as_dict())
        path, _, query_string = request.raw_path.partition("?")
        route = self._route_key(request)
        record = RecordedRequest(
            method=request.method,
            path=path,
            query=MultiDictProxy(MultiDict(request.query)),
            query_string=query_string,
            headers=CIMultiDictProxy(CIMultiDict(request.headers)),
            content=await request.read(),
            cookies=dict(request.cookies),
            route=route,
            received_at=self._clock(),
            has_session=self._has_session(request),
            bytes_body=self._bytes_body,
        )
        self._requests.append(record)
        request[RECORD_KEY] = record
        stats = self.stats
        stats.requests += 1
        stats.by_route[route or "unmatched"] += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        status: int | None = None
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            stats.in_flight -= 1
            fault = request.get(FAULT_KEY)
            if fault is not None:
                stats.faults_fired += 1
                if fault.kind == "reset_before_headers":
                    status = None
            if status is not None:
                stats.statuses[status] += 1
                if status == 401:
                    stats.unauthorized += 1
            self._complete(record, status, None if fault is None else fault.kind)

    def _complete(self, record: RecordedRequest, status: int | None, fault: str | None) -> None:
        # Scan from the end: the record is almost always among the last few.
        for index in range(len(self._requests) - 1, -1, -1):
            if self._requests[index] is record:
                self._requests[index] = attrs.evolve(record, status=status, fault=fault)
                return
