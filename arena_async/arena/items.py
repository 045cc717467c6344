"""Arena item resources: item search, number lookups, and the item sub-resources
(declared once each: see :mod:`arena_async.arena._resource`).

The surface mirrors the URL paths: ``client.items`` is ``/items``, ``client.items.tickets``
is ``/items/{item}/tickets``. The search query is checked and encoded in ``_item_query``.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal

import yarl

from .._checks import check_deadline, check_max_items, check_offset, check_page_size
from .._pagination import paginate
from .._protocol import validate_id
from .._share import ShareLink
from .._share._names import SharedNames
from .._transport import Transport
from ..errors import LookupFailedError
from ..models.arena import BomLine, Item, ItemReference, ItemTicketReference, TrainingRecord
from ..models.common import Page
from ._item_query import (
    ASSEMBLY_TYPES,
    NumberBatches,
    check_number,
    search_params,
    view_params,
)
from ._numbers import CLAIM_TTL, GuidBatch, NumberLookups, match_numbers
from ._resource import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Child,
    PagedSubResource,
    Resource,
    SubResource,
    SubResources,
    arguments_of,
    attach_sub_resources,
    records_of,
)

__all__ = [
    "ASSEMBLY_TYPES",
    "GuidBatch",
    "ItemBom",
    "ItemReferences",
    "ItemTickets",
    "ItemTrainingRecords",
    "Items",
]

log: logging.Logger = logging.getLogger(__name__)

#: The longest search URL sent (bytes): front ends refuse request lines over about 8 KB.
MAX_SEARCH_URL = 8000


class ItemTickets(SubResource[ItemTicketReference]):
    """``/items/{item_guid}/tickets``: the tickets (changes, requests) an item references."""

    child: ClassVar[Child] = Child("tickets", "assoc_guid", "ticket references")

    async def get(self, item_guid: str, assoc_guid: str, *, deadline: float | None = None,
                  ) -> ItemTicketReference:
        """One ticket reference by its association GUID.

        Example: ``ref = await arena.items.tickets.get(item_guid, assoc_guid)``
        """
        return await self._get(item_guid, assoc_guid, deadline)


class ItemReferences(SubResource[ItemReference]):
    """``/items/{item_guid}/items``: item-to-item references (bidirectional).

    With ``cache=``, a reference created, updated or deleted drops the cached references of
    both its items (in every process, when the cache is in the share).
    """

    child: ClassVar[Child] = Child("items", "ref_guid", "item references")

    async def get(self, item_guid: str, ref_guid: str, *, deadline: float | None = None,
                  ) -> ItemReference:
        """One item reference by its GUID.

        Example: ``ref = await arena.items.references.get(item_guid, ref_guid)``
        """
        return await self._get(item_guid, ref_guid, deadline)

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
        try:
            return await self._one(
                ItemReference, self._request("POST", "items", item_guid, "items", json=body),
                deadline)
        finally:  # (also when the answer was lost: the write may have happened)
            await self._references_changed(item_guid, other_item_guid)

    async def update(self, item_guid: str, ref_guid: str, note: str | None = None, *,
                     deadline: float | None = None) -> ItemReference:
        """Set a reference's note; ``note=None`` clears it (``?setnull=true``)."""
        validate_id("item_guid", item_guid)
        validate_id("ref_guid", ref_guid)
        if note is not None and not isinstance(note, str):
            raise ValueError(f"note must be a string or None, got {type(note).__name__}")
        params = {"setnull": "true"} if note is None else None
        try:
            return await self._one(
                ItemReference,
                self._request("PUT", "items", item_guid, "items", ref_guid, params=params,
                              json={"note": note}),
                deadline)
        finally:  # (the other end's cached answers of this reference name item_guid)
            await self._references_changed(item_guid)

    async def delete(self, item_guid: str, ref_guid: str, *, deadline: float | None = None,
                     ) -> None:
        """Delete a reference (both directions)."""
        validate_id("item_guid", item_guid)
        validate_id("ref_guid", ref_guid)
        try:
            await self._transport.send(self._request("DELETE", "items", item_guid, "items",
                                                ref_guid), deadline=deadline)
        finally:  # (the other end's cached answers of this reference name item_guid)
            await self._references_changed(item_guid)


