"""MemoryStore: one client's answers in its own memory, bounded by entries and bytes (LRU)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import attrs

from .._share._answers import Claim, Stored

__all__ = ["MemoryStore"]


@attrs.define(slots=True)
class _Entry:
    stored: Stored
    keep_until: float
    tags: tuple[str, ...]
    size: int


class MemoryStore:
    """Answers kept in this process for one client, at most ``max_entries`` of them and about
    ``max_bytes`` of values (keys and values counted); the least recently used go first, and
    an answer larger than the whole bound is not kept. Expiry runs on ``clock`` (the
    client's). There is nobody to share a fill with: a read that is not fresh is a ``FILL``.

    Example::

        store = MemoryStore(max_entries=100, max_bytes=1 << 20, clock=time.time)
        await store.write("ns:k", Stored(b"{}", time.time()), keep_for=60, tags=(), owner="me")
    """

    shared = False

    def __init__(self, *, max_entries: int, max_bytes: int, clock: Callable[[], float]) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._tags: dict[str, set[str]] = {}
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def read(self, key: str, fresh_since: float, owner: str,
                   fill_ttl: float) -> tuple[Stored | None, Claim]:
        """The answer at ``key`` and whether it is fresh (see :meth:`Share.answer_read`)."""
        entry = self._entries.get(key)
        if entry is None:
            return None, Claim.FILL
        if entry.keep_until < self._clock():
            self._remove(key)
            return None, Claim.FILL
        self._entries.move_to_end(key)
        stored = entry.stored
        return stored, Claim.FRESH if stored.stored_at >= fresh_since else Claim.FILL

    async def write(self, key: str, stored: Stored, *, keep_for: float, tags: Sequence[str],
                    owner: str) -> None:
        """Keep an answer ``keep_for`` seconds, evicting the least recently used beyond the
        bounds."""
        self._remove(key)
        size = len(key) + len(stored.value)
        if size > self.max_bytes:
            return
        self._entries[key] = _Entry(stored, self._clock() + keep_for, tuple(tags), size)
        self.bytes += size
        for tag in tags:
            self._tags.setdefault(tag, set()).add(key)
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            self._remove(next(iter(self._entries)))

    async def release(self, key: str, owner: str) -> None:
        """Nothing to release: no fill marker in memory."""

    async def drop_tags(self, tags: Sequence[str]) -> None:
        """Drop every answer under any of ``tags``."""
        for tag in tags:
            for key in self._tags.pop(tag, ()):
                self._remove(key)

    async def drop_namespace(self, namespace: str) -> None:
        """Drop everything (the store holds one client's namespace only)."""
        self._entries.clear()
        self._tags.clear()
        self.bytes = 0

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self.bytes -= entry.size
        for tag in entry.tags:
            keys = self._tags.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tags[tag]
