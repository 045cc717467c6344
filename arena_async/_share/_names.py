"""The item number -> GUID map in the share, so no process asks again for a number another
already resolved, and no two ask for the same number at the same time.

The map is split over :data:`SHARDS` documents by a hash of the number (a lookup of 300
numbers touches at most that many small documents, never one large one). Each entry is
``number: [guid or null, expires_at]`` in share time; the pure steps below read the fresh
entries and write new ones, dropping the expired and, past ``max_entries`` per shard, those
that expire first. A number found to have no item is remembered too, for a shorter time
(:data:`MISSING_TTL`): long enough that the workers of one job do not each ask again, short
enough that an item created since is found by the next run.

Beside the entries, a document holds *claims* (``"c": {number: [owner, expires_at]}``, on
the share's lease clock): a sharer about to ask Arena for numbers claims them first
(:func:`claim_step`), and another sharer that wants them meanwhile waits for the answer
instead of asking too. A lookup still running keeps its claims alive (claiming them again
renews them); writing the answers (:func:`remember_step`) clears their claims; a lookup that
fails gives its claims back (:func:`release_step`); a claim whose owner died
expires (it lives about one batch's lookup: the claimer's choice, a minute by default) and
is dropped like an expired entry.

Example::

    names = SharedNames(link.share, "names:" + scope, opener=link.ensure_open)
    claimed = await names.claim(["PN-3", "PN-4"], ttl=60.0)
    # claimed.found: answered {number: (guid or None, seconds left)}; claimed.mine: ask
    # Arena now; claimed.theirs: another sharer is asking, wait for its answer
    await names.put({"PN-3": "GUID3", "PN-4": None})  # the answers, and the claims cleared
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Final

import attrs

from ..errors import ShareUnavailableError
from ._base import Share
from ._state import Doc, Now, Step

__all__ = [
    "FOUND_TTL",
    "MISSING_TTL",
    "SHARDS",
    "Claimed",
    "SharedNames",
    "claim_step",
    "lookup_step",
    "release_step",
    "remember_step",
]

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


def _claims(doc: Doc | None, tick: float) -> dict[str, list[Any]]:
    raw = (doc or {}).get("c")
    if not isinstance(raw, dict):
        return {}
    kept: dict[str, list[Any]] = {}
    for number, claim in raw.items():
        if (isinstance(claim, list) and len(claim) == 2 and isinstance(claim[0], str)
                and isinstance(claim[1], int | float) and claim[1] > tick):
            kept[number] = claim
    return kept


def _document(entries: dict[str, list[Any]], claims: dict[str, list[Any]]) -> Doc | None:
    doc: Doc = {}
    if entries:
        doc["n"] = entries
    if claims:
        doc["c"] = claims
    return doc or None


def _unchanged(doc: Doc | None, entries: dict[str, list[Any]],
               claims: dict[str, list[Any]]) -> bool:
    """True when ``doc`` already holds exactly these (nothing expired, nothing added)."""
    if doc is None:
        return not entries and not claims
    return doc.get("n", {}) == entries and doc.get("c", {}) == claims and set(doc) <= {"n", "c"}


def lookup_step(numbers: Iterable[str]) -> Step[dict[str, Answer]]:
    """Read the fresh entries of ``numbers``: ``{number: (guid or None, seconds left)}``.
    Expired entries and claims are dropped from the document on the way."""
    wanted = list(numbers)

    def step(doc: Doc | None, at: Now) -> tuple[Doc | None, dict[str, Answer]]:
        now = at.wall  # expiries of a day: a clock step of minutes is no matter
        entries = _entries(doc, now)
        claims = _claims(doc, at.tick)
        found = {n: (entries[n][0], float(entries[n][1]) - now) for n in wanted if n in entries}
        if _unchanged(doc, entries, claims):
            return doc, found  # nothing expired: unchanged, so nothing is written
        return _document(entries, claims), found

    return step


@attrs.frozen(slots=True)
class Claimed:
    """What a claim of numbers found (:func:`claim_step`, :meth:`SharedNames.claim`).

    - ``found``: ``{number: (guid or None, seconds left)}``: answered already;
    - ``mine``: claimed for the caller now (it asks Arena, then puts or releases them);
    - ``theirs``: ``{number: seconds left}``: another sharer's claim, alive that long.

    Example: ``Claimed(mine=["PN-1"])``.
    """

    found: dict[str, Answer] = attrs.field(factory=dict)
    mine: list[str] = attrs.field(factory=list)
    theirs: dict[str, float] = attrs.field(factory=dict)

    def in_order(self, numbers: list[str]) -> Claimed:
        """This, ``mine`` in the order of ``numbers`` (the batches follow it)."""
        order = {n: i for i, n in enumerate(numbers)}
        self.mine.sort(key=order.__getitem__)
        return self


def claim_step(numbers: Iterable[str], owner: str, ttl: float, *,
               max_claims: int = MAX_ENTRIES) -> Step[Claimed]:
    """Read the fresh entries of ``numbers``; claim for ``owner``, ``ttl`` seconds, those
    neither answered nor claimed by another owner whose claim is alive (``owner``'s own
    claims are renewed); report the others' claims with the seconds they have left. Past
    ``max_claims`` in the document, numbers are still ``owner``'s to ask, unclaimed (a
    very large lookup is not single-flight past that, rather than the document grow)."""
    wanted = list(numbers)

    def step(doc: Doc | None, at: Now) -> tuple[Doc | None, Claimed]:
        now, tick = at.wall, at.tick  # claims live a minute: on the clock leases use
        entries = _entries(doc, now)
        claims = _claims(doc, tick)
        result = Claimed()
        for number in wanted:
            entry = entries.get(number)
            if entry is not None:
                result.found[number] = (entry[0], float(entry[1]) - now)
                continue
            claim = claims.get(number)
            if claim is not None and claim[0] != owner:
                result.theirs[number] = float(claim[1]) - tick
                continue
            if claim is not None or len(claims) < max_claims:
                claims[number] = [owner, tick + ttl]
            result.mine.append(number)
        if _unchanged(doc, entries, claims):
            return doc, result  # nothing claimed, nothing expired: nothing is written
        return _document(entries, claims), result

    return step


def release_step(numbers: Iterable[str], owner: str) -> Step[None]:
    """Drop ``owner``'s claims of ``numbers`` (another owner's stay)."""
    given = list(numbers)

    def step(doc: Doc | None, at: Now) -> tuple[Doc | None, None]:
        entries = _entries(doc, at.wall)
        claims = _claims(doc, at.tick)
        for number in given:
            claim = claims.get(number)
            if claim is not None and claim[0] == owner:
                del claims[number]
        if _unchanged(doc, entries, claims):
            return doc, None
        return _document(entries, claims), None

    return step


def remember_step(answers: Mapping[str, str | None], *, found_ttl: float = FOUND_TTL,
                  missing_ttl: float = MISSING_TTL,
                  max_entries: int = MAX_ENTRIES) -> Step[None]:
    """Write ``answers`` (None: no item has that number) with their expiry, and clear their
    claims (whoever holds them: the answer is what they waited for); keep at most
    ``max_entries``, dropping those that expire first."""
    given = dict(answers)

    def step(doc: Doc | None, at: Now) -> tuple[Doc | None, None]:
        now = at.wall
        entries = _entries(doc, now)
        claims = _claims(doc, at.tick)
        for number, guid in given.items():
            entries[number] = [guid, now + (found_ttl if guid is not None else missing_ttl)]
            claims.pop(number, None)
        if len(entries) > max_entries:
            ordered = sorted(entries.items(), key=lambda kv: kv[1][1], reverse=True)
            entries = dict(ordered[:max_entries])
        return _document(entries, claims), None

    return step


class SharedNames:
    """The number -> GUID map of one workspace in a :class:`~arena_async.Share`.

    ``key`` scopes the map (one per base URL and workspace); ``opener`` opens the share
    before its first use (the client's :meth:`ShareLink.ensure_open`); ``owner`` names this
    sharer's claims (a random name by default; the client gives its share membership). A
    share that cannot be reached never fails a lookup: :meth:`claim` gives the caller
    every number to ask, :meth:`put` and :meth:`release` keep nothing (one WARNING until
    it works again), and the lookups go to Arena.

    Example::

        names = SharedNames(share, "names:abc", opener=link.ensure_open)
        await names.put({"PN-1": "GUID1"})
        assert (await names.claim(["PN-1"], ttl=60.0)).found["PN-1"][0] == "GUID1"
    """

    def __init__(self, share: Share, key: str, *,
                 opener: Callable[[], Awaitable[None]] | None = None,
                 owner: str | None = None,
                 found_ttl: float = FOUND_TTL, missing_ttl: float = MISSING_TTL,
                 max_entries: int = MAX_ENTRIES) -> None:
        self.share = share
        self.key = key
        self.owner: str = owner if owner is not None else secrets.token_hex(8)
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

    async def claim(self, numbers: Iterable[str], *, ttl: float, lead: bool = False) -> Claimed:
        """Claim ``numbers`` for ``ttl`` seconds (:func:`claim_step`): what is answered
        already, what this sharer asks Arena for now, what another sharer is asking for
        (and how long its claim lasts). The numbers of a shard the share could not reach
        are this sharer's to ask.

        ``lead``: the first shard is claimed alone, first; when another sharer holds some
        of its numbers, the other shards are only read, and what nobody answered is
        reported as that sharer's: it is claiming them now (sharers that start one lookup
        at once would otherwise each win some shards, and each ask Arena for a part).
        """
        numbers = list(numbers)
        shards = self._shards(numbers)
        if not shards:
            return Claimed()
        total: Claimed = Claimed()
        if lead and len(shards) > 1:
            first = shards.pop(min(shards))
            part: Claimed | None
            [part] = await self._all([(shard_of(first[0]),
                                       claim_step(first, self.owner, ttl))])
            if part is not None and part.theirs:
                soonest = min(part.theirs.values())
                total = part
                read = await self._all([(s, lookup_step(ns)) for s, ns in shards.items()])
                for shard, found in zip(shards, read, strict=True):
                    total.found.update(found or {})
                    for number in shards[shard]:
                        if found is None:
                            total.mine.append(number)
                        elif number not in found:
                            total.theirs[number] = soonest
                return total.in_order(numbers)
            total = part if part is not None else Claimed(mine=first)
        steps = [(s, claim_step(ns, self.owner, ttl)) for s, ns in shards.items()]
        results = await self._all(steps)
        for (shard, _), result in zip(steps, results, strict=True):
            if result is None:
                total.mine.extend(shards[shard])
                continue
            total.found.update(result.found)
            total.mine.extend(result.mine)
            total.theirs.update(result.theirs)
        return total.in_order(numbers)

    async def release(self, numbers: Iterable[str]) -> None:
        """Give back this sharer's claims of ``numbers`` (their lookup failed or stopped):
        another sharer waiting for them asks now. A share that cannot be reached keeps
        them until they expire."""
        shards = self._shards(numbers)
        if shards:
            await self._all([(s, release_step(ns, self.owner)) for s, ns in shards.items()])

    async def put(self, answers: Mapping[str, str | None]) -> None:
        """Remember ``answers`` for every sharer (None: no item has that number), and clear
        their claims."""
        shards = self._shards(answers)
        if not shards:
            return
        await self._all([
            (s, remember_step({n: answers[n] for n in ns}, found_ttl=self.found_ttl,
                              missing_ttl=self.missing_ttl, max_entries=self.max_entries))
            for s, ns in shards.items()])
