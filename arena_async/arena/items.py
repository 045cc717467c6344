"""Arena item resources: item search, number lookups, ticket references, item references,
training records.

The surface mirrors the URL paths: ``client.items`` is ``/items``, ``client.items.tickets``
is ``/items/{item}/tickets``. The search query is checked and encoded in ``_item_query``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from .._checks import check_deadline, check_max_items, check_offset, check_page_size
from .._pagination import paginate
from .._pool import SessionPool
from .._protocol import validate_id
from ..errors import TransportError
from ..models.arena import Item, ItemReference, ItemTicketReference, TrainingRecord
from ..models.common import Page
from ._item_query import ASSEMBLY_TYPES, check_number, search_params, view_params
from ._resource import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Resource, arguments_of, records_of

__all__ = ["ASSEMBLY_TYPES", "ItemReferences", "ItemTickets", "ItemTrainingRecords", "Items"]

log: logging.Logger = logging.getLogger(__name__)


class ItemTickets(Resource):
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
        return await self._child(ItemTicketReference, item_guid, "tickets", "assoc_guid",
                                 assoc_guid, deadline=deadline)


class ItemReferences(Resource):
    """``/items/{item_guid}/items``: item-to-item references (bidirectional)."""

    async def list(self, item_guid: str, *, deadline: float | None = None) -> list[ItemReference]:
        """All item references of an item (one request)."""
        validate_id("item_guid", item_guid)
        return await self._results(ItemReference,
                                   self._request("GET", "items", item_guid, "items"), deadline)

    async def get(self, item_guid: str, ref_guid: str, *, deadline: float | None = None,
                  ) -> ItemReference:
        """One item reference by its GUID."""
        return await self._child(ItemReference, item_guid, "items", "ref_guid", ref_guid,
                                 deadline=deadline)

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


class ItemTrainingRecords(Resource):
    """``/items/{item_guid}/trainingrecords``: training records, paged by offset/limit."""

    def pages(self, item_guid: str, page_size: int = DEFAULT_PAGE_SIZE, offset: int = 0, *,
              max_items: int | None = None, deadline: float | None = None,
              ) -> AsyncGenerator[Page[TrainingRecord], None]:
        """Stream pages from ``offset``; ``page.next_offset`` is None on the last page.

        Arguments are checked now, before anything is sent. ``deadline`` bounds each page
        request (all its retries). Example::

            async for page in arena.items.training_records.pages(guid, page_size=100):
                save(page.items); checkpoint = page.next_offset
        """
        validate_id("item_guid", item_guid)
        check_page_size(page_size, maximum=MAX_PAGE_SIZE)
        check_offset("offset", offset)
        check_max_items(max_items)
        check_deadline(deadline)

        async def fetch(at: int, limit: int) -> list[TrainingRecord]:
            params = {"offset": str(at), "limit": str(limit)}
            request = self._request("GET", "items", item_guid, "trainingrecords", params=params)
            return await self._results(TrainingRecord, request, deadline)

        return paginate(fetch, page_size=page_size, offset=offset, max_items=max_items)

    def iter(self, item_guid: str, page_size: int = DEFAULT_PAGE_SIZE, offset: int = 0, *,
             max_items: int | None = None, deadline: float | None = None,
             ) -> AsyncGenerator[TrainingRecord, None]:
        """Stream records from ``offset``, at most ``max_items`` of them (the same
        arguments as :meth:`pages`).

        Example: ``async for rec in arena.items.training_records.iter(guid): ...``
        """
        return records_of(self.pages(item_guid, page_size, offset, max_items=max_items,
                                   deadline=deadline))

    async def list(self, item_guid: str, page_size: int = DEFAULT_PAGE_SIZE, offset: int = 0, *,
                   max_items: int | None = None, deadline: float | None = None,
                   ) -> list[TrainingRecord]:
        """Every record (from ``offset``, up to ``max_items``) as one list (the same
        arguments as :meth:`pages`).

        Example: ``recs = await arena.items.training_records.list(guid, max_items=1000)``
        """
        return [rec async for rec in self.iter(item_guid, page_size, offset,
                                               max_items=max_items, deadline=deadline)]

    async def get(self, item_guid: str, record_guid: str, *, deadline: float | None = None,
                  ) -> TrainingRecord:
        """One training record, with its due and signed dates."""
        return await self._child(TrainingRecord, item_guid, "trainingrecords", "record_guid",
                                 record_guid, deadline=deadline)

class Items(Resource):
    """``client.items``: item search (``GET /items``), one item, number lookups, and the
    item sub-resources.

    Methods:

    - :meth:`iter` / :meth:`pages` / :meth:`list`: items matching filters (keyword
      arguments, snake_case of the wire names), ``view="full"`` or ``"minimum"``.
    - :meth:`get`: one :class:`Item` by GUID.
    - :meth:`guids_for`: item numbers to GUIDs (one request per new number, cached).

    Resources:

    - ``tickets`` (:class:`ItemTickets`): ``/items/{item}/tickets``
    - ``references`` (:class:`ItemReferences`): ``/items/{item}/items``
    - ``training_records`` (:class:`ItemTrainingRecords`): ``/items/{item}/trainingrecords``

    Example::

        async for item in arena.items.iter(number="PN-10*", view="minimum"):
            print(item.number, item.guid)
        guids = await arena.items.guids_for(["PN-000123", "PN-000124"])
    """

    #: ``/items/{item}/tickets``: the tickets an item references.
    tickets: ItemTickets
    #: ``/items/{item}/items``: item-to-item references.
    references: ItemReferences
    #: ``/items/{item}/trainingrecords``: training records, paged.
    training_records: ItemTrainingRecords

    def __init__(self, pool: SessionPool, base_url: str) -> None:
        super().__init__(pool, base_url)
        self.tickets = ItemTickets(pool, base_url)
        self.references = ItemReferences(pool, base_url)
        self.training_records = ItemTrainingRecords(pool, base_url)
        self._guids: dict[str, str | None] = {}
        # Numbers being looked up now, by any call: the others wait for that answer.
        self._asking: dict[str, asyncio.Event] = {}

    def pages(
        self,
        *,
        number: str | None = None,
        name: str | None = None,
        description: str | None = None,
        revision_number: str | None = None,
        category_guid: str | None = None,
        category_name: str | None = None,
        include_child_categories: bool | None = None,
        lifecycle_phase_guid: str | None = None,
        lifecycle_phase_stage: str | None = None,
        owner_full_name: str | None = None,
        creator_email: str | None = None,
        creator_guid: str | None = None,
        creator_full_name: str | None = None,
        in_assembly: bool | None = None,
        assembly_type: Literal["TOP_LEVEL_ASSEMBLY", "SUB_ASSEMBLY", "NOT_AN_ASSEMBLY"]
        | None = None,
        modified_bom: bool | None = None,
        modified_files: bool | None = None,
        modified_sourcing: bool | None = None,
        modified_specs: bool | None = None,
        effective_date_time: datetime | str | None = None,
        criteria: Mapping[str, Any] | None = None,
        view: Literal["full", "minimum"] = "full",
        page_size: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
        max_items: int | None = None,
        deadline: float | None = None,
    ) -> AsyncGenerator[Page[Item], None]:
        """Stream pages of the items matching every filter given (``GET /items``).

        A text filter matches exactly unless it ends with ``*`` (a prefix); None leaves a
        filter out; ``criteria`` is sent as URL-encoded JSON (Arena's export-criteria
        format); ``view="minimum"`` asks only ``guid``, ``number`` and ``url`` of each item
        (``responseview=minimum``). ``page.next_offset`` is None on the last page; a failed
        page raises with ``resume_from`` set to its offset. Arguments are checked now,
        before anything is sent; ``deadline`` bounds each page request (all its retries).

        Example::

            async for page in arena.items.pages(category_name="Resistors", page_size=400):
                save(page.items); checkpoint = page.next_offset
        """
        filters = {
            "number": number,
            "name": name,
            "description": description,
            "revision_number": revision_number,
            "category_guid": category_guid,
            "category_name": category_name,
            "include_child_categories": include_child_categories,
            "lifecycle_phase_guid": lifecycle_phase_guid,
            "lifecycle_phase_stage": lifecycle_phase_stage,
            "owner_full_name": owner_full_name,
            "creator_email": creator_email,
            "creator_guid": creator_guid,
            "creator_full_name": creator_full_name,
            "in_assembly": in_assembly,
            "modified_bom": modified_bom,
            "modified_files": modified_files,
            "modified_sourcing": modified_sourcing,
            "modified_specs": modified_specs,
        }
        query = search_params(filters, assembly_type, effective_date_time, criteria, view)
        check_page_size(page_size, maximum=MAX_PAGE_SIZE)
        check_offset("offset", offset)
        check_max_items(max_items)
        check_deadline(deadline)

        async def fetch(at: int, limit: int) -> list[Item]:
            params = {**query, "offset": str(at), "limit": str(limit)}
            return await self._results(Item, self._request("GET", "items", params=params),
                                       deadline)

        return paginate(fetch, page_size=page_size, offset=offset, max_items=max_items)

    @arguments_of(pages)
    def iter(self, **kwargs: Any) -> AsyncGenerator[Item, None]:
        """Stream the matching items; the same keyword arguments as :meth:`pages`
        (``max_items`` caps how many, and no record is fetched only to be dropped).

        Example: ``async for item in arena.items.iter(number="PN-10*"): ...``
        """
        return records_of(self.pages(**kwargs))

    @arguments_of(pages)
    async def list(self, **kwargs: Any) -> list[Item]:
        """Every matching item (from ``offset``, up to ``max_items``) as one list; the same
        keyword arguments as :meth:`pages`.

        Example: ``items = await arena.items.list(lifecycle_phase_stage="IN_PRODUCTION")``
        """
        return [item async for item in self.iter(**kwargs)]

    async def get(self, item_guid: str, *, view: Literal["full", "minimum"] = "full",
                  deadline: float | None = None) -> Item:
        """One item by GUID (``GET /items/{guid}``); ``view="minimum"``: guid, number, url.

        Example: ``item = await arena.items.get("0I2L4H2TGJ0UDWFXCXR5")``
        """
        validate_id("item_guid", item_guid)
        params = view_params(view) or None
        check_deadline(deadline)
        return await self._one(Item, self._request("GET", "items", item_guid, params=params),
                               deadline)

    async def guids_for(self, numbers: Iterable[str], *, deadline: float | None = None,
                        ) -> dict[str, str | None]:
        """Item numbers to GUIDs: ``{number: guid}``, None for a number no item has.

        One ``GET /items?number=<n>&responseview=minimum`` (exact match) per distinct
        number not asked before: duplicates are asked once, and every answer (None
        included) is kept for the client's life, so asking again spends nothing. At most
        the client's ``max_concurrency`` lookups run at once. The keys are the distinct
        numbers in the order given. Every number is checked before anything is sent: a
        number ending in ``*`` is a prefix search, not one item, and is refused
        (ValueError), as are empty numbers and numbers with surrounding whitespace.

        When the server lists several items for one number (revisions of one item), the
        GUID is that of the first item listed whose number is exactly the one asked
        (else the first that matches ignoring case), and a warning is logged. On a
        failure the error is raised, the lookups still running are cancelled, and the
        answers already received stay cached. Calls running at the same time share the
        lookups in flight: a number new to several is asked once (should that lookup
        fail, or its call be cancelled, a call still waiting asks it itself). A
        ``deadline`` also bounds each wait for another call's lookup.

        Example::

            guids = await arena.items.guids_for(["PN-000123", "PN-000124"])
            missing = [n for n, g in guids.items() if g is None]
        """
        if isinstance(numbers, str | bytes) or not isinstance(numbers, Iterable):
            raise ValueError("numbers must be an iterable of item numbers (not one string)")
        wanted = list(dict.fromkeys(check_number(n) for n in numbers))
        check_deadline(deadline)
        todo = [n for n in wanted if n not in self._guids]
        if todo:
            await self._lookup_all(todo, deadline)
        return {n: self._guids[n] for n in wanted}

    async def _lookup_all(self, todo: Sequence[str], deadline: float | None) -> None:
        pending: Iterator[str] = iter(todo)

        async def worker() -> None:
            for number in pending:  # one shared iterator: each number taken once
                await self._resolve(number, deadline)

        workers = min(len(todo), self._pool.limiter.max_concurrency)
        tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
        # Every failure is retrieved (no "exception never retrieved"); the first is raised.
        errors = [task.exception() for task in tasks if task in done and not task.cancelled()]
        for error in errors:
            if error is not None:
                raise error

    async def _resolve(self, number: str, deadline: float | None) -> None:
        """Have ``number`` in the cache: looked up here, or by another call already asking."""
        while number not in self._guids:
            asking = self._asking.get(number)
            if asking is None:
                asking = self._asking[number] = asyncio.Event()
                try:
                    self._guids[number] = await self._lookup(number, deadline)
                finally:
                    del self._asking[number]
                    asking.set()  # the waiters look again: answered, or theirs to ask
                return
            try:
                async with asyncio.timeout(deadline):
                    await asking.wait()
            except TimeoutError:
                raise TransportError(
                    f"the deadline passed while another call looked up item number "
                    f"{number!r}", method="GET", url="/items") from None

    async def _lookup(self, number: str, deadline: float | None) -> str | None:
        params = {"number": number, "responseview": "minimum", "offset": "0",
                  "limit": str(MAX_PAGE_SIZE)}
        found = await self._results(Item, self._request("GET", "items", params=params),
                                    deadline)
        exact = [item for item in found if item.number == number]
        if not exact:
            folded = number.casefold()
            exact = [item for item in found
                     if item.number is not None and item.number.casefold() == folded]
        if len(exact) > 1:
            log.warning("%d items have number %r; using the first listed (%s)", len(exact),
                        number, exact[0].guid)
        return exact[0].guid if exact else None
