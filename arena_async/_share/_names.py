"""The item number -> GUID map in the share, so no process asks again for a number another
already resolved.

The map is split over :data:`SHARDS` documents by a hash of the number (a lookup of 300
numbers touches at most that many small documents, never one large one). Each entry is
``number: [guid or null, expires_at]`` in share time; the pure steps below read the fresh
entries and write new ones, dropping the expired and, past ``max_entries`` per shard, those
that expire first. A number found to have no item is remembered too, for a shorter time
(:data:`MISSING_TTL`): long enough that the workers of one job do not each ask again, short
enough that an item created since is found by the next run.

Example::

    names = SharedNames(link.share, "names:" + scope, opener=link.ensure_open)
    known = await names.get(["PN-1", "PN-2"])   # {number: (guid or None, seconds left)}
    await names.put({"PN-3": "GUID3", "PN-4": None})
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final

from ..errors import ShareUnavailableError
from ._base import Share
from ._state import Doc, Now, Step

__all__ = ["FOUND_TTL", "MISSING_TTL", "SHARDS", "SharedNames", "lookup_step", "remember_step"]

# Under the item lookups' logger: what a user reads there is about looking numbers up.
log = logging.getLogger("arena_async.arena.items")

#: Seconds a resolved number is reused (item numbers rarely move to another item).
FOUND_TTL: Final = 86400.0
#: Seconds a number found to have no item is remembered.
MISSING_TTL: Final = 600.0
#: Documents the map is split over.
SHARDS: Final = 16
#: Entries kept per document at most (so :data:`SHARDS` times that in the map).
MAX_ENTRIES: Final = 4096

Answer = tuple[str | None, float]


def shard_of(number: str) -> int:
    """The document that holds ``number`` (stable across processes and machines)."""
    return hashlib.sha256(number.encode()).digest()[0] % SHARDS


def _entries(doc: Doc | None, now: float) -> dict[str, list[Any]]:
    raw = (doc or {}).get("n")
    if not isinstance(raw, dict):
        return {}
    kept: dict[str, list[Any]] = {}
    for number, entry in raw.items():
        if (isinstance(entry, list) and len(entry) == 2
                and (entry[0] is None or isinstance(entry[0], str))
                and isinstance(entry[1], int | float) and entry[1] > now):
            kept[number] = entry
    return kept


def lookup_step(numbers: Iterable[str]) -> Step[dict[str, Answer]]:
    """Read the fresh entries of ``numbers``: ``{number: (guid or None, seconds left)}``.
    Expired entries are dropped from the document on the way."""
    wanted = list(numbers)

    def step(doc: Doc | None, at: Now) -> tuple[Doc | None, dict[str, Answer]]:
        now = at.wall  # expiries of a day: a clock step of minutes is no matter
        entries = _entries(doc, now)
        found = {n: (entries[n][0], float(entries[n][1]) - now) for n in wanted if n in entries}
        if doc is not None and len(entries) == len(doc.get("n") or {}):
            return doc, found  # nothing expired: unchanged, so nothing is written
        return ({"n": entries} if entries else None), found

    return step


def remember_step(answers: Mapping[str, str | None], *, found_ttl: float = FOUND_TTL,
                  missing_ttl: float = MISSING_TTL,
                  max_entries: int = MAX_ENTRIES) -> Step[None]:
    """Write ``answers`` (None: no item has that number) with their expiry; keep at most
    ``max_entries``, dropping those that expire first."""
    given = dict(answers)

    def step(doc: Doc | None, at: Now) -> tuple[Doc | None, None]:
        now = at.wall
        entries = _entries(doc, now)
        for number, guid in given.items():
            entries[number] = [guid, now + (found_ttl if guid is not None else missing_ttl)]
        if len(entries) > max_entries:
            ordered = sorted(entries.items(), key=lambda kv: kv[1][1], reverse=True)
            entries = dict(ordered[:max_entries])
        return {"n": entries}, None

    return step


class SharedNames:
    """The number -> GUID map of one workspace in a :class:`~arena_async.Share`.

    ``key`` scopes the map (one per base URL and workspace); ``opener`` opens the share
    before its first use (the client's :meth:`ShareLink.ensure_open`). A share that cannot
    be reached never fails a lookup: :meth:`get` answers nothing and :meth:`put` keeps
    nothing (one WARNING until it works again), and the lookups go to Arena.

    Example::

        names = SharedNames(share, "names:abc", opener=link.ensure_open)
        await names.put({"PN-1": "GUID1"})
        assert (await names.get(["PN-1"]))["PN-1"][0] == "GUID1"
    """

    def __init__(self, share: Share, key: str, *,
                 opener: Callable[[], Awaitable[None]] | None = None,
                 found_ttl: float = FOUND_TTL, missing_ttl: float = MISSING_TTL,
                 max_entries: int = MAX_ENTRIES) -> None:
        self.share = share
        self.key = key
        self.found_ttl = found_ttl
        self.missing_ttl = missing_ttl
        self.max_entries = max_entries
        self._opener = opener
        self._failing = False

    def __repr__(self) -> str:
        return f"<SharedNames {self.share.name} {self.key}>"

    def _shards(self, numbers: Iterable[str]) -> dict[int, list[str]]:
        shards: dict[int, list[str]] = {}
        for number in numbers:
            shards.setdefault(shard_of(number), []).append(number)
        return shards

    async def _all(self, steps: list[tuple[int, Step[Any]]]) -> list[Any]:
        """Each step's result, in order; None for a step the share could not take."""
        results: list[Any]
        try:
            if self._opener is not None:
                await self._opener()
            results = list(await asyncio.gather(
                *(self.share.update(f"{self.key}:{shard}", step) for shard, step in steps),
                return_exceptions=True))
        except ShareUnavailableError as exc:
            results = [exc] * len(steps)
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures:
            if not isinstance(failure, ShareUnavailableError):
                raise failure
        if failures:
            if not self._failing:
                log.warning("item number lookups go to Arena without the share: %s",
                            failures[0])
            self._failing = True
        elif self._failing:
            log.warning("item number lookups use the share %s again", self.share.name)
            self._failing = False
        return [None if isinstance(r, BaseException) else r for r in results]

    async def get(self, numbers: Iterable[str]) -> dict[str, Answer]:
        """The fresh entries of ``numbers``: ``{number: (guid or None, seconds left)}``."""
        shards = self._shards(numbers)
        if not shards:
            return {}
        results = await self._all([(s, lookup_step(ns)) for s, ns in shards.items()])
        found: dict[str, Answer] = {}
        for part in results:
            found.update(part or {})
        return found

    async def put(self, answers: Mapping[str, str | None]) -> None:
        """Remember ``answers`` for every sharer (None: no item has that number)."""
        shards = self._shards(answers)
        if not shards:
            return
        await self._all([
            (s, remember_step({n: answers[n] for n in ns}, found_ttl=self.found_ttl,
                              missing_ttl=self.missing_ttl, max_entries=self.max_entries))
            for s, ns in shards.items()])
