"""FakeAkana over real loopback HTTP with a plain aiohttp client (no arena_async client)."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from arena_async._convert import structure
from arena_async.models.akana import Ticket, parse_login
from arena_async.testing._fake_akana import (
    DEFAULT_PASSWORD,
    LABELS,
    STATES,
    FakeAkana,
    FakeUser,
)
from arena_async.testing._faults import Fault, FaultPlan

TENANT = "acmepaymentscorp"
V81 = "application/vnd.soa.v81+json"
START = 1_800_000_000.0


class Clock:
    """An injectable wall clock the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeAkana]:
    async with FakeAkana.seeded(tickets=120, seed=1, clock=clock) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # The default jar drops cookies from IP hosts such as 127.0.0.1.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def login(
    http: aiohttp.ClientSession, fake: FakeAkana, email: str | None = None,
    password: str | None = None,
) -> aiohttp.ClientResponse:
    response = await http.post(
        f"{fake.url}/api/login",
        json={"email": email or fake.email, "password": password or fake.password},
        headers={"Accept": "application/json"},
    )
    await response.read()
    return response


def cookie(http: aiohttp.ClientSession, name: str) -> str | None:
    return next((c.value for c in http.cookie_jar if c.key == name), None)


def csrf_headers(http: aiohttp.ClientSession, fake: FakeAkana) -> dict[str, str]:
    value = cookie(http, fake.csrf_cookie)
    assert value is not None
    return {fake.csrf_header: value}


async def get_tickets(
    http: aiohttp.ClientSession, fake: FakeAkana, params: Any = (),
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    async with http.get(f"{fake.url}/api/tickets", params=params,
                        headers={"Accept": V81, **(headers or {})}) as response:
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text


async def all_ids(http: aiohttp.ClientSession, fake: FakeAkana, **params: str) -> list[str]:
    status, body = await get_tickets(http, fake, {**params, "count": "1000"})
    assert status == 200, body
    return [t["TicketID"] for t in body["Ticket"]]


NEW_TICKET = {
    "Title": "Refunds fail",
    "Description": "Every refund answers 500.",
    "Environment": "Sandbox",
    "Label": ["com.soa.ticket.label.priority.medium"],
    "Tag": ["refund"],
}


# ---------------------------------------------------------------------- lifecycle


async def test_url_is_loopback_without_path_and_close_is_idempotent() -> None:
    server = FakeAkana()
    with pytest.raises(RuntimeError):
        _ = server.url
    await server.start()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", server.url)
        assert server.port > 0
        assert server.tenant == TENANT
        assert server.email == f"admin@{TENANT}.example"
        assert server.password == DEFAULT_PASSWORD
    finally:
        await server.close()
        await server.close()


# ---------------------------------------------------------------------- login


async def test_login_sets_token_and_csrf_cookies_and_answers_login_response(
    fake: FakeAkana, http: aiohttp.ClientSession
) -> None:
    response = await login(http, fake)

    assert response.status == 200
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"userName", "userFDN", "loginDomainID", "pendingTasks",
                         "authTokenValidUntil"}
    assert body["userName"] == fake.user.name
    assert body["userFDN"] == fake.user.user_id
    assert body["loginDomainID"].endswith(f".{TENANT}")
    assert body["pendingTasks"] == []
    assert body["authTokenValidUntil"] == "2027-01-15T08:30:00Z"  # START + 1800 s

    raw = response.headers.getall("Set-Cookie")
    auth = next(c for c in raw if c.startswith(f"AtmoAuthToken_{TENANT}="))
    csrf = next(c for c in raw if c.startswith(f"Csrf-Token_{TENANT}="))
    assert re.match(rf"AtmoAuthToken_{TENANT}=TokenID%3D[0-9a-f-]{{36}}%2C", auth)
    assert "HttpOnly" in auth
    assert "Path=/" in auth
    csrf_value = csrf.split(";", 1)[0].split("=", 1)[1]
    assert "%3D" in csrf_value
    assert "Path=/" in csrf
    assert cookie(http, fake.csrf_cookie) == csrf_value
    assert fake.stats.logins == 1

    login_model = parse_login(body)
    assert login_model.auth_token_valid_until == datetime(2027, 1, 15, 8, 30, tzinfo=UTC)


