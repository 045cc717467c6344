"""``-v`` / ``--log-level`` / ``ARENA_LOG_LEVEL``: the library's logs on stderr, one
compact line per record, never a secret; without them the warnings stay bare lines."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from arena_async.__main__ import main
from arena_async.cli._common import CliError
from arena_async.cli._logs import LogLevel, level_for
from arena_async.testing import FakeAkana, FakeArena, Fault
from arena_async.testing._fake_akana import FakeUser
from tests.test_secrets import leaks

from ._helpers import items_file, read_jsonl, served
from .test_cosmetics import visible_lines

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "S3cret-Pa55word!"
#: A log line: time of day with milliseconds, level, logger, message.
LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} (DEBUG|INFO|WARNING|ERROR) (arena_async[\w.]*): ")
COMMANDS = [["demo"], ["fake-server"], ["export", "items"], ["export", "ticket-refs"],
            ["export", "references"], ["export", "training-records"], ["export", "bom"],
            ["export", "akana-tickets"]]


@pytest.mark.parametrize(("verbose", "option", "env", "level"), [
    (0, None, None, None),               # nothing asked: no handler, bare warnings
    (1, None, None, logging.INFO),
    (2, None, None, logging.DEBUG),
    (3, None, None, logging.DEBUG),
    (0, LogLevel.warning, None, logging.WARNING),
    (0, LogLevel.error, None, logging.ERROR),
    (0, None, "DEBUG", logging.DEBUG),   # any case
    (0, None, " info ", logging.INFO),
    (0, None, "", None),                 # blank is unset
    (0, LogLevel.error, "debug", logging.ERROR),  # the option wins over the variable
    (1, LogLevel.debug, None, logging.DEBUG),     # -v never hides what was asked
    (2, LogLevel.error, None, logging.DEBUG),
    (1, None, "error", logging.INFO),
])
def test_the_level_is_the_most_verbose_asked(verbose: int, option: LogLevel | None,
                                             env: str | None, level: int | None) -> None:
    environ = {} if env is None else {"ARENA_LOG_LEVEL": env}
    assert level_for(verbose, option, environ) == level


def test_a_variable_that_is_no_level_is_one_usage_error_naming_it(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    with pytest.raises(CliError) as caught:
        level_for(0, None, {"ARENA_LOG_LEVEL": "loud"})
    assert caught.value.exit_code == 2
    monkeypatch.setenv("ARENA_LOG_LEVEL", "loud")
    out = tmp_path / "refs.jsonl"
    assert main(["export", "ticket-refs", "--fake", "--fake-items", "2", "--out",
                 str(out)]) == 2
    assert capsys.readouterr().err == (
        "arena-async: error: ARENA_LOG_LEVEL must be one of debug, info, warning, error "
        "(any case), not 'loud'\n")
    assert not out.exists()
    assert main(["demo", "--items", "2", "--tickets", "0", "--log-level", "LOUD"]) == 2
    assert "Invalid value for '--log-level'" in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_that_talks_to_a_server_takes_them(
        command: list[str], capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main([*command, "--help"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"^\s+-v, --verbose\s", text, re.M)
    assert re.search(r"^\s+--log-level \[?<?debug\|info\|warning\|error", text, re.M)
    assert "$ARENA_LOG_LEVEL" in text


def _run(*args: str, env: dict[str, str] | None = None) -> list[str]:
    """stderr of ``arena-async export akana-tickets --fake --state weird ...`` in a process of
    its own (Python's bare warnings show only where no handler is configured): the library
    warns that the state is not a documented one."""
    result = subprocess.run(
        [sys.executable, "-m", "arena_async", "export", "akana-tickets", "--fake",
         "--fake-tickets", "3", "--state", "weird", "--allow-empty", "--overwrite", "-q",
         *args], check=False, capture_output=True, text=True, cwd=REPO, timeout=120,
        env={**{k: v for k, v in os.environ.items() if k != "ARENA_LOG_LEVEL"},
             "PYTHONUNBUFFERED": "1", **(env or {})})
    assert result.returncode == 0, result.stderr
    return result.stderr.splitlines()


def test_warnings_stay_bare_lines_unless_logs_are_asked_for(tmp_path: Path) -> None:
    out = str(tmp_path / "t.jsonl")
    warning = ("state 'weird' is not one of the documented ticket states (OPEN, RESOLVED, "
               "CLOSED, REOPEN): sent as given; a state the platform does not have matches "
               "no ticket")
    assert _run("--out", out) == [warning]  # as before: the message alone

    lines = _run("--out", out, "-v")  # one line per record: time, level, logger, message
    assert all(LINE.match(line) for line in lines), lines
    assert any(line.endswith(f" WARNING arena_async.akana.tickets: {warning}")
               for line in lines), lines
    assert any(" INFO arena_async.akana._auth: logged in to Akana" in line for line in lines)
    assert not any(" DEBUG " in line for line in lines)

    debug = _run("--out", out, env={"ARENA_LOG_LEVEL": "debug"})
    assert any(" DEBUG arena_async._transport: GET /api/tickets" in line for line in debug)
    assert all(LINE.match(line) for line in debug), debug

    assert _run("--out", out, "--log-level", "error") == []  # even its warnings hidden


def test_log_lines_go_above_live_bars_whole(tmp_path: Path) -> None:
    """With live bars (forced, as on a terminal) each record is one whole line printed
    above them, none drawn into a bar, and the bars still end drawn."""
    out = tmp_path / "records.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "arena_async", "export", "training-records", "--fake",
         "--fake-items", "30", "--page-size", "2", "--fake-latency", "0.002", "--progress",
         "bars", "-vv", "--out", str(out)], check=False, capture_output=True, text=True,
        cwd=REPO, timeout=120, env={**os.environ, "COLUMNS": "250", "LINES": "30"})
    assert result.returncode == 0, result.stderr
    screen = [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line)
              for line in visible_lines(result.stderr)]
    logged = [line for line in screen if " arena_async." in line]
    assert all(LINE.match(line) for line in logged), [x for x in logged if not LINE.match(x)]
    assert sum("DEBUG arena_async._transport: GET /items/" in line for line in logged) >= 30
    assert any("training records" in line and "━" in line for line in screen)


def _session_id(fake: FakeArena) -> str:
    """A session of the fake's, logged in to apart from the command."""

    async def login() -> str:
        async with aiohttp.ClientSession() as http, http.post(
                f"{fake.url}/login", json={"email": fake.email, "password": PASSWORD}) as resp:
            session: str = (await resp.json())["arenaSessionId"]
            return session

    return asyncio.run(login())


def test_debug_logs_of_every_credential_show_no_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Each export at DEBUG, against fakes that record what they issued: an Arena login
    (with a retried 503 and a refused session logged in again, through a share), its OAuth
    client, a given session id, an Akana login (with CSRF). Every password, secret, session
    id, token and CSRF value is searched for in stderr (raw, percent-encoded, JSON-escaped)."""
    arena = FakeArena.seeded(items=4, seed=1, password=PASSWORD)
    me = FakeUser("me@acmepaymentscorp.example", PASSWORD, "u1.acmepaymentscorp", "me")
    akana = FakeAkana.seeded(tickets=6, seed=1, users=[me], csrf_on_reads=True)
    guids = str(items_file(tmp_path, arena))
    share = f"sqlite:///{tmp_path / 'share.db'}"
    for name in ("ARENA_SESSION_ID", "ARENA_WORKSPACE_ID", "ARENA_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    err = ""
    with served(arena, akana):
        monkeypatch.setenv("ARENA_BASE_URL", arena.url)
        monkeypatch.setenv("ARENA_EMAIL", arena.email)
        monkeypatch.setenv("ARENA_PASSWORD", PASSWORD)
        arena.faults.add(Fault("status", status=503, retry_after="0", path="/tickets$",
                               times=1))
        arena.faults.add(Fault("status", status=401, path="/items$", times=1))
        out = tmp_path / "refs.jsonl"
        for kind in ("ticket-refs", "references"):
            assert main(["export", kind, "--items", guids, "--out", str(out), "--overwrite",
                         "--share", share, "-vv"]) == 0
            err += capsys.readouterr().err
        assert arena.stats.logins == 3  # one per export, and the one after the 401

        monkeypatch.delenv("ARENA_EMAIL")
        monkeypatch.delenv("ARENA_PASSWORD")
        monkeypatch.setenv("ARENA_CLIENT_ID", arena.client_id)
        monkeypatch.setenv("ARENA_CLIENT_SECRET", arena.client_secret)
        monkeypatch.setenv("ARENA_TOKEN_URL", arena.token_url)
        assert main(["export", "items", "--items", guids, "--out", str(out), "--overwrite",
                     "--share", "none", "-vv"]) == 0
        err += capsys.readouterr().err

        for name in ("ARENA_CLIENT_ID", "ARENA_CLIENT_SECRET", "ARENA_TOKEN_URL"):
            monkeypatch.delenv(name)
        monkeypatch.setenv("ARENA_SESSION_ID", _session_id(arena))
        monkeypatch.setenv("ARENA_LOG_LEVEL", "DEBUG")  # the variable, this time
        assert main(["export", "training-records", "--items", guids, "--out", str(out),
                     "--overwrite"]) == 0
        err += capsys.readouterr().err

        monkeypatch.setenv("AKANA_BASE_URL", akana.url)
        monkeypatch.setenv("AKANA_EMAIL", me.email)
        monkeypatch.setenv("AKANA_PASSWORD", PASSWORD)
        tickets = tmp_path / "tickets.jsonl"
        assert main(["export", "akana-tickets", "--out", str(tickets), "--page-size", "4",
                     "-vv"]) == 0
        err += capsys.readouterr().err
        assert len(read_jsonl(tickets)) == 6

    session_ids = {r.headers["arena_session_id"] for r in arena.requests if r.has_session}
    bearers = {r.headers["Authorization"].removeprefix("Bearer ") for r in arena.requests
               if r.headers.get("Authorization", "").startswith("Bearer ")}
    tokens = {r.cookies[akana.auth_cookie] for r in akana.requests
              if akana.auth_cookie in r.cookies}
    csrfs = {r.headers[akana.csrf_header] for r in akana.requests
             if akana.csrf_header in r.headers}
    assert len(session_ids) == 4  # three logins and the given session
    assert bearers
    assert tokens
    assert csrfs
    secrets = {PASSWORD, arena.client_secret} | session_ids | bearers | tokens | csrfs

    lines = err.splitlines()
    logged = [line for line in lines if LINE.match(line)]
    # DEBUG really was on, for every run: the requests, the retry, the re-login, the
    # OAuth token, the given session, the share, Akana's login, the fakes' own records.
    for wanted in ("DEBUG arena_async._transport: GET /items/", "retrying GET",
                   "INFO arena_async.arena._auth: logged in to Arena workspace",
                   "session rejected (HTTP 401); obtaining a new one",
                   "INFO arena_async.arena._auth: obtained an OAuth token",
                   "FakeArena issued an access token", "arena_async._share._link: ",
                   "/trainingrecords?offset=0&limit=400 -> 200",
                   "DEBUG arena_async._transport: GET /api/tickets",
                   "INFO arena_async.akana._auth: logged in to Akana",
                   "DEBUG arena_async.testing._faults: fault status fires"):
        assert any(wanted in line for line in logged), wanted
    assert sum(" DEBUG " in line for line in logged) > 40
    assert leaks(secrets, lines) == []
    # The search can fail: a secret in a line would be found.
    assert leaks(secrets, [f"x {next(iter(session_ids))} x"]) != []
    assert logging.getLogger("arena_async").handlers == []  # nothing left behind
