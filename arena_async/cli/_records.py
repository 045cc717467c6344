"""How exported records look: JSONL objects and flattened CSV rows.

JSONL: one object per line, ``item_guid`` first (Arena exports), then the record's fields
under their snake_case model names, nested as on the wire; datetimes as
``YYYY-MM-DDTHH:MM:SSZ``; absent values as ``null``.

CSV: a fixed header per kind; nested objects flattened into ``<field>_<subfield>`` columns,
lists joined with ``;``, absent values empty, booleans ``true``/``false``.

Training records: a listing carries no dates, so without ``--details`` the rows have no
``due_date`` / ``signed_date_time`` at all (not empty columns that look like data); with
``--details`` each record is fetched (one more request per record) and both are there.

BOM lines (``export bom``): each line's number, quantity, reference designators and
notes, and the child item (GUID, number, name, revision); a whole number is written
without ``.0``.

Items (``export items``): the item's own fields; JSONL has every field of the model
(``view="full"``), CSV the common ones flattened.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from ..arena import ArenaClient
from ..models.common import Page

__all__ = [
    "AKANA_TICKET_CSV",
    "ITEM_CSV",
    "ITEM_KINDS",
    "Columns",
    "ItemKind",
    "encode_csv",
    "encode_jsonl",
    "field",
    "to_wire",
    "whole",
]

LIST_SEPARATOR = ";"


def _iso(value: datetime) -> str:
    text = value.astimezone(UTC).isoformat()
    return text.removesuffix("+00:00") + "Z"


def _serialize(_inst: Any, _field: Any, value: Any) -> Any:
    return _iso(value) if isinstance(value, datetime) else value


def to_wire(record: Any) -> dict[str, Any]:
    """A model as a JSON-able dict of its snake_case fields (datetimes as ISO 8601 UTC)."""
    data: dict[str, Any] = attrs.asdict(record, value_serializer=_serialize)
    return data


def cell(value: Any) -> str:
    """One CSV cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, list | tuple):
        return LIST_SEPARATOR.join(cell(v) for v in value)
    return str(value)


def encode_jsonl(objects: Sequence[dict[str, Any]]) -> bytes:
    """JSON lines, UTF-8, one ``\\n``-terminated line per object."""
    return b"".join(
        json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        for obj in objects
    )


def encode_csv(rows: Sequence[Sequence[Any]]) -> bytes:
    """CSV rows (RFC 4180 quoting, ``\\r\\n`` line ends), UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerows([[cell(v) for v in row] for row in rows])
    return buffer.getvalue().encode()


#: An item's records in one request: ``(arena, item_guid)``.
Fetch = Callable[[ArenaClient, str], Awaitable[Sequence[Any]]]
#: An item's records page by page: ``(arena, item_guid, page_size, offset)``.
PagesOf = Callable[[ArenaClient, str, int, int], AsyncGenerator[Page[Any], None]]
#: One record fetched on its own: ``(arena, item_guid, record)``.
Detail = Callable[[ArenaClient, str, Any], Awaitable[Any]]
#: How a CSV cell is read from a record.
Getter = Callable[[Any], Any]


def field(path: str) -> Getter:
    """A getter of a dotted attribute path: ``field("lifecycle_phase.stage")`` reads
    ``record.lifecycle_phase.stage``, None where a step is None (an absent nested object).
    """
    names = tuple(path.split("."))
    if len(names) == 1:
        name = names[0]
        return lambda record: getattr(record, name, None)

    def get(record: Any) -> Any:
        value = record
        for step in names:
            if value is None:
                return None
            value = getattr(value, step, None)
        return value

    return get


def whole(path: str) -> Getter:
    """:func:`field` of a number, a whole one written without ``.0`` (``4``, ``0.5``)."""
    get = field(path)

    def number(record: Any) -> Any:
        value = get(record)
        return int(value) if isinstance(value, float) and value.is_integer() else value

    return number


class Columns:
    """A CSV layout: ``(column name, getter)`` pairs in order, the one place a kind's
    columns are declared (a new field is one more pair). Two layouts add up (``+``).

    Example::

        plan = Columns(("guid", field("guid")), ("plan_number", field("plan.number")))
        plan.names          # ('guid', 'plan_number')
        plan.row(record)    # [record.guid, record.plan.number]
    """

    __slots__ = ("getters", "names")

    def __init__(self, *pairs: tuple[str, Getter]) -> None:
        names = tuple(name for name, _ in pairs)
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"CSV columns named twice: {', '.join(twice)}")
        self.names: tuple[str, ...] = names
        self.getters: tuple[Getter, ...] = tuple(get for _, get in pairs)

    def __add__(self, other: Columns) -> Columns:
        return Columns(*zip(self.names, self.getters, strict=True),
                       *zip(other.names, other.getters, strict=True))

    def row(self, record: Any) -> list[Any]:
        """The record's cells, in :attr:`names` order."""
        return [get(record) for get in self.getters]


