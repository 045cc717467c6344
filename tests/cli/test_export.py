"""``arena-async export``: output shapes, exit codes, and exact resume after interruptions."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from arena_async.__main__ import main
from arena_async.cli._checkpoint import checkpoint_path, failed_path
from arena_async.cli._records import ITEM_KINDS
from arena_async.testing import FakeArena

from ._helpers import canonical, problems, read_csv, read_jsonl, served, truth

ITEMS = 40


def export(kind: str, out: Path, *extra: str) -> int:
    return main(["export", kind, "--fake", "--fake-items", str(ITEMS), "--out", str(out),
                 *extra])


@pytest.mark.parametrize("kind", ["ticket-refs", "references", "training-records"])
def test_jsonl_holds_every_record_once(tmp_path: Path, kind: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.jsonl"
    assert export(kind, out) == 0
    assert canonical(read_jsonl(out)) == canonical(truth(kind, items=ITEMS))
    assert not checkpoint_path(out).exists()
    captured = capsys.readouterr()
    assert f"{ITEMS} of {ITEMS} complete" in captured.out
    assert "\x1b" not in captured.out + captured.err  # not a terminal: no control codes
    assert problems(captured.err) == []
    assert captured.err.startswith(f"plan: {ITEMS} requests for {ITEMS} items (1 per item)"
                                   if kind != "training-records" else
                                   f"plan: {ITEMS}+ requests for {ITEMS} items (at least 1 "
                                   "per item")


def test_jsonl_records_are_snake_case_with_item_guid_first(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    assert export("training-records", out, "--page-size", "7") == 0
    first = out.read_text().splitlines()[0]
    assert list(json.loads(first)) == ["item_guid", "guid", "training_plan"]  # no dates


@pytest.mark.parametrize("kind", ["ticket-refs", "references", "training-records"])
def test_csv_has_a_fixed_header_and_flattened_rows(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "out.csv"
    assert export(kind, out) == 0
    header, rows = read_csv(out)
    assert header == list(ITEM_KINDS[kind].columns)
    expected = truth(kind, items=ITEMS)
    assert len(rows) == len(expected)
    got = sorted((r[0], r[1], r[2]) for r in rows)
    inner = {"ticket-refs": "ticket", "references": "item", "training-records":
             "training_plan"}[kind]
    assert got == sorted((e["item_guid"], e["guid"], e[inner]["guid"]) for e in expected)


def test_quota_exhausted_mid_export_exits_3_then_resume_completes_exactly(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "records.jsonl"
    args = ("--page-size", "3", "--concurrency", "4", "--checkpoint-interval", "0")
    assert export("training-records", out, *args, "--fake-quota", "30") == 3
    err = capsys.readouterr().err
    assert len(problems(err)) == 1, err  # one line, no traceback
    assert "quota exhausted" in err
    assert "run the same command again" in err
    state = json.loads(checkpoint_path(out).read_text())
    assert state["partial"], "the quota should run out in the middle of an item's pages"
    assert state["bytes"] == out.stat().st_size
    first = read_jsonl(out)
    assert len(first) == state["records"] > 0

    # A crash after the checkpoint: a complete line it does not cover, then half a line.
    with out.open("ab") as f:
        f.write(json.dumps(first[0]).encode() + b"\n" + b'{"item_guid": "0I2L4H2T')

    assert export("training-records", out, *args) == 0
    captured = capsys.readouterr()
    assert "resuming" in captured.err
    assert canonical(read_jsonl(out)) == canonical(truth("training-records", items=ITEMS))
    assert not checkpoint_path(out).exists()


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_many_interruptions_still_give_every_record_once(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"records.{fmt}"
    args = ("--page-size", "2", "--concurrency", "3", "--checkpoint-interval", "0")
    codes = []
    for _ in range(60):
        codes.append(export("training-records", out, *args, "--fake-quota", "17", "-q"))
        if codes[-1] == 0:
            break
    assert codes[-1] == 0
    assert set(codes[:-1]) == {3}
    assert len(codes) > 5
    expected = truth("training-records", items=ITEMS)
    if fmt == "jsonl":
        assert canonical(read_jsonl(out)) == canonical(expected)
    else:
        header, rows = read_csv(out)
        assert header == list(ITEM_KINDS["training-records"].columns)
        assert sorted(tuple(r[:4]) for r in rows) == sorted(
            (e["item_guid"], e["guid"], e["training_plan"]["guid"],
             e["training_plan"]["number"]) for e in expected)


def test_items_from_a_file_and_from_stdin(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    guids = FakeArena.seeded(items=ITEMS, seed=1).item_guids
    chosen = guids[5:15]
    items = tmp_path / "items.txt"
    items.write_text("# some items\n\n" + "\n".join(chosen + chosen[:2]) + "\n")
    out = tmp_path / "a.jsonl"
    assert export("ticket-refs", out, "--items", str(items)) == 0
    expected = [r for r in truth("ticket-refs", items=ITEMS) if r["item_guid"] in chosen]
    assert canonical(read_jsonl(out)) == canonical(expected)

    import io
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(chosen)))
    out2 = tmp_path / "b.jsonl"
    assert export("ticket-refs", out2, "--items", "-") == 0
    assert canonical(read_jsonl(out2)) == canonical(expected)


def test_an_unknown_item_is_listed_as_failed_and_the_export_finishes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A permanent failure (Arena's 400 for a GUID no item has) does not block the
    export: the item goes to <out>.failed.jsonl, the rest is written, the checkpoint is
    removed, exit 4; a second run starts afresh and fails the same way."""
    guids = FakeArena.seeded(items=ITEMS, seed=1).item_guids[:5]
    items = tmp_path / "items.txt"
    items.write_text("\n".join([*guids, "NOSUCHITEM0000000000"]) + "\n")
    out = tmp_path / "a.jsonl"
    assert export("ticket-refs", out, "--items", str(items)) == 4
    err = capsys.readouterr().err
    assert problems(err)[-1].startswith("arena-async: error: finished, but 1 item failed "
                                        "for good")
    assert not checkpoint_path(out).exists()
    failed = read_jsonl(failed_path(out))
    assert len(failed) == 1
    assert failed[0]["key"] == failed[0]["item_guid"] == "NOSUCHITEM0000000000"
    assert failed[0]["status"] in (400, 404)
    assert isinstance(failed[0]["code"], int)
    assert failed[0]["message"]
    expected = [r for r in truth("ticket-refs", items=ITEMS) if r["item_guid"] in guids]
    assert canonical(read_jsonl(out)) == canonical(expected)