async def test_login_key_case_and_epoch_valid_until_variants(
    clock: Clock, http: aiohttp.ClientSession
) -> None:
    async with FakeAkana(clock=clock, login_key_case="pascal",
                         valid_until_format="epoch_ms") as server:
        body = await (await login(http, server)).json()
    assert set(body) == {"UserName", "UserFDN", "LoginDomainID", "PendingTasks",
                         "AuthTokenValidUntil"}
    assert body["AuthTokenValidUntil"] == 1_800_001_800_000
    assert parse_login(body).auth_token_valid_until == datetime(2027, 1, 15, 8, 30,
                                                                tzinfo=UTC)


async def test_login_without_csrf_sets_only_the_token_cookie(http: aiohttp.ClientSession) -> None:
    async with FakeAkana(csrf=False) as server:
        response = await login(http, server)
        assert response.status == 200
        assert cookie(http, server.csrf_cookie) is None
        assert cookie(http, server.auth_cookie) is not None
        async with http.post(f"{server.url}/api/tickets", json=NEW_TICKET,
                             headers={"Accept": V81}) as created:
            assert created.status == 200


@pytest.mark.parametrize(
    ("email", "password"),
    [(None, "wrong"), ("nobody@example.com", DEFAULT_PASSWORD)],
    ids=["wrong-password", "unknown-user"],
)
async def test_wrong_credentials_get_401_without_cookies(
    fake: FakeAkana, http: aiohttp.ClientSession, email: str | None, password: str
) -> None:
    response = await login(http, fake, email=email, password=password)

    assert response.status == 401
    assert await response.json() == {"code": 401, "message": "Invalid email or password"}
    assert "Set-Cookie" not in response.headers
    assert cookie(http, fake.auth_cookie) is None
    assert (fake.stats.logins, fake.stats.failed_logins, fake.stats.unauthorized) == (0, 1, 1)


@pytest.mark.parametrize(
    ("style", "content_type", "pattern"),
    [("text", "text/plain", r"^Invalid email or password$"),
     ("html", "text/html", r"^<html>.*HTTP Status 401.*</html>$")],
)
async def test_error_bodies_can_be_non_json(
    http: aiohttp.ClientSession, style: Any, content_type: str, pattern: str
) -> None:
    async with FakeAkana(error_body=style) as server:
        response = await login(http, server, password="wrong")
        text = await response.text()
    assert response.status == 401
    assert response.content_type == content_type
    assert re.match(pattern, text)
    with pytest.raises(ValueError):
        json.loads(text)


async def test_login_with_a_body_that_is_not_json_is_400(
    fake: FakeAkana, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{fake.url}/api/login", data=b"email=x") as response:
        assert response.status == 400
    async with http.post(f"{fake.url}/api/login", json={"email": "x"}) as response:
        assert response.status == 400


async def test_pending_tasks_login_succeeds_but_the_token_is_refused(
    fake: FakeAkana, http: aiohttp.ClientSession
) -> None:
    response = await login(http, fake, fake.pending_email, fake.pending_password)

    assert response.status == 200
    body = await response.json()
    assert body["pendingTasks"] == ["ChangePassword"]
    assert parse_login(body).has_pending_tasks
    status, error = await get_tickets(http, fake)
    assert status == 401
    assert error["code"] == 401
    assert fake.live_sessions == 0


async def test_pending_tasks_can_be_objects(http: aiohttp.ClientSession) -> None:
    tasks = {f"admin@{TENANT}.example": [{"name": "AcceptAgreement", "url": "/terms"}]}
    async with FakeAkana(pending_tasks=tasks) as server:
        body = await (await login(http, server)).json()
    assert body["pendingTasks"] == [{"name": "AcceptAgreement", "url": "/terms"}]
    assert parse_login(body).pending_tasks == ["AcceptAgreement"]


# ---------------------------------------------------------------------- auth and CSRF


async def test_api_calls_need_a_known_token(fake: FakeAkana, http: aiohttp.ClientSession) -> None:
    status, _ = await get_tickets(http, fake)
    assert status == 401
    http.cookie_jar.update_cookies({fake.auth_cookie: "TokenID%3Dforged"})
    status, _ = await get_tickets(http, fake)
    assert status == 401
    assert fake.stats.unauthorized == 2


async def test_csrf_is_required_on_writes_as_sent_in_the_cookie(
    fake: FakeAkana, http: aiohttp.ClientSession
) -> None:
    await login(http, fake)
    csrf = cookie(http, fake.csrf_cookie)
    assert csrf is not None
    url = f"{fake.url}/api/tickets"

    async with http.post(url, json=NEW_TICKET, headers={"Accept": V81}) as missing:
        assert missing.status == 401
    decoded = csrf.replace("%3D", "=").replace("%2C", ",")
    bad_headers = {"Accept": V81, fake.csrf_header: decoded}
    async with http.post(url, json=NEW_TICKET, headers=bad_headers) as bad:
        assert bad.status == 401
    good_headers = {"Accept": V81, fake.csrf_header: csrf}
    async with http.post(url, json=NEW_TICKET, headers=good_headers) as good:
        assert good.status == 200
    status, _ = await get_tickets(http, fake)  # reads need no CSRF by default
    assert status == 200
    assert fake.stats.csrf_failures == 2


async def test_csrf_on_reads_when_turned_on(http: aiohttp.ClientSession) -> None:
    async with FakeAkana.seeded(tickets=5, csrf_on_reads=True) as server:
        await login(http, server)
        status, _ = await get_tickets(http, server)
        assert status == 401
        status, body = await get_tickets(http, server, headers=csrf_headers(http, server))
        assert status == 200
        assert len(body["Ticket"]) == 5


async def test_token_expires_on_the_injected_clock_and_renew_extends_it(
    fake: FakeAkana, http: aiohttp.ClientSession, clock: Clock
) -> None:
    await login(http, fake)
    first_token = cookie(http, fake.auth_cookie)
    clock.now = START + 1000
    renew_url = f"{fake.url}/api/login/renewToken"
    form = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}

    async with http.post(renew_url, data=b"", headers=form) as no_csrf:
        assert no_csrf.status == 401
    async with http.post(renew_url, data=b"", headers={**form, **csrf_headers(http, fake)}) as r:
        assert r.status == 200
        body = await r.json()
    assert body["authTokenValidUntil"] == "2027-01-15T08:46:40Z"  # START + 1000 + 1800
    assert cookie(http, fake.auth_cookie) != first_token  # a new value, new expirationTime
    assert fake.stats.renewals == 1

    clock.now = START + 2000  # past the first expiry, inside the renewed one
    assert (await get_tickets(http, fake))[0] == 200
    clock.now = START + 2800
    assert (await get_tickets(http, fake))[0] == 401
    async with http.post(renew_url, data=b"", headers={**form, **csrf_headers(http, fake)}) as r:
        assert r.status == 401  # a dead token cannot be renewed
    assert fake.stats.renewals == 1


