"""Arena item resources: ticket references, item references, training records.

The surface mirrors the URL paths: ``client.items.tickets`` is ``/items/{item}/tickets``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, TypeVar

from orjson import loads as orjson_loads

from .._convert import fast_structurer, loads, structure, structure_json
from .._pagination import paginate, records
from .._pool import SessionPool
from .._protocol import (
    Request,
    build_url,
    check_deadline,
    validate_id,
    validate_max_items,
    validate_offset,
    validate_page_size,
)
from ..errors import ResponseFormatError, excerpt
from ..models.arena import ItemReference, ItemTicketReference, TrainingRecord
from ..models.common import Page

__all__ = ["ItemReferences", "ItemTickets", "ItemTrainingRecords", "Items"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Arena's largest page; also our default, so a listing costs as few requests as possible.
MAX_PAGE_SIZE = 400


class _Resource:
    def __init__(self, pool: SessionPool, base_url: str) -> None:
        self._pool = pool
        self._base_url = base_url
        self._lists: dict[type[Any], Callable[[Any], Any]] = {}

    def _request(self, method: str, *segments: str, params: dict[str, str] | None = None,
                 json: Any = None) -> Request:
        path = "/" + "/".join(segments)
        return Request(method, build_url(self._base_url, *segments), path, params=params,
                       json=json)

    async def _one(self, cl: type[T], request: Request, deadline: float | None) -> T:
        response = await self._pool.send(request, deadline=deadline)
        return structure_json(response.body, cl, url=request.display)

    async def _results(self, cl: type[T], request: Request, deadline: float | None) -> list[T]:
        response = await self._pool.send(request, deadline=deadline)
        body = response.body
        # The common case first: orjson (2-4x faster than json) decodes a JSON object whose
        # "results" the generated structuring accepts. Anything else takes the checked path
        # below (json, cattrs), which decides and names what is wrong. Where orjson and json
        # differ (orjson refuses NaN, lone surrogates and non-UTF-8 bodies, and reads
        # integers beyond 64 bits as floats, which the strict structuring of these models
        # refuses), the checked path is the one that answers: the result is json's. (But
        # for nesting deeper than json's recursion allows and orjson's 1,024 levels do:
        # orjson reads those bodies, json refuses them.)
        try:
            data = orjson_loads(body)
            if type(data) is dict:
                results = data.get("results")
                if type(results) is list:
                    fast = self._lists.get(cl)
                    if fast is None:
                        fast = self._lists[cl] = fast_structurer(list[cl])  # type: ignore[valid-type]
                    items: list[T] = fast(results)
                    return items
        except Exception:
            pass
        url = request.display
        data = loads(body, url=url)
        if not isinstance(data, dict):
            raise ResponseFormatError("expected an object with 'results'", path="$",
                                      excerpt=excerpt(body), url=url)
        results = data.get("results")
        if results is None and data.get("count") == 0:
            return []
        if not isinstance(results, list):
            raise ResponseFormatError("expected a list", path="$.results",
                                      excerpt=excerpt(body), url=url)
        checked: list[T] = structure(results, list[cl], path="$.results",  # type: ignore[valid-type]
                                     url=url, body=body)
        return checked


class ItemTickets(_Resource):
    """``/items/{item_guid}/tickets``: the tickets (changes, requests) an item references."""

    async def list(self, item_guid: str, *, deadline: float | None = None,
                   ) -> list[ItemTicketReference]:
        """All ticket references of an item (one request).

        Example: ``refs = await arena.items.tickets.list("0I2L4H2TGJ0UDWFXCXR5")``
        """
        validate_id("item_guid", item_guid)
        return await self._results(ItemTicketReference,
                                   self._request("GET", "items", item_guid, "tickets"), deadline)

    async def get(self, item_guid: str, assoc_guid: str, *, deadline: float | None = None,
                  ) -> ItemTicketReference:
        """One ticket reference by its association GUID."""
        validate_id("item_guid", item_guid)
        validate_id("assoc_guid", assoc_guid)
        return await self._one(
            ItemTicketReference,
            self._request("GET", "items", item_guid, "tickets", assoc_guid), deadline)


class ItemReferences(_Resource):
    """``/items/{item_guid}/items``: item-to-item references (bidirectional)."""

    async def list(self, item_guid: str, *, deadline: float | None = None) -> list[ItemReference]:
        """All item references of an item (one request)."""
        validate_id("item_guid", item_guid)
        return await self._results(ItemReference,
                                   self._request("GET", "items", item_guid, "items"), deadline)

    async def get(self, item_guid: str, ref_guid: str, *, deadline: float | None = None,
                  ) -> ItemReference:
        """One item reference by its GUID."""
        validate_id("item_guid", item_guid)
        validate_id("ref_guid", ref_guid)
        return await self._one(
            ItemReference, self._request("GET", "items", item_guid, "items", ref_guid), deadline)

    async def create(self, item_guid: str, other_item_guid: str, *, note: str | None = None,
                     deadline: float | None = None) -> ItemReference:
        """Reference ``other_item_guid`` from ``item_guid`` (and so the reverse).

        Not retried once sent (POST) unless ``RetryPolicy(retry_post=True)``.
        Example: ``link = await arena.items.references.create(a, b, note="see also")``
        """
        validate_id("item_guid", item_guid)
        validate_id("other_item_guid", other_item_guid)
        if item_guid == other_item_guid:
            raise ValueError("an item cannot reference itself (item_guid == other_item_guid)")
        if note is not None and not isinstance(note, str):
            raise ValueError(f"note must be a string or None, got {type(note).__name__}")
        body: dict[str, Any] = {"item": {"guid": other_item_guid}}
        if note is not None:
            body["note"] = note
        return await self._one(
            ItemReference, self._request("POST", "items", item_guid, "items", json=body),
            deadline)

    async def update(self, item_guid: str, ref_guid: str, note: str | None = None, *,
                     deadline: float | None = None) -> ItemReference:
        """Set a reference's note; ``note=None`` clears it (``?setnull=true``)."""
        validate_id("item_guid", item_guid)
        validate_id("ref_guid", ref_guid)
        if note is not None and not isinstance(note, str):
            raise ValueError(f"note must be a string or None, got {type(note).__name__}")
        params = {"setnull": "true"} if note is None else None
        return await self._one(
            ItemReference,
            self._request("PUT", "items", item_guid, "items", ref_guid, params=params,
                          json={"note": note}),
            deadline)

    async def delete(self, item_guid: str, ref_guid: str, *, deadline: float | None = None,
                     ) -> None:
        """Delete a reference (both directions)."""
        validate_id("item_guid", item_guid)
        validate_id("ref_guid", ref_guid)
        await self._pool.send(self._request("DELETE", "items", item_guid, "items", ref_guid),
                              deadline=deadline)


