"""FakeArena's workspace: the items and their children (ticket references, item
references, training records, BOM lines), the data ``add_*`` calls and :meth:`ArenaWorkspace.seeded`
make, how each is rendered, and the table of an item's children that FakeArena serves.

Every child of an item is one :class:`ChildKind` entry of :data:`CHILDREN` (its wire
segment, how a record renders in a listing and on its own, the listing's default page):
FakeArena serves ``GET /items/{guid}/<segment>`` and ``GET /items/{guid}/<segment>/{id}``
for each entry through one handler, and the contract tests walk the same table.

Example::

    async with FakeArena() as fake:
        guid = fake.add_item()
        fake.add_training_records(guid, 3)
        rows = fake.children(guid, "trainingrecords")   # as a listing sends them
"""

from __future__ import annotations

import random
import string
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final, Literal, Protocol, Self, TypeVar

import attrs

from ._item_search import ASSEMBLY_TYPES, Category

__all__ = ["CHILDREN", "DEFAULT_LIMIT", "ArenaWorkspace", "ChildKind"]

#: Default ``limit`` of the paged listings (``GET /items``, training records).
DEFAULT_LIMIT: Final = 20

_GUID_ALPHABET: Final = string.ascii_uppercase + string.digits
_DATE_BASE: Final = datetime(2022, 1, 1, tzinfo=UTC)


class _Named(Protocol):
    @property
    def guid(self) -> str: ...

    @property
    def name(self) -> str: ...


_N = TypeVar("_N", bound=_Named)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _named(table: Mapping[str, _N], name_or_guid: str) -> _N | None:
    """The entry with this GUID, else the first with this name, else None."""
    found = table.get(name_or_guid)
    if found is None:
        found = next((v for v in table.values() if v.name == name_or_guid), None)
    return found


def _unique_guid(rng: random.Random, taken: set[str]) -> str:
    """A new 20-character GUID from ``rng``, added to ``taken``."""
    while True:
        guid = "".join(rng.choices(_GUID_ALPHABET, k=20))
        if guid not in taken:
            taken.add(guid)
            return guid


@attrs.define(slots=True)
class _Ticket:
    guid: str
    number: str


@attrs.define(slots=True)
class _TicketRef:
    guid: str
    ticket: _Ticket


@attrs.define(slots=True)
class _Reference:
    guid: str
    a: str
    b: str
    note: str | None


@attrs.define(slots=True)
class _TrainingRecord:
    guid: str
    plan_guid: str
    plan_number: str
    due_date: str | None
    signed_date_time: str | None


@attrs.define(slots=True)
class _BomLine:
    guid: str
    child: str
    line_number: int | None
    quantity: float
    ref_des: str | None
    notes: str | None


@attrs.define(slots=True)
class _Item:
    guid: str
    #: The item's own wire fields (``ItemFullVo`` without ``guid`` and ``url``), in order.
    data: dict[str, Any] = attrs.field(factory=dict)
    #: Its children by wire segment (``"tickets"``, ...), each ``{guid: record}`` in
    #: server order. A reference is in both its items' ``"items"``.
    children: dict[str, dict[str, Any]] = attrs.field(factory=dict)

    def of(self, segment: str) -> dict[str, Any]:
        """The item's children of one kind (created empty)."""
        return self.children.setdefault(segment, {})


@attrs.define(slots=True)
class _Phase:
    guid: str
    name: str
    stage: str


#: How a child record renders: ``(workspace, item_guid, record, single)`` -> wire JSON;
#: ``single`` is the answer of ``GET .../<segment>/{id}`` (a training record's dates).
Render = Callable[["ArenaWorkspace", str, Any, bool], dict[str, Any]]


@attrs.frozen
class ChildKind:
    """One kind of an item's children, served at ``/items/{guid}/<segment>``.

    ``render``: a record as the wire shows it (in a listing, or on its own);
    ``default_limit``: the listing's page when no ``limit`` is asked (None: everything;
    ``offset`` / ``limit`` are honoured either way, up to 400).
    """

    segment: str
    render: Render
    default_limit: int | None = None


def _render_ticket_ref(_: ArenaWorkspace, __: str, ref: _TicketRef, ___: bool) -> dict[str, Any]:
    return {"guid": ref.guid, "ticket": {"guid": ref.ticket.guid, "number": ref.ticket.number}}


