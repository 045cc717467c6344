"""Selecting items (GUIDs and numbers, a query), ``export items``, ``--details``,
``--plan`` against what the run then spends, and permanent failures in
``<out>.failed.jsonl`` (exit 4). Requests are counted on the fake's quota."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from arena_async.__main__ import main
from arena_async.cli._checkpoint import checkpoint_path, complete_path, failed_path
from arena_async.cli._common import CliError
from arena_async.cli._select import parse_entries, selection_path
from arena_async.testing import FakeArena, Fault, FaultPlan

from ._helpers import canonical, problems, read_csv, read_jsonl, served

LIMIT = 1_000_000
ENV = ("ARENA_EMAIL", "ARENA_PASSWORD", "ARENA_SESSION_ID", "ARENA_WORKSPACE_ID",
       "ARENA_BASE_URL", "ARENA_CLIENT_ID", "ARENA_CLIENT_SECRET", "ARENA_TOKEN_URL",
       "ARENA_SHARE")


@contextmanager
def arena_env(monkeypatch: pytest.MonkeyPatch, fake: FakeArena) -> Iterator[None]:
    """Serve ``fake`` and point the ARENA_* variables at it. Each run alone
    (``ARENA_SHARE=none``): these tests end a quota window with ``set_quota(remaining=)``,
    which keeps the window's reset time, and a share would rightly hold every later run to
    the spent window until that time."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ARENA_SHARE", "none")
    with served(fake):
        monkeypatch.setenv("ARENA_BASE_URL", fake.url)
        monkeypatch.setenv("ARENA_EMAIL", fake.email)
        monkeypatch.setenv("ARENA_PASSWORD", fake.password)
        yield


def spent(fake: FakeArena) -> int:
    """Requests counted against the fake's quota so far (logins do not count)."""
    return LIMIT - fake.quota_remaining


def planned(out: str) -> tuple[int, int | None]:
    """The ``requests`` row of ``--plan``: (low, high); high None for 'at least'."""
    match = re.search(r"^requests\s+(at least )?([\d,]+)(?: to ([\d,]+))?", out, re.M)
    assert match, out
    low = int(match.group(2).replace(",", ""))
    if match.group(1):
        return low, None
    return low, int(match.group(3).replace(",", "")) if match.group(3) else low


def ticket_rows(fake: FakeArena, guids: list[str], *,
                numbered: bool = False) -> list[dict[str, Any]]:
    """The ticket references of ``guids`` as an export writes them; ``numbered``: items
    selected by number, whose rows carry their ``item_number``."""
    if numbered:
        return [{"item_guid": g, "item_number": fake.item(g)["number"], **t}
                for g in guids for t in fake.ticket_refs(g)]
    return [{"item_guid": g, **t} for g in guids for t in fake.ticket_refs(g)]


# ---------------------------------------------------------------- the items file


def test_a_line_is_a_guid_when_it_looks_like_one_else_a_number() -> None:
    entries = parse_entries(
        "# header\n0I2L4H2TGJ0UDWFXCXR5\nABCD1234EFGH5678\nPN-000123\n100-0001\n"
        "number:ABCD1234EFGH5678\nguid:abc-123\n  PN-000123  \n\n", "f")
    assert [(e.text, e.is_number) for e in entries] == [
        ("0I2L4H2TGJ0UDWFXCXR5", False), ("ABCD1234EFGH5678", False),
        ("PN-000123", True), ("100-0001", True), ("ABCD1234EFGH5678", True),
        ("abc-123", False)]
    for text, words in [("PN-10*\n", "--number"), ("a,b\n", "CSV"), ("guid:a/b\n", "GUID"),
                        ("number:\n", "nothing after"), ("# only\n", "no item GUIDs")]:
        with pytest.raises(CliError, match=words) as info:
            parse_entries(text, "f")
        assert info.value.exit_code == 2