class ItemTrainingRecords(_Resource):
    """``/items/{item_guid}/trainingrecords``: training records, paged by offset/limit."""

    def pages(self, item_guid: str, page_size: int = MAX_PAGE_SIZE, offset: int = 0, *,
              max_items: int | None = None, deadline: float | None = None,
              ) -> AsyncGenerator[Page[TrainingRecord], None]:
        """Stream pages from ``offset``; ``page.next_offset`` is None on the last page.

        Arguments are checked now, before anything is sent. ``deadline`` bounds each page
        request (all its retries). Example::

            async for page in arena.items.training_records.pages(guid, page_size=100):
                save(page.items); checkpoint = page.next_offset
        """
        validate_id("item_guid", item_guid)
        validate_page_size(page_size, maximum=MAX_PAGE_SIZE)
        validate_offset("offset", offset)
        validate_max_items(max_items)
        check_deadline(deadline)

        async def fetch(at: int, limit: int) -> list[TrainingRecord]:
            params = {"offset": str(at), "limit": str(limit)}
            request = self._request("GET", "items", item_guid, "trainingrecords", params=params)
            return await self._results(TrainingRecord, request, deadline)

        return paginate(fetch, page_size=page_size, offset=offset, max_items=max_items)

    def iter(self, item_guid: str, page_size: int = MAX_PAGE_SIZE, offset: int = 0,
             max_items: int | None = None, *, deadline: float | None = None,
             ) -> AsyncIterator[TrainingRecord]:
        """Stream records from ``offset``, at most ``max_items`` of them.

        Example: ``async for rec in arena.items.training_records.iter(guid): ...``
        """
        return records(self.pages(item_guid, page_size, offset, max_items=max_items,
                                  deadline=deadline))

    async def list(self, item_guid: str, page_size: int = MAX_PAGE_SIZE, offset: int = 0,
                   max_items: int | None = None, *, deadline: float | None = None,
                   ) -> list[TrainingRecord]:
        """Every record (from ``offset``, up to ``max_items``) as one list."""
        return [rec async for rec in self.iter(item_guid, page_size, offset, max_items,
                                               deadline=deadline)]

    async def get(self, item_guid: str, record_guid: str, *, deadline: float | None = None,
                  ) -> TrainingRecord:
        """One training record, with its due and signed dates."""
        validate_id("item_guid", item_guid)
        validate_id("record_guid", record_guid)
        return await self._one(
            TrainingRecord,
            self._request("GET", "items", item_guid, "trainingrecords", record_guid), deadline)


class Items:
    """``client.items``: the item sub-resources."""

    def __init__(self, pool: SessionPool, base_url: str) -> None:
        self.tickets = ItemTickets(pool, base_url)
        self.references = ItemReferences(pool, base_url)
        self.training_records = ItemTrainingRecords(pool, base_url)
