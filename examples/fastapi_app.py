"""A FastAPI service in front of Arena, run with several workers on one integration user.

The pattern:

- one :class:`~arena_async.ArenaClient` per worker process, created in the lifespan: one
  connection pool, one quota budget and one concurrency limit for all of its requests (a
  client per request would log in per request);
- every worker of the app shares **one** Arena session and one quota ledger through the
  library's default share: Arena cancels a user's earlier session at each login, so
  workers that did not share would log each other out (each 401 a login that cancels
  another worker's session), and the quota belongs to the whole workspace. The default
  share is a private SQLite file in the OS user's state folder (every worker, and every
  program of this user on the machine, finds the same one), or the URL in
  ``ARENA_SHARE`` (``redis://host:6379/0`` when the app runs on several machines,
  ``none`` for no share), which the library reads itself;
- a ``QuotaPolicy(reserve=...)`` so the service never spends the workspace's last
  requests, and answers 503 with ``Retry-After`` when the quota is spent instead of
  waiting inside a request;
- streaming: training records go out as JSON lines while later pages are still being
  fetched; the first page is fetched before the response starts, so a 404 or a spent
  quota still gets a proper status;
- error mapping: arena_async's exception hierarchy to HTTP statuses. Refused credentials
  (:class:`~arena_async.LoginError`) are 502 ``upstream_credentials``; a session that
  Arena rejected although the login worked (another login of the same user cancelled it:
  a process outside the share) is 503 ``upstream_session``, with a hint naming ``share=``;
  an unknown item (Arena answers 400 with code 3011 for a GUID it does not know) is 404;
- a shared answer cache when ``ARENA_CACHE_TTL`` is set (seconds): every worker reuses
  every answer through the share, and an answer missing everywhere is fetched once across
  the workers, so a page viewed again costs no Arena request. A response built from a
  cached answer sends ``Age`` (its seconds since Arena gave it); when Arena cannot answer
  (the quota spent, a 5xx after the retries, the network down), an answer up to
  ``ARENA_CACHE_STALE`` seconds older than the TTL is served instead of an error, marked
  with ``Warning: 110 - "Response is Stale"``: with the quota spent the service keeps
  answering what it cached (only an item it never cached gets the 503);
- ``/healthz`` proves the Arena session (login is lazy, so a process with wrong
  credentials would otherwise look healthy): it answers 200 only after an Arena request
  with the session succeeded, spending at most one cheap request (``GET /items?limit=1``)
  per worker every ``ARENA_HEALTH_TTL`` seconds (default 60); wrong credentials give 502.

Configuration from the environment: ``ARENA_EMAIL``, ``ARENA_PASSWORD``,
``ARENA_WORKSPACE_ID`` (or ``ARENA_SESSION_ID``, which cannot be shared),
``ARENA_BASE_URL`` (default: the US region), ``ARENA_SHARE`` (read by the library, see
above),
``ARENA_QUOTA_RESERVE`` (default 100), ``ARENA_MAX_CONCURRENCY`` (default 16),
``ARENA_HEALTH_TTL`` (default 60), ``ARENA_CACHE_TTL`` (default: no cache),
``ARENA_CACHE_STALE`` (default 86400; with ``ARENA_CACHE_TTL`` only).

Run it against the built-in fake server::

    arena-async fake-server --no-akana        # prints the ARENA_* variables to export
    uvicorn examples.fastapi_app:app --workers 4   # after exporting them
    curl localhost:8000/items/<guid>/training-records
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import attrs
from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from arena_async import (
    AnswerInfo,
    APIError,
    ArenaAsyncError,
    ArenaClient,
    AuthenticationError,
    BadRequestError,
    CachePolicy,
    LoginError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExhaustedError,
    QuotaPolicy,
    RateLimitError,
    ShareUnavailableError,
    TrainingRecord,
)

__all__ = ["app", "create_app", "settings_from_env"]

#: Arena's code for a GUID it does not know (answered with HTTP 400, not 404).
UNKNOWN_GUID = 3011
SHARE_HINT = ("Arena rejected the session although the login worked: another login of the "
              "same user cancelled it. Give every process on this user the same share "
              "(ArenaClient(share=...), ARENA_SHARE).")

#: Arena GUIDs are letters and digits; anything else is refused with 422 before Arena.
GUID_PATTERN = r"^[A-Za-z0-9]{1,64}$"
ItemGuid = Annotated[str, Path(pattern=GUID_PATTERN)]
#: RFC 9111's warning for an answer served past its freshness (Arena could not answer).
STALE_WARNING = '110 - "Response is Stale"'


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """ArenaClient keyword arguments from ``ARENA_*`` environment variables (but
    ``ARENA_SHARE``, which the client reads itself: ``share`` is left to its default)."""
    env = os.environ if environ is None else environ
    settings: dict[str, Any] = {
        "max_concurrency": int(env.get("ARENA_MAX_CONCURRENCY", "16")),
        "quota": QuotaPolicy(reserve=int(env.get("ARENA_QUOTA_RESERVE", "100"))),
    }
    if env.get("ARENA_SESSION_ID"):
        settings["session_id"] = env["ARENA_SESSION_ID"]  # a given session: not shared
    else:
        settings["email"] = env["ARENA_EMAIL"]
        settings["password"] = env["ARENA_PASSWORD"]
        if env.get("ARENA_WORKSPACE_ID"):
            settings["workspace_id"] = int(env["ARENA_WORKSPACE_ID"])
    if env.get("ARENA_BASE_URL"):
        settings["base_url"] = env["ARENA_BASE_URL"]
    if env.get("ARENA_CACHE_TTL"):  # CachePolicy refuses a TTL <= 0 or a negative window
        settings["cache"] = CachePolicy(
            ttl=float(env["ARENA_CACHE_TTL"]),
            stale_if_error=float(env.get("ARENA_CACHE_STALE", "86400")))
    return settings


def _freshness(info: AnswerInfo) -> dict[str, str]:
    """HTTP headers saying where a response's Arena answers came from: ``Age`` when every
    one came from the cache, ``Warning`` when one is stale (Arena could not answer)."""
    headers = {}
    if info.from_cache:
        headers["Age"] = str(int(info.age))
    if info.stale:
        headers["Warning"] = STALE_WARNING
    return headers


def _json(value: Any) -> Any:
    """A model as JSON-able data (snake_case fields, ISO 8601 datetimes)."""
    def serialize(_inst: Any, _field: Any, item: Any) -> Any:
        return item.isoformat() if isinstance(item, datetime) else item
    return attrs.asdict(value, value_serializer=serialize)


def _arena(request: Request) -> ArenaClient:
    arena: ArenaClient = request.app.state.arena
    return arena


def _error(status: int, kind: str, exc: BaseException,
           headers: dict[str, str] | None = None) -> JSONResponse:
    # Library messages hold no secrets; they may name Arena paths, which is fine here.
    return JSONResponse({"error": kind, "detail": str(exc)}, status_code=status,
                        headers=headers)


async def _quota_exhausted(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, QuotaExhaustedError)
    seconds = 3600.0
    if exc.resets_at is not None:
        seconds = (exc.resets_at - datetime.now(UTC)).total_seconds()
    return _error(503, "quota_exhausted", exc,
                  {"Retry-After": str(max(1, math.ceil(seconds)))})


async def _rate_limited(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RateLimitError)
    retry_after = str(max(1, math.ceil(exc.retry_after or 1)))
    return _error(503, "rate_limited", exc, {"Retry-After": retry_after})


async def _api_error(request: Request, exc: Exception) -> Response:
    # Arena's 404 and 400 are the caller's business; the rest is ours (502: bad gateway).
    if isinstance(exc, NotFoundError) or (isinstance(exc, BadRequestError)
                                          and exc.code == UNKNOWN_GUID):
        return _error(404, "not_found", exc)
    if isinstance(exc, BadRequestError):
        return _error(400, "bad_request", exc)
    if isinstance(exc, LoginError | PermissionDeniedError):
        return _error(502, "upstream_credentials", exc)
    if isinstance(exc, AuthenticationError):  # the login worked; the session was cancelled
        response = _error(503, "upstream_session", exc, {"Retry-After": "1"})
        return _with_hint(response)
    return _error(502, "upstream_error", exc)


def _with_hint(response: JSONResponse) -> JSONResponse:
    body = json.loads(bytes(response.body))
    body["hint"] = SHARE_HINT
    return JSONResponse(body, status_code=response.status_code,
                        headers={"Retry-After": response.headers["Retry-After"]})


async def _share_unavailable(request: Request, exc: Exception) -> Response:
    # Nothing was sent to Arena: the share (SQLite file, Redis) could not be used.
    return _error(503, "share_unavailable", exc, {"Retry-After": "1"})


async def _other_error(request: Request, exc: Exception) -> Response:
    # TransportError (Arena unreachable, timeouts), ResponseFormatError, ...
    return _error(502, "upstream_error", exc)


def create_app(settings: Mapping[str, Any] | None = None) -> FastAPI:
    """The application; ``settings`` (ArenaClient keywords) default to the environment,
    read when the app starts (not at import)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = dict(settings) if settings is not None else settings_from_env()
        async with ArenaClient(**config) as arena:  # the last sharer logs out at stop
            app.state.arena = arena
            app.state.proven_at = None  # when an Arena request last proved the session
            app.state.proving = asyncio.Lock()
            yield

    app = FastAPI(title="Arena gateway (arena_async example)", lifespan=lifespan)
    app.add_exception_handler(QuotaExhaustedError, _quota_exhausted)
    app.add_exception_handler(RateLimitError, _rate_limited)
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(ShareUnavailableError, _share_unavailable)
    app.add_exception_handler(ArenaAsyncError, _other_error)

    @app.get("/items/{item_guid}/ticket-refs")
    async def ticket_refs(item_guid: ItemGuid, request: Request,
                          response: Response) -> list[dict[str, Any]]:
        """The tickets an item references."""
        with _arena(request).cache_info() as info:
            refs = await _arena(request).items.tickets.list(item_guid)
        response.headers.update(_freshness(info))
        return [_json(r) for r in refs]

    @app.get("/items/{item_guid}/training-records")
    async def training_records(
        item_guid: ItemGuid, request: Request,
        page_size: Annotated[int, Query(ge=1, le=400)] = 400,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> StreamingResponse:
        """An item's training records as JSON lines, streamed page by page.

        If Arena fails after the response has started, the last line is
        ``{"error": ..., "resume_offset": N}``: ask again with ``offset=N``. The ``Age``
        and ``Warning`` headers tell about the first page (sent before the others).
        """
        pages = _arena(request).items.training_records.pages(
            item_guid, page_size=page_size, offset=offset)
        with _arena(request).cache_info() as info:
            first = await anext(pages)  # errors here become a proper status code

        async def lines() -> AsyncIterator[bytes]:
            page = first
            try:
                while True:
                    for record in page.items:
                        yield _line(record)
                    if page.next_offset is None:
                        return
                    page = await anext(pages)
            except StopAsyncIteration:
                return
            except ArenaAsyncError as exc:
                yield json.dumps({"error": type(exc).__name__, "detail": str(exc),
                                  "resume_offset": exc.resume_from}).encode() + b"\n"
            finally:
                await pages.aclose()

        return StreamingResponse(lines(), media_type="application/x-ndjson",
                                 headers=_freshness(info))

    @app.get("/healthz")
    async def healthz(request: Request, response: Response) -> dict[str, Any]:
        """200 once an Arena request proved the session (credentials, workspace, share),
        with the quota as last seen. Login is lazy, so this spends at most one cheap
        request (``GET /items?limit=1``) per worker every ``ARENA_HEALTH_TTL`` seconds;
        errors map as everywhere (wrong credentials: 502 ``upstream_credentials``). With
        the cache, a fresh cached probe counts (a worker's request proved the session less
        than ``ARENA_CACHE_TTL`` ago); a stale one (Arena could not answer) is 200 with
        ``"stale": true`` and the ``Warning`` header: the service still answers from its
        cache."""
        state = request.app.state
        ttl = float(os.environ.get("ARENA_HEALTH_TTL", "60"))
        stale = False
        async with state.proving:  # concurrent probes wait for one request
            if state.proven_at is None or time.monotonic() - state.proven_at > ttl:
                with _arena(request).cache_info() as info:
                    await _arena(request).items.list(page_size=1, max_items=1)
                response.headers.update(_freshness(info))
                stale = info.stale
                if not stale:
                    state.proven_at = time.monotonic()
        quota = _arena(request).quota
        return {"status": "ok", "stale": stale,
                "quota": None if quota is None else _json(quota)}

    return app


def _line(record: TrainingRecord) -> bytes:
    return json.dumps(_json(record)).encode() + b"\n"


app = create_app()
