"""ForwardProxy, the test kit's HTTP forward proxy: what it forwards, tunnels, refuses and
records, over real loopback connections."""

from __future__ import annotations

import asyncio
import base64
import socket

import aiohttp
import pytest

from arena_async.testing import FakeArena, ForwardProxy, ProxiedRequest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def raw(proxy: ForwardProxy, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", int(proxy.url.rsplit(":", 1)[1]))
    writer.write(request)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    return answer


async def test_forwards_absolute_form_requests_and_records_them() -> None:
    async with ForwardProxy() as proxy, FakeArena() as fake, aiohttp.ClientSession() as http:
        async with http.post(f"{fake.url}/login", json={"email": fake.email,
                                                       "password": fake.password},
                             proxy=proxy.url) as resp:
            assert resp.status == 200
            assert resp.headers["Connection"] == "close"
            assert "arenaSessionId" in await resp.json()
        assert proxy.requests == [ProxiedRequest("POST", f"{fake.url}/login", 200, False)]
        assert (proxy.forwarded, proxy.tunnels, proxy.refused) == (1, 0, 0)
        assert fake.requests[0].json()["email"] == fake.email  # the body passed whole
        proxy.clear()
        assert proxy.requests == []


async def test_asks_for_credentials_and_checks_them() -> None:
    async with ForwardProxy(username="u", password="p:w") as proxy, FakeArena() as fake, \
            aiohttp.ClientSession() as http:
        assert proxy.url_with_credentials == proxy.url.replace("http://", "http://u:p%3Aw@")
        async with http.get(f"{fake.url}/items", proxy=proxy.url) as resp:
            assert resp.status == 407
            assert resp.headers["Proxy-Authenticate"] == 'Basic realm="ForwardProxy"'
        good = "Basic " + base64.b64encode(b"u:p:w").decode()
        async with http.get(f"{fake.url}/items", proxy=proxy.url,
                            headers={"Proxy-Authorization": good}) as resp:
            assert resp.status == 401  # the fake's answer: no session
        assert [(r.status, r.authenticated) for r in proxy.requests] == [(407, False),
                                                                         (401, True)]
        assert proxy.refused == 1
        assert "Proxy-Authorization" not in fake.requests[0].headers
        assert "p:w" not in repr(proxy)


async def test_tunnels_connect_and_reports_unreachable_targets() -> None:
    async with ForwardProxy() as proxy, FakeArena() as fake:
        host = fake.url.removeprefix("http://").removesuffix("/v1")
        answer = await raw(proxy, f"CONNECT {host} HTTP/1.1\r\nHost: {host}\r\n\r\n"
                           "GET /_fake/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                           .encode())
        assert answer.startswith(b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200")
        dead = f"127.0.0.1:{free_port()}"
        answer = await raw(proxy, f"CONNECT {dead} HTTP/1.1\r\n\r\n".encode())
        assert answer.startswith(b"HTTP/1.1 502")
        answer = await raw(proxy, b"GET /origin-form HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400")
        assert [(r.method, r.status) for r in proxy.requests] == [
            ("CONNECT", 200), ("CONNECT", 502), ("GET", 400)]
        assert proxy.tunnels == 1


async def test_close_ends_open_tunnels() -> None:
    async with FakeArena() as fake:
        proxy = await ForwardProxy().start()
        host = fake.url.removeprefix("http://").removesuffix("/v1")
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", int(proxy.url.rsplit(":", 1)[1]))
        writer.write(f"CONNECT {host} HTTP/1.1\r\n\r\n".encode())
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        await proxy.close()
        assert await reader.read() == b""  # the tunnel was ended
        writer.close()
        await writer.wait_closed()
        await proxy.close()  # twice is fine


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="both username and password"):
        ForwardProxy(username="u")
    with pytest.raises(ValueError, match="no ':'"):
        ForwardProxy(username="a:b", password="p")
    with pytest.raises(ValueError, match="port"):
        ForwardProxy(port=70000)
    with pytest.raises(RuntimeError, match="not started"):
        _ = ForwardProxy().url
    with pytest.raises(RuntimeError, match="asks for no credentials"):
        _ = ForwardProxy().url_with_credentials
