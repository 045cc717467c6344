"""The command line's share and ``--cache``: a run against a server uses the library's
default share (``ARENA_SHARE``, else the private file in the user's state folder),
``--share`` overrides it and ``--share none`` opts out; a relative SQLite path is one line
and exit 2; ``--fake`` and ``demo`` never use the default share; ``--cache`` keeps the
answers in the share, so a second run spends fewer requests (counted on the fake)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from arena_async.__main__ import main
from arena_async.testing import FakeArena

from ._helpers import canonical, items_file, point_at, read_csv, read_jsonl, served, truth

ENV = ("ARENA_EMAIL", "ARENA_PASSWORD", "ARENA_SESSION_ID", "ARENA_WORKSPACE_ID",
       "ARENA_BASE_URL", "ARENA_CLIENT_ID", "ARENA_CLIENT_SECRET", "ARENA_TOKEN_URL",
       "ARENA_SHARE")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def default_share() -> Path:
    """The default share of this test (conftest points XDG_STATE_HOME into its tmp)."""
    return Path(os.environ["XDG_STATE_HOME"]) / "arena_async" / "share.db"






def private(tmp_path: Path, name: str) -> Path:
    """A share path in a private folder (the library refuses a folder others can read)."""
    folder = tmp_path / f"{name}-folder"
    folder.mkdir(mode=0o700)
    return folder / "share.db"


# -- the default share ------------------------------------------------------------------

def test_a_run_uses_the_default_share_unless_told(env: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    fake = FakeArena.seeded(items=3, seed=2)
    items = items_file(tmp_path, fake)
    with served(fake):
        point_at(env, fake)
        for option, name in ((["--share", "none"], "a"), (["--share", "NONE"], "b")):
            assert main(["export", "ticket-refs", "--items", str(items), "--out",
                         str(tmp_path / f"{name}.jsonl"), "-q", *option]) == 0
        env.setenv("ARENA_SHARE", "none")
        assert main(["export", "ticket-refs", "--items", str(items), "--out",
                     str(tmp_path / "c.jsonl"), "-q"]) == 0
        assert not default_share().exists()
        # --share wins over ARENA_SHARE.
        given = private(tmp_path, "given")
        assert main(["export", "ticket-refs", "--items", str(items), "--out",
                     str(tmp_path / "d.jsonl"), "-q", "--share", f"sqlite:///{given}"]) == 0
        assert given.exists()
        assert not default_share().exists()
        env.delenv("ARENA_SHARE")
        assert main(["export", "ticket-refs", "--items", str(items), "--out",
                     str(tmp_path / "e.jsonl"), "-q"]) == 0
        assert default_share().exists()  # the library's default, as every program's
    for name in "abcde":
        assert canonical(read_jsonl(tmp_path / f"{name}.jsonl")) == \
            canonical(truth("ticket-refs", items=3, seed=2))


@pytest.mark.parametrize("where", ["option", "environment"])
def test_a_relative_sqlite_path_is_one_line_and_exit_2(
        where: str, env: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeArena.seeded(items=2, seed=2)
    items = items_file(tmp_path, fake)
    env.chdir(tmp_path)
    argv = ["export", "ticket-refs", "--items", str(items), "--out", "out.jsonl"]
    with served(fake):
        point_at(env, fake)
        if where == "option":
            argv += ["--share", "sqlite:///share.db"]
        else:
            env.setenv("ARENA_SHARE", "sqlite:///share.db")
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "must be absolute" in err
    assert ("--share: " if where == "option" else "ARENA_SHARE: ") in err
    assert fake.requests == []
    assert not (tmp_path / "share.db").exists()
    assert not (tmp_path / "out.jsonl").exists()


def test_a_malformed_share_url_never_shows_its_password(
        env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "ticket-refs", "--fake", "--out", str(tmp_path / "a.jsonl"),
                 "--share", "redis://:sup3r-secret@cache:0/0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--share: " in err
    assert "sup3r-secret" not in err


def test_the_fake_and_the_demo_never_use_the_default_share(
        env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    elsewhere = private(tmp_path, "env")
    env.setenv("ARENA_SHARE", f"sqlite:///{elsewhere}")  # the user's real setting
    assert main(["export", "ticket-refs", "--fake", "--fake-items", "3", "--out",
                 str(tmp_path / "a.jsonl"), "-q"]) == 0
    assert main(["demo", "--items", "3", "--tickets", "0", "-q"]) == 0
    assert not elsewhere.exists()
    env.delenv("ARENA_SHARE")
    assert main(["export", "ticket-refs", "--fake", "--fake-items", "3", "--out",
                 str(tmp_path / "b.jsonl"), "-q"]) == 0
    assert not default_share().exists()
    # Unless --share names one.
    given = private(tmp_path, "given")
    assert main(["export", "ticket-refs", "--fake", "--fake-items", "3", "--out",
                 str(tmp_path / "c.jsonl"), "-q", "--share", f"sqlite:///{given}"]) == 0
    assert given.exists()


def test_the_help_says_what_the_default_share_is(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["export", "ticket-refs"], ["export", "training-records"], ["demo"]):
        assert main([*command, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "--share URL" in text
        assert "Default:" in text
        if command[0] == "export":
            assert "$ARENA_SHARE when set, else the default share" in text
            assert "--cache SECONDS" in text
            assert "--ca-bundle PATH" in text
            assert "--proxy URL" in text


# -- --cache ------------------------------------------------------------------------------

def test_a_second_run_with_cache_spends_fewer_requests(
        env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeArena.seeded(items=6, seed=7, quota_limit=10_000)
    items = items_file(tmp_path, fake)
    share = f"sqlite:///{private(tmp_path, 'share')}"

    def run(out: str, *more: str) -> int:
        before = len([r for r in fake.requests if "/items" in r.path])
        assert main(["export", "ticket-refs", "--items", str(items), "--out",
                     str(tmp_path / out), "--share", share, *more]) == 0
        return len([r for r in fake.requests if "/items" in r.path]) - before

    with served(fake):
        point_at(env, fake)
        assert run("a.jsonl", "-q", "--cache", "3600") == 6  # one per item
        capsys.readouterr()
        assert run("b.csv", "--cache", "3600") == 0  # every answer from the share
        assert "6 answers from the cache" in capsys.readouterr().out
        assert run("c.jsonl", "-q") == 6  # without --cache: asked again
        assert run("d.jsonl", "-q", "--fresh", "--cache", "3600") == 0
    rows = canonical(truth("ticket-refs", items=6, seed=7))
    assert canonical(read_jsonl(tmp_path / "a.jsonl")) == rows
    assert canonical(read_jsonl(tmp_path / "c.jsonl")) == rows
    assert canonical(read_jsonl(tmp_path / "d.jsonl")) == rows
    header, body = read_csv(tmp_path / "b.csv")
    assert len(body) == len(rows)
    assert "item_guid" in header


def test_a_plan_then_the_run_lists_the_query_once(
        env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeArena.seeded(items=30, seed=8, quota_limit=10_000)
    share = f"sqlite:///{private(tmp_path, 'share')}"
    argv = ["export", "ticket-refs", "--number", "PN-*", "--out", str(tmp_path / "a.jsonl"),
            "-q", "--share", share]

    def listings() -> int:
        return len([r for r in fake.requests if r.path.endswith("/items")])

    with served(fake):
        point_at(env, fake)
        assert main([*argv, "--plan", "--cache", "600"]) == 0
        assert "answers kept 600 s in the share" in capsys.readouterr().out
        planned = listings()
        assert planned >= 1  # the listing (its answer carried the quota)
        assert main([*argv, "--cache", "600"]) == 0
        assert listings() == planned  # the run's listing came from the cache
    assert len(read_jsonl(tmp_path / "a.jsonl")) == len(truth("ticket-refs", items=30,
                                                                  seed=8))


def test_cache_without_a_share_warns_and_a_bad_ttl_is_exit_2(
        env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "ticket-refs", "--fake", "--fake-items", "2", "--out",
                 str(tmp_path / "a.jsonl"), "-q", "--cache", "60"]) == 0
    assert "--cache: this run has no share" in capsys.readouterr().err
    assert main(["export", "ticket-refs", "--fake", "--out", str(tmp_path / "b.jsonl"),
                 "--cache", "0"]) == 2
    assert "--cache" in capsys.readouterr().err
