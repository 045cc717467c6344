"""FakeArena's OAuth 2.0 token endpoint (client credentials, RFC 6749 4.4) and its tokens.

:class:`OAuthTokens` registers clients, answers ``POST /oauth/token`` (the client
authenticated by HTTP Basic, its id and secret form-urlencoded as RFC 6749 2.3.1 says
or verbatim, *or* by the ``client_id`` / ``client_secret`` form fields) with
``{"access_token", "token_type": "bearer", "expires_in"}``, refuses with RFC 6749 5.2
errors (401 ``invalid_client``, 400 ``invalid_request`` / ``unsupported_grant_type``),
and keeps the tokens it issued until they expire or are ended. Checking a bearer token
on the API (and the ``expire_sessions_every`` rule) stays in the fake.

Example::

    tokens = OAuthTokens(lifetime=3600.0, clock=time.time, stats=FakeArenaStats(),
                         logger=logging.getLogger("arena_async.testing._fake_arena"))
    tokens.add_client("etl-machine", "s3cret")
    app.router.add_post("/oauth/token", tokens.handle)
"""

from __future__ import annotations

import base64
import logging
import secrets
import urllib.parse
from collections.abc import Callable
from typing import Any, Final, Protocol

import attrs
from aiohttp import web

from ._server import _authorization

__all__ = ["OAuthTokens"]

_NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class _Counters(Protocol):
    token_requests: int
    tokens_issued: int
    failed_token_requests: int
    tokens_expired: int


@attrs.define(slots=True)
class _Token:
    client_id: str
    expires_at: float | None


class _OAuthError(Exception):
    """An RFC 6749 section 5.2 error answer of the token endpoint."""

    def __init__(self, status: int, error: str, description: str, *, basic: bool = False) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.basic = basic

    def response(self) -> web.Response:
        headers = dict(_NO_STORE)
        if self.basic:  # RFC 6749 5.2: answer the scheme the client tried
            headers["WWW-Authenticate"] = 'Basic realm="fake-arena"'
        return web.json_response(
            {"error": self.error, "error_description": self.description},
            status=self.status,
            headers=headers,
        )


def _bad_client(*, basic: bool) -> _OAuthError:
    return _OAuthError(401, "invalid_client", "Client authentication failed.", basic=basic)


class OAuthTokens:
    """The token endpoint's clients and the access tokens it issued.

    ``lifetime``: seconds a token lives (None: forever; settable); ``clock``: epoch
    seconds; ``stats``: the fake's counters (``token_requests``, ``tokens_issued``,
    ``failed_token_requests``, ``tokens_expired``); ``logger``: the fake's own (what the
    endpoint does is logged as the fake's doing, under the fake's module name).

    Example: ``tokens.add_client("id", "secret"); assert tokens.active == 0``
    """

    def __init__(
        self,
        *,
        lifetime: float | None,
        clock: Callable[[], float],
        stats: _Counters,
        logger: logging.Logger,
    ) -> None:
        self.lifetime = lifetime
        self._logger = logger
        self._clock = clock
        self._stats = stats
        self._clients: dict[str, str] = {}
        self._tokens: dict[str, _Token] = {}

    def add_client(self, client_id: str, client_secret: str) -> None:
        """Register (or re-key) a client."""
        if not client_id or not client_secret:
            raise ValueError("client_id and client_secret must be non-empty strings")
        self._clients[client_id] = client_secret

    @property
    def active(self) -> int:
        """How many tokens are live (issued and not yet expired or ended)."""
        now = self._clock()
        return sum(1 for t in self._tokens.values() if t.expires_at is None or now < t.expires_at)

    def expire_all(self) -> int:
        """End every token; returns how many were live (counted as expired)."""
        count = self.active
        self._tokens.clear()
        self._stats.tokens_expired += count
        return count

    def end(self, token: str) -> None:
        """End ``token`` if it was issued (counted as expired)."""
        if self._tokens.pop(token, None) is not None:
            self._stats.tokens_expired += 1

    def known(self, token: str) -> bool:
        """Whether ``token`` was issued and not ended (expired or not)."""
        return token in self._tokens

    def expired(self, token: str) -> bool:
        """Whether the issued ``token`` has outlived its lifetime."""
        expires_at = self._tokens[token].expires_at
        return expires_at is not None and self._clock() >= expires_at

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``POST /oauth/token``: a token, or an RFC 6749 5.2 error."""
        self._stats.token_requests += 1
        try:
            return await self._grant(request)
        except _OAuthError as exc:
            self._stats.failed_token_requests += 1
            self._logger.debug("FakeArena refused a token request: %s", exc.error)
            return exc.response()

    async def _grant(self, request: web.Request) -> web.StreamResponse:
        if request.content_type != "application/x-www-form-urlencoded":
            raise _OAuthError(
                400, "invalid_request", "The body must be application/x-www-form-urlencoded."
            )
        form = await request.post()
        basic = _basic_credentials(request)
        form_id, form_secret = form.get("client_id"), form.get("client_secret")
        if basic is not None and (form_id is not None or form_secret is not None):
            raise _OAuthError(
                400, "invalid_request", "Use one client authentication method, not two."
            )
        grant = form.get("grant_type")
        if grant is None:
            raise _OAuthError(400, "invalid_request", "grant_type is missing.")
        if grant != "client_credentials":
            raise _OAuthError(
                400, "unsupported_grant_type", "Only client_credentials is supported."
            )
        candidates = basic if basic is not None else [(form_id, form_secret)]
        client_id = next(
            (
                cid
                for cid, secret in candidates
                if isinstance(cid, str)
                and isinstance(secret, str)
                and self._clients.get(cid) == secret
            ),
            None,
        )
        if client_id is None:
            raise _bad_client(basic=basic is not None)
        token = f"FAKE-TOKEN-{secrets.token_urlsafe(24)}"
        lifetime = self.lifetime
        self._tokens[token] = _Token(
            client_id, None if lifetime is None else self._clock() + lifetime
        )
        self._stats.tokens_issued += 1
        self._logger.debug("FakeArena issued an access token (%d live)", len(self._tokens))
        answer: dict[str, Any] = {"access_token": token, "token_type": "bearer"}
        if lifetime is not None:
            answer["expires_in"] = int(lifetime) if lifetime == int(lifetime) else lifetime
        return web.json_response(answer, headers=_NO_STORE)


def _basic_credentials(request: web.Request) -> list[tuple[str, str]] | None:
    """The (id, secret) pairs a Basic header may mean: as RFC 6749 2.3.1 says (each
    form-urlencoded before base64) and, as many clients send them, verbatim."""
    authorization = _authorization(request.headers)
    if authorization is None:
        return None
    scheme, encoded = authorization
    if scheme != "basic":
        raise _OAuthError(400, "invalid_request", "Unsupported Authorization scheme.")
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise _bad_client(basic=True) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise _bad_client(basic=True)
    return [
        (urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)),
        (client_id, secret),
    ]
