"""The checkpoint's bookkeeping of complete and partial items."""

from __future__ import annotations

import pytest

from arena_async.cli._checkpoint import Checkpoint


def test_completion_compacts_below_a_watermark() -> None:
    state = Checkpoint("training-records", "jsonl", "fp", items=6)
    state.complete(2)
    state.advance(1, 400)
    assert (state.done_below, state.done, state.partial) == (0, {2}, {1: 400})
    state.complete(0)
    state.complete(1)
    assert (state.done_below, state.done, state.partial) == (3, set(), {})
    assert state.items_done == 3


def test_pending_is_lazy_and_never_repeats_an_item_completed_meanwhile() -> None:
    state = Checkpoint("training-records", "jsonl", "fp", items=6, done={3}, partial={4: 7})
    pending = state.pending()
    assert next(pending) == (0, 0)
    for index in (0, 1, 2):  # completing these moves 3 under the watermark
        state.complete(index)
    assert state.done_below == 4
    assert list(pending) == [(4, 7), (5, 0)]


def test_json_round_trip_and_refusals() -> None:
    state = Checkpoint("akana-tickets", "csv", "fp", bytes=10, records=2, next_start=None,
                       tail=["a", "b"])
    state.complete(0)
    assert Checkpoint.from_json(state.to_json()) == state
    for bad in ({}, {"version": 2}, {**state.to_json(), "bytes": -1},
                {**state.to_json(), "done": "x"}, {**state.to_json(), "records": True}):
        with pytest.raises(ValueError, match="checkpoint"):
            Checkpoint.from_json(bad)
