"""Arena PLM models: frozen, slotted attrs classes with wire names in field metadata."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from ._wire import wire

__all__ = [
    "AdditionalAttribute",
    "ArenaLogin",
    "BomItem",
    "BomLine",
    "CategorySummary",
    "Item",
    "LifecyclePhaseSummary",
    "OnShape",
    "ItemReference",
    "ItemSummary",
    "ItemTicketReference",
    "TicketSummary",
    "TrainingPlanSummary",
    "TrainingRecord",
    "Url",
    "UserSummary",
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
class CategorySummary:
    """An item's category (spec ``CategoryMinimalVo``).

    Example: ``CategorySummary(guid="J1X9...", name="Resistors")``
    """

    guid: str | None = None
    name: str | None = None


@attrs.frozen(slots=True)
class LifecyclePhaseSummary:
    """An item's lifecycle phase (spec ``LifecyclePhaseMinimalVo``). ``stage`` (such as
    ``"IN_PRODUCTION"``) is not in the spec's schema but is a ``GET /items`` filter, so it is
    read when the server sends it.

    Example: ``LifecyclePhaseSummary(guid="K2Y0...", name="In Production", stage="IN_PRODUCTION")``
    """

    guid: str | None = None
    name: str | None = None
    stage: str | None = None


@attrs.frozen(slots=True)
class UserSummary:
    """A user as an item names it: ``owner`` carries ``full_name`` only (spec
    ``UserMinimalVo``), ``creator`` also ``guid`` and ``email`` (``UserCompactVo``).

    Example: ``UserSummary(full_name="Ann Lee", email="ann@example.com", guid="L3Z1...")``
    """

    full_name: str | None = attrs.field(default=None, metadata=wire("fullName"))
    email: str | None = None
    guid: str | None = None


@attrs.frozen(slots=True)
class AdditionalAttribute:
    """One custom attribute of an item (spec ``AdditionalAttributeCompactVo``). ``value``
    is whatever JSON the server sends (text, number, boolean, list or object, by
    ``field_type``).

    Example: ``AdditionalAttribute(guid="M4A2...", name="Tolerance", value="5%")``
    """

    guid: str | None = None
    name: str | None = None
    api_name: str | None = attrs.field(default=None, metadata=wire("apiName"))
    field_type: str | None = attrs.field(default=None, metadata=wire("fieldType"))
    multi_select: bool | None = attrs.field(default=None, metadata=wire("multiSelect"))
    value: Any = None


@attrs.frozen(slots=True)
class OnShape:
    """An item's Onshape CAD links (spec ``OnShape``)."""

    main_url: str | None = attrs.field(default=None, metadata=wire("mainUrl"))
    diff_url: str | None = attrs.field(default=None, metadata=wire("diffUrl"))
    cad_package_id: str | None = attrs.field(default=None, metadata=wire("cadPackageID"))
    onshape: bool | None = None
    cad_file_url: str | None = attrs.field(default=None, metadata=wire("cadFileUrl"))
    drawing_file_url: str | None = attrs.field(default=None, metadata=wire("drawingFileUrl"))
    drawing_file_urls: list[str] | None = attrs.field(
        default=None, metadata=wire("drawingFileUrls")
    )
    viewable_3d_file_url: str | None = attrs.field(
        default=None, metadata=wire("viewable3DFileUrl")
    )


@attrs.frozen(slots=True)
class BomItem:
    """The child item of a BOM line (spec ``ItemShortVo``): the revision the line uses.

    Example: ``BomItem(guid="ASCV0QRR07Q7Q511F8Z3", number="432-00001", revision_number="C")``
    """

    guid: str
    number: str | None = None
    name: str | None = None
    revision_number: str | None = attrs.field(default=None, metadata=wire("revisionNumber"))
    revision_status: str | None = attrs.field(default=None, metadata=wire("revisionStatus"))
    url: Url | None = None