@attrs.frozen
class ItemKind:
    """One kind of per-item Arena export, declared in one entry of :data:`ITEM_KINDS`:
    its name, its CSV columns and how its records are fetched.

    ``csv``: the record's columns; the rows of a per-item kind begin with the item's GUID
    (``item_guid``), those of ``export items`` (``own``) are the items themselves. Records
    come from ``fetch`` (one request per item) or ``pages`` (paged, resumable mid-item),
    and with ``detail`` each record is fetched again on its own (``--details``).
    """

    name: str
    title: str
    csv: Columns
    #: One request per item: ``fetch(arena, item_guid)`` -> the records.
    fetch: Fetch | None = None
    #: Paged: ``pages(arena, item_guid, page_size, offset)`` -> the pages.
    pages: PagesOf | None = None
    #: Each record fetched on its own for what a listing lacks: ``detail(arena,
    #: item_guid, record)`` -> the record in full (training records' dates).
    detail: Detail | None = None
    #: JSONL fields left out (dates that a listing does not carry).
    omit: tuple[str, ...] = ()
    #: The records are the items themselves (``export items``): no ``item_guid`` column.
    own: bool = False
    #: An ``item_number`` column after ``item_guid`` (items selected by number).
    numbered: bool = False
    #: The help of its ``export <name>`` command, registered with the options every
    #: per-item export shares; None: the command is written by hand (own options) or the
    #: kind is another's variant (``training-records+details``).
    help: str | None = None

    def __attrs_post_init__(self) -> None:
        if not (self.own or self.fetch is not None or self.pages is not None):
            raise ValueError(f"item kind {self.name!r} needs a fetch (or pages, or own)")

    @property
    def paged(self) -> bool:
        """The records come page by page (:attr:`pages`)."""
        return self.pages is not None

    @property
    def details(self) -> bool:
        """Each record is fetched again on its own (:attr:`detail`, ``--details``)."""
        return self.detail is not None

    @property
    def columns(self) -> tuple[str, ...]:
        """The CSV header (``item_guid``, with :attr:`numbered` ``item_number``, then the
        record's columns)."""
        if self.own:
            return self.csv.names
        head = ("item_guid", "item_number") if self.numbered else ("item_guid",)
        return (*head, *self.csv.names)

    def with_numbers(self) -> ItemKind:
        """The same kind with an ``item_number`` column after ``item_guid`` (the same
        name: the column follows from the selection, which the checkpoint already
        fingerprints).

        Example: ``ITEM_KINDS["ticket-refs"].with_numbers().columns[:2]`` is
        ``("item_guid", "item_number")``
        """
        if self.own or self.numbered:
            return self
        return attrs.evolve(self, numbered=True)

    def objects(self, item_guid: str, records: Sequence[Any], *,
                number: str | None = None) -> list[dict[str, Any]]:
        """JSONL objects: the item's GUID (and, :attr:`numbered`, its ``number`` as
        ``item_number``), then the record's fields."""
        if self.own:
            return [to_wire(r) for r in records]
        head: dict[str, Any] = {"item_guid": item_guid}
        if self.numbered:
            head["item_number"] = number
        rows = [{**head, **to_wire(r)} for r in records]
        for row in rows:
            for name in self.omit:
                row.pop(name, None)
        return rows

    def rows(self, item_guid: str, records: Sequence[Any], *,
             number: str | None = None) -> list[list[Any]]:
        """CSV rows in :attr:`columns` order."""
        row = self.csv.row
        if self.own:
            return [row(r) for r in records]
        if self.numbered:
            return [[item_guid, number, *row(r)] for r in records]
        return [[item_guid, *row(r)] for r in records]


