"""``akana.tickets``: ``GET /api/tickets`` (start/count pages) and ``GET /api/tickets/{id}``.

Filters go to the server under their exact names (``APIID``, ``AppID``,
``RetrievingUserID``, ``AuthorID``, ``ItemID``, ``Tag``, ``Label``, ``State``,
``IncludeComments``, ``NumberOfComments``, ``IncludeActions``, ``SortBy``) with ``start``
and ``count``; booleans as ``true``/``false``; a filter left None is not sent. Every
argument is checked before anything is sent.
"""

from __future__ import annotations

import builtins
import inspect
import logging
from collections.abc import AsyncGenerator, Callable
from typing import (
    Annotated,
    Any,
    Final,
    Protocol,
    TypedDict,
    TypeVar,
    Unpack,
    cast,
    get_args,
    get_type_hints,
)

from .._checks import (
    check_deadline,
    check_int,
    check_max_items,
    check_offset,
    check_optional_flag,
    check_page_size,
    check_text,
)
from .._convert import loads, structure
from .._envelope import AKANA_LISTING, read_listing
from .._pagination import paginate, records
from .._protocol import BaseURL, Request, validate_id
from .._transport import Transport
from ..errors import ErrorDetail, NotFoundError, ResponseFormatError, excerpt
from ..models.akana import TICKETS_KEY, Ticket
from ..models.common import Page

__all__ = ["DEFAULT_PAGE_SIZE", "KNOWN_API_VERSIONS", "TICKET_STATES", "TicketFilters",
           "Tickets"]

log: logging.Logger = logging.getLogger(__name__)

#: The platform's default ``count``.
DEFAULT_PAGE_SIZE = 100
#: The ``application/vnd.soa.{v}+json`` versions the platform documents.
KNOWN_API_VERSIONS = ("v72", "v80", "v81")
#: The ticket states the platform documents, as the ``State`` filter sends them.
TICKET_STATES = ("OPEN", "RESOLVED", "CLOSED", "REOPEN")

_LIST_PATH = "/api/tickets"

F = TypeVar("F", bound=Callable[..., Any])


class Lapses(Protocol):
    """What the listing asks of the auth about empty pages
    (:class:`~arena_async.akana._auth.AkanaAuth`): ``mark`` before a page, ``doubts``
    after an empty one (given the token generation that answered it), ``confirm`` a live
    token before asking again."""

    def mark(self, pool: Transport) -> Any: ...

    def doubts(self, pool: Transport, mark: Any, answered: int) -> bool: ...

    async def confirm(self, pool: Transport, mark: Any) -> None: ...


class TicketFilters(TypedDict, total=False):
    """The filters of ``GET /api/tickets``, the keyword arguments of
    :meth:`Tickets.pages`, :meth:`Tickets.iter` and :meth:`Tickets.list`: the one place
    they are declared (each annotated with its wire name, in the order they are sent).

    A filter left out or None is not sent; text must not be blank; booleans go as
    ``true`` / ``false``; ``number_of_comments`` is an integer >= 0; ``state`` one of
    :data:`TICKET_STATES` (``OPEN``, ``RESOLVED``, ``CLOSED``, ``REOPEN``) is sent in
    capitals whatever its case; another is sent as given, with a WARNING (the platform's
    list of states is not confirmed, and a state it does not have matches no ticket).

    Example: ``filters: TicketFilters = {"state": "OPEN", "include_comments": False}``,
    then ``await akana.tickets.list(**filters)``.
    """

    api_id: Annotated[str | None, "APIID"]
    app_id: Annotated[str | None, "AppID"]
    retrieving_user_id: Annotated[str | None, "RetrievingUserID"]
    author_id: Annotated[str | None, "AuthorID"]
    item_id: Annotated[str | None, "ItemID"]
    tag: Annotated[str | None, "Tag"]
    label: Annotated[str | None, "Label"]
    state: Annotated[str | None, "State"]
    include_comments: Annotated[bool | None, "IncludeComments"]
    number_of_comments: Annotated[int | None, "NumberOfComments"]
    include_actions: Annotated[bool | None, "IncludeActions"]
    sort_by: Annotated[str | None, "SortBy"]


def _wire_text(name: str, value: object) -> str | None:
    return check_text(name, value, blank=False)


