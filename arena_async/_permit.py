"""One admitted attempt (:class:`Permit`) and ``async with limiter.slot()`` (:class:`Slot`).

A permit is the :class:`~arena_async._limiter.Limiter`'s record of one admission: the
attempt reports through it what became of it (an answer's quota headers, or that it was
never sent), exactly once; the limiter reads and settles it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from .models.common import Quota

if TYPE_CHECKING:
    from ._limiter import Limiter

__all__ = ["Permit", "Slot"]


class Permit:
    """One admitted attempt; report what became of it exactly once.

    Call :meth:`observe` with the response's quota headers, or :meth:`unsent` when the
    request never reached the server. A permit that did neither by the end of its
    ``async with`` block counts as spent.

    Example::

        async with limiter.slot() as permit:
            try:
                response = await send()
            except ConnectError:
                permit.unsent()
                raise
            permit.observe(parse_quota(response.headers), exhausted=is_quota_429(response))
    """

    __slots__ = ("_limiter", "_probe", "_seq", "_settled")

    def __init__(self, limiter: Limiter, seq: int, probe: bool) -> None:
        self._limiter = limiter
        self._seq = seq
        self._probe = probe
        self._settled = False

    @property
    def probe(self) -> bool:
        """True when this attempt was admitted as the one probe of an unknown quota state."""
        return self._probe

    def observe(self, quota: Quota | None, *, exhausted: bool = False) -> None:
        """Report the quota headers of this attempt's response (None when it had none).

        ``exhausted=True`` when the response was a quota 429 (code 4084/4014).
        """
        if quota is None:
            self._limiter.report(self, None, None, None, exhausted)
        else:
            resets_at = quota.resets_at
            self._limiter.report(self, quota.remaining,
                                 resets_at.timestamp() if resets_at is not None else None,
                                 quota, exhausted)

    def observe_reading(self, remaining: int, resets_at: datetime | None,
                        reset_ts: float | None) -> None:
        """:meth:`observe` for a 2xx answer's quota headers, given as the remaining count and
        the reset time (as a datetime and as epoch seconds): no :class:`Quota` is built
        unless someone reads :attr:`Limiter.quota`."""
        self._limiter.observe_reading(self, remaining, resets_at, reset_ts)

    def unsent(self) -> None:
        """The request never reached the server: give its budget back."""
        self._limiter.end(self, spent=False)

    def __repr__(self) -> str:
        state = "settled" if self._settled else "open"
        return f"<Permit #{self._seq}{' probe' if self._probe else ''} {state}>"


class Slot:
    """``async with limiter.slot()``: a plain class, not an async generator, because it
    runs for every request (an @asynccontextmanager costs a generator per use)."""

    __slots__ = ("_limiter", "_permit")

    def __init__(self, limiter: Limiter) -> None:
        self._limiter = limiter
        self._permit: Permit | None = None

    async def __aenter__(self) -> Permit:
        limiter = self._limiter
        permit = limiter.admit_now()
        self._permit = permit if permit is not None else await limiter.acquire()
        return self._permit

    async def __aexit__(self, *exc_info: object) -> None:
        permit, self._permit = self._permit, None
        if permit is not None:
            self._limiter.release(permit)
