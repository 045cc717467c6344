"""The share safe by default: the default share, URLs checked at construction, the files
checked at rest (owner, mode, symlinks), what the store holds sealed, and a deleted file.

Real files, a real redis-server (tests/share/conftest.py) and real loopback HTTP. The suite
runs as root in CI and here: "another user" is uid 65534 (nobody), set with ``os.chown``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from arena_async import (
    ArenaClient,
    QuotaPolicy,
    RedisShare,
    Share,
    ShareMisconfiguredError,
    SQLiteShare,
)
from arena_async._share._base import open_share, redact_url
from arena_async._share._files import state_folder
from arena_async._share._seal import PREFIX, Seal
from arena_async.testing import FakeArena
from tests.conftest import FakeClock

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX owners and modes")

OTHER_UID = 65534


def client(fake: FakeArena, share: Share | str | bool | None, **kw: Any) -> ArenaClient:
    kw.setdefault("password", fake.password)
    return ArenaClient(email=fake.email, workspace_id=fake.workspace_id, base_url=fake.url,
                       share=share, **kw)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def session_ids(fake: FakeArena) -> set[str]:
    return {r.headers["arena_session_id"] for r in fake.requests
            if "arena_session_id" in r.headers}


@pytest.fixture
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh XDG_STATE_HOME (not yet created), ARENA_SHARE unset."""
    home = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    monkeypatch.delenv("ARENA_SHARE", raising=False)
    return home


# -- the default share ------------------------------------------------------------------
async def test_the_default_share_is_a_private_file_in_the_state_folder(
        state_home: Path) -> None:
    folder = state_home / "arena_async"
    async with FakeArena.seeded(items=4, seed=1) as fake:
        a, b = client(fake, None), client(fake, None)
        for arena in (a, b):
            assert arena.share_link is not None
            assert isinstance(arena.share_link.share, SQLiteShare)
            assert arena.share_link.share.path == str(folder / "share.db")
        assert mode(folder) == 0o700  # made when the client was made
        async with a, b:
            await a.items.tickets.list(fake.item_guids[0])
            await b.items.tickets.list(fake.item_guids[1])
            for name in ("share.db", "share.db-wal", "share.db-shm"):
                assert mode(folder / name) == 0o600, name
                assert os.lstat(folder / name).st_uid == os.geteuid()
        assert fake.stats.logins == 1  # the two processes' clients shared one session


def test_the_state_folder_of_each_platform() -> None:
    assert state_folder({"XDG_STATE_HOME": "/s", "HOME": "/h"}, "linux") == "/s/arena_async"
    assert state_folder({"HOME": "/h"}, "linux") == "/h/.local/state/arena_async"
    # A relative XDG_STATE_HOME is invalid (the XDG spec): ignored.
    assert state_folder({"XDG_STATE_HOME": "rel", "HOME": "/h"}, "linux") \
        == "/h/.local/state/arena_async"
    assert state_folder({"HOME": "/h"}, "darwin") \
        == "/h/Library/Application Support/arena_async"
    assert state_folder({"LOCALAPPDATA": "C:\\Users\\me\\AppData\\Local"}, "win32") \
        == os.path.join("C:\\Users\\me\\AppData\\Local", "arena_async")


def test_arena_share_names_the_default_share_and_none_opts_out(
        state_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"email": "e@x", "password": "p", "base_url": "http://127.0.0.1:1/v1"}
    for off in ("none", "NONE", " None "):
        monkeypatch.setenv("ARENA_SHARE", off)
        assert ArenaClient(**base).share_link is None  # type: ignore[arg-type]
    monkeypatch.setenv("ARENA_SHARE", f"sqlite:///{tmp_path}/env.db")
    link = ArenaClient(**base).share_link  # type: ignore[arg-type]
    assert link is not None
    assert link.share.name == f"sqlite:///{tmp_path}/env.db"
    monkeypatch.setenv("ARENA_SHARE", "redis://:hunter2@cache:port/0")
    with pytest.raises(ValueError, match="ARENA_SHARE") as info:
        ArenaClient(**base)  # type: ignore[arg-type]
    assert "hunter2" not in str(info.value)
    monkeypatch.delenv("ARENA_SHARE")
    # share=False, and a given session_id, run alone (no folder made for them).
    assert ArenaClient(share=False, **base).share_link is None  # type: ignore[arg-type]
    assert ArenaClient(session_id="S", base_url=base["base_url"]).share_link is None
    assert not state_home.exists()
    with pytest.raises(ValueError, match="not session_id"):
        ArenaClient(session_id="S", share=f"sqlite:///{tmp_path}/s.db",
                    base_url=base["base_url"])
    with pytest.raises(ValueError, match="share must be None"):
        ArenaClient(share=True, **base)  # type: ignore[arg-type]


