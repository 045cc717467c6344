"""What the caller can learn of the answers it got: :class:`AnswerInfo`, per task.

``with arena.cache_info() as info:`` puts a collector in a context variable; every answer a
client gives inside the block (in this task, and in the tasks started inside it, which copy
the context) is counted into it. Blocks nest: an answer counts in every block open around it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

import attrs

__all__ = ["AnswerInfo", "collect", "record"]


@attrs.define(slots=True)
class AnswerInfo:
    """Where the answers received inside ``with arena.cache_info() as info:`` came from.

    ``answers``: how many answers the client gave inside the block (a listing of several
    pages gives one per page); ``cached``: how many of them came from the cache, without a
    request (fresh or stale); ``age``: seconds since the oldest of them was fetched from
    Arena (0.0 when every answer is new); ``stale``: whether any is older than the cache's
    ``ttl``, served because Arena could not answer. :attr:`from_cache`: every answer came
    from the cache. Read it after the block (or during it, for the answers so far).

    Example::

        with arena.cache_info() as info:
            refs = await arena.items.tickets.list(item_guid)
        if info.from_cache:
            headers["Age"] = str(int(info.age))
        if info.stale:
            headers["Warning"] = '110 - "Response is Stale"'
    """

    answers: int = 0
    cached: int = 0
    age: float = 0.0
    stale: bool = False

    @property
    def from_cache(self) -> bool:
        """True when there was at least one answer and every one came from the cache."""
        return self.answers > 0 and self.cached == self.answers

    def add(self, *, cached: bool, age: float, stale: bool) -> None:
        """Count one answer."""
        self.answers += 1
        if cached:
            self.cached += 1
        self.age = max(self.age, age)
        self.stale = self.stale or stale


#: The open blocks of this context: (the cache they watch, their AnswerInfo).
_OPEN: ContextVar[tuple[tuple[object, AnswerInfo], ...]] = ContextVar(
    "arena_async_answer_info", default=())


@contextlib.contextmanager
def collect(owner: object) -> Iterator[AnswerInfo]:
    """A block that counts the answers of ``owner`` (a client's cache) given inside it."""
    info = AnswerInfo()
    token = _OPEN.set((*_OPEN.get(), (owner, info)))
    try:
        yield info
    finally:
        _OPEN.reset(token)


def record(owner: object, *, cached: bool, age: float, stale: bool) -> None:
    """Count one answer of ``owner`` in every block open around it."""
    for watched, info in _OPEN.get():
        if watched is owner:
            info.add(cached=cached, age=age, stale=stale)