class ItemTrainingRecords(PagedSubResource[TrainingRecord]):
    """``/items/{item_guid}/trainingrecords``: training records, paged by offset/limit."""

    child: ClassVar[Child] = Child("trainingrecords", "record_guid", "training records")

    async def get(self, item_guid: str, record_guid: str, *, deadline: float | None = None,
                  ) -> TrainingRecord:
        """One training record, with its due and signed dates (a listing has none).

        Example: ``rec = await arena.items.training_records.get(item_guid, record_guid)``
        """
        return await self._get(item_guid, record_guid, deadline)


class ItemBom(SubResource[BomLine]):
    """``/items/{item_guid}/bom``: an assembly's BOM lines, its immediate children (one
    request: the listing does not page)."""

    child: ClassVar[Child] = Child("bom", "line_guid", "BOM lines")

    async def get(self, item_guid: str, line_guid: str, *, deadline: float | None = None,
                  ) -> BomLine:
        """One BOM line by its GUID.

        Example: ``line = await arena.items.bom.get(assembly_guid, line_guid)``
        """
        return await self._get(item_guid, line_guid, deadline)


class Items(Resource):
    """``client.items``: item search (``GET /items``), one item, number lookups, and the
    item sub-resources.

    Methods:

    - :meth:`iter` / :meth:`pages` / :meth:`list`: items matching filters (keyword
      arguments, snake_case of the wire names), ``view="full"`` or ``"minimum"``.
    - :meth:`get`: one :class:`Item` by GUID.
    - :meth:`guids_for`: item numbers to GUIDs (batched, remembered, shared);
      :meth:`guid_batches`: the same, one batch at a time (progress, checkpoints);
      :meth:`lookup_batches`: the batches a lookup would send (plans).

    Example::

        async for item in arena.items.iter(number="PN-10*", view="minimum"):
            print(item.number, item.guid)
        guids = await arena.items.guids_for(["PN-000123", "PN-000124"])
    """

    # The item sub-resources, one typed attribute each: __init__ builds them, help() lists
    # them (the docstrings only show them on the documentation site).
    tickets: ItemTickets
    """``arena.items.tickets``: see :class:`ItemTickets`."""
    references: ItemReferences
    """``arena.items.references``: see :class:`ItemReferences`."""
    training_records: ItemTrainingRecords
    """``arena.items.training_records``: see :class:`ItemTrainingRecords`."""
    bom: ItemBom
    """``arena.items.bom``: see :class:`ItemBom`."""
    #: The sub-resources above as ``(attribute, class)`` pairs.
    _sub_resources: ClassVar[SubResources] = ()

    def __init__(self, pool: Transport, base_url: str, *, link: ShareLink | None = None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        super().__init__(pool, base_url)
        for name, resource in self._sub_resources:
            setattr(self, name, resource(pool, base_url))
        text, target = self._base.join("items")
        self._items_url = target if target is not None else yarl.URL(text)
        names = None
        if link is not None:
            # One map per workspace: the scope of the share's quota ledger.
            scope = link.ledger.key.removeprefix("ledger:")
            names = SharedNames(link.share, f"names:{scope}", opener=link.ensure_open,
                                owner=link.member)
        # A claim outlives one batch's request (two timeouts; retries seldom go further):
        # longer only holds the others back when its process dies.
        self._lookups = NumberLookups(concurrency=lambda: pool.limiter.max_concurrency,
                                      clock=clock, sleep=sleep, names=names,
                                      claim_ttl=min(2 * pool.timeout, CLAIM_TTL))

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
        criteria: Sequence[Any] | None = None,
        view: Literal["full", "minimum"] = "full",
        page_size: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
        max_items: int | None = None,
        deadline: float | None = None,
    ) -> AsyncGenerator[Page[Item], None]:
        """Stream pages of the items matching every filter given (``GET /items``).

        A text filter matches exactly unless it ends with ``*`` (a prefix); None leaves a
        filter out; ``criteria`` is Arena's export-criteria list (criterion groups joined by
        ``"AND"`` / ``"OR"``, each a list of ``{"attribute", "operator", "value"}`` joined the
        same way), checked against the vendor's table of attributes and operators and sent
        as URL-encoded compact JSON; ``effective_date_time`` an aware datetime or a string
        with its offset (sent as UTC ``YYYY-MM-DDTHH:MM:SSZ``); ``view="minimum"`` asks
        only ``guid``, ``number`` and ``url`` of each item (``responseview=minimum``).
        ``page.next_offset`` is None on the last page; a failed page raises with
        ``resume_from`` set to its offset. Arguments are checked now, before anything is
        sent; ``deadline`` bounds each page request (all its retries).

        Example::

            async for page in arena.items.pages(category_name="Resistors", page_size=400):
                save(page.items); checkpoint = page.next_offset
            criteria = [[{"attribute": "number", "operator": "STARTS_WITH", "value": "PN-1"}],
                        "OR",
                        [{"attribute": "category.name", "operator": "IS_EQUAL_TO",
                          "value": "Resistors"}]]
            items = await arena.items.list(criteria=criteria, view="minimum")
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
        # The largest offset/limit a page may add is a few bytes: measured with room for them.
        length = len(str(self._items_url.extend_query(
            {**query, "offset": "9" * 12, "limit": "400"})))
        if length > MAX_SEARCH_URL:
            raise ValueError(
                f"this search's URL would be {length:,} bytes; front ends refuse request lines "
                f"over about 8 KB (414): split the criteria into several searches")

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

    def guid_batches(self, numbers: Iterable[str], *, page_size: int = MAX_PAGE_SIZE,
                     deadline: float | None = None) -> AsyncGenerator[GuidBatch, None]:
        """Item numbers to GUIDs, one :class:`GuidBatch` at a time as each batch completes:
        for progress bars and checkpoints (:meth:`guids_for` collects the same batches).

        Numbers already known come first (``source="memory"``: this client's answers, kept
        24 h, "no such item" 10 min; ``"share"``: another process of the share resolved
        them); the rest are asked in batches, ``GET /items?criteria=...&responseview=
        minimum``: ``criteria`` OR groups of exact ``IS_EQUAL_TO`` numbers (``*``, ``%`` and
        ``+`` are matched literally), as many per request as fit in a URL of about 6 KB and
        ``page_size`` results; a batch whose page comes back full is paged on. At most the
        client's ``max_concurrency`` batches run at once; calls running at the same time
        share the lookups in flight, and with a share so do processes (should that lookup
        fail or be cancelled, a call still waiting asks itself; should its process die, at
        most twice the client's ``timeout`` later). A batch that fails after retries
        yields its numbers in ``failed``, with the error, and the others go on.
        ``deadline`` bounds each request (all its retries) and each wait for another
        call's or process's lookup.

        Every number is checked before anything is sent (ValueError): a string, not empty,
        no surrounding whitespace; duplicates are asked once. Break out of the loop, or
        cancel it, and the batches still running are cancelled (use
        ``contextlib.aclosing`` to close at once); answers already received are kept.

        Example::

            async with contextlib.aclosing(arena.items.guid_batches(numbers)) as batches:
                async for batch in batches:
                    progress.advance(len(batch.numbers))
                    checkpoint.save(batch.found)            # {number: guid or None}
                    failed.update(batch.failed)             # {number: error}
        """
        if isinstance(numbers, str | bytes) or not isinstance(numbers, Iterable):
            raise ValueError("numbers must be an iterable of item numbers (not one string)")
        wanted = list(dict.fromkeys(check_number(n) for n in numbers))
        check_page_size(page_size, maximum=MAX_PAGE_SIZE)
        check_deadline(deadline)
        planner = NumberBatches(self._items_url, page_size=page_size)
        for number in wanted:
            planner.check(number)

        async def fetch(batch: Sequence[str], deadline: float | None, sent: list[int],
                        ) -> dict[str, str | None]:
            found: list[Item] = []
            seen: set[str] = set()
            offset = 0
            while True:
                request = self._request("GET", "items", params=planner.params(batch, offset))
                sent[0] += 1
                page = await self._results(Item, request, deadline)
                fresh = [item for item in page if item.guid not in seen]
                found.extend(fresh)
                seen.update(item.guid for item in fresh)
                # A short page is the last; a full page of nothing new would repeat forever.
                if len(page) < page_size or not fresh:
                    return match_numbers(batch, found)
                offset += page_size

        return self._lookups.batches(wanted, plan=planner.split, fetch=fetch, deadline=deadline)

    def lookup_batches(self, numbers: Iterable[str], *, page_size: int = MAX_PAGE_SIZE,
                       ) -> builtins.list[builtins.list[str]]:
        """The batches (one request each, unless a page comes back full) that looking up
        ``numbers`` would send if none were known yet: for plans and cost estimates.
        Nothing is sent; the numbers are checked as :meth:`guid_batches` checks them.

        Example: ``requests = len(arena.items.lookup_batches(numbers))`` (300 numbers: 6)
        """
        if isinstance(numbers, str | bytes) or not isinstance(numbers, Iterable):
            raise ValueError("numbers must be an iterable of item numbers (not one string)")
        wanted = list(dict.fromkeys(check_number(n) for n in numbers))
        check_page_size(page_size, maximum=MAX_PAGE_SIZE)
        planner = NumberBatches(self._items_url, page_size=page_size)
        for number in wanted:
            planner.check(number)
        return planner.split(wanted)

    async def guids_for(self, numbers: Iterable[str], *, page_size: int = MAX_PAGE_SIZE,
                        deadline: float | None = None) -> dict[str, str | None]:
        """Item numbers to GUIDs: ``{number: guid}``, None for a number no item has; the
        keys are the distinct numbers in the order given.

        Runs :meth:`guid_batches` (the same arguments and rules) to the end: numbers known to
        this client or to the share cost nothing, the rest go in batches of about 50 per
        request (300 numbers: 6 requests). When several items have one number (revisions),
        the GUID is that of the first listed whose number is exactly the one asked (else
        the first that matches ignoring case), and a warning is logged.

        When some batches fail after retries, :class:`~arena_async.LookupFailedError` is
        raised once every batch is done: its ``found`` holds every answer (in the order
        given) and ``failed`` maps each number not looked up to its batch's error (also the
        error's ``__cause__``). The answers received stay known, so asking again spends
        requests only on the failed numbers.

        Example::

            try:
                guids = await arena.items.guids_for(["PN-000123", "PN-000124"])
            except LookupFailedError as exc:
                guids, retry = exc.found, list(exc.failed)
            missing = [n for n, g in guids.items() if g is None]
        """
        wanted = (list(numbers)
                  if isinstance(numbers, Iterable) and not isinstance(numbers, str | bytes)
                  else numbers)  # an iterator is read once; guid_batches checks the rest
        found: dict[str, str | None] = {}
        failed: dict[str, BaseException] = {}
        async with contextlib.aclosing(self.guid_batches(wanted, page_size=page_size,
                                                         deadline=deadline)) as batches:
            async for batch in batches:
                found.update(batch.found)
                failed.update(batch.failed)
        order = list(dict.fromkeys(wanted))  # checked by guid_batches: strings
        ordered = {n: found[n] for n in order if n in found}
        if failed:
            first = next(iter(failed.values()))
            raise LookupFailedError(ordered, {n: failed[n] for n in order if n in failed}
                                    ) from first
        return ordered


Items._sub_resources = attach_sub_resources(Items, "arena.items")