async def test_a_client_on_a_fake_clock_runs_without_the_default_share(
        state_home: Path, tmp_path: Path) -> None:
    # The share's waits run on the share's clocks: a fake clock cannot end a wait for the
    # reset there (it spun, the fake clock racing ahead, until the real reset). Alone,
    # the client waits the hour on its own clock, at once.
    clock = FakeClock(start=time.time())
    async with FakeArena.seeded(items=3, seed=1, clock=clock) as fake:
        fake.set_quota(remaining=1, resets_in=3600)
        async with client(fake, None, clock=clock, sleep=clock.sleep,
                          quota=QuotaPolicy(on_exhausted="wait", max_wait=7200)) as arena:
            assert arena.share_link is None
            async with asyncio.timeout(10):
                for guid in fake.item_guids[:2]:
                    await arena.items.tickets.list(guid)
            assert 3600 <= sum(clock.sleeps) < 3700
        assert not state_home.exists()  # the default share was not even made
        # Only the default share is left out: one given explicitly is joined.
        shared = client(fake, f"sqlite:///{tmp_path}/s.db", sleep=clock.sleep)
        assert shared.share_link is not None
        assert client(fake, None, sleep=clock.sleep).share_link is None
        assert client(fake, None).share_link is not None


def test_a_folder_that_cannot_be_made_is_one_warning_and_the_client_runs_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker / "state"))
    monkeypatch.delenv("ARENA_SHARE", raising=False)
    caplog.set_level(logging.WARNING)
    arena = ArenaClient(email="e@x", password="p", base_url="http://127.0.0.1:1/v1")
    assert arena.share_link is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "runs alone" in warnings[0].getMessage()
    assert str(blocker) in warnings[0].getMessage()


