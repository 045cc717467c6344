"""SQLiteShare: a share in one SQLite file (WAL), for the processes of one machine."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from ..errors import ShareMisconfiguredError, ShareUnavailableError
from ._answers import Claim, Stored, namespace_range
from ._base import Share, check_ttl, dumps, loads
from ._files import FileId, file_id, open_private_files
from ._state import Now, Step

__all__ = ["SQLiteShare", "check_sqlite_path"]

R = TypeVar("R")

_ANSWER_TABLES = """
CREATE TABLE IF NOT EXISTS arena_answer (key TEXT PRIMARY KEY, value BLOB NOT NULL,
    stored REAL NOT NULL, expires REAL NOT NULL);
CREATE INDEX IF NOT EXISTS arena_answer_expires ON arena_answer (expires);
CREATE TABLE IF NOT EXISTS arena_answer_tag (tag TEXT NOT NULL, key TEXT NOT NULL,
    PRIMARY KEY (tag, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS arena_answer_tag_key ON arena_answer_tag (key);
CREATE TABLE IF NOT EXISTS arena_answer_fill (key TEXT PRIMARY KEY, owner TEXT NOT NULL,
    expires REAL NOT NULL);
"""

#: Seconds between two sweeps of expired answers by one process (on its writes).
_SWEEP_EVERY = 60.0

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

    ``timeout``: seconds to wait for another process's write lock before the try counts as
    failed (tried again within ``outage_wait``). ``lease_ttl``, ``member_ttl``,
    ``sync_interval``, ``probe_ttl``, ``outage_wait``: see :class:`Share`.

    Time: quota windows run on the wall clock (the server's reset times are dates); leases,
    memberships and probes run on the host's boot clock (``CLOCK_BOOTTIME``), which every
    process of the machine shares and which a wall-clock step (NTP, an operator, a VM
    resumed) does not move: a step cannot expire live sharers or their admissions.
    ``clock`` (epoch seconds) and ``boot_clock`` (seconds, any origin) are for tests.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0,
                 clock: Callable[[], float] = time.time,
                 boot_clock: Callable[[], float] | None = None, **timings: float) -> None:
        super().__init__(**timings)
        if not isinstance(path, str | os.PathLike) or not os.fspath(path):
            raise ValueError(f"SQLiteShare path must be a file path, got {path!r}")
        self.path: str = check_sqlite_path(os.fspath(path))
        self.timeout: float = check_ttl("timeout", timeout)
        if not callable(clock):
            raise ValueError("clock must be a callable returning epoch seconds")
        if boot_clock is not None and not callable(boot_clock):
            raise ValueError("boot_clock must be a callable returning seconds")
        self._clock = clock
        self._boot_clock: Callable[[], float] = boot_clock or _boot_time
        self._boot: str | None = None
        self._conn: sqlite3.Connection | None = None
        self._thread_lock = threading.Lock()
        self._file: FileId | None = None  # the file the connection has open
        self._checked_at = 0.0  # when the path was last compared with it (share clock)
        self._recheck = False  # compare at the next update, however recent the last check

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

    def recheck(self) -> None:
        """The next update compares the path with the file open, however recent the last
        comparison (see :meth:`Share.recheck`)."""
        self._recheck = True

    def _reopen_if_replaced(self) -> None:
        """At most once a second (or when :meth:`recheck` asked): the path still names the
        file open? Else (deleted or replaced) close it and open what is there now, checked
        like the first."""
        now = self._clock()
        if not self._recheck and abs(now - self._checked_at) < RECHECK \
                and self._conn is not None:
            return
        self._checked_at, self._recheck = now, False
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
                new, result = step(loads(old), Now(self._clock(), self._tick(conn)))
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

    def _tick(self, conn: sqlite3.Connection) -> float:
        """The share's lease clock: the boot clock, offset so that it reads about epoch
        seconds. The offset is fixed once per boot for every process (a row of its own, in
        the step's transaction); after a reboot the old leases are as old as they look."""
        raw = self._boot_clock()
        row = conn.execute("SELECT value FROM arena_share WHERE key = ?",
                           (_CLOCK_KEY,)).fetchone()
        anchor = loads(row[0]) if row else None
        boot = self._boot
        if boot is None:
            boot = self._boot = _boot_id()
        if anchor is None or anchor.get("boot") != boot or raw < float(anchor.get("raw", 0)):
            anchor = {"boot": boot, "raw": raw, "offset": self._clock() - raw}
            conn.execute("INSERT OR REPLACE INTO arena_share (key, value) VALUES (?, ?)",
                         (_CLOCK_KEY, json.dumps(anchor)))
        return raw + float(anchor["offset"])

    async def _in_thread(self, fn: Callable[..., R], *args: object) -> R:
        try:
            return await asyncio.to_thread(fn, *args)
        except ShareUnavailableError:
            raise
        except sqlite3.Error as exc:
            text = str(exc)
            hint = _PERMANENT.get(text.lower())
            if hint is not None:
                raise ShareMisconfiguredError(f"{type(exc).__name__}: {text}: {hint}",
                                              share=self.name) from None
            raise ShareUnavailableError(f"{type(exc).__name__}: {text}",
                                        share=self.name) from None
        except OSError as exc:
            message = f"{type(exc).__name__}: {exc.strerror or exc}"
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT,
                             errno.ENOTDIR, errno.EISDIR):
                raise ShareMisconfiguredError(
                    f"{message}: this process cannot create or open the share file there",
                    share=self.name) from None
            raise ShareUnavailableError(message, share=self.name) from None


    # -- cached answers (``cache=``): three tables of their own; rows carry their expiry
    # (the share's clock) and are swept lazily, on writes, at most every _SWEEP_EVERY s.
    keeps_answers = True

    def _answer_conn(self) -> sqlite3.Connection:
        """The connection, with the answer tables made (once per connection). Under
        ``_thread_lock``."""
        conn = self._conn
        if conn is None:
            raise ShareUnavailableError("not open", share=self.name)
        tables_on: object = getattr(self, "_answer_tables_on", None)
        if tables_on is not conn:
            for statement in filter(str.strip, _ANSWER_TABLES.split(";")):
                conn.execute(statement)
            self._answer_tables_on: object = conn
        return conn

    async def answer_read(self, key: str, fresh_since: float, owner: str,
                          fill_ttl: float) -> tuple[Stored | None, Claim]:
        """See :meth:`Share.answer_read`."""
        return await self._in_thread(self._answer_read_sync, key, fresh_since, owner, fill_ttl)

    def _answer_read_sync(self, key: str, fresh_since: float, owner: str,
                          fill_ttl: float) -> tuple[Stored | None, Claim]:
        with self._thread_lock:
            conn = self._answer_conn()
            now = self._clock()
            select = "SELECT value, stored FROM arena_answer WHERE key = ? AND expires >= ?"
            row = conn.execute(select, (key, now)).fetchone()  # a hit needs no write lock
            if row is not None and row[1] >= fresh_since:
                return Stored(bytes(row[0]), row[1]), Claim.FRESH
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(select, (key, now)).fetchone()  # filled meanwhile?
                stored = None if row is None else Stored(bytes(row[0]), row[1])
                if stored is not None and stored.stored_at >= fresh_since:
                    claim = Claim.FRESH
                else:
                    holder = conn.execute(
                        "SELECT owner FROM arena_answer_fill WHERE key = ? AND expires > ?",
                        (key, now)).fetchone()
                    if holder is not None and holder[0] != owner:
                        claim = Claim.WAIT
                    else:
                        conn.execute("INSERT OR REPLACE INTO arena_answer_fill (key, owner, "
                                     "expires) VALUES (?, ?, ?)", (key, owner, now + fill_ttl))
                        claim = Claim.FILL
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return stored, claim

    async def answer_write(self, key: str, stored: Stored, *, keep_for: float,
                           tags: Sequence[str], owner: str) -> None:
        """See :meth:`Share.answer_write`."""
        await self._in_thread(self._answer_write_sync, key, stored, keep_for,
                              (tuple(tags), owner))

    def _answer_write_sync(self, key: str, stored: Stored, keep_for: float,
                           tags_owner: tuple[tuple[str, ...], str]) -> None:
        tags, owner = tags_owner
        with self._thread_lock:
            conn = self._answer_conn()
            now = self._clock()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("INSERT OR REPLACE INTO arena_answer (key, value, stored, expires) "
                             "VALUES (?, ?, ?, ?)",
                             (key, stored.value, stored.stored_at, now + keep_for))
                conn.execute("DELETE FROM arena_answer_tag WHERE key = ?", (key,))
                conn.executemany("INSERT OR IGNORE INTO arena_answer_tag (tag, key) "
                                 "VALUES (?, ?)", [(tag, key) for tag in tags])
                conn.execute("DELETE FROM arena_answer_fill WHERE key = ? AND owner = ?",
                             (key, owner))
                if now >= getattr(self, "_answers_swept_at", 0.0) + _SWEEP_EVERY:
                    self._answers_swept_at: float = now
                    conn.execute("DELETE FROM arena_answer WHERE expires < ?", (now,))
                    conn.execute("DELETE FROM arena_answer_tag WHERE key NOT IN "
                                 "(SELECT key FROM arena_answer)")
                    conn.execute("DELETE FROM arena_answer_fill WHERE expires <= ?", (now,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    async def answer_release(self, key: str, owner: str) -> None:
        """See :meth:`Share.answer_release`."""
        await self._in_thread(self._answer_exec, [
            ("DELETE FROM arena_answer_fill WHERE key = ? AND owner = ?", (key, owner))])

    async def answer_drop_tags(self, tags: Sequence[str]) -> None:
        """See :meth:`Share.answer_drop_tags`."""
        if not tags:
            return
        marks = ", ".join("?" * len(tags))
        await self._in_thread(self._answer_exec, [
            (f"DELETE FROM arena_answer WHERE key IN (SELECT key FROM arena_answer_tag "
             f"WHERE tag IN ({marks}))", tuple(tags)),
            (f"DELETE FROM arena_answer_tag WHERE tag IN ({marks})", tuple(tags))])

    async def answer_drop_namespace(self, namespace: str) -> None:
        """See :meth:`Share.answer_drop_namespace`."""
        bounds = namespace_range(namespace)
        await self._in_thread(self._answer_exec, [
            ("DELETE FROM arena_answer WHERE key >= ? AND key < ?", bounds),
            ("DELETE FROM arena_answer_tag WHERE tag >= ? AND tag < ?", bounds),
            ("DELETE FROM arena_answer_fill WHERE key >= ? AND key < ?", bounds)])

    def _answer_exec(self, statements: list[tuple[str, tuple[object, ...]]]) -> None:
        """Run ``statements`` in one write transaction."""
        with self._thread_lock:
            conn = self._answer_conn()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, args in statements:
                    conn.execute(sql, args)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

#: The row that holds the lease clock's offset (not a document key: those are hex names).
_CLOCK_KEY = "~clock"

#: SQLite errors that no wait will cure, and what to do about them.
_PERMANENT = {
    "file is not a database": "the file is not a SQLite database (not a share): remove it "
                              "or choose another path",
    "attempt to write a readonly database": "the file or its folder is read-only for this "
                                            "process",
}


def _boot_time() -> float:
    """Seconds since boot, sleep included, the same in every process of the machine."""
    clock_id = getattr(time, "CLOCK_BOOTTIME", None)
    if clock_id is not None:
        return time.clock_gettime(clock_id)
    return time.monotonic()


def _boot_id() -> str:
    """This boot's id (Linux), else empty (a reboot then shows as the boot clock going
    back)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""
