"""SQLiteShare: a share in one SQLite file (WAL), for the processes of one machine."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from ..errors import ShareUnavailableError
from ._base import Share, check_ttl, dumps, loads
from ._state import Step

__all__ = ["SQLiteShare"]

R = TypeVar("R")


class SQLiteShare(Share):
    """A share in a SQLite file: every process of one machine that opens the same ``path``
    shares one Arena session and one quota ledger. No service to run; Python's ``sqlite3``
    in WAL mode; the file is created with mode 0600 (it holds the session id, never the
    password). For several machines use :class:`RedisShare`.

    Example::

        share = SQLiteShare("/var/lib/myapp/arena-share.db")
        async with ArenaClient(email=e, password=p, workspace_id=w, share=share) as arena:
            ...

    ``timeout``: seconds to wait for another process's write lock before giving up with
    :class:`~arena_async.ShareUnavailableError`. ``clock`` (epoch seconds) is for tests.
    ``lease_ttl``, ``member_ttl``, ``sync_interval``, ``probe_ttl``: see :class:`Share`.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0,
                 clock: Callable[[], float] = time.time, **timings: float) -> None:
        super().__init__(**timings)
        if not isinstance(path, str | os.PathLike) or not os.fspath(path):
            raise ValueError(f"SQLiteShare path must be a file path, got {path!r}")
        self.path: str = os.fspath(path)
        self.timeout: float = check_ttl("timeout", timeout)
        if not callable(clock):
            raise ValueError("clock must be a callable returning epoch seconds")
        self._clock = clock
        self._conn: sqlite3.Connection | None = None
        self._thread_lock = threading.Lock()

    @property
    def name(self) -> str:
        """``sqlite:///<path>``."""
        return f"sqlite:///{self.path}"

    async def _open(self) -> None:
        await self._in_thread(self._open_sync)

    def _open_sync(self) -> None:
        parent = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(parent):
            raise ShareUnavailableError(f"the folder {parent} does not exist", share=self.name)
        # Created 0600 before SQLite opens it: the file holds the session id.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("CREATE TABLE IF NOT EXISTS arena_share "
                         "(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with self._thread_lock:
                conn.close()

    async def _update(self, key: str, step: Step[R]) -> R:
        return await self._in_thread(self._update_sync, key, step)

    def _update_sync(self, key: str, step: Step[R]) -> R:
        conn = self._conn
        if conn is None:
            raise ShareUnavailableError("not open", share=self.name)
        with self._thread_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT value FROM arena_share WHERE key = ?",
                                   (key,)).fetchone()
                old = row[0] if row else None
                new, result = step(loads(old), self._clock())
                text = dumps(new)
                if text != old:
                    if text is None:
                        conn.execute("DELETE FROM arena_share WHERE key = ?", (key,))
                    else:
                        conn.execute("INSERT OR REPLACE INTO arena_share (key, value) "
                                     "VALUES (?, ?)", (key, text))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return result

    async def _in_thread(self, fn: Callable[..., R], *args: object) -> R:
        try:
            return await asyncio.to_thread(fn, *args)
        except sqlite3.Error as exc:
            raise ShareUnavailableError(f"{type(exc).__name__}: {exc}",
                                        share=self.name) from None
        except OSError as exc:
            raise ShareUnavailableError(f"{type(exc).__name__}: {exc.strerror or exc}",
                                        share=self.name) from None
