"""User-facing policies: how to retry, how to spend the Arena request quota, and how long to
keep answers."""

from __future__ import annotations

import math
from typing import Literal

import attrs

from ._protocol import TRANSIENT_STATUSES

__all__ = ["CachePolicy", "QuotaPolicy", "RetryPolicy"]


def _positive_int(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an integer >= 1, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value < 0:
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


@attrs.frozen(slots=True)
class RetryPolicy:
    """When and how often a failed request is sent again.

    Idempotent requests (GET, PUT, DELETE) are retried on connection errors, timeouts and
    HTTP 408/425/429 (not a quota 429)/500/502/503/504, up to ``max_attempts`` attempts in
    all. The wait before attempt *n+1* is full jitter: uniform in
    ``[0, min(max_backoff, backoff * 2**(n-1))]``, unless the server sent ``Retry-After``
    (seconds or an HTTP date), which is honoured as given — and, on a 429 or 503, by every
    request of the client, not only the one told (no 429 storm). A ``Retry-After`` longer
    than ``max_backoff`` is not waited out: the error is raised with ``retry_after`` set.
    POST is retried only when the request was never sent (the connection failed before
    it), or always with ``retry_post=True``.

    Example: ``RetryPolicy(max_attempts=6, backoff=1.0)``; ``RetryPolicy(max_attempts=1)``
    turns retries off.
    """

    max_attempts: int = attrs.field(default=4, validator=_positive_int)
    backoff: float = attrs.field(default=0.5, validator=_non_negative)
    max_backoff: float = attrs.field(default=30.0, validator=_non_negative)
    retry_post: bool = False
    retry_statuses: frozenset[int] = TRANSIENT_STATUSES

    def backoff_ceiling(self, attempt: int) -> float:
        """The upper bound of the jittered wait after failed attempt number ``attempt``."""
        return float(min(self.max_backoff, self.backoff * (2 ** max(0, attempt - 1))))


def _on_exhausted(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in ("raise", "wait"):
        raise ValueError(f"on_exhausted must be 'raise' or 'wait', got {value!r}")


def _reserve(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"reserve must be an integer >= 0, got {value!r}")


@attrs.frozen(slots=True)
class QuotaPolicy:
    """How the Arena daily request quota is spent.

    - ``reserve``: never spend the last ``reserve`` requests (leave them for people).
    - ``on_exhausted``: ``"raise"`` fails a request at once with
      :class:`~arena_async.QuotaExhaustedError` when the budget is spent (nothing is sent);
      ``"wait"`` waits for the reset, up to ``max_wait`` seconds, then goes on.
    - ``pace``: spread what is left evenly over the time until the reset, for services that
      share a workspace with batch jobs.

    Example: ``QuotaPolicy(reserve=50, on_exhausted="wait", max_wait=600)``.
    """

    reserve: int = attrs.field(default=0, validator=_reserve)
    on_exhausted: Literal["raise", "wait"] = attrs.field(default="raise", validator=_on_exhausted)
    max_wait: float = attrs.field(default=3600.0, validator=_non_negative)
    pace: bool = False


def _positive_seconds(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"{attribute.name} must be a finite number of seconds > 0, got "
                         f"{value!r}")


@attrs.frozen(slots=True)
class CachePolicy:
    """How long the answers of GET requests are kept, and used, instead of asking again.

    - ``ttl``: seconds an answer is served from the cache without asking Arena (no request,
      no quota spent).
    - ``stale_if_error``: for that many seconds more, an older answer is served instead of
      raising when Arena cannot answer: the quota is spent
      (:class:`~arena_async.QuotaExhaustedError`), or a 5xx, a 429 that is not the quota's,
      or a connection failure persists after the retries. ``0`` (the default) never serves
      an answer older than ``ttl``.
    - ``max_entries`` / ``max_bytes``: the bounds of the in-memory store (used when the
      client has no share); the least recently used answers go first. With a share, the
      answers live in the share and expire there.

    Example: ``ArenaClient(..., cache=CachePolicy(ttl=300.0, stale_if_error=86400.0))``.
    """

    ttl: float = attrs.field(validator=_positive_seconds)
    stale_if_error: float = attrs.field(default=0.0, validator=_non_negative)
    max_entries: int = attrs.field(default=10_000, validator=_positive_int)
    max_bytes: int = attrs.field(default=64 * 1024 * 1024, validator=_positive_int)