async def test_token_is_valid_until_just_before_its_lifetime(
    fake: FakeAkana, http: aiohttp.ClientSession, clock: Clock
) -> None:
    await login(http, fake)
    clock.now = START + 1799.9
    assert (await get_tickets(http, fake))[0] == 200
    clock.now = START + 1800
    assert (await get_tickets(http, fake))[0] == 401


async def test_expire_tokens_on_demand(fake: FakeAkana, http: aiohttp.ClientSession) -> None:
    await login(http, fake)
    assert (await get_tickets(http, fake))[0] == 200
    assert fake.live_sessions == 1
    fake.expire_tokens()
    assert fake.live_sessions == 0
    assert (await get_tickets(http, fake))[0] == 401
    await login(http, fake)
    assert (await get_tickets(http, fake))[0] == 200


async def test_endsession_ends_the_token_and_clears_cookies(
    fake: FakeAkana, http: aiohttp.ClientSession
) -> None:
    await login(http, fake)
    token = cookie(http, fake.auth_cookie)
    async with http.get(f"{fake.url}/api/login/endsession") as response:
        assert response.status == 200
    assert fake.stats.endsessions == 1
    assert cookie(http, fake.auth_cookie) is None
    assert cookie(http, fake.csrf_cookie) is None
    assert token is not None
    http.cookie_jar.update_cookies({fake.auth_cookie: token})  # replaying it fails
    assert (await get_tickets(http, fake))[0] == 401


# ---------------------------------------------------------------------- Accept


