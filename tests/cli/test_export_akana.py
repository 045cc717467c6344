"""``arena-async export akana-tickets``: filters, formats, resume without duplicates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from arena_async.__main__ import main
from arena_async.cli._checkpoint import checkpoint_path
from arena_async.cli._common import CliError
from arena_async.cli._export import ExportOptions, export_tickets
from arena_async.cli._records import AKANA_TICKET_CSV
from arena_async.cli._ui import Reporter
from arena_async.testing import Fault
from arena_async.testing._fake_akana import FakeAkana

from ._helpers import read_csv, read_jsonl

TICKETS = 230


def test_jsonl_with_a_filter(tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    assert main(["export", "akana-tickets", "--fake", "--fake-tickets", str(TICKETS),
                 "--state", "OPEN", "--page-size", "40", "--out", str(out), "-q"]) == 0
    expected = [t["TicketID"] for t in FakeAkana.seeded(tickets=TICKETS, seed=1).tickets
                if t["State"] == "OPEN"]
    rows = read_jsonl(out)
    assert [r["ticket_id"] for r in rows] == expected
    assert {r["state"] for r in rows} == {"OPEN"}
    assert isinstance(rows[0]["target_resources"], list)
    assert rows[0]["created"].endswith("Z")


def test_csv(tmp_path: Path) -> None:
    out = tmp_path / "t.csv"
    assert main(["export", "akana-tickets", "--fake", "--fake-tickets", "30", "--out",
                 str(out), "-q"]) == 0
    header, rows = read_csv(out)
    assert header == list(AKANA_TICKET_CSV.names)
    assert [r[0] for r in rows] == [t["TicketID"] for t in
                                    FakeAkana.seeded(tickets=30, seed=1).tickets]


async def test_a_failed_page_stops_and_resume_skips_a_shifted_ticket(tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    opts = ExportOptions(out=out, format="jsonl", page_size=25, checkpoint_interval=0.0)
    async with FakeAkana.seeded(tickets=TICKETS, seed=4) as fake:
        original = [t["TicketID"] for t in fake.tickets]
        creds = {"base_url": fake.url, "email": fake.email, "password": fake.password}
        fake.faults.add(Fault("status", status=400, path="/api/tickets$", after=4, times=1))
        with pytest.raises(CliError) as info:
            await export_tickets({}, creds, opts, Reporter(quiet=True))
        assert info.value.exit_code == 1
        assert "run the same command again" in info.value.message
        state = json.loads(checkpoint_path(out).read_text())
        assert state["next_start"] == 100
        assert len(read_jsonl(out)) == 100

        # A new ticket meanwhile: newest first, it shifts every later page down by one.
        newest = dict(fake.get_stored_ticket(original[0]))
        newest.update(TicketID="ticket99999.acmepaymentscorp", Created="2030-01-01T00:00:00Z")
        fake.add_ticket(newest)
        await export_tickets({}, creds, opts, Reporter(quiet=True))
    got = [r["ticket_id"] for r in read_jsonl(out)]
    assert got == original  # nothing twice, nothing missing
    assert not checkpoint_path(out).exists()


async def test_resume_refuses_other_filters(tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    opts = ExportOptions(out=out, format="jsonl", page_size=10)
    async with FakeAkana.seeded(tickets=50, seed=4) as fake:
        creds = {"base_url": fake.url, "email": fake.email, "password": fake.password}
        fake.faults.add(Fault("status", status=400, path="/api/tickets$", after=1, times=1))
        with pytest.raises(CliError):
            await export_tickets({"state": "OPEN"}, creds, opts, Reporter(quiet=True))
        with pytest.raises(CliError) as info:
            await export_tickets({"state": "CLOSED"}, creds, opts, Reporter(quiet=True))
        assert info.value.exit_code == 2
        assert "different filters" in info.value.message


def test_akana_credentials_from_the_environment(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("AKANA_BASE_URL", "AKANA_EMAIL", "AKANA_PASSWORD", "AKANA_AUTH_TOKEN",
                 "AKANA_TENANT"):
        monkeypatch.delenv(name, raising=False)
    out = str(tmp_path / "t.jsonl")
    assert main(["export", "akana-tickets", "--out", out]) == 2
    assert "AKANA_BASE_URL" in capsys.readouterr().err
    monkeypatch.setenv("AKANA_BASE_URL", "https://portal.example.com")
    assert main(["export", "akana-tickets", "--out", out]) == 2
    assert "AKANA_EMAIL" in capsys.readouterr().err
    monkeypatch.setenv("AKANA_AUTH_TOKEN", "tok")
    assert main(["export", "akana-tickets", "--out", out]) == 2
    assert "AKANA_TENANT" in capsys.readouterr().err


def test_a_directory_user_from_the_environment(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from arena_async.testing._fake_akana import FakeUser

    from ._helpers import served

    for name in ("AKANA_EMAIL", "AKANA_PASSWORD", "AKANA_AUTH_TOKEN", "AKANA_TENANT",
                 "AKANA_CSRF_TOKEN", "AKANA_DOMAIN", "AKANA_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    secret = "Ldap-s3cret-Pa55"
    user = FakeUser("jdoe@corp.example", secret, "f00d.acmepaymentscorp", "jdoe",
                    domain="CORP", username="jdoe")
    fake = FakeAkana.seeded(tickets=25, seed=5, directory_users=[user])
    out = tmp_path / "t.jsonl"
    argv = ["export", "akana-tickets", "--out", str(out), "-q"]
    with served(fake):
        monkeypatch.setenv("AKANA_BASE_URL", fake.url)
        monkeypatch.setenv("AKANA_DOMAIN", "CORP")
        monkeypatch.setenv("AKANA_PASSWORD", secret)
        assert main(argv) == 2  # the one rule: which variable is missing, by name
        assert ("DirectoryLogin needs AKANA_USERNAME too (given: AKANA_DOMAIN and "
                "AKANA_PASSWORD)") in capsys.readouterr().err
        monkeypatch.setenv("AKANA_USERNAME", "jdoe")
        monkeypatch.setenv("AKANA_EMAIL", fake.email)
        assert main(argv) == 2  # a password login and a directory login: refused
        err = capsys.readouterr().err
        assert "give one credential, not both: Login (AKANA_EMAIL and AKANA_PASSWORD) and " \
               "DirectoryLogin (AKANA_DOMAIN, AKANA_USERNAME and AKANA_PASSWORD)" in err
        monkeypatch.delenv("AKANA_EMAIL")
        assert main(argv) == 0
        assert fake.stats.directory_logins == 1
        assert fake.stats.endsessions == 1
        assert fake.requests[0].path == "/api/login/ssoLogin"
    assert [r["ticket_id"] for r in read_jsonl(out)] == [t["TicketID"] for t in fake.tickets]
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err


def test_akana_settings_carry_the_credential_object() -> None:
    from arena_async import GivenCookies, Login
    from arena_async.cli._common import akana_settings

    base = {"AKANA_BASE_URL": "https://portal.example.com"}
    assert akana_settings({**base, "AKANA_EMAIL": "e@x", "AKANA_PASSWORD": "pw",
                           "AKANA_TENANT": "acme"}) == {
        "base_url": "https://portal.example.com", "auth": Login("e@x", "pw"), "tenant": "acme"}
    assert akana_settings({**base, "AKANA_AUTH_TOKEN": "t", "AKANA_TENANT": "acme",
                           "AKANA_EMAIL": "e@x", "AKANA_PASSWORD": "pw"})["auth"] == \
        GivenCookies("t", "acme", login=Login("e@x", "pw"))
