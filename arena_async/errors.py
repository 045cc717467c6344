"""The exception hierarchy of arena_async.

Every exception the client raises on purpose derives from :class:`ArenaAsyncError`.
HTTP answers that mean failure become an :class:`APIError` subclass chosen by status
first (the servers reuse error codes), then by code (a quota 429 is a
:class:`QuotaExhaustedError`, not a :class:`RateLimitError`).

No message or ``repr`` holds a password, session id, token or cookie: the URL kept on an
error is the path and query the client built, never headers.

Example::

    try:
        await arena.items.tickets.list(item_guid)
    except arena_async.NotFoundError as exc:
        print(exc.status, exc.code, exc.errors)
"""

from __future__ import annotations

import errno
import socket
import ssl
from datetime import datetime
from typing import Any

import aiohttp
import attrs

from ._network import TRUST_FIXES

__all__ = [
    "APIError",
    "ArenaAsyncError",
    "AnswerTooLargeError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "ErrorDetail",
    "LoginError",
    "LookupFailedError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProxyError",
    "QuotaExhaustedError",
    "RateLimitError",
    "ResponseFormatError",
    "ServerError",
    "ShareMisconfiguredError",
    "ShareUnavailableError",
    "TLSCertificateError",
    "TransportError",
    "brief_error",
    "copy_error",
    "error_for_status",
]

#: Longest excerpt of a response body kept on an error.
EXCERPT_LIMIT = 200


def excerpt(body: bytes | str | None, limit: int = EXCERPT_LIMIT) -> str:
    """A short, printable excerpt of a response body for error messages."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@attrs.frozen(slots=True)
class ErrorDetail:
    """One entry of a server's ``errors`` list: a numeric ``code`` and its ``message``.

    Example: ``ErrorDetail(code=3011, message='The guid "X" is not valid.')``
    """

    code: int | None
    message: str


class ArenaAsyncError(Exception):
    """Base class of every error arena_async raises on purpose.

    ``resume_from`` is set when the error stopped a paginated listing: the ``offset``
    (Arena) or ``start`` (Akana) to pass to resume it without losing or repeating a
    record. It is None otherwise.
    """

    resume_from: int | None = None


class APIError(ArenaAsyncError):
    """The server answered with an error status.

    Attributes: ``status`` (HTTP status), ``errors`` (the body's ``errors`` list as
    :class:`ErrorDetail`), ``code`` (the first error's code, or None), ``method`` and
    ``url`` (path and query only), ``body_excerpt`` (a short excerpt of the raw body),
    ``attempts`` (how many times the request was sent).
    """

    def __init__(
        self,
        status: int,
        errors: list[ErrorDetail] | None = None,
        *,
        method: str = "",
        url: str = "",
        body_excerpt: str = "",
        attempts: int = 1,
        retry_after: float | None = None,
    ) -> None:
        self.status: int = status
        self.errors: list[ErrorDetail] = list(errors or [])
        self.method: str = method
        self.url: str = url
        self.body_excerpt: str = body_excerpt
        self.attempts: int = attempts
        self.retry_after: float | None = retry_after
        super().__init__(self._message())

    @property
    def code(self) -> int | None:
        """The first error's code, or None when the body had none."""
        return self.errors[0].code if self.errors else None

    def _message(self) -> str:
        where = f"{self.method} {self.url}".strip()
        parts = [f"HTTP {self.status}"]
        if where:
            parts.append(f"from {where}")
        said = [text for text in (_said(e) for e in self.errors) if text]
        if said:
            parts.append(f"- {'; '.join(said)}")
        elif self.body_excerpt:
            parts.append(f"- body: {self.body_excerpt!r}")
        if self.attempts > 1:
            parts.append(f"(after {self.attempts} attempts)")
        return " ".join(parts)

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_api_error,
            (type(self), self.status, self.errors, self.method, self.url, self.body_excerpt,
             self.attempts, self.retry_after),
        )