# -- URLs checked when the client is made -----------------------------------------------
@pytest.mark.parametrize(("url", "words"), [
    ("sqlite:///share.db", "must be absolute"),
    ("sqlite:///rel/dir/share.db", "must be absolute"),
    ("sqlite://share.db", "sqlite:////absolute"),
    ("redis://:hunter2@cache:port/0", "port"),
    ("redis://:hunter2@cache:99999/0", "port"),
    ("redis://:hunter2@:6379/0", "missing host"),
    ("redis://:hunter2@cache:6379/zero", "database must be a number"),
    ("redis://:hunter2@cache:6379/0?db=x", "database must be a number"),
    ("redis:/:hunter2@cache:6379/0", "missing '//'"),
    ("rediss://user:hunter2@[::1/0", "malformed"),
    ("unix://:hunter2@", "socket's absolute path"),
    ("redis://:hunter2@cache 1:6379/0", "whitespace"),
    ("redis://:hunter2@cache:6379/0\r\nX", "control characters"),
    ("postgres://u:hunter2@db/x", "unknown scheme"),
    ("share.db", "no scheme"),
    ("u:hunter2@host", "unknown scheme"),
])
def test_malformed_share_urls_are_value_errors_without_the_password(
        url: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as info:
        ArenaClient(email="e@x", password="p", base_url="http://127.0.0.1:1/v1", share=url)
    assert "hunter2" not in str(info.value)
    if "://" in url and not url.startswith("sqlite"):  # the URL is named, its secret out
        assert repr(redact_url(url)) in str(info.value)
        assert "'...'" not in str(info.value)
    if url.startswith("redis"):
        with pytest.raises(ValueError, match=words):
            RedisShare(url)


def test_good_urls_make_shares_without_io(tmp_path: Path) -> None:
    assert isinstance(open_share(f"sqlite:///{tmp_path}/x/y.db"), SQLiteShare)  # no folder
    for url in ("redis://cache:6379/0", "rediss://:pw@cache/2", "redis://[::1]:6379",
                "unix:///run/redis.sock?db=3", "REDIS://cache"):
        assert isinstance(open_share(url), RedisShare), url
    with pytest.raises(ValueError, match="must be absolute"):
        SQLiteShare("share.db")


def test_redact_url_hides_the_password_and_keeps_the_rest() -> None:
    assert redact_url("redis://:pw@h:1/2") == "redis://h:1/2"
    assert redact_url("redis://user:hunter2@cache:port/0") == "redis://cache:port/0"
    assert redact_url("rediss://u:hunter2@[::1/0") == "rediss://[::1/0"
    assert redact_url("redis://cache:6379/0?password=hunter2") == "redis://cache:6379/0?…"
    assert redact_url("redis:u:hunter2@cache") == "redis:cache"
    assert redact_url("redis:/:hunter2@cache:6379/0") == "redis:/cache:6379/0"
    assert redact_url("sqlite:////home/a@b/x.db") == "sqlite:////home/a@b/x.db"
    assert redact_url("sqlite:////var/lib/a.db") == "sqlite:////var/lib/a.db"


# -- the files at rest ------------------------------------------------------------------
def _prepare(kind: str, folder: Path) -> tuple[Path, str]:
    """A share folder holding what an attacker (or a careless umask) left; the words of the
    refusal."""
    db = folder / "share.db"
    if kind == "other-owner":
        db.write_bytes(b"planted")
        db.chmod(0o600)
        os.chown(db, OTHER_UID, OTHER_UID)
        return db, "belongs to another user"
    if kind == "0666":
        db.write_bytes(b"planted")
        db.chmod(0o666)
        return db, "chmod 600"
    if kind == "0644":
        db.write_bytes(b"planted")
        db.chmod(0o644)
        return db, "chmod 600"
    if kind == "symlink":
        target = folder.parent / "elsewhere.db"
        target.write_bytes(b"planted")
        db.symlink_to(target)
        return target, "symlink"
    if kind == "wal-symlink":
        target = folder.parent / "elsewhere-wal"
        target.write_bytes(b"planted")
        (folder / "share.db-wal").symlink_to(target)
        return target, "symlink"
    if kind == "shm-other-owner":
        shm = folder / "share.db-shm"
        shm.write_bytes(b"planted")
        shm.chmod(0o600)
        os.chown(shm, OTHER_UID, OTHER_UID)
        return shm, "belongs to another user"
    if kind == "folder-0755":
        folder.chmod(0o755)
        return folder, "chmod 700"
    if kind == "folder-other-owner":
        os.chown(folder, OTHER_UID, OTHER_UID)
        return folder, "belongs to another user"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["other-owner", "0666", "0644", "symlink", "wal-symlink",
                                  "shm-other-owner", "folder-0755", "folder-other-owner"])
async def test_an_unsafe_share_file_or_folder_is_refused_with_nothing_written_or_sent(
        kind: str, tmp_path: Path) -> None:
    if os.geteuid() != 0 and "other" in kind:
        pytest.skip("chown to another user needs root")
    folder = tmp_path / "share"
    folder.mkdir(mode=0o700)
    planted, words = _prepare(kind, folder)
    before = sorted(os.listdir(folder))
    content = planted.read_bytes() if planted.is_file() else None
    async with FakeArena.seeded(items=2, seed=2) as fake:
        async with client(fake, f"sqlite:///{folder / 'share.db'}") as arena:
            for _ in range(2):  # refused at each call
                with pytest.raises(ShareMisconfiguredError, match=words) as info:
                    await arena.items.tickets.list(fake.item_guids[0])
                assert fake.password not in str(info.value)
        assert fake.stats.requests == 0
    assert sorted(os.listdir(folder)) == before
    if content is not None:
        assert planted.read_bytes() == content


@pytest.mark.parametrize(("what", "chmod", "words"), [
    ("folder", 0o755, "its group and others can read and traverse it (mode 0755)"),
    ("folder", 0o750, "its group can read and traverse it (mode 0750)"),
    ("folder", 0o711, "its group and others can traverse it (mode 0711)"),
    ("folder", 0o731, "its group can write and traverse it, others can traverse it "
                      "(mode 0731)"),
    ("folder", 0o777, "its group and others can read, write and traverse it (mode 0777)"),
    ("file", 0o644, "its group and others can read it (mode 0644)"),
    ("file", 0o620, "its group can write it (mode 0620)"),
    ("file", 0o606, "others can read and write it (mode 0606)"),
])
async def test_a_refused_mode_says_exactly_who_can_do_what(
        tmp_path: Path, what: str, chmod: int, words: str) -> None:
    folder = tmp_path / "share"
    folder.mkdir(mode=0o700)
    db = folder / "share.db"
    if what == "file":
        db.write_bytes(b"")
    target = folder if what == "folder" else db
    target.chmod(chmod)
    async with FakeArena.seeded(items=1, seed=2) as fake, \
            client(fake, f"sqlite:///{db}") as arena:
        with pytest.raises(ShareMisconfiguredError) as info:
            await arena.items.tickets.list(fake.item_guids[0])
    private = "700" if what == "folder" else "600"
    assert f"the {what} {target} is open to other users: {words}; run: chmod {private} " \
        f"{target}" in str(info.value), str(info.value)
    assert mode(target) == chmod  # refused, not changed