def _render_reference(ws: ArenaWorkspace, item_guid: str, ref: _Reference, _: bool,
                      ) -> dict[str, Any]:
    other = ref.b if ref.a == item_guid else ref.a
    item: dict[str, Any] = {"guid": other}
    if ws.item_url:
        item["url"] = ws._item_url(other)
    return {"guid": ref.guid, "item": item, ws.note_key: ref.note}


def _render_record(ws: ArenaWorkspace, _: str, record: _TrainingRecord, single: bool,
                   ) -> dict[str, Any]:
    data: dict[str, Any] = {
        "guid": record.guid,
        ws.trainingplan_key: {"guid": record.plan_guid, "number": record.plan_number},
    }
    if single:
        if record.due_date is not None:
            data["dueDate"] = record.due_date
        if record.signed_date_time is not None:
            data["signedDateTime"] = record.signed_date_time
    return data


def _render_bom_line(ws: ArenaWorkspace, _: str, line: _BomLine, __: bool) -> dict[str, Any]:
    child = ws._items[line.child]
    return {
        "guid": line.guid,
        "item": {
            "guid": child.guid,
            "name": child.data.get("name"),
            "number": child.data.get("number"),
            "revisionNumber": child.data.get("revisionNumber"),
            "revisionStatus": child.data.get("revisionStatus"),
            "url": ws._item_url(child.guid),
        },
        "lineNumber": line.line_number,
        "notes": line.notes,
        "quantity": line.quantity,
        "refDes": line.ref_des,
    }


#: An item's children, by wire segment: what FakeArena serves under ``/items/{guid}/``.
CHILDREN: Final[dict[str, ChildKind]] = {kind.segment: kind for kind in (
    ChildKind("tickets", _render_ticket_ref),
    ChildKind("items", _render_reference),
    ChildKind("trainingrecords", _render_record, default_limit=DEFAULT_LIMIT),
    ChildKind("bom", _render_bom_line),
)}


#: What ``add_item()`` picks from, by the item's sequence number, when not told.
_AUTO_CATEGORIES: Final = (
    ("Resistors", "Electrical"),
    ("Capacitors", "Electrical"),
    ("Fasteners", "Mechanical"),
    ("Assemblies", None),
)
_AUTO_PHASES: Final = (
    ("In Design", "IN_DESIGN"),
    ("In Production", "IN_PRODUCTION"),
    ("Obsolete", "OBSOLETE"),
)
_AUTO_USERS: Final = ("Ann Lee", "Bob Roe", "Chen Wu")


