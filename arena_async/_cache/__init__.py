"""The answer cache (``cache=``): GET answers kept ``ttl`` seconds, in the client's share
when it has one (every process reuses them), in its own memory otherwise.

:func:`build_cache` makes a client's cache; :class:`AnswerCache` is the one the resources
ask; :class:`AnswerInfo` tells a caller where its answers came from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from .._share import ShareLink
from .._transport import Transport
from ..policies import CachePolicy
from ._answers import AnswerCache, Store, can_serve_stale, log
from ._info import AnswerInfo
from ._keys import namespace
from ._memory import MemoryStore
from ._shared import Decode, Encode, ShareStore, sealed_codec

__all__ = ["AnswerCache", "AnswerInfo", "MemoryStore", "ShareStore", "build_cache",
           "can_serve_stale", "cache_identity", "check_cache", "sealed_codec"]

#: Seconds a fill marker lives in a store without a lease of its own (never shared).
_LOCAL_FILL_TTL = 10.0


def check_cache(value: object) -> CachePolicy | None:
    """``cache=`` as given: None or a :class:`CachePolicy`."""
    if value is not None and not isinstance(value, CachePolicy):
        raise ValueError(f"cache must be a CachePolicy or None, got {type(value).__name__} "
                         "(e.g. cache=CachePolicy(ttl=300.0))")
    return value


def cache_identity(email: str | None, client_id: str | None, session_id: str | None) -> str:
    """Who asks, for the cache's namespace: the user, the OAuth client, or (a given session
    alone) a hash of the session id, never the id itself."""
    if client_id is not None:
        return f"oauth:{client_id}"
    if email is not None:
        return f"user:{email}"
    digest = hashlib.sha256((session_id or "").encode()).hexdigest()[:16]
    return f"session:{digest}"


def build_cache(policy: CachePolicy | None, *, pool: Transport, link: ShareLink | None,
                base_url: str, identity: str, workspace_id: int | None,
                clock: Callable[[], float]) -> AnswerCache | None:
    """A client's answer cache (None without a policy): in ``link``'s share when the share
    keeps answers, in memory otherwise; attached to ``pool`` for the resources to ask."""
    if policy is None:
        return None
    store: Store
    fill_ttl = _LOCAL_FILL_TTL
    if link is not None and link.share.keeps_answers:
        encode: Encode
        decode: Decode
        # The answers in the share are sealed with the link's seal (a key derived from the
        # credentials), like the session: a reader of the store learns nothing from them.
        encode, decode = sealed_codec(lambda: link.seal)
        shared = ShareStore(link, encode=encode, decode=decode)
        store, fill_ttl = shared, shared.fill_ttl
    else:
        if link is not None:
            log.warning("share %s does not keep cached answers: this client caches in its "
                        "own memory", link.share.name)
        store = MemoryStore(max_entries=policy.max_entries, max_bytes=policy.max_bytes,
                            clock=clock)
    cache = AnswerCache(policy, store, namespace=namespace(base_url, identity, workspace_id),
                        counters=pool.counters, clock=clock, fill_ttl=fill_ttl,
                        ready=lambda: pool.session)
    pool.answer_cache = cache
    return cache
