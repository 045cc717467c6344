"""``arena_async._envelope``: one reader of listing envelopes for both servers' listings.

Every expected value here is computed without ``read_listing``: ``json.loads`` (the decoder
of record) and ``structure`` on the envelope's list, written out by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import arena_async._convert as conv
from arena_async._convert import structure
from arena_async._envelope import AKANA_LISTING, ARENA_LISTING, Envelope, read_listing
from arena_async.errors import ResponseFormatError
from arena_async.models.akana import Ticket
from arena_async.models.arena import ItemTicketReference, TrainingRecord

SAMPLE = Path(__file__).parent / "models" / "data" / "akana_tickets_sample.json"
TICKETS: list[dict[str, Any]] = json.loads(SAMPLE.read_text())["Ticket"]
REF = {"guid": "A", "ticket": {"guid": "T", "number": "N"}}


def expected_listing(body: bytes, cl: Any, envelope: Envelope) -> Any:
    """What the listing reader must answer, decided by ``json`` and ``structure`` only."""
    key = envelope.key
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return (ResponseFormatError, "$")
    if not isinstance(data, dict):
        return (ResponseFormatError, "$")
    records = data.get(key)
    if records is None and (envelope.empty_without_key or data.get("count") == 0):
        return []
    if envelope.lone and isinstance(records, dict):
        records = [records]
    if not isinstance(records, list):
        return (ResponseFormatError, f"$.{key}")
    try:
        return structure(records, list[cl], path=f"$.{key}")
    except ResponseFormatError as exc:
        return (ResponseFormatError, exc.path)


def answer(body: bytes, cl: Any, envelope: Envelope) -> Any:
    try:
        return read_listing(body, cl, envelope, url="/x")
    except ResponseFormatError as exc:
        return (ResponseFormatError, exc.path)


ARENA_BODIES = [
    # orjson refuses these; json accepts them: json's answer is the one given
    b'{"count": 1, "results": [{"guid": "A", "ticket": {"guid": "T", "number": "N"}}], '
    b'"x": NaN}',
    b'{"count": 1, "results": [{"guid": "A\\ud800", "ticket": {"guid": "T"}}]}',
    '{"count": 1, "results": [{"guid": "A", "ticket": {"guid": "T"}}]}'.encode("utf-16"),
    # integers beyond 64 bits, in an unknown key (ignored) and in a string field (refused)
    b'{"count": 123456789012345678901234567890, "results": [{"guid": "A", '
    b'"ticket": {"guid": "T", "big": 99999999999999999999999}}]}',
    b'{"count": 1, "results": [{"guid": 99999999999999999999999, "ticket": {"guid": "T"}}]}',
    # plain, empty, and wrong in ways the reader names
    json.dumps({"count": 2, "results": [REF, REF]}).encode(),
    b'{"count": 0}',
    b'{"count": 0, "results": null}',
    b'{"count": 0, "results": []}',
    b'{"count": 1}',
    b'{"results": null}',
    b'{"count": 1, "results": {"guid": "A", "ticket": {"guid": "T"}}}',  # no lone items
    b'{"count": 1, "results": [{"guid": 5, "ticket": {"guid": "T"}}]}',
    b'{"count": 1, "results": [{"guid": "A"}]}',
    b'[{"guid": "A", "ticket": {"guid": "T"}}]',
    b'"results"',
    b'{"count": 1, "resu',
    b"",
]


@pytest.mark.parametrize("body", ARENA_BODIES)
def test_arena_listings_answer_as_json_and_structure_decide(body: bytes) -> None:
    assert answer(body, ItemTicketReference, ARENA_LISTING) == \
        expected_listing(body, ItemTicketReference, ARENA_LISTING)


def test_arena_listing_errors_name_the_wire_path() -> None:
    assert answer(b'{"count": 1}', ItemTicketReference, ARENA_LISTING) == \
        (ResponseFormatError, "$.results")
    assert answer(b'{"count": 1, "results": [{"guid": 5, "ticket": {"guid": "T"}}]}',
                  ItemTicketReference, ARENA_LISTING) == (ResponseFormatError, "$.results[0].guid")
    assert answer(b'[]', ItemTicketReference, ARENA_LISTING) == (ResponseFormatError, "$")
    with pytest.raises(ResponseFormatError, match="expected an object with 'results'"):
        read_listing(b"[]", ItemTicketReference, ARENA_LISTING)


def ticket_body(payload: Any) -> bytes:
    return json.dumps(payload, indent=1).encode()


AKANA_BODIES = [
    ticket_body({"Ticket": TICKETS}),
    ticket_body({"Ticket": TICKETS[0]}),  # a lone ticket as an object
    ticket_body({"Ticket": []}),
    ticket_body({"Ticket": None}),
    ticket_body({}),
    ticket_body({"Ticket": "x"}),
    ticket_body({"Ticket": [{**TICKETS[0], "TicketID": 5}]}),
    ticket_body({"Ticket": [TICKETS[0], {**TICKETS[1], "Created": "yesterday"}]}),
    ticket_body([TICKETS[0]]),
    b'{"Ticket": [{"TicketID": "t1", "Title": "A\\udc00"}]}',  # orjson refuses
    b'{"Ticket": [{"TicketID": "t1", "Marks": 99999999999999999999999}]}',
    b'{"Ticket": [{"TicketID": "t1"}], "x": NaN}',
    b"{",
]


@pytest.mark.parametrize("body", AKANA_BODIES)
def test_akana_listings_answer_as_json_and_structure_decide(body: bytes) -> None:
    assert answer(body, Ticket, AKANA_LISTING) == expected_listing(body, Ticket, AKANA_LISTING)


def test_akana_lone_ticket_and_empty_answers() -> None:
    one = read_listing(ticket_body({"Ticket": TICKETS[0]}), Ticket, AKANA_LISTING)
    assert [t.ticket_id for t in one] == [TICKETS[0]["TicketID"]]
    assert read_listing(b"{}", Ticket, AKANA_LISTING) == []
    assert answer(ticket_body({"Ticket": "x"}), Ticket, AKANA_LISTING) == \
        (ResponseFormatError, "$.Ticket")
    assert answer(ticket_body({"Ticket": [{**TICKETS[0], "TicketID": 5}]}), Ticket,
                  AKANA_LISTING) == (ResponseFormatError, "$.Ticket[0].TicketID")


def test_a_body_nested_past_the_recursion_limit_is_a_format_error_with_the_url() -> None:
    deep = b'{"count": 1, "results": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    with pytest.raises(ResponseFormatError) as caught:
        read_listing(deep, ItemTicketReference, ARENA_LISTING, url="/items/A/tickets")
    assert caught.value.url == "/items/A/tickets"


class Asked(BaseException):
    """The detailed converter was asked."""


class _Refuse:
    """Stands in for the detailed converter: any call raises :class:`Asked`."""

    def structure(self, *_: object) -> Any:
        raise Asked


def test_a_well_formed_page_is_never_handed_to_the_detailed_converter(
        monkeypatch: pytest.MonkeyPatch) -> None:
    records = [{"guid": f"R{i}", "trainingplan": {"guid": "P", "number": "TRP-1"},
                "dueDate": "2024-01-02T03:04:05Z"} for i in range(3)]
    expected: list[TrainingRecord] = structure(records, list[TrainingRecord])
    monkeypatch.setattr(conv, "_DETAILED", _Refuse())
    body = json.dumps({"count": 3, "results": records}).encode()
    assert read_listing(body, TrainingRecord, ARENA_LISTING) == expected
    assert read_listing(ticket_body({"Ticket": TICKETS}), Ticket, AKANA_LISTING) == \
        structure(TICKETS, list[Ticket])
    with pytest.raises(Asked):  # a refusal does reach it
        read_listing(b'{"count": 1, "results": [{"guid": 5}]}', TrainingRecord,
                     ARENA_LISTING)
