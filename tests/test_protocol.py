"""Sans-I/O protocol rules: no sockets here."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arena_async import (
    AuthenticationError,
    BadRequestError,
    QuotaExhaustedError,
    RateLimitError,
    RetryPolicy,
    ServerError,
)
from arena_async._protocol import (
    TRANSIENT_STATUSES,
    Request,
    VerdictKind,
    build_url,
    classify,
    is_transient_status,
    parse_error_body,
    parse_quota,
    parse_reset_date,
    parse_retry_after,
    read_quota,
    validate_id,
    with_attempts,
)
from arena_async._urls import BaseURL
from arena_async.models.common import Quota

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
        ("Fri, 02-Foo-2014 14:22:13 GMT-0700 (PDT)", None),
        ("Fri, 02-May-2014 14:22:13 GMT-07:00", datetime(2014, 5, 2, 21, 22, 13, tzinfo=UTC)),
        ("Fri, 02-May-2014 14:22:13 GMT+1030", datetime(2014, 5, 2, 3, 52, 13, tzinfo=UTC)),
        ("Fri, 02-May-2014 14:22:13 GMT-1000", datetime(2014, 5, 3, 0, 22, 13, tzinfo=UTC)),
        ("2-May-2014 9:05:00 UTC", datetime(2014, 5, 2, 9, 5, 0, tzinfo=UTC)),
        ("9999-12-31T23:59:59-01:00", None),  # past datetime's range once in UTC
        ("0001-01-01T00:00:00+01:00", None),
    ],
)
def test_reset_date_forms(text: str | None, expected: datetime | None,
                          local_tz: str) -> None:
    assert parse_reset_date(text) == expected


# The machine's time zone must not matter: a date without a zone is UTC (Arena's dates are
# UTC), not local time. Each zone here is ahead of, behind and equal to UTC.
TIME_ZONES = ["UTC", "America/Los_Angeles", "Asia/Kolkata"]


@pytest.fixture(params=TIME_ZONES)
def local_tz(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test with the process's local time zone set to each of TIME_ZONES."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    try:
        assert time.localtime(0).tm_gmtoff == datetime.fromtimestamp(
            0).astimezone().utcoffset().total_seconds()  # type: ignore[union-attr]
        yield request.param
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


def test_the_time_zone_fixture_changes_local_time(local_tz: str) -> None:
    offset = {"UTC": 0, "America/Los_Angeles": -8 * 3600, "Asia/Kolkata": 19800}[local_tz]
    assert time.localtime(0).tm_gmtoff == offset  # (1970-01-01: LA on standard time)


def test_a_reset_date_without_a_zone_is_utc_in_any_time_zone(local_tz: str) -> None:
    when = parse_reset_date("2031-01-15T08:00:00")
    assert when == datetime(2031, 1, 15, 8, 0, 0, tzinfo=UTC)
    assert when is not None
    assert when.utcoffset() is not None
    assert when.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    [remaining, resets_at, ts] = read_quota({
        "X-Arena-Requests-Remaining": "3",
        "X-Arena-Next-Request-Limit-Reset": "2031-01-15T08:00:01"}) or (None, None, None)
    assert (remaining, resets_at) == (3, datetime(2031, 1, 15, 8, 0, 1, tzinfo=UTC))
    assert ts == datetime(2031, 1, 15, 8, 0, 1, tzinfo=UTC).timestamp()


def test_retry_after_date_without_a_zone_is_utc(local_tz: str) -> None:
    # An HTTP date with "-0000" parses to a naive datetime: it means UTC.
    assert parse_retry_after("Mon, 23 Nov 2026 12:00:30 -0000", NOW) == 30.0


@pytest.mark.parametrize("reset", [None, "Fri, 02-May-2014 14:22:13 GMT-0700 (PDT)"])
@pytest.mark.parametrize(("raw", "remaining"), [("0", 0), (" 0 ", 0), ("-3", 0), ("1", 1),
                                                 ("250", 250)])
def test_remaining_count_with_or_without_a_reset_date(raw: str, remaining: int,
                                                        reset: str | None) -> None:
    headers = {"X-Arena-Requests-Remaining": raw}
    if reset is not None:
        headers["X-Arena-Next-Request-Limit-Reset"] = reset
    when = None if reset is None else datetime(2014, 5, 2, 21, 22, 13, tzinfo=UTC)
    ts = None if when is None else when.timestamp()
    assert read_quota(headers) == (remaining, when, ts)
    quota = parse_quota(headers, limit=7)
    assert quota == Quota(remaining=remaining, resets_at=when, limit=7)


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
    assert parse_retry_after("0", NOW) == 0.0  # "retry now" is a wait of 0, not none
    assert parse_retry_after(" 2 ", NOW) == 2.0
    assert parse_retry_after("Mon, 23 Nov 2026 12:00:00 GMT", NOW) == 0.0
    assert parse_retry_after("inf", NOW) is None
    assert parse_retry_after("nan", NOW) is None
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


# Any text without '/', '?', '#', '%', '\\', whitespace or control characters (Unicode's
# whitespace is in the Zs/Zl/Zp/Cc categories) and without '..': what validate_id accepts.
VALID_IDS = st.text(
    st.characters(blacklist_characters="/?#%\\",
                  blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")),
    min_size=1,
).filter(lambda v: ".." not in v and v != ".")
FORBIDDEN = ["/", "?", "#", "%", "\\", " ", "\t", "\n", "\r", "\x00", "\x1f", "\x7f",
             "\u00a0", "\u2028", "..", "%2F"]


@given(VALID_IDS)
def test_a_valid_id_stays_one_path_segment(value: str) -> None:
    assert validate_id("item_guid", value) == value
    url = build_url("https://h/v1", "items", value, "tickets")
    assert url.startswith("https://h/v1/items/")
    assert url.endswith("/tickets")
    assert url.count("/") == 6  # https: // h / v1 / items / <id> / tickets
    segment = url.removeprefix("https://h/v1/items/").removesuffix("/tickets")
    assert unquote(segment) == value  # the id itself, encoded whole


@given(st.text(), st.sampled_from(FORBIDDEN), st.text())
def test_an_id_holding_a_forbidden_character_is_refused(head: str, bad: str,
                                                        tail: str) -> None:
    with pytest.raises(ValueError, match="item_guid must not"):
        validate_id("item_guid", head + bad + tail)


def test_a_lone_dot_is_refused_but_dots_inside_are_not() -> None:
    with pytest.raises(ValueError, match="item_guid"):
        validate_id("item_guid", ".")
    assert validate_id("item_guid", "A.B") == "A.B"
    assert validate_id("item_guid", ".A") == ".A"


def test_a_long_bad_id_is_shortened_in_the_message() -> None:
    with pytest.raises(ValueError) as info:
        validate_id("item_guid", "A" * 100 + "/")
    assert "A" * 59 + "…" in str(info.value)
    assert "A" * 60 not in str(info.value)
    with pytest.raises(ValueError) as info:
        validate_id("item_guid", "B" * 59 + "/")  # 60 characters: shown whole
    assert "B" * 59 + "/" in str(info.value)
    with pytest.raises(ValueError) as info:
        validate_id("item_guid", "C" * 60 + "/")  # 61 characters: shortened
    assert "C" * 59 + "…" in str(info.value)
    assert "/" not in str(info.value).split(": ", 1)[1]


def test_build_url_keeps_base_path() -> None:
    assert build_url("https://h/v1/", "items", "A") == "https://h/v1/items/A"
    assert build_url("http://127.0.0.1:9/v1", "login") == "http://127.0.0.1:9/v1/login"


def test_build_url_encodes_each_segment_whole() -> None:
    assert build_url("https://h/v1", "items", "a:b", "x") == "https://h/v1/items/a%3Ab/x"
    assert build_url("https://h/v1", "items", "a/b") == "https://h/v1/items/a%2Fb"
    assert build_url("https://h/v1", "a/b") == "https://h/v1/a%2Fb"
    assert build_url("https://h/v1", "items", "A-1_2.3~") == "https://h/v1/items/A-1_2.3~"


def test_request_display_and_idempotence() -> None:
    assert GET.display == "/items/A/tickets"
    with_query = Request("GET", "https://h/v1/x", "/x", params={"offset": "0", "limit": "5"})
    assert with_query.display == "/x?offset=0&limit=5"
    assert [Request(m, "u", "/p").idempotent for m in ("GET", "HEAD", "PUT", "DELETE",
                                                       "OPTIONS", "POST", "PATCH")] == [
        True, True, True, True, True, False, False]
    secret = Request("POST", "u", "/login", json={"password": "pw-SECRET"},
                     headers={"arena_session_id": "sid-SECRET"}, data=b"tok-SECRET")
    assert "SECRET" not in repr(secret)


@pytest.mark.parametrize(("status", "retry_statuses", "transient"), [
    # The default: what RetryPolicy retries, and every other 5xx.
    (408, TRANSIENT_STATUSES, True), (425, TRANSIENT_STATUSES, True),
    (429, TRANSIENT_STATUSES, True), (500, TRANSIENT_STATUSES, True),
    (501, TRANSIENT_STATUSES, True), (502, TRANSIENT_STATUSES, True),
    (503, TRANSIENT_STATUSES, True), (504, TRANSIENT_STATUSES, True),
    (505, TRANSIENT_STATUSES, True), (599, TRANSIENT_STATUSES, True),
    (200, TRANSIENT_STATUSES, False), (302, TRANSIENT_STATUSES, False),
    (400, TRANSIENT_STATUSES, False), (401, TRANSIENT_STATUSES, False),
    (403, TRANSIENT_STATUSES, False), (404, TRANSIENT_STATUSES, False),
    (409, TRANSIENT_STATUSES, False), (499, TRANSIENT_STATUSES, False),
    # A policy's own statuses: a 4xx it retries is transient, one it leaves out is not;
    # a 5xx is transient whatever the policy says.
    (418, frozenset({418}), True), (429, frozenset(), False), (503, frozenset(), True),
    (500, frozenset(), True), (499, frozenset(), False),
])
def test_is_transient_status(status: int, retry_statuses: frozenset[int],
                             transient: bool) -> None:
    assert is_transient_status(status, retry_statuses) is transient


def test_the_transient_statuses_are_the_retry_policys_default() -> None:
    assert RetryPolicy().retry_statuses == TRANSIENT_STATUSES == RETRY
    assert is_transient_status(429)  # the default set
    assert not is_transient_status(404)


def test_error_body_shapes() -> None:
    arena = b'{"status":400,"errors":[{"code":3011,"message":"The guid \\"X\\" is not valid."}]}'
    [detail] = parse_error_body(arena)
    assert (detail.code, detail.message) == (3011, 'The guid "X" is not valid.')
    assert parse_error_body(b"<html>oops</html>") == []
    assert parse_error_body(b"") == []
    [akana] = parse_error_body(b'{"code": "401", "message": "Unauthorized"}')
    assert (akana.code, akana.message) == (401, "Unauthorized")
    [nested] = parse_error_body(b'{"Error": {"errorCode": 12, "Description": "bad"}}')
    assert (nested.code, nested.message) == (12, "bad")
    assert [(d.code, d.message) for d in parse_error_body(
        b'[{"code": 1, "message": "a"}, {"reason": "b"}]')] == [(1, "a"), (None, "b")]
    [boolean] = parse_error_body(b'{"code": true, "message": "m"}')
    assert boolean.code is None  # a bool is not a code
    [text_code] = parse_error_body(b'{"code": "E12", "detail": "d"}')
    assert (text_code.code, text_code.message) == (None, "d")
    # An empty "errors" list: the message beside it is used.
    [beside] = parse_error_body(b'{"errors": [], "message": "m2"}')
    assert beside.message == "m2"
    assert parse_error_body(b'{"message": 5}') == []
    [code_only] = parse_error_body(b'{"errors": [{"code": 4084}]}')
    assert (code_only.code, code_only.message) == (4084, "")
    assert parse_error_body(b'{"errors": [{"code": "E1"}, {"code": true}]}') == []
    failed = classify_(400, b'{"errors": [{"code": 3011}]}').error
    assert str(failed) == "HTTP 400 from GET /items/A/tickets - code 3011"
    [first] = parse_error_body(b'{"description": "second", "message": "first"}')
    assert first.message == "first"  # the first of the known keys, in their order
    assert parse_error_body(b'"just a string"') == []
    assert parse_error_body(b"\xff\xfe") == []


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


def test_classification_boundaries() -> None:
    assert classify_(299).kind is VerdictKind.OK
    assert classify_(300).kind is VerdictKind.FAIL
    assert classify_(199).kind is VerdictKind.FAIL
    # A status outside retry_statuses fails at once, a Retry-After notwithstanding.
    assert classify_(501, b"", {"Retry-After": "1"}).kind is VerdictKind.FAIL
    # Retry-After: 0 is kept (retry at once), not dropped.
    zero = classify_(503, b"", {"Retry-After": "0"})
    assert (zero.kind, zero.retry_after) == (VerdictKind.RETRY, 0.0)
    assert zero.error is not None
    assert zero.error.retry_after == 0.0
    # A 403 is no reason to log in again.
    assert classify_(403, b'{"status":403,"errors":[{"code":3024,"message":"no"}]}').kind \
        is VerdictKind.FAIL
    # The raw body is kept only when there are no error details.
    raw = classify_(500, b"<html>boom</html>").error
    assert raw is not None
    assert raw.body_excerpt
    detailed = classify_(500, b'{"status":500,"errors":[{"code":1,"message":"x"}]}').error
    assert detailed is not None
    assert detailed.body_excerpt == ""


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
    assert other.retry_after == 1.0


def test_quota_429_carries_the_reset_from_the_headers() -> None:
    resets = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    body = b'{"status":429,"errors":[{"code":4084,"message":"spent"}]}'
    verdict = classify(429, {}, body, GET, now=NOW, retry_statuses=RETRY,
                       quota=Quota(remaining=0, resets_at=resets))
    assert isinstance(verdict.error, QuotaExhaustedError)
    assert verdict.error.resets_at == resets
    assert verdict.error.remaining == 0
    assert "GET /items/A/tickets" in str(verdict.error)
    bare = classify_(429, b'{"status":429,"errors":[{"code":4084,"message":""}]}')
    assert bare.kind is VerdictKind.QUOTA  # an empty message: still the quota
    assert isinstance(bare.error, QuotaExhaustedError)
    assert bare.error.resets_at is None
    for code_only in (b'{"status":429,"errors":[{"code":4084}]}', b'{"code": "4014"}'):
        # no message at all: the code alone still says the quota is spent (never retried)
        verdict = classify_(429, code_only)
        assert verdict.kind is VerdictKind.QUOTA, code_only
        assert isinstance(verdict.error, QuotaExhaustedError)
    assert classify_(400, body).kind is VerdictKind.FAIL  # the code only counts on a 429
    two = classify_(429, b'{"status":429,"errors":[{"code":4084,"message":"first"},'
                         b'{"code":1,"message":"second"}]}')
    assert "first" in str(two.error)
    assert "second" not in str(two.error)


def test_with_attempts_restates_an_api_error() -> None:
    error = classify_(503, b"busy", {"Retry-After": "2"}).error
    assert error is not None
    again = with_attempts(error, 3)
    assert type(again) is type(error)
    assert again is not error
    assert again.attempts == 3  # type: ignore[attr-defined]
    assert again.retry_after == 2.0  # type: ignore[attr-defined]
    assert again.body_excerpt == error.body_excerpt  # type: ignore[attr-defined]
    assert with_attempts(again, 3) is again
    other = ValueError("x")
    assert with_attempts(other, 3) is other


def test_a_request_on_a_base_url_carries_its_parsed_url() -> None:
    base = BaseURL("https://h/v1")
    request = Request.on(base, "GET", "items", "a:b", "tickets")
    assert request.url == "https://h/v1/items/a%3Ab/tickets"
    assert request.path == "/items/a:b/tickets"
    assert request.auth is True
    assert request.target is not None
    assert str(request.target) == request.url
    logout = Request.on(base, "PUT", "logout", path="/logout", auth=False,
                        params={"a": "1"}, headers={"X": "y"}, json={"k": 1})
    assert (logout.path, logout.auth, logout.params, logout.json) == (
        "/logout", False, {"a": "1"}, {"k": 1})
    assert logout.headers == {"X": "y"}
