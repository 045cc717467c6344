"""Answers FakeAkana does not give: wrapped single tickets, odd envelopes, odd cookies.

A small aiohttp app on loopback plays the server; each test sets what it answers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from arena_async import AkanaClient, LoginError, NotFoundError, ResponseFormatError

TICKET = {"TicketID": "ticket1.acme", "Created": "2015-05-12T17:27:06Z", "Title": "t"}
OTHER = {"TicketID": "ticket2.acme", "Created": "2015-05-12T17:27:07Z"}


class Server:
    """Answers ``login_cookies`` / ``login_body`` to a login, ``body`` to everything else."""

    def __init__(self) -> None:
        self.login_cookies: list[str] = ["AtmoAuthToken_acme=tok%3D1; Path=/; HttpOnly",
                                         "Csrf-Token_acme=csrf%3D1; Path=/"]
        self.login_body: Any = {"userName": "jo", "loginDomainID": "d.acme",
                                "pendingTasks": []}
        self.body: Any = {"Ticket": [TICKET]}
        self.seen: list[web.Request] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request)
        if request.path == "/api/login":
            response = web.Response(
                body=self.login_body if isinstance(self.login_body, bytes)
                else json.dumps(self.login_body).encode(), content_type="application/json")
            for cookie in self.login_cookies:
                response.headers.add("Set-Cookie", cookie)
            return response
        if request.path.startswith("/api/login/"):
            return web.Response(text="")
        body = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        return web.Response(body=body, content_type="application/vnd.soa.v81+json")


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", state.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield state
    finally:
        await runner.cleanup()


def client(server: Server, **kw: Any) -> AkanaClient:
    return AkanaClient(base_url=server.url, email="jo@acme", password="pw", **kw)


@pytest.mark.parametrize("body", [
    TICKET, {"Ticket": TICKET}, {"Ticket": [TICKET]}, {"Ticket": [OTHER, TICKET]},
])
async def test_get_accepts_a_bare_or_wrapped_ticket(server: Server, body: Any) -> None:
    server.body = body
    async with client(server) as akana:
        ticket = await akana.tickets.get("ticket1.acme")
    assert ticket.ticket_id == "ticket1.acme"
    assert ticket.created == datetime(2015, 5, 12, 17, 27, 6, tzinfo=UTC)


@pytest.mark.parametrize(("body", "error"), [
    ({"Ticket": []}, NotFoundError),
    ([TICKET], ResponseFormatError),
    ({"Ticket": "x"}, ResponseFormatError),
    ({"Title": "no id"}, ResponseFormatError),
    (b"<html>", ResponseFormatError),
])
async def test_get_refuses_what_is_not_one_ticket(server: Server, body: Any,
                                                  error: type[Exception]) -> None:
    server.body = body
    async with client(server) as akana:
        with pytest.raises(error):
            await akana.tickets.get("ticket1.acme")


@pytest.mark.parametrize(("body", "count"), [
    ({}, 0), ({"Ticket": None}, 0), ({"Ticket": []}, 0), ({"Ticket": TICKET}, 1),
    ({"Ticket": [TICKET, OTHER], "Other": 1}, 2),
])
async def test_list_envelopes(server: Server, body: Any, count: int) -> None:
    server.body = body
    async with client(server) as akana:
        assert len(await akana.tickets.list()) == count


@pytest.mark.parametrize(("body", "path"), [
    ([TICKET], "$"), ("x", "$"), ({"Ticket": 5}, "$.Ticket"),
    ({"Ticket": [TICKET, {"Created": "2015-05-12T17:27:06Z"}]}, "$.Ticket[1]"),
    ({"Ticket": [{"TicketID": "t", "Comments": "3"}]}, "$.Ticket[0].Comments"),
])
async def test_list_names_the_wire_path_of_a_bad_shape(server: Server, body: Any,
                                                       path: str) -> None:
    server.body = body
    async with client(server) as akana:
        with pytest.raises(ResponseFormatError) as info:
            await akana.tickets.list()
    assert info.value.path.startswith(path)
    assert info.value.resume_from == 0


async def test_tenant_comes_from_login_domain_when_several_tenants_set_cookies(
        server: Server) -> None:
    server.login_cookies = ["AtmoAuthToken_other=x; Path=/", "AtmoAuthToken_acme=tok; Path=/",
                            "Csrf-Token_acme=c; Path=/", "JSESSIONID=j; Path=/"]
    async with client(server) as akana:
        await akana.tickets.list()
        assert akana.tenant == "acme"
    sent = server.seen[1]
    assert sent.headers["Cookie"] == "AtmoAuthToken_acme=tok; Csrf-Token_acme=c"
    assert sent.headers["X-Csrf-Token_acme"] == "c"


async def test_several_tenants_and_no_hint_is_a_clear_login_error(server: Server) -> None:
    server.login_cookies = ["AtmoAuthToken_a=x", "AtmoAuthToken_b=y"]
    server.login_body = {"userName": "jo"}
    async with client(server) as akana:
        with pytest.raises(LoginError, match="tenant="):
            await akana.tickets.list()
    async with client(server, tenant="b") as akana:
        await akana.tickets.list()
    assert server.seen[-2].headers["Cookie"] == "AtmoAuthToken_b=y"


@pytest.mark.parametrize("cookies", [
    [], ["Csrf-Token_acme=c"], ["AtmoAuthToken_acme=; Max-Age=0"],
    ["AtmoAuthToken_acme=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT"],
])
async def test_a_login_without_a_token_cookie_is_a_login_error(server: Server,
                                                               cookies: list[str]) -> None:
    server.login_cookies = cookies
    async with client(server) as akana:
        with pytest.raises(LoginError, match="AtmoAuthToken_"):
            await akana.tickets.list()


async def test_a_login_answer_that_is_not_json_is_a_format_error(server: Server) -> None:
    server.login_body = b"<html>portal</html>"
    async with client(server) as akana:
        with pytest.raises(ResponseFormatError, match="/api/login"):
            await akana.tickets.list()


async def test_a_pending_task_object_is_named(server: Server) -> None:
    server.login_body = {"PendingTasks": [{"name": "AcceptAgreement"}], "loginDomainID": "d.acme"}
    async with client(server) as akana:
        with pytest.raises(LoginError, match="AcceptAgreement"):
            await akana.tickets.list()
    assert server.seen[-1].path == "/api/login/endsession"  # the useless token is ended
