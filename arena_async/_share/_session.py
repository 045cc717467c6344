"""A sharer's side of the shared session: adopt the published one, or log in under the lease."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable

import attrs

from ..errors import APIError, ErrorDetail, LoginError
from ._base import Share
from ._seal import Seal
from ._state import (
    Doc,
    Held,
    Now,
    acquire_step,
    extend_step,
    heartbeat_step,
    leave_step,
    publish_step,
    release_step,
)

__all__ = ["Credential", "SharedSession"]

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

#: Seconds nobody retries credentials the server refused (Arena locks an account for five
#: minutes after repeated failures).
REFUSED_FOR = 300.0


@attrs.frozen(slots=True)
class Credential:
    """A session id or OAuth token; ``version`` in the share; ``expires_in`` seconds or None."""

    token: str = attrs.field(repr=False)
    version: int
    expires_in: float | None = None
    gen: int = 0


def _forget_refusal(doc: Doc | None, now: Now) -> tuple[Doc | None, None]:
    """The step that drops a remembered refusal of other credentials."""
    if not doc or doc.get("refused") is None:
        return doc, None
    return {**doc, "refused": None}, None


class SharedSession:
    """One session for every sharer of ``key``.

    :meth:`obtain` returns the published session when it is newer than the one the caller
    saw; otherwise one sharer (the holder of the login lease) logs in and publishes, and the
    others wait for it and adopt. A holder that dies blocks the others at most ``lease_ttl``
    seconds; the holder extends its lease while its login lasts longer. A session is
    published with the generation of the lease it was obtained under (a fencing token): a
    holder stopped past its lease that resumes finds a newer generation and adopts the newer
    session instead of overwriting it.

    If the share loses its document (a new epoch), each sharer puts back its membership and
    the session it holds at its next heartbeat.
    """

    def __init__(self, share: Share, key: str, member: str, *, lease_ttl: float,
                 member_ttl: float, sleep: Sleep, margin: float = 0.0,
                 settle: float = 0.0, seal: Seal | None = None) -> None:
        self.share = share
        self.seal = seal  # the session goes into the share sealed (None: as it is)
        self._foreign_logged = False
        self.key = key
        self.member = member
        self.lease_ttl = lease_ttl
        self.member_ttl = member_ttl
        self.margin = margin
        self.settle = settle
        self._sleep = sleep
        self.joined: bool = False
        self.epoch: str | None = None  # the document's, as last seen
        self._held: Credential | None = None
        self._held_sealed = ""  # the held token as the share keeps it (sealed)
        self._held_at = 0.0  # (monotonic) when it was obtained

    def _holding(self) -> Held | None:
        """The session this sharer holds, to re-register it."""
        held = self._held
        if held is None:
            return None
        expires_in = held.expires_in
        if expires_in is not None:
            expires_in -= time.monotonic() - self._held_at
            if expires_in <= 0:
                return None
        return Held(self._held_sealed, held.version, held.gen, expires_in)

    def _hold(self, credential: Credential, *, sealed: str) -> Credential:
        """Hold ``credential``; ``sealed`` is its token as the share keeps it (put back as
        it is if the share loses its state)."""
        self._held, self._held_at, self._held_sealed = credential, time.monotonic(), sealed
        return credential

    async def obtain(self, seen_version: int | None,
                     login: Callable[[], Awaitable[tuple[str, float | None]]]) -> Credential:
        """A session newer than ``seen_version`` (None: any): adopted, or from ``login()``
        (returning the token and its lifetime in seconds or None) under the login lease."""
        poll = 0.02
        held = self._held
        # The session refused, as the share holds it: a session of the same version in a
        # store made again since (a deleted share file) is another one, to adopt.
        seen_token = self._held_sealed if held is not None \
            and held.version == seen_version else None
        if seen_version is not None:
            self.share.recheck()  # decide on the store the share names now
        while True:
            got = await self.share.update(self.key, acquire_step(
                self.member, seen_version, lease_ttl=self.lease_ttl,
                member_ttl=self.member_ttl, margin=self.margin, epoch=self.epoch,
                settle=self.settle, seen_token=seen_token))
            self.joined = True
            self.epoch = got.epoch
            if got.kind == "adopt":
                assert got.token is not None
                token = self._unseal(got.token)
                if token is None:  # sealed with other credentials: log in, publish anew
                    seen_version, seen_token = got.version, got.token
                    continue
                log.debug("adopted the shared session (version %d)", got.version)
                return self._hold(Credential(token, got.version, got.expires_in, got.gen),
                                  sealed=got.token)
            if got.kind == "refused":
                message = got.message if self.seal is None else self.seal.unseal(got.message)
                if message is None:
                    # Refused with other credentials for this user (the message is sealed
                    # with the refused ones): these may be right, so they get their try.
                    log.info("a login with other credentials for this user was refused "
                             "recently; trying these")
                    await self.share.update(self.key, _forget_refusal)
                    continue
                error = LoginError(got.status or 400,
                                   [ErrorDetail(got.code, message)] if message else [],
                                   method="POST", url="/login")
                error.add_note(f"another sharer's login with these credentials was refused; "
                               f"nobody tries them again for {got.wait:.0f} s")
                raise error
            if got.kind == "wait":
                # Real time: the lease runs on the share's clock, not an injected one.
                await asyncio.sleep(min(got.wait, poll) * random.uniform(0.8, 1.2))
                poll = min(poll * 2, 0.25)
                continue
            credential = await self._login_under_lease(login, got.gen)
            if credential is not None:
                return credential
            # Fenced: another sharer took the lease while this one was stopped; its
            # session is the newer (this login's was cancelled by it): adopt it.
            log.info("the login lease passed to another sharer during this login; adopting "
                     "its session")

    async def _login_under_lease(
            self, login: Callable[[], Awaitable[tuple[str, float | None]]],
            gen: int) -> Credential | None:
        extender = asyncio.ensure_future(self._extend(gen))
        try:
            token, expires_in = await login()
        except BaseException as exc:
            extender.cancel()
            refused = isinstance(exc, LoginError) and exc.status in (400, 401, 403)
            status = exc.status if isinstance(exc, APIError) else 0
            code = exc.code if isinstance(exc, APIError) else None
            message = exc.errors[0].message if isinstance(exc, APIError) and exc.errors else ""
            with contextlib.suppress(Exception):
                await asyncio.shield(self.share.update(self.key, release_step(
                    self.member, refused_for=REFUSED_FOR if refused else 0.0, status=status,
                    code=code, message=message if self.seal is None
                    else self.seal.seal(message))))
            raise
        finally:
            extender.cancel()
            await asyncio.wait({extender})
        sealed = token if self.seal is None else self.seal.seal(token)
        published = await self.share.update(self.key, publish_step(
            self.member, sealed, expires_in, gen=gen))
        if published.kind == "fenced":
            return None
        return self._hold(Credential(token, published.version, expires_in, gen), sealed=sealed)

    async def _extend(self, gen: int) -> None:
        while True:
            await asyncio.sleep(self.lease_ttl / 3)
            try:
                if not await self.share.update(self.key, extend_step(self.member,
                                                                     self.lease_ttl, gen)):
                    return
            except Exception as exc:  # the login goes on; the lease may lapse
                log.debug("could not extend the login lease: %s", type(exc).__name__)

    async def heartbeat(self) -> None:
        """Keep this sharer's membership alive (and put back what it holds if the share
        lost it)."""
        if self.joined:
            self.epoch = await self.share.update(self.key, heartbeat_step(
                self.member, self.member_ttl, epoch=self.epoch, settle=self.settle,
                held=self._holding()))

    async def leave(self) -> str | None:
        """Leave; the token to log out when this was the last sharer, else None.

        While the share recovers from a loss of its state, nobody is provably the last:
        this waits (a few seconds, the recovery's length) and decides then."""
        if not self.joined:
            return None
        while True:
            left = await self.share.update(self.key, leave_step(
                self.member, epoch=self.epoch, settle=self.settle, held=self._holding(),
                member_ttl=self.member_ttl))
            if left.kind != "wait":
                break
            log.debug("the share is recovering: waiting %.2f s to leave", left.delay)
            await asyncio.sleep(left.delay)
        self.joined = False
        self._held = None
        if left.kind != "logout" or left.token is None:
            return None
        return self._unseal(left.token)

    def _unseal(self, value: str) -> str | None:
        """The session in a shared value; None (logged, without secrets) when it was sealed
        with other credentials for this user, or altered."""
        if self.seal is None:
            return value
        token = self.seal.unseal(value)
        if token is None:
            log.log(logging.DEBUG if self._foreign_logged else logging.WARNING,
                    "the shared session was sealed with other credentials for this user (a "
                    "password changed, or another program uses this share): this sharer "
                    "does not use it (it logs in and publishes its own when it needs one)")
            self._foreign_logged = True
        return token
