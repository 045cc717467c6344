"""to_dict / to_json: snake_case or wire names, JSON-ready, round-trips, no secrets."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import attrs
import pytest

from arena_async import AkanaClient, ArenaClient
from arena_async._convert import structure
from arena_async.models._wire import to_dict, to_json
from arena_async.models.arena import ArenaLogin, TrainingPlanSummary, TrainingRecord
from arena_async.models.common import Page, Quota, Stats, Success
from arena_async.testing import FakeArena
from arena_async.testing._fake_akana import FakeAkana


def _iso(_inst: object, _field: object, value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


async def test_arena_models_round_trip_through_wire_names(fake_arena: FakeArena) -> None:
    async with ArenaClient(email=fake_arena.email, password=fake_arena.password,
                           workspace_id=fake_arena.workspace_id,
                           base_url=fake_arena.url) as arena:
        models: list[object] = []
        for guid in fake_arena.item_guids[:15]:
            models += await arena.items.tickets.list(guid)
            models += await arena.items.references.list(guid)
            records = await arena.items.training_records.list(guid)
            models += records
            if records:
                models.append(await arena.items.training_records.get(guid, records[0].guid))
    kinds = {type(m).__name__ for m in models}
    assert kinds == {"ItemTicketReference", "ItemReference", "TrainingRecord"}
    for model in models:
        wire = to_dict(model, wire=True)
        assert structure(wire, type(model)) == model
        assert json.loads(to_json(model, wire=True)) == wire
        snake = to_dict(model)
        assert snake == attrs.asdict(model, value_serializer=_iso)  # the CLI's JSONL form
        assert json.loads(to_json(model)) == snake
    record = next(m for m in models if isinstance(m, TrainingRecord))
    assert "trainingplan" in to_dict(record, wire=True)
    assert "training_plan" in to_dict(record)


async def test_akana_tickets_round_trip_with_their_wrappers(fake_akana: FakeAkana) -> None:
    async with AkanaClient(base_url=fake_akana.url, email=fake_akana.email,
                           password=fake_akana.password) as akana:
        tickets = await akana.tickets.list(max_items=40)
    assert tickets
    wrapped = 0
    for ticket in tickets:
        wire = to_dict(ticket, wire=True)
        assert wire["TicketID"] == ticket.ticket_id
        assert structure(wire, type(ticket)) == ticket
        if ticket.target_resources:
            assert isinstance(wire["TargetResources"], dict)
            wrapped += 1
        assert to_dict(ticket)["ticket_id"] == ticket.ticket_id
        json.loads(to_json(ticket, indent=2))
    assert wrapped


def test_datetimes_pages_quota_and_stats() -> None:
    when = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    record = TrainingRecord(guid="G1", training_plan=TrainingPlanSummary("P1", "TP-1"),
                            due_date=when, signed_date_time=None)
    assert to_dict(record)["due_date"] == "2026-03-01T12:00:00Z"
    assert to_dict(record, wire=True)["dueDate"] == "2026-03-01T12:00:00Z"
    page = Page(items=[record], offset=0, next_offset=None)
    assert to_dict(page)["items"][0]["training_plan"] == {"guid": "P1", "number": "TP-1"}
    assert to_dict(Quota(remaining=3, resets_at=when)) == {
        "remaining": 3, "resets_at": "2026-03-01T12:00:00Z", "limit": None}
    assert to_dict(Stats())["requests"] == 0
    assert to_json(Quota(remaining=1, resets_at=None)) == (
        '{"remaining":1,"resets_at":null,"limit":null}')


def test_secrets_are_left_out() -> None:
    login = ArenaLogin(session_id="SECRET-SESSION-ID", workspace_id=7)
    assert "SECRET-SESSION-ID" not in to_json(login)
    assert "SECRET-SESSION-ID" not in to_json(login, wire=True)
    assert to_dict(login)["workspace_id"] == 7


@pytest.mark.parametrize("value", [{"a": 1}, "text", None, Success("k", 1)])
def test_anything_but_a_model_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match="to_dict takes a model instance"):
        to_dict(value)