def _said(error: ErrorDetail) -> str:
    """One error entry in words: ``3011: The guid ...``, ``code 3011``, the message alone,
    or nothing when it has neither."""
    message = error.message.strip() if isinstance(error.message, str) else ""
    if error.code is None:
        return message
    return f"{error.code}: {message}" if message else f"code {error.code}"


def _rebuild_api_error(  # noqa: PLR0917 - pickle passes these positionally
    cls: type[APIError],
    status: int,
    errors: list[ErrorDetail],
    method: str,
    url: str,
    body_excerpt: str,
    attempts: int,
    retry_after: float | None,
) -> APIError:
    return cls(status, errors, method=method, url=url, body_excerpt=body_excerpt,
               attempts=attempts, retry_after=retry_after)


class BadRequestError(APIError):
    """HTTP 400: the request was refused as malformed or invalid (e.g. code 3011, bad GUID)."""


class AuthenticationError(APIError):
    """HTTP 401: no session, an expired one, or (Akana) a missing CSRF header."""


class LoginError(AuthenticationError):
    """Logging in failed: credentials refused, account locked, password expired, pending tasks.

    Arena answers bad credentials with HTTP 400 and code 4001; the status is kept as sent.
    """


class PermissionDeniedError(APIError):
    """HTTP 403: the session lacks the privilege."""


class NotFoundError(APIError):
    """HTTP 404: no such resource or endpoint (Akana also answers 404 to a wrong Accept)."""


class ConflictError(APIError):
    """HTTP 409: a duplicate, e.g. an item number already in use."""


class RateLimitError(APIError):
    """HTTP 429 that is not the Arena daily quota (that is :class:`QuotaExhaustedError`)."""


class ServerError(APIError):
    """HTTP 5xx after the retries the policy allows."""


class QuotaExhaustedError(ArenaAsyncError):
    """The Arena daily request quota is spent (or down to the reserve).

    Raised before sending when the limiter knows the budget is gone, or from a 429 with
    code 4084/4014. ``remaining`` is the last known count, ``resets_at`` the reset time
    (aware UTC) if known, ``status`` 429 when the server said so, else None.
    """

    def __init__(
        self,
        remaining: int,
        resets_at: datetime | None,
        *,
        message: str | None = None,
        status: int | None = None,
        errors: list[ErrorDetail] | None = None,
    ) -> None:
        self.remaining: int = remaining
        self.resets_at: datetime | None = resets_at
        self.status: int | None = status
        self.errors: list[ErrorDetail] = list(errors or [])
        if message is None:
            when = resets_at.isoformat() if resets_at else "an unknown time"
            message = f"Arena request quota exhausted ({remaining} left); it resets at {when}"
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_quota_error, (self.remaining, self.resets_at, str(self), self.status,
                                       self.errors))


def _rebuild_quota_error(
    remaining: int,
    resets_at: datetime | None,
    message: str,
    status: int | None,
    errors: list[ErrorDetail],
) -> QuotaExhaustedError:
    return QuotaExhaustedError(remaining, resets_at, message=message, status=status, errors=errors)


class TransportError(ArenaAsyncError):
    """The connection failed or an attempt timed out, after the retries the policy allows.

    ``method``, ``url`` (path and query only) and ``attempts`` say what was tried;
    ``reason`` is the message without them, ``brief`` a few words for summaries (e.g.
    ``"connection refused"``, ``"timed out"``).

    Example::

        try:
            await arena.items.tickets.list(item_guid)
        except TransportError as exc:
            print(exc.brief, exc.attempts)   # connection refused 4
    """

    def __init__(self, message: str, *, method: str = "", url: str = "", attempts: int = 1,
                 brief: str | None = None) -> None:
        self.reason: str = message
        self.method: str = method
        self.url: str = url
        self.attempts: int = attempts
        self.brief: str = brief if brief is not None else message
        plural = "s" if attempts != 1 else ""
        where = f" ({method} {url}, {attempts} attempt{plural})" if url else ""
        super().__init__(f"{message}{where}")


