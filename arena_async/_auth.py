"""The session-auth skeleton both servers' auth share (Arena and Akana).

What it owns, once: single-flight (one lock: concurrent first requests share one login,
concurrent 401s one replacement), the generation of the credential a request was sent with
(a 401 replaces only the credential it was seen on), the fatal latch (refused credentials
are never tried again: repeated refusals lock accounts), and the headers cached for the
hot path. What a server's auth supplies: how to get a credential (:meth:`_obtain`), how to
renew one before it lapses (:meth:`_due`, :meth:`_renew`), and how to replace one the server
refused (:meth:`_replace`) — from the server itself, or from a share.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .errors import APIError, LoginError, copy_error

if TYPE_CHECKING:
    from ._session import AuthTransport

__all__ = ["CREDENTIAL_REFUSALS", "SessionAuth"]

#: Login answers that refuse the credentials themselves (never tried again).
CREDENTIAL_REFUSALS = frozenset({400, 401, 403})


class SessionAuth:
    """Implements the pool's ``Auth`` protocol around a credential a subclass obtains."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._generation = 0
        self._fatal: APIError | None = None
        # The headers proving the credential and their generation; None: none held.
        self._ready: tuple[Mapping[str, str], int] | None = None
        # Set by close(): from then on no credential is obtained, renewed or replaced (a
        # request still in flight that meets a 401 must not log in again: a session nobody
        # would end).
        self._closed = False

    # -- what a server's auth supplies -------------------------------------------------
    def _due(self, pool: AuthTransport) -> bool:
        """True when the held credential must be renewed before the next request."""
        return False

    async def _obtain(self, pool: AuthTransport) -> None:
        """No credential is held: get one (and :meth:`_hold` it). Called with the lock."""
        raise NotImplementedError

    async def _renew(self, pool: AuthTransport) -> None:
        """The held credential is :meth:`_due`: renew it. Called with the lock."""
        await self._obtain(pool)

    async def _replace(self, pool: AuthTransport, error: APIError) -> None:
        """The server refused the held credential (``error``, a 401): replace it. Called
        with the lock, once for every request that saw it refused."""
        raise NotImplementedError

    def _unreplaced(self, error: APIError) -> APIError:
        """What to raise for a refused credential that will not be replaced (``error``, the
        401 it met): by default a copy of ``error``."""
        return copy_error(error)

    async def _close(self, pool: AuthTransport) -> None:
        """End the credential if this client obtained it (after :meth:`close` has made sure
        no new one will be obtained)."""

    # -- for subclasses ------------------------------------------------------------------
    def _hold(self, headers: Mapping[str, str] | None, *, new: bool = True) -> None:
        """Hold ``headers`` (None: no credential). ``new``: a new credential, so a new
        generation (a 401 seen on the old one no longer replaces this one)."""
        if new:
            self._generation += 1
        self._ready = None if headers is None else (headers, self._generation)

    def _latch(self, error: APIError) -> APIError:
        """Remember refused credentials; returns a fresh copy to raise."""
        self._fatal = error
        return copy_error(error)

    def _failed_login(self, error: LoginError) -> APIError:
        """What to raise for a failed login: latched (:meth:`_latch`) when its status
        refuses the credentials (:data:`CREDENTIAL_REFUSALS`: repeated refusals can lock
        the account), else ``error`` itself (transient: the pool may retry)."""
        if error.status in CREDENTIAL_REFUSALS:
            return self._latch(error)
        return error

    # -- the pool's Auth protocol ----------------------------------------------------------
    def ready(self, pool: AuthTransport) -> tuple[Mapping[str, str], int] | None:
        """The headers when a request can go at once: nothing to do or raise first."""
        if self._fatal is not None or self._lock.locked() or self._due(pool):
            return None
        return self._ready

    async def headers(self, pool: AuthTransport) -> tuple[Mapping[str, str], int]:
        """The headers, obtaining or renewing the credential first when needed."""
        if self._fatal is not None:
            raise copy_error(self._fatal)
        if self._ready is None or self._due(pool):
            async with self._lock:  # single-flight: one login or renewal for every waiter
                if self._fatal is not None:
                    raise copy_error(self._fatal)
                if self._closed:
                    raise RuntimeError("this client is closed; create a new one")
                if self._ready is None:
                    await self._obtain(pool)
                elif self._due(pool):
                    await self._renew(pool)
        return self._now()

    async def current(self) -> tuple[Mapping[str, str], int]:
        """The headers just before sending: after any login or renewal under way."""
        if self._lock.locked():
            async with self._lock:
                pass
        return self._now()

    async def refresh(self, pool: AuthTransport, generation: int, error: APIError) -> None:
        """Replace the credential of ``generation`` that got ``error``, once for all."""
        async with self._lock:
            if self._fatal is not None:
                raise copy_error(self._fatal)
            if self._generation != generation:
                return  # another task already replaced the credential this request used
            if self._closed:  # a request that was in flight when close began
                refused = self._unreplaced(error)
                refused.add_note("the client was closing: no new login")
                raise refused from None
            await self._replace(pool, error)

    async def close(self, pool: AuthTransport) -> None:
        """Obtain no credential from now on, then end the held one if it is this client's
        (:meth:`_close`)."""
        self._closed = True
        await self._close(pool)

    def _now(self) -> tuple[Mapping[str, str], int]:
        return self._ready or ({}, self._generation)
