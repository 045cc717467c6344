"""ShareStore: a client's answers in its share (SQLite or Redis), for every process.

The share keeps the bytes; this store encodes them on the way in and decodes them on the
way out (the share's seal, where the share seals), and opens the client's share link first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from .._share import ShareLink
from .._share._answers import Claim, Stored

__all__ = ["Decode", "Encode", "Seal", "ShareStore", "sealed_codec"]

#: Bytes as stored in the share (e.g. sealed) from the wire bytes.
Encode = Callable[[bytes], bytes]
#: The wire bytes from what the share holds; None when they cannot be read (e.g. sealed
#: with other credentials): then the answer counts as absent.
Decode = Callable[[bytes], bytes | None]


def _same(value: bytes) -> bytes:
    return value


class Seal(Protocol):
    """The share's seal: text in, sealed text out, and back (None: not sealed by us)."""

    def seal(self, text: str) -> str: ...

    def unseal(self, text: str) -> str | None: ...


def sealed_codec(seal_of: Callable[[], Seal | None]) -> tuple[Encode, Decode]:
    """``encode`` / ``decode`` that seal the answers with the seal ``seal_of()`` returns
    when they run (the identity while it returns None: a share that does not seal).

    The wire bytes travel as Latin-1 text (every byte one character, so any bytes go
    through unchanged); the sealed text is stored as UTF-8.

    Example: ``encode, decode = sealed_codec(lambda: link.seal)``
    """

    def encode(value: bytes) -> bytes:
        seal = seal_of()
        return value if seal is None else seal.seal(value.decode("latin-1")).encode()

    def decode(value: bytes) -> bytes | None:
        seal = seal_of()
        if seal is None:
            return value
        try:
            text = seal.unseal(value.decode())
            return None if text is None else text.encode("latin-1")
        except (UnicodeError, ValueError):
            return None

    return encode, decode


class ShareStore:
    """The answers of one client in its share, through ``link`` (opened on first use).

    ``encode`` / ``decode`` turn the wire bytes into what the share holds and back (the
    identity by default). Example::

        store = ShareStore(arena.share_link)
        stored, claim = await store.read(key, time.time() - 300, "owner", 10.0)
    """

    shared = True

    def __init__(self, link: ShareLink, *, encode: Encode = _same,
                 decode: Decode = _same) -> None:
        self._link = link
        self._share = link.share
        self._encode = encode
        self._decode = decode

    @property
    def name(self) -> str:
        """The share, for messages."""
        return self._share.name

    @property
    def fill_ttl(self) -> float:
        """Seconds a fill marker lives: as long as a login lease (a dead filler blocks the
        others no longer than a dead login)."""
        return self._share.lease_ttl

    async def read(self, key: str, fresh_since: float, owner: str,
                   fill_ttl: float) -> tuple[Stored | None, Claim]:
        """See :meth:`~arena_async.Share.answer_read`; a value that does not decode is
        absent (and then fetched: ``FILL``)."""
        await self._link.ensure_open()
        stored, claim = await self._share.answer_read(key, fresh_since, owner, fill_ttl)
        if stored is None:
            return None, claim
        value = self._decode(stored.value)
        if value is None:
            return None, Claim.FILL if claim is Claim.FRESH else claim
        return Stored(value, stored.stored_at), claim

    async def write(self, key: str, stored: Stored, *, keep_for: float, tags: Sequence[str],
                    owner: str) -> None:
        """Store an answer (encoded) for ``keep_for`` seconds of the share's clock."""
        await self._link.ensure_open()
        await self._share.answer_write(key, Stored(self._encode(stored.value), stored.stored_at),
                                       keep_for=keep_for, tags=tags, owner=owner)

    async def release(self, key: str, owner: str) -> None:
        """Drop our fill marker of ``key``."""
        await self._link.ensure_open()
        await self._share.answer_release(key, owner)

    async def drop_tags(self, tags: Sequence[str]) -> None:
        """Drop every answer under any of ``tags``, for every sharer."""
        await self._link.ensure_open()
        await self._share.answer_drop_tags(tags)

    async def drop_namespace(self, namespace: str) -> None:
        """Drop every answer of ``namespace``, for every sharer."""
        await self._link.ensure_open()
        await self._share.answer_drop_namespace(namespace)
