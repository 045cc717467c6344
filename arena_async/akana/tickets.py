"""``akana.tickets``: ``GET /api/tickets`` (start/count pages) and ``GET /api/tickets/{id}``.

Filters go to the server under their exact names (``APIID``, ``AppID``,
``RetrievingUserID``, ``AuthorID``, ``ItemID``, ``Tag``, ``Label``, ``State``,
``IncludeComments``, ``NumberOfComments``, ``IncludeActions``, ``SortBy``) with ``start``
and ``count``; booleans as ``true``/``false``; a filter left None is not sent. Every
argument is checked before anything is sent.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncGenerator
from typing import Any, cast

from .._convert import loads, structure
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
from ..errors import ErrorDetail, NotFoundError, ResponseFormatError, excerpt
from ..models.akana import TICKETS_KEY, Ticket
from ..models.common import Page

__all__ = ["DEFAULT_PAGE_SIZE", "KNOWN_API_VERSIONS", "Tickets"]

#: The platform's default ``count``.
DEFAULT_PAGE_SIZE = 100
#: The ``application/vnd.soa.{v}+json`` versions the platform documents.
KNOWN_API_VERSIONS = ("v72", "v80", "v81")

_LIST_PATH = "/api/tickets"
# Python keyword -> the server's parameter name, in the order they are sent.
_STRING_FILTERS = (
    ("api_id", "APIID"),
    ("app_id", "AppID"),
    ("retrieving_user_id", "RetrievingUserID"),
    ("author_id", "AuthorID"),
    ("item_id", "ItemID"),
    ("tag", "Tag"),
    ("label", "Label"),
    ("state", "State"),
)


def _check_string(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string or None, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{name} must not be empty or blank")
    return value


def _check_bool(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True, False or None, got {value!r}")
    return "true" if value else "false"


def _check_count(name: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be None or an integer >= 0, got {value!r}")
    return str(value)


def ticket_params(
    *,
    api_id: str | None = None,
    app_id: str | None = None,
    retrieving_user_id: str | None = None,
    author_id: str | None = None,
    item_id: str | None = None,
    tag: str | None = None,
    label: str | None = None,
    state: str | None = None,
    include_comments: bool | None = None,
    number_of_comments: int | None = None,
    include_actions: bool | None = None,
    sort_by: str | None = None,
) -> dict[str, str]:
    """The query of ``GET /api/tickets`` for these filters (None ones left out), checked.

    Example: ``ticket_params(state="OPEN", include_actions=False)`` →
    ``{"State": "OPEN", "IncludeActions": "false"}``
    """
    given: dict[str, object] = {
        "api_id": api_id, "app_id": app_id, "retrieving_user_id": retrieving_user_id,
        "author_id": author_id, "item_id": item_id, "tag": tag, "label": label,
        "state": state,
    }
    params: dict[str, str] = {}
    for keyword, wire in _STRING_FILTERS:
        value = _check_string(keyword, given[keyword])
        if value is not None:
            params[wire] = value
    for wire, value in (
        ("IncludeComments", _check_bool("include_comments", include_comments)),
        ("NumberOfComments", _check_count("number_of_comments", number_of_comments)),
        ("IncludeActions", _check_bool("include_actions", include_actions)),
        ("SortBy", _check_string("sort_by", sort_by)),
    ):
        if value is not None:
            params[wire] = value
    return params


class Tickets:
    """``akana.tickets``: list tickets page by page (``start``/``count``) or get one.

    Example::

        async for t in akana.tickets.iter(state="OPEN", include_comments=False):
            print(t.ticket_id, t.title)
    """

    def __init__(self, pool: SessionPool, base_url: str, api_version: str) -> None:
        self._pool = pool
        self._base_url = base_url
        self._api_version = api_version

    def pages(
        self,
        *,
        api_id: str | None = None,
        app_id: str | None = None,
        retrieving_user_id: str | None = None,
        author_id: str | None = None,
        item_id: str | None = None,
        tag: str | None = None,
        label: str | None = None,
        state: str | None = None,
        include_comments: bool | None = None,
        number_of_comments: int | None = None,
        include_actions: bool | None = None,
        sort_by: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        start: int = 0,
        max_items: int | None = None,
        deadline: float | None = None,
    ) -> AsyncGenerator[Page[Ticket], None]:
        """Stream pages of tickets from ``start``; ``page.next_start`` is None on the last.

        The platform sends no total: the listing ends at the first page shorter than
        ``page_size`` (an empty one when the total is a multiple of it). ``max_items``
        shrinks the last ``count`` so nothing is fetched only to be dropped. Arguments
        are checked now, before anything is sent; ``deadline`` bounds each page request
        (all its retries). A failure carries ``resume_from`` (the ``start`` to resume at).

        Example::

            async for page in akana.tickets.pages(state="OPEN", page_size=500):
                save(page.items); checkpoint = page.next_start
        """
        params = ticket_params(
            api_id=api_id, app_id=app_id, retrieving_user_id=retrieving_user_id,
            author_id=author_id, item_id=item_id, tag=tag, label=label, state=state,
            include_comments=include_comments, number_of_comments=number_of_comments,
            include_actions=include_actions, sort_by=sort_by,
        )
        validate_page_size(page_size, maximum=None)
        validate_offset("start", start)
        validate_max_items(max_items)
        check_deadline(deadline)

        async def fetch(at: int, count: int) -> list[Ticket]:
            query = {**params, "start": str(at), "count": str(count)}
            request = Request("GET", build_url(self._base_url, "api", "tickets"), _LIST_PATH,
                              params=query)
            return await self._page(request, deadline)

        return paginate(fetch, page_size=page_size, offset=start, max_items=max_items,
                        position="start")

    def iter(
        self,
        *,
        api_id: str | None = None,
        app_id: str | None = None,
        retrieving_user_id: str | None = None,
        author_id: str | None = None,
        item_id: str | None = None,
        tag: str | None = None,
        label: str | None = None,
        state: str | None = None,
        include_comments: bool | None = None,
        number_of_comments: int | None = None,
        include_actions: bool | None = None,
        sort_by: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        start: int = 0,
        max_items: int | None = None,
        deadline: float | None = None,
    ) -> AsyncGenerator[Ticket, None]:
        """Stream tickets in server order (newest first by default), at most ``max_items``
        (the same keyword arguments as :meth:`pages`).

        Example: ``async for t in akana.tickets.iter(api_id=api): ...``
        """
        return cast("AsyncGenerator[Ticket, None]", records(self.pages(
            api_id=api_id, app_id=app_id, retrieving_user_id=retrieving_user_id,
            author_id=author_id, item_id=item_id, tag=tag, label=label, state=state,
            include_comments=include_comments, number_of_comments=number_of_comments,
            include_actions=include_actions, sort_by=sort_by, page_size=page_size,
            start=start, max_items=max_items, deadline=deadline,
        )))

    async def list(
        self,
        *,
        api_id: str | None = None,
        app_id: str | None = None,
        retrieving_user_id: str | None = None,
        author_id: str | None = None,
        item_id: str | None = None,
        tag: str | None = None,
        label: str | None = None,
        state: str | None = None,
        include_comments: bool | None = None,
        number_of_comments: int | None = None,
        include_actions: bool | None = None,
        sort_by: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        start: int = 0,
        max_items: int | None = None,
        deadline: float | None = None,
    ) -> list[Ticket]:
        """Every ticket (from ``start``, up to ``max_items``) as one list.

        Example: ``tickets = await akana.tickets.list(label="com.soa.ticket.label.priority.high")``
        """
        return [t async for t in self.iter(
            api_id=api_id, app_id=app_id, retrieving_user_id=retrieving_user_id,
            author_id=author_id, item_id=item_id, tag=tag, label=label, state=state,
            include_comments=include_comments, number_of_comments=number_of_comments,
            include_actions=include_actions, sort_by=sort_by, page_size=page_size,
            start=start, max_items=max_items, deadline=deadline,
        )]

    async def get(self, ticket_id: str, *, deadline: float | None = None) -> Ticket:
        """One ticket by its id (e.g. ``ticket11623.acmepaymentscorp``).

        Accepts a bare ticket object, ``{"Ticket": {...}}`` or ``{"Ticket": [one]}`` (the
        platform's single-ticket shape is unconfirmed). A ticket the user may not see is a
        :class:`~arena_async.NotFoundError`, like a missing one.

        Example: ``ticket = await akana.tickets.get("ticket11623.acmepaymentscorp")``
        """
        validate_id("ticket_id", ticket_id)
        path = f"{_LIST_PATH}/{ticket_id}"
        request = Request("GET", build_url(self._base_url, "api", "tickets", ticket_id), path)
        try:
            response = await self._pool.send(request, deadline=deadline)
        except NotFoundError as exc:
            raise self._explained(exc, f"no ticket {ticket_id!r} visible to this user? If "
                                       "every ticket gives 404: ") from None
        data = loads(response.body, url=request.display)
        if not isinstance(data, dict):
            raise ResponseFormatError("expected a ticket object", path="$",
                                      excerpt=excerpt(response.body), url=request.display)
        if TICKETS_KEY not in data:
            return structure(data, Ticket, url=request.display, body=response.body)
        wrapped: Any = data[TICKETS_KEY]
        if isinstance(wrapped, dict):
            return structure(wrapped, Ticket, path=f"$.{TICKETS_KEY}", url=request.display,
                             body=response.body)
        if wrapped is None or wrapped == []:
            raise NotFoundError(response.status, [ErrorDetail(None, (
                f"the answer held no ticket {ticket_id!r} (an empty {TICKETS_KEY!r} list)"))],
                method="GET", url=request.display)
        if not isinstance(wrapped, list):
            raise ResponseFormatError("expected a ticket or a list of tickets",
                                      path=f"$.{TICKETS_KEY}", excerpt=excerpt(response.body),
                                      url=request.display)
        tickets: builtins.list[Ticket] = structure(wrapped, list[Ticket], path=f"$.{TICKETS_KEY}",
                                          url=request.display, body=response.body)
        for ticket in tickets:
            if ticket.ticket_id == ticket_id:
                return ticket
        if len(tickets) == 1:
            return tickets[0]
        raise ResponseFormatError(f"expected one ticket, got {len(tickets)} without "
                                  f"{ticket_id!r}", path=f"$.{TICKETS_KEY}",
                                  url=request.display)

    async def _page(self, request: Request, deadline: float | None) -> builtins.list[Ticket]:
        try:
            response = await self._pool.send(request, deadline=deadline)
        except NotFoundError as exc:
            raise self._explained(exc, "") from None
        data = loads(response.body, url=request.display)
        if not isinstance(data, dict):
            raise ResponseFormatError(f"expected an object with {TICKETS_KEY!r}", path="$",
                                      excerpt=excerpt(response.body), url=request.display)
        raw: Any = data.get(TICKETS_KEY)
        if raw is None:
            return []  # an empty result may come as {}
        if isinstance(raw, dict):
            raw = [raw]  # some XML-to-JSON mappers send a lone element as an object
        if not isinstance(raw, list):
            raise ResponseFormatError("expected a list", path=f"$.{TICKETS_KEY}",
                                      excerpt=excerpt(response.body), url=request.display)
        tickets: builtins.list[Ticket] = structure(raw, list[Ticket], path=f"$.{TICKETS_KEY}",
                                          url=request.display, body=response.body)
        return tickets

    def _explained(self, error: NotFoundError, lead: str) -> NotFoundError:
        """``error`` with a hint: Akana also answers 404 to an Accept it does not serve."""
        details = list(error.errors)
        if not details and error.body_excerpt:
            details.append(ErrorDetail(None, f"body: {error.body_excerpt!r}"))
        known = ", ".join(KNOWN_API_VERSIONS)
        details.append(ErrorDetail(None, (
            f"{lead}Akana answers 404 to an Accept it does not serve: check "
            f"api_version={self._api_version!r} (Accept: application/vnd.soa."
            f"{self._api_version}+json; documented: {known}) and that base_url is the "
            "portal root")))
        return NotFoundError(error.status, details, method=error.method, url=error.url,
                             body_excerpt=error.body_excerpt, attempts=error.attempts,
                             retry_after=error.retry_after)
