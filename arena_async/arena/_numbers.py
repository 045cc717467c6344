"""Item numbers to GUIDs, in batches: what :meth:`Items.guid_batches` and
:meth:`Items.guids_for` run on.

A number is answered from, in order: this client's memory (answers kept
:data:`~arena_async._share._names.FOUND_TTL` seconds, "no such item"
:data:`~arena_async._share._names.MISSING_TTL`), a lookup already running in this client
(calls at the same time share it), the share's map when the client has a share (so no
process asks again for what another resolved), a lookup running in another process of the
share, and last Arena: ``criteria`` OR groups of exact numbers, as many per request as
:class:`~arena_async.arena._item_query.NumberBatches` fits. A batch that fails after
retries fails its own numbers only.

With a share, the numbers a client is about to ask Arena for are first *claimed* in the
share's map (:meth:`~arena_async._share._names.SharedNames.claim`), in the step that reads
the map. A process that wants numbers another has claimed looks at the map again (after
0.05 s, doubling to 0.5 s, jittered, on the client's ``sleep``) until they are answered, or the
claim is given back (that lookup failed or was cancelled) or expired (its process died):
then it claims and asks them itself. So processes that look up the same numbers at once
ask Arena once. A claim lives ``claim_ttl`` seconds (the client's: twice its request
timeout, at most :data:`CLAIM_TTL`), the longest a dead process holds the others back; a
call renews its claims every third of that while their batches wait or run, so a lookup
of many batches stays single-flight however long it takes. The call's ``deadline`` bounds
the wait as it bounds a wait for a lookup in this client. A share that cannot be reached
claims nothing: the client then asks Arena itself.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, Literal

import attrs

from .._share._names import FOUND_TTL, MISSING_TTL, Claimed, SharedNames
from ..errors import ArenaAsyncError, TransportError, brief_error
from ..models.arena import Item

__all__ = ["GuidBatch", "NumberLookups", "match_numbers"]

log: logging.Logger = logging.getLogger("arena_async.arena.items")

#: Answers kept in one client's memory at most (the oldest go first).
MAX_REMEMBERED: Final = 65536
#: Seconds before the first look again at numbers another process is asking for; each
#: next look waits twice as long, up to :data:`LAST_LOOK`.
FIRST_LOOK: Final = 0.05
LAST_LOOK: Final = 0.5
#: Looks that wait less than this lead (:meth:`SharedNames.claim`): the first two.
LEAD_LOOKS: Final = 0.15
#: Seconds after another process's claim should have expired that it is looked at again.
EXPIRY_MARGIN: Final = 0.02
#: The most seconds a claim lives (a client's: twice its request timeout, a batch's lookup
#: normally ending well before): the longest a process that died mid-lookup holds back the
#: others.
CLAIM_TTL: Final = 120.0

Sleep = Callable[[float], Awaitable[None]]

Source = Literal["memory", "share", "arena"]
#: ``fetch(numbers, deadline, sent)`` -> answers: one batch asked of Arena; it adds 1 to
#: ``sent[0]`` for each request it sends (so a failed batch still says what it spent).
Fetch = Callable[[Sequence[str], float | None, list[int]], Awaitable[dict[str, str | None]]]
Plan = Callable[[Sequence[str]], list[list[str]]]


@attrs.frozen(slots=True)
class GuidBatch:
    """The outcome of one batch of an item-number lookup (:meth:`Items.guid_batches`).

    - ``found``: ``{number: guid or None}`` answered by this batch (None: no item has it).
    - ``failed``: ``{number: error}``: numbers this batch could not look up (after
      retries), with the error; asking again costs requests for these only.
    - ``source``: ``"arena"`` (asked now), ``"memory"`` (this client knew, or another call
      of it was asking) or ``"share"`` (another process had resolved them, or was asking
      and this call waited for its answer).
    - ``requests``: Arena requests the batch sent (one per page, a failed one included;
      retries not counted).

    Example::

        async for batch in arena.items.guid_batches(numbers):
            done += len(batch.numbers)
            save(batch.found)
    """

    found: Mapping[str, str | None] = attrs.field(factory=dict)
    failed: Mapping[str, BaseException] = attrs.field(factory=dict)
    source: Source = "arena"
    requests: int = 0

    @property
    def numbers(self) -> list[str]:
        """Every number of the batch: found, then failed."""
        return [*self.found, *self.failed]

    @property
    def ok(self) -> bool:
        """True when no number of the batch failed."""
        return not self.failed


def match_numbers(asked: Sequence[str], items: Sequence[Item]) -> dict[str, str | None]:
    """The GUID of each asked number among ``items``: the first item listed whose number is
    exactly the one asked, else the first that matches ignoring case; None when none does.
    Several exact matches (revisions, or a workspace that allows duplicate numbers) log a
    warning.

    Example: ``match_numbers(["PN-1"], items)`` is ``{"PN-1": "<guid>"}``.
    """
    exact: dict[str, list[str]] = {}
    folded: dict[str, list[str]] = {}
    for item in items:
        if item.number is None:
            continue
        exact.setdefault(item.number, []).append(item.guid)
        folded.setdefault(item.number.casefold(), []).append(item.guid)
    answers: dict[str, str | None] = {}
    for number in asked:
        guids = exact.get(number) or folded.get(number.casefold()) or []
        if len(guids) > 1:
            log.warning("%d items have number %r; using the first listed (%s)", len(guids),
                        number, guids[0])
        answers[number] = guids[0] if guids else None
    return answers


class NumberLookups:
    """One client's number -> GUID answers and the lookups running for them.

    ``concurrency`` (a callable, read when a lookup starts) bounds the batches one call runs
    at once; ``names`` is the share's map (None without a share); ``clock`` and ``sleep``
    the client's; ``claim_ttl`` how long this client's claims in the share live. Each
    lookup brings its ``plan`` (numbers -> batches) and ``fetch`` (one batch asked of
    Arena).
    """

    def __init__(self, *, concurrency: Callable[[], int],
                 clock: Callable[[], float], names: SharedNames | None = None,
                 sleep: Sleep = asyncio.sleep, claim_ttl: float = CLAIM_TTL,
                 found_ttl: float = FOUND_TTL, missing_ttl: float = MISSING_TTL,
                 max_remembered: int = MAX_REMEMBERED) -> None:
        self._concurrency = concurrency
        self._clock = clock
        self._sleep = sleep
        self.names = names
        self.claim_ttl = claim_ttl
        self.found_ttl = found_ttl
        self.missing_ttl = missing_ttl
        self.max_remembered = max_remembered
        #: number -> (guid or None, expires at on ``clock``)
        self._known: dict[str, tuple[str | None, float]] = {}
        # Numbers being asked now, by any call: the others wait for that batch's answer.
        self._asking: dict[str, asyncio.Event] = {}

    # -- memory ----------------------------------------------------------------------------

    def _fresh(self, numbers: Sequence[str]) -> dict[str, str | None]:
        now = self._clock()
        fresh: dict[str, str | None] = {}
        for number in numbers:
            entry = self._known.get(number)
            if entry is not None:
                if entry[1] > now:
                    fresh[number] = entry[0]
                else:
                    del self._known[number]
        return fresh

    def _remember(self, answers: Mapping[str, str | None],
                  seconds_left: Mapping[str, float] | None = None) -> None:
        now = self._clock()
        known = self._known
        for number, guid in answers.items():
            ttl = self.found_ttl if guid is not None else self.missing_ttl
            if seconds_left is not None and number in seconds_left:
                ttl = min(ttl, seconds_left[number])
            known.pop(number, None)  # re-inserted last: the oldest go first
            known[number] = (guid, now + ttl)
        while len(known) > self.max_remembered:
            del known[next(iter(known))]

    def forget(self) -> None:
        """Drop every answer this client remembers (not the share's)."""
        self._known.clear()

    # -- a lookup --------------------------------------------------------------------------

    async def batches(self, wanted: Sequence[str], *, plan: Plan, fetch: Fetch,
                      deadline: float | None) -> AsyncGenerator[GuidBatch, None]:
        """Answer ``wanted`` (distinct, checked numbers), one :class:`GuidBatch` at a time as
        each completes."""
        known = self._fresh(wanted)
        if known:
            yield GuidBatch(known, source="memory")
        rest = [n for n in wanted if n not in known]
        if rest:
            async for batch in self._ask(rest, plan, fetch, deadline):
                yield batch

    async def _ask(self, numbers: Sequence[str], plan: Plan, fetch: Fetch,
                   deadline: float | None) -> AsyncGenerator[GuidBatch, None]:
        todo: deque[tuple[list[str], asyncio.Event]] = deque()
        # Our batches running (-> GuidBatch) and our waits for other calls' batches
        # (-> None when answered, or the error that ended the wait), with their numbers.
        running: dict[asyncio.Future[GuidBatch], list[str]] = {}
        waiting: dict[asyncio.Future[BaseException | None], list[str]] = {}
        # Our claims in the share (-> what they found; None: the deadline passed first),
        # with their numbers, their event here, when the wait for another process ends
        # (None: not waiting yet) and the pause before the next look.
        claiming: dict[asyncio.Future[Claimed | None],
                       tuple[list[str], asyncio.Event, float | None, float]] = {}
        limit = max(1, self._concurrency())
        names = self.names
        renewal: asyncio.Task[None] | None = None

        def held() -> list[str]:
            """The numbers of this call's batches that wait or run: claimed by it."""
            return [n for batch, _ in todo for n in batch] + [
                n for future, batch in running.items() if not future.done() for n in batch]

        def ours(mine: Sequence[str]) -> None:
            """Numbers this call asks Arena for: batches to run."""
            nonlocal renewal
            for batch in plan(mine):
                event = asyncio.Event()
                for number in batch:
                    self._asking[number] = event
                todo.append((batch, event))
            if names is not None and renewal is None:
                renewal = asyncio.ensure_future(self._renew(held))

        def claim(some: Sequence[str]) -> dict[str, str | None]:
            """Claim the numbers nobody is asking; wait for the others; answer the known."""
            resolved = self._fresh(some)
            mine: list[str] = []
            others: dict[asyncio.Event, list[str]] = {}
            for number in some:
                if number in resolved:
                    continue
                event = self._asking.get(number)
                if event is None:
                    mine.append(number)
                else:
                    others.setdefault(event, []).append(number)
            if mine and names is not None:
                # Claimed here first (the other calls of this client wait for this one),
                # then in the share (the other processes wait for this client).
                event = asyncio.Event()
                for number in mine:
                    self._asking[number] = event
                look = asyncio.ensure_future(self._claim(mine, 0.0, None, True))
                claiming[look] = (mine, event, None, FIRST_LOOK)
            elif mine:
                ours(mine)
            for event, theirs in others.items():
                waiting[asyncio.ensure_future(self._wait(event, deadline))] = theirs
            return resolved

        def claimed(done: asyncio.Future[Claimed | None]) -> tuple[GuidBatch | None,
                                                                    GuidBatch | None]:
            """What a claim in the share found: (answers, numbers that waited too long)."""
            asked, event, until, pause = claiming.pop(done)
            try:
                result = done.result()
            except BaseException:
                self._release(asked, event)
                raise
            shared = failed = None
            if result is None:  # the deadline passed while the share was slow to answer
                self._release(asked, event)
                return None, GuidBatch(failed=dict.fromkeys(asked, _too_late("process")),
                                       source="share")
            if result.found:
                answers = {n: a[0] for n, a in result.found.items()}
                self._remember(answers, {n: a[1] for n, a in result.found.items()})
                shared = GuidBatch(answers, source="share")
            if result.mine:
                ours(result.mine)
            theirs = [n for n in asked if n in result.theirs]
            if theirs:
                # Another process is asking: look again (backing off) until it answered,
                # gave its claim back or the claim expired (then ours), or the deadline.
                now = self._clock()
                if until is None and deadline is not None:
                    until = now + deadline
                if until is not None and now >= until:
                    failed = GuidBatch(failed=dict.fromkeys(theirs, _too_late("process")),
                                       source="share")
                    self._release(asked, event)
                    return shared, failed
                later = asyncio.Event()
                for number in theirs:
                    self._asking[number] = later
                soonest = min(result.theirs[n] for n in theirs)
                # (jittered: processes that wait alike look at different moments, so that
                # one of them, not each, takes what a claim that ended leaves)
                wait = min(pause * random.uniform(0.8, 1.2), max(soonest, 0.0) + EXPIRY_MARGIN)
                # The first looks lead too: the process that leads may still be claiming
                # the rest (a busy share); past them, what nobody claimed is claimed.
                look = self._claim(theirs, wait, until, pause < LEAD_LOOKS)
                claiming[asyncio.ensure_future(look)] = (theirs, later, until,
                                                        min(pause * 2, LAST_LOOK))
            self._release(asked, event)  # the answered; the others point elsewhere now
            return shared, failed

        try:
            resolved = claim(numbers)
            if resolved:
                yield GuidBatch(resolved, source="memory")
            while todo or running or waiting or claiming:
                while todo and len(running) < limit:
                    batch, event = todo.popleft()
                    running[asyncio.ensure_future(self._run(batch, event, fetch, deadline))] = batch
                watched: set[asyncio.Future[Any]] = {*running, *waiting, *claiming}
                await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                for looked in [f for f in claiming if f.done()]:
                    for outcome in claimed(looked):
                        if outcome is not None:
                            yield outcome
                for done in [f for f in running if f.done()]:
                    del running[done]
                    yield done.result()
                for waited in [f for f in waiting if f.done()]:
                    theirs = waiting.pop(waited)
                    error = waited.result()
                    if error is not None:
                        yield GuidBatch(failed=dict.fromkeys(theirs, error), source="memory")
                        continue
                    # Answered, or (that batch failed or was cancelled) ours to ask now.
                    resolved = claim(theirs)
                    if resolved:
                        yield GuidBatch(resolved, source="memory")
        finally:
            pending: list[asyncio.Future[Any]] = [*running, *waiting, *claiming]
            if renewal is not None:
                pending.append(renewal)
            for future in pending:
                future.cancel()
            if pending:
                await asyncio.wait(pending)
            given_back: list[str] = []
            for batch, event in todo:  # claimed, never started
                self._release(batch, event)
                given_back.extend(batch)
            for asked, event, _, _ in claiming.values():  # perhaps claimed in the share
                self._release(asked, event)
                given_back.extend(asked)
            if given_back:
                await self._give_back(given_back)

    def _release(self, batch: Sequence[str], event: asyncio.Event) -> None:
        for number in batch:
            if self._asking.get(number) is event:
                del self._asking[number]
        event.set()  # the waiters look again: answered, or theirs to ask

    async def _claim(self, numbers: list[str], pause: float, until: float | None,
                     lead: bool) -> Claimed | None:
        """Claim ``numbers`` in the share after ``pause`` seconds (``lead``: see
        :meth:`SharedNames.claim`); None when ``until`` (on the client's clock) passes
        first."""
        assert self.names is not None
        if until is not None:
            pause = min(pause, max(0.0, until - self._clock()))
        if pause > 0:
            await self._sleep(pause)
        if until is None:
            return await self.names.claim(numbers, ttl=self.claim_ttl, lead=lead)
        try:
            # (a share slow to answer must not hold the call much past its deadline)
            async with asyncio.timeout(max(until - self._clock(), 0.0) + EXPIRY_MARGIN):
                return await self.names.claim(numbers, ttl=self.claim_ttl, lead=lead)
        except TimeoutError:
            return None

    async def _renew(self, held: Callable[[], list[str]]) -> None:
        """Renew this client's claims of the numbers ``held()`` names, every third of
        ``claim_ttl``, until cancelled (the call ends): a lookup of many batches outlives one
        claim's life, and the last batches must not be asked again by another process.
        A claim that lapsed meanwhile (this process stalled) is taken again if nobody else
        took it. (Real seconds: claims expire on the share's clock, not on the client's.)"""
        assert self.names is not None
        while True:
            await asyncio.sleep(self.claim_ttl / 3)
            numbers = held()
            if not numbers:
                continue
            try:
                await self.names.claim(numbers, ttl=self.claim_ttl)
                # A batch that failed meanwhile gave its claims back (its future is done):
                # given back again, as this renewal may have landed after.
                ended = set(numbers).difference(held())
                if ended:
                    await self.names.release(ended)
            except Exception as exc:  # (best effort: the next renewal tries again)
                log.debug("could not renew claims of %d item numbers: %s", len(numbers),
                          brief_error(exc))

    async def _give_back(self, numbers: Sequence[str]) -> None:
        """Give this client's claims of ``numbers`` back to the share, so that another
        process waiting for them asks now (else it waits until they expire)."""
        if self.names is None:
            return
        try:
            await self.names.release(numbers)
        except Exception as exc:  # (best effort: the claims expire anyway)
            log.debug("could not give back claims of %d item numbers: %s", len(numbers),
                      brief_error(exc))

    async def _run(self, batch: list[str], event: asyncio.Event, fetch: Fetch,
                   deadline: float | None) -> GuidBatch:
        sent = [0]
        try:
            try:
                answers = await fetch(batch, deadline, sent)
            except ArenaAsyncError as exc:
                log.warning("looking up %d item numbers (%r...) failed: %s", len(batch),
                            batch[0], brief_error(exc))
                await self._give_back(batch)
                return GuidBatch(failed=dict.fromkeys(batch, exc), source="arena",
                                 requests=sent[0])
            except asyncio.CancelledError:
                await self._give_back(batch)
                raise
            self._remember(answers)
        finally:
            self._release(batch, event)
        if self.names is not None:
            await self.names.put(answers)  # (and their claims cleared)
        return GuidBatch(answers, source="arena", requests=sent[0])

    @staticmethod
    async def _wait(event: asyncio.Event, deadline: float | None) -> BaseException | None:
        try:
            async with asyncio.timeout(deadline):
                await event.wait()
        except TimeoutError:
            return _too_late("call")
        return None


def _too_late(who: str) -> TransportError:
    """The error of numbers whose wait for another call's or process's lookup outlasted the
    call's deadline."""
    return TransportError(f"the deadline passed while another {who} looked up these item "
                          "numbers", method="GET", url="/items")