@pytest.mark.parametrize("version", ["v72", "v80", "v81"])
async def test_versioned_accept_is_echoed(
    fake: FakeAkana, http: aiohttp.ClientSession, version: str
) -> None:
    await login(http, fake)
    media = f"application/vnd.soa.{version}+json"
    async with http.get(f"{fake.url}/api/tickets", params={"count": "1"},
                        headers={"Accept": media}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == media
        assert len((await response.json(content_type=None))["Ticket"]) == 1


@pytest.mark.parametrize(
    "accept",
    ["application/json", "*/*", "application/vnd.soa.v71+json",
     "application/vnd.soa.v81+xml", "text/plain"],
)
async def test_other_accept_values_get_404_on_tickets(
    fake: FakeAkana, http: aiohttp.ClientSession, accept: str
) -> None:
    await login(http, fake)
    ticket_id = fake.tickets[0]["TicketID"]
    for path in ("/api/tickets", f"/api/tickets/{ticket_id}"):
        async with http.get(f"{fake.url}{path}", headers={"Accept": accept}) as response:
            assert response.status == 404, path
    assert fake.stats.not_acceptable == 2


async def test_a_listed_version_among_several_accept_entries_is_chosen(
    fake: FakeAkana, http: aiohttp.ClientSession
) -> None:
    await login(http, fake)
    accept = "application/json;q=0.5, application/vnd.soa.v80+json;q=0.9, */*"
    async with http.get(f"{fake.url}/api/tickets", headers={"Accept": accept}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/vnd.soa.v80+json"


# ---------------------------------------------------------------------- listing


async def test_default_listing_is_the_first_100_newest_first(
    fake: FakeAkana, http: aiohttp.ClientSession
) -> None:
    await login(http, fake)
    status, body = await get_tickets(http, fake)

    assert status == 200
    assert list(body) == ["Ticket"]
    assert body["Ticket"] == fake.tickets[:100]
    created = [t["Created"] for t in fake.tickets]
    assert created == sorted(created, reverse=True)
    assert len(set(created)) == len(created)
    assert fake.tickets[0]["TicketID"] == f"ticket11119.{TENANT}"


def _expected(fake: FakeAkana, predicate: Any) -> list[str]:
    return [t["TicketID"] for t in fake.tickets if predicate(t)]


async def test_every_filter(fake: FakeAkana, http: aiohttp.ClientSession) -> None:
    await login(http, fake)
    tickets = fake.tickets
    sample = next(t for t in tickets if "AppID" in t and t["Tag"])
    restricted = fake.restricted_user
    cases: list[tuple[dict[str, str], list[str]]] = [
        ({"APIID": sample["APIID"]}, _expected(fake, lambda t: t["APIID"] == sample["APIID"])),
        ({"AppID": sample["AppID"]}, _expected(fake, lambda t: t.get("AppID") == sample["AppID"])),
        ({"AuthorID": sample["UserID"]},
         _expected(fake, lambda t: t["UserID"] == sample["UserID"])),
        ({"ItemID": sample["TicketID"]}, [sample["TicketID"]]),
        ({"Tag": sample["Tag"][0]}, _expected(fake, lambda t: sample["Tag"][0] in t["Tag"])),
        ({"Label": LABELS[0]}, _expected(fake, lambda t: LABELS[0] in t["Label"])),
        ({"State": "RESOLVED"}, _expected(fake, lambda t: t["State"] == "RESOLVED")),
        ({"RetrievingUserID": restricted.user_id},
         _expected(fake, lambda t: t["Visibility"] == "Public"
                   or t["UserID"] == restricted.user_id)),
        ({"State": "OPEN", "Label": LABELS[1]},
         _expected(fake, lambda t: t["State"] == "OPEN" and LABELS[1] in t["Label"])),
        ({"AuthorID": "nobody.acmepaymentscorp"}, []),
        ({"RetrievingUserID": "nobody.acmepaymentscorp"}, []),
    ]
    for params, expected in cases:
        got = await all_ids(http, fake, **params)
        assert got == expected, params
        if len(params) == 1 and expected:
            assert 0 < len(got) < len(tickets), params


async def test_include_comments_number_of_comments_and_include_actions(
    fake: FakeAkana, http: aiohttp.ClientSession
) -> None:
    await login(http, fake)
    stored = {t["TicketID"]: fake.get_stored_ticket(t["TicketID"]) for t in fake.tickets}
    busy = [i for i, s in stored.items() if len(s["CommentsPreview"]["Comment"]) > 2]
    assert busy, "the seed should hold tickets with more than two comments"

    _, default = await get_tickets(http, fake, {"count": "1000"})
    for t in default["Ticket"]:
        full = stored[t["TicketID"]]["CommentsPreview"]
        assert t["CommentsPreview"] == {"Count": full["Count"], "Comment": full["Comment"][:2]}
        assert t["Action"]
    assert any(t["CommentsPreview"]["Count"] > 2 for t in default["Ticket"])

    _, one = await get_tickets(http, fake, {"count": "1000", "NumberOfComments": "1"})
    for t in one["Ticket"]:
        assert t["CommentsPreview"]["Comment"] == (
            stored[t["TicketID"]]["CommentsPreview"]["Comment"][:1])
    _, five = await get_tickets(http, fake, {"ItemID": busy[0], "NumberOfComments": "5"})
    assert five["Ticket"][0]["CommentsPreview"]["Comment"] == (
        stored[busy[0]]["CommentsPreview"]["Comment"])

    _, none = await get_tickets(http, fake, {"count": "1000", "IncludeComments": "false",
                                             "IncludeActions": "false"})
    assert len(none["Ticket"]) == len(stored)
    for t in none["Ticket"]:
        assert "CommentsPreview" not in t
        assert "Action" not in t
        assert t["Comments"] == stored[t["TicketID"]]["Comments"]

    _, explicit = await get_tickets(http, fake, {"count": "1000", "IncludeComments": "true",
                                                 "IncludeActions": "true"})
    assert explicit == default


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("IncludeComments", "True"), ("IncludeComments", "1"), ("IncludeComments", ""),
        ("IncludeActions", "yes"), ("IncludeActions", "FALSE"),
        ("start", "-1"), ("start", "1.5"), ("start", "x"),
        ("count", "-5"), ("count", "ten"), ("count", ""),
        ("NumberOfComments", "-1"), ("NumberOfComments", "two"),
    ],
)
async def test_malformed_parameters_get_400(
    fake: FakeAkana, http: aiohttp.ClientSession, name: str, value: str
) -> None:
    await login(http, fake)
    status, body = await get_tickets(http, fake, {name: value})
    assert status == 400
    assert body["code"] == 400
    assert name in body["message"]


