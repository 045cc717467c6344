"""One admitted attempt (:class:`Permit`) and ``async with limiter.slot()`` (:class:`Slot`).

A permit is the :class:`~arena_async._limiter.Limiter`'s record of one admission: a plain
record, reported through the limiter exactly once (:meth:`Limiter.observe
<arena_async._limiter.Limiter.observe>` with an answer's quota headers,
:meth:`Limiter.end <arena_async._limiter.Limiter.end>` when there was no answer), which
settles it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._limiter import Limiter

__all__ = ["Permit", "Slot"]


class Permit:
    """One admitted attempt: its admission number, whether it is the probe of an unknown
    quota state, and whether the limiter has settled it (heard what became of it).

    Report it through its limiter, once: ``limiter.observe(permit, quota)`` with the
    response's quota headers, or ``limiter.end(permit, spent=False)`` when the request
    never reached the server. A permit that was neither by the end of its ``async with``
    block counts as spent.

    Example::

        async with limiter.slot() as permit:
            try:
                response = await send()
            except ConnectError:
                limiter.end(permit, spent=False)
                raise
            limiter.observe(permit, parse_quota(response.headers),
                            exhausted=is_quota_429(response))
    """

    __slots__ = ("probe", "seq", "settled")

    def __init__(self, seq: int, probe: bool) -> None:
        #: The admission's number (the estimate orders readings by it).
        self.seq: int = seq
        #: True when admitted as the one probe of an unknown quota state.
        self.probe: bool = probe
        #: Set by the limiter once it knows what became of the attempt.
        self.settled: bool = False

    def __repr__(self) -> str:
        state = "settled" if self.settled else "open"
        return f"<Permit #{self.seq}{' probe' if self.probe else ''} {state}>"


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
