"""FakeArena's item search (GET /items, GET /items/{guid}) and OAuth 2.0 token endpoint,
driven with a plain aiohttp.ClientSession over loopback."""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from arena_async.testing import FakeArena, Fault

REMAINING = "X-Arena-Requests-Remaining"


class Clock:
    """An injectable clock the test moves by hand."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def basic(client_id: str, secret: str) -> str:
    raw = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


async def token_request(
    http: aiohttp.ClientSession,
    fake: FakeArena,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    data = {"grant_type": "client_credentials"} if form is None else form
    async with http.post(fake.token_url, data=data, headers=headers or {}) as resp:
        return resp.status, dict(resp.headers), await resp.json()


async def get_token(http: aiohttp.ClientSession, fake: FakeArena) -> str:
    status, _, body = await token_request(
        http, fake, headers={"Authorization": basic(fake.client_id, fake.client_secret)}
    )
    assert status == 200, body
    token: str = body["access_token"]
    return token


async def api_get(
    http: aiohttp.ClientSession, fake: FakeArena, path: str, headers: dict[str, str]
) -> tuple[int, dict[str, str], Any]:
    async with http.get(f"{fake.url}{path}", headers=headers) as resp:
        return resp.status, dict(resp.headers), await resp.json()


# ---------------------------------------------------------------------------- OAuth


async def test_token_by_basic_auth_then_bearer_requests(http: aiohttp.ClientSession) -> None:
    async with FakeArena(quota_limit=100) as fake:
        guid = fake.add_item()
        assert fake.token_url == fake.url.removesuffix("/v1") + "/oauth/token"
        status, headers, body = await token_request(
            http, fake, headers={"Authorization": basic(fake.client_id, fake.client_secret)}
        )
        assert status == 200
        assert set(body) == {"access_token", "token_type", "expires_in"}
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 3600
        assert isinstance(body["expires_in"], int)
        assert headers["Cache-Control"] == "no-store"
        assert REMAINING not in headers  # not an Arena API answer: no quota headers
        token = body["access_token"]
        status, headers, page = await api_get(
            http, fake, f"/items/{guid}/tickets", {"Authorization": f"Bearer {token}"}
        )
        assert status == 200
        assert page == {"count": 0, "results": []}
        # The token request was not counted: the first API request leaves 99.
        assert headers[REMAINING] == "99"
        assert fake.quota_remaining == 99
        stats = fake.stats
        assert (stats.token_requests, stats.tokens_issued, stats.failed_token_requests) == (1, 1, 0)
        assert stats.bearer_requests == 1
        assert stats.requests == 2
        assert stats.by_route["POST /oauth/token"] == 1
        assert fake.active_tokens == 1
        assert [r.has_bearer for r in fake.requests] == [False, True]
        assert not fake.requests[1].has_session


async def test_token_by_form_fields(http: aiohttp.ClientSession) -> None:
    async with FakeArena() as fake:
        fake.add_oauth_client("machine one", "s3cret+/=%")
        status, _, body = await token_request(
            http,
            fake,
            form={
                "grant_type": "client_credentials",
                "client_id": "machine one",
                "client_secret": "s3cret+/=%",
            },
        )
        assert status == 200
        assert body["token_type"] == "bearer"
        # Basic with the RFC 6749 2.3.1 form-encoding of id and secret works too.
        status, _, body = await token_request(
            http, fake, headers={"Authorization": basic("machine one", "s3cret+/=%")}
        )
        assert status == 200
        # Verbatim (not form-encoded) Basic credentials, as many clients send them.
        raw = base64.b64encode(b"machine one:s3cret+/=%").decode()
        status, _, body = await token_request(http, fake, headers={"Authorization": f"Basic {raw}"})
        assert status == 200
        assert fake.stats.tokens_issued == 3


@pytest.mark.parametrize(
    ("form", "headers", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, {"Authorization": "WRONG"}, 400, "invalid_request"),
        ({"grant_type": "client_credentials"}, {"Authorization": "Basic !!"}, 401,
         "invalid_client"),
        (
            {"grant_type": "client_credentials"},
            {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
            401,
            "invalid_client",
        ),
        ({"grant_type": "client_credentials"}, None, 401, "invalid_client"),
        (
            {"grant_type": "client_credentials", "client_id": "fake-client-id"},
            None,
            401,
            "invalid_client",
        ),
        (
            {
                "grant_type": "client_credentials",
                "client_id": "fake-client-id",
                "client_secret": "wrong",
            },
            None,
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"},
            None,
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "password", "client_id": "fake-client-id"},
            None,
            400,
            "unsupported_grant_type",
        ),
        ({"client_id": "fake-client-id"}, None, 400, "invalid_request"),
    ],
)
async def test_token_refusals(
    http: aiohttp.ClientSession,
    form: dict[str, str],
    headers: dict[str, str] | None,
    status: int,
    error: str,
) -> None:
    async with FakeArena() as fake:
        got, _, body = await token_request(http, fake, form=form, headers=headers)
        assert (got, body["error"]) == (status, error)
        assert set(body) == {"error", "error_description"}
        assert "fake-client-secret" not in json.dumps(body)
        assert fake.stats.failed_token_requests == 1
        assert fake.stats.tokens_issued == 0
        assert fake.active_tokens == 0


async def test_bad_basic_secret_answers_www_authenticate(http: aiohttp.ClientSession) -> None:
    async with FakeArena(quota_limit=5) as fake:
        status, headers, body = await token_request(
            http, fake, headers={"Authorization": basic(fake.client_id, "wrong")}
        )
        assert status == 401
        assert body["error"] == "invalid_client"
        assert headers["WWW-Authenticate"].startswith("Basic")
        assert fake.stats.unauthorized == 1
        assert fake.quota_remaining == 5


async def test_two_client_auth_methods_refused(http: aiohttp.ClientSession) -> None:
    async with FakeArena() as fake:
        status, _, body = await token_request(
            http,
            fake,
            form={"grant_type": "client_credentials", "client_id": fake.client_id},
            headers={"Authorization": basic(fake.client_id, fake.client_secret)},
        )
        assert (status, body["error"]) == (400, "invalid_request")


async def test_token_needs_a_form_body(http: aiohttp.ClientSession) -> None:
    async with (
        FakeArena() as fake,
        http.post(
            fake.token_url,
            json={"grant_type": "client_credentials"},
            headers={"Authorization": basic(fake.client_id, fake.client_secret)},
        ) as resp,
    ):
        assert resp.status == 400
        assert (await resp.json())["error"] == "invalid_request"


async def test_token_expires_on_the_fake_clock(http: aiohttp.ClientSession) -> None:
    clock = Clock()
    async with FakeArena(token_lifetime=30, clock=clock, quota_limit=10) as fake:
        guid = fake.add_item()
        token = await get_token(http, fake)
        auth = {"Authorization": f"Bearer {token}"}
        clock.now += 29.9
        status, _, _ = await api_get(http, fake, f"/items/{guid}/items", auth)
        assert status == 200
        clock.now += 0.1
        status, headers, body = await api_get(http, fake, f"/items/{guid}/items", auth)
        # Like an expired session: Arena's 401 body, quota headers, counted.
        assert status == 401
        assert body["errors"][0]["code"] == 401
        assert headers[REMAINING] == "8"
        assert fake.stats.tokens_expired == 1
        assert fake.active_tokens == 0
        # A fresh token works again.
        fresh = await get_token(http, fake)
        status, _, _ = await api_get(
            http, fake, f"/items/{guid}/items", {"Authorization": f"Bearer {fresh}"}
        )
        assert status == 200
        assert fake.stats.token_requests == 2
        assert fake.quota_remaining == 7


async def test_fractional_lifetime_and_forever(http: aiohttp.ClientSession) -> None:
    async with FakeArena(token_lifetime=0.5) as fake:
        _, _, body = await token_request(
            http, fake, headers={"Authorization": basic(fake.client_id, fake.client_secret)}
        )
        assert body["expires_in"] == 0.5
    async with FakeArena(token_lifetime=None) as fake:
        _, _, body = await token_request(
            http, fake, headers={"Authorization": basic(fake.client_id, fake.client_secret)}
        )
        assert "expires_in" not in body
    with pytest.raises(ValueError, match="token_lifetime"):
        FakeArena(token_lifetime=0)


async def test_unknown_token_expire_tokens_and_faults(http: aiohttp.ClientSession) -> None:
    async with FakeArena(expire_sessions_every=3) as fake:
        guid = fake.add_item()
        status, _, _ = await api_get(
            http, fake, f"/items/{guid}/items", {"Authorization": "Bearer nope"}
        )
        assert status == 401
        token = await get_token(http, fake)
        auth = {"Authorization": f"Bearer {token}"}
        assert (await api_get(http, fake, f"/items/{guid}/items", auth))[0] == 200
        # expire_sessions_every counts bearer requests too (the 3rd authenticated one).
        assert (await api_get(http, fake, f"/items/{guid}/items", auth))[0] == 200
        assert (await api_get(http, fake, f"/items/{guid}/items", auth))[0] == 401
        assert fake.stats.tokens_expired == 1
    async with FakeArena() as fake:
        guid = fake.add_item()
        token = await get_token(http, fake)
        auth = {"Authorization": f"Bearer {token}"}
        assert fake.expire_tokens() == 1
        assert (await api_get(http, fake, f"/items/{guid}/items", auth))[0] == 401
        token = await get_token(http, fake)
        auth = {"Authorization": f"Bearer {token}"}
        fake.faults.add(Fault("expire_session", path=r"/items$", times=1))
        assert (await api_get(http, fake, f"/items/{guid}/items", auth))[0] == 401
        assert fake.stats.tokens_expired == 2


async def test_bearer_decides_over_session_and_token_faults(http: aiohttp.ClientSession) -> None:
    async with FakeArena() as fake:
        guid = fake.add_item()
        async with http.post(
            f"{fake.url}/login", json={"email": fake.email, "password": fake.password}
        ) as resp:
            session_id = (await resp.json())["arenaSessionId"]
        both = {"arena_session_id": session_id, "Authorization": "Bearer unknown"}
        assert (await api_get(http, fake, f"/items/{guid}/items", both))[0] == 401
        # Faults can target the token endpoint.
        fake.faults.add(Fault("status", status=503, path=r"/oauth/token$", times=1))
        status, _, _ = await token_request(
            http, fake, headers={"Authorization": basic(fake.client_id, fake.client_secret)}
        )
        assert status == 503
        assert (await get_token(http, fake)).startswith("FAKE-TOKEN-")


# ---------------------------------------------------------------------------- GET /items


async def login(http: aiohttp.ClientSession, fake: FakeArena) -> dict[str, str]:
    async with http.post(
        f"{fake.url}/login", json={"email": fake.email, "password": fake.password}
    ) as resp:
        return {"arena_session_id": (await resp.json())["arenaSessionId"]}


async def search(
    http: aiohttp.ClientSession, fake: FakeArena, auth: dict[str, str], **params: str
) -> tuple[int, Any]:
    async with http.get(f"{fake.url}/items", params=params, headers=auth) as resp:
        return resp.status, await resp.json()


def numbers(body: Any) -> list[str]:
    return [item["number"] for item in body["results"]]


async def test_seeded_guids_are_unchanged_by_item_data() -> None:
    # Item metadata draws from its own generator: the n-th seeded GUID is still the n-th
    # draw of random.Random(seed), as before items had numbers and categories.
    import random
    import string

    rng = random.Random(1)
    alphabet = string.ascii_uppercase + string.digits
    expected = ["".join(rng.choices(alphabet, k=20)) for _ in range(5)]
    async with FakeArena.seeded(items=5, seed=1) as fake:
        assert fake.item_guids == expected
        assert [fake.item(g)["number"] for g in expected] == [f"PN-{n:06d}" for n in range(1, 6)]


async def test_search_paging_rules_and_errors(http: aiohttp.ClientSession) -> None:
    async with FakeArena(quota_limit=100) as fake:
        guids = [fake.add_item() for _ in range(25)]
        auth = await login(http, fake)
        status, body = await search(http, fake, auth)
        assert status == 200
        assert body["count"] == 20  # the documented default limit
        assert [i["guid"] for i in body["results"]] == guids[:20]
        status, body = await search(http, fake, auth, offset="20", limit="400")
        assert [i["guid"] for i in body["results"]] == guids[20:]
        status, body = await search(http, fake, auth, offset="25", limit="5")
        assert (status, body) == (200, {"count": 0, "results": []})
        for params, code in (
            ({"limit": "0"}, 3220),
            ({"limit": "401"}, 3220),
            ({"limit": "x"}, 3220),
            ({"offset": "-1"}, 3041),
            ({"responseview": "compact"}, 400),
            ({"inAssembly": "yes"}, 400),
            ({"includeChildCategories": "1"}, 400),
            ({"assemblyType": "BIG"}, 400),
            ({"effectiveDateTime": "yesterday"}, 400),
            ({"criteria": "{bad"}, 400),
            ({"criteria": "[1]"}, 400),
            ({"criteria": '{"number": "PN-1"}'}, 400),  # the old object form
            ({"criteria": '[[{"attribute":"color","operator":"IS_EQUAL_TO","value":"x"}]]'},
             3004),
        ):
            status, body = await search(http, fake, auth, **params)
            assert status == 400, params
            assert body["errors"][0]["code"] == code, params
        # Every search counted against the quota, errors too.
        assert fake.quota_remaining == 100 - 3 - 13
        async with http.get(f"{fake.url}/items/NOPE", headers=auth) as resp:
            assert resp.status == 400
            assert (await resp.json())["errors"][0]["code"] == 3011


async def test_search_filters_wildcards_and_views(http: aiohttp.ClientSession) -> None:
    async with FakeArena() as fake:
        resistors = fake.add_category("Resistors", parent="Electrical")
        fake.add_category("Thin film", parent="Resistors")
        assert fake.add_category("Resistors") == resistors  # exists: the same category
        a = fake.add_item(number="PN-1", category="Thin film", lifecycle_stage="IN_PRODUCTION")
        b = fake.add_item(number="PN-12", category="Resistors", lifecycle_phase="Prototype")
        c = fake.add_item(
            number="XX-1", category="Electrical", owner="Dee Fox", lifecycle_stage="OBSOLETE"
        )
        auth = await login(http, fake)
        cases: list[tuple[dict[str, str], list[str]]] = [
            ({"number": "PN-1"}, ["PN-1"]),
            ({"number": "PN-1*"}, ["PN-1", "PN-12"]),
            ({"number": "pn-1*"}, ["PN-1", "PN-12"]),
            ({"number": "*"}, ["PN-1", "PN-12", "XX-1"]),
            ({"number": "PN*1"}, []),  # only a trailing * is a wildcard
            ({"category.name": "Resistors"}, ["PN-12"]),
            (
                {"category.name": "Electrical", "includeChildCategories": "true"},
                ["PN-1", "PN-12", "XX-1"],
            ),
            ({"category.name": "Resistors", "includeChildCategories": "TRUE"}, ["PN-1", "PN-12"]),
            ({"category.name": "Res*", "includeChildCategories": "true"}, ["PN-1", "PN-12"]),
            ({"lifecyclePhase.stage": "IN_PRODUCTION"}, ["PN-1"]),
            ({"lifecyclePhase.stage": "IN_DESIGN"}, ["PN-12"]),  # a new phase's default stage
            ({"owner.fullName": "Dee*"}, ["XX-1"]),
            (
                {"criteria": json.dumps([[{"attribute": "number", "operator": "STARTS_WITH",
                                           "value": "PN-1"}]]), "inAssembly": "false"},
                ["PN-1"],
            ),
            (
                {"criteria": json.dumps([[{"attribute": "category.name",
                                           "operator": "IS_EQUAL_TO", "value": "Resistors"}]]),
                 "number": "PN-12"},
                ["PN-12"],
            ),
        ]
        for params, expected in cases:
            status, body = await search(http, fake, auth, **params)
            assert status == 200, (params, body)
            assert numbers(body) == expected, params
        status, body = await search(http, fake, auth, responseview="minimum", number="PN-1")
        assert body["results"] == [fake.item(a, view="minimum")]
        assert set(body["results"][0]) == {"guid", "number", "url"}
        status, body = await search(http, fake, auth, responseview="full", number="XX-1")
        assert body["results"] == [fake.item(c)]
        async with http.get(f"{fake.url}/items/{b}", headers=auth) as resp:
            assert await resp.json() == fake.item(b)
        assert fake.item(b)["lifecyclePhase"]["name"] == "Prototype"


async def test_add_item_checks_and_bearer_search(http: aiohttp.ClientSession) -> None:
    async with FakeArena() as fake:
        with pytest.raises(ValueError, match="assembly_type"):
            fake.add_item(assembly_type="BIG")
        guid = fake.add_item("G" * 20, number="N-1", in_assembly=True, fields={"uom": "kg"})
        with pytest.raises(ValueError, match="exists"):
            fake.add_item("G" * 20)
        assert fake.item(guid)["uom"] == "kg"
        token = await get_token(http, fake)
        status, body = await search(
            http, fake, {"Authorization": f"Bearer {token}"}, inAssembly="true"
        )
        assert status == 200
        assert numbers(body) == ["N-1"]
