"""What every Arena resource shares: its pool and base URL, requests carrying their wire
URL, one answer or one listing page structured (through the answer cache, when the client
has one), and the listing helpers."""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast

from .._convert import structure_json
from .._envelope import ARENA_LISTING, read_listing
from .._pagination import records
from .._protocol import BaseURL, Request, validate_id
from .._transport import Transport
from ..models.common import Page

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "Resource", "arguments_of", "records_of"]

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

#: Arena's largest page: a larger ``page_size`` is refused before anything is sent.
MAX_PAGE_SIZE = 400
#: The ``page_size`` of every Arena listing (the library's and the CLI's) when none is
#: given: the largest, so a listing costs as few requests as possible.
DEFAULT_PAGE_SIZE = MAX_PAGE_SIZE


def records_of(pages: AsyncGenerator[Page[T], None]) -> AsyncGenerator[T, None]:
    """:func:`records`, typed as the async generator it is (``aclose()`` included)."""
    return cast("AsyncGenerator[T, None]", records(pages))


def arguments_of(source: Callable[P, Any]) -> Callable[[Callable[..., R]], Callable[P, R]]:
    """Give the decorated function ``source``'s parameters: for type checkers, and for
    ``help()`` / ``inspect.signature`` (the return annotation stays its own)."""

    def decorate(func: Callable[..., R]) -> Callable[P, R]:
        own = inspect.signature(func)
        func.__signature__ = inspect.signature(source).replace(  # type: ignore[attr-defined]
            return_annotation=own.return_annotation)
        return func

    return decorate


class Resource:
    """The base of the item resources: requests on ``base_url`` sent through ``pool``."""

    def __init__(self, pool: Transport, base_url: str) -> None:
        self._transport = pool
        self._base_url = base_url
        self._base = BaseURL(base_url)

    def _request(self, method: str, *segments: str, params: dict[str, str] | None = None,
                 json: Any = None) -> Request:
        # The base's origin is parsed once; the request carries its wire URL.
        return Request.on(self._base, method, *segments, params=params, json=json)

    async def _one(self, cl: type[T], request: Request, deadline: float | None) -> T:
        cache = self._transport.answer_cache
        if cache is not None and request.method == "GET":
            return await cache.answer(
                request, lambda body: structure_json(body, cl, url=request.display),
                self._fetch(request), deadline)
        response = await self._transport.send(request, deadline=deadline)
        return structure_json(response.body, cl, url=request.display)

    async def _child(self, cl: type[T], item_guid: str, child: str, id_name: str,
                     child_guid: str, *, deadline: float | None) -> T:
        """One record of an item's sub-resource, ``GET items/{item_guid}/{child}/{guid}``,
        both ids checked before anything is sent."""
        validate_id("item_guid", item_guid)
        validate_id(id_name, child_guid)
        return await self._one(
            cl, self._request("GET", "items", item_guid, child, child_guid), deadline)

    async def _results(self, cl: type[T], request: Request, deadline: float | None) -> list[T]:
        cache = self._transport.answer_cache
        if cache is not None:
            return await cache.answer(
                request, lambda body: read_listing(body, cl, ARENA_LISTING, url=request.display),
                self._fetch(request), deadline)
        response = await self._transport.send(request, deadline=deadline)
        return read_listing(response.body, cl, ARENA_LISTING, url=request.display)

    def _fetch(self, request: Request) -> Callable[[float | None], Awaitable[bytes]]:
        """The answer cache's way to ask Arena: the wire body of ``request``, within the
        seconds left of the caller's deadline."""
        async def fetch(left: float | None) -> bytes:
            return (await self._transport.send(request, deadline=left)).body
        return fetch

    async def _references_changed(self, *item_guids: str) -> None:
        """A reference of these items was written: every cached reference answer that
        involves any of them (their own, and those of the items they reference) is
        dropped."""
        cache = self._transport.answer_cache
        if cache is not None:
            await cache.references_changed(item_guids)
