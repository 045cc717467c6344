"""Sealing: what a share holds that is a live credential, encrypted for the sharers only.

A share file, a backup of it, or the keys of a Redis server can be read by more people than
the integration's credentials. So a session id or an OAuth token goes into the share sealed:
encrypted and authenticated with AES-256-GCM (``cryptography``) under a key derived by
scrypt from the secret every sharer already holds (the password or the OAuth client
secret), salted by what names the integration (base URL, user or client id, workspace).
Whoever reads the store without that secret learns no live session; a sealed value that was
changed, or sealed under another secret, does not open (:meth:`Seal.unseal` gives None).
The secret itself is never stored.

The key is derived once per client (about 50 ms of CPU, on a worker thread when the share
is first opened: :meth:`Seal.prepare`), never per request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

__all__ = ["Seal"]

#: The prefix of every sealed value (the format's version).
PREFIX = "s1."
#: scrypt's cost: 2**14 x 8 x 128 bytes = 16 MiB and about 50 ms once per client, so an
#: offline guess of the secret costs as much (the salt names the integration).
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_NONCE = 12
_AAD = b"arena_async share v1"


class Seal:
    """Seals and opens strings with a key derived from ``secret``, salted by ``context``.

    Two :class:`Seal` objects open each other's values exactly when both were made from the
    same secret and context. ``seal(text) -> str`` (a fresh random nonce each time: sealing
    one text twice gives two values); ``unseal(value) -> str | None`` (None: not sealed by
    this secret and context, or altered).

    Example::

        seal = Seal("the password", context="https://api.example.com/v1\\nme@x\\n123")
        value = seal.seal(session_id)
        assert seal.unseal(value) == session_id
    """

    __slots__ = ("_aead", "_context", "_lock", "_secret")

    def __init__(self, secret: str, *, context: str) -> None:
        if not isinstance(secret, str) or not secret:
            raise ValueError("the seal's secret must be a non-empty string")
        self._secret: bytes | None = secret.encode()
        self._context = context
        self._aead: AESGCM | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "<Seal>"

    def prepare(self) -> None:
        """Derive the key now (once; later calls return at once). Blocking: run it on a
        worker thread from async code (``await asyncio.to_thread(seal.prepare)``)."""
        self._cipher()

    def _cipher(self) -> AESGCM:
        aead = self._aead
        if aead is not None:
            return aead
        with self._lock:
            if self._aead is None:
                assert self._secret is not None
                salt = hashlib.sha256(b"arena_async seal\n" + self._context.encode()).digest()
                key = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R,
                             p=SCRYPT_P).derive(self._secret)
                self._aead = AESGCM(key)
                self._secret = None  # only the derived key is kept
            return self._aead

    def seal(self, text: str) -> str:
        """``text`` encrypted and authenticated (printable ASCII)."""
        nonce = os.urandom(_NONCE)
        sealed = self._cipher().encrypt(nonce, text.encode(), _AAD)
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def unseal(self, value: str) -> str | None:
        """The text ``value`` seals; None when it was not sealed with this secret and
        context, was altered, or is not a sealed value at all."""
        if not isinstance(value, str) or not value.startswith(PREFIX):
            return None
        try:
            raw = base64.urlsafe_b64decode(value[len(PREFIX):].encode("ascii"))
        except (ValueError, binascii.Error):
            return None
        if len(raw) <= _NONCE:
            return None
        try:
            plain = self._cipher().decrypt(raw[:_NONCE], raw[_NONCE:], _AAD)
        except InvalidTag:
            return None
        try:
            return plain.decode()
        except UnicodeDecodeError:
            return None
