"""Sans-I/O protocol logic: what a request looks like and what a response means.

Nothing here touches a socket: the pool hands in ``(status, headers, body)`` and gets back
a :class:`Verdict`. Every rule about the two servers' answers lives here, so it is tested
without I/O.
"""

from __future__ import annotations

import email.utils
import enum
import functools
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import yarl
from multidict import istr

from ._urls import BaseURL, build_url
from .errors import (
    APIError,
    ErrorDetail,
    QuotaExhaustedError,
    error_for_status,
    excerpt,
)
from .models.common import Quota

__all__ = [
    "QUOTA_CODES",
    "TRANSIENT_STATUSES",
    "Request",
    "Verdict",
    "VerdictKind",
    "BaseURL",
    "build_url",
    "classify",
    "is_transient_status",
    "parse_error_body",
    "parse_quota",
    "parse_reset_date",
    "parse_retry_after",
    "read_quota",
    "validate_id",
]

#: Arena error codes that mean "the daily request quota is spent" (4014 on older servers).
QUOTA_CODES = frozenset({4084, 4014})
REMAINING_HEADER = "X-Arena-Requests-Remaining"
RESET_HEADER = "X-Arena-Next-Request-Limit-Reset"
# The same names as istr: aiohttp's case-insensitive headers look an istr up without
# lower-casing a new string (a plain dict finds it as the str it is).
_REMAINING_KEY = istr(REMAINING_HEADER)
_RESET_KEY = istr(RESET_HEADER)
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
#: Statuses that say "not now" rather than "no": a timeout, too early, too many requests,
#: the server's trouble. :class:`~arena_async.RetryPolicy` retries these by default.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

_FORBIDDEN = re.compile(r"[/?#%\\\s\x00-\x1f\x7f]")


def validate_id(name: str, value: object) -> str:
    """Refuse an id that is not a non-empty string or could change the URL path.

    GUIDs are usually 20 characters of ``[A-Z0-9]`` but the length is not enforced; ``/``,
    ``?``, ``#``, ``%``, backslashes, whitespace, control characters and ``..`` are
    refused, as are ``.`` alone (a dot segment).

    Example: ``validate_id("item_guid", "AB/../logout")`` raises ValueError.
    """
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    if _FORBIDDEN.search(value) or ".." in value or value == ".":
        shown = value if len(value) <= 60 else value[:59] + "…"
        raise ValueError(
            f"{name} must not contain '/', '?', '#', '%', '\\', whitespace or '..': {shown!r}"
        )
    return value


def is_transient_status(status: int,
                        retry_statuses: frozenset[int] = TRANSIENT_STATUSES) -> bool:
    """Whether an answer with this HTTP status may be different if asked again: a status
    the retry policy retries (``retry_statuses``, :data:`TRANSIENT_STATUSES` by default),
    or any 5xx (the server's trouble, never a verdict on the request or the credentials).

    The one rule for a login, a token renewal or an export deciding between "try again"
    and "refused"; a request's own answers are retried by their policy's
    ``retry_statuses`` (:func:`classify`).

    Example: ``is_transient_status(503)`` and ``is_transient_status(501)`` are True,
    ``is_transient_status(404)`` is False; ``is_transient_status(429, frozenset())`` is
    False (a policy that retries no status).
    """
    return status >= 500 or status in retry_statuses


