"""The session-auth skeleton both servers' auth share, without sockets: single-flight,
generations, the fatal latch, renewal when due."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from arena_async import AuthenticationError, LoginError
from arena_async._auth import SessionAuth
from arena_async.errors import APIError


class Counting(SessionAuth):
    """A credential that is a counter: each obtain, renew or replace makes a new one."""

    def __init__(self, *, refuse: APIError | None = None) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.due = False
        self.refuse = refuse
        self.gate = asyncio.Event()
        self.gate.set()

    def _due(self, pool: Any) -> bool:
        return self.due

    async def _new(self, what: str) -> None:
        self.calls.append(what)
        await self.gate.wait()
        if self.refuse is not None:
            raise self._latch(self.refuse)
        self.due = False
        self._hold({"token": f"T{len(self.calls)}"})

    async def _obtain(self, pool: Any) -> None:
        await self._new("obtain")

    async def _renew(self, pool: Any) -> None:
        await self._new("renew")

    async def _replace(self, pool: Any, error: APIError) -> None:
        await self._new("replace")


POOL: Any = object()


async def test_concurrent_first_requests_share_one_obtain() -> None:
    auth = Counting()
    auth.gate.clear()
    assert auth.ready(POOL) is None  # nothing held yet
    waiters = [asyncio.ensure_future(auth.headers(POOL)) for _ in range(10)]
    await asyncio.sleep(0)
    assert auth.ready(POOL) is None  # under way
    auth.gate.set()
    results = await asyncio.gather(*waiters)
    assert auth.calls == ["obtain"]
    assert {h["token"] for h, _ in results} == {"T1"}
    assert auth.ready(POOL) == ({"token": "T1"}, 1)


async def test_a_401_replaces_only_the_credential_it_was_seen_on() -> None:
    auth = Counting()
    _, generation = await auth.headers(POOL)
    error = AuthenticationError(401)
    await asyncio.gather(*(auth.refresh(POOL, generation, error) for _ in range(5)))
    assert auth.calls == ["obtain", "replace"]
    await auth.refresh(POOL, generation, error)  # a late 401 of the old credential
    assert auth.calls == ["obtain", "replace"]
    headers, new_generation = await auth.current()
    assert (headers["token"], new_generation) == ("T2", generation + 1)


async def test_a_due_credential_is_renewed_once_and_not_sent_meanwhile() -> None:
    auth = Counting()
    await auth.headers(POOL)
    auth.due = True
    assert auth.ready(POOL) is None
    await asyncio.gather(*(auth.headers(POOL) for _ in range(5)))
    assert auth.calls == ["obtain", "renew"]
    assert auth.ready(POOL) == ({"token": "T2"}, 2)


async def test_refused_credentials_are_latched() -> None:
    refused = LoginError(400, method="POST", url="/login")
    auth = Counting(refuse=refused)
    errors = await asyncio.gather(*(auth.headers(POOL) for _ in range(5)),
                                  return_exceptions=True)
    assert auth.calls == ["obtain"]  # never tried again
    assert all(isinstance(e, LoginError) for e in errors)
    assert len({id(e) for e in errors}) == 5  # a fresh copy each time
    assert auth.ready(POOL) is None
    with pytest.raises(LoginError):
        await auth.refresh(POOL, 0, AuthenticationError(401))
    assert auth.calls == ["obtain"]


async def test_current_waits_for_a_replacement_under_way() -> None:
    auth = Counting()
    _, generation = await auth.headers(POOL)
    auth.gate.clear()
    replacing = asyncio.ensure_future(auth.refresh(POOL, generation, AuthenticationError(401)))
    await asyncio.sleep(0)
    reading = asyncio.ensure_future(auth.current())
    await asyncio.sleep(0)
    assert not reading.done()
    auth.gate.set()
    await replacing
    assert (await reading)[0]["token"] == "T2"


@pytest.mark.parametrize("status", [400, 401, 403])
async def test_a_login_refusing_the_credentials_is_latched(status: int) -> None:
    auth = Counting()
    error = LoginError(status, method="POST", url="/login")
    raised = auth._failed_login(error)
    assert isinstance(raised, LoginError)
    assert raised is not error  # a fresh copy
    with pytest.raises(LoginError):
        await auth.headers(POOL)
    assert auth.calls == []  # never tried again


@pytest.mark.parametrize("status", [404, 429, 500, 503])
async def test_any_other_failed_login_is_raised_as_is_and_tried_again(status: int) -> None:
    auth = Counting()
    error = LoginError(status, method="POST", url="/login")
    assert auth._failed_login(error) is error
    await auth.headers(POOL)
    assert auth.calls == ["obtain"]