async def test_unknown_parameters_are_ignored_but_recorded(
    fake: FakeAkana, http: aiohttp.ClientSession
) -> None:
    await login(http, fake)
    api_id = fake.tickets[0]["APIID"]
    status, body = await get_tickets(http, fake, [("apiid", api_id), ("Foo", "bar"),
                                                  ("count", "1000")])

    assert status == 200
    assert len(body["Ticket"]) == len(fake.tickets)  # the mis-cased filter did nothing
    assert fake.unknown_params == ["apiid", "Foo"]
    assert fake.requests[-1].unknown_params == ["apiid", "Foo"]


async def test_sort_orders(fake: FakeAkana, http: aiohttp.ClientSession) -> None:
    await login(http, fake)
    default = await all_ids(http, fake)
    by_date = await all_ids(http, fake, SortBy="com.soa.sort.order.date")
    updated = await all_ids(http, fake, SortBy="com.soa.sort.order.updated")
    alphabetical_status, alphabetical = await get_tickets(
        http, fake, {"SortBy": "com.soa.sort.order.alphabetical", "count": "1000"})

    assert by_date == default
    assert sorted(updated) == sorted(default)
    assert updated != default
    stamps = [fake.updated_at(i) for i in updated]
    assert stamps == sorted(stamps, reverse=True)
    assert alphabetical_status == 200
    titles = [t["Title"].lower() for t in alphabetical["Ticket"]]
    assert titles == sorted(titles)


@pytest.mark.parametrize("count", [1, 100, 1000])
async def test_start_count_paging_over_1001_tickets(
    http: aiohttp.ClientSession, count: int
) -> None:
    async with FakeAkana.seeded(tickets=1001, seed=1) as server:
        await login(http, server)
        expected = server.tickets
        seen: list[dict[str, Any]] = []
        start = 0
        while True:
            status, body = await get_tickets(http, server,
                                             {"start": str(start), "count": str(count)})
            assert status == 200
            page = body["Ticket"]
            assert len(page) <= count
            seen.extend(page)
            if len(page) < count:
                break
            start += count

    assert len(expected) == 1001
    assert [t["TicketID"] for t in seen] == [t["TicketID"] for t in expected]
    assert len({t["TicketID"] for t in seen}) == 1001
    assert seen == expected
    assert server.stats.tickets_served == 1001


async def test_start_beyond_the_end_is_an_empty_page(
    fake: FakeAkana, http: aiohttp.ClientSession
) -> None:
    await login(http, fake)
    assert await get_tickets(http, fake, {"start": "120"}) == (200, {"Ticket": []})
    assert await get_tickets(http, fake, {"start": "5", "count": "0"}) == (200, {"Ticket": []})
    _, body = await get_tickets(http, fake, {"start": "118"})
    assert [t["TicketID"] for t in body["Ticket"]] == [
        t["TicketID"] for t in fake.tickets[118:]]


