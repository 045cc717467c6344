"""What a stopped run advises after a failed login: the credentials only when the server
refused them; the base URL (or the OAuth token URL) when the login endpoint is not there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from arena_async.__main__ import main
from arena_async.errors import ErrorDetail, LoginError, NotFoundError
from arena_async.testing import FakeArena
from arena_async.testing._fake_akana import FakeAkana

from ._helpers import problems, served

CREDENTIALS = "check the credentials in the environment"
VARIABLES = ("ARENA_BASE_URL", "ARENA_EMAIL", "ARENA_PASSWORD", "ARENA_WORKSPACE_ID",
             "ARENA_SESSION_ID", "ARENA_CLIENT_ID", "ARENA_CLIENT_SECRET", "ARENA_TOKEN_URL",
             "AKANA_BASE_URL", "AKANA_EMAIL", "AKANA_PASSWORD", "AKANA_AUTH_TOKEN",
             "AKANA_TENANT", "AKANA_DOMAIN", "AKANA_USERNAME")


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeArena, FakeAkana]]:
    arena, akana = FakeArena.seeded(items=5, seed=1), FakeAkana.seeded(tickets=5, seed=1)
    with served(arena, akana):
        yield arena, akana


def arena_root(arena: FakeArena) -> str:
    return arena.url.removesuffix("/v1")


def run(argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> str:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(argv) == 1
    lines = problems(capsys.readouterr().err)
    assert len(lines) == 1, lines
    return lines[0]


CASES = {
    # name: (export, environment of (arena, akana), the advice expected)
    "arena-login-not-there": (
        ["items", "--category", "Resistors"],
        lambda ar, ak: {"ARENA_BASE_URL": ak.url, "ARENA_EMAIL": ar.email,
                        "ARENA_PASSWORD": ar.password},
        "check ARENA_BASE_URL, then run the same command again to resume"),
    "arena-refused": (
        ["items", "--category", "Resistors"],
        lambda ar, ak: {"ARENA_BASE_URL": ar.url, "ARENA_EMAIL": ar.email,
                        "ARENA_PASSWORD": "not-the-password"},
        f"{CREDENTIALS}, then run the same command again to resume"),
    "arena-numbers-login-not-there": (
        ["ticket-refs", "--items", "NUMBERS"],
        lambda ar, ak: {"ARENA_BASE_URL": ak.url, "ARENA_EMAIL": ar.email,
                        "ARENA_PASSWORD": ar.password},
        "check ARENA_BASE_URL, then run the same command again to resume"),
    "arena-query-login-not-there": (  # finding the items of a query, before the export
        ["ticket-refs", "--number", "PN-*"],
        lambda ar, ak: {"ARENA_BASE_URL": ak.url, "ARENA_EMAIL": ar.email,
                        "ARENA_PASSWORD": ar.password},
        "Arena's REST API base URL ends in /v1, e.g. https://api.arenasolutions.com/v1; "
        "check ARENA_BASE_URL"),
    "arena-plan-refused": (
        ["items", "--category", "Resistors", "--plan"],
        lambda ar, ak: {"ARENA_BASE_URL": ar.url, "ARENA_EMAIL": ar.email,
                        "ARENA_PASSWORD": "not-the-password"},
        CREDENTIALS),
    "oauth-token-url-not-there": (
        ["items", "--category", "Resistors"],
        lambda ar, ak: {"ARENA_BASE_URL": ar.url, "ARENA_CLIENT_ID": ar.client_id,
                        "ARENA_CLIENT_SECRET": ar.client_secret,
                        "ARENA_TOKEN_URL": arena_root(ar) + "/oauth/nowhere"},
        "check ARENA_TOKEN_URL, then run the same command again to resume"),
    "oauth-refused": (
        ["items", "--category", "Resistors"],
        lambda ar, ak: {"ARENA_BASE_URL": ar.url, "ARENA_CLIENT_ID": ar.client_id,
                        "ARENA_CLIENT_SECRET": "not-the-secret", "ARENA_TOKEN_URL": ar.token_url},
        f"{CREDENTIALS}, then run the same command again to resume"),
    "akana-login-not-there": (
        ["akana-tickets"],
        lambda ar, ak: {"AKANA_BASE_URL": ar.url, "AKANA_EMAIL": ak.email,
                        "AKANA_PASSWORD": ak.password},
        "check AKANA_BASE_URL (the portal's root, e.g. https://portal.example.com), then run "
        "the same command again to resume"),
    "akana-refused": (
        ["akana-tickets"],
        lambda ar, ak: {"AKANA_BASE_URL": ak.url, "AKANA_EMAIL": ak.email,
                        "AKANA_PASSWORD": "not-the-password"},
        f"{CREDENTIALS}, then run the same command again to resume"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_advice_follows_what_the_server_said(
        case: str, fakes: tuple[FakeArena, FakeAkana], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    command, env, advice = CASES[case]
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("PN-1\nPN-2\n")
    argv = ["export", *(str(numbers) if a == "NUMBERS" else a for a in command),
            "--out", str(tmp_path / "out.csv"), "-q"]
    if command[0] != "akana-tickets":
        argv += ["--share", "none"]
    line = run(argv, env(*fakes), monkeypatch, capsys)
    assert line.endswith(advice), line
    if CREDENTIALS not in advice:
        assert "credentials" not in line, line  # no advice that contradicts the URL hint


def test_other_failures_get_no_advice_beyond_their_message() -> None:
    from arena_async.cli._common import auth_advice

    accepted = LoginError(200, [ErrorDetail(None, "the account has pending tasks")],
                          method="POST", url="/api/login")
    assert auth_advice(accepted, "akana") == ""
    assert auth_advice(NotFoundError(404, [], url="/items/X"), "arena") == ""
    assert auth_advice(LoginError(403, [], url="/login"), "arena") == CREDENTIALS
    assert auth_advice(LoginError(405, [], url="/login"), "arena") == "check ARENA_BASE_URL"
    assert auth_advice(LoginError(404, [], url="/login")) == "check ARENA_BASE_URL"
    assert auth_advice(LoginError(404, [], url="/api/login")).startswith(
        "check AKANA_BASE_URL")