def test_numbers_and_guids_mixed_are_resolved_and_unknown_numbers_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeArena.seeded(items=12, seed=4, quota_limit=LIMIT)
    guids = fake.item_guids
    numbers = [fake.item(g)["number"] for g in guids]
    items = tmp_path / "items.txt"
    # GUIDs, numbers, a number naming an item also given by GUID, an unknown number.
    items.write_text("\n".join([guids[0], numbers[1], numbers[2], guids[3], numbers[0],
                                "PN-999999", numbers[1]]) + "\n")
    out = tmp_path / "refs.jsonl"
    with arena_env(monkeypatch, fake):
        assert main(["export", "ticket-refs", "--items", str(items), "--out", str(out),
                     "-q"]) == 4
        # 4 distinct numbers looked up in one request; 4 items; the logout.
        assert spent(fake) == 1 + 4 + 1
        assert fake.stats.by_route["GET /items"] == 1
    err = capsys.readouterr().err
    assert "1 item number unknown (PN-999999)" in err
    assert problems(err)[-1].startswith("arena-async: error: finished, but 1 item failed")
    # Selected by number: each row says which number named its item (the GUID given as a
    # GUID only has none; the one given both ways has its number).
    named = {guids[0]: numbers[0], guids[1]: numbers[1], guids[2]: numbers[2], guids[3]: None}
    expected = [{"item_guid": g, "item_number": n, **t}
                for g, n in named.items() for t in fake.ticket_refs(g)]
    assert canonical(read_jsonl(out)) == canonical(expected)
    assert read_jsonl(failed_path(out)) == [
        {"key": "PN-999999", "item_guid": None, "status": None, "code": None,
         "message": "no item has this number"}]
    assert not checkpoint_path(out).exists()
    assert not selection_path(out).exists()


