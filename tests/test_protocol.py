"""Sans-I/O protocol rules: no sockets here."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arena_async import (
    AuthenticationError,
    BadRequestError,
    QuotaExhaustedError,
    RateLimitError,
    ServerError,
)
from arena_async._protocol import (
    Request,
    VerdictKind,
    build_url,
    classify,
    parse_error_body,
    parse_quota,
    parse_reset_date,
    parse_retry_after,
    validate_id,
    validate_offset,
    validate_page_size,
)

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
GET = Request("GET", "https://h/v1/items/A/tickets", "/items/A/tickets")
POST = Request("POST", "https://h/v1/items/A/items", "/items/A/items")
RETRY = frozenset({408, 425, 429, 500, 502, 503, 504})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Fri, 02-May-2014 14:22:13 GMT-0700 (PDT)", datetime(2014, 5, 2, 21, 22, 13, tzinfo=UTC)),
        ("Fri, 02-May-2014 14:22:13 GMT+0530", datetime(2014, 5, 2, 8, 52, 13, tzinfo=UTC)),
        ("Fri, 02-May-2014 21:22:13 GMT", datetime(2014, 5, 2, 21, 22, 13, tzinfo=UTC)),
        ("Fri, 02 May 2014 21:22:13 GMT", datetime(2014, 5, 2, 21, 22, 13, tzinfo=UTC)),
        ("2014-05-02T21:22:13Z", datetime(2014, 5, 2, 21, 22, 13, tzinfo=UTC)),
        ("2014-05-02T14:22:13-07:00", datetime(2014, 5, 2, 21, 22, 13, tzinfo=UTC)),
        ("2014-05-02T21:22:13", datetime(2014, 5, 2, 21, 22, 13, tzinfo=UTC)),
        ("tomorrow-ish", None),
        ("", None),
        (None, None),
        ("Fri, 31-Feb-2014 14:22:13 GMT-0700 (PDT)", None),
    ],
)
def test_reset_date_forms(text: str | None, expected: datetime | None) -> None:
    assert parse_reset_date(text) == expected


def test_quota_keeps_count_when_date_unparsable() -> None:
    quota = parse_quota({"X-Arena-Requests-Remaining": "17",
                         "X-Arena-Next-Request-Limit-Reset": "soon"}, limit=1000)
    assert quota is not None
    assert (quota.remaining, quota.resets_at, quota.limit) == (17, None, 1000)
    assert parse_quota({}) is None
    assert parse_quota({"X-Arena-Requests-Remaining": "many"}) is None


def test_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("3", NOW) == 3.0
    assert parse_retry_after("0.5", NOW) == 0.5
    assert parse_retry_after("Mon, 23 Nov 2026 12:00:30 GMT", NOW) == 30.0
    assert parse_retry_after("Mon, 23 Nov 2026 11:00:00 GMT", NOW) == 0.0
    assert parse_retry_after("-1", NOW) is None
    assert parse_retry_after("later", NOW) is None
    assert parse_retry_after(None, NOW) is None


@pytest.mark.parametrize("bad", ["AB/../logout", "", "a b", "x?y", "x#y", "x%2F", "..", ".",
                                 "a\\b", "a\tb", "a\nb", "a\x00b"])
def test_bad_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="item_guid"):
        validate_id("item_guid", bad)


def test_non_string_id_is_refused() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        validate_id("item_guid", 5)


@given(st.text(min_size=1))
def test_a_valid_id_stays_one_path_segment(value: str) -> None:
    try:
        validate_id("item_guid", value)
    except ValueError:
        return
    url = build_url("https://h/v1", "items", value, "tickets")
    assert url.startswith("https://h/v1/items/")
    assert url.endswith("/tickets")
    assert url.count("/") == 6  # https: // h / v1 / items / <id> / tickets


def test_build_url_keeps_base_path() -> None:
    assert build_url("https://h/v1/", "items", "A") == "https://h/v1/items/A"
    assert build_url("http://127.0.0.1:9/v1", "login") == "http://127.0.0.1:9/v1/login"


@pytest.mark.parametrize("size", [0, 401, -1, True, 1.5, "10"])
def test_page_size_bounds(size: object) -> None:
    with pytest.raises(ValueError, match="page_size"):
        validate_page_size(size, maximum=400)


def test_offsets() -> None:
    assert validate_offset("offset", 0) == 0
    with pytest.raises(ValueError, match="offset must be >= 0"):
        validate_offset("offset", -1)
    with pytest.raises(ValueError, match="start must be an integer"):
        validate_offset("start", "3")


def test_error_body_shapes() -> None:
    arena = b'{"status":400,"errors":[{"code":3011,"message":"The guid \\"X\\" is not valid."}]}'
    [detail] = parse_error_body(arena)
    assert (detail.code, detail.message) == (3011, 'The guid "X" is not valid.')
    assert parse_error_body(b"<html>oops</html>") == []
    assert parse_error_body(b"") == []
    [akana] = parse_error_body(b'{"code": "401", "message": "Unauthorized"}')
    assert (akana.code, akana.message) == (401, "Unauthorized")


def classify_(status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              request: Request = GET):
    return classify(status, headers or {}, body, request, now=NOW, retry_statuses=RETRY)


def test_classification() -> None:
    assert classify_(200).kind is VerdictKind.OK
    assert classify_(204).kind is VerdictKind.OK
    bad = classify_(400, b'{"status":400,"errors":[{"code":3011,"message":"bad guid"}]}')
    assert bad.kind is VerdictKind.FAIL
    assert isinstance(bad.error, BadRequestError)
    assert bad.error.code == 3011
    assert "3011: bad guid" in str(bad.error)
    assert "/items/A/tickets" in str(bad.error)
    reauth = classify_(401, b'{"status":401,"errors":[{"code":401,"message":"expired"}]}')
    assert reauth.kind is VerdictKind.REAUTH
    assert isinstance(reauth.error, AuthenticationError)
    login = Request("POST", "https://h/v1/login", "/login", auth=False)
    assert classify_(401, request=login).kind is VerdictKind.FAIL
    server = classify_(503, b"busy", {"Retry-After": "2"})
    assert (server.kind, server.retry_after) == (VerdictKind.RETRY, 2.0)
    assert isinstance(server.error, ServerError)
    assert "busy" in str(server.error)


def test_quota_429_is_not_a_rate_limit() -> None:
    for code in (4084, 4014):
        body = f'{{"status":429,"errors":[{{"code":{code},"message":"resets at noon"}}]}}'
        verdict = classify_(429, body.encode())
        assert verdict.kind is VerdictKind.QUOTA
        assert isinstance(verdict.error, QuotaExhaustedError)
        assert "resets at noon" in str(verdict.error)
    other = classify_(429, b'{"status":429,"errors":[{"code":1,"message":"slow down"}]}',
                      {"Retry-After": "1"})
    assert other.kind is VerdictKind.RETRY
    assert isinstance(other.error, RateLimitError)
