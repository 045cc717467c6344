"""What a share keeps of cached answers (``cache=``): blobs that expire, apart from the
one-document-per-key state of :mod:`._state`.

An answer is a value (the wire bytes, encoded by the client: sealed where the share seals)
with the time it was stored; it carries tags (an item it is about) so that every answer
about one item can be dropped at once. A short *fill marker* beside a key says that one
sharer is fetching it: the others wait for its answer instead of asking too, and the marker
expires on its own if that sharer dies.

Keys and tags are opaque strings that start with a namespace and ``:`` (hashes: the share
does not learn which items were asked), so that everything of one namespace can be dropped.
"""

from __future__ import annotations

import enum

import attrs

__all__ = ["Claim", "Stored", "namespace_range"]


class Claim(enum.Enum):
    """What a read of an answer found, and what the reader should do next."""

    #: The answer is fresh: use it.
    FRESH = "fresh"
    #: Not fresh, and this reader now holds the fill marker (or needs none): fetch it.
    FILL = "fill"
    #: Not fresh, and another sharer holds the fill marker: wait for its answer.
    WAIT = "wait"


@attrs.frozen(slots=True)
class Stored:
    """A stored answer: the value as the client encoded it, and when it was stored (the
    storing client's clock, epoch seconds)."""

    value: bytes = attrs.field(repr=False)
    stored_at: float


def namespace_range(namespace: str) -> tuple[str, str]:
    """The bounds ``[low, high)`` of every key and tag of ``namespace`` (``ns:...``)."""
    return namespace + ":", namespace + ";"  # ";" is the character after ":"
