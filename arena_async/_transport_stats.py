"""What a :class:`~arena_async._transport.Transport` counts, and the :class:`Stats` it reports.

The pool counts its own events here (attempts sent, retries, answers by kind, logins); the
limiter counts its own waits and refusals (:class:`~arena_async._limiter.LimiterStats`).
:meth:`TransportCounters.snapshot` adds the two into the public :class:`Stats`.
"""

from __future__ import annotations

import attrs

from ._limiter import LimiterStats
from .models.common import Stats

__all__ = ["TransportCounters"]


@attrs.define(slots=True)
class TransportCounters:
    """The pool's running counts (mutable; the pool's hot path adds to ``requests``
    directly).

    Example::

        counters = TransportCounters()
        counters.answered(503)
        counters.retried(0.5)
        assert counters.snapshot(LimiterStats()).server_errors == 1
    """

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    waits: int = 0
    wait_seconds: float = 0.0
    logins: int = 0
    renewals: int = 0
    # The answer cache's (cache=): it adds to these itself.
    cache_hits: int = 0
    cache_misses: int = 0
    cache_stale: int = 0

    def answered(self, status: int) -> None:
        """Count an answer other than a 2xx: a 429 (quota or not) or a 5xx."""
        if status == 429:
            self.rate_limited += 1
        elif status >= 500:
            self.server_errors += 1

    def failed(self) -> None:
        """Count an attempt that brought no answer (connection error or timeout)."""
        self.transport_errors += 1

    def retried(self, delay: float) -> None:
        """Count a retry and the wait of ``delay`` seconds before it (a replay after a
        re-login or a quota wait is not a retry, and is not counted here)."""
        self.retries += 1
        self.waits += 1
        self.wait_seconds += delay

    def snapshot(self, limiter: LimiterStats) -> Stats:
        """These counts and the limiter's (its waits and quota refusals), as one
        :class:`Stats`."""
        return Stats(
            requests=self.requests,
            retries=self.retries,
            rate_limited=self.rate_limited,
            server_errors=self.server_errors,
            transport_errors=self.transport_errors,
            quota_rejections=limiter.quota_rejections,
            waits=self.waits + limiter.waits,
            wait_seconds=self.wait_seconds + limiter.wait_seconds,
            logins=self.logins,
            renewals=self.renewals,
            cache_hits=self.cache_hits,
            cache_misses=self.cache_misses,
            cache_stale=self.cache_stale,
        )
