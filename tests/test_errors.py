"""The error classes of `arena_async.errors` as values: their fields, their messages, a
pickle round trip (errors cross process pools), the status-to-class table and the short
forms summaries use. The wording of failed attempts is tested in tests/test_exchange.py.
"""

from __future__ import annotations

import pickle
import ssl
from datetime import UTC, datetime
from types import SimpleNamespace

import aiohttp
import pytest

from arena_async.errors import (
    AnswerTooLargeError,
    APIError,
    ArenaAsyncError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ErrorDetail,
    LookupFailedError,
    NotFoundError,
    PermissionDeniedError,
    ProxyError,
    QuotaExhaustedError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    ShareMisconfiguredError,
    ShareUnavailableError,
    TLSCertificateError,
    TransportError,
    brief_error,
    brief_failure,
    copy_error,
    describe_failure,
    error_for_status,
    excerpt,
    failure_error,
    is_permanent_failure,
)


@pytest.mark.parametrize(("status", "cls"), [
    (400, BadRequestError), (401, AuthenticationError), (402, APIError),
    (403, PermissionDeniedError), (404, NotFoundError), (405, APIError),
    (408, APIError), (409, ConflictError), (410, APIError), (429, RateLimitError),
    (499, APIError), (500, ServerError), (501, ServerError), (503, ServerError),
])
def test_each_status_has_its_class(status: int, cls: type[APIError]) -> None:
    assert error_for_status(status) is cls


def test_an_api_error_says_status_request_entries_and_attempts() -> None:
    error = NotFoundError(404, [ErrorDetail(3011, "The guid is not valid."),
                                ErrorDetail(None, "  also this  "), ErrorDetail(7, "")],
                          method="GET", url="/items/X", attempts=3, retry_after=2.5)
    assert str(error) == ("HTTP 404 from GET /items/X - 3011: The guid is not valid.; "
                          "also this; code 7 (after 3 attempts)")
    assert (error.status, error.code, error.method, error.url, error.attempts,
            error.retry_after) == (404, 3011, "GET", "/items/X", 3, 2.5)
    assert str(APIError(502, body_excerpt="<html>")) == "HTTP 502 - body: '<html>'"
    assert str(APIError(500, [ErrorDetail(None, "")], body_excerpt="x")) == "HTTP 500 - body: 'x'"
    assert APIError(500).code is None
    assert str(APIError(503, attempts=1)) == "HTTP 503"


def test_excerpt_folds_whitespace_and_cuts_at_the_limit() -> None:
    assert excerpt(None) == ""
    assert excerpt(b"a\n\n  b\tc") == "a b c"
    assert excerpt("x" * 200) == "x" * 200
    assert excerpt("x" * 201) == "x" * 199 + "…"
    assert excerpt("abcdef", limit=3) == "ab…"
    assert excerpt(b"\xff") == "\ufffd"


def test_errors_survive_a_pickle_round_trip_with_their_fields() -> None:
    resets = datetime(2026, 12, 8, tzinfo=UTC)
    errors: list[BaseException] = [
        ConflictError(409, [ErrorDetail(1, "m")], method="PUT", url="/x", body_excerpt="b",
                      attempts=2, retry_after=1.0),
        QuotaExhaustedError(5, resets, status=429, errors=[ErrorDetail(4084, "spent")]),
        TransportError("timed out", method="GET", url="/y", attempts=4, brief="timed out"),
        TLSCertificateError("refused", problem="expired", host="h:443", url="/z",
                            attempts=1, brief="certificate expired"),
        ProxyError("refused", status=407, url="/p", attempts=2, brief="proxy"),
        AnswerTooLargeError(limit=10, size=20, declared=True, method="GET", url="/big"),
    ]
    for error in errors:
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error)
        assert str(again) == str(error)
        assert {k: v for k, v in vars(again).items()} == {k: v for k, v in vars(error).items()}


