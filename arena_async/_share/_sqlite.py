"""SQLiteShare: a share in one SQLite file (WAL), for the processes of one machine."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from ..errors import ShareUnavailableError
from ._base import Share, check_ttl, dumps, loads
from ._files import FileId, file_id, open_private_files
from ._state import Step

__all__ = ["SQLiteShare", "check_sqlite_path"]

R = TypeVar("R")

log = logging.getLogger(__name__)

#: Seconds between checks that the path still names the file open.
RECHECK = 1.0


def check_sqlite_path(path: str) -> str:
    """``path`` if absolute; else a ``ValueError`` (a relative path depends on each
    process's working directory: two jobs in two folders would not share)."""
    if any(c in path for c in "\0\r\n"):
        raise ValueError("a SQLite share path must not hold NUL, CR or LF")
    if not os.path.isabs(path):
        raise ValueError(f"a SQLite share path must be absolute, got {path!r}: a relative "
                         "path depends on each process's working directory, so processes "
                         "started in two folders would not share (URL: "
                         "sqlite:////absolute/path.db, four slashes)")
    return path


class SQLiteShare(Share):
    """A share in a SQLite file: every process of one machine that opens the same ``path``
    shares one Arena session and one quota ledger. No service to run; Python's ``sqlite3``
    in WAL mode. ``path`` is absolute; its folder must exist and be this OS user's own,
    closed to group and others (0700); the file and its ``-wal`` / ``-shm`` are created
    0600 without following symlinks, and an existing one that is a symlink, another user's,
    or open to group or others is refused (:class:`~arena_async.ShareMisconfiguredError`).
    It holds the session id sealed, never the password. A file deleted or replaced while in
    use is noticed within a second and the new one opened (checked alike). For several
    machines use :class:`RedisShare`.

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
        self.path: str = check_sqlite_path(os.fspath(path))
        self.timeout: float = check_ttl("timeout", timeout)
        if not callable(clock):
            raise ValueError("clock must be a callable returning epoch seconds")
        self._clock = clock
        self._conn: sqlite3.Connection | None = None
        self._thread_lock = threading.Lock()
        self._file: FileId | None = None  # the file the connection has open
        self._checked_at = 0.0  # when the path was last compared with it (share clock)

    @property
    def name(self) -> str:
        """``sqlite:///<path>``."""
        return f"sqlite:///{self.path}"

    async def _open(self) -> None:
        await self._in_thread(self._open_sync)

    def _open_sync(self) -> None:
        # Checked (and created 0600, -wal and -shm too) before SQLite opens anything.
        self._file = open_private_files(self.path, self.name)
        self._checked_at = self._clock()
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
        self._file = None
        if conn is not None:
            with self._thread_lock:
                conn.close()

    async def _update(self, key: str, step: Step[R]) -> R:
        return await self._in_thread(self._update_sync, key, step)

    def _reopen_if_replaced(self) -> None:
        """At most once a second: the path still names the file open? Else (deleted or
        replaced) close it and open what is there now, checked like the first."""
        now = self._clock()
        if abs(now - self._checked_at) < RECHECK and self._conn is not None:
            return
        self._checked_at = now
        if self._conn is not None and file_id(self.path) == self._file:
            return
        conn, self._conn = self._conn, None
        if conn is not None:
            log.warning("share %s: the file was deleted or replaced; opening the one at "
                        "the path now", self.name)
            conn.close()
        self._open_sync()

    def _update_sync(self, key: str, step: Step[R]) -> R:
        if self._file is None:
            raise ShareUnavailableError("not open", share=self.name)
        with self._thread_lock:
            self._reopen_if_replaced()
            conn = self._conn
            assert conn is not None
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