TICKET_REF_CSV = Columns(
    ("guid", field("guid")),
    ("ticket_guid", field("ticket.guid")),
    ("ticket_number", field("ticket.number")),
)
REFERENCE_CSV = Columns(
    ("guid", field("guid")),
    ("other_item_guid", field("item.guid")),
    ("other_item_url_api", field("item.url.api")),
    ("other_item_url_app", field("item.url.app")),
    ("note", field("note")),
)
TRAINING_RECORD_CSV = Columns(
    ("guid", field("guid")),
    ("training_plan_guid", field("training_plan.guid")),
    ("training_plan_number", field("training_plan.number")),
)
#: ``--details``: a listing carries no dates; a record fetched on its own does.
TRAINING_RECORD_DETAIL_CSV = TRAINING_RECORD_CSV + Columns(
    ("due_date", field("due_date")),
    ("signed_date_time", field("signed_date_time")),
)
BOM_CSV = Columns(
    ("guid", field("guid")),
    ("line_number", whole("line_number")),
    ("quantity", whole("quantity")),
    ("ref_des", field("ref_des")),
    ("notes", field("notes")),
    ("child_item_guid", field("item.guid")),
    ("child_item_number", field("item.number")),
    ("child_item_name", field("item.name")),
    ("child_item_revision_number", field("item.revision_number")),
    ("child_item_revision_status", field("item.revision_status")),
)
ITEM_CSV = Columns(
    ("guid", field("guid")),
    ("number", field("number")),
    ("name", field("name")),
    ("revision_number", field("revision_number")),
    ("revision_status", field("revision_status")),
    ("description", field("description")),
    ("category_guid", field("category.guid")),
    ("category_name", field("category.name")),
    ("lifecycle_phase_guid", field("lifecycle_phase.guid")),
    ("lifecycle_phase_name", field("lifecycle_phase.name")),
    ("lifecycle_phase_stage", field("lifecycle_phase.stage")),
    ("assembly_type", field("assembly_type")),
    ("url_api", field("url.api")),
    ("url_app", field("url.app")),
)


ITEM_KINDS: dict[str, ItemKind] = {kind.name: kind for kind in (
    ItemKind("ticket-refs", "ticket references", TICKET_REF_CSV,
             fetch=lambda arena, guid: arena.items.tickets.list(guid),
             help="Every item's ticket references (one request per item)."),
    ItemKind("references", "item references", REFERENCE_CSV,
             fetch=lambda arena, guid: arena.items.references.list(guid),
             help="Every item's item-to-item references (one request per item)."),
    ItemKind("training-records", "training records", TRAINING_RECORD_CSV,
             pages=lambda arena, guid, size, at: arena.items.training_records.pages(
                 guid, page_size=size, offset=at),
             omit=("due_date", "signed_date_time")),
    ItemKind("training-records+details", "training records", TRAINING_RECORD_DETAIL_CSV,
             pages=lambda arena, guid, size, at: arena.items.training_records.pages(
                 guid, page_size=size, offset=at),
             detail=lambda arena, guid, record: arena.items.training_records.get(
                 guid, record.guid)),
    ItemKind("bom", "BOM lines", BOM_CSV,
             fetch=lambda arena, guid: arena.items.bom.list(guid),
             help="Every item's BOM lines, its immediate children (one request per item)."),
    ItemKind("items", "items", ITEM_CSV, own=True),
)}

#: Akana tickets (``export akana-tickets``); list fields are joined with ``;``.
AKANA_TICKET_CSV = Columns(
    ("ticket_id", field("ticket_id")),
    ("api_id", field("api_id")),
    ("app_id", field("app_id")),
    ("title", field("title")),
    ("state", field("state")),
    ("environment", field("environment")),
    ("visibility", field("visibility")),
    ("user_id", field("user_id")),
    ("user_name", field("user_name")),
    ("created", field("created")),
    ("pub_date", field("pub_date")),
    ("labels", field("labels")),
    ("tags", field("tags")),
    ("comment_count", field("comment_count")),
    ("marks", field("marks")),
    ("is_marked", field("is_marked")),
    ("target_resource_ids", lambda t: [r.id for r in t.target_resources]),
    ("target_resource_types", lambda t: [r.type for r in t.target_resources]),
    ("link", field("link")),
    ("description_media_type", field("description_media_type")),
    ("description", field("description")),
)