async def test_restricted_user_sees_fewer_tickets_not_an_error(
    fake: FakeAkana, http: aiohttp.ClientSession
) -> None:
    response = await login(http, fake, fake.restricted_email, fake.restricted_password)
    assert response.status == 200
    user = fake.restricted_user
    seen = await all_ids(http, fake)
    expected = _expected(fake, lambda t: t["Visibility"] == "Public"
                         or t["UserID"] == user.user_id)

    assert seen == expected
    assert 0 < len(seen) < len(fake.tickets)
    assert any(fake.get_stored_ticket(i)["UserID"] == user.user_id
               and fake.get_stored_ticket(i)["Visibility"] == "Limited" for i in seen)
    assert [t["TicketID"] for t in fake.tickets_for(user.email)] == seen
    hidden = next(t["TicketID"] for t in fake.tickets if t["TicketID"] not in set(seen))
    async with http.get(f"{fake.url}/api/tickets/{hidden}",
                        headers={"Accept": V81}) as single:
        assert single.status == 404


# ---------------------------------------------------------------------- one ticket, writes


async def test_get_one_ticket_is_the_bare_object(
    fake: FakeAkana, http: aiohttp.ClientSession
) -> None:
    await login(http, fake)
    wanted = fake.tickets[7]
    async with http.get(f"{fake.url}/api/tickets/{wanted['TicketID']}",
                        headers={"Accept": V81}) as response:
        assert response.status == 200
        assert await response.json(content_type=None) == wanted
    async with http.get(f"{fake.url}/api/tickets/ticket1.{TENANT}",
                        headers={"Accept": V81}) as missing:
        assert missing.status == 404
    async with http.get(f"{fake.url}/api/tickets/labels", headers={"Accept": V81}) as labels:
        assert (await labels.json(content_type=None)) == {"Label": list(LABELS)}


async def test_create_ticket(
    fake: FakeAkana, http: aiohttp.ClientSession, clock: Clock
) -> None:
    await login(http, fake)
    clock.now = START + 60
    headers = {"Accept": V81, **csrf_headers(http, fake)}
    async with http.post(f"{fake.url}/api/tickets", json=NEW_TICKET, headers=headers) as r:
        assert r.status == 200
        created = await r.json(content_type=None)

    assert created["TicketID"] == f"ticket11120.{TENANT}"
    assert created["State"] == "OPEN"
    assert created["UserID"] == fake.user.user_id
    assert created["Created"] == "2027-01-15T08:01:00Z"
    assert created["Label"] == NEW_TICKET["Label"]
    assert fake.tickets[0] == created  # the newest
    assert structure(created, Ticket).title == "Refunds fail"

    for broken in ({**NEW_TICKET, "Title": ""}, {**NEW_TICKET, "Label": ["urgent"]},
                   {k: v for k, v in NEW_TICKET.items() if k != "Environment"}, ["x"]):
        async with http.post(f"{fake.url}/api/tickets", json=broken, headers=headers) as bad:
            assert bad.status == 400, broken
    assert len(fake.tickets) == 121


async def test_ticket_actions(fake: FakeAkana, http: aiohttp.ClientSession) -> None:
    await login(http, fake)
    headers = {"Accept": V81, **csrf_headers(http, fake)}
    ticket = next(t for t in fake.tickets if t["State"] == "OPEN")
    url = f"{fake.url}/api/tickets/{ticket['TicketID']}/actions"

    async with http.post(url, json={"ActionName": "ticket.action.reopen"},
                         headers=headers) as invalid:
        assert invalid.status == 400
    async with http.post(url, json={"ActionName": "ticket.action.resolve",
                                    "Comments": "Fixed in 1.2"}, headers=headers) as done:
        assert done.status == 200
        after = await done.json(content_type=None)
    assert after["State"] == "RESOLVED"
    assert [a["value"] for a in after["Action"]] == [
        "ticket.action.reopen", "ticket.action.close", "discussion.action.delete"]
    assert after["CommentsPreview"]["Comment"][0]["Content"] == "Fixed in 1.2"
    assert after["Comments"] == ticket["Comments"] + 1
    most_recent = await all_ids(http, fake, SortBy="com.soa.sort.order.updated")
    assert most_recent[0] == ticket["TicketID"]

    async with http.post(url, json={"ActionName": "discussion.action.delete"},
                         headers=headers) as deleted:
        assert deleted.status == 204
    async with http.post(url, json={"ActionName": "ticket.action.close"},
                         headers=headers) as gone:
        assert gone.status == 404
    assert ticket["TicketID"] not in await all_ids(http, fake)


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("", b"{not json", "Request body is not valid JSON"),
        ("", b'["x"]', "Request body must be a ticket object"),
        ("", {**NEW_TICKET, "Description": 7}, "Description is required"),
        ("", {**NEW_TICKET, "Label": []}, "Label must be one of "),
        ("", {**NEW_TICKET, "Tag": "refund"}, "Tag must be a list of strings"),
        ("/actions", b"{not json", "Request body is not valid JSON"),
        ("/actions", b'["x"]', "ActionName is required"),
        ("/actions", {"ActionName": 3}, "ActionName is required"),
        ("/actions", {"ActionName": "ticket.action.close", "Comments": 5},
         "Comments must be a string"),
    ],
)
async def test_bad_writes_get_400_saying_what_is_wrong_and_change_nothing(
    fake: FakeAkana, http: aiohttp.ClientSession, path: str, body: Any, message: str
) -> None:
    await login(http, fake)
    headers = {"Accept": V81, **csrf_headers(http, fake)}
    ticket = next(t for t in fake.tickets if t["State"] == "OPEN")
    url = f"{fake.url}/api/tickets" + (f"/{ticket['TicketID']}{path}" if path else "")
    before = fake.tickets
    sent = {"data": body} if isinstance(body, bytes) else {"json": body}
    async with http.post(url, headers=headers, **sent) as response:
        assert response.status == 400
        answer = await response.json(content_type=None)
    assert answer["code"] == 400
    assert answer["message"].startswith(message)
    assert fake.tickets == before


