"""Offset/limit (Arena) and start/count (Akana) pages as async generators over a fetch.

Neither server sends a total: a listing ends at the first page shorter than asked for
(an empty page when the total is a multiple of the page size). ``max_items`` shrinks the
last request so no record is fetched only to be dropped.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import TypeVar

from .errors import ArenaAsyncError
from .models.common import Page

__all__ = ["paginate", "records"]

T = TypeVar("T")

Fetch = Callable[[int, int], Awaitable[list[T]]]


async def paginate(
    fetch: Fetch[T], *, page_size: int, offset: int, max_items: int | None,
    position: str = "offset",
) -> AsyncGenerator[Page[T], None]:
    """Yield pages from ``fetch(offset, limit)`` until a short page or ``max_items``.

    A failure is re-raised with ``resume_from`` set to the offset of the page that failed
    (and, past offset 0, a note saying so), so a job can resume without loss or duplicates.
    """
    taken = 0
    while True:
        limit = page_size if max_items is None else min(page_size, max_items - taken)
        if limit <= 0:
            return
        try:
            items = await fetch(offset, limit)
        except ArenaAsyncError as exc:
            exc.resume_from = offset
            if offset > 0:  # at 0 (a refused login, say) there is nothing to resume after
                exc.add_note(f"the listing stopped at {position}={offset}; "
                             f"pass {position}={offset} to resume")
            raise
        if len(items) > limit:  # a server that ignores the limit: keep position exact
            items = items[:limit]
        taken += len(items)
        last = len(items) < limit
        yield Page(items, offset, None if last else offset + len(items))
        if last:
            return
        offset += len(items)


async def records(pages: AsyncGenerator[Page[T], None]) -> AsyncIterator[T]:
    """Flatten pages into their records."""
    async with aclosing(pages):
        async for page in pages:
            for item in page.items:
                yield item