@attrs.frozen(slots=True)
class Request:
    """A request description: what to send, independent of how it is sent.

    ``path`` is the display path used in errors and logs (no host, no secrets);
    ``url`` the full URL; ``auth`` whether it needs the session (login and logout do not:
    they are sent with :meth:`Transport.send_once`, outside admission); ``target``, when
    set, the same URL already parsed (the origin of a :class:`~arena_async._urls.BaseURL`
    with the encoded path set on it), which the pool sends as it is.

    Example: ``Request.on(BaseURL("https://h/v1"), "GET", "items", "A")`` has
    ``url == "https://h/v1/items/A"``, ``path == "/items/A"`` and a ``target``.
    """

    method: str
    url: str
    path: str
    params: Mapping[str, str] | None = None
    # Bodies and headers may hold a password or a token: never in repr.
    json: Any = attrs.field(default=None, repr=False)
    data: bytes | None = attrs.field(default=None, repr=False)
    headers: Mapping[str, str] | None = attrs.field(default=None, repr=False)
    auth: bool = True
    target: yarl.URL | None = attrs.field(default=None, repr=False, eq=False)

    @classmethod
    def on(cls, base: BaseURL, method: str, *segments: str, path: str | None = None,
           params: Mapping[str, str] | None = None, json: Any = None,
           data: bytes | None = None, headers: Mapping[str, str] | None = None,
           auth: bool = True) -> Request:
        """A request for ``segments`` (each percent-encoded whole) under ``base``, carrying
        its parsed wire URL; ``path`` (for messages) defaults to ``/`` + the segments."""
        url, target = base.join(*segments)
        return cls(method, url, "/" + "/".join(segments) if path is None else path,
                   params=params, json=json, data=data, headers=headers, auth=auth,
                   target=target)

    @property
    def idempotent(self) -> bool:
        """True for methods that can be sent twice with the same effect."""
        return self.method in IDEMPOTENT

    @property
    def display(self) -> str:
        """``path?query`` for messages: what was asked, never credentials."""
        if not self.params:
            return self.path
        query = "&".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.path}?{query}"


class VerdictKind(enum.Enum):
    """What the pool should do with a response."""

    OK = "ok"
    RETRY = "retry"
    REAUTH = "reauth"
    QUOTA = "quota"
    FAIL = "fail"


@attrs.frozen(slots=True)
class Verdict:
    """The meaning of one response: its kind, the error to raise, a server-given wait."""

    kind: VerdictKind
    error: BaseException | None = None
    retry_after: float | None = None


_ARENA_DATE = re.compile(
    r"^\s*(?:[A-Za-z]{3},\s*)?(\d{1,2})[- ]([A-Za-z]{3})[- ](\d{4})\s+(\d{1,2}):(\d{2}):(\d{2})"
    r"\s*(?:GMT|UTC)?\s*([+-]\d{2}:?\d{2})?\s*(?:\([^)]*\))?\s*$"
)
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}


def parse_reset_date(value: str | None) -> datetime | None:
    """Parse ``X-Arena-Next-Request-Limit-Reset`` into an aware UTC datetime, or None.

    Accepts the documented form ``Fri, 02-May-2014 14:22:13 GMT-0700 (PDT)``,
    RFC 1123 (``Fri, 02 May 2014 21:22:13 GMT``) and ISO 8601. Anything else → None.
    """
    if not value:
        return None
    text = value.strip()
    match = _ARENA_DATE.match(text)
    if match:
        day, mon, year, hh, mm, ss, offset = match.groups()
        month = _MONTHS.get(mon.lower())
        if month is None:
            return None
        tz = UTC
        if offset:
            digits = offset.replace(":", "")
            minutes = int(digits[1:3]) * 60 + int(digits[3:5])
            tz = timezone(timedelta(minutes=-minutes if digits[0] == "-" else minutes))
        try:
            return datetime(int(year), month, int(day), int(hh), int(mm), int(ss),
                            tzinfo=tz).astimezone(UTC)
        except (ValueError, OverflowError):
            return None
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        parsed = None
    if parsed is None:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00: past datetime's range in UTC
        return None


def parse_quota(headers: Mapping[str, str], limit: int | None = None) -> Quota | None:
    """The quota announced by a response's headers, or None when it carries none.

    An unparsable reset date keeps the count (``resets_at=None``).
    """
    reading = read_quota(headers)
    if reading is None:
        return None
    return Quota(remaining=reading[0], resets_at=reading[1], limit=limit)


# The reset header changes once per quota window: parse each distinct value once.
@functools.lru_cache(maxsize=64)
def _cached_reset(value: str) -> tuple[datetime | None, float | None]:
    when = parse_reset_date(value)
    return when, (when.timestamp() if when is not None else None)