async def test_a_missing_folder_is_refused_with_a_hint(tmp_path: Path) -> None:
    async with FakeArena.seeded(items=2, seed=2) as fake:
        async with client(fake, f"sqlite:///{tmp_path / 'nope' / 'share.db'}") as arena:
            with pytest.raises(ShareMisconfiguredError, match="mkdir -m 700"):
                await arena.items.tickets.list(fake.item_guids[0])
        assert fake.stats.requests == 0
    assert not (tmp_path / "nope").exists()


async def test_a_new_file_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    folder = tmp_path / "share"
    folder.mkdir(mode=0o700)
    old = os.umask(0o277)  # would make it 0400: read-only to SQLite itself
    try:
        async with FakeArena.seeded(items=2, seed=2) as fake, \
                client(fake, f"sqlite:///{folder / 'share.db'}") as arena:
            await arena.items.tickets.list(fake.item_guids[0])
            for name in ("share.db", "share.db-wal", "share.db-shm"):
                assert mode(folder / name) == 0o600, name
    finally:
        os.umask(old)


# -- sealed -----------------------------------------------------------------------------
def raw_values(share_kind: str, share_url: str) -> list[str]:
    """Everything the store holds, read around the library."""
    if share_kind == "sqlite":
        conn = sqlite3.connect(share_url[len("sqlite:///"):])
        try:
            return [row[0] for row in conn.execute("SELECT value FROM arena_share")]
        finally:
            conn.close()
    import redis

    r = redis.Redis.from_url(share_url)
    try:
        return [r.get(k).decode() for k in r.keys("*")]  # type: ignore[union-attr]
    finally:
        r.close()


async def test_the_store_holds_the_session_sealed_and_sharers_still_share_it(
        share_kind: str, share_url: str) -> None:
    async with FakeArena.seeded(items=6, seed=3) as fake:
        a, b = client(fake, share_url), client(fake, share_url)
        async with a, b:
            await a.items.tickets.list(fake.item_guids[0])
            await b.items.tickets.list(fake.item_guids[1])
            ids = session_ids(fake)
            assert len(ids) == 1
            assert fake.stats.logins == 1
            stored = raw_values(share_kind, share_url)
            assert stored
            text = "\n".join(stored)
            (session_id,) = ids
            assert session_id not in text
            assert fake.password not in text
            assert PREFIX in text  # the session is there, sealed


async def test_an_oauth_token_is_sealed_too(share_kind: str, share_url: str) -> None:
    async with FakeArena.seeded(items=6, seed=3) as fake:
        fake.add_oauth_client("etl", "s3cret-value")
        oauth = {"client_id": "etl", "client_secret": "s3cret-value",
                 "token_url": fake.token_url}
        a = ArenaClient(base_url=fake.url, share=share_url,
                        **oauth)
        b = ArenaClient(base_url=fake.url, share=share_url,
                        **oauth)
        async with a, b:
            await a.items.tickets.list(fake.item_guids[0])
            await b.items.tickets.list(fake.item_guids[1])
            tokens = {r.headers["Authorization"].split()[-1] for r in fake.requests
                      if r.headers.get("Authorization", "").startswith("Bearer ")}
            assert len(tokens) == 1
            assert fake.stats.tokens_issued == 1
            text = "\n".join(raw_values(share_kind, share_url))
            assert tokens.pop() not in text
            assert "s3cret-value" not in text


