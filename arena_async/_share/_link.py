"""One client's link to its share: the shared session, the ledger, and the sync task."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
from collections.abc import Awaitable, Callable

from ..errors import ShareUnavailableError
from ..policies import QuotaPolicy
from ._base import Share
from ._ledger import SharedLedger
from ._seal import Seal
from ._session import SharedSession

__all__ = ["ShareLink"]

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


def _key(*parts: object) -> str:
    text = "\n".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class ShareLink:
    """What one client holds of a share. Opened on first use (the share may be down when
    the client is created), closed with the client."""

    def __init__(self, share: Share, *, base_url: str, identity: str,
                 workspace_id: int | None, policy: QuotaPolicy, max_concurrency: int,
                 sleep: Sleep, secret: str, token_margin: float = 0.0) -> None:
        self.share = share
        self.member: str = f"{os.getpid()}-{secrets.token_hex(6)}"
        #: Seals what this link puts in the share that is a live credential (a key derived
        #: from ``secret``, the password or client secret, salted by the integration).
        self.seal: Seal = Seal(secret, context=f"{base_url}\n{identity}\n{workspace_id}")
        session_key = "session:" + _key(base_url, identity, workspace_id)
        ledger_key = "ledger:" + _key(base_url, workspace_id if workspace_id is not None
                                      else identity)
        self.session: SharedSession = SharedSession(share, session_key, self.member,
                                     lease_ttl=share.lease_ttl, member_ttl=share.member_ttl,
                                     sleep=sleep, margin=token_margin, settle=share.settle,
                                     seal=self.seal)
        self.ledger: SharedLedger = SharedLedger(share, ledger_key, self.member, policy=policy,
                                   # Four rounds of every slot per ask, asked again
                                   # ahead when half is spent: two rounds left cover a
                                   # round trip to a busy share (benchmarks/sharing.py).
                                   batch=min(4 * max_concurrency, 512),
                                   concurrency=max_concurrency,
                                   member_ttl=share.member_ttl, probe_ttl=share.probe_ttl,
                                   sleep=sleep, opener=self.ensure_open,
                                   settle=share.settle)
        self._opened = False
        self._open_lock: asyncio.Lock | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<ShareLink {self.share.name} member {self.member}>"

    async def ensure_open(self) -> None:
        """Open the share (once) and start the sync task."""
        if self._opened:
            return
        if self._closed:
            raise ShareUnavailableError("the client is closed", share=self.share.name)
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if self._opened:
                return
            await asyncio.to_thread(self.seal.prepare)  # the key: once, off the loop
            await self.share.acquire()
            self._opened = True
            self._sync_task = asyncio.ensure_future(self._sync_loop())

    async def _sync_loop(self) -> None:
        task = asyncio.current_task()
        while True:
            if task is not None and task.cancelling():
                # A store client swallowed the cancellation (close() waits for this task).
                raise asyncio.CancelledError
            await asyncio.sleep(self.share.sync_interval)
            try:
                await self.ledger.sync()
                await self.session.heartbeat()
            except ShareUnavailableError as exc:
                # (The share logs an outage once; the next round tries again.)
                log.debug("sync with the share failed: %s", exc)

    async def close(self, logout: Callable[[str], Awaitable[None]]) -> None:
        """Report to the ledger, leave; the last sharer logs out (``logout(token)``)."""
        if self._closed:
            return
        self._closed = True
        task, self._sync_task = self._sync_task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task})  # (a cancellation of close() itself propagates)
        if not self._opened:
            return
        try:
            token = await self.session.leave()
            if token is not None:
                # The logout counts against the workspace's quota: only within the ledger's
                # budget (never the reserve), and reported to it like any request.
                if await self.ledger.try_take():
                    log.info("last sharer of the Arena session: logging out")
                    try:
                        await logout(token)
                    finally:
                        self.ledger.ended(None, None, lost=True)
                else:
                    log.info("not logging out of Arena: the workspace's request budget is "
                             "spent; the session ends by itself after 90 idle minutes")
            await self.ledger.close()
        except ShareUnavailableError as exc:
            # Unreachable for longer than outage_wait: this sharer cannot tell whether it
            # is the last, and logging out a session others still use would cost every
            # one of them a 401 and a login. So no logout: the session ends by itself.
            log.warning("could not leave the share cleanly, so not logging out of Arena "
                        "(other sharers may still use the session; it ends by itself after "
                        "90 idle minutes): %s", exc)
        finally:
            await self.share.release()
