"""``demo``, ``fake-server``, Ctrl-C, and the entry point without the ``cli`` extra."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from arena_async.__main__ import main
from arena_async.cli._checkpoint import Checkpoint, checkpoint_path

from ._helpers import banner, canonical, read_jsonl, truth

REPO = Path(__file__).resolve().parents[2]


def test_demo_prints_a_plain_summary_when_not_a_terminal(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--items", "60", "--tickets", "30", "--fault-rate", "0.02"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    for word in ("ticket refs", "item refs", "training records", "Akana tickets", "total",
                 "Arena quota left:", "retries"):
        assert word in out
    assert "\x1b" not in out + captured.err
    assert len(out.splitlines()) <= 20
    assert captured.err.startswith("Fake servers on loopback: Arena with 60 items")


def test_demo_quiet_prints_its_table_and_no_notes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "-q", "--items", "20", "--tickets", "5"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # no "Fake servers on loopback" note, no progress
    assert "arena_async demo: FakeArena at" in captured.out  # the table: the demo's result
    assert "training records" in captured.out
    assert main(["demo", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert ("No progress (bars or lines) and no notes on stderr; the summary table on "
            "stdout, the demo's result, is still printed.") in text


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("arena-async ")
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "demo" in out
    assert "export" in out
    assert "fake-server" in out
    assert main(["export", "akana-tickets", "--help"]) == 0
    assert "--api-id" in capsys.readouterr().out
    assert main([]) == 2  # no command: help, and bad usage


def test_without_the_cli_extra_a_hint_and_exit_2(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "typer", None)  # import typer -> ImportError
    assert main(["demo"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "pip install 'arena_async[cli]'" in err


def test_the_library_does_not_import_typer_or_rich() -> None:
    code = ("import sys, arena_async, arena_async.testing; "
            "print(sorted(m for m in ('typer', 'rich') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=REPO)
    assert result.stdout.strip() == "[]"


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "arena_async", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_fake_server_serves_until_sigterm(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    items_file = tmp_path / "items.txt"
    proc = _spawn("fake-server", "--items", "12", "--tickets", "20", "--seed", "5",
                  "--write-items", str(items_file))
    try:
        lines = banner(proc)
        text = "\n".join(lines)
        assert "FakeArena  http://127.0.0.1:" in text
        assert "FakeAkana  http://127.0.0.1:" in text
        env = dict(part.split("=", 1) for line in lines if line.startswith("export ")
                   for part in shlex.split(line.removeprefix("export ")))
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        # A temporary share of the fake's own: trying the fake never uses the default.
        share = Path(env["ARENA_SHARE"].removeprefix("sqlite:///"))
        assert share.is_absolute()
        assert share.parent.is_dir()
        assert "your default share is not used" in text
        out = tmp_path / "refs.jsonl"
        assert main(["export", "ticket-refs", "--items", str(items_file), "--out",
                     str(out), "-q"]) == 0
        assert canonical(read_jsonl(out)) == canonical(truth("ticket-refs", items=12, seed=5))
        tickets = tmp_path / "t.jsonl"
        assert main(["export", "akana-tickets", "--out", str(tickets), "-q"]) == 0
        assert len(read_jsonl(tickets)) == 20
    finally:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    assert "Stopped." in stdout
    assert share.exists() is False
    assert not share.parent.exists()
    assert not (Path(os.environ["XDG_STATE_HOME"]) / "arena_async" / "share.db").exists()


def test_fake_server_prints_its_oauth_client_for_the_docs_example(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    items_file = tmp_path / "items.txt"
    proc = _spawn("fake-server", "--no-akana", "--items", "6", "--seed", "3",
                  "--write-items", str(items_file))
    try:
        lines = banner(proc)
        # Every shell line, as a user copies them: the login's, then the OAuth switch.
        for line in lines:
            if not line.startswith(("export ", "unset ")):
                continue
            for command in line.split("; "):
                words = shlex.split(command)
                if words[:1] == ["export"]:
                    for part in words[1:]:
                        monkeypatch.setenv(*part.split("=", 1))
                elif words[:1] == ["unset"]:
                    for name in words[1:]:
                        monkeypatch.delenv(name)
        # The variables docs/credentials.md's OAuth example reads are all there.
        guide = (REPO / "docs" / "credentials.md").read_text(encoding="utf-8")
        oauth = guide[guide.index("## OAuth machine users"):guide.index("## Akana")]
        wanted = set(re.findall(r'os\.environ\["(ARENA_\w+)"\]', oauth))
        assert wanted >= {"ARENA_CLIENT_ID", "ARENA_CLIENT_SECRET", "ARENA_TOKEN_URL"}
        assert wanted <= set(os.environ), wanted - set(os.environ)
        assert os.environ["ARENA_CLIENT_ID"] == "fake-client-id"
        for name in ("ARENA_EMAIL", "ARENA_PASSWORD", "ARENA_WORKSPACE_ID"):
            assert name not in os.environ  # one credential at a time
        out = tmp_path / "refs.jsonl"
        assert main(["export", "ticket-refs", "--items", str(items_file), "--out", str(out),
                     "-q"]) == 0
        assert canonical(read_jsonl(out)) == canonical(truth("ticket-refs", items=6, seed=3))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_export_resumably(tmp_path: Path, signum: int, code: int) -> None:
    out = tmp_path / "records.jsonl"
    args = ["export", "training-records", "--fake", "--fake-items", "150", "--page-size",
            "2", "--concurrency", "4", "--checkpoint-interval", "0", "--out", str(out)]
    proc = _spawn(*args, "--fake-latency", "0.004")
    cp = checkpoint_path(out)
    deadline = time.monotonic() + 15
    try:
        while time.monotonic() < deadline:
            if cp.exists():
                try:
                    if Checkpoint.from_json(json.loads(cp.read_text())).records > 20:
                        break
                except ValueError:  # pragma: no cover - read between replace calls
                    pass
            time.sleep(0.02)
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:  # pragma: no cover
            proc.kill()
    assert proc.returncode == code, stderr
    assert "interrupted" in stderr
    assert "run the same command again" in stderr
    assert "Traceback" not in stderr
    state = Checkpoint.from_json(json.loads(cp.read_text()))
    assert 0 < state.items_done < 150
    assert state.bytes == out.stat().st_size

    assert main([*args[:-4], *args[-2:], "-q"]) == 0  # without --checkpoint-interval 0
    assert canonical(read_jsonl(out)) == canonical(truth("training-records", items=150))
    assert not cp.exists()
