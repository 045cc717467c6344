"""``arena-async export bom``: every selected item's BOM lines, as JSONL and CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from arena_async.__main__ import main
from arena_async.cli._checkpoint import checkpoint_path
from arena_async.cli._records import ITEM_KINDS
from arena_async.testing import FakeArena

from ._helpers import problems, read_csv, read_jsonl

ITEMS = 40


def export(out: Path, *extra: str) -> int:
    return main(["export", "bom", "--fake", "--fake-items", str(ITEMS), "--out", str(out),
                 *extra])


def truth() -> list[dict[str, Any]]:
    """The BOM lines ``--fake --fake-items 40`` holds, as JSONL objects (item URLs aside:
    they name the fake's port)."""
    fake = FakeArena.seeded(items=ITEMS, seed=1)
    rows = []
    for guid in fake.item_guids:
        for line in fake.bom(guid):
            child = line["item"]
            rows.append({
                "item_guid": guid, "guid": line["guid"],
                "item": {"guid": child["guid"], "number": child["number"],
                         "name": child["name"], "revision_number": child["revisionNumber"],
                         "revision_status": child["revisionStatus"]},
                "line_number": line["lineNumber"], "quantity": line["quantity"],
                "ref_des": line["refDes"], "notes": line["notes"],
                "additional_attributes": None})
    return rows


def test_jsonl_holds_every_bom_line_once(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bom.jsonl"
    assert export(out) == 0
    got = read_jsonl(out)
    for row in got:
        url = row["item"].pop("url")
        assert url["api"].endswith(f"/v1/items/{row['item']['guid']}")
    expected = truth()
    assert len(expected) > 10
    assert sorted(got, key=lambda r: r["guid"]) == sorted(expected, key=lambda r: r["guid"])
    assert list(got[0]) == ["item_guid", "guid", "item", "line_number", "quantity",
                            "ref_des", "notes", "additional_attributes"]
    assert not checkpoint_path(out).exists()
    captured = capsys.readouterr()
    assert f"{ITEMS} of {ITEMS} complete" in captured.out
    assert problems(captured.err) == []
    assert captured.err.startswith(f"plan: {ITEMS} requests for {ITEMS} items (1 per item)")


def test_csv_has_the_kinds_header_and_whole_numbers_without_a_point(tmp_path: Path) -> None:
    out = tmp_path / "bom.csv"
    assert export(out) == 0
    header, rows = read_csv(out)
    assert header == list(ITEM_KINDS["bom"].columns)
    assert header[:7] == ["item_guid", "guid", "line_number", "quantity", "ref_des", "notes",
                          "child_item_guid"]
    expected = {r["guid"]: r for r in truth()}
    assert sorted(row[1] for row in rows) == sorted(expected)
    for row in rows:
        line = expected[row[1]]
        assert row[0] == line["item_guid"]
        assert row[2] == str(line["line_number"])  # "1", not "1.0"
        assert row[3] == str(line["quantity"])     # "4" or "0.5"
        assert row[4] == (line["ref_des"] or "")
        assert row[6:] == [line["item"]["guid"], line["item"]["number"], line["item"]["name"],
                           line["item"]["revision_number"], line["item"]["revision_status"]]
    assert any(row[3] == "0.5" for row in rows)