class TLSCertificateError(TransportError):
    """The server's TLS certificate was refused: its issuer is not trusted (a private CA, a
    TLS-inspecting proxy, a self-signed certificate), it names another host, or it has
    expired. Never retried: the same certificate would be refused again.

    ``problem`` is what the TLS library said (e.g. ``"self-signed certificate"``,
    ``"unable to get local issuer certificate"``, ``"Hostname mismatch, certificate is not
    valid for 'api.example.com'."``, ``"certificate has expired"``); ``host`` the
    ``host:port`` whose certificate it was. The message says how to fix it (``ssl=`` with
    the CA bundle, ``trust_env=True`` with ``SSL_CERT_FILE``, the ``truststore`` extra).

    Example::

        try:
            await arena.items.tickets.list(item_guid)
        except TLSCertificateError as exc:
            sys.exit(f"{exc.host}: {exc.problem}; see the docs, 'Corporate networks'")
    """

    def __init__(self, message: str, *, problem: str, host: str, method: str = "",
                 url: str = "", attempts: int = 1, brief: str | None = None) -> None:
        self.problem: str = problem
        self.host: str = host
        super().__init__(message, method=method, url=url, attempts=attempts, brief=brief)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_tls_error, (self.reason, self.problem, self.host, self.method,
                                     self.url, self.attempts, self.brief))


def _rebuild_tls_error(  # noqa: PLR0917 - pickle passes these positionally
    message: str, problem: str, host: str, method: str, url: str, attempts: int,
    brief: str,
) -> TLSCertificateError:
    return TLSCertificateError(message, problem=problem, host=host, method=method, url=url,
                               attempts=attempts, brief=brief)


class ProxyError(TransportError):
    """The HTTP proxy (``proxy=``, or ``HTTPS_PROXY`` with ``trust_env=True``) refused the
    request instead of passing it on: ``status`` 407 (its credentials are missing or
    wrong: the user and password in the proxy URL), 403 (it does not allow the
    destination), or 5xx (it could not reach the server). A 4xx is never retried (it
    would be refused again); a 5xx is retried like a connection failure. The proxy's
    password is never in the message.

    Example::

        try:
            await arena.items.tickets.list(item_guid)
        except ProxyError as exc:
            print(exc.status)   # 407
    """

    def __init__(self, message: str, *, status: int, method: str = "", url: str = "",
                 attempts: int = 1, brief: str | None = None) -> None:
        self.status: int = status
        super().__init__(message, method=method, url=url, attempts=attempts, brief=brief)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_proxy_error, (self.reason, self.status, self.method, self.url,
                                       self.attempts, self.brief))


def _rebuild_proxy_error(  # noqa: PLR0917 - pickle passes these positionally
    message: str, status: int, method: str, url: str, attempts: int, brief: str,
) -> ProxyError:
    return ProxyError(message, status=status, method=method, url=url, attempts=attempts,
                      brief=brief)


class ShareUnavailableError(TransportError):
    """The share (``share=``: SQLite file or Redis) could not be reached or used.

    Nothing was sent to Arena for the call that raised it: without the share a sharer cannot
    know the session or the quota the others hold. ``share`` names the share without its
    credentials (e.g. ``redis://cache.internal:6379/0``). Calls work again once it is back.

    Example::

        try:
            refs = await arena.items.tickets.list(item_guid)
        except ShareUnavailableError as exc:
            log.error("share %s down: %s", exc.share, exc)
    """

    def __init__(self, message: str, *, share: str) -> None:
        self.share: str = share
        super().__init__(f"share {share}: {message}", brief=f"share {share} unavailable")


class ShareMisconfiguredError(ShareUnavailableError):
    """The share can never work as configured: a missing folder, a file or folder another
    user owns or can read, a symlink, a wrong Redis password, TLS to a plain server.

    Raised at once (never retried, never waited for) with a hint naming the fix; nothing was
    sent to Arena and nothing was written to the share.

    Example::

        try:
            await arena.items.tickets.list(item_guid)
        except ShareMisconfiguredError as exc:
            sys.exit(f"fix the share: {exc}")
    """


