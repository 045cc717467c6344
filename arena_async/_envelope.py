"""The one reader of listing envelopes, for both clients, and the one place orjson decodes.

Arena lists as ``{"count": n, "results": [...]}``, Akana as ``{"Ticket": [...]}`` (or a lone
ticket as an object, or ``{}``): :func:`read_listing` takes a page body to its records,
pure (no I/O), with the generated structurer on the common case and the converter of record
(``_convert``) deciding everything else, naming the wire path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs
from orjson import loads as _orjson_loads

from ._codegen import structurer
from ._convert import loads, structure
from .errors import ResponseFormatError, excerpt

__all__ = ["AKANA_LISTING", "ARENA_LISTING", "Envelope", "read_listing"]

T = TypeVar("T")


@attrs.frozen
class Envelope:
    """Where a listing's records are in its JSON object, and what stands for "none".

    ``key``: the records' list (``"results"``, ``"Ticket"``). ``empty_without_key``: a
    missing or null ``key`` is an empty page (Akana sends ``{}``); otherwise only with
    ``"count": 0`` (Arena). ``lone``: one record sent as an object, not a list of one (some
    XML-to-JSON mappers do this), is read as that list.
    Example: ``Envelope("results", empty_without_key=False, lone=False)``.
    """

    key: str
    empty_without_key: bool
    lone: bool


#: Arena's listings: ``{"count": n, "results": [...]}``.
ARENA_LISTING = Envelope("results", empty_without_key=False, lone=False)
#: Akana's ticket listings: ``{"Ticket": [...]}``, ``{"Ticket": {...}}`` or ``{}``.
AKANA_LISTING = Envelope("Ticket", empty_without_key=True, lone=True)


def _list_structurer(cl: Any) -> Callable[[Any], Any]:
    fn = _LISTS.get(cl)
    if fn is None:
        fn = _LISTS[cl] = structurer(list[cl])
    return fn


_LISTS: dict[Any, Callable[[Any], Any]] = {}


def read_listing(body: bytes, cl: type[T], envelope: Envelope, *, url: str = "") -> list[T]:
    """The records of one listing page: ``body`` decoded, its envelope read, each record
    structured into ``cl``. Pure (no I/O). A wrong shape raises :class:`ResponseFormatError`
    naming the wire path (``$``, ``$.results``, ``$.Ticket[2].TicketID`` ...).

    The common case first: orjson decodes an object whose list the generated structurer
    accepts. Anything else is decoded again by ``json`` and structured by the detailed
    converter, which answer (where orjson and ``json`` differ: NaN, lone surrogates,
    non-UTF-8, integers beyond 64 bits, the answer is ``json``'s).

    Example: ``records = read_listing(body, TrainingRecord, ARENA_LISTING, url=url)``
    """
    key = envelope.key
    try:
        data = _orjson_loads(body)
        if type(data) is dict:
            records = data.get(key)
            if type(records) is list:
                fast: list[T] = _list_structurer(cl)(records)
                return fast
    except Exception:  # refused: the checked path below decides
        pass
    data = loads(body, url=url)
    if not isinstance(data, dict):
        raise ResponseFormatError(f"expected an object with {key!r}", path="$",
                                  excerpt=excerpt(body), url=url)
    records = data.get(key)
    if records is None and (envelope.empty_without_key or data.get("count") == 0):
        return []
    if envelope.lone and isinstance(records, dict):
        records = [records]
    if not isinstance(records, list):
        raise ResponseFormatError("expected a list", path=f"$.{key}", excerpt=excerpt(body),
                                  url=url)
    checked: list[T] = structure(records, list[cl], path=f"$.{key}",  # type: ignore[valid-type]
                                 url=url, body=body)
    return checked
