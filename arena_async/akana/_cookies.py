"""Akana's cookie jar: the token and CSRF cookies read from ``Set-Cookie``, sent back as
headers (pure: no I/O).

Since 8.0 the platform hands its token out only as cookies: ``AtmoAuthToken_{tenant}``
and, with CSRF prevention on, ``Csrf-Token_{tenant}``. The pool's aiohttp session stores
no cookies (a ``DummyCookieJar``; aiohttp's default jar would drop cookies of IP hosts
such as 127.0.0.1, and a caller-owned session's jar is not relied on), so the auth keeps
its own jar (a dict, cookie name -> value): only those two cookies, sent back as a
``Cookie`` header. The jar is scoped to the client's own host by construction: the client
only ever talks to ``base_url``'s host, so neither ``Domain`` nor ``Path`` attributes are
consulted. Every request carries ``X-Csrf-Token_{tenant}`` with the CSRF cookie's value
copied as is (it is URL-encoded and must not be decoded) whenever one is held.
"""

from __future__ import annotations

import contextlib
import email.utils
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from urllib.parse import unquote

from multidict import MultiMapping

from ..errors import ErrorDetail, LoginError

__all__ = [
    "AUTH_COOKIE_PREFIX",
    "CSRF_COOKIE_PREFIX",
    "CSRF_HEADER_PREFIX",
    "headers_for",
    "login_jar",
    "parse_set_cookie",
    "renew_jar",
    "set_cookies",
    "token_times",
]

AUTH_COOKIE_PREFIX = "AtmoAuthToken_"
CSRF_COOKIE_PREFIX = "Csrf-Token_"
CSRF_HEADER_PREFIX = "X-Csrf-Token_"

LOGIN_PATH = "/api/login"

#: A cookie as read: ``(name, value, deleted)``.
Cookie = tuple[str, str, bool]


def parse_set_cookie(header: str, now: datetime) -> Cookie | None:
    """``(name, value, deleted)`` of one ``Set-Cookie`` header, or None if unreadable.

    The value is kept exactly as sent (URL-encoded, quotes included if any): it goes back
    unchanged in the ``Cookie`` header and, for the CSRF cookie, in the CSRF header.
    ``deleted`` is True for an empty value, ``Max-Age<=0`` or an ``Expires`` before ``now``.

    Example: ``parse_set_cookie("Csrf-Token_acme=a%3D1; Path=/", now)`` is
    ``("Csrf-Token_acme", "a%3D1", False)``.
    """
    first, _, rest = header.partition(";")
    name, eq, value = first.partition("=")
    name, value = name.strip(), value.strip()
    if not eq or not name:
        return None
    deleted = value == ""
    for attribute in rest.split(";"):
        key, _, arg = attribute.partition("=")
        key, arg = key.strip().lower(), arg.strip()
        if key == "max-age":
            with contextlib.suppress(ValueError):
                deleted = deleted or int(arg) <= 0
        elif key == "expires":
            try:
                expires = email.utils.parsedate_to_datetime(arg)
            except (TypeError, ValueError, IndexError):
                continue
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=now.tzinfo)
            deleted = deleted or expires <= now
    return name, value, deleted


def set_cookies(headers: Mapping[str, str], now: datetime) -> Iterator[Cookie]:
    """Every well-formed ``Set-Cookie`` of a response's headers, parsed."""
    if isinstance(headers, MultiMapping):
        raw = [str(h) for h in headers.getall("Set-Cookie", [])]
    else:
        one = headers.get("Set-Cookie")
        raw = [one] if one else []
    for header in raw:
        parsed = parse_set_cookie(header, now)
        if parsed is not None:
            yield parsed


def headers_for(jar: Mapping[str, str], tenant: str | None) -> dict[str, str]:
    """The ``Cookie`` header of ``jar`` and, when a CSRF cookie is held, the CSRF header."""
    headers = {"Cookie": "; ".join(f"{name}={value}" for name, value in jar.items())}
    csrf = jar.get(CSRF_COOKIE_PREFIX + tenant) if tenant else None
    if csrf is not None and tenant is not None:
        headers[CSRF_HEADER_PREFIX + tenant] = csrf
    return headers


