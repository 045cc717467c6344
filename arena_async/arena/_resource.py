"""What every Arena resource shares: its pool and base URL, requests carrying their wire
URL, one answer or one listing page structured (through the answer cache, when the client
has one), and the listing helpers.

An item sub-resource (``/items/{item_guid}/<segment>``) is declared once: a class deriving
from :class:`SubResource` (one request per listing) or :class:`PagedSubResource` (offset /
limit pages), parameterised by its model, with a :class:`Child` record (wire segment,
model, id parameter name, what its records are called). Its read methods (``list``, and
``pages`` / ``iter`` when it pages) are inherited, typed by the model; ``get`` is a thin
typed method per class (its id parameter keeps its own name) over :meth:`SubResource._get`.
The resource that holds sub-resources declares each as a typed attribute;
:func:`attach_sub_resources` reads those attributes, once, to build them and to list them
in ``help()``."""

from __future__ import annotations

import builtins
import inspect
import types
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import (
    Any,
    ClassVar,
    Generic,
    ParamSpec,
    TypeVar,
    cast,
    get_args,
    get_origin,
    get_type_hints,
)

import attrs

from .._checks import check_deadline, check_max_items, check_offset, check_page_size
from .._convert import structure_json
from .._envelope import ARENA_LISTING, read_listing
from .._pagination import paginate, records
from .._protocol import BaseURL, Request, validate_id
from .._transport import Transport
from ..models.common import Page

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "Child",
    "PagedSubResource",
    "Resource",
    "SubResource",
    "arguments_of",
    "attach_sub_resources",
    "records_of",
]

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


@attrs.frozen
class Child:
    """The declaration of an item sub-resource, ``/items/{item_guid}/<segment>`` (its model
    is the class's type parameter: ``SubResource[Model]``).

    ``segment``: the wire path segment; ``id_name``: the name of ``get``'s record id
    parameter (in its checks' messages); ``noun``: what the records are called, plural
    (in the generated docstrings).

    Example: ``Child("tickets", "assoc_guid", "ticket references")``
    """

    segment: str
    id_name: str
    noun: str


class SubResource(Resource, Generic[T]):
    """An item sub-resource whose listing is one request: :meth:`list`, and ``get`` by id
    (a subclass's thin typed method over :meth:`_get`). A subclass sets :attr:`child`.

    Example::

        class ItemTickets(SubResource[ItemTicketReference]):
            child: ClassVar[Child] = Child("tickets", "assoc_guid", "ticket references")
    """

    #: The declaration: wire segment, id parameter name, noun.
    child: ClassVar[Child]
    #: Whether the listing pages by offset/limit (:class:`PagedSubResource`).
    paged: ClassVar[bool] = False
    #: The records' class: the type parameter of the subclass's base.
    model: type[T]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            args = get_args(base)
            if (isinstance(get_origin(base), type) and issubclass(get_origin(base), SubResource)
                    and args and isinstance(args[0], type)):
                cls.model = args[0]

    def __init__(self, pool: Transport, base_url: str) -> None:
        super().__init__(pool, base_url)
        # Read per request: an instance attribute is found faster than the class's.
        self._model: type[T] = self.model
        self._segment = self.child.segment

    async def list(self, item_guid: str, *, deadline: float | None = None) -> list[T]:
        """Every record of an item's sub-resource (one request)."""
        validate_id("item_guid", item_guid)
        if deadline is not None:  # (None, the common case, needs no check)
            check_deadline(deadline)
        return await self._results(
            self._model, Request.on(self._base, "GET", "items", item_guid, self._segment),
            deadline)

    async def _get(self, item_guid: str, record_guid: str, deadline: float | None) -> T:
        """One record by its GUID, ``GET /items/{item_guid}/<segment>/{record_guid}``."""
        child = self.child
        return await self._child(self.model, item_guid, child.segment, child.id_name,
                                 record_guid, deadline=deadline)