# ---------------------------------------------------------------------- recording, stats


async def test_requests_are_recorded_exactly(fake: FakeAkana, http: aiohttp.ClientSession) -> None:
    await login(http, fake)
    csrf = csrf_headers(http, fake)
    api_id = fake.tickets[0]["APIID"]
    await get_tickets(http, fake, [("APIID", api_id), ("count", "5")], headers=csrf)
    async with http.post(f"{fake.url}/api/tickets", json=NEW_TICKET,
                         headers={"Accept": V81, **csrf}) as response:
        assert response.status == 200

    login_req, list_req, create_req = fake.requests
    assert (login_req.method, login_req.path, login_req.status) == ("POST", "/api/login", 200)
    assert login_req.json() == {"email": fake.email, "password": fake.password}
    assert list_req.query_items == [("APIID", api_id), ("count", "5")]
    assert list_req.headers["Accept"] == V81
    assert list_req.content == b""
    assert create_req.json() == NEW_TICKET
    assert create_req.status == 200
    for request in fake.requests[1:]:
        assert request.headers[fake.csrf_header] == cookie(http, fake.csrf_cookie)
        assert request.cookies[fake.auth_cookie] == cookie(http, fake.auth_cookie)
    assert fake.stats.requests == 3
    fake.clear_requests()
    assert fake.requests == []


def test_reprs_hold_no_secrets() -> None:
    user = FakeUser("a@b.c", "hunter2-secret", user_id="u.t", name="n")
    assert "hunter2" not in repr(user)
    assert "hunter2" not in repr(FakeAkana(users=[user]).users)


