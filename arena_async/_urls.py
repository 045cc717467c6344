"""URLs as the wire sees them: segments encoded once, origins parsed once.

A :class:`BaseURL` parses its base (``scheme://authority/prefix``) once; each
:class:`~arena_async._protocol.Request` built on it (``Request.on``) carries its
wire URL (``target``: the parsed origin with the encoded path set on it), so the pool hands
aiohttp a ``yarl.URL`` without parsing any string. A request given only a ``str`` URL goes
through :class:`WireURLs` (an origin cache) or :func:`wire_url`.

Percent-encoding is kept exactly as built: given a ``str``, yarl re-quotes the path and
decodes escapes of characters a path may hold, so an id's ``%3B`` would go out as ``;``,
which servlet containers read as the start of a path parameter (``/items/ABC;x/tickets``
means item ``ABC`` there).
"""

from __future__ import annotations

import re
from urllib.parse import quote

import yarl

__all__ = ["BaseURL", "WireURLs", "build_url", "encode_segments", "wire_url"]

_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")  # needs no percent-encoding
_UNRESERVED_PATH = re.compile(r"[A-Za-z0-9_.~/-]+")
#: A URL made only of RFC 3986 characters ('%' included; see _BAD_ESCAPE).
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
#: A '%' that does not start an escape.
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
#: A path (no query, no fragment) made only of RFC 3986 characters.
_PATH_CHARS = re.compile(r"/[A-Za-z0-9\-._~:/@!$&'()*+,;=%]*")


def encode_segments(segments: tuple[str, ...]) -> str:
    """The segments joined by ``/``, each percent-encoded whole (a ``/`` in one included).

    Example: ``encode_segments(("items", "a/b"))`` is ``"items/a%2Fb"``."""
    tail = "/".join(segments)
    # The common case in one look: every segment unreserved (and none holding a '/').
    if not _UNRESERVED_PATH.fullmatch(tail) or tail.count("/") != len(segments) - 1:
        tail = "/".join(segment if _UNRESERVED.fullmatch(segment) else quote(segment, safe="")
                        for segment in segments)
    return tail


def build_url(base_url: str, *segments: str) -> str:
    """Join path segments onto a base URL, percent-encoding each segment whole.

    Segments are appended (never replacing the base path, unlike a leading ``/``).
    Example: ``build_url("https://h/v1", "items", "a:b")`` is ``"https://h/v1/items/a%3Ab"``.
    """
    return f"{base_url.rstrip('/')}/{encode_segments(segments)}"


def _encoded(text: str) -> bool:
    return _URL_CHARS.fullmatch(text) is not None and (
        "%" not in text or _BAD_ESCAPE.search(text) is None)


def wire_url(url: str) -> str | yarl.URL:
    """The URL to hand to aiohttp, its percent-encoding kept exactly as built.

    An already encoded URL is marked so; anything else is left to yarl.
    Example: ``str(wire_url("http://h/items/A%3Bx"))`` is ``"http://h/items/A%3Bx"``.
    """
    if _encoded(url):
        return yarl.URL(url, encoded=True)
    return url


class BaseURL:
    """A base URL parsed once; requests built on it carry their wire URL.

    Example::

        base = BaseURL("https://api.arenasolutions.com/v1")
        url, target = base.join("items", guid, "tickets")
        # url: 'https://api.arenasolutions.com/v1/items/<guid>/tickets' (text);
        # target: the same as a yarl.URL, nothing re-parsed
        request = Request.on(base, "GET", "items", guid, "tickets")  # carries both

    A base that is not already a plain encoded ``scheme://authority/path`` (a query, a
    fragment, characters to encode) gives requests no ``target``: the pool then reads
    their ``url`` as any other.
    """

    __slots__ = ("_origin", "_prefix", "text")

    def __init__(self, base_url: str) -> None:
        self.text: str = base_url.rstrip("/")
        self._origin: yarl.URL | None = None
        self._prefix = ""
        scheme_end = self.text.find("://")
        if scheme_end <= 0 or not _encoded(self.text) or "?" in self.text \
                or "#" in self.text:
            return
        cut = self.text.find("/", scheme_end + 3)
        origin_text, prefix = (self.text, "") if cut < 0 else (self.text[:cut],
                                                                  self.text[cut:])
        origin = yarl.URL(origin_text, encoded=True)
        if origin.raw_path not in ("", "/") or not origin.absolute:
            return
        self._origin = origin
        self._prefix = prefix

    def __repr__(self) -> str:
        return f"BaseURL({self.text!r})"

    def join(self, *segments: str) -> tuple[str, yarl.URL | None]:
        """The URL of ``segments`` under this base, as text and (when the base is plain)
        as the parsed wire URL."""
        tail = encode_segments(segments)
        origin = self._origin
        target = None if origin is None else origin.with_path(f"{self._prefix}/{tail}",
                                                              encoded=True)
        return f"{self.text}/{tail}", target


class WireURLs:
    """:func:`wire_url`, with each origin (``scheme://authority``) parsed once: an encoded
    path is set on the cached origin (``with_path(encoded=True)``, the same URL), which
    costs yarl a third of parsing the whole URL again. At most 16 origins are kept.

    Example: ``WireURLs()("http://h:1/items/A")`` is ``yarl.URL("http://h:1/items/A")``.
    """

    __slots__ = ("_origins",)

    def __init__(self) -> None:
        self._origins: dict[str, yarl.URL] = {}

    def __call__(self, url: str) -> str | yarl.URL:
        scheme_end = url.find("://")
        cut = url.find("/", scheme_end + 3) if scheme_end > 0 else -1
        if cut > 0:
            path = url[cut:]
            if _PATH_CHARS.fullmatch(path) and ("%" not in path
                                                 or _BAD_ESCAPE.search(path) is None):
                origin_text = url[:cut]
                origin = self._origins.get(origin_text)
                if origin is None and len(self._origins) < 16 and _encoded(origin_text) \
                        and "?" not in origin_text and "#" not in origin_text:
                    origin = self._origins[origin_text] = yarl.URL(origin_text, encoded=True)
                if origin is not None:
                    return origin.with_path(path, encoded=True)
        return wire_url(url)