async def test_a_sharer_with_other_credentials_cannot_read_the_session(
        make_share: Any, caplog: pytest.LogCaptureFixture) -> None:
    from arena_async import QuotaPolicy
    from arena_async._share import ShareLink

    def link(share: Share, secret: str) -> ShareLink:
        return ShareLink(share, base_url="https://arena.test/v1", identity="me@x",
                         workspace_id=1, policy=QuotaPolicy(), max_concurrency=2,
                         sleep=_no_sleep, secret=secret)

    caplog.set_level(logging.DEBUG)
    right, other = link(make_share(), "right-password"), link(make_share(), "other-password")
    logins: list[str] = []

    async def login_as(token: str) -> tuple[str, float | None]:
        logins.append(token)
        return token, None

    try:
        for one in (right, other):
            await one.ensure_open()
        got = await right.session.obtain(None, lambda: login_as("SESSION-RIGHT"))
        assert got.token == "SESSION-RIGHT"
        # The other cannot open it: it logs in and publishes its own, a newer version.
        theirs = await other.session.obtain(None, lambda: login_as("SESSION-OTHER"))
        assert theirs.token == "SESSION-OTHER"
        assert theirs.version > got.version
        assert logins == ["SESSION-RIGHT", "SESSION-OTHER"]
        # ... which the right one, in turn, does not take for its own.
        again = await right.session.obtain(got.version, lambda: login_as("SESSION-RIGHT-2"))
        assert again.token == "SESSION-RIGHT-2"
    finally:
        for one in (right, other):
            await one.close(_no_logout)
    lines = [r.getMessage() for r in caplog.records]
    assert any("sealed with other credentials" in line for line in lines)
    for secret in ("SESSION-", "right-password", "other-password"):
        assert not any(secret in line for line in lines if "sealed" in line)


async def test_a_refusal_holds_back_the_same_credentials_not_other_ones(
        make_share: Any) -> None:
    from arena_async import LoginError, QuotaPolicy
    from arena_async._share import ShareLink
    from arena_async.errors import ErrorDetail

    def link(secret: str) -> ShareLink:
        return ShareLink(make_share(), base_url="https://arena.test/v1", identity="me@x",
                         workspace_id=1, policy=QuotaPolicy(), max_concurrency=2,
                         sleep=_no_sleep, secret=secret)

    tries: list[str] = []

    async def refused() -> tuple[str, float | None]:
        tries.append("wrong")
        raise LoginError(400, [ErrorDetail(4001, "not valid")], method="POST", url="/login")

    async def accepted() -> tuple[str, float | None]:
        tries.append("right")
        return "SESSION", None

    wrong, wrong_too, right = link("wrong-password"), link("wrong-password"), link("right")
    try:
        for one in (wrong, wrong_too, right):
            await one.ensure_open()
        with pytest.raises(LoginError):
            await wrong.session.obtain(None, refused)
        # The same credentials are not tried again (Arena locks accounts), with the message.
        with pytest.raises(LoginError, match="not valid") as info:
            await wrong_too.session.obtain(None, refused)
        assert "refused" in " ".join(info.value.__notes__)
        # Other credentials get their try.
        got = await right.session.obtain(None, accepted)
        assert got.token == "SESSION"
        assert tries == ["wrong", "right"]
    finally:
        for one in (wrong, wrong_too, right):
            await one.close(_no_logout)


def read(doc: Any, now: float) -> tuple[Any, Any]:
    return doc, doc


async def _no_sleep(seconds: float) -> None:
    return None


async def _no_logout(token: str) -> None:
    return None


def test_the_seal_opens_only_its_own_values() -> None:
    seal = Seal("pw", context="https://a/v1\nme@x\n1")
    value = seal.seal("S3SSION")
    assert "S3SSION" not in value
    assert value != seal.seal("S3SSION")
    assert seal.unseal(value) == "S3SSION"
    assert Seal("pw", context="https://a/v1\nme@x\n1").unseal(value) == "S3SSION"
    assert Seal("other", context="https://a/v1\nme@x\n1").unseal(value) is None
    assert Seal("pw", context="https://a/v1\nyou@x\n1").unseal(value) is None
    raw = bytearray(base64.urlsafe_b64decode(value[len(PREFIX):]))
    for at in (0, 12, len(raw) - 1):  # the nonce, the ciphertext, the tag
        altered = bytearray(raw)
        altered[at] ^= 0x01
        assert seal.unseal(PREFIX + base64.urlsafe_b64encode(altered).decode()) is None
    for junk in ("", "S3SSION", PREFIX, PREFIX + "!!!", PREFIX + "AAAA"):
        assert seal.unseal(junk) is None
    assert "pw" not in repr(seal)