def _wire_flag(name: str, value: object) -> str | None:
    flag = check_optional_flag(name, value)
    return None if flag is None else "true" if flag else "false"


def _wire_count(name: str, value: object) -> str | None:
    count = check_int(name, value, minimum=0, optional=True)
    return None if count is None else str(count)


def _wire_state(name: str, value: object) -> str | None:
    text = _wire_text(name, value)
    if text is None:
        return None
    state = text.strip().upper()
    if state not in TICKET_STATES:
        # The documented list is not confirmed verbatim: a platform may have more states,
        # so another is sent as given. But a misspelt one filters every ticket out (an
        # empty list that looks like an answer): said at WARNING.
        log.warning("%s %r is not one of the documented ticket states (%s): sent as given; "
                    "a state the platform does not have matches no ticket", name, value,
                    ", ".join(TICKET_STATES))
        return text
    return state


_ENCODERS: Final[dict[type, Callable[[str, object], str | None]]] = {
    str: _wire_text, bool: _wire_flag, int: _wire_count}
#: Filters with a check of their own, beyond their type's.
_OWN_ENCODERS: Final[dict[str, Callable[[str, object], str | None]]] = {"state": _wire_state}


def _filter_table() -> tuple[tuple[str, str, Any, Callable[[str, object], str | None]], ...]:
    """(python name, wire name, type, check-and-encode) of each :class:`TicketFilters` key,
    read from its annotations."""
    table = []
    for name, hint in get_type_hints(TicketFilters, include_extras=True).items():
        optional, wire = get_args(hint)  # Annotated[X | None, "Wire"]
        base = next(t for t in get_args(optional) if t is not type(None))
        table.append((name, wire, optional, _OWN_ENCODERS.get(name) or _ENCODERS[base]))
    return tuple(table)


#: python name -> wire name, type and check-and-encode, in the order they are sent.
_FILTERS: Final = _filter_table()
_FILTER_NAMES: Final = frozenset(name for name, *_ in _FILTERS)


def ticket_params(**filters: Unpack[TicketFilters]) -> dict[str, str]:
    """The query of ``GET /api/tickets`` for these filters (None ones left out), checked.

    Example: ``ticket_params(state="OPEN", include_actions=False)`` →
    ``{"State": "OPEN", "IncludeActions": "false"}``
    """
    given: dict[str, object] = dict(filters)
    unknown = given.keys() - _FILTER_NAMES
    if unknown:  # what Python says of a keyword the signature does not have
        raise TypeError(f"got an unexpected keyword argument {min(unknown)!r} (ticket "
                        f"filters: {', '.join(name for name, *_ in _FILTERS)})")
    params: dict[str, str] = {}
    for name, wire, _, encode in _FILTERS:
        value = encode(name, given.get(name))
        if value is not None:
            params[wire] = value
    return params


def _listing_signature(method: F) -> F:
    """Show every filter of :class:`TicketFilters` in ``help()`` and
    ``inspect.signature``, each with its type, before the method's own keyword arguments
    (``**filters: Unpack[TicketFilters]`` gives the same to type checkers and IDEs)."""
    own = inspect.signature(method)
    kw = inspect.Parameter.KEYWORD_ONLY
    params = [p for p in own.parameters.values() if p.kind is not p.VAR_KEYWORD]
    filters = [inspect.Parameter(name, kw, default=None, annotation=annotation)
               for name, _, annotation, _ in _FILTERS]
    method.__signature__ = own.replace(  # type: ignore[attr-defined]
        parameters=[params[0], *filters, *params[1:]])
    return method