def read_quota(headers: Mapping[str, str],
               ) -> tuple[int, datetime | None, float | None] | None:
    """:func:`parse_quota` without building a :class:`Quota`: ``(remaining, resets_at,
    resets_at as epoch seconds)``, or None when the headers carry no (readable) count."""
    raw = headers.get(_REMAINING_KEY)
    if raw is None:
        return None
    try:
        remaining = int(raw)  # (int() skips surrounding whitespace itself)
    except ValueError:
        return None
    remaining = remaining if remaining > 0 else 0  # (no max(): a builtin call per answer)
    reset = headers.get(_RESET_KEY)
    if reset is None:
        return remaining, None, None
    when, ts = _cached_reset(reset)
    return remaining, when, ts


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - now).total_seconds())
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def parse_error_body(body: bytes) -> list[ErrorDetail]:
    """Error details from a body, tolerating every shape seen; [] when there are none.

    Arena: ``{"status", "errors": [{"code", "message"}]}``. Akana's is undocumented: try
    ``errors`` / ``Errors``, ``{"code", "message"}``, ``{"Error": ...}``, a problem+json
    ``{"type", "title", "status", "detail"}`` (title and detail, either may be missing or
    empty); else nothing (the caller keeps a raw excerpt). Empty texts count as absent.
    """
    try:
        data = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        return []
    return _details(data)


def _details(data: Any) -> list[ErrorDetail]:
    if isinstance(data, list):
        return [d for item in data for d in _details(item)]
    if not isinstance(data, dict):
        return []
    lowered = {str(k).lower(): v for k, v in data.items()}
    for key in ("errors", "error", "fault"):
        if key in lowered and isinstance(lowered[key], list | dict):
            found = _details(lowered[key])
            if found:
                return found
    message = None
    for key in ("message", "errormessage", "description", "detail", "reason"):
        value = lowered.get(key)
        if isinstance(value, str) and value.strip():
            message = value.strip()
            break
    # RFC 9457 problem details: "title" names the problem, "detail" (optional, maybe
    # empty) tells this occurrence; say both, never an empty one.
    title = lowered.get("title")
    if isinstance(title, str) and title.strip():
        title = title.strip()
        if message is None:
            message = title
        elif title.lower() not in message.lower():
            message = f"{title}: {message}"
    code = lowered.get("code", lowered.get("errorcode"))
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if not isinstance(code, int) or isinstance(code, bool):
        code = None
    if message is None:
        # A code alone still tells what happened (a quota 429 is 4084 with or without
        # its message); neither: not an error entry.
        return [] if code is None else [ErrorDetail(code=code, message="")]
    return [ErrorDetail(code=code, message=message)]


def classify(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    request: Request,
    *,
    now: datetime,
    retry_statuses: frozenset[int],
    quota: Quota | None = None,
) -> Verdict:
    """What a response means for the pool: data, retry, re-login, quota, or failure."""
    if 200 <= status < 300:
        return Verdict(VerdictKind.OK)
    details = parse_error_body(body)
    codes = {d.code for d in details}
    if status == 429 and codes & QUOTA_CODES:
        message = details[0].message if details else None
        resets = quota.resets_at if quota else None
        return Verdict(VerdictKind.QUOTA, QuotaExhaustedError(
            0, resets,
            message=f"Arena request quota exhausted (HTTP 429 from {request.method} "
                    f"{request.display}): {message}" if message else None,
            status=429, errors=details))
    retry_after = parse_retry_after(headers.get("Retry-After"), now)
    error_cls = error_for_status(status)
    error = error_cls(status, details, method=request.method, url=request.display,
                      body_excerpt="" if details else excerpt(body), retry_after=retry_after)
    if status == 401 and request.auth:
        return Verdict(VerdictKind.REAUTH, error)
    if status in retry_statuses:
        return Verdict(VerdictKind.RETRY, error, retry_after)
    return Verdict(VerdictKind.FAIL, error)


def with_attempts(error: BaseException, attempts: int) -> BaseException:
    """Return ``error`` re-stated with the number of attempts made (APIError only)."""
    if isinstance(error, APIError) and attempts != error.attempts:
        return type(error)(error.status, error.errors, method=error.method, url=error.url,
                           body_excerpt=error.body_excerpt, attempts=attempts,
                           retry_after=error.retry_after)
    return error