def test_quota_error_says_what_is_left_and_when_it_resets() -> None:
    resets = datetime(2026, 12, 8, 0, 0, tzinfo=UTC)
    error = QuotaExhaustedError(3, resets, status=429, errors=[ErrorDetail(4084, "x")])
    assert str(error) == ("Arena request quota exhausted (3 left); it resets at "
                          "2026-12-08T00:00:00+00:00")
    assert (error.remaining, error.resets_at, error.status) == (3, resets, 429)
    assert error.errors == [ErrorDetail(4084, "x")]
    assert str(QuotaExhaustedError(0, None)).endswith("it resets at an unknown time")
    assert QuotaExhaustedError(0, None, message="own words").args == ("own words",)
    assert QuotaExhaustedError(0, None).status is None


def test_transport_errors_name_the_request_and_attempts() -> None:
    assert str(TransportError("timed out", method="GET", url="/x", attempts=1)) == \
        "timed out (GET /x, 1 attempt)"
    error = TransportError("timed out", method="GET", url="/x", attempts=2)
    assert str(error) == "timed out (GET /x, 2 attempts)"
    assert (error.reason, error.brief) == ("timed out", "timed out")
    assert str(TransportError("down")) == "down"
    share = ShareUnavailableError("not open", share="redis://h:6379/0")
    assert str(share) == "share redis://h:6379/0: not open"
    assert (share.share, share.brief) == ("redis://h:6379/0", "share redis://h:6379/0 unavailable")
    assert isinstance(ShareMisconfiguredError("x", share="s"), ShareUnavailableError)


def test_format_errors_name_the_path_the_url_and_the_body() -> None:
    error = ResponseFormatError("not a list", path="$.results", excerpt="{}", url="/items")
    assert str(error) == "not a list at $.results (from /items); body begins '{}'"
    assert (error.path, error.excerpt, error.url) == ("$.results", "{}", "/items")
    assert str(ResponseFormatError("not JSON")) == "not JSON at $"
    big = AnswerTooLargeError(limit=1000, size=2000, declared=False, method="GET", url="/b")
    assert (big.path, big.excerpt, big.url, big.limit, big.size, big.declared) == (
        "$", "", "/b", 1000, 2000, False)
    assert "2,000 bytes received" in str(big)
    assert "to GET /b" in str(big)
    assert "Content-Length is 2,000" in str(AnswerTooLargeError(limit=1, size=2000,
                                                                 declared=True))


def test_a_lookup_failure_lists_five_numbers_and_the_reasons() -> None:
    cause = ServerError(503, method="GET", url="/items")
    failed: dict[str, BaseException] = {f"PN-{i}": cause for i in range(7)}
    error = LookupFailedError({"PN-A": "G1", "PN-B": None}, failed)
    assert str(error) == ("7 of 9 item numbers could not be looked up ('PN-0', 'PN-1', "
                          "'PN-2', 'PN-3', 'PN-4' and 2 more): ServerError: HTTP 503")
    assert error.found == {"PN-A": "G1", "PN-B": None}
    assert error.failed == failed
    five = LookupFailedError({}, {f"N{i}": cause for i in range(5)})
    assert "more" not in str(five)
    assert "'N4'" in str(five)
    again = pickle.loads(pickle.dumps(five))
    assert list(again.failed) == list(five.failed)


def test_brief_error_is_class_and_status_without_the_url() -> None:
    assert brief_error(ServerError(503, url="/very/long")) == "ServerError: HTTP 503"
    assert brief_error(BadRequestError(400, [ErrorDetail(3011, "m")])) == \
        "BadRequestError: HTTP 400 (code 3011)"
    assert brief_error(RateLimitError(429, [ErrorDetail(429, "m")])) == \
        "RateLimitError: HTTP 429"
    assert brief_error(TransportError("x", brief="connection refused")) == \
        "TransportError: connection refused"
    assert brief_error(ValueError("y" * 300)) == "ValueError: " + "y" * 119 + "…"


def test_copy_error_is_a_fresh_equal_error() -> None:
    error = PermissionDeniedError(403, [ErrorDetail(1, "no")], method="GET", url="/x",
                                  body_excerpt="b", attempts=2, retry_after=3.0)
    copy = copy_error(error)
    assert copy is not error
    assert type(copy) is PermissionDeniedError
    assert vars(copy) == vars(error)
    assert str(copy) == str(error)


