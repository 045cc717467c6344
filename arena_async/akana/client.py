"""AkanaClient: the facade over the session pool, the cookie auth and the tickets resource."""

from __future__ import annotations

import asyncio
import os
import random
import re
import ssl as _ssl
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

import aiohttp

from .._checks import (
    check_flag,
    check_int,
    check_one_token,
    check_positive_int,
    check_rate,
    check_timeout,
)
from .._client import (
    BaseClient,
    Clock,
    Sleep,
    check_base_url,
    check_retry,
    check_session,
    check_test_hooks,
    check_trace_configs,
)
from .._limiter import Limiter
from .._network import network_settings
from .._session import DEFAULT_MAX_ANSWER_SIZE
from .._transport import Transport
from ..credentials import AkanaCredential, akana_credential, check_tenant
from ..policies import RetryPolicy
from ._auth import AkanaAuth
from .tickets import KNOWN_API_VERSIONS, Tickets

__all__ = ["KNOWN_API_VERSIONS", "AkanaClient"]

_API_VERSION = re.compile(r"v[0-9]{1,4}")


class AkanaClient(BaseClient):
    """An asyncio client for the Akana API Platform (Community Manager) REST API.

    Credentials: ``auth=`` one of :class:`~arena_async.Login`,
    :class:`~arena_async.DirectoryLogin` (a directory/LDAP user) or
    :class:`~arena_async.GivenCookies`; the keyword arguments below are a shorthand that
    builds the same object (giving both is a ``ValueError``: see
    :mod:`arena_async.credentials`).

    Log in with ``email`` + ``password`` on first use (``POST /api/login``; the session
    is ended with ``GET /api/login/endsession`` on close), or reuse an existing session's
    ``auth_token`` (the ``AtmoAuthToken_{tenant}`` cookie value) with its ``tenant`` and,
    when CSRF prevention is on, ``csrf_token`` (the ``Csrf-Token_{tenant}`` cookie value,
    as is). A given token is never logged out; it is renewed before it lapses (its expiry
    read from the cookie, or learned by renewing it first) and once when it is refused;
    with credentials too, a token that cannot be renewed is replaced by a login.

    ``base_url`` is the portal root (``https://portal.example.com``; the client adds
    ``/api/...``). ``tenant`` (the fedmemberid) is learned from the login cookies when not
    given. ``api_version`` picks ``Accept: application/vnd.soa.{api_version}+json``:
    ``v72``, ``v80`` and ``v81`` are documented; any ``v<digits>`` is accepted for newer
    platforms, and a version the server does not serve shows up as a
    :class:`~arena_async.NotFoundError` that names it. Tokens are renewed before they
    lapse (see :mod:`arena_async.akana._auth`). Akana has no quota: requests are bounded
    by ``max_concurrency`` and the optional ``requests_per_second`` only.

    Example::

        async with AkanaClient(base_url="https://portal.example.com",
                               email=e, password=p) as akana:
            async for ticket in akana.tickets.iter(state="OPEN"):
                print(ticket.ticket_id, ticket.title)

    Observability: ``trace_configs`` (a list of ``aiohttp.TraceConfig``, e.g.
    OpenTelemetry's ``create_trace_config()``) go to the client's own aiohttp session, so
    every attempt is traced and the send-once guarantee holds (``session=`` gives it up).

    ``clock`` (wall-clock seconds), ``sleep`` and ``seed`` exist for tests: waits and
    token lifetimes can be driven by a fake clock instead of real time.

    Corporate networks (every request: login, API calls, logout, the OAuth token URL):
    ``ssl`` is a CA bundle path (PEM), an ``ssl.SSLContext`` (e.g.
    ``truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)``) or None (the system's
    verification; False only with ``allow_insecure``); ``proxy`` an
    ``http://[user:password@]host:port`` URL; ``trust_env=True`` reads ``HTTPS_PROXY``,
    ``NO_PROXY``, ``SSL_CERT_FILE``... once, when the client is made. ``max_answer_size``
    (bytes, 64 MiB by default) bounds every answer read
    (:class:`~arena_async.AnswerTooLargeError`).
    See the guide "Corporate networks".
    """

    #: The portal root, e.g. ``https://portal.example.com`` (no trailing slash).
    base_url: str
    #: Requests in flight at most, across every task of this client.
    max_concurrency: int
    #: ``Accept: application/vnd.soa.{api_version}+json`` of every API call, e.g. ``v81``.
    api_version: str
    #: ``akana.tickets``: list tickets page by page or get one
    #: (:class:`~arena_async.akana.tickets.Tickets`).
    tickets: Tickets

    def __init__(
        self,
        *,
        base_url: str,
        email: str | None = None,
        password: str | None = None,
        auth_token: str | None = None,
        tenant: str | None = None,
        csrf_token: str | None = None,
        api_version: str = "v81",
        max_concurrency: int = 8,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        requests_per_second: float | None = None,
        session: aiohttp.ClientSession | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] | None = None,
        allow_insecure: bool = False,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        seed: int | None = None,
        ssl: _ssl.SSLContext | str | os.PathLike[str] | bool | None = None,
        proxy: str | None = None,
        trust_env: bool = False,
        max_answer_size: int = DEFAULT_MAX_ANSWER_SIZE,
        auth: AkanaCredential | None = None,
    ) -> None:
        if isinstance(email, str):
            check_one_token("email", email)
        self.base_url = check_base_url(base_url,
                                       allow_insecure=check_flag("allow_insecure", allow_insecure))
        network = network_settings(ssl=ssl, proxy=proxy, trust_env=trust_env,
                                   allow_insecure=allow_insecure, session=session,
                                   urls=(self.base_url,))
        answer_limit = check_int("max_answer_size", max_answer_size, minimum=1)
        assert answer_limit is not None
        if urlsplit(self.base_url).path.rstrip("/").lower().endswith("/api"):
            raise ValueError(f"base_url must be the portal root, without '/api' (the client "
                             f"adds it), got {base_url!r}")
        credential = akana_credential(auth, email=email, password=password,
                                      auth_token=auth_token, tenant=tenant,
                                      csrf_token=csrf_token)
        if tenant is not None:
            check_tenant("tenant", tenant)
        if not isinstance(api_version, str) or not _API_VERSION.fullmatch(api_version):
            raise ValueError(f"api_version must be like 'v81' (documented: "
                             f"{', '.join(KNOWN_API_VERSIONS)}), got {api_version!r}")
        check_test_hooks(clock, sleep, seed)
        tracing = check_trace_configs(trace_configs, session)
        self.api_version = api_version
        self.max_concurrency = check_positive_int("max_concurrency", max_concurrency)
        rate = check_rate(requests_per_second)
        retry_policy = check_retry(retry)
        seconds = check_timeout(timeout)
        given_session = check_session(session)
        clock = clock or time.time
        sleep = sleep or asyncio.sleep
        self._auth = AkanaAuth(base_url=self.base_url, credential=credential, tenant=tenant)
        limiter = Limiter(max_concurrency=self.max_concurrency, requests_per_second=rate,
                          quota=None, clock=clock, sleep=sleep)
        self._transport = Transport(
            auth=self._auth, limiter=limiter, retry=retry_policy, timeout=seconds,
            session=given_session, headers={"Accept": self.media_type},
            connector_limit=max(100, self.max_concurrency), clock=clock, sleep=sleep,
            rng=random.Random(seed), quota=None,
            trace_configs=tracing,
            network=network, max_answer_size=answer_limit,
        )
        self.tickets = Tickets(self._transport, self.base_url, api_version, lapses=self._auth)
        #: The credential in use (:mod:`arena_async.credentials`; ``auth=`` or the one the
        #: keyword arguments built).
        self.auth: AkanaCredential = credential

    @property
    def media_type(self) -> str:
        """The ``Accept`` of every API call: ``application/vnd.soa.{api_version}+json``."""
        return f"application/vnd.soa.{self.api_version}+json"

    @property
    def tenant(self) -> str | None:
        """The tenant (fedmemberid): as given, or learned at login (None before it)."""
        return self._auth.tenant

    def __repr__(self) -> str:
        who = self.auth.who
        return f"<AkanaClient {self.base_url} {who} {self.api_version}>"