class ResponseFormatError(ArenaAsyncError):
    """The body was not JSON, or JSON of the wrong shape.

    ``path`` names the wire path of the bad value (e.g. ``$.results[3].trainingplan.guid``),
    ``excerpt`` is a short excerpt of the body.
    """

    def __init__(self, message: str, *, path: str = "$", excerpt: str = "", url: str = "") -> None:
        self.path: str = path
        self.excerpt: str = excerpt
        self.url: str = url
        text = f"{message} at {path}"
        if url:
            text += f" (from {url})"
        if excerpt:
            text += f"; body begins {excerpt!r}"
        super().__init__(text)


class AnswerTooLargeError(ResponseFormatError):
    """An answer was larger than the client's ``max_answer_size`` (64 MiB by default).

    The client stopped reading it at the limit (or, when its ``Content-Length`` said so,
    before reading it), so memory stays bounded; it is not retried (the same answer would
    come). ``limit`` is the ``max_answer_size`` in force, ``size`` the size seen: the
    ``Content-Length`` (``declared`` True), or the bytes received when reading stopped.
    Raise ``max_answer_size=`` on the client if answers that large are expected.

    Example::

        try:
            records = await arena.items.training_records.list(item_guid)
        except AnswerTooLargeError as exc:
            print(exc.limit, exc.size, exc.url)
    """

    def __init__(self, *, limit: int, size: int, declared: bool, method: str = "",
                 url: str = "") -> None:
        self.limit: int = limit
        self.size: int = size
        self.declared: bool = declared
        self.method: str = method
        self.path: str = "$"
        self.excerpt: str = ""
        self.url: str = url
        where = f" to {method} {url}" if url else ""
        seen = (f"its Content-Length is {size:,} bytes; not read" if declared
                else f"{size:,} bytes received when reading stopped")
        ArenaAsyncError.__init__(
            self, f"the answer{where} is larger than max_answer_size={limit:,} bytes "
                  f"({seen}); if answers this large are expected, raise max_answer_size= "
                  f"on the client")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_too_large, (self.limit, self.size, self.declared, self.method,
                                     self.url))


def _rebuild_too_large(limit: int, size: int, declared: bool, method: str,
                       url: str) -> AnswerTooLargeError:
    return AnswerTooLargeError(limit=limit, size=size, declared=declared, method=method,
                               url=url)


