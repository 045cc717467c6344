"""``arena_async.akana._cookies``: the jar read from ``Set-Cookie`` and sent back, without
sockets (tests/akana/test_shapes.py and test_auth.py drive the same through a login)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from multidict import CIMultiDict

from arena_async import LoginError
from arena_async.akana._cookies import (
    headers_for,
    login_jar,
    parse_set_cookie,
    renew_jar,
    set_cookies,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("header", "expected"), [
    ("A=b%3D; Path=/; HttpOnly", ("A", "b%3D", False)),
    ('A="quoted value"; Path=/', ("A", '"quoted value"', False)),
    ("A=b=c", ("A", "b=c", False)),
    ("A=; Path=/", ("A", "", True)),
    ("A=b; Max-Age=0", ("A", "b", True)),
    ("A=b; max-age=60", ("A", "b", False)),
    ("A=b; Max-Age=soon", ("A", "b", False)),
    ("A=b; Expires=Thu, 01 Jan 1970 00:00:00 GMT", ("A", "b", True)),
    ("A=b; Expires=Fri, 01 Jan 2100 00:00:00 GMT", ("A", "b", False)),
    ("A=b; Expires=never", ("A", "b", False)),
    ("novalue", None),
    ("=b", None),
])
def test_parse_set_cookie(header: str, expected: tuple[str, str, bool] | None) -> None:
    assert parse_set_cookie(header, NOW) == expected


def cookies(*headers: str) -> list[tuple[str, str, bool]]:
    raw: CIMultiDict[str] = CIMultiDict()
    for header in headers:
        raw.add("Set-Cookie", header)
    return list(set_cookies(raw, NOW))


def test_every_set_cookie_header_is_read_and_unreadable_ones_skipped() -> None:
    assert cookies("A=1", "novalue", "B=2; Max-Age=0") == [("A", "1", False), ("B", "2", True)]
    assert list(set_cookies({"Set-Cookie": "A=1"}, NOW)) == [("A", "1", False)]
    assert list(set_cookies({}, NOW)) == []


def test_the_login_jar_keeps_the_tenants_token_and_csrf_only() -> None:
    got = login_jar(cookies("AtmoAuthToken_acme=t%3D1", "Csrf-Token_acme=c%3D1",
                            "JSESSIONID=j", "AtmoAuthToken_other=x"), "acme", None, status=200)
    assert got == ("acme", {"AtmoAuthToken_acme": "t%3D1", "Csrf-Token_acme": "c%3D1"})
    # Prefixes are matched ignoring case; the jar uses the canonical names.
    assert login_jar(cookies("atmoauthtoken_acme=t"), "acme", None, status=200) == \
        ("acme", {"AtmoAuthToken_acme": "t"})
    # A deleted cookie is not kept; a later one wins.
    assert login_jar(cookies("AtmoAuthToken_acme=t", "Csrf-Token_acme=c",
                             "Csrf-Token_acme=; Max-Age=0"), "acme", None, status=200) == \
        ("acme", {"AtmoAuthToken_acme": "t"})


@pytest.mark.parametrize(("set_cookie", "domain", "tenant"), [
    (["AtmoAuthToken_acme=t"], None, "acme"),                      # the one tenant
    (["AtmoAuthToken_a=x", "AtmoAuthToken_b=y"], "d.b", "b"),      # the login domain's
    ([], "d.acme", "acme"),                                       # no cookie: the domain's
])
def test_a_tenant_not_given_is_learned(set_cookie: list[str], domain: str | None,
                                       tenant: str) -> None:
    assert login_jar(cookies(*set_cookie), None, domain, status=200)[0] == tenant


@pytest.mark.parametrize(("set_cookie", "tenant", "domain", "message"), [
    (["AtmoAuthToken_a=S3cr3t", "AtmoAuthToken_b=S3cr3t"], None, None, "several tenants"),
    ([], None, None, "set no AtmoAuthToken_<tenant> cookie"),
    (["AtmoAuthToken_other=S3cr3t"], "acme", None, "not for tenant='acme'"),
])
def test_no_tenant_to_use_is_a_login_error(set_cookie: list[str], tenant: str | None,
                                           domain: str | None, message: str) -> None:
    with pytest.raises(LoginError, match=message) as caught:
        login_jar(cookies(*set_cookie), tenant, domain, status=200)
    assert "S3cr3t" not in str(caught.value)  # no cookie value shown


def test_a_given_tenant_without_any_token_cookie_gets_an_empty_jar() -> None:
    assert login_jar(cookies("Csrf-Token_other=c"), "acme", None, status=200) == ("acme", {})


def test_a_renewal_replaces_values_and_never_drops_the_token() -> None:
    jar = {"AtmoAuthToken_acme": "t1", "Csrf-Token_acme": "c1"}
    renew_jar(jar, cookies("ATMOAUTHTOKEN_ACME=t2", "Other=o"), "acme")
    assert jar == {"AtmoAuthToken_acme": "t2", "Csrf-Token_acme": "c1"}
    renew_jar(jar, cookies("AtmoAuthToken_acme=; Max-Age=0", "Csrf-Token_acme=; Max-Age=0"),
              "acme")
    assert jar == {"AtmoAuthToken_acme": "t2"}


def test_headers_carry_the_jar_and_the_csrf_value_as_is() -> None:
    jar = {"AtmoAuthToken_acme": "t%3D", "Csrf-Token_acme": "c%3D"}
    assert headers_for(jar, "acme") == {"Cookie": "AtmoAuthToken_acme=t%3D; Csrf-Token_acme=c%3D",
                                        "X-Csrf-Token_acme": "c%3D"}
    assert headers_for({"AtmoAuthToken_acme": "t"}, "acme") == {"Cookie": "AtmoAuthToken_acme=t"}
    assert headers_for(jar, None) == {"Cookie": "AtmoAuthToken_acme=t%3D; Csrf-Token_acme=c%3D"}


def test_token_times_are_read_from_the_cookie_when_it_says() -> None:
    from arena_async.akana._cookies import token_times

    both = "TokenID%3Dabc%2CissueTime%3D1700000000000%2CexpirationTime%3D1700001800000%2Csig%3Dx"
    issued, expires = token_times(both)  # type: ignore[misc]
    assert issued == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert (expires - issued).total_seconds() == 1800
    assert token_times("EXPIRATIONTIME=1700001800000") == (None, expires)
    for opaque in ("abc", "expirationTime=soon", "expirationTime=", "issueTime=1700000000000",
                   "expirationTime=99999999999999999999999"):
        assert token_times(opaque) is None
