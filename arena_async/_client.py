"""What both clients share: lifecycle, bulk, quota and stats, and the checks of the
arguments only a client takes (URLs, policies, sessions, hooks; numbers: ``_checks``)."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from types import TracebackType
from typing import Self, TypeVar
from urllib.parse import urlsplit

import aiohttp

from ._checks import check_one_token
from ._transport import Transport
from .bulk import BulkRun
from .models.common import Quota, Stats
from .policies import RetryPolicy

__all__ = ["BaseClient", "check_base_url", "check_retry", "check_session", "check_test_hooks",
           "check_trace_configs"]

K = TypeVar("K")
V = TypeVar("V")


def check_base_url(base_url: object, *, allow_insecure: bool, name: str = "base_url") -> str:
    """An http(s) URL with a host, without spaces or control characters; plain http only to
    loopback unless ``allow_insecure``."""
    if not isinstance(base_url, str):
        raise ValueError(f"{name} must be a string, got {type(base_url).__name__}")
    # Before parsing: urlsplit silently drops tabs and newlines (and keeps other controls).
    check_one_token(name, base_url)
    parts = urlsplit(base_url)
    if parts.username or parts.password:
        # Never echo it: the URL holds a secret.
        raise ValueError(f"{name} must not carry credentials (user:password@)")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{name} must be an http(s) URL with a host, got {base_url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"{name} must not carry a query or a fragment")
    try:
        parts.port  # noqa: B018 - out of range raises here, not at the first request
        parts.hostname.encode("idna")
    except (ValueError, UnicodeError) as exc:
        raise ValueError(f"{name} {base_url!r} has a bad host or port: {exc}") from None
    if parts.scheme == "http" and not allow_insecure and not _is_loopback(parts.hostname):
        raise ValueError(
            f"{name} {base_url!r} is plain http to a non-loopback host: credentials would "
            "travel unencrypted; use https, or pass allow_insecure=True"
        )
    return base_url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_retry(value: object) -> RetryPolicy:
    """None → the default policy; otherwise it must be a RetryPolicy."""
    if value is None:
        return RetryPolicy()
    if not isinstance(value, RetryPolicy):
        raise ValueError(f"retry must be a RetryPolicy or None, got {type(value).__name__}")
    return value


def check_session(value: object) -> aiohttp.ClientSession | None:
    """None or a caller-owned aiohttp session."""
    if value is not None and not isinstance(value, aiohttp.ClientSession):
        raise ValueError(f"session must be an aiohttp.ClientSession or None, got "
                         f"{type(value).__name__}")
    return value


def check_trace_configs(value: object, session: object) -> list[aiohttp.TraceConfig]:
    """None or a list (any iterable) of ``aiohttp.TraceConfig``, for the client's own
    session: refused with a caller's ``session`` (give them to that session)."""
    if value is None:
        return []
    if isinstance(value, aiohttp.TraceConfig | str | bytes) or not isinstance(value, Iterable):
        raise ValueError(f"trace_configs must be a list of aiohttp.TraceConfig or None, got "
                         f"{type(value).__name__}")
    configs = list(value)
    for config in configs:
        if not isinstance(config, aiohttp.TraceConfig):
            raise ValueError(f"trace_configs must hold aiohttp.TraceConfig objects, got "
                             f"{type(config).__name__}")
    if configs and session is not None:
        raise ValueError("trace_configs go to the client's own aiohttp session; with "
                         "session= give them to that session instead "
                         "(aiohttp.ClientSession(trace_configs=[...]))")
    return configs


Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class BaseClient:
    """Lifecycle and the shared surface of :class:`ArenaClient` and :class:`AkanaClient`."""

    _transport: Transport
    max_concurrency: int

    async def open(self) -> Self:
        """Open the client (create the aiohttp session). ``async with`` does this for you."""
        await self._transport.open()
        return self

    async def close(self) -> None:
        """End the server session if we opened it and close our aiohttp session.

        Idempotent; a caller-owned ``session`` is left open.
        """
        await self._transport.close()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    @property
    def stats(self) -> Stats:
        """Counters of what this client has done (requests, retries, 429s, waits, logins)."""
        return self._transport.stats

    @property
    def quota(self) -> Quota | None:
        """The latest quota the server announced, or None before the first answer."""
        return self._transport.quota

    def bulk(self, fn: Callable[[K], Awaitable[V]], keys: Iterable[K] | AsyncIterable[K], *,
             ordered: bool = False, concurrency: int | None = None) -> BulkRun[K, V]:
        """Call ``fn(key)`` for every key, at most ``concurrency`` (default
        ``max_concurrency``) at once, streaming an :class:`Outcome` per key.

        Example::

            async for outcome in arena.bulk(arena.items.tickets.list, item_guids):
                print(outcome.key, outcome.value if outcome.ok else outcome.error)
        """
        return BulkRun(fn, keys,
                       concurrency=self.max_concurrency if concurrency is None else concurrency,
                       ordered=ordered)


def check_test_hooks(clock: object, sleep: object, seed: object) -> None:
    """The injectable clock and sleep must be callables; the jitter seed an int or None."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an integer or None, got {seed!r}")
    if clock is not None and not callable(clock):
        raise ValueError("clock must be a callable returning epoch seconds")
    if sleep is not None and not callable(sleep):
        raise ValueError("sleep must be a coroutine function taking seconds")
