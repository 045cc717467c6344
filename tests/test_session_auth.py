"""`arena_async._auth.SessionAuth` at the edges tests/test_auth_skeleton.py leaves: the
default hooks (never due, renew by obtaining again, no replacement), dropping the
credential, and a latch set while a refused credential is still held. Without sockets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from arena_async import AuthenticationError, LoginError
from arena_async._auth import SessionAuth
from arena_async.errors import APIError

POOL: Any = object()


class Minimal(SessionAuth):
    """Only ``_obtain``: every other hook is the skeleton's own."""

    def __init__(self) -> None:
        super().__init__()
        self.obtained = 0

    async def _obtain(self, pool: Any) -> None:
        self.obtained += 1
        self._hold({"token": f"T{self.obtained}"})


class Renewable(Minimal):
    """Due on demand; renewed by the skeleton's default ``_renew``."""

    def __init__(self) -> None:
        super().__init__()
        self.due = False

    def _due(self, pool: Any) -> bool:
        return self.due

    async def _obtain(self, pool: Any) -> None:
        self.due = False
        await super()._obtain(pool)


class Refusing(Minimal):
    """Replaces a refused credential by having it refused again: the latch."""

    def __init__(self, refusal: APIError) -> None:
        super().__init__()
        self.refusal = refusal
        self.replaced = 0

    async def _replace(self, pool: Any, error: APIError) -> None:
        self.replaced += 1
        raise self._latch(self.refusal)


async def test_by_default_a_held_credential_is_never_due() -> None:
    auth = Minimal()
    assert auth.ready(POOL) is None  # nothing held yet
    assert await auth.headers(POOL) == ({"token": "T1"}, 1)
    assert auth.ready(POOL) == ({"token": "T1"}, 1)  # ready at once, no renewal
    assert await auth.headers(POOL) == ({"token": "T1"}, 1)
    assert auth.obtained == 1


async def test_by_default_renewing_obtains_a_new_credential() -> None:
    auth = Renewable()
    await auth.headers(POOL)
    auth.due = True
    assert auth.ready(POOL) is None
    assert await auth.headers(POOL) == ({"token": "T2"}, 2)
    assert auth.obtained == 2


async def test_the_skeleton_alone_neither_obtains_nor_replaces() -> None:
    with pytest.raises(NotImplementedError):
        await SessionAuth().headers(POOL)
    auth = Minimal()
    _, generation = await auth.headers(POOL)
    with pytest.raises(NotImplementedError):
        await auth.refresh(POOL, generation, AuthenticationError(401))


async def test_holding_none_drops_the_credential() -> None:
    auth = Minimal()
    await auth.headers(POOL)
    auth._hold(None)
    assert auth.ready(POOL) is None
    assert await auth.current() == ({}, 2)  # no headers; a new generation
    auth._hold(None, new=False)
    assert await auth.current() == ({}, 2)
    assert await auth.headers(POOL) == ({"token": "T2"}, 3)  # obtained afresh


async def test_a_credential_refused_on_replacement_is_never_sent_again() -> None:
    refusal = LoginError(403, method="POST", url="/login")
    auth = Refusing(refusal)
    _, generation = await auth.headers(POOL)
    with pytest.raises(LoginError):
        await auth.refresh(POOL, generation, AuthenticationError(401))
    # T1 is still held, but the account refused its credentials: nothing is sent with it.
    assert auth.ready(POOL) is None
    for _ in range(2):
        with pytest.raises(LoginError) as info:
            await auth.headers(POOL)
        assert info.value is not refusal  # a fresh copy to raise each time
        assert info.value.status == 403
    with pytest.raises(LoginError):
        await auth.refresh(POOL, generation, AuthenticationError(401))
    assert (auth.obtained, auth.replaced) == (1, 1)


async def test_waiters_on_a_replacement_that_latched_get_the_refusal() -> None:
    refusal = LoginError(401, method="POST", url="/login")
    auth = Refusing(refusal)
    _, generation = await auth.headers(POOL)
    results = await asyncio.gather(
        *(auth.refresh(POOL, generation, AuthenticationError(401)) for _ in range(3)),
        return_exceptions=True)
    assert all(isinstance(r, LoginError) and r.status == 401 for r in results)
    assert auth.replaced == 1  # the others met the latch, not a second replacement


class FailingLogin(Minimal):
    """Its first login fails with ``error``; the next one succeeds."""

    def __init__(self, error: LoginError) -> None:
        super().__init__()
        self.error: LoginError | None = error
        self.tries = 0

    async def _obtain(self, pool: Any) -> None:
        self.tries += 1
        if self.error is not None:
            error, self.error = self.error, None
            raise self._failed_login(error)
        await super()._obtain(pool)


@pytest.mark.parametrize(("status", "latched"), [
    (400, True), (401, True), (403, True), (402, False), (404, False), (409, False),
    (429, False), (500, False),
])
async def test_a_failed_login_latches_only_when_it_refuses_the_credentials(
        status: int, latched: bool) -> None:
    error = LoginError(status, method="POST", url="/login")
    auth = FailingLogin(error)
    with pytest.raises(LoginError) as info:
        await auth.headers(POOL)
    assert info.value.status == status
    assert (info.value is error) is not latched  # a latched error is raised as copies
    if latched:
        with pytest.raises(LoginError):
            await auth.headers(POOL)
        assert auth.tries == 1  # never tried again
    else:
        assert await auth.headers(POOL) == ({"token": "T1"}, 1)
        assert auth.tries == 2
