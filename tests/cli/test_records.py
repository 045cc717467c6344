"""CSV layouts are declared once per kind, as ``(column, getter)`` pairs: the header and
the rows cannot drift apart, and the page sizes the CLI offers are the library's."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime
from pathlib import Path

import pytest

from arena_async.akana.tickets import DEFAULT_PAGE_SIZE as AKANA_PAGE_SIZE
from arena_async.arena._resource import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from arena_async.cli import _app
from arena_async.cli._export import ExportOptions
from arena_async.cli._records import (
    AKANA_TICKET_CSV,
    ITEM_KINDS,
    Columns,
    ItemKind,
    encode_csv,
    field,
)
from arena_async.models.akana import TargetResource, Ticket
from arena_async.models.arena import (
    ItemReference,
    ItemSummary,
    ItemTicketReference,
    TicketSummary,
    TrainingPlanSummary,
    TrainingRecord,
    Url,
)

SIGNED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(("kind", "record", "row"), [
    ("ticket-refs", ItemTicketReference("R1", TicketSummary("T1", "TK-1")),
     ["ITEM", "R1", "T1", "TK-1"]),
    ("references", ItemReference("R2", ItemSummary("I2", Url("https://a", None)), "n"),
     ["ITEM", "R2", "I2", "https://a", None, "n"]),
    ("references", ItemReference("R3", ItemSummary("I3")),  # no url at all: empty cells
     ["ITEM", "R3", "I3", None, None, None]),
    ("training-records", TrainingRecord("R4", TrainingPlanSummary("P4", "TP-4")),
     ["ITEM", "R4", "P4", "TP-4"]),
    ("training-records+details",
     TrainingRecord("R5", TrainingPlanSummary("P5"), signed_date_time=SIGNED),
     ["ITEM", "R5", "P5", None, None, SIGNED]),
])
def test_each_item_kind_row_follows_its_header(kind: str, record: object,
                                               row: list[object]) -> None:
    item_kind = ITEM_KINDS[kind]
    [got] = item_kind.rows("ITEM", [record])
    assert got == row
    assert len(item_kind.columns) == len(got)
    assert item_kind.columns[0] == "item_guid"


def test_the_ticket_row_follows_its_header() -> None:
    ticket = Ticket("TID", title="Broken", labels=["a", "b"], comment_count=2,
                    target_resources=[TargetResource(id="api1", type="api"),
                                      TargetResource(id="app2", type="app")])
    row = dict(zip(AKANA_TICKET_CSV.names, AKANA_TICKET_CSV.row(ticket), strict=True))
    assert row["ticket_id"] == "TID"
    assert row["title"] == "Broken"
    assert row["target_resource_ids"] == ["api1", "app2"]
    assert row["target_resource_types"] == ["api", "app"]
    assert row["comment_count"] == 2
    assert encode_csv([AKANA_TICKET_CSV.row(ticket)]).count(b"api1;app2") == 1


def test_a_new_column_is_one_pair() -> None:
    base = Columns(("guid", field("guid")))
    more = base + Columns(("plan_number", field("training_plan.number")))
    record = TrainingRecord("R", TrainingPlanSummary("P", "TP-9"))
    assert more.names == ("guid", "plan_number")
    assert more.row(record) == ["R", "TP-9"]
    assert base.names == ("guid",)  # adding makes a new layout


def test_a_column_named_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="CSV columns named twice: guid"):
        Columns(("guid", field("guid")), ("x", field("x")), ("guid", field("guid")))


def test_a_dotted_field_is_none_past_a_missing_step() -> None:
    get = field("item.url.app")
    assert get(ItemReference("R", ItemSummary("I"))) is None
    assert get(ItemReference("R", ItemSummary("I", Url(app="https://app")))) == "https://app"
    assert field("number")(object()) is None


def test_an_item_kind_that_can_get_no_records_is_refused() -> None:
    with pytest.raises(ValueError, match="item kind 'nothing' needs a fetch"):
        ItemKind("nothing", "nothing", Columns(("guid", field("guid"))))
    kind = ItemKind("x", "x", Columns(), pages=lambda arena, guid, size, at: arena.items
                    .training_records.pages(guid, page_size=size, offset=at))
    assert kind.columns == ("item_guid",)
    assert kind.paged
    assert not kind.details


def test_the_cli_page_sizes_are_the_librarys() -> None:
    assert DEFAULT_PAGE_SIZE <= MAX_PAGE_SIZE
    assert ExportOptions(out=Path("x.csv"), format="csv").page_size == DEFAULT_PAGE_SIZE
    for options in (_app._items_options, _app._training_records_options):
        param = inspect.signature(options, eval_str=True).parameters["page_size"]
        assert param.default == DEFAULT_PAGE_SIZE
        info = param.annotation.__metadata__[0]
        assert info.max == MAX_PAGE_SIZE
        assert str(MAX_PAGE_SIZE) in info.help
    akana = inspect.signature(_app.export_akana_tickets, eval_str=True).parameters
    assert akana["page_size"].default == AKANA_PAGE_SIZE