class PagedSubResource(SubResource[T]):
    """An item sub-resource whose listing pages by offset/limit: :meth:`pages`,
    :meth:`iter` and :meth:`list` take the same arguments.

    Example::

        class ItemTrainingRecords(PagedSubResource[TrainingRecord]):
            child: ClassVar[Child] = Child("trainingrecords", "record_guid", "training records")
    """

    paged: ClassVar[bool] = True

    def pages(self, item_guid: str, page_size: int = DEFAULT_PAGE_SIZE, offset: int = 0, *,
              max_items: int | None = None, deadline: float | None = None,
              ) -> AsyncGenerator[Page[T], None]:
        """Stream pages from ``offset``; ``page.next_offset`` is None on the last page.

        Arguments are checked now, before anything is sent. ``deadline`` bounds each page
        request (all its retries).
        """
        validate_id("item_guid", item_guid)
        check_page_size(page_size, maximum=MAX_PAGE_SIZE)
        check_offset("offset", offset)
        check_max_items(max_items)
        check_deadline(deadline)
        segment, model = self.child.segment, self.model

        async def fetch(at: int, limit: int) -> builtins.list[T]:
            params = {"offset": str(at), "limit": str(limit)}
            request = self._request("GET", "items", item_guid, segment, params=params)
            return await self._results(model, request, deadline)

        return paginate(fetch, page_size=page_size, offset=offset, max_items=max_items)

    def iter(self, item_guid: str, page_size: int = DEFAULT_PAGE_SIZE, offset: int = 0, *,
             max_items: int | None = None, deadline: float | None = None,
             ) -> AsyncGenerator[T, None]:
        """Stream records from ``offset``, at most ``max_items`` of them (the same
        arguments as :meth:`pages`)."""
        return records_of(self.pages(item_guid, page_size, offset, max_items=max_items,
                                     deadline=deadline))

    async def list(self, item_guid: str, page_size: int = DEFAULT_PAGE_SIZE,
                   offset: int = 0, *, max_items: int | None = None,
                   deadline: float | None = None) -> builtins.list[T]:
        """Every record (from ``offset``, up to ``max_items``) as one list (the same
        arguments as :meth:`pages`)."""
        return [rec async for rec in self.iter(item_guid, page_size, offset,
                                               max_items=max_items, deadline=deadline)]


#: The docstrings of the inherited read methods, per sub-resource: ``{path}`` is
#: ``/items/{item_guid}/<segment>``, ``{noun}`` the records, ``{at}`` the resource's
#: attribute path (``arena.items.tickets``).
_READ_DOCS: dict[tuple[bool, str], str] = {
    (False, "list"): """All {noun} of an item, ``GET {path}`` (one request).

        Example: ``records = await {at}.list(item_guid)``
        """,
    (True, "pages"): """Stream pages of an item's {noun} (``GET {path}``) from ``offset``;
        ``page.next_offset`` is None on the last page.

        Arguments are checked now, before anything is sent. ``deadline`` bounds each page
        request (all its retries). Example::

            async for page in {at}.pages(item_guid, page_size=100):
                save(page.items); checkpoint = page.next_offset
        """,
    (True, "iter"): """Stream an item's {noun} from ``offset``, at most ``max_items`` of them
        (the same arguments as :meth:`pages`).

        Example: ``async for record in {at}.iter(item_guid): ...``
        """,
    (True, "list"): """Every one of an item's {noun} (from ``offset``, up to ``max_items``) as
        one list (the same arguments as :meth:`pages`).

        Example: ``records = await {at}.list(item_guid, max_items=1000)``
        """,
}


def _own_copy(owner: type, name: str, func: Callable[..., Any], model: type, doc: str,
              ) -> None:
    """Give ``owner`` its own copy of an inherited method, documented and annotated for it
    (``help()`` then shows what this sub-resource lists, typed by ``model``; the code is
    the base's)."""
    copy = types.FunctionType(func.__code__, func.__globals__, name, func.__defaults__,
                              func.__closure__)
    copy.__kwdefaults__ = dict(func.__kwdefaults__ or {})
    copy.__annotations__ = {
        key: hint[model] if getattr(hint, "__parameters__", ()) else hint
        for key, hint in get_type_hints(func).items()}
    copy.__doc__ = inspect.cleandoc(doc)
    copy.__qualname__ = f"{owner.__qualname__}.{name}"
    copy.__module__ = owner.__module__
    setattr(owner, name, copy)


#: What :func:`attach_sub_resources` finds: ``(attribute, class)`` pairs, in order.
SubResources = tuple[tuple[str, type["SubResource[Any]"]], ...]


def attach_sub_resources(owner: type[Resource], at: str) -> SubResources:
    """The sub-resources ``owner`` declares (its attributes annotated with a
    :class:`SubResource` class, in order), made ready once: each class gets its read
    methods documented for it (``at`` is the owner's attribute path, ``arena.items``) and
    ``owner``'s docstring lists them. ``owner.__init__`` builds one of each from the
    table returned.

    Example: ``Items._sub_resources = attach_sub_resources(Items, "arena.items")``
    """
    found = tuple((name, hint) for name, hint in get_type_hints(owner).items()
                  if isinstance(hint, type) and issubclass(hint, SubResource))
    lines = []
    for name, resource in found:
        child = resource.child
        path = f"/items/{{item_guid}}/{child.segment}"
        for (paged, method), doc in _READ_DOCS.items():
            if paged == resource.paged and method not in vars(resource):
                _own_copy(resource, method, getattr(resource, method), resource.model,
                          doc.format(noun=child.noun, path=path, at=f"{at}.{name}"))
        summary = inspect.getdoc(resource) or ""
        lines.append(f"- ``{name}`` (:class:`{resource.__name__}`): {summary.splitlines()[0]}")
    listing = "\n".join(f"    {line}" for line in lines)
    owner.__doc__ = (f"{owner.__doc__ or ''}\n    Sub-resources (a typed attribute each):"
                     f"\n\n{listing}\n")
    return found