# -- a deleted or replaced file -----------------------------------------------------------
async def test_a_replaced_file_is_noticed_and_checked_again(tmp_path: Path,
                                                             fake_clock: Any) -> None:
    folder = tmp_path / "share"
    folder.mkdir(mode=0o700)
    path = folder / "share.db"
    share = SQLiteShare(path, clock=fake_clock)
    async with FakeArena.seeded(items=4, seed=4) as fake, client(fake, share) as arena:
        await arena.items.tickets.list(fake.item_guids[0])
        await share.update("probe", lambda doc, now: ({"in": "old file"}, None))
        for name in ("share.db", "share.db-wal", "share.db-shm"):
            (folder / name).unlink()
        fake_clock.now += 0.5  # not yet looked at again
        assert await share.update("probe", read) == {"in": "old file"}
        fake_clock.now += 1.0
        assert await share.update("probe", read) is None  # a new, empty file
        assert path.exists()
        assert mode(path) == 0o600
        await arena.items.tickets.list(fake.item_guids[1])
        # Replaced by a file another user can write: refused at the next check.
        path.unlink()
        path.write_bytes(b"")
        path.chmod(0o666)
        fake_clock.now += 1.5
        with pytest.raises(ShareMisconfiguredError, match="chmod 600"):
            await share.update("probe", lambda doc, now: (doc, None))
        with pytest.raises(ShareMisconfiguredError):  # and at each use after
            await share.update("probe", lambda doc, now: (doc, None))
        assert path.read_bytes() == b""
        path.chmod(0o600)  # fixed: used again
        await share.update("probe", lambda doc, now: (doc, None))



async def test_a_sharer_whose_session_is_refused_looks_at_the_file_now_and_adopts(
        tmp_path: Path, fake_clock: Any) -> None:
    # The share file is deleted; before the early sharer's once-a-second look at its path, a
    # late joiner makes a new file and logs in (Arena cancels the early session). The early
    # sharer's 401 makes it look at the path at once, and the late session there (version 1,
    # as the early one was in the old file) is adopted: no login to cancel it in turn.
    folder = tmp_path / "share"
    folder.mkdir(mode=0o700)
    path = folder / "share.db"
    async with FakeArena.seeded(items=4, seed=5) as fake:
        guids = fake.item_guids
        async with client(fake, SQLiteShare(path, clock=fake_clock)) as early:
            await early.items.tickets.list(guids[0])
            for name in ("share.db", "share.db-wal", "share.db-shm"):
                (folder / name).unlink(missing_ok=True)
            async with client(fake, SQLiteShare(path, clock=fake_clock)) as late:
                await late.items.tickets.list(guids[1])
                assert fake.stats.logins == 2
                await early.items.tickets.list(guids[2])  # a 401, then the late session
                assert fake.stats.logins == 2
                assert fake.stats.unauthorized == 1
                await late.items.tickets.list(guids[3])  # still valid: not cancelled
                assert fake.stats.logins == 2
                assert fake.stats.unauthorized == 1
        assert len(session_ids(fake)) == 2


# -- what never touches the user's default share -----------------------------------------
def test_the_demo_and_the_fake_server_never_touch_the_default_share(
        state_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess
    import sys

    from arena_async.__main__ import main

    assert main(["demo", "--items", "8", "--tickets", "0"]) == 0
    capsys.readouterr()
    assert not state_home.exists()
    with subprocess.Popen([sys.executable, "-m", "arena_async.testing", "arena", "--port",
                           "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          text=True) as fake:
        try:
            assert fake.stdout is not None
            assert fake.stdout.readline().startswith("READY ")
        finally:
            fake.terminate()
            fake.wait(30)
    assert not state_home.exists()


async def test_the_plugin_fixture_points_arena_share_into_a_private_folder(
        fake_arena: FakeArena, arena_async_share_folder: Path) -> None:
    assert os.environ["ARENA_SHARE"] == f"sqlite:///{arena_async_share_folder / 'share.db'}"
    assert mode(arena_async_share_folder) == 0o700
    async with client(fake_arena, None) as arena:
        await arena.items.tickets.list(fake_arena.item_guids[0])
    assert mode(arena_async_share_folder / "share.db") == 0o600
