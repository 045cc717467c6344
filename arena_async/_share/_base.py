"""The share interface: one small JSON document per key, changed by atomic steps.

A backend implements :meth:`Share._open`, :meth:`Share._close` and :meth:`Share._update`
(read the document and the share's clock, apply the pure step, write the result — all
atomically). Everything a sharer keeps there, and every rule about it, is in
:mod:`arena_async._share._state`. So a third backend is one file.
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qs, urlsplit

from .._checks import check_seconds
from ..errors import ShareMisconfiguredError, ShareUnavailableError
from ._answers import Claim, Stored
from ._state import Doc, Step

__all__ = ["SCHEMES", "Share", "default_share", "dumps", "loads", "open_share", "redact_url"]

log = logging.getLogger(__name__)

log = logging.getLogger(__name__)

R = TypeVar("R")

#: Seconds between tries while the store is unreachable: from the first, doubling to the
#: last (with jitter), until ``outage_wait`` runs out.
_FIRST_RETRY = 0.05
_LAST_RETRY = 1.0


def dumps(doc: Doc | None) -> str | None:
    """A document as stored (compact JSON; None: no document)."""
    return None if doc is None else json.dumps(doc, separators=(",", ":"), sort_keys=True)


def loads(text: str | bytes | None) -> Doc | None:
    """A stored document (None when absent or not a JSON object: start afresh)."""
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


class Share(abc.ABC):
    """Where several :class:`~arena_async.ArenaClient` instances (processes, machines) keep
    the one Arena session and quota ledger they share.

    Give one to ``ArenaClient(share=...)`` (or a URL: ``sqlite:////path.db``,
    ``redis://...``).
    A share object may serve several clients; it is opened on first use and closed when the
    last client using it closes. Built-in: :class:`~arena_async.SQLiteShare` (one machine)
    and :class:`~arena_async.RedisShare` (many machines).

    Timings (seconds; the defaults suit production): ``lease_ttl``: how long a sharer that
    died while logging in blocks the others at most; ``member_ttl``: how long a dead
    sharer's membership, and the admissions it held, outlive it; ``sync_interval``: how often
    a live sharer renews its membership, reports what its requests met and gives back unused
    admissions; ``probe_ttl``: how long a dead sharer's probe of a new quota window blocks
    the others.

    When the store fails: ``outage_wait`` (seconds, default 10; 0: fail at once): how long
    each use of the share waits, retrying with backoff, while the store is unreachable
    (Redis restarting, a SQLite file locked): an outage that short fails no call; a longer
    one fails with :class:`~arena_async.ShareUnavailableError`. The first failure of an
    outage is logged once at WARNING, the recovery once at INFO. A share that can never
    work as configured (:class:`~arena_async.ShareMisconfiguredError`: a missing folder, a
    wrong password, TLS to a plain server) fails at once, with a hint, never waited for.

    Example::

        share = RedisShare("redis://redis.internal:6379/0", outage_wait=30.0)
    """

    def __init__(self, *, lease_ttl: float = 10.0, member_ttl: float = 15.0,
                 sync_interval: float = 1.0, probe_ttl: float = 10.0,
                 outage_wait: float = 10.0) -> None:
        self.lease_ttl: float = check_ttl("lease_ttl", lease_ttl)
        self.member_ttl: float = check_ttl("member_ttl", member_ttl)
        self.sync_interval: float = check_ttl("sync_interval", sync_interval)
        self.probe_ttl: float = check_ttl("probe_ttl", probe_ttl)
        self.outage_wait: float = check_wait("outage_wait", outage_wait)
        if self.member_ttl <= 2 * self.sync_interval:
            raise ValueError("member_ttl must exceed twice sync_interval (a live sharer renews "
                             "its membership every sync_interval)")
        self._users = 0
        self._lock: asyncio.Lock | None = None
        self._outage_since: float | None = None  # (monotonic) the current outage began

    @property
    def settle(self) -> float:
        """Seconds every live sharer needs to re-register after the store lost its state
        (two sync intervals, and a little): the recovery after such a loss.

        Example: ``SQLiteShare(path, sync_interval=1.0).settle`` is ``2.25``."""
        return 2 * self.sync_interval + 0.25

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The share, for messages and logs: never with a password."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    async def acquire(self) -> None:
        """Open the share for one more user (the first opens it)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._users == 0:
                await self._through_outage(self._open)
            self._users += 1

    async def release(self) -> None:
        """One user is done with the share (the last closes it)."""
        if self._lock is None or self._users == 0:
            return
        async with self._lock:
            self._users -= 1
            if self._users == 0:
                await self._close()

    async def update(self, key: str, step: Step[R]) -> R:
        """Apply ``step`` to the document at ``key`` atomically; return its result.

        Waits up to ``outage_wait`` seconds for a store that is unreachable; raises
        :class:`~arena_async.ShareUnavailableError` when the share cannot be used (then, or
        at once when it is misconfigured: :class:`~arena_async.ShareMisconfiguredError`).
        ``step`` may run more than once (a try whose answer was lost): steps are written so
        that running one again does no harm."""
        if self._users == 0:
            raise ShareUnavailableError("not open (the client using it is closed)",
                                        share=self.name)
        return await self._through_outage(lambda: self._update(key, step))

    async def _through_outage(self, attempt: Callable[[], Awaitable[R]]) -> R:
        """``attempt()``, tried again with backoff while the store is unreachable, for
        ``outage_wait`` seconds at most from this call's first failure."""
        deadline: float | None = None
        delay = _FIRST_RETRY
        while True:
            try:
                result = await attempt()
            except ShareMisconfiguredError:
                raise
            except ShareUnavailableError as exc:
                _raise_if_cancelled()  # (a store client may turn a cancellation into an error)
                now = time.monotonic()
                if self._outage_since is None:
                    self._outage_since = now
                    log.warning("%s", then(str(exc), f"waiting up to {self.outage_wait:g} s "
                                                     "for it (outage_wait)"))
                if deadline is None:
                    deadline = now + self.outage_wait
                pause = delay * random.uniform(0.8, 1.2)
                if now + pause > deadline:
                    raise
                await asyncio.sleep(pause)
                delay = min(delay * 2, _LAST_RETRY)
                if self._users == 0 and self._lock is not None and not self._lock.locked():
                    raise  # closed meanwhile
                continue
            since, self._outage_since = self._outage_since, None
            if since is not None:
                log.info("share %s is reachable again (after %.1f s)", self.name,
                         time.monotonic() - since)
            return result

    def recheck(self) -> None:
        """The next :meth:`update` must run on the store the share names now: a sharer is
        about to decide on a login (its session was refused), where a store replaced
        under it (a share file deleted and made again) would split the sharers in two. A
        backend that checks its store only now and then (the SQLite file, once a second)
        checks it at that update; others need nothing."""
        return None

    @abc.abstractmethod
    async def _open(self) -> None: ...

    @abc.abstractmethod
    async def _close(self) -> None: ...

    @abc.abstractmethod
    async def _update(self, key: str, step: Step[R]) -> R: ...

    # -- cached answers (``cache=``): a blob store with expiry, beside the documents --------
    # A backend that keeps answers sets ``keeps_answers`` and overrides the five methods
    # below; without them a client's cache stays in its own memory.

    #: Whether this backend keeps cached answers (:mod:`._answers`).
    keeps_answers: ClassVar[bool] = False

    async def answer_read(self, key: str, fresh_since: float, owner: str,
                          fill_ttl: float) -> tuple[Stored | None, Claim]:
        """The answer at ``key`` (unexpired, fresh or not) and what to do: ``FRESH`` when it
        was stored at ``fresh_since`` or later; else, atomically, ``WAIT`` when another
        owner's fill marker is alive, or ``FILL`` after setting ``owner``'s marker for
        ``fill_ttl`` seconds (of the share's clock)."""
        raise NotImplementedError

    async def answer_write(self, key: str, stored: Stored, *, keep_for: float,
                           tags: Sequence[str], owner: str) -> None:
        """Store an answer at ``key`` for ``keep_for`` seconds (of the share's clock) under
        ``tags``, and drop ``owner``'s fill marker of ``key``."""
        raise NotImplementedError

    async def answer_release(self, key: str, owner: str) -> None:
        """Drop ``owner``'s fill marker of ``key`` (the fetch failed: others may try)."""
        raise NotImplementedError

    async def answer_drop_tags(self, tags: Sequence[str]) -> None:
        """Drop every answer stored under any of ``tags``."""
        raise NotImplementedError

    async def answer_drop_namespace(self, namespace: str) -> None:
        """Drop every answer, tag and fill marker of ``namespace``."""
        raise NotImplementedError


def open_share(value: object, environ: Mapping[str, str] | None = None) -> Share | None:
    """``share=`` as given, checked without any I/O but the default folder's creation:
    ``None`` (the default share: :func:`default_share`), ``False`` or ``"none"`` (no
    share, as ``ARENA_SHARE=none`` and the CLI's ``--share none``), a
    :class:`Share`, or a URL of a scheme in :data:`SCHEMES` (``sqlite:////absolute.db``,
    ``redis://``, ``rediss://``, ``unix://``). A malformed URL, a relative SQLite path or a
    Redis URL without redis-py installed is a ``ValueError`` naming the problem (never the
    password).

    Example: ``open_share("redis://cache:6379/0")`` is a :class:`RedisShare`;
    ``open_share(False)`` is None."""
    if value is None:
        return default_share(environ)
    if value is False or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    if isinstance(value, Share):
        return value
    if not isinstance(value, str):
        raise ValueError(f"share must be None (the default share), False (none), a URL or a "
                         f"share object (SQLiteShare, RedisShare), got {value!r}"
                         if isinstance(value, bool) else
                         f"share must be None (the default share), False (none), a URL or a "
                         f"share object (SQLiteShare, RedisShare), got {type(value).__name__}")
    return share_from_url(value)


def share_from_url(url: str) -> Share:
    """The share a URL names (:data:`SCHEMES`); ``ValueError`` when it is malformed."""
    shown = redact_url(url)
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError(f"share URL {shown!r} holds whitespace or control characters")
    scheme, sep, _ = url.partition(":")
    make = SCHEMES.get(scheme.lower()) if sep else None
    if make is None:
        # Without a scheme it may be anything (a path, a secret pasted by mistake): not shown.
        what = f"share URL {shown!r} has an unknown scheme" if sep else "share URL has no scheme"
        raise ValueError(f"{what}: use "
                         "sqlite:////absolute/path.db, redis://host:6379/0, rediss:// or "
                         "unix:///path/redis.sock")
    return make(url)


def _sqlite(url: str) -> Share:
    from ._sqlite import SQLiteShare

    prefix = "sqlite:///"
    if not url.lower().startswith(prefix) or len(url) <= len(prefix):
        raise ValueError(f"share URL {redact_url(url)!r}: a SQLite share URL is "
                         "sqlite:////absolute/path.db (three slashes, then the absolute path)")
    return SQLiteShare(url[len(prefix):])


def _redis(url: str) -> Share:
    from ._redis import RedisShare

    check_redis_url(url)
    return RedisShare(url)


#: The share URL schemes, and what makes a share of each (checking the URL first).
SCHEMES: dict[str, Callable[[str], Share]] = {
    "sqlite": _sqlite,
    "redis": _redis,
    "rediss": _redis,
    "unix": _redis,
}


def check_redis_url(url: str) -> None:
    """A ``ValueError`` naming what is wrong with a Redis URL (host, port, database, socket
    path), never its password; no I/O, no import of redis-py."""
    shown = redact_url(url)

    def bad(problem: str) -> ValueError:
        return ValueError(f"share URL {shown!r}: {problem}")

    if any(c.isspace() or ord(c) < 32 for c in url):
        raise bad("holds whitespace or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise bad(f"malformed ({_no_secret(exc, url)})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("redis", "rediss", "unix"):
        raise bad("a Redis URL starts with redis://, rediss:// or unix://")
    if not url[len(scheme) + 1:].startswith("//"):
        raise bad(f"missing '//' after '{scheme}:'")
    query = parse_qs(parts.query, keep_blank_values=True)
    db_values = query.get("db", [])
    if scheme == "unix":
        if not parts.path or not parts.path.startswith("/"):
            raise bad("a unix:// URL names the socket's absolute path: "
                      "unix:///run/redis/redis.sock?db=0")
    else:
        try:
            host, port = parts.hostname, parts.port
        except ValueError:
            raise bad("the port must be a number from 1 to 65535") from None
        if not host:
            raise bad("missing host: redis://host:6379/0")
        if port == 0:
            raise bad("the port must be a number from 1 to 65535")
        db_path = parts.path.strip("/")
        if db_path:
            db_values = [*db_values, db_path]
    for db in db_values:
        if not db.isdigit():
            raise bad(f"the database must be a number (redis://host:6379/0), got {db!r}")


def _no_secret(exc: Exception, url: str) -> str:
    text = str(exc)
    password = _password(url)
    return text.replace(password, "***") if password else text


def _password(url: str) -> str | None:
    rest = url.split("://", 1)[1] if "://" in url else url.partition(":")[2]
    netloc = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" not in netloc:
        return None
    userinfo = netloc.rpartition("@")[0]
    return userinfo.partition(":")[2] or userinfo or None


def default_share(environ: Mapping[str, str] | None = None) -> Share | None:
    """The default share: the URL in ``ARENA_SHARE`` when it is set (``none``, in any case,
    means no share), else a :class:`SQLiteShare` in the OS user's private state folder
    (created 0700 when missing). Where that folder cannot be made, one WARNING and None:
    the client runs alone.

    Example: with ``XDG_STATE_HOME=/home/me/.local/state`` and no ``ARENA_SHARE``, a
    SQLite share at ``/home/me/.local/state/arena_async/share.db``."""
    from ._files import default_share_path, make_private_folder
    from ._sqlite import SQLiteShare

    env = os.environ if environ is None else environ
    url = (env.get("ARENA_SHARE") or "").strip()
    if url:
        if url.lower() == "none":
            return None
        try:
            return share_from_url(url)
        except ValueError as exc:
            raise ValueError(f"ARENA_SHARE: {exc}") from None
    path = default_share_path(env)
    if path is None:
        log.warning("no default share: this OS user has no home folder, so this client "
                    "runs alone (give share= or ARENA_SHARE to share one Arena session "
                    "with the other processes of this integration)")
        return None
    folder = os.path.dirname(path)
    try:
        make_private_folder(folder)
    except OSError as exc:
        log.warning("no default share: cannot make the folder %s (%s), so this client runs "
                    "alone (give share= or ARENA_SHARE to share one Arena session with the "
                    "other processes of this integration)", folder,
                    exc.strerror or type(exc).__name__)
        return None
    return SQLiteShare(path)


def redact_url(url: str) -> str:
    """``url`` for messages: without its user and password, its query shown as ``?…``.
    A malformed URL is shown as written but for those (never as a bare ``…``).

    Example: ``redact_url("redis://:pw@cache:6379/0")`` is ``"redis://cache:6379/0"``."""
    scheme, sep, rest = url.partition(":")
    if not sep or not scheme or not all(c.isalnum() or c in "+-." for c in scheme):
        return "…" if "@" in url else url
    body = rest.lstrip("/")
    leading = rest[:len(rest) - len(body)]
    cut = len(body)
    for mark in "/?#":
        at = body.find(mark)
        if at != -1:
            cut = min(cut, at)
    netloc, tail = body[:cut], body[cut:]
    if len(leading) < 3:  # an authority (not an absolute path after an empty one)
        netloc = netloc.rpartition("@")[2]
    path, _, query = tail.partition("?")
    path = path.split("#", 1)[0]
    return f"{scheme}:{leading}{netloc}{path}{'?…' if query else ''}"


def then(text: str, more: str, sep: str = "; ") -> str:
    """``text`` and then ``more``, after ``sep``; or, when ``text`` ends a sentence (an
    error's own message often does), as a sentence of its own: never ``".;"`` or ``".:"``.

    Example: ``then("refused.", "waiting")`` is ``"refused. Waiting"``; ``then("refused",
    "waiting")`` is ``"refused; waiting"``."""
    text = text.rstrip().rstrip(";:,").rstrip()
    if not text:
        return more
    if text.endswith((".", "!", "?")):
        return f"{text} {more[:1].upper()}{more[1:]}"
    return f"{text}{sep}{more}"


def check_ttl(name: str, value: Any) -> float:
    """A finite number of seconds > 0."""
    seconds = check_seconds(name, value)
    assert seconds is not None
    return seconds


def check_wait(name: str, value: Any) -> float:
    """A finite number of seconds >= 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not 0 <= value < float("inf"):  # NaN fails the comparison too
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


def _raise_if_cancelled() -> None:
    """Re-raise a cancellation of the current task that a library swallowed."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