@attrs.frozen(slots=True)
class BomLine:
    """One line of an assembly's bill of materials (``GET /items/{guid}/bom``, spec
    ``ItemBomVo``): an immediate child ``item`` with its ``quantity``, ``line_number``,
    reference designators (``ref_des``, such as ``"C15,C6,C10-12"``) and ``notes``.

    ``line_number`` and ``quantity`` are numbers (the spec's doubles: whole numbers in the
    vendor's samples, a fractional quantity for bulk material); any of them may be None.
    ``additional_attributes``: the BOM attributes, when the server sends them.

    Example::

        for line in await arena.items.bom.list(assembly_guid):
            print(line.line_number, line.item.number, line.quantity, line.ref_des)
    """

    guid: str
    item: BomItem
    line_number: float | None = attrs.field(default=None, metadata=wire("lineNumber"))
    quantity: float | None = None
    ref_des: str | None = attrs.field(default=None, metadata=wire("refDes"))
    notes: str | None = None
    additional_attributes: list[AdditionalAttribute] | None = attrs.field(
        default=None, metadata=wire("additionalAttributes")
    )


@attrs.frozen(slots=True)
class Item:
    """An Arena item, as ``GET /items`` and ``GET /items/{guid}`` answer (spec ``ItemFullVo``).

    Every field but ``guid`` defaults to None, so a ``view="minimum"`` answer (``guid``,
    ``number``, ``url`` only) structures into the same class; an item with no ``guid`` is
    a malformed answer (:class:`ResponseFormatError`). Datetimes are aware UTC. The costs
    (``standard_cost``, ``target_cost``, ...) are numbers in the workspace's currency.

    Example::

        item = await arena.items.get("0I2L4H2TGJ0UDWFXCXR5")
        item.number, item.name, item.category.name if item.category else None
    """

    guid: str
    number: str | None = None
    name: str | None = None
    revision_number: str | None = attrs.field(default=None, metadata=wire("revisionNumber"))
    description: str | None = None
    category: CategorySummary | None = None
    lifecycle_phase: LifecyclePhaseSummary | None = attrs.field(
        default=None, metadata=wire("lifecyclePhase")
    )
    url: Url | None = None
    revision_status: str | None = attrs.field(default=None, metadata=wire("revisionStatus"))
    status: int | None = None
    owner: UserSummary | None = None
    creator: UserSummary | None = None
    assembly_type: str | None = attrs.field(default=None, metadata=wire("assemblyType"))
    is_assembly: bool | None = attrs.field(default=None, metadata=wire("isAssembly"))
    in_assembly: bool | None = attrs.field(default=None, metadata=wire("inAssembly"))
    creation_date_time: datetime | None = attrs.field(
        default=None, metadata=wire("creationDateTime")
    )
    effective_date_time: datetime | None = attrs.field(
        default=None, metadata=wire("effectiveDateTime")
    )
    superseded_date_time: datetime | None = attrs.field(
        default=None, metadata=wire("supersededDateTime")
    )
    material_effectivity_date_time: datetime | None = attrs.field(
        default=None, metadata=wire("materialEffectivityDateTime")
    )
    uom: str | None = None
    procurement_type: str | None = attrs.field(default=None, metadata=wire("procurementType"))
    off_the_shelf: bool | None = attrs.field(default=None, metadata=wire("offTheShelf"))
    standard_cost: float | None = attrs.field(default=None, metadata=wire("standardCost"))
    target_cost: float | None = attrs.field(default=None, metadata=wire("targetCost"))
    target_price: float | None = attrs.field(default=None, metadata=wire("targetPrice"))
    production_cost: float | None = attrs.field(default=None, metadata=wire("productionCost"))
    prototype_cost: float | None = attrs.field(default=None, metadata=wire("prototypeCost"))
    modified_bom: bool | None = attrs.field(default=None, metadata=wire("modifiedBom"))
    modified_files: bool | None = attrs.field(default=None, metadata=wire("modifiedFiles"))
    modified_sourcing: bool | None = attrs.field(default=None, metadata=wire("modifiedSourcing"))
    modified_specs: bool | None = attrs.field(default=None, metadata=wire("modifiedSpecs"))
    deviated: bool | None = None
    shared: bool | None = None
    is_locked: bool | None = attrs.field(default=None, metadata=wire("isLocked"))
    additional_attributes: list[AdditionalAttribute] | None = attrs.field(
        default=None, metadata=wire("additionalAttributes")
    )
    on_shape: OnShape | None = attrs.field(default=None, metadata=wire("onShape"))


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