class Tickets:
    """``akana.tickets``: list tickets page by page (``start``/``count``) or get one.

    The listing methods take the filters of :class:`TicketFilters` as keyword arguments.

    Example::

        async for t in akana.tickets.iter(state="OPEN", include_comments=False):
            print(t.ticket_id, t.title)
    """

    def __init__(self, pool: Transport, base_url: str, api_version: str,
                 lapses: Lapses | None = None) -> None:
        self._transport = pool
        self._lapses = lapses
        self._base_url = base_url
        self._base = BaseURL(base_url)
        self._api_version = api_version

    @_listing_signature
    def pages(self, *, page_size: int = DEFAULT_PAGE_SIZE, start: int = 0,
              max_items: int | None = None, deadline: float | None = None,
              **filters: Unpack[TicketFilters]) -> AsyncGenerator[Page[Ticket], None]:
        """Stream pages of tickets from ``start``; ``page.next_start`` is None on the last.

        Filters: :class:`TicketFilters`. The platform sends no total: the listing ends at
        the first page shorter than ``page_size`` (an empty one when the total is a
        multiple of it). ``max_items`` shrinks the last ``count`` so nothing is fetched
        only to be dropped. Arguments are checked now, before anything is sent;
        ``deadline`` bounds each page request (all its retries). A failure carries
        ``resume_from`` (the ``start`` to resume at).

        Example::

            async for page in akana.tickets.pages(state="OPEN", page_size=500):
                save(page.items); checkpoint = page.next_start
        """
        params = ticket_params(**filters)
        check_page_size(page_size, maximum=None)
        check_offset("start", start)
        check_max_items(max_items)
        check_deadline(deadline)

        async def fetch(at: int, count: int) -> builtins.list[Ticket]:
            query = {**params, "start": str(at), "count": str(count)}
            request = Request.on(self._base, "GET", "api", "tickets", path=_LIST_PATH,
                                 params=query)
            return await self._page(request, deadline)

        return paginate(fetch, page_size=page_size, offset=start, max_items=max_items,
                        position="start")

    @_listing_signature
    def iter(self, *, page_size: int = DEFAULT_PAGE_SIZE, start: int = 0,
             max_items: int | None = None, deadline: float | None = None,
             **filters: Unpack[TicketFilters]) -> AsyncGenerator[Ticket, None]:
        """Stream tickets in server order (newest first by default), at most ``max_items``
        (the same keyword arguments as :meth:`pages`).

        Example: ``async for t in akana.tickets.iter(api_id=api): ...``
        """
        return cast("AsyncGenerator[Ticket, None]", records(self.pages(
            page_size=page_size, start=start, max_items=max_items, deadline=deadline,
            **filters)))

    @_listing_signature
    async def list(self, *, page_size: int = DEFAULT_PAGE_SIZE, start: int = 0,
                   max_items: int | None = None, deadline: float | None = None,
                   **filters: Unpack[TicketFilters]) -> builtins.list[Ticket]:
        """Every ticket (from ``start``, up to ``max_items``) as one list (the same keyword
        arguments as :meth:`pages`).

        Example: ``tickets = await akana.tickets.list(label="com.soa.ticket.label.priority.high")``
        """
        return [t async for t in self.iter(page_size=page_size, start=start,
                                           max_items=max_items, deadline=deadline,
                                           **filters)]

    async def get(self, ticket_id: str, *, deadline: float | None = None) -> Ticket:
        """One ticket by its id (e.g. ``ticket11623.acmepaymentscorp``).

        Accepts a bare ticket object, ``{"Ticket": {...}}`` or ``{"Ticket": [one]}`` (the
        platform's single-ticket shape is unconfirmed). A ticket the user may not see is a
        :class:`~arena_async.NotFoundError`, like a missing one.

        Example: ``ticket = await akana.tickets.get("ticket11623.acmepaymentscorp")``
        """
        validate_id("ticket_id", ticket_id)
        path = f"{_LIST_PATH}/{ticket_id}"
        request = Request.on(self._base, "GET", "api", "tickets", ticket_id, path=path)
        try:
            response = await self._transport.send(request, deadline=deadline)
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
        """One page. An expired token may get an empty 200 rather than a 401: an empty
        page asked while (or just after) the token was due is not trusted but asked again,
        once, after a renewal or a new login (:meth:`AkanaAuth.confirm`)."""
        lapses = self._lapses
        mark = lapses.mark(self._transport) if lapses is not None else None
        tickets, answered = await self._ask(request, deadline)
        if tickets or lapses is None or mark is None \
                or not lapses.doubts(self._transport, mark, answered):
            return tickets
        await lapses.confirm(self._transport, mark)
        return (await self._ask(request, deadline))[0]

    async def _ask(self, request: Request,
                   deadline: float | None) -> tuple[builtins.list[Ticket], int]:
        """The page's tickets and the token generation that answered it."""
        try:
            response = await self._transport.send(request, deadline=deadline)
        except NotFoundError as exc:
            raise self._explained(exc, "") from None
        return (read_listing(response.body, Ticket, AKANA_LISTING, url=request.display),
                response.generation)

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