def test_bad_usage_exits_2_with_one_line(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.jsonl"
    cases = [
        ["export", "ticket-refs", "--out", str(out)],                        # no --items
        ["export", "ticket-refs", "--fake", "--out", str(tmp_path / "x.txt")],  # suffix
        ["export", "ticket-refs", "--fake", "--out", str(out), "--concurrency", "0"],
        ["export", "training-records", "--fake", "--out", str(out), "--page-size", "401"],
        ["export", "nothing", "--fake", "--out", str(out)],
        ["export", "ticket-refs", "--out", str(out), "--items", str(tmp_path / "missing")],
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
    bad = tmp_path / "bad.txt"
    bad.write_text("item_guid,guid\nAAAA\n")
    assert main(["export", "ticket-refs", "--out", str(out), "--items", str(bad)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"arena-async: error: {bad}:1: not an item GUID or number (one per line, no commas "
        "or tabs: is this a CSV file?): 'item_guid,guid'")


def test_existing_output_is_not_overwritten_without_a_checkpoint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.jsonl"
    out.write_text("precious\n")
    assert export("ticket-refs", out) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_text() == "precious\n"
    assert export("ticket-refs", out, "--overwrite") == 0
    assert len(read_jsonl(out)) == len(truth("ticket-refs", items=ITEMS))


def test_a_checkpoint_of_other_items_or_kind_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.jsonl"
    assert export("training-records", out, "--fake-quota", "5") == 3
    capsys.readouterr()
    assert main(["export", "training-records", "--fake", "--fake-items", "41", "--out",
                 str(out)]) == 2
    assert "different items" in capsys.readouterr().err
    assert export("ticket-refs", out) == 2
    assert "training-records export" in capsys.readouterr().err
    assert export("training-records", out, "--restart") == 0
    assert canonical(read_jsonl(out)) == canonical(truth("training-records", items=ITEMS))


def test_a_truncated_output_is_detected(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.jsonl"
    assert export("training-records", out, "--fake-quota", "10") == 3
    out.write_bytes(out.read_bytes()[:10])
    capsys.readouterr()
    assert export("training-records", out) == 1
    assert "--restart" in capsys.readouterr().err


def test_credentials_come_from_the_environment_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("ARENA_EMAIL", "ARENA_PASSWORD", "ARENA_SESSION_ID", "ARENA_WORKSPACE_ID",
                 "ARENA_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    fake = FakeArena.seeded(items=6, seed=2)
    items = tmp_path / "items.txt"
    items.write_text("\n".join(fake.item_guids))
    out = tmp_path / "refs.jsonl"
    argv = ["export", "ticket-refs", "--items", str(items), "--out", str(out)]

    # Flags for credentials do not exist; the value is never echoed.
    assert main([*argv, "--password=hunter2-secret"]) == 2
    assert main([*argv, "--email", "a@b.c"]) == 2
    captured = capsys.readouterr()
    assert "hunter2-secret" not in captured.out + captured.err

    assert main(argv) == 2
    assert "ARENA_EMAIL" in capsys.readouterr().err

    with served(fake):
        monkeypatch.setenv("ARENA_BASE_URL", fake.url)
        monkeypatch.setenv("ARENA_EMAIL", fake.email)
        monkeypatch.setenv("ARENA_WORKSPACE_ID", str(fake.workspace_id))
        monkeypatch.setenv("ARENA_PASSWORD", "wrong-secret-password")
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert problems(err)[0].startswith("arena-async: error: HTTP 400 from POST /login")
        assert "wrong-secret-password" not in err
        assert len(problems(err)) == 1

        monkeypatch.setenv("ARENA_PASSWORD", fake.password)
        assert main(argv) == 0
    expected = [{"item_guid": g, **t} for g in fake.item_guids for t in fake.ticket_refs(g)]
    assert canonical(read_jsonl(out)) == canonical(expected)
    assert fake.password not in capsys.readouterr().out


def test_workspace_id_must_be_a_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ARENA_EMAIL", "a@example.com")
    monkeypatch.setenv("ARENA_PASSWORD", "pw")
    monkeypatch.setenv("ARENA_WORKSPACE_ID", "abc")
    items = tmp_path / "items.txt"
    items.write_text("AAAAAAAAAAAAAAAAAAAA\n")
    assert main(["export", "ticket-refs", "--items", str(items), "--out",
                 str(tmp_path / "o.jsonl")]) == 2
    assert "ARENA_WORKSPACE_ID" in capsys.readouterr().err


def test_an_unreadable_checkpoint_is_reported(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.jsonl"
    assert export("training-records", out, "--fake-quota", "10") == 3
    checkpoint_path(out).write_text('{"version": 1, "kind": "training-records"')
    capsys.readouterr()
    assert export("training-records", out) == 1
    err = capsys.readouterr().err
    assert "cannot read checkpoint" in err
    assert "--restart" in err


def test_wait_for_quota_waits_for_the_reset_instead_of_exiting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """``--wait-for-quota``: a spent quota is waited out (a sub-second window here) and the
    export completes; with a reset further away than ``--max-wait`` it exits 3 at once."""
    born = time.time()  # the fake's first window starts at its construction, after this
    fake = FakeArena.seeded(items=6, seed=2, quota_limit=4, quota_window=0.6)
    items = tmp_path / "items.txt"
    items.write_text("\n".join(fake.item_guids))
    argv = ["export", "ticket-refs", "--items", str(items), "--concurrency", "2", "-q"]
    with served(fake):
        monkeypatch.setenv("ARENA_BASE_URL", fake.url)
        monkeypatch.setenv("ARENA_EMAIL", fake.email)
        monkeypatch.setenv("ARENA_PASSWORD", fake.password)
        monkeypatch.delenv("ARENA_SESSION_ID", raising=False)
        monkeypatch.delenv("ARENA_WORKSPACE_ID", raising=False)

        out = tmp_path / "refs.jsonl"
        assert main([*argv, "--out", str(out), "--wait-for-quota", "--max-wait", "30"]) == 0
        expected = [{"item_guid": g, **t} for g in fake.item_guids
                    for t in fake.ticket_refs(g)]
        assert canonical(read_jsonl(out)) == canonical(expected)
        assert fake.stats.quota_exhausted == 0  # no 429 was met ...
        gets = sorted(r.received_at for r in fake.requests if r.method == "GET")
        assert len(gets) == 6
        # ... because what the first window could not hold waited for the next: the six
        # GETs (four a window) ended after the first window did.
        assert gets[-1] >= born + 0.6

        slow = FakeArena.seeded(items=6, seed=2, quota_limit=4, quota_window=3600)
        with served(slow):
            monkeypatch.setenv("ARENA_BASE_URL", slow.url)
            other = tmp_path / "other.jsonl"
            assert main([*argv, "--out", str(other), "--wait-for-quota",
                         "--max-wait", "5"]) == 3
            err = capsys.readouterr().err
            assert "quota exhausted" in err
            assert len(problems(err)) == 1, err