class LookupFailedError(ArenaAsyncError):
    """Some item numbers could not be looked up (their batch failed after retries); the
    others were.

    ``found``: ``{number: guid or None}`` for every number answered (None: no item has it),
    in the order asked; ``failed``: ``{number: the error of its batch}``. The first error
    is also ``__cause__``. Asking again for ``failed`` costs requests only for those.

    Example::

        try:
            guids = await arena.items.guids_for(numbers)
        except LookupFailedError as exc:
            guids = exc.found
            retry_later = list(exc.failed)
    """

    def __init__(self, found: dict[str, str | None], failed: dict[str, BaseException]) -> None:
        self.found: dict[str, str | None] = found
        self.failed: dict[str, BaseException] = failed
        reasons = list(dict.fromkeys(brief_error(e) for e in failed.values()))
        shown = ", ".join(repr(n) for n in list(failed)[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        super().__init__(
            f"{len(failed)} of {len(found) + len(failed)} item numbers could not be looked up"
            f" ({shown}{more}): {'; '.join(reasons[:3])}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.found, self.failed))


def brief_error(error: BaseException) -> str:
    """An error in a few words for summaries: its class and status or reason, without the
    (possibly very long) URL.

    Example: ``brief_error(ServerError(503))`` is ``"ServerError: HTTP 503"``.
    """
    name = type(error).__name__
    if isinstance(error, APIError):
        code = f" (code {error.code})" if error.code is not None and error.code != error.status \
            else ""
        return f"{name}: HTTP {error.status}{code}"
    if isinstance(error, TransportError):
        return f"{name}: {error.brief}"
    return f"{name}: {excerpt(str(error), 120)}"


def copy_error(error: APIError) -> APIError:
    """A fresh instance of a remembered error: one instance is never raised twice (each
    raise would add to its traceback)."""
    return type(error)(error.status, error.errors, method=error.method, url=error.url,
                       body_excerpt=error.body_excerpt, attempts=error.attempts,
                       retry_after=error.retry_after)


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


def error_for_status(status: int) -> type[APIError]:
    """The :class:`APIError` subclass for an HTTP status (5xx → :class:`ServerError`)."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, APIError)


# -- the words for an attempt that got no answer -------------------------------------------
# Used by the transport and the exchange (not part of the public API): what a connection,
# TLS, proxy or timeout failure said, in a message and in a few words for the attempts note.

def failure_error(what: str, exc: BaseException, *, method: str, url: str,
                  attempts: int = 1) -> TransportError:
    """The error for a request (or login: ``what``) that got no answer: a
    :class:`TLSCertificateError` when the server's certificate was refused, else a
    :class:`TransportError`.

    Example: ``failure_error("login", TimeoutError(), method="POST", url="/login")`` says
    ``login timed out (POST /login, 1 attempt)``."""
    certificate = _certificate_error(exc)
    if certificate is not None:
        assert isinstance(exc, aiohttp.ClientConnectorError)
        problem = certificate.verify_message or certificate.reason or str(certificate)
        return TLSCertificateError(f"{what} {describe_failure(exc)}", problem=problem,
                                   host=f"{exc.host}:{exc.port}", method=method, url=url,
                                   attempts=attempts, brief=brief_failure(exc))
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return ProxyError(f"{what} {describe_failure(exc)}", status=exc.status,
                          method=method, url=url, attempts=attempts, brief=brief_failure(exc))
    return TransportError(f"{what} {describe_failure(exc)}", method=method, url=url,
                          attempts=attempts, brief=brief_failure(exc))


def is_permanent_failure(error: TransportError) -> bool:
    """A failure another try cannot cure: a refused certificate, a proxy's 4xx refusal."""
    return isinstance(error, TLSCertificateError) or (
        isinstance(error, ProxyError) and 400 <= error.status < 500
        and error.status not in (408, 429))


def _certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The TLS library's verdict on a certificate refused while connecting, else None."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        error = exc.certificate_error
        if isinstance(error, ssl.SSLCertVerificationError):
            return error
    return None


#: verify codes of OpenSSL (X509_V_ERR_*): what went wrong with the certificate, and the fix
_HOSTNAME_CODES = frozenset({62, 64})  # hostname / IP address mismatch
_DATE_CODES = frozenset({9, 10})  # not yet valid / expired


def _describe_certificate(exc: aiohttp.ClientConnectorError,
                          error: ssl.SSLCertVerificationError) -> str:
    """What was wrong with a refused certificate and how to fix it."""
    problem = error.verify_message or error.reason or "refused"
    where = f"{exc.host}:{exc.port}"
    code = error.verify_code
    if code in _HOSTNAME_CODES:
        return (f"failed: the TLS certificate of {where} is not valid for that host "
                f"({problem}): use the host name the certificate names in base_url (or "
                "token_url); if a proxy or load balancer presents it, its operator must fix "
                "its certificate")
    if code in _DATE_CODES:
        return (f"failed: the TLS certificate of {where} is refused: {problem}: the "
                "server's operator must renew it (or this machine's clock is wrong)")
    return (f"failed: the TLS certificate of {where} is not trusted ({problem}); if a "
            "private CA or a TLS-inspecting proxy signs it, " + TRUST_FIXES)


class ProxyUnreachable(aiohttp.ClientProxyConnectionError):
    """aiohttp's failure to connect to the proxy, with the setting that named the proxy
    (``proxy=``, or ``HTTPS_PROXY (trust_env=True)``...), for the message. Internal: it
    never leaves the client (the caller gets a :class:`TransportError`)."""

    def __init__(self, failed: aiohttp.ClientProxyConnectionError, setting: str) -> None:
        super().__init__(*failed.args)
        self.setting: str = setting




def describe_failure(exc: BaseException) -> str:
    """A short account of one failed attempt, for messages: never headers or bodies.

    Example: ``describe_failure(TimeoutError())`` is ``"timed out"``."""
    certificate = _certificate_error(exc)
    if certificate is not None:
        assert isinstance(exc, aiohttp.ClientConnectorError)
        return _describe_certificate(exc, certificate)
    if isinstance(exc, APIError):
        return f"HTTP {exc.status}" + (f" (code {exc.code})" if exc.code is not None else "")
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        answer = f"HTTP {exc.status}" + (f" {exc.message}" if exc.message else "")
        if exc.status == 407:
            return (f"failed: the proxy refused its credentials ({answer}): check the user "
                    "name and password in the proxy URL (proxy=, or HTTPS_PROXY with "
                    "trust_env=True)")
        if exc.status == 403:
            return (f"failed: the proxy does not allow this destination ({answer}): ask "
                    "its operator, or exempt the host with NO_PROXY (trust_env=True)")
        return f"failed: the proxy answered {answer} instead of passing the request on"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ArenaAsyncError):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        # Not named by the client: a session given to it (session=) brought its own proxy.
        setting = (exc.setting if isinstance(exc, ProxyUnreachable)
                   else "the settings of the session given to the client")
        return (f"failed: cannot connect to the proxy {exc.host}:{exc.port} named by {setting}: "
                f"{_os_words(exc.os_error, exc.os_error.strerror or 'cannot connect')} "
                "(ClientProxyConnectionError)")
    if isinstance(exc, aiohttp.ClientConnectorError) and not isinstance(
            exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return (f"failed: cannot connect to {exc.host}:{exc.port}: {brief_failure(exc)} "
                f"({type(exc).__name__})")
    detail = str(exc)
    return f"failed: {type(exc).__name__}" + (f": {detail}" if detail else "")


def brief_failure(exc: BaseException) -> str:
    """A few words for what one attempt met (``"connection refused"``, ``"HTTP 503"``,
    ``"timed out"``), for the note that lists the attempts: never a host, header or body.

    Example: ``brief_failure(ConnectionRefusedError(errno.ECONNREFUSED, "x"))`` is
    ``"connection refused"``."""
    if isinstance(exc, APIError):  # a code that only repeats the status is left out
        code = exc.code
        return f"HTTP {exc.status}" + (f" (code {code})" if code not in (None, exc.status)
                                       else "")
    if isinstance(exc, TransportError):
        return exc.brief
    if isinstance(exc, QuotaExhaustedError):
        return "quota exhausted"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    certificate = _certificate_error(exc)
    if certificate is not None:
        code = certificate.verify_code
        return ("certificate host name mismatch" if code in _HOSTNAME_CODES
                else "certificate expired" if code == 10
                else "certificate not yet valid" if code == 9
                else "certificate not trusted")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return "TLS failed"
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return ("proxy credentials refused" if exc.status == 407
                else f"proxy answered HTTP {exc.status}")
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return "proxy " + _os_words(exc.os_error, exc.os_error.strerror or "cannot connect")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _os_words(exc.os_error, exc.os_error.strerror or "cannot connect")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "body cut short"
    if isinstance(exc, OSError):
        return _os_words(exc, type(exc).__name__)
    return type(exc).__name__


_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
    errno.EPIPE: "connection broken",
    errno.ETIMEDOUT: "connect timed out",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
}


def _os_words(exc: OSError, default: str) -> str:
    """``connection refused`` and the like from an OSError's errno; ``default`` else."""
    words = _ERRNO_WORDS.get(exc.errno) if exc.errno is not None else None
    if words is not None:
        return words
    if isinstance(exc, socket.gaierror) or "Name or service not known" in str(exc):
        return "host name not resolved"
    return default