@pytest.mark.parametrize(("error", "permanent"), [
    (TLSCertificateError("x", problem="p", host="h"), True),
    (ProxyError("x", status=407), True),
    (ProxyError("x", status=403), True),
    (ProxyError("x", status=400), True),
    (ProxyError("x", status=499), True),
    (ProxyError("x", status=408), False),
    (ProxyError("x", status=429), False),
    (ProxyError("x", status=500), False),
    (ProxyError("x", status=399), False),
    (TransportError("x"), False),
])
def test_what_another_try_cannot_cure(error: TransportError, permanent: bool) -> None:
    assert is_permanent_failure(error) is permanent


def test_resume_from_is_none_unless_a_listing_stopped() -> None:
    assert ArenaAsyncError().resume_from is None


def certificate_refused(code: int, message: str) -> aiohttp.ClientConnectorCertificateError:
    """A connect whose certificate the TLS library refused with OpenSSL's ``code``."""
    verdict = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verdict.verify_code = code
    verdict.verify_message = message
    key = SimpleNamespace(host="api.example.com", port=443, ssl=True, is_ssl=True)
    return aiohttp.ClientConnectorCertificateError(key, verdict)  # type: ignore[arg-type]


@pytest.mark.parametrize(("code", "brief", "says"), [
    (62, "certificate host name mismatch", "not valid for that host"),
    (64, "certificate host name mismatch", "not valid for that host"),
    (10, "certificate expired", "must renew it"),
    (9, "certificate not yet valid", "must renew it"),
    (19, "certificate not trusted", "is not trusted"),
    (20, "certificate not trusted", "is not trusted"),
    (63, "certificate not trusted", "is not trusted"),
    (11, "certificate not trusted", "is not trusted"),
])
def test_each_certificate_refusal_is_named_with_its_fix(code: int, brief: str,
                                                        says: str) -> None:
    exc = certificate_refused(code, "the library's words")
    assert brief_failure(exc) == brief
    text = describe_failure(exc)
    assert says in text
    assert "api.example.com:443" in text
    assert "the library's words" in text
    error = failure_error("login", exc, method="POST", url="/login", attempts=2)
    assert isinstance(error, TLSCertificateError)
    assert (error.problem, error.host, error.attempts, error.brief) == (
        "the library's words", "api.example.com:443", 2, brief)
    assert str(error).startswith(f"login {text}")


def test_the_attempts_default_to_one_and_two_are_said() -> None:
    assert str(APIError(503, attempts=2)) == "HTTP 503 (after 2 attempts)"
    for error in (TransportError("x"), TLSCertificateError("x", problem="p", host="h"),
                  ProxyError("x", status=502)):
        assert error.attempts == 1
    six = LookupFailedError({}, {f"N{i}": ServerError(503) for i in range(6)})
    assert "'N4' and 1 more)" in str(six)


def proxy_refused(status: int, message: str) -> aiohttp.ClientHttpProxyError:
    info = SimpleNamespace(real_url="http://proxy:3128")
    return aiohttp.ClientHttpProxyError(info, (), status=status,  # type: ignore[arg-type]
                                        message=message)


@pytest.mark.parametrize(("status", "brief", "says"), [
    (407, "proxy credentials refused", "the proxy refused its credentials (HTTP 407 Auth)"),
    (403, "proxy answered HTTP 403", "the proxy does not allow this destination (HTTP 403 "
                                     "Auth): ask its operator, or exempt the host with "
                                     "NO_PROXY"),
    (502, "proxy answered HTTP 502", "the proxy answered HTTP 502 Auth instead of passing "
                                     "the request on"),
])
def test_each_proxy_refusal_is_named(status: int, brief: str, says: str) -> None:
    exc = proxy_refused(status, "Auth")
    assert brief_failure(exc) == brief
    assert says in describe_failure(exc)
    error = failure_error("request", exc, method="GET", url="/x")
    assert isinstance(error, ProxyError)
    assert (error.status, error.brief) == (status, brief)
    assert is_permanent_failure(error) is (status < 500)
