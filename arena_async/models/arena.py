"""Arena PLM models: frozen, slotted attrs classes with wire names in field metadata."""

from __future__ import annotations

from datetime import datetime

import attrs

from ._wire import wire

__all__ = [
    "ArenaLogin",
    "ItemReference",
    "ItemSummary",
    "ItemTicketReference",
    "TicketSummary",
    "TrainingPlanSummary",
    "TrainingRecord",
    "Url",
]


@attrs.frozen(slots=True)
class Url:
    """Links to an object: ``api`` (REST URL) and ``app`` (web application URL)."""

    api: str | None = None
    app: str | None = None


@attrs.frozen(slots=True)
class ItemSummary:
    """The item at the other end of a reference."""

    guid: str
    url: Url | None = None


@attrs.frozen(slots=True)
class ItemReference:
    """An item-to-item reference (bidirectional). Wire ``note`` or ``notes``.

    Example: ``ItemReference(guid="TBVEXAVM9CTFYH0IXE17", item=ItemSummary("R9TC..."), note="x")``
    """

    guid: str
    item: ItemSummary
    note: str | None = attrs.field(default=None, metadata=wire("note", "notes"))


@attrs.frozen(slots=True)
class TicketSummary:
    """A change or request ticket, as referenced from an item."""

    guid: str
    number: str | None = None


@attrs.frozen(slots=True)
class ItemTicketReference:
    """The association between an item and a ticket; ``guid`` is the association's GUID."""

    guid: str
    ticket: TicketSummary


@attrs.frozen(slots=True)
class TrainingPlanSummary:
    """The training plan a training record belongs to."""

    guid: str
    number: str | None = None


@attrs.frozen(slots=True)
class TrainingRecord:
    """An item's training record. Wire ``trainingplan`` (docs) or ``traningplan`` (spec).

    ``due_date`` and ``signed_date_time`` are aware UTC datetimes; the list endpoint omits
    them, the single-record endpoint carries them.
    """

    guid: str
    training_plan: TrainingPlanSummary = attrs.field(
        metadata=wire("trainingplan", "traningplan", "trainingPlan")
    )
    due_date: datetime | None = attrs.field(default=None, metadata=wire("dueDate"))
    signed_date_time: datetime | None = attrs.field(default=None, metadata=wire("signedDateTime"))


@attrs.frozen(slots=True)
class ArenaLogin:
    """The answer to ``POST /login``. ``session_id`` is secret and kept out of ``repr``.

    Wire ``arenaSessionId`` (spec, public clients) or ``arena_session_id`` (doc sample).
    """

    session_id: str = attrs.field(repr=False, metadata=wire("arenaSessionId", "arena_session_id"))
    workspace_id: int | None = attrs.field(default=None, metadata=wire("workspaceId"))
    workspace_name: str | None = attrs.field(default=None, metadata=wire("workspaceName"))
    workspace_request_limit: int | None = attrs.field(
        default=None, metadata=wire("workspaceRequestLimit")
    )
