"""``python -m arena_async.testing arena|akana``: ``READY <url>`` first (programs read
it), then the credentials as shell lines a person started it by hand can paste, the same
lines ``arena-async fake-server`` prints, and they work."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from arena_async import AkanaClient, ArenaClient
from arena_async.testing import FakeAkana, FakeArena
from arena_async.testing.__main__ import banner
from arena_async.testing._banner import akana_lines, arena_lines

REPO = Path(__file__).resolve().parents[2]
LAST = "# serving until Ctrl-C or SIGTERM"


@contextmanager
def fake_process(*args: str) -> Iterator[list[str]]:
    """The fake running in its own process; yields the lines it printed once listening
    (READY to the last), and checks at the end that SIGTERM stopped it cleanly with
    nothing more printed."""
    env = dict(os.environ,
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-m", "arena_async.testing", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not lines or lines[-1] != LAST:
            line = proc.stdout.readline()
            assert line, (lines, proc.stderr.read() if proc.stderr else "")
            lines.append(line.rstrip("\n"))
        yield lines
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)  # (a hang fails it; a loaded box does not)
    assert proc.returncode == 0, err
    assert out == ""


def environment(lines: list[str], environ: dict[str, str] | None = None) -> dict[str, str]:
    """The variables a shell has after running ``lines`` (comments and the READY line
    skipped, as a person pastes the lines they want)."""
    env = dict(environ or {})
    for line in lines:
        if not line.startswith(("export ", "unset ")):
            continue
        for command in line.split("; "):
            words = shlex.split(command)
            if words[0] == "export":
                env.update(part.split("=", 1) for part in words[1:])
            else:
                for name in words[1:]:
                    env.pop(name, None)
    return env


def arena_from(env: dict[str, str]) -> ArenaClient:
    """The client the CLI would make of these ``ARENA_*`` variables."""
    keys = ("email", "password", "workspace_id", "client_id", "client_secret", "token_url")
    given = {k: env[f"ARENA_{k.upper()}"] for k in keys if f"ARENA_{k.upper()}" in env}
    if "workspace_id" in given:
        given["workspace_id"] = int(given["workspace_id"])  # type: ignore[assignment]
    return ArenaClient(base_url=env["ARENA_BASE_URL"], share=env["ARENA_SHARE"], **given)


def test_arena_prints_ready_then_credentials_that_log_in() -> None:
    with fake_process("arena", "--port", "0", "--items", "3", "--seed", "2") as lines:
        ready, login, share_note, oauth_note, oauth = lines[:5]
        assert ready.startswith("READY http://127.0.0.1:")
        url = ready.removeprefix("READY ")
        assert url.endswith("/v1")
        assert len(lines) == 6
        assert share_note.startswith("# ARENA_SHARE: a temporary share of this fake's own")
        assert oauth_note.startswith("# or as its OAuth machine user")
        env = environment([login])
        assert env["ARENA_BASE_URL"] == url
        assert env["ARENA_EMAIL"] == "user@example.com"
        assert env["ARENA_PASSWORD"] == "fake-password"
        share = Path(env["ARENA_SHARE"].removeprefix("sqlite:///"))
        assert stat.S_IMODE(share.parent.stat().st_mode) == 0o700  # private, and not the
        assert not share.exists()                                   # default share

        oauth_env = environment(lines, dict(os.environ))  # every line pasted: OAuth wins
        for name in ("ARENA_EMAIL", "ARENA_PASSWORD", "ARENA_WORKSPACE_ID"):
            assert name not in oauth_env
        assert oauth_env["ARENA_CLIENT_ID"] == "fake-client-id"
        assert environment([oauth]) == {k: v for k, v in oauth_env.items()
                                        if k.startswith("ARENA_CLIENT_")
                                        or k == "ARENA_TOKEN_URL"}

        async def fetch(client: ArenaClient) -> int:
            async with client as arena:
                found = [item async for item in arena.items.iter()]
                return len(found)

        assert asyncio.run(fetch(arena_from(env))) == 3
        assert share.exists()  # the login's session went to the temporary share
        assert asyncio.run(fetch(arena_from({**oauth_env, "ARENA_SHARE": "none"}))) == 3
    assert not share.parent.exists()  # removed when the fake stopped


def test_akana_prints_ready_then_credentials_that_log_in() -> None:
    with fake_process("akana", "--port", "0", "--tickets", "4") as lines:
        assert len(lines) == 3
        ready, login, _ = lines
        url = ready.removeprefix("READY ")
        env = environment([login])
        assert env == {"AKANA_BASE_URL": url, "AKANA_EMAIL": "admin@acmepaymentscorp.example",
                       "AKANA_PASSWORD": "Akana-Passw0rd!"}

        async def fetch() -> int:
            async with AkanaClient(base_url=env["AKANA_BASE_URL"], email=env["AKANA_EMAIL"],
                                   password=env["AKANA_PASSWORD"]) as akana:
                return len([t async for t in akana.tickets.iter()])

        assert asyncio.run(fetch()) == 4


async def test_the_banner_is_the_fake_server_command_s() -> None:
    """One source for both: ``arena-async fake-server`` prints these lines, indented."""
    async with FakeArena.seeded(items=1, seed=1) as arena, \
            FakeAkana.seeded(tickets=1, seed=1) as akana:
        with ExitStack() as stack:
            arena_banner = banner(arena, stack.callback)
            share = environment(arena_banner)["ARENA_SHARE"]
            assert arena_banner == [f"READY {arena.url}", *arena_lines(arena, share=share),
                                    LAST]
            assert banner(akana, stack.callback) == [f"READY {akana.url}",
                                                     *akana_lines(akana), LAST]
            folder = Path(share.removeprefix("sqlite:///")).parent
            assert folder.is_dir()
        assert not folder.exists()
