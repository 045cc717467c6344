"""The aiohttp session a :class:`~arena_async._transport.Transport` sends on, and the event loop
it belongs to: open, close, the ``session`` property, the other-loop check.

A pool creates its own session when opened (:func:`~arena_async._session.new_session`) or
uses the caller's, which it never closes. It belongs to the loop it is first opened on;
opening, using or closing it from another raises :func:`other_loop_error`, except closing
once that loop is closed (nothing can be ended there any more). What closing ends on the
server, and what it logs, is the pool's (the hooks :meth:`Lifecycle._end_server_session`
and :meth:`Lifecycle._abandoned`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import aiohttp

from ._network import Network
from ._session import new_session, other_loop_error

__all__ = ["Lifecycle"]


class Lifecycle:
    """Owns (or borrows) the aiohttp session, on one event loop.

    Example::

        class Pool(Lifecycle):
            async def _end_server_session(self) -> None:
                ...  # log out

        pool = Pool(timeout=30.0)
        await pool.open()
        pool.session  # the aiohttp.ClientSession
        await pool.close()
    """

    def __init__(self, *, timeout: float, session: aiohttp.ClientSession | None = None,
                 connector_limit: int = 100,
                 trace_configs: Sequence[aiohttp.TraceConfig] = (),
                 network: Network | None = None) -> None:
        self._trace_configs = list(trace_configs)
        #: TLS verification and proxies of the session we create (``ssl=``, ``proxy=``).
        self.network: Network = network if network is not None else Network()
        if self._trace_configs and session is not None:
            raise ValueError("trace_configs go to the client's own aiohttp session; with "
                             "session= give them to that session instead "
                             "(aiohttp.ClientSession(trace_configs=[...]))")
        self._session_timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop it was opened on
        self._given_session = session
        self._session: aiohttp.ClientSession | None = session
        self._connector_limit = connector_limit
        self._closed = False

    async def open(self) -> None:
        """Create our aiohttp session (needs a running loop) unless the caller gave one.

        The pool belongs to the loop it is first opened on: opening it again from another
        loop raises :class:`RuntimeError` (see :func:`other_loop_error`)."""
        if self._closed:
            raise RuntimeError("this client is closed; create a new one")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise other_loop_error()
        if self._session is None:
            self._session = new_session(timeout=self._session_timeout,
                                        limit=self._connector_limit,
                                        trace_configs=self._trace_configs,
                                        ssl=self.network.ssl)

    async def close(self) -> None:
        """End the server session (if ours), then close our aiohttp session. Idempotent.

        From another loop than the one the pool was opened on, it raises
        :class:`RuntimeError` and closes nothing (close it on its own loop), unless that
        loop is closed: then nothing can be ended there, and the pool is only marked
        closed (:meth:`_abandoned` says the server session was not ended)."""
        if self._closed:
            return
        if self.on_other_loop():
            assert self._loop is not None
            if not self._loop.is_closed():
                raise other_loop_error()
            self._closed = True
            session, self._session = self._session, None
            self._abandoned()
            if session is not None and session is not self._given_session:
                with contextlib.suppress(RuntimeError):  # its connections need that loop
                    await session.close()
            return
        self._closed = True
        try:
            if self._session is not None and not self._session.closed:
                await self._end_server_session()
        finally:
            if self._session is not None and self._session is not self._given_session:
                await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session in use."""
        if self._session is None:
            raise RuntimeError(
                "the client is not open: use 'async with ArenaClient(...) as client:'"
                if not self._closed else "this client is closed; create a new one"
            )
        return self._session

    def on_other_loop(self) -> bool:
        """Whether the running loop is not the one the pool was opened on (False before it
        is opened). Needs a running loop; it costs a system call on Python 3.11, so it is
        for error paths only."""
        return self._loop is not None and asyncio.get_running_loop() is not self._loop

    async def _end_server_session(self) -> None:
        """Hook: end the server session at close (the aiohttp session is still open)."""

    def _abandoned(self) -> None:
        """Hook: closed from another loop after the pool's own loop was closed; the
        server session, if any, could not be ended."""
