"""Models shared by both clients: pages, quota, bulk outcomes."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, Literal, NoReturn, TypeVar, cast

import attrs

__all__ = ["Failure", "Outcome", "Page", "Quota", "Stats", "Success"]

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")
K_co = TypeVar("K_co", covariant=True)
V_co = TypeVar("V_co", covariant=True)


@attrs.frozen(slots=True)
class Page(Generic[T]):
    """One page of a paginated listing.

    ``offset`` is where this page starts (Arena ``offset``, Akana ``start``);
    ``next_offset`` is where the next page starts, or None when this was the last page.
    ``start`` / ``next_start`` are the same numbers under Akana's names. A listing whose
    length is a multiple of the page size ends with an empty page (the servers give no
    total, so only an empty or short page proves the end).

    Example::

        async for page in arena.items.training_records.pages(item_guid):
            save(page.items); checkpoint(page.next_offset)
    """

    items: list[T]
    offset: int
    next_offset: int | None

    @property
    def start(self) -> int:
        """Akana's name for :attr:`offset`."""
        return self.offset

    @property
    def next_start(self) -> int | None:
        """Akana's name for :attr:`next_offset`."""
        return self.next_offset


@attrs.frozen(slots=True)
class Quota:
    """The Arena request quota as last announced by the server.

    ``remaining`` from ``X-Arena-Requests-Remaining``; ``resets_at`` (aware UTC) from
    ``X-Arena-Next-Request-Limit-Reset`` when it could be parsed; ``limit`` the
    workspace's 24-hour request limit when known (from login).

    Example::

        quota = arena.quota   # None until the first answer
        if quota is not None and quota.remaining < 1000:
            print("quota low until", quota.resets_at)
    """

    remaining: int
    resets_at: datetime | None
    limit: int | None = None


class Outcome(Generic[K_co, V_co]):
    """The result of one key of a bulk run: a ``value`` or an ``error``, never both.

    Every outcome is a :class:`Success` (``ok`` is ``True``, ``value`` holds the call's
    result, ``error`` is ``None``) or a :class:`Failure` (``ok`` is ``False``, ``error``
    holds the exception, ``value`` is ``None``); outcomes are immutable. A bulk run yields
    ``Success[K, V] | Failure[K]``, so a check narrows ``outcome.value`` to ``V`` and
    ``outcome.error`` to ``Exception``: ``if outcome.ok`` under mypy;
    ``isinstance(outcome, Failure)``, ``outcome.ok is False`` or a ``match`` under both
    mypy and pyright (pyright does not narrow on an attribute's truthiness).
    ``Outcome(key, value, error)`` builds whichever of the two fits (``ValueError`` when
    both are given, or an error that is not an ``Exception``).

    Example::

        async for outcome in arena.bulk(arena.items.tickets.list, guids):
            if isinstance(outcome, Failure):
                log(outcome.key, outcome.error)   # error: Exception
            else:
                use(outcome.key, outcome.value)   # value: list[ItemTicketReference]
    """

    __slots__ = ()

    def __new__(cls, key: K_co, value: V_co | None = None,
                error: BaseException | None = None) -> Outcome[K_co, V_co]:
        if cls is not Outcome:
            return super().__new__(cls)
        if error is None:
            return Success(key, cast(V_co, value))  # Outcome(key) is Success(key, None)
        if not isinstance(error, Exception):
            raise ValueError("an Outcome's error must be an Exception, got "
                             f"{type(error).__name__}")
        return Failure(key, value, error)  # type: ignore[arg-type]  # checked there

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    @property
    def key(self) -> K_co:
        """The key the call was made for."""
        raise NotImplementedError

    @property
    def value(self) -> V_co | None:
        """The call's result (``None`` for a failure)."""
        raise NotImplementedError

    @property
    def error(self) -> Exception | None:
        """The exception the call raised (``None`` for a success)."""
        raise NotImplementedError

    @property
    def ok(self) -> bool:
        """True when the call succeeded."""
        raise NotImplementedError


