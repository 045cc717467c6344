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
        assert fake.stats.tokens_issued == 2


@pytest.mark.parametrize(
    ("form", "headers", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, {"Authorization": "WRONG"}, 400, "invalid_request"),
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