class ArenaWorkspace:
    """The workspace data of :class:`~arena_async.testing.FakeArena` (its base): items,
    categories, lifecycle phases, users, and each item's children (:data:`CHILDREN`).

    :meth:`seeded` builds a deterministic workspace; :meth:`add_item` (number, name,
    category, lifecycle phase, owner, creator, assembly type, ...), :meth:`add_category`,
    :meth:`add_lifecycle_phase`, :meth:`add_ticket_refs`, :meth:`add_reference`,
    :meth:`add_training_records`, :meth:`add_bom_line` add exact data; :meth:`item`,
    :meth:`ticket_refs`, :meth:`references`, :meth:`training_records`, :meth:`bom` (and,
    for any child kind,
    :meth:`children`) read the truth back in server order, as the server sends it.

    Options (keywords of FakeArena): ``note_key``: ``"note"`` (docs, default) or
    ``"notes"`` (spec); ``trainingplan_key``: ``"trainingplan"`` (docs, default) or
    ``"traningplan"`` (spec, sic); ``item_url``: add ``"url": {"api", "app"}`` to
    referenced items; ``seed``: seeds the GUIDs and data of later ``add_*`` calls.

    Example::

        async with FakeArena() as fake:
            guid = fake.add_item(number="PN-100200", category="Resistors")
            fake.add_ticket_refs(guid, 2)
            assert len(fake.ticket_refs(guid)) == 2
    """

    #: The server's URL once started (the workspace renders item URLs with it).
    _url: str | None
    #: An item's children, by wire segment.
    CHILDREN: ClassVar[Mapping[str, ChildKind]] = CHILDREN

    def __init__(
        self,
        *,
        seed: int = 0,
        note_key: Literal["note", "notes"] = "note",
        trainingplan_key: Literal["trainingplan", "traningplan"] = "trainingplan",
        item_url: bool = False,
    ) -> None:
        for name, value, allowed in (
            ("note_key", note_key, ("note", "notes")),
            ("trainingplan_key", trainingplan_key, ("trainingplan", "traningplan")),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, not {value!r}")
        self.note_key = note_key
        self.trainingplan_key = trainingplan_key
        self.item_url = item_url
        self._rng = random.Random(seed)
        self._guids: set[str] = set()
        self._items: dict[str, _Item] = {}
        self._tickets: list[_Ticket] = []
        self._ticket_numbers: Counter[str] = Counter()
        self._plans: list[tuple[str, str]] = []
        # Item metadata (categories, phases, users) draws from its own generator, so the
        # GUIDs and data made from ``seed`` stay what they were before items had any.
        self._meta_rng = random.Random(f"{seed}:items")
        self._categories: dict[str, Category] = {}
        self._phases: dict[str, _Phase] = {}
        self._users: dict[str, dict[str, str]] = {}

    @classmethod
    def seeded(
        cls,
        items: int = 2000,
        seed: int = 1,
        *,
        max_ticket_refs: int = 4,
        max_item_refs: int = 3,
        max_training_records: int = 12,
        max_bom_lines: int = 6,
        **kwargs: Any,
    ) -> Self:
        """A fake whose workspace holds ``items`` items made from ``random.Random(seed)``.

        Each item gets 0..``max_ticket_refs`` ticket references, 0..``max_item_refs``
        references to other items (bidirectional, so an item may show more) and
        0..``max_training_records`` training records; each assembly (category Assemblies)
        1..``max_bom_lines`` BOM lines of other items (none with 0). Other keywords go to
        the constructor. The same ``items`` and ``seed`` always give the same GUIDs and
        data.

        Example: ``async with FakeArena.seeded(items=50, seed=1) as fake: ...``
        """
        fake = cls(seed=seed, **kwargs)
        rng = fake._rng
        guids = [fake.add_item() for _ in range(items)]
        for _ in range(max(1, items // 2)):
            fake._new_ticket(rng.choice(("REQ", "DEF", "CHG")))
        for _ in range(max(1, items // 20)):
            fake._new_plan()
        for guid in guids:
            item = fake._items[guid]
            picks = min(rng.randint(0, max_ticket_refs), len(fake._tickets))
            for ticket in rng.sample(fake._tickets, picks):
                ref = _TicketRef(fake._new_guid(), ticket)
                item.of("tickets")[ref.guid] = ref
            fake._add_records(item, rng.randint(0, max_training_records))
        if items > 1:
            for guid in guids:
                for _ in range(rng.randint(0, max_item_refs)):
                    other = rng.choice(guids)
                    if other != guid and not fake._linked(guid, other):
                        fake.add_reference(guid, other, note=rng.choice((None, "seeded note")))
        fake._seed_boms(random.Random(f"{seed}:bom"), max_bom_lines)
        return fake

    def _seed_boms(self, rng: random.Random, most: int) -> None:
        """BOM lines for the assemblies, from their own generator (the other data, and
        the GUIDs of later ``add_*`` calls, stay what they were before BOMs)."""
        parts = [g for g, item in self._items.items() if not item.data.get("isAssembly")]
        for item in self._items.values():
            if not item.data.get("isAssembly") or not parts or most < 1:
                continue
            for n, child in enumerate(rng.sample(parts, min(rng.randint(1, most), len(parts))), 1):
                quantity = rng.choice((1, 1, 2, 4, 10, 0.5))
                designators = (",".join(f"R{rng.randint(1, 99)}" for _ in range(int(quantity)))
                               if quantity >= 1 and rng.random() < 0.5 else None)
                line = _BomLine(_unique_guid(rng, self._guids), child, n, quantity,
                                designators, rng.choice((None, None, "seeded note")))
                item.of("bom")[line.guid] = line

    # ------------------------------------------------------------------ data: write

    def _new_guid(self) -> str:
        return _unique_guid(self._rng, self._guids)

    def _new_ticket(self, prefix: str) -> _Ticket:
        self._ticket_numbers[prefix] += 1
        ticket = _Ticket(self._new_guid(), f"{prefix}-{self._ticket_numbers[prefix]:06d}")
        self._tickets.append(ticket)
        return ticket

    def _new_plan(self) -> tuple[str, str]:
        plan = (self._new_guid(), f"TRP-{len(self._plans) + 1:06d}")
        self._plans.append(plan)
        return plan

    def _random_date(self, chance: float) -> str | None:
        if self._rng.random() >= chance:
            return None
        return _iso(_DATE_BASE + timedelta(seconds=self._rng.randrange(4 * 365 * 86400)))

    def _add_records(self, item: _Item, n: int) -> list[str]:
        if not self._plans:
            self._new_plan()
        added = []
        records = item.of("trainingrecords")
        for _ in range(n):
            plan_guid, plan_number = self._rng.choice(self._plans)
            record = _TrainingRecord(
                self._new_guid(),
                plan_guid,
                plan_number,
                due_date=self._random_date(0.85),
                signed_date_time=self._random_date(0.7),
            )
            records[record.guid] = record
            added.append(record.guid)
        return added

    def _linked(self, a: str, b: str) -> bool:
        return any(b in (ref.a, ref.b) for ref in self._items[a].of("items").values())

    def _new_meta_guid(self) -> str:
        return _unique_guid(self._meta_rng, self._guids)

    def add_category(self, name: str, parent: str | None = None) -> str:
        """Add an item category under ``parent`` (a category name or GUID, created at the top
        when unknown); returns its GUID. An existing name returns the existing GUID.

        Example: ``fake.add_category("Thin film", parent="Resistors")``
        """
        found = _named(self._categories, name)
        if found is not None:
            return found.guid
        parent_guid = None if parent is None else self.add_category(parent)
        category = Category(self._new_meta_guid(), name, parent_guid)
        self._categories[category.guid] = category
        return category.guid

    def add_lifecycle_phase(self, name: str, stage: str) -> str:
        """Add a lifecycle phase (``stage`` such as ``"IN_PRODUCTION"``); returns its GUID.
        An existing name returns the existing GUID (its stage unchanged).

        Example: ``fake.add_lifecycle_phase("Prototype", "IN_DESIGN")``
        """
        found = _named(self._phases, name)
        if found is not None:
            return found.guid
        phase = _Phase(self._new_meta_guid(), name, stage)
        self._phases[phase.guid] = phase
        return phase.guid

    def _user(self, full_name: str) -> dict[str, str]:
        user = self._users.get(full_name)
        if user is None:
            local = ".".join(full_name.lower().split()) or "user"
            user = {
                "email": f"{local}@example.com",
                "fullName": full_name,
                "guid": self._new_meta_guid(),
            }
            self._users[full_name] = user
        return user

    def add_item(
        self,
        guid: str | None = None,
        *,
        number: str | None = None,
        name: str | None = None,
        description: str | None = None,
        revision_number: str | None = None,
        category: str | None = None,
        lifecycle_phase: str | None = None,
        lifecycle_stage: str | None = None,
        owner: str | None = None,
        creator: str | None = None,
        assembly_type: str | None = None,
        in_assembly: bool | None = None,
        effective_date_time: str | datetime | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> str:
        """Add an item with no references or records; returns its GUID.

        What is not given is made up from the item's sequence number ``n`` (the same for
        the same calls): number ``PN-{n:06d}``, name ``Part {n}``, revision ``A``, a
        category among Resistors and Capacitors (under Electrical), Fasteners (under
        Mechanical) and Assemblies, a lifecycle phase among In Design (``IN_DESIGN``), In
        Production (``IN_PRODUCTION``) and Obsolete (``OBSOLETE``), owner and creator among
        three users, dates, costs. ``category`` is a category name or GUID (an unknown
        name is created at the top: see :meth:`add_category`); ``lifecycle_phase`` a phase
        name or GUID (an unknown name is created with ``lifecycle_stage``, default
        ``IN_DESIGN``; with only ``lifecycle_stage``, the auto phase of that stage);
        ``owner`` and ``creator`` full names (a user is made up for each: GUID, email).
        ``fields`` sets wire fields as given, last (``{"modifiedBom": True,
        "additionalAttributes": [...]}``); several items may share a number (revisions).

        Example: ``guid = fake.add_item(number="PN-100200", category="Resistors")``
        """
        if guid is None:
            guid = self._new_guid()
        elif guid in self._items:
            raise ValueError(f"item {guid} exists")
        else:
            self._guids.add(guid)
        if assembly_type is not None and assembly_type not in ASSEMBLY_TYPES:
            raise ValueError(f"assembly_type must be one of {ASSEMBLY_TYPES}")
        n = len(self._items) + 1
        if category is None:
            auto_name, auto_parent = _AUTO_CATEGORIES[n % len(_AUTO_CATEGORIES)]
            cat = self._categories[self.add_category(auto_name, auto_parent)]
        else:
            cat = self._categories[self.add_category(category)]
        phase = None if lifecycle_phase is None else _named(self._phases, lifecycle_phase)
        if phase is None:
            if lifecycle_phase is not None:
                made = self.add_lifecycle_phase(lifecycle_phase, lifecycle_stage or "IN_DESIGN")
            elif lifecycle_stage is not None:
                auto = next((a for a in _AUTO_PHASES if a[1] == lifecycle_stage), None)
                phase_name, stage = auto if auto else (lifecycle_stage.title(), lifecycle_stage)
                made = self.add_lifecycle_phase(phase_name, stage)
            else:
                made = self.add_lifecycle_phase(*_AUTO_PHASES[(n // 4) % len(_AUTO_PHASES)])
            phase = self._phases[made]
        if assembly_type is None:
            assembly_type = "TOP_LEVEL_ASSEMBLY" if cat.name == "Assemblies" else "NOT_AN_ASSEMBLY"
        created = _DATE_BASE + timedelta(hours=n)
        if isinstance(effective_date_time, datetime):
            effective: str | None = _iso(effective_date_time.astimezone(UTC))
        elif effective_date_time is not None:
            effective = effective_date_time
        else:
            effective = None if phase.stage == "IN_DESIGN" else _iso(created + timedelta(days=1))
        data: dict[str, Any] = {
            "number": f"PN-{n:06d}" if number is None else number,
            "name": f"Part {n}" if name is None else name,
            "description": f"Made-up part number {n}." if description is None else description,
            "revisionNumber": "A" if revision_number is None else revision_number,
            "revisionStatus": "WORKING" if effective is None else "EFFECTIVE",
            "status": 0 if effective is None else 1,
            "category": {"guid": cat.guid, "name": cat.name},
            "lifecyclePhase": {"guid": phase.guid, "name": phase.name, "stage": phase.stage},
            "owner": {"fullName": owner or _AUTO_USERS[n % len(_AUTO_USERS)]},
            "creator": dict(self._user(creator or _AUTO_USERS[(n + 1) % len(_AUTO_USERS)])),
            "assemblyType": assembly_type,
            "isAssembly": assembly_type != "NOT_AN_ASSEMBLY",
            "inAssembly": (assembly_type == "SUB_ASSEMBLY" or n % 2 == 0)
            if in_assembly is None
            else in_assembly,
            "creationDateTime": _iso(created),
            "effectiveDateTime": effective,
            "uom": "each",
            "procurementType": "OTS",
            "offTheShelf": True,
            "standardCost": round(0.05 * n, 2),
            "targetCost": round(0.04 * n, 2),
            "modifiedBom": False,
            "modifiedFiles": False,
            "modifiedSourcing": False,
            "modifiedSpecs": False,
            "deviated": False,
            "shared": False,
            "isLocked": False,
            "additionalAttributes": [],
        }
        if effective is None:
            del data["effectiveDateTime"]
        if fields:
            data.update(fields)
        self._items[guid] = _Item(guid, data)
        return guid

    def add_ticket_refs(self, item_guid: str, n: int, *, prefix: str = "REQ") -> list[str]:
        """Reference ``n`` new tickets (numbered ``<prefix>-000001``...) from an item.

        Returns the new association GUIDs, in server order.
        """
        item = self._items[item_guid]
        added = []
        for _ in range(n):
            ref = _TicketRef(self._new_guid(), self._new_ticket(prefix))
            item.of("tickets")[ref.guid] = ref
            added.append(ref.guid)
        return added

    def add_reference(self, item_guid: str, other_guid: str, note: str | None = None) -> str:
        """Reference ``other_guid`` from ``item_guid`` (and back); returns the reference GUID.

        Raises ``ValueError`` for a reference to itself or a duplicate, ``KeyError`` for an
        unknown item.
        """
        item, other = self._items[item_guid], self._items[other_guid]
        if item_guid == other_guid:
            raise ValueError("an item cannot reference itself")
        if self._linked(item_guid, other_guid):
            raise ValueError(f"{item_guid} and {other_guid} are already referenced")
        ref = _Reference(self._new_guid(), item_guid, other_guid, note)
        item.of("items")[ref.guid] = ref
        other.of("items")[ref.guid] = ref
        return ref.guid

    def add_training_records(self, item_guid: str, n: int) -> list[str]:
        """Add ``n`` training records to an item; returns their GUIDs in server order.

        Dates are random and sometimes absent, as in seeded data.
        """
        return self._add_records(self._items[item_guid], n)

    def add_bom_line(self, item_guid: str, child_guid: str, *, quantity: float = 1,
                     line_number: int | None = None, ref_des: str | None = None,
                     notes: str | None = None) -> str:
        """Add ``child_guid`` to the BOM of ``item_guid``; returns the line's GUID.

        ``line_number`` defaults to the next one (1, 2, ...). The items' own fields are
        left as they are (``isAssembly`` included). Raises ``ValueError`` for an item on
        its own BOM, ``KeyError`` for an unknown item.

        Example: ``line = fake.add_bom_line(assembly, part, quantity=4, ref_des="R1-R4")``
        """
        item, _ = self._items[item_guid], self._items[child_guid]
        if item_guid == child_guid:
            raise ValueError("an item cannot be on its own BOM")
        lines = item.of("bom")
        if line_number is None:
            line_number = len(lines) + 1
        line = _BomLine(self._new_guid(), child_guid, line_number, quantity, ref_des, notes)
        lines[line.guid] = line
        return line.guid

    # ------------------------------------------------------------------ data: read

    @property
    def item_guids(self) -> list[str]:
        """Every item GUID, in creation order."""
        return list(self._items)

    def item(self, item_guid: str, *, view: Literal["full", "minimum"] = "full") -> dict[str, Any]:
        """An item as ``GET /items/{guid}`` sends it (``view="minimum"``: guid, number, url).

        Example: ``fake.item(guid)["number"]``
        """
        return self._render_item(self._items[item_guid], minimum=view == "minimum")

    def children(self, item_guid: str, segment: str, *, single: bool = False,
                 ) -> list[dict[str, Any]]:
        """An item's children of one kind (``segment``, a key of :data:`CHILDREN`) as the
        server sends them, in server order: as a listing does, or with ``single`` as
        ``GET .../<segment>/{id}`` does.

        Example: ``fake.children(guid, "tickets") == fake.ticket_refs(guid)``
        """
        render = self.CHILDREN[segment].render
        return [render(self, item_guid, record, single)
                for record in self._items[item_guid].of(segment).values()]

    def child(self, item_guid: str, segment: str, child_guid: str) -> dict[str, Any]:
        """One child as ``GET /items/{item_guid}/<segment>/{child_guid}`` sends it.

        Example: ``fake.child(guid, "trainingrecords", record_guid)["dueDate"]``
        """
        record = self._items[item_guid].of(segment)[child_guid]
        return self.CHILDREN[segment].render(self, item_guid, record, True)

    def ticket_refs(self, item_guid: str) -> list[dict[str, Any]]:
        """An item's ticket references as the server sends them, in server order."""
        return self.children(item_guid, "tickets")

    def references(self, item_guid: str) -> list[dict[str, Any]]:
        """An item's references (seen from this item) as sent, in server order."""
        return self.children(item_guid, "items")

    def training_records(self, item_guid: str, *, detail: bool = False) -> list[dict[str, Any]]:
        """An item's training records in server order: the list form, or with ``detail``
        the single-record form (with ``dueDate`` / ``signedDateTime`` when present)."""
        return self.children(item_guid, "trainingrecords", single=detail)

    def training_record(self, item_guid: str, record_guid: str) -> dict[str, Any]:
        """One training record in its single-record form."""
        return self.child(item_guid, "trainingrecords", record_guid)

    def bom(self, item_guid: str) -> list[dict[str, Any]]:
        """An item's BOM lines as the server sends them, in server order (empty for an
        item that is no assembly).

        Example: ``[line["item"]["number"] for line in fake.bom(assembly)]``
        """
        return self.children(item_guid, "bom")

    # ------------------------------------------------------------------ rendering

    def _item_url(self, guid: str) -> dict[str, str]:
        base = self._url or "http://127.0.0.1/v1"
        return {
            "api": f"{base}/items/{guid}",
            "app": f"https://app.arenasolutions.com/items/detail-spec?item_id={guid}",
        }

    def _render_item(self, item: _Item, *, minimum: bool) -> dict[str, Any]:
        if minimum:
            return {
                "guid": item.guid,
                "number": item.data.get("number"),
                "url": self._item_url(item.guid),
            }
        return {"guid": item.guid, **item.data, "url": self._item_url(item.guid)}
