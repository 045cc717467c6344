"""ForwardProxy: a small HTTP forward proxy on loopback that counts what passes through it.

It speaks what corporate proxies speak to clients: ``CONNECT host:port`` opens a tunnel
(what an HTTPS request goes through; the proxy sees only the host), and a request in
absolute form (``GET http://host:port/path HTTP/1.1``) is forwarded (what a plain-http
request is; the proxy sees it whole). With ``username`` and ``password`` it demands
``Proxy-Authorization: Basic`` and answers ``407 Proxy Authentication Required`` without
them. Each forwarded exchange ends with its connection (``Connection: close``); request
bodies must carry a ``Content-Length``.

Example::

    async with ForwardProxy(username="u", password="p") as proxy, FakeArena() as fake:
        async with ArenaClient(base_url=fake.url, email=fake.email, password=fake.password,
                               proxy=proxy.url_with_credentials) as arena:
            await arena.items.tickets.list(guid)
        assert [r.target.split("/v1")[-1] for r in proxy.requests] == [
            "/login", f"/items/{guid}/tickets", "/logout"]
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
from types import TracebackType
from typing import Final, Self
from urllib.parse import quote, urlsplit

import attrs

__all__ = ["ForwardProxy", "ProxiedRequest"]

_HOP_BY_HOP: Final = frozenset({"connection", "keep-alive", "proxy-authorization",
                                "proxy-connection", "proxy-authenticate", "te", "trailer",
                                "upgrade"})
_MAX_HEAD: Final = 65536


@attrs.frozen(slots=True)
class ProxiedRequest:
    """One request a :class:`ForwardProxy` received.

    ``method`` (``"CONNECT"`` for a tunnel); ``target`` ``host:port`` for a tunnel, the
    absolute URL otherwise; ``status`` what the client got: 200 for a tunnel opened, the
    server's status for a forwarded request, 407 (credentials missing or wrong), 400 (not
    a proxy request), 502 (the server could not be reached); ``authenticated`` whether it
    carried the right credentials (False when the proxy asks for none).

    Example: ``ProxiedRequest("CONNECT", "127.0.0.1:8443", 200, True)``
    """

    method: str
    target: str
    status: int
    authenticated: bool


class ForwardProxy:
    """An HTTP forward proxy on ``host:port`` (``127.0.0.1`` and a free port by default),
    for tests of clients behind a corporate proxy. See the module doc.

    - :attr:`url` (``http://127.0.0.1:<port>``) and, with credentials,
      :attr:`url_with_credentials` (``http://user:password@127.0.0.1:<port>``);
    - :attr:`requests`: every :class:`ProxiedRequest` in arrival order; :attr:`tunnels`,
      :attr:`forwarded`, :attr:`refused` count them; :meth:`clear` forgets them;
    - ``close()`` ends every tunnel and connection. The password is never shown.

    Example::

        async with ForwardProxy() as proxy:
            ...  # a client with proxy=proxy.url
            assert proxy.tunnels >= 1
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 username: str | None = None, password: str | None = None) -> None:
        if (username is None) != (password is None):
            raise ValueError("give both username and password (proxy authentication) or "
                             "neither")
        if username is not None and (not username or ":" in username):
            raise ValueError("username must be non-empty and hold no ':'")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer from 0 to 65535, not {port!r}")
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._expected: bytes | None = None
        if username is not None and password is not None:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            self._expected = f"Basic {token}".encode()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._requests: list[ProxiedRequest] = []
        self._url: str | None = None

    def __repr__(self) -> str:
        auth = " (with credentials)" if self._expected else ""
        return f"ForwardProxy(url={self._url!r}{auth})"

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> Self:
        """Listen; returns the proxy. :attr:`url` is valid afterwards."""
        if self._server is not None:
            raise RuntimeError("ForwardProxy is already started")
        self._server = await asyncio.start_server(self._serve, self._host, self._port,
                                                  limit=_MAX_HEAD)
        port = self._server.sockets[0].getsockname()[1]
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._url = f"http://{host}:{port}"
        return self

    async def close(self) -> None:
        """Stop listening and end every connection and tunnel. Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in list(self._writers):
            await _close(writer)
        await server.wait_closed()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    # -- what a test reads ---------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://<host>:<port>``, without credentials; once started."""
        if self._url is None:
            raise RuntimeError("ForwardProxy is not started")
        return self._url

    @property
    def url_with_credentials(self) -> str:
        """:attr:`url` with ``username:password@`` (percent-encoded); the proxy must have
        credentials. Example: ``ArenaClient(..., proxy=proxy.url_with_credentials)``"""
        if self._username is None or self._password is None:
            raise RuntimeError("this ForwardProxy asks for no credentials: use url")
        user, password = quote(self._username, safe=""), quote(self._password, safe="")
        return self.url.replace("http://", f"http://{user}:{password}@", 1)

    @property
    def requests(self) -> list[ProxiedRequest]:
        """Every request received, in arrival order (a copy)."""
        return list(self._requests)

    @property
    def tunnels(self) -> int:
        """``CONNECT`` tunnels opened (status 200)."""
        return sum(1 for r in self._requests if r.method == "CONNECT" and r.status == 200)

    @property
    def forwarded(self) -> int:
        """Plain-http requests forwarded to their server (any status it answered)."""
        return sum(1 for r in self._requests
                   if r.method != "CONNECT" and r.status not in (400, 407, 502))

    @property
    def refused(self) -> int:
        """Requests answered 407 (credentials missing or wrong)."""
        return sum(1 for r in self._requests if r.status == 407)

    def clear(self) -> None:
        """Forget the recorded requests."""
        self._requests.clear()

    # -- serving -------------------------------------------------------------------------
    def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._connection(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._one_request(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            await _close(writer)

    async def _one_request(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            await _answer(writer, 400, "Bad Request")
            return
        method, target, _version = parts
        headers = [(name.strip(), value.strip()) for name, _, value in
                   (line.partition(":") for line in lines[1:] if line)]
        authenticated = self._authenticated(headers)
        if self._expected is not None and not authenticated:
            self._record(method, target, 407, False)
            await _answer(writer, 407, "Proxy Authentication Required",
                          ("Proxy-Authenticate", 'Basic realm="ForwardProxy"'))
            return
        if method == "CONNECT":
            await self._tunnel(target, reader, writer, authenticated)
        else:
            await self._forward(method, target, headers, reader, writer,
                                authenticated=authenticated)

    def _authenticated(self, headers: list[tuple[str, str]]) -> bool:
        if self._expected is None:
            return False
        given = next((v for k, v in headers if k.lower() == "proxy-authorization"), "")
        return secrets.compare_digest(given.encode(), self._expected)

    def _record(self, method: str, target: str, status: int, authenticated: bool) -> None:
        self._requests.append(ProxiedRequest(method, target, status, authenticated))

    async def _tunnel(self, target: str, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter, authenticated: bool) -> None:
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        try:
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
        except (OSError, ValueError):
            self._record("CONNECT", target, 502, authenticated)
            await _answer(writer, 502, "Bad Gateway")
            return
        self._record("CONNECT", target, 200, authenticated)
        self._writers.add(up_writer)
        try:
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._writers.discard(up_writer)
            await _close(up_writer)

    async def _forward(self, method: str, target: str, headers: list[tuple[str, str]],
                       reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                       authenticated: bool) -> None:
        url = urlsplit(target)
        if url.scheme != "http" or not url.hostname:
            self._record(method, target, 400, authenticated)
            await _answer(writer, 400, "Bad Request")  # not absolute form: not for a proxy
            return
        length = next((v for k, v in headers if k.lower() == "content-length"), "0")
        body = await reader.readexactly(int(length)) if length.isdigit() else b""
        try:
            up_reader, up_writer = await asyncio.open_connection(url.hostname, url.port or 80)
        except OSError:
            self._record(method, target, 502, authenticated)
            await _answer(writer, 502, "Bad Gateway")
            return
        self._writers.add(up_writer)
        try:
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            kept = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP]
            up_writer.write(_head(f"{method} {path} HTTP/1.1", [*kept, ("Connection", "close")])
                            + body)
            await up_writer.drain()
            answer = await up_reader.readuntil(b"\r\n\r\n")
            lines = answer.decode("latin-1").split("\r\n")
            status_line = lines[0]
            status = int(status_line.split(" ")[1])
            answer_headers = [(k.strip(), v.strip()) for k, _, v in
                              (line.partition(":") for line in lines[1:] if line)
                              if k.strip().lower() not in _HOP_BY_HOP]
            self._record(method, target, status, authenticated)
            writer.write(_head(status_line, [*answer_headers, ("Connection", "close")]))
            await _pipe(up_reader, writer)
        finally:
            self._writers.discard(up_writer)
            await _close(up_writer)


def _head(first: str, headers: list[tuple[str, str]]) -> bytes:
    return "\r\n".join([first, *(f"{k}: {v}" for k, v in headers), "", ""]).encode("latin-1")


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str,
                  *extra: tuple[str, str]) -> None:
    writer.write(_head(f"HTTP/1.1 {status} {reason}",
                       [*extra, ("Content-Length", "0"), ("Connection", "close")]))
    await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then half-close the other side."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof() and not writer.is_closing():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()
