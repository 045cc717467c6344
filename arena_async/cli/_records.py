"""How exported records look: JSONL objects and flattened CSV rows.

JSONL: one object per line, ``item_guid`` first (Arena exports), then the record's fields
under their snake_case model names, nested as on the wire; datetimes as
``YYYY-MM-DDTHH:MM:SSZ``; absent values as ``null``.

CSV: a fixed header per kind; nested objects flattened into ``<field>_<subfield>`` columns,
lists joined with ``;``, absent values empty, booleans ``true``/``false``.

Training records: a listing carries no dates, so without ``--details`` the rows have no
``due_date`` / ``signed_date_time`` at all (not empty columns that look like data); with
``--details`` each record is fetched (one more request per record) and both are there.

Items (``export items``): the item's own fields; JSONL has every field of the model
(``view="full"``), CSV the common ones flattened.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from ..arena import ArenaClient
from ..models.arena import ItemReference, ItemTicketReference, TrainingRecord

__all__ = [
    "AKANA_TICKET_COLUMNS",
    "ITEM_COLUMNS",
    "ITEM_KINDS",
    "ItemKind",
    "encode_csv",
    "encode_jsonl",
    "item_csv_row",
    "ticket_csv_row",
    "to_wire",
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


Fetch = Callable[[ArenaClient, str], Awaitable[Sequence[Any]]]


@attrs.frozen
class ItemKind:
    """One kind of per-item Arena export."""

    name: str
    title: str
    columns: tuple[str, ...]
    flatten: Callable[[str, Any], list[Any]]
    #: One request per item (``fetch``), or paged (training records: ``pages``).
    paged: bool = False
    fetch: Fetch | None = None
    #: Training records: each record fetched on its own for its dates (``--details``).
    details: bool = False
    #: JSONL fields left out (dates that a listing does not carry).
    omit: tuple[str, ...] = ()
    #: The records are the items themselves (``export items``): no ``item_guid`` column.
    own: bool = False
    #: An ``item_number`` column after ``item_guid`` (items selected by number).
    numbered: bool = False

    def with_numbers(self) -> ItemKind:
        """The same kind with an ``item_number`` column after ``item_guid`` (the same
        name: the column follows from the selection, which the checkpoint already
        fingerprints).

        Example: ``ITEM_KINDS["ticket-refs"].with_numbers().columns[:2]`` is
        ``("item_guid", "item_number")``
        """
        if self.own or self.numbered:
            return self
        return attrs.evolve(self, columns=(self.columns[0], "item_number", *self.columns[1:]),
                            numbered=True)

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
        rows = [self.flatten(item_guid, r) for r in records]
        if self.numbered:
            rows = [[row[0], number, *row[1:]] for row in rows]
        return rows


def _ticket_ref_row(item_guid: str, ref: ItemTicketReference) -> list[Any]:
    return [item_guid, ref.guid, ref.ticket.guid, ref.ticket.number]


def _reference_row(item_guid: str, ref: ItemReference) -> list[Any]:
    url = ref.item.url
    return [item_guid, ref.guid, ref.item.guid, url.api if url else None,
            url.app if url else None, ref.note]


def _record_row(item_guid: str, rec: TrainingRecord) -> list[Any]:
    return [item_guid, rec.guid, rec.training_plan.guid, rec.training_plan.number]


def _record_detail_row(item_guid: str, rec: TrainingRecord) -> list[Any]:
    return [*_record_row(item_guid, rec), rec.due_date, rec.signed_date_time]


ITEM_COLUMNS: tuple[str, ...] = (
    "guid", "number", "name", "revision_number", "revision_status", "description",
    "category_guid", "category_name", "lifecycle_phase_guid", "lifecycle_phase_name",
    "lifecycle_phase_stage", "assembly_type", "url_api", "url_app",
)


def item_csv_row(_key: str, item: Any) -> list[Any]:
    """An ``Item`` as a CSV row in :data:`ITEM_COLUMNS` order."""
    category = getattr(item, "category", None)
    phase = getattr(item, "lifecycle_phase", None)
    url = getattr(item, "url", None)
    return [
        item.guid, getattr(item, "number", None), getattr(item, "name", None),
        getattr(item, "revision_number", None), getattr(item, "revision_status", None),
        getattr(item, "description", None),
        getattr(category, "guid", None), getattr(category, "name", None),
        getattr(phase, "guid", None), getattr(phase, "name", None),
        getattr(phase, "stage", None), getattr(item, "assembly_type", None),
        getattr(url, "api", None), getattr(url, "app", None),
    ]


async def _fetch_ticket_refs(arena: ArenaClient, guid: str) -> Sequence[Any]:
    return await arena.items.tickets.list(guid)


async def _fetch_references(arena: ArenaClient, guid: str) -> Sequence[Any]:
    return await arena.items.references.list(guid)


ITEM_KINDS: dict[str, ItemKind] = {
    "ticket-refs": ItemKind(
        "ticket-refs", "ticket references",
        ("item_guid", "guid", "ticket_guid", "ticket_number"),
        _ticket_ref_row, fetch=_fetch_ticket_refs),
    "references": ItemKind(
        "references", "item references",
        ("item_guid", "guid", "other_item_guid", "other_item_url_api", "other_item_url_app",
         "note"),
        _reference_row, fetch=_fetch_references),
    "training-records": ItemKind(
        "training-records", "training records",
        ("item_guid", "guid", "training_plan_guid", "training_plan_number"),
        _record_row, paged=True, omit=("due_date", "signed_date_time")),
    "training-records+details": ItemKind(
        "training-records+details", "training records",
        ("item_guid", "guid", "training_plan_guid", "training_plan_number", "due_date",
         "signed_date_time"),
        _record_detail_row, paged=True, details=True),
    "items": ItemKind("items", "items", ITEM_COLUMNS, item_csv_row, own=True),
}

AKANA_TICKET_COLUMNS: tuple[str, ...] = (
    "ticket_id", "api_id", "app_id", "title", "state", "environment", "visibility",
    "user_id", "user_name", "created", "pub_date", "labels", "tags", "comment_count",
    "marks", "is_marked", "target_resource_ids", "target_resource_types", "link",
    "description_media_type", "description",
)


def ticket_csv_row(ticket: Any) -> list[Any]:
    """An Akana ``Ticket`` as a CSV row in :data:`AKANA_TICKET_COLUMNS` order."""
    resources = ticket.target_resources
    return [
        ticket.ticket_id, ticket.api_id, ticket.app_id, ticket.title, ticket.state,
        ticket.environment, ticket.visibility, ticket.user_id, ticket.user_name,
        ticket.created, ticket.pub_date, ticket.labels, ticket.tags, ticket.comment_count,
        ticket.marks, ticket.is_marked, [r.id for r in resources], [r.type for r in resources],
        ticket.link, ticket.description_media_type, ticket.description,
    ]