def login_jar(cookies: Iterable[Cookie], tenant: str | None, login_domain_id: str | None,
              *, status: int) -> tuple[str, dict[str, str]]:
    """The tenant and the jar (its token and CSRF cookies) of a login's ``cookies``.

    A ``tenant`` not given is learned: the suffix of ``login_domain_id`` when a token cookie
    has it (or none was set), else the one tenant a token cookie was set for. A given
    tenant no token cookie is for, or several tenants to choose from, raise
    :class:`LoginError` (``status``: the login's). The jar may lack the token: the caller
    says what that means.
    """
    tokens: dict[str, str] = {}  # tenant -> value
    csrfs: dict[str, str] = {}
    for name, value, deleted in cookies:
        for prefix, bucket in ((AUTH_COOKIE_PREFIX, tokens), (CSRF_COOKIE_PREFIX, csrfs)):
            if len(name) > len(prefix) and name[:len(prefix)].lower() == prefix.lower():
                suffix = name[len(prefix):]
                if deleted:
                    bucket.pop(suffix, None)
                else:
                    bucket[suffix] = value
    if tenant is None:
        tenant = _learn_tenant(tokens, login_domain_id)
    elif tokens and tenant not in tokens:
        raise LoginError(status, [ErrorDetail(None, (
            f"the login set token cookies for tenant {', '.join(sorted(tokens))}, not "
            f"for tenant={tenant!r}"))], method="POST", url=LOGIN_PATH)
    jar: dict[str, str] = {}
    for bucket, prefix in ((tokens, AUTH_COOKIE_PREFIX), (csrfs, CSRF_COOKIE_PREFIX)):
        if tenant in bucket:
            jar[prefix + tenant] = bucket[tenant]
    return tenant, jar


def _learn_tenant(tokens: Mapping[str, str], login_domain_id: str | None) -> str:
    domain = login_domain_id or ""
    hint = domain.rsplit(".", 1)[-1] if "." in domain else None
    if hint and (hint in tokens or not tokens):
        return hint
    if len(tokens) == 1:
        return next(iter(tokens))
    if not tokens:
        raise LoginError(200, [ErrorDetail(None, (
            f"the login was accepted but set no {AUTH_COOKIE_PREFIX}<tenant> cookie (is "
            "base_url the root of an Akana 8+ portal?)"))], method="POST", url=LOGIN_PATH)
    raise LoginError(200, [ErrorDetail(None, (
        f"the login set token cookies for several tenants ({', '.join(sorted(tokens))}): "
        "pass tenant= to choose"))], method="POST", url=LOGIN_PATH)


def renew_jar(jar: dict[str, str], cookies: Iterable[Cookie], tenant: str) -> None:
    """Update ``jar`` in place with a renewal's ``cookies`` for ``tenant``: new values
    replace ours; a deleted CSRF cookie is dropped, a deleted token never (a renewal does
    not end the session)."""
    wanted = {(AUTH_COOKIE_PREFIX + tenant).lower(): AUTH_COOKIE_PREFIX + tenant,
              (CSRF_COOKIE_PREFIX + tenant).lower(): CSRF_COOKIE_PREFIX + tenant}
    for name, value, deleted in cookies:
        key = wanted.get(name.lower())
        if key is None:
            continue
        if deleted:
            if key.startswith(CSRF_COOKIE_PREFIX):
                jar.pop(key, None)
        else:
            jar[key] = value


def token_times(value: str) -> tuple[datetime | None, datetime] | None:
    """``(issued, expires)`` read from a token cookie's value, when it says: the platform's
    token is URL-encoded ``TokenID=...,issueTime=<epoch ms>,expirationTime=<epoch ms>,...``
    (field names read case-insensitively). None when there is no readable
    ``expirationTime``; ``issued`` None when there is no readable ``issueTime``. The value
    is opaque otherwise: nothing else is read from it.

    Example: ``token_times("TokenID%3Dx%2CexpirationTime%3D1700000000000")`` is
    ``(None, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC))``.
    """
    fields: dict[str, datetime] = {}
    for part in unquote(value).split(","):
        key, eq, number = part.partition("=")
        key = key.strip().lower()
        if eq and key in ("issuetime", "expirationtime") and number.strip().isdigit():
            try:
                fields[key] = datetime.fromtimestamp(int(number) / 1000, UTC)
            except (OverflowError, OSError, ValueError):
                continue
    expires = fields.get("expirationtime")
    if expires is None:
        return None
    return fields.get("issuetime"), expires
