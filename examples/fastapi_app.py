"""A FastAPI service in front of Arena, sharing one ArenaClient across every request.

The pattern:

- one :class:`~arena_async.ArenaClient` per process, created in the lifespan: one login,
  one connection pool, one quota budget and one concurrency limit for all requests
  (a client per request would log in per request, and Arena ends the previous session of
  the same user at each login);
- a ``QuotaPolicy(reserve=...)`` so the service never spends the workspace's last
  requests, and answers 503 with ``Retry-After`` when the quota is spent instead of
  waiting inside a request;
- streaming: training records go out as JSON lines while later pages are still being
  fetched; the first page is fetched before the response starts, so a 404 or a spent
  quota still gets a proper status;
- error mapping: arena_async's exception hierarchy to HTTP statuses.

Configuration from the environment: ``ARENA_EMAIL``, ``ARENA_PASSWORD``,
``ARENA_WORKSPACE_ID`` (or ``ARENA_SESSION_ID``), ``ARENA_BASE_URL`` (default: the US
region), ``ARENA_QUOTA_RESERVE`` (default 100), ``ARENA_MAX_CONCURRENCY`` (default 16).

Run it against the built-in fake server::

    arena-async fake-server --no-akana        # prints the ARENA_* variables to export
    uvicorn examples.fastapi_app:app          # after exporting them
    curl localhost:8000/items/<guid>/training-records
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import attrs
from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from arena_async import (
    APIError,
    ArenaAsyncError,
    ArenaClient,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExhaustedError,
    QuotaPolicy,
    RateLimitError,
    TrainingRecord,
)

__all__ = ["app", "create_app", "settings_from_env"]

#: Arena GUIDs are letters and digits; anything else is refused with 422 before Arena.
GUID_PATTERN = r"^[A-Za-z0-9]{1,64}$"
ItemGuid = Annotated[str, Path(pattern=GUID_PATTERN)]


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """ArenaClient keyword arguments from ``ARENA_*`` environment variables."""
    env = os.environ if environ is None else environ
    settings: dict[str, Any] = {
        "max_concurrency": int(env.get("ARENA_MAX_CONCURRENCY", "16")),
        "quota": QuotaPolicy(reserve=int(env.get("ARENA_QUOTA_RESERVE", "100"))),
    }
    if env.get("ARENA_SESSION_ID"):
        settings["session_id"] = env["ARENA_SESSION_ID"]
    else:
        settings["email"] = env["ARENA_EMAIL"]
        settings["password"] = env["ARENA_PASSWORD"]
        if env.get("ARENA_WORKSPACE_ID"):
            settings["workspace_id"] = int(env["ARENA_WORKSPACE_ID"])
    if env.get("ARENA_BASE_URL"):
        settings["base_url"] = env["ARENA_BASE_URL"]
    return settings


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
    if isinstance(exc, NotFoundError):
        return _error(404, "not_found", exc)
    if isinstance(exc, BadRequestError):
        return _error(400, "bad_request", exc)
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        return _error(502, "upstream_credentials", exc)
    return _error(502, "upstream_error", exc)


async def _other_error(request: Request, exc: Exception) -> Response:
    # TransportError (Arena unreachable, timeouts), ResponseFormatError, ...
    return _error(502, "upstream_error", exc)


def create_app(settings: Mapping[str, Any] | None = None) -> FastAPI:
    """The application; ``settings`` (ArenaClient keywords) default to the environment,
    read when the app starts (not at import)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        config = dict(settings) if settings is not None else settings_from_env()
        async with ArenaClient(**config) as arena:  # logs out when the app stops
            app.state.arena = arena
            yield

    app = FastAPI(title="Arena gateway (arena_async example)", lifespan=lifespan)
    app.add_exception_handler(QuotaExhaustedError, _quota_exhausted)
    app.add_exception_handler(RateLimitError, _rate_limited)
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(ArenaAsyncError, _other_error)

    @app.get("/items/{item_guid}/ticket-refs")
    async def ticket_refs(item_guid: ItemGuid, request: Request) -> list[dict[str, Any]]:
        """The tickets an item references."""
        refs = await _arena(request).items.tickets.list(item_guid)
        return [_json(r) for r in refs]

    @app.get("/items/{item_guid}/training-records")
    async def training_records(
        item_guid: ItemGuid, request: Request,
        page_size: Annotated[int, Query(ge=1, le=400)] = 400,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> StreamingResponse:
        """An item's training records as JSON lines, streamed page by page.

        If Arena fails after the response has started, the last line is
        ``{"error": ..., "resume_offset": N}``: ask again with ``offset=N``.
        """
        pages = _arena(request).items.training_records.pages(
            item_guid, page_size=page_size, offset=offset)
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

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, Any]:
        """Liveness, with the Arena quota as last seen."""
        quota = _arena(request).quota
        return {"status": "ok", "quota": None if quota is None else _json(quota)}

    return app


def _line(record: TrainingRecord) -> bytes:
    return json.dumps(_json(record)).encode() + b"\n"


app = create_app()