async def test_logs_hold_no_password_token_or_csrf(
    fake: FakeAkana, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await login(http, fake, password="wrong-password-123")
    await login(http, fake)
    await get_tickets(http, fake, headers=csrf_headers(http, fake))
    secrets = [fake.password, "wrong-password-123", cookie(http, fake.auth_cookie),
               cookie(http, fake.csrf_cookie)]
    for record in caplog.records:
        for secret in secrets:
            assert secret is not None
            assert secret not in record.getMessage()


# ---------------------------------------------------------------------- faults, latency


async def test_faults_are_injected_and_recorded(http: aiohttp.ClientSession) -> None:
    plan = FaultPlan(seed=1)
    plan.add(Fault("status", status=503, retry_after="1", path=r"^/api/tickets$", times=1))
    async with FakeAkana.seeded(tickets=3, faults=plan) as server:
        assert server.faults is plan
        await login(http, server)
        async with http.get(f"{server.url}/api/tickets", headers={"Accept": V81}) as failed:
            assert failed.status == 503
            assert failed.headers["Retry-After"] == "1"
            assert await failed.json() == {"code": 503, "message": "Injected fault: HTTP 503."}
        status, body = await get_tickets(http, server)
        assert status == 200
        assert len(body["Ticket"]) == 3
        assert [r.status for r in server.requests] == [200, 503, 200]
        assert [r.fault for r in server.requests] == [None, "status", None]
    assert plan.fired["status"] == 1


async def test_expire_session_fault_meets_the_usual_401(http: aiohttp.ClientSession) -> None:
    plan = FaultPlan()
    plan.add(Fault("expire_session", path=r"^/api/tickets$", times=1))
    async with FakeAkana.seeded(tickets=3, faults=plan) as server:
        await login(http, server)
        assert (await get_tickets(http, server))[0] == 401
        assert server.stats.unauthorized == 1
        assert (await get_tickets(http, server))[0] == 401  # the token stays dead
        await login(http, server)
        assert (await get_tickets(http, server))[0] == 200


async def test_dropped_connection_is_recorded_without_status(
    http: aiohttp.ClientSession,
) -> None:
    plan = FaultPlan()
    # aiohttp's client itself re-sends a GET once when the server drops the connection
    # before answering, so one fault would be masked: drop every attempt.
    plan.add(Fault("reset_before_headers", path=r"^/api/tickets$"))
    async with FakeAkana.seeded(tickets=3, faults=plan) as server:
        await login(http, server)
        with pytest.raises(aiohttp.ClientError):
            await get_tickets(http, server)
        dropped = server.requests[1:]
        assert dropped
        assert all(r.path == "/api/tickets" and r.status is None for r in dropped)
        plan.clear()
        assert (await get_tickets(http, server))[0] == 200
        assert server.requests[-1].status == 200


async def test_latency_delays_each_answer(http: aiohttp.ClientSession) -> None:
    async with FakeAkana(latency=0.05) as server:
        began = time.perf_counter()
        await login(http, server)
        assert time.perf_counter() - began >= 0.05


# ---------------------------------------------------------------------- seeded data


def test_seeded_data_is_deterministic_and_varied() -> None:
    one = FakeAkana.seeded(tickets=300, seed=3).tickets
    assert one == FakeAkana.seeded(tickets=300, seed=3).tickets
    assert one != FakeAkana.seeded(tickets=300, seed=4).tickets

    uuid_id = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}\.acmepaymentscorp"
    for t in one:
        assert re.fullmatch(r"ticket\d{5}\.acmepaymentscorp", t["TicketID"])
        assert re.fullmatch(uuid_id, t["APIID"])
        assert "AppID" not in t or re.fullmatch(uuid_id, t["AppID"])
        assert t["Comments"] == t["CommentsPreview"]["Count"]
        assert set(t["TargetResources"]) == {"TargetResource"}
        assert set(t["BoardItemArtifacts"]) == {"BoardItemArtifact"}
    assert {t["State"] for t in one} == set(STATES)
    assert {t["Label"][0] for t in one} == set(LABELS)
    assert {t["Visibility"] for t in one} == {"Public", "Limited"}
    assert {t["Environment"] for t in one} == {"Production", "Sandbox"}
    assert {t["DescriptionMediaType"] for t in one} == {"text/plain", "text/markdown"}
    assert len({t["UserID"] for t in one}) >= 5
    assert len({len(t["Tag"]) for t in one}) == 4
    for optional in ("AppID", "PubDate", "Image", "UserName"):
        assert 0 < sum(optional in t for t in one) < len(one), optional
    assert any(t["BoardItemArtifacts"]["BoardItemArtifact"] for t in one)


def test_seeded_tickets_structure_into_models() -> None:
    fake = FakeAkana.seeded(tickets=1001, seed=1)
    tickets: list[Ticket] = structure(fake.tickets, list[Ticket], path="$.Ticket")
    assert len(tickets) == 1001
    assert all(t.created is not None and t.created.tzinfo is not None for t in tickets)
    assert any(t.app_id is None for t in tickets)
    assert any(t.pub_date is None for t in tickets)
    assert any(t.image is None for t in tickets)
    assert any(len(t.target_resources) == 3 for t in tickets)


def test_constructor_validation() -> None:
    with pytest.raises(ValueError):
        FakeAkana(tenant="a.b")
    with pytest.raises(ValueError):
        FakeAkana(users=[])
    with pytest.raises(ValueError):
        FakeAkana(tickets=[{"Title": "no id"}])
    with pytest.raises(LookupError):
        _ = FakeAkana(users=[FakeUser("a@b.c", "p", user_id="u.t", name="n")]).restricted_email


async def test_unknown_paths_and_wrong_verbs_are_404(
    fake: FakeAkana, http: aiohttp.ClientSession
) -> None:
    await login(http, fake)
    headers = {"Accept": V81, **csrf_headers(http, fake)}
    async with http.delete(f"{fake.url}/api/tickets", headers=headers) as wrong_verb:
        assert wrong_verb.status == 404
        assert await wrong_verb.json() == {"code": 404, "message": "Not Found"}
    async with http.get(f"{fake.url}/api/nothing", headers=headers) as unknown:
        assert unknown.status == 404
    assert [r.status for r in fake.requests[1:]] == [404, 404]
