"""Fault injection for the fake servers: what can go wrong on the wire, on a schedule.

A :class:`FaultPlan` holds :class:`Fault` rules; :func:`faults_middleware` turns the plan
into an ``aiohttp.web`` middleware that both fakes install. Each request is offered to
the rules in the order they were added; the first rule that matches *and* is due fires,
and later rules do not see that request.

Example::

    plan = FaultPlan(seed=7)
    plan.add(Fault("status", status=503, retry_after="1", times=2))
    plan.add(Fault("reset_before_headers", path=r"/trainingrecords$", every=3))
    app = web.Application(middlewares=[faults_middleware(plan)])
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import socket
import struct
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, Protocol, get_args

import attrs
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

__all__ = [
    "FAULT_KEY",
    "FAULT_KINDS",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "arena_error_body",
    "faults_middleware",
]

logger = logging.getLogger(__name__)

FaultKind = Literal[
    "status",
    "reset_before_headers",
    "reset_after_headers",
    "truncate",
    "invalid_json",
    "wrong_shape",
    "slow_headers",
    "slow_body",
    "expire_session",
    "huge_body",
]

#: Every kind of fault :class:`Fault` accepts.
FAULT_KINDS: Final[frozenset[str]] = frozenset(get_args(FaultKind))


#: Default body of an ``invalid_json`` fault: JSON cut off mid-key.
INVALID_JSON_BODY: Final = b'{"count": 1, "resu'
#: Default body of a ``wrong_shape`` fault: valid JSON, wrong types.
WRONG_SHAPE_BODY: Final[dict[str, Any]] = {"count": "x", "results": {}}
#: Body used by ``truncate`` / ``reset_after_headers`` when the real answer has no body.
FILLER_BODY: Final = b'{"count": 1, "results": [{"guid": "FILLERFILLERFILLER00"}]}'

_JSON = "application/json"


class _RequestLike(Protocol):
    @property
    def method(self) -> str: ...

    @property
    def path(self) -> str: ...


def arena_error_body(status: int, code: int | None = None, message: str | None = None) -> Any:
    """An Arena-style error body: ``{"status", "errors": [{"code", "message"}]}``.

    Example: ``arena_error_body(503)`` → ``{"status": 503, "errors": [{"code": 503, ...}]}``.
    """
    return {
        "status": status,
        "errors": [
            {
                "code": status if code is None else code,
                "message": message or f"Injected fault: HTTP {status}.",
            }
        ],
    }


def _check_kind(_inst: object, _attr: object, value: str) -> None:
    if value not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {value!r}; expected one of {sorted(FAULT_KINDS)}")


def _check_regex(_inst: object, _attr: object, value: str | None) -> None:
    if value is not None:
        re.compile(value)


def _to_opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _to_header_items(
    value: Mapping[str, str] | tuple[tuple[str, str], ...],
) -> tuple[tuple[str, str], ...]:
    items = value.items() if isinstance(value, Mapping) else value
    return tuple((str(k), str(v)) for k, v in items)


def _to_upper_opt(value: str | None) -> str | None:
    return None if value is None else value.upper()


@attrs.frozen(slots=True)
class Fault:
    """One fault rule: what goes wrong, for which requests, and how often.

    What (``kind``):

    - ``"status"``: answer ``status`` (default 503) with ``body`` (default an Arena-style
      error body) and, when given, a ``Retry-After: retry_after`` header. The request is
      not processed.
    - ``"reset_before_headers"``: drop the connection (TCP reset) without answering. The
      request is not processed.
    - ``"reset_after_headers"``: process the request, send the status line, headers and a
      ``Content-Length``, then half of the body, then reset the connection.
    - ``"truncate"``: process the request, then send a body shorter than its
      ``Content-Length`` and close the connection cleanly (a ``ContentLengthError``).
    - ``"invalid_json"``: answer 200 with ``body`` (default ``{"count": 1, "resu``).
      The request is not processed.
    - ``"wrong_shape"``: answer 200 with valid JSON of the wrong shape (``body``, default
      ``{"count": "x", "results": {}}``). The request is not processed.
    - ``"slow_headers"``: sleep ``delay`` seconds, then process and answer normally.
    - ``"slow_body"``: process the request, send the headers, sleep ``delay``, send the body.
    - ``"expire_session"``: expire the request's session (the fake's callback), then
      process normally, so it meets the fake's usual 401.
    - ``"huge_body"``: answer 200 with a JSON body of ``size`` bytes (default 1 GiB),
      generated while it is sent (the fake holds none of it), in 64 KiB chunks: chunked
      with no ``Content-Length`` (``chunked=True``, the default) or announced by a
      ``Content-Length`` (``chunked=False``). A client that stops reading ends it. The
      request is not processed. For testing a client's answer size limit.

    Which requests: ``method`` (any when None), ``path`` (a regex *searched* in the
    request path; any when None) and ``query`` (a regex searched in the decoded query,
    ``name=value`` pairs joined by ``&``; any when None), e.g.
    ``query=r'"value":"PN-7"'`` for the lookups whose ``criteria`` hold number PN-7.

    When: of the matching requests, the first ``after`` are skipped; then every
    ``every``-th one is a candidate; a candidate fires with probability ``rate`` (drawn
    from the plan's seeded RNG; always when None), at most ``times`` times in all.

    ``body`` (``truncate`` / ``reset_after_headers`` too: it replaces the real answer) is
    JSON-able data or raw ``bytes``; ``headers`` are extra response headers of ``status``
    faults.

    Example::

        Fault("status", status=429, retry_after="2", path=r"/tickets", times=1)
        Fault("slow_body", delay=0.5, every=10)
        Fault("huge_body", size=2**30, times=1)   # a 1 GiB streamed answer
    """

    kind: FaultKind = attrs.field(validator=_check_kind)
    status: int = attrs.field(
        default=503,
        validator=attrs.validators.and_(attrs.validators.ge(100), attrs.validators.le(599)),
    )
    retry_after: str | None = attrs.field(default=None, converter=_to_opt_str)
    body: Any = attrs.field(default=None, repr=False)
    headers: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_to_header_items)
    delay: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    method: str | None = attrs.field(default=None, converter=_to_upper_opt)
    path: str | None = attrs.field(default=None, validator=_check_regex)
    query: str | None = attrs.field(default=None, validator=_check_regex, kw_only=True)
    times: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(1))
    )
    every: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    rate: float | None = attrs.field(
        default=None,
        validator=attrs.validators.optional(
            attrs.validators.and_(attrs.validators.ge(0.0), attrs.validators.le(1.0))
        ),
    )
    after: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    size: int = attrs.field(default=2**30, validator=attrs.validators.ge(0))
    chunked: bool = True

    def matches(self, method: str, path: str, query: str = "") -> bool:
        """True when ``method``, ``path`` and the decoded ``query`` are in this rule's scope
        (schedule aside)."""
        if self.method is not None and self.method != method.upper():
            return False
        if self.query is not None and re.search(self.query, query) is None:
            return False
        return self.path is None or re.search(self.path, path) is not None


#: Key under which the middleware stores the fired :class:`Fault` on the ``web.Request``.
FAULT_KEY: Final = web.RequestKey("fault", Fault)


@attrs.define(slots=True)
class _Slot:
    fault: Fault
    matched: int = 0
    fired: int = 0


class FaultPlan:
    """An ordered set of :class:`Fault` rules with their counters and a seeded RNG.

    ``pick(request)`` decides, for one request, which fault (if any) fires; it is called
    by :func:`faults_middleware` and may be called directly to test a schedule.

    Example::

        plan = FaultPlan(seed=1)
        plan.add(Fault("status", status=502, every=2))
        async with FakeArena(faults=plan) as fake:
            ...
        assert plan.fired["status"] == 3
    """

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self._slots: list[_Slot] = []
        self.fired: Counter[str] = Counter()
        """Fires per fault kind since creation or :meth:`clear`."""

    def __repr__(self) -> str:
        return f"FaultPlan(seed={self._seed}, faults={len(self._slots)}, fired={self.total_fired})"

    def __len__(self) -> int:
        return len(self._slots)

    @property
    def faults(self) -> tuple[Fault, ...]:
        """The rules, in the order they are tried."""
        return tuple(slot.fault for slot in self._slots)

    @property
    def total_fired(self) -> int:
        """Fires of every kind."""
        return sum(self.fired.values())

    def add(self, fault: Fault) -> Fault:
        """Append a rule (tried after those already added) and return it."""
        self._slots.append(_Slot(fault))
        return fault

    def remove(self, fault: Fault) -> None:
        """Remove the first rule equal to ``fault``; ``ValueError`` if absent."""
        for index, slot in enumerate(self._slots):
            if slot.fault == fault:
                del self._slots[index]
                return
        raise ValueError(f"{fault!r} is not in the plan")

    def clear(self) -> None:
        """Remove every rule, zero the counters and re-seed the RNG."""
        self._slots.clear()
        self.fired.clear()
        self._rng = random.Random(self._seed)

    def fired_count(self, fault: Fault) -> int:
        """How often the first rule equal to ``fault`` has fired (0 if absent)."""
        for slot in self._slots:
            if slot.fault == fault:
                return slot.fired
        return 0

    def pick(self, request: _RequestLike) -> Fault | None:
        """The fault that fires for ``request`` (anything with ``method`` and ``path``).

        Counts the request against each rule it reaches, so call it once per request.
        """
        query = _decoded_query(request)
        for slot in self._slots:
            fault = slot.fault
            if not fault.matches(request.method, request.path, query):
                continue
            slot.matched += 1
            position = slot.matched - fault.after
            if position <= 0 or position % fault.every != 0:
                continue
            if fault.times is not None and slot.fired >= fault.times:
                continue
            if fault.rate is not None and self._rng.random() >= fault.rate:
                continue
            slot.fired += 1
            self.fired[fault.kind] += 1
            return fault
        return None


def _decoded_query(request: _RequestLike) -> str:
    """The request's query, decoded, as ``name=value`` pairs joined by ``&``."""
    query = getattr(request, "query", None)
    if not isinstance(query, Mapping):
        return ""
    items = query.items()
    return "&".join(f"{name}={value}" for name, value in items)


def _encode(body: Any) -> bytes:
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    return json.dumps(body).encode()


def _reset(request: web.Request, *, hard: bool) -> None:
    """Close the connection; ``hard`` sends a TCP RST (SO_LINGER 0) rather than a FIN."""
    transport = request.transport
    if transport is None:
        return
    if hard:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # a platform without SO_LINGER: plain close
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.close()


async def _materialize(handler: Handler, request: web.Request) -> tuple[int, bytes, Any]:
    """Run the handler; return (status, body, headers) of its (unsent) answer."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    body = response.body if isinstance(response, web.Response) else None
    raw = body if isinstance(body, bytes) else b""
    return response.status, raw, response.headers


async def _send_partial(
    request: web.Request, status: int, body: bytes, headers: Any, *, hard: bool
) -> web.StreamResponse:
    """Announce ``len(body)`` bytes, send half of them, then drop the connection."""
    response = web.StreamResponse(status=status)
    response.headers["Content-Type"] = headers.get("Content-Type", _JSON)
    response.content_length = len(body)
    await response.prepare(request)
    if request.method != "HEAD":  # a HEAD answer has no body on the wire
        await response.write(body[: len(body) // 2])
    _reset(request, hard=hard)
    return response


_HUGE_HEAD: Final = b'{"count": 0, "results": [], "padding": "'
_HUGE_TAIL: Final = b'"}'
_HUGE_CHUNK: Final = b"x" * 65536


async def _send_huge(request: web.Request, fault: Fault) -> web.StreamResponse:
    """``fault.size`` bytes of JSON, made as they are sent; ends quietly when the client
    stops reading (the point of the fault)."""
    filler = max(0, fault.size - len(_HUGE_HEAD) - len(_HUGE_TAIL))
    response = web.StreamResponse(status=200)
    response.headers["Content-Type"] = _JSON
    if fault.chunked:
        response.enable_chunked_encoding()
    else:
        response.content_length = len(_HUGE_HEAD) + filler + len(_HUGE_TAIL)
    await response.prepare(request)
    if request.method == "HEAD":
        return response
    try:
        await response.write(_HUGE_HEAD)
        while filler > 0:
            step = min(filler, len(_HUGE_CHUNK))
            await response.write(_HUGE_CHUNK if step == len(_HUGE_CHUNK)
                                 else _HUGE_CHUNK[:step])
            filler -= step
        await response.write(_HUGE_TAIL)
        await response.write_eof()
    except ConnectionError:
        logger.debug("huge_body: the client stopped reading")
    return response


def faults_middleware(
    plan: FaultPlan,
    *,
    expire: Callable[[web.Request], None] | None = None,
    error_body: Callable[[int], Any] = arena_error_body,
) -> Middleware:
    """An ``aiohttp.web`` middleware that applies the faults ``plan`` picks.

    ``expire(request)`` ends the request's session (for ``expire_session`` faults; when
    None those faults only count). ``error_body(status)`` builds the default body of
    ``status`` faults (Arena-style by default; FakeAkana passes its own). The fired
    :class:`Fault` is stored as ``request[FAULT_KEY]`` for outer middlewares.

    Install it inside any middleware that must see faulted requests (quota, recording).

    Example::

        app = web.Application(middlewares=[faults_middleware(plan, expire=fake.expire)])
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = plan.pick(request)
        if fault is None:
            return await handler(request)
        request[FAULT_KEY] = fault
        logger.debug("fault %s fires on %s %s", fault.kind, request.method, request.path)
        kind = fault.kind
        if kind == "status":
            body = error_body(fault.status) if fault.body is None else fault.body
            headers = dict(fault.headers)
            if fault.retry_after is not None:
                headers["Retry-After"] = fault.retry_after
            return web.Response(
                status=fault.status, body=_encode(body), content_type=_JSON, headers=headers
            )
        if kind == "reset_before_headers":
            _reset(request, hard=True)
            return web.Response(status=500)  # never written: the transport is gone
        if kind in ("invalid_json", "wrong_shape"):
            default: Any = INVALID_JSON_BODY if kind == "invalid_json" else WRONG_SHAPE_BODY
            body = default if fault.body is None else fault.body
            return web.Response(status=200, body=_encode(body), content_type=_JSON)
        if kind == "slow_headers":
            await asyncio.sleep(fault.delay)
            return await handler(request)
        if kind == "expire_session":
            if expire is not None:
                expire(request)
            return await handler(request)
        if kind == "huge_body":
            return await _send_huge(request, fault)
        status, raw, headers = await _materialize(handler, request)
        if fault.body is not None:
            raw = _encode(fault.body)
        if kind == "slow_body":
            response = web.StreamResponse(status=status)
            if "Content-Type" in headers:
                response.headers["Content-Type"] = headers["Content-Type"]
            response.content_length = len(raw)
            await response.prepare(request)
            await asyncio.sleep(fault.delay)
            if request.method != "HEAD":
                await response.write(raw)
            await response.write_eof()
            return response
        if len(raw) < 2:  # nothing to cut in half (204, empty 200): send a filler body
            status, raw = 200, FILLER_BODY
        return await _send_partial(
            request, status, raw, headers, hard=(kind == "reset_after_headers")
        )

    return middleware