class Success(Outcome[K_co, V_co]):
    """A key whose call returned: ``ok`` is ``True``, ``value`` is the result.

    Example::

        done = Success("GUID1", [ref])   # done.value == [ref]; done.error is None
    """

    __slots__ = ("_key", "_value")
    __match_args__ = ("key", "value")
    _key: K_co
    _value: V_co

    # value defaults to None only so that Outcome(key) keeps working (Success(key, None)).
    def __init__(self, key: K_co, value: V_co = None,  # type: ignore[assignment]
                 error: None = None) -> None:
        if error is not None:
            raise ValueError("an Outcome holds a value or an error, not both")
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_value", value)

    @property
    def key(self) -> K_co:
        """The key the call was made for."""
        return self._key

    @property
    def value(self) -> V_co:
        """The call's result."""
        return self._value

    @property
    def error(self) -> None:
        """Always ``None``."""
        return None

    @property
    def ok(self) -> Literal[True]:
        """Always ``True``."""
        return True

    def __repr__(self) -> str:
        return f"Success(key={self._key!r}, value={self._value!r})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not Success:
            return NotImplemented
        return bool(self._key == other._key and self._value == other._value)

    def __hash__(self) -> int:
        return hash((Success, self._key, self._value))


class Failure(Outcome[K_co, NoReturn]):
    """A key whose call raised: ``ok`` is ``False``, ``error`` is the exception.

    Only ``Exception`` is caught into an outcome (cancellation and ``KeyboardInterrupt``
    propagate), so ``error`` is typed ``Exception``.

    Example::

        failed = Failure("GUID1", error=TimeoutError())   # failed.ok is False
    """

    __slots__ = ("_error", "_key")
    __match_args__ = ("key", "error")
    _key: K_co
    _error: Exception

    def __init__(self, key: K_co, value: None = None,
                 error: Exception | None = None) -> None:
        if value is not None:
            raise ValueError("an Outcome holds a value or an error, not both")
        if not isinstance(error, Exception):
            raise ValueError("a Failure needs error=<an Exception instance>, got "
                             f"{type(error).__name__}")
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_error", error)

    @property
    def key(self) -> K_co:
        """The key the call was made for."""
        return self._key

    @property
    def value(self) -> None:
        """Always ``None``."""
        return None

    @property
    def error(self) -> Exception:
        """The exception the call raised."""
        return self._error

    @property
    def ok(self) -> Literal[False]:
        """Always ``False``."""
        return False

    def __repr__(self) -> str:
        return f"Failure(key={self._key!r}, error={self._error!r})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not Failure:
            return NotImplemented
        return bool(self._key == other._key and self._error == other._error)

    def __hash__(self) -> int:
        return hash((Failure, self._key, self._error))


@attrs.frozen(slots=True)
class Stats:
    """What a client has done so far (a snapshot; read ``client.stats`` again for news).

    ``requests``: attempts sent to the server (each counts against the Arena quota, except
    logins); ``retries``: attempts that were repeats; ``rate_limited``: 429 answers seen
    (quota or not); ``server_errors``: 5xx answers seen; ``transport_errors``: attempts
    that failed on the connection or timed out; ``quota_rejections``: requests refused
    locally because the budget was spent; ``waits`` / ``wait_seconds``: how often and how
    long the limiter and retries made a request wait, summed over every waiting task (16
    tasks held together for one second add 16 seconds, so over a concurrent run
    ``wait_seconds`` can be many times the wall-clock time); ``logins``: logins performed
    (first and re-logins);
    ``renewals``: session tokens renewed (Akana's ``renewToken``, ahead of the lapse or
    after a 401; always 0 for Arena).
    With ``cache=`` (Arena): ``cache_hits``: answers given from the cache without a
    request; ``cache_misses``: answers the cache did not have fresh, so asked of Arena;
    ``cache_stale``: answers older than the cache's ``ttl`` given because Arena could not
    answer (``stale_if_error``).

    Example::

        stats = arena.stats
        print(f"{stats.requests} requests, {stats.retries} retries, {stats.logins} logins")
    """

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    quota_rejections: int = 0
    waits: int = 0
    wait_seconds: float = 0.0
    logins: int = 0
    renewals: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    cache_stale: int = 0
