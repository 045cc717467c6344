"""Models shared by both clients: pages, quota, bulk outcomes."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

import attrs

__all__ = ["Outcome", "Page", "Quota", "Stats"]

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


@attrs.frozen(slots=True)
class Page(Generic[T]):
    """One page of a paginated listing.

    ``offset`` is where this page starts (Arena ``offset``, Akana ``start``);
    ``next_offset`` is where the next page starts, or None when this was the last page.
    ``start`` / ``next_start`` are the same numbers under Akana's names. A listing whose
    length is a multiple of the page size ends with an empty page (the servers give no
    total, so only an empty or short page proves the end).

    Example::

        async for page in arena.items.training_records.pages(item_guid):
            save(page.items); checkpoint(page.next_offset)
    """

    items: list[T]
    offset: int
    next_offset: int | None

    @property
    def start(self) -> int:
        """Akana's name for :attr:`offset`."""
        return self.offset

    @property
    def next_start(self) -> int | None:
        """Akana's name for :attr:`next_offset`."""
        return self.next_offset


@attrs.frozen(slots=True)
class Quota:
    """The Arena request quota as last announced by the server.

    ``remaining`` from ``X-Arena-Requests-Remaining``; ``resets_at`` (aware UTC) from
    ``X-Arena-Next-Request-Limit-Reset`` when it could be parsed; ``limit`` the
    workspace's 24-hour request limit when known (from login).
    """

    remaining: int
    resets_at: datetime | None
    limit: int | None = None


@attrs.frozen(slots=True)
class Outcome(Generic[K, V]):
    """The result of one key of a bulk run: a ``value`` or an ``error``, never both.

    Example::

        async for outcome in arena.bulk(arena.items.tickets.list, guids):
            if outcome.ok: use(outcome.key, outcome.value)
            else: log(outcome.key, outcome.error)
    """

    key: K
    value: V | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """True when the call succeeded."""
        return self.error is None


@attrs.frozen(slots=True)
class Stats:
    """What a client has done so far (a snapshot; read ``client.stats`` again for news).

    ``requests``: attempts sent to the server (each counts against the Arena quota, except
    logins); ``retries``: attempts that were repeats; ``rate_limited``: 429 answers seen
    (quota or not); ``server_errors``: 5xx answers seen; ``transport_errors``: attempts
    that failed on the connection or timed out; ``quota_rejections``: requests refused
    locally because the budget was spent; ``waits`` / ``wait_seconds``: how often and how
    long the limiter and retries waited; ``logins``: logins performed (first and re-logins);
    ``renewals``: session tokens renewed (Akana's ``renewToken``, ahead of the lapse or
    after a 401; always 0 for Arena).
    """

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    quota_rejections: int = 0
    waits: int = 0
    wait_seconds: float = 0.0
    logins: int = 0
    renewals: int = 0