def test_a_query_selects_the_items_in_one_listing_request(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeArena.seeded(items=40, seed=1, quota_limit=LIMIT)
    chosen = [g for g in fake.item_guids if fake.item(g)["number"].startswith("PN-00001")]
    assert 0 < len(chosen) < 40
    out = tmp_path / "refs.jsonl"
    with arena_env(monkeypatch, fake):
        assert main(["export", "ticket-refs", "--number", "PN-00001*", "--out", str(out),
                     "-q"]) == 0
        assert spent(fake) == 1 + len(chosen) + 1
        search = fake.requests_to("GET /items")
        assert len(search) == 1
        assert "responseview=minimum" in search[0].query_string
        # Run again, the finished export is complete already: nothing is asked.
        before = spent(fake)
        again = ["export", "ticket-refs", "--number", "PN-00001*", "--out", str(out), "-q"]
        assert main(again) == 0
        assert spent(fake) == before
        # An output that exists with neither a checkpoint nor its completion record is
        # refused before any request.
        complete_path(out).unlink()
        assert main(again) == 2
        assert spent(fake) == before
    assert canonical(read_jsonl(out)) == canonical(ticket_rows(fake, chosen, numbered=True))


def test_a_query_and_an_items_file_together_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = tmp_path / "items.txt"
    items.write_text("PN-1\n")
    out = str(tmp_path / "o.jsonl")
    assert main(["export", "ticket-refs", "--fake", "--items", str(items), "--number",
                 "PN-1", "--out", out]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["export", "ticket-refs", "--fake", "--category", " ", "--out", out]) == 2
    assert "--category must be a non-empty" in capsys.readouterr().err


# ---------------------------------------------------------------- export items


def test_export_items_by_query_is_the_listing_itself(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeArena.seeded(items=30, seed=2, quota_limit=LIMIT)
    resistors = [g for g in fake.item_guids
                 if (fake.item(g).get("category") or {}).get("name") == "Resistors"]
    assert resistors
    out = tmp_path / "items.jsonl"
    csv_out = tmp_path / "items.csv"
    with arena_env(monkeypatch, fake):
        assert main(["export", "items", "--category", "Resistors", "--out", str(out),
                     "-q"]) == 0
        assert spent(fake) == 1 + 1  # one page, the logout
        assert main(["export", "items", "--category", "Resistors", "--out", str(csv_out),
                     "--page-size", "3", "-q"]) == 0
    rows = read_jsonl(out)
    assert sorted(r["guid"] for r in rows) == sorted(resistors)
    assert {r["category"]["name"] for r in rows} == {"Resistors"}
    assert all(r["number"] == fake.item(r["guid"])["number"] for r in rows)
    header, csv_rows = read_csv(csv_out)
    assert header[:3] == ["guid", "number", "name"]
    assert sorted(r[0] for r in csv_rows) == sorted(resistors)


def test_export_items_from_a_file_fetches_each_item_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeArena.seeded(items=10, seed=2, quota_limit=LIMIT)
    guids = fake.item_guids
    items = tmp_path / "items.txt"
    items.write_text(f"{guids[0]}\n{fake.item(guids[1])['number']}\nPN-424242\n")
    out = tmp_path / "items.jsonl"
    with arena_env(monkeypatch, fake):
        assert main(["export", "items", "--items", str(items), "--out", str(out),
                     "-q"]) == 4
        assert spent(fake) == 3 + 1  # by GUID, by number (no lookup first), unknown; logout
    assert sorted(r["guid"] for r in read_jsonl(out)) == sorted(guids[:2])
    failed = read_jsonl(failed_path(out))
    assert [(f["key"], f["item_guid"], f["status"]) for f in failed] == [
        ("PN-424242", None, None)]


# ---------------------------------------------------------------- --details


def test_training_records_details_fetch_each_record_for_its_dates(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeArena.seeded(items=8, seed=3, quota_limit=LIMIT)
    guids = fake.item_guids
    records = sum(len(fake.training_records(g)) for g in guids)
    assert records > 0
    items = tmp_path / "items.txt"
    items.write_text("\n".join(guids))
    plain, detailed = tmp_path / "plain.jsonl", tmp_path / "detailed.csv"
    with arena_env(monkeypatch, fake):
        assert main(["export", "training-records", "--items", str(items), "--out",
                     str(plain), "-q"]) == 0
        assert spent(fake) == len(guids) + 1
        before = spent(fake)
        assert main(["export", "training-records", "--items", str(items), "--details",
                     "--out", str(detailed), "--page-size", "2", "-q"]) == 0
        pages = sum(len(fake.training_records(g)) // 2 + 1 for g in guids)
        assert spent(fake) - before == pages + records + 1
    assert all("due_date" not in r and "signed_date_time" not in r
               for r in read_jsonl(plain))
    header, rows = read_csv(detailed)
    assert header[-2:] == ["due_date", "signed_date_time"]
    truth = {(g, r["guid"]): (r.get("dueDate") or "", r.get("signedDateTime") or "")
             for g in guids for r in fake.training_records(g, detail=True)}
    assert {(r[0], r[1]): (r[4], r[5]) for r in rows} == truth
    assert any(due for due, _ in truth.values())


# ---------------------------------------------------------------- --plan


@pytest.mark.parametrize(("kind", "select"), [
    ("ticket-refs", "guids"),
    ("references", "query"),
    ("ticket-refs", "numbers"),
    ("training-records", "guids"),
    ("items", "query"),
    ("items", "numbers"),
])
def test_plan_is_what_the_run_then_spends(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], kind: str, select: str) -> None:
    fake = FakeArena.seeded(items=30, seed=5, quota_limit=LIMIT)
    guids = fake.item_guids
    items = tmp_path / "items.txt"
    if select == "guids":
        items.write_text("\n".join(guids[:17]))
        selection = ["--items", str(items)]
    elif select == "numbers":
        items.write_text("\n".join(fake.item(g)["number"] for g in guids[:9]))
        selection = ["--items", str(items)]
    else:
        selection = ["--number", "PN-00001*"]
    out = tmp_path / "out.jsonl"
    argv = ["export", kind, *selection, "--out", str(out), "-q"]
    with arena_env(monkeypatch, fake):
        assert main([*argv, "--plan"]) == 0
        plan_out = capsys.readouterr().out
        plan_cost = spent(fake)
        assert not out.exists()
        assert not checkpoint_path(out).exists()
        low, high = planned(plan_out)
        assert f"spent {plan_cost:,} requests" in plan_out
        assert re.search(r"^quota left\s+[\d,]+ of 1,000,000", plan_out, re.M)

        assert main(argv) == 0
        run_cost = spent(fake) - plan_cost
    if select == "numbers" and kind != "items":
        assert high == run_cost  # every number is known: the top of the range
    else:
        assert low == run_cost


def test_plan_of_a_resumed_export_counts_what_is_left(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The selection is saved beside the checkpoint: a resume neither lists the query
    again nor plans to, and its plan is what the resumed run spends."""
    fake = FakeArena.seeded(items=40, seed=1, quota_limit=LIMIT)
    out = tmp_path / "refs.jsonl"
    argv = ["export", "ticket-refs", "--number", "PN-0000*", "--out", str(out), "-q",
            "--checkpoint-interval", "0", "--concurrency", "1"]
    with arena_env(monkeypatch, fake):
        fake.set_quota(remaining=6)
        assert main(argv) == 3
        assert selection_path(out).exists()
        capsys.readouterr()
        fake.set_quota(remaining=LIMIT)
        assert main([*argv, "--plan"]) == 0
        plan_out = capsys.readouterr().out
        assert "resuming" in plan_out
        low, high = planned(plan_out)
        before = spent(fake)
        assert main(argv) == 0
        assert spent(fake) - before == low == high
        listings = [r for r in fake.requests_to("GET /items") if "limit=400" in r.query_string]
        assert len(listings) == 1  # listed once, by the first run (the plan read the quota)
    chosen = [g for g in fake.item_guids if fake.item(g)["number"].startswith("PN-0000")]
    assert canonical(read_jsonl(out)) == canonical(ticket_rows(fake, chosen, numbered=True))
    assert not selection_path(out).exists()


def test_a_plan_beyond_the_quota_left_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeArena.seeded(items=20, seed=1, quota_limit=LIMIT)
    items = tmp_path / "items.txt"
    items.write_text("\n".join(fake.item_guids))
    with arena_env(monkeypatch, fake):
        fake.set_quota(remaining=10)
        assert main(["export", "references", "--items", str(items), "--out",
                     str(tmp_path / "r.jsonl"), "--plan"]) == 0
    captured = capsys.readouterr()
    assert re.search(r"^quota left\s+9 ", captured.out, re.M)
    assert "quota left is less than the plan" in captured.err


# ---------------------------------------------------------------- permanent failures


def test_a_mixed_run_with_bad_keys_finishes_with_every_good_record_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """GUIDs and numbers; an unknown GUID (400), an item the user may not see (403), an
    unknown number; transient 503s on the way; the quota runs out mid-run (exit 3, resumable)
    and a second run finishes: every good record once, each bad key listed once, exit 4,
    no checkpoint left."""
    faults = FaultPlan(seed=7)
    fake = FakeArena.seeded(items=30, seed=6, quota_limit=LIMIT, faults=faults)
    guids = fake.item_guids
    forbidden = guids[7]
    faults.add(Fault("status", status=403, path=forbidden,
                     body={"status": 403, "errors": [{"code": 3024, "message":
                                                      "No privilege."}]}))
    # Fewer 503s than a request's 4 attempts: none can fail a request for good.
    faults.add(Fault("status", status=503, path="/trainingrecords", every=9, times=3))
    items = tmp_path / "items.txt"
    lines = [*guids[:20], "NOSUCHITEM0000000000",
             *(fake.item(g)["number"] for g in guids[20:]), "PN-777777"]
    items.write_text("\n".join(lines) + "\n")
    out = tmp_path / "records.jsonl"
    argv = ["export", "training-records", "--items", str(items), "--out", str(out),
            "--page-size", "2", "--concurrency", "4", "--checkpoint-interval", "0", "-q"]
    with arena_env(monkeypatch, fake):
        fake.set_quota(remaining=40)
        assert main(argv) == 3
        assert checkpoint_path(out).exists()
        capsys.readouterr()
        fake.set_quota(remaining=LIMIT)
        assert main(argv) == 4
        assert fake.stats.by_route["GET /items"] == 1  # the numbers, in one batch, once
    err = capsys.readouterr().err
    assert problems(err)[-1] == (
        f"arena-async: error: finished, but 3 items failed for good (an unknown item, "
        f"number or GUID, or no privilege): see {failed_path(out)}")
    good = [g for g in guids if g != forbidden]
    by_number = {g: fake.item(g)["number"] for g in guids[20:]}
    expected = [{"item_guid": g, "item_number": by_number.get(g), "guid": r["guid"],
                 "training_plan": r["trainingplan"]}
                for g in good for r in fake.training_records(g)]
    assert canonical(read_jsonl(out)) == canonical(expected)
    failed = {f["key"]: f for f in read_jsonl(failed_path(out))}
    assert sorted(failed) == sorted(["NOSUCHITEM0000000000", forbidden, "PN-777777"])
    assert failed[forbidden]["status"] == 403
    assert failed[forbidden]["code"] == 3024
    assert failed[forbidden]["message"] == "No privilege."
    assert failed["NOSUCHITEM0000000000"]["status"] in (400, 404)
    assert failed["PN-777777"]["item_guid"] is None
    text = failed_path(out).read_text() + out.read_text()
    assert fake.password not in text
    assert not checkpoint_path(out).exists()
    assert not selection_path(out).exists()


# ---------------------------------------------------------------- OAuth and --share


def test_oauth_machine_user_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeArena.seeded(items=5, seed=2, quota_limit=LIMIT)
    fake.add_oauth_client("etl-machine", "s3cret-client-secret")
    items = tmp_path / "items.txt"
    items.write_text("\n".join(fake.item_guids))
    out = tmp_path / "refs.jsonl"
    argv = ["export", "ticket-refs", "--items", str(items), "--out", str(out), "-q"]
    with arena_env(monkeypatch, fake):
        # OAuth and a password at once: refused, naming both (no silent winner).
        monkeypatch.setenv("ARENA_CLIENT_ID", "etl-machine")
        monkeypatch.setenv("ARENA_CLIENT_SECRET", "s3cret-client-secret")
        monkeypatch.setenv("ARENA_TOKEN_URL", fake.token_url)
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "give one credential, not both: Login (ARENA_EMAIL" in err
        assert "OAuthClient (ARENA_CLIENT_ID, ARENA_CLIENT_SECRET and ARENA_TOKEN_URL)" in err
        assert "s3cret-client-secret" not in err
        assert fake.requests == []
        monkeypatch.delenv("ARENA_EMAIL")
        monkeypatch.delenv("ARENA_PASSWORD")
        monkeypatch.delenv("ARENA_CLIENT_SECRET")
        monkeypatch.delenv("ARENA_TOKEN_URL")
        assert main(argv) == 2
        assert ("OAuthClient needs ARENA_CLIENT_SECRET and ARENA_TOKEN_URL too" in
                capsys.readouterr().err)
        monkeypatch.setenv("ARENA_TOKEN_URL", fake.token_url)
        monkeypatch.setenv("ARENA_CLIENT_SECRET", "wrong-secret-value")
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "wrong-secret-value" not in err
        assert len(problems(err)) == 1
        monkeypatch.setenv("ARENA_CLIENT_SECRET", "s3cret-client-secret")
        assert main(argv) == 0
        assert fake.stats.logins == 0
        assert fake.stats.bearer_requests == 5
        assert spent(fake) == 5  # no logout for a token
    captured = capsys.readouterr()
    assert "s3cret-client-secret" not in captured.out + captured.err
    assert canonical(read_jsonl(out)) == canonical(ticket_rows(fake, fake.item_guids))


def test_share_from_the_option_or_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeArena.seeded(items=5, seed=2, quota_limit=LIMIT)
    items = tmp_path / "items.txt"
    items.write_text("\n".join(fake.item_guids))
    share = tmp_path / "arena-share.db"
    with arena_env(monkeypatch, fake):
        assert main(["export", "ticket-refs", "--items", str(items), "--out",
                     str(tmp_path / "a.jsonl"), "-q", "--share", f"sqlite:///{share}"]) == 0
        assert share.exists()
        other = tmp_path / "other.db"
        monkeypatch.setenv("ARENA_SHARE", f"sqlite:///{other}")
        assert main(["export", "references", "--items", str(items), "--out",
                     str(tmp_path / "b.jsonl"), "-q"]) == 0
        assert other.exists()
    assert fake.stats.logins == 2


def test_the_arena_settings_and_the_logout_come_from_the_credential_object() -> None:
    from arena_async import ArenaClient, GivenSession, Login, OAuthClient
    from arena_async.cli._common import arena_settings
    from arena_async.cli._export import _logs_out

    env = {"ARENA_EMAIL": "e@x", "ARENA_PASSWORD": "pw", "ARENA_WORKSPACE_ID": "12"}
    assert arena_settings(env)["auth"] == Login("e@x", "pw", workspace_id=12)
    given = arena_settings({**env, "ARENA_SESSION_ID": "S"})["auth"]
    assert given == GivenSession("S", login=Login("e@x", "pw", workspace_id=12))
    oauth = {"ARENA_CLIENT_ID": "c", "ARENA_CLIENT_SECRET": "s",
             "ARENA_TOKEN_URL": "https://auth.example.com/t"}
    assert arena_settings(oauth)["auth"] == OAuthClient("c", "s", "https://auth.example.com/t")
    base = "http://127.0.0.1:9/v1"
    # One counted logout for a login only: the client's own credential says which.
    assert [_logs_out(ArenaClient(base_url=base, auth=auth)) for auth in (
        Login("e@x", "pw"), given, GivenSession("S"),
        OAuthClient("c", "s", "https://auth.example.com/t"))] == [1, 0, 0, 0]
