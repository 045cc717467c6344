"""Clients sharing one session and one quota ledger, in one process, over real loopback HTTP
and a real share (SQLite file, redis-server); OAuth machine users; what a client without a
share says when other logins keep cancelling its session."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from arena_async import (
    ArenaClient,
    LoginError,
    QuotaExhaustedError,
    QuotaPolicy,
    RedisShare,
    Share,
    ShareUnavailableError,
    SQLiteShare,
)
from arena_async.testing import FakeArena, Fault
from tests.conftest import FakeClock
from tests.share.conftest import RedisServer, ShareFactory, free_port


def client(fake: FakeArena, share: Share | str | bool | None, **kw: Any) -> ArenaClient:
    kw.setdefault("password", fake.password)
    return ArenaClient(email=fake.email, workspace_id=fake.workspace_id, base_url=fake.url,
                       share=share, **kw)


async def fetch_all(arena: ArenaClient, guids: list[str]) -> list[Any]:
    return [o async for o in arena.bulk(arena.items.tickets.list, guids)]


async def test_sharers_log_in_once(make_share: ShareFactory) -> None:
    async with FakeArena.seeded(items=60, seed=2) as fake:
        clients = [client(fake, make_share(), max_concurrency=4) for _ in range(3)]
        for c in clients:
            await c.open()
        try:
            results = await asyncio.gather(*(fetch_all(c, fake.item_guids) for c in clients))
            assert all(o.ok for outcomes in results for o in outcomes)
            assert sum(len(r) for r in results) == 180
            assert fake.stats.logins == 1
            assert sum(c.stats.logins for c in clients) == 1
            assert fake.stats.unauthorized == 0
        finally:
            for c in clients:
                await c.close()
        assert fake.stats.logouts == 1


async def test_a_cancelled_session_is_replaced_once_for_every_sharer(
        make_share: ShareFactory) -> None:
    async with FakeArena.seeded(items=30, seed=3) as fake:
        clients = [client(fake, make_share(), max_concurrency=4) for _ in range(3)]
        for c in clients:
            await c.open()
        try:
            await asyncio.gather(*(fetch_all(c, fake.item_guids[:3]) for c in clients))
            assert fake.stats.logins == 1
            # The session dies under everyone's feet: one login replaces it for all.
            fake.faults.add(Fault("expire_session", path="/tickets$", times=1))
            results = await asyncio.gather(*(fetch_all(c, fake.item_guids) for c in clients))
            assert all(o.ok for outcomes in results for o in outcomes)
            assert fake.stats.logins == 2
        finally:
            for c in clients:
                await c.close()


async def test_only_the_last_sharer_logs_out(make_share: ShareFactory) -> None:
    async with FakeArena.seeded(items=5, seed=4) as fake:
        a, b = client(fake, make_share()), client(fake, make_share())
        async with a, b:
            await a.items.tickets.list(fake.item_guids[0])
            await b.items.tickets.list(fake.item_guids[1])
            await a.close()
            assert fake.stats.logouts == 0
            # b still works with the session a left behind.
            await b.items.tickets.list(fake.item_guids[2])
        assert fake.stats.logouts == 1
        assert fake.stats.logins == 1


async def test_a_sharer_that_adopted_the_session_knows_the_workspace_limit(
        make_share: ShareFactory) -> None:
    # The limit comes with login (workspaceRequestLimit); b never logs in, and learns it
    # from the ledger a wrote it to (a FastAPI worker's /healthz said "limit": null).
    async with FakeArena.seeded(items=12, seed=4, quota_limit=5000) as fake:
        a = client(fake, make_share(), max_concurrency=1)
        b = client(fake, make_share(), max_concurrency=1)
        async with a, b:
            await fetch_all(a, fake.item_guids)  # several ledger steps after the login
            await b.items.tickets.list(fake.item_guids[0])
            assert (fake.stats.logins, b.stats.logins) == (1, 0)
            assert a.quota is not None
            assert b.quota is not None
            assert (a.quota.limit, b.quota.limit) == (5000, 5000)
            assert b.quota.remaining <= 5000 - 12


async def test_the_reserve_holds_for_all_sharers_together(make_share: ShareFactory) -> None:
    async with FakeArena.seeded(items=120, seed=5, quota_limit=200) as fake:
        policy = QuotaPolicy(reserve=20)
        clients = [client(fake, make_share(), quota=policy, max_concurrency=6)
                   for _ in range(3)]
        for c in clients:
            await c.open()
        try:
            results = await asyncio.gather(*(fetch_all(c, fake.item_guids) for c in clients))
            used = 200 - fake.quota_remaining
            outcomes = [o for r in results for o in r]
            ok = sum(o.ok for o in outcomes)
            assert all(o.ok or isinstance(o.error, QuotaExhaustedError) for o in outcomes)
            assert fake.stats.quota_exhausted == 0
            assert used <= 180
            assert ok >= 175
        finally:
            for c in clients:
                await c.close()


async def test_refused_credentials_are_tried_once_for_every_sharer(
        make_share: ShareFactory) -> None:
    async with FakeArena.seeded(items=2, seed=6) as fake:
        shares = [make_share() for _ in range(3)]
        clients = [client(fake, share, password="wrong") for share in shares]
        steps = [0, 0, 0]
        for i, share in enumerate(shares):  # count each sharer's steps on the share
            def counted(key: str, step: Any, i: int = i, update: Any = share.update) -> Any:
                steps[i] += 1
                return update(key, step)
            share.update = counted  # type: ignore[method-assign]
        for c in clients:
            await c.open()
        try:
            for i, c in enumerate(clients):
                for attempt in range(2):
                    before = steps[i]
                    with pytest.raises(LoginError) as info:
                        await c.items.tickets.list(fake.item_guids[0])
                    assert info.value.status == 400
                    if attempt:  # the refusal is remembered: not even the share is asked
                        assert steps[i] == before
            assert fake.stats.failed_logins == 1
            assert fake.stats.requests == 1
        finally:
            for c in clients:
                await c.close()


async def test_an_unreachable_redis_share_sends_nothing_and_hides_its_password(
        caplog: pytest.LogCaptureFixture, fake_clock: FakeClock) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"redis://:s3cret-pw@127.0.0.1:{free_port()}/0"
    async with FakeArena.seeded(items=2, seed=7) as fake:
        # The retries' backoff on the injected sleep: no real wait.
        arena = client(fake, RedisShare(url, outage_wait=0.2), sleep=fake_clock.sleep)
        assert "s3cret-pw" not in repr(arena)
        async with arena:
            with pytest.raises(ShareUnavailableError) as info:
                await arena.items.tickets.list(fake.item_guids[0])
        assert fake.stats.requests == 0
    text = str(info.value) + repr(info.value) + caplog.text
    assert "s3cret-pw" not in text
    assert f"redis://127.0.0.1:{url.rsplit(':', 1)[1]}" in str(info.value)


async def test_an_unusable_sqlite_share_names_itself(tmp_path: Path,
                                                     fake_clock: FakeClock) -> None:
    path = tmp_path / "missing-folder" / "share.db"
    async with FakeArena.seeded(items=1, seed=8) as fake:
        async with client(fake, f"sqlite:///{path}", sleep=fake_clock.sleep) as arena:
            with pytest.raises(ShareUnavailableError) as info:
                await arena.items.tickets.list(fake.item_guids[0])
        assert "missing-folder" in str(info.value)
        assert fake.stats.requests == 0


async def test_the_sqlite_file_is_private_and_holds_no_password(tmp_path: Path) -> None:
    path = tmp_path / "share.db"
    async with FakeArena.seeded(items=1, seed=9) as fake, \
            client(fake, SQLiteShare(path)) as arena:
        await arena.items.tickets.list(fake.item_guids[0])
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        data = b"".join(p.read_bytes() for p in tmp_path.iterdir())
        assert fake.password.encode() not in data


def test_share_arguments_are_checked_before_anything_is_sent(tmp_path: Path) -> None:
    base = {"email": "e@x", "password": "p", "base_url": "http://127.0.0.1:1/v1"}
    for bad, words in [("postgres://db/x", "unknown scheme"), ("sqlite://rel.db", "sqlite:///"),
                       (42, "share must be")]:
        with pytest.raises(ValueError, match=words):
            ArenaClient(share=bad, **base)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not session_id"):
        ArenaClient(session_id="S", share=f"sqlite:///{tmp_path}/s.db",
                    base_url="http://127.0.0.1:1/v1")
    with pytest.raises(ValueError, match="unknown scheme") as info:
        ArenaClient(share="ftp://user:hunter2@h/x", **base)
    assert "hunter2" not in str(info.value)
    with pytest.raises(ValueError, match="member_ttl"):
        SQLiteShare(tmp_path / "s.db", member_ttl=1.0, sync_interval=1.0)
    assert SQLiteShare(tmp_path / "s.db").name == f"sqlite:///{tmp_path}/s.db"
    assert RedisShare("redis://:pw@h:1/2").name == "redis://h:1/2"
    with pytest.raises(ValueError, match="must be absolute"):
        ArenaClient(share="sqlite:///rel/share.db", **base)


async def test_calls_resume_when_redis_comes_back(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        async with FakeArena.seeded(items=40, seed=10) as fake, \
                client(fake, RedisShare(server.url, timeout=0.5, outage_wait=0.05),
                       max_concurrency=2) as arena:
            guids = fake.item_guids
            await arena.items.tickets.list(guids[0])
            server.stop()
            failures = 0
            for guid in guids[1:30]:  # granted admissions run out, then the share is needed
                try:
                    await arena.items.tickets.list(guid)
                except ShareUnavailableError:
                    failures += 1
            assert failures > 0
            server.start()  # same port, empty: one probe of the quota, the session kept
            for guid in guids[30:]:
                await arena.items.tickets.list(guid)
            assert fake.stats.logins == 1
    finally:
        server.stop()


# -- OAuth machine users ----------------------------------------------------------------
def oauth_client(fake: FakeArena, **kw: Any) -> ArenaClient:
    kw.setdefault("client_secret", fake.client_secret)
    return ArenaClient(client_id=fake.client_id, token_url=fake.token_url, base_url=fake.url,
                       **kw)


async def test_oauth_token_fetched_once_and_renewed_before_expiry() -> None:
    clock = FakeClock()
    async with FakeArena.seeded(items=20, seed=11, token_lifetime=600.0, clock=clock) as fake, \
            oauth_client(fake, clock=clock, sleep=clock.sleep) as arena:
        await asyncio.gather(*(arena.items.tickets.list(g) for g in fake.item_guids))
        assert fake.stats.token_requests == 1
        assert fake.stats.bearer_requests == 20
        assert fake.stats.logins == 0
        clock.now += 545  # inside the last tenth (60 s) of the lifetime: renewed, once
        await asyncio.gather(*(arena.items.tickets.list(g) for g in fake.item_guids))
        assert fake.stats.token_requests == 2
        assert fake.stats.unauthorized == 0
        clock.now += 10  # not due again: no token request per call
        await asyncio.gather(*(arena.items.tickets.list(g) for g in fake.item_guids))
        assert fake.stats.token_requests == 2


async def test_oauth_401_fetches_one_new_token_for_everyone() -> None:
    async with FakeArena.seeded(items=20, seed=12) as fake, oauth_client(fake) as arena:
        await arena.items.tickets.list(fake.item_guids[0])
        fake.expire_tokens()
        results = await asyncio.gather(*(arena.items.tickets.list(g) for g in fake.item_guids))
        assert len(results) == 20
        assert fake.stats.token_requests == 2


async def test_oauth_bad_secret_is_one_clear_login_error(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeArena.seeded(items=3, seed=13) as fake, \
            oauth_client(fake, client_secret="wrong-secret-42") as arena:
        outcomes = await asyncio.gather(
            *(arena.items.tickets.list(g) for g in fake.item_guids), return_exceptions=True)
        assert all(isinstance(o, LoginError) for o in outcomes)
        assert fake.stats.token_requests == 1
        error = outcomes[0]
        assert "invalid_client" in str(error)
        text = " ".join(str(o) for o in outcomes) + repr(arena) + caplog.text
        assert "wrong-secret-42" not in text
        assert fake.client_secret not in text


async def test_oauth_secrets_stay_out_of_logs_and_reprs(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeArena.seeded(items=2, seed=14) as fake, oauth_client(fake) as arena:
        await arena.items.tickets.list(fake.item_guids[0])
        tokens = [r.headers.get("Authorization", "") for r in fake.requests]
        bearer = next(t for t in tokens if t.startswith("Bearer "))[7:]
        text = repr(arena) + repr(arena._auth) + caplog.text
        assert bearer not in text
        assert fake.client_secret not in text


async def test_oauth_tokens_are_shared(make_share: ShareFactory) -> None:
    async with FakeArena.seeded(items=10, seed=15) as fake:
        a = oauth_client(fake, share=make_share())
        b = oauth_client(fake, share=make_share())
        async with a, b:
            await asyncio.gather(fetch_all(a, fake.item_guids), fetch_all(b, fake.item_guids))
        assert fake.stats.token_requests == 1


def test_oauth_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="all three"):
        ArenaClient(client_id="c", client_secret="s")
    with pytest.raises(ValueError, match="not both"):
        ArenaClient(client_id="c", client_secret="s", token_url="https://t/x", email="e",
                    password="p")
    with pytest.raises(ValueError, match=r"token_url .* plain http"):
        ArenaClient(client_id="c", client_secret="s", token_url="http://example.com/t")


# -- without a share ----------------------------------------------------------------------
async def test_without_a_share_cancelled_sessions_log_one_warning_naming_share(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    async with FakeArena.seeded(items=4, seed=16) as fake:
        a, b = client(fake, False), client(fake, False)
        async with a, b:
            for _ in range(4):  # each login cancels the other's session
                await a.items.tickets.list(fake.item_guids[0])
                await b.items.tickets.list(fake.item_guids[1])
        warnings = [r for r in caplog.records if "share=" in r.getMessage()]
        assert len(warnings) == 2  # one per client, once
        assert all(r.levelno == logging.WARNING for r in warnings)
        assert "another login as the same user" in warnings[0].getMessage()


async def test_a_base_url_without_v1_is_named_in_the_login_error() -> None:
    async with FakeArena.seeded(items=1, seed=17) as fake:
        root = fake.url.removesuffix("/v1")
        async with ArenaClient(email=fake.email, password=fake.password,
                               base_url=root) as arena:
            with pytest.raises(LoginError) as info:
                await arena.items.tickets.list(fake.item_guids[0])
        message = str(info.value)
        assert f"{root}/login" in message
        assert "/v1" in message
