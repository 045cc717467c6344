"""How a client reaches its servers on a corporate network: TLS verification (``ssl=``), an
HTTP proxy (``proxy=``) and the standard environment variables (``trust_env=``).

:func:`network_settings` checks the three arguments when a client is made and returns a
:class:`Network`: the ``ssl`` the client's aiohttp connector verifies with, and the proxy
route of each origin the client talks to. It applies to every request the client makes
(API calls, login, logout, the OAuth token URL), because all of them go through the one
aiohttp session of the pool.

- ``ssl``: None or True (the system's default verification), an ``ssl.SSLContext`` (used
  as is; e.g. ``truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)`` for the OS trust store),
  a path to a CA bundle in PEM (it replaces the default trust store, as ``curl --cacert``
  and ``requests``' ``verify=`` do), or False (no verification) with
  ``allow_insecure=True`` only.
- ``proxy``: an ``http://[user:password@]host:port`` URL. HTTPS targets are tunnelled with
  ``CONNECT``; plain-http targets are sent to the proxy in absolute form. The credentials
  travel as ``Proxy-Authorization: Basic`` and are kept out of every ``repr``, message and
  log line.
- ``trust_env=True``: ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` (lower case first,
  as curl and urllib read them; ``HTTP_PROXY`` is ignored when ``REQUEST_METHOD`` is set, a
  CGI request), ``NO_PROXY`` (host names, ``.domain`` suffixes, ``host:port``, IP addresses
  and CIDR ranges, ``*``), and, when ``ssl`` is not given, ``SSL_CERT_FILE`` /
  ``SSL_CERT_DIR``. The environment is read once, when the client is made, and every
  value is checked then. ``.netrc`` is not read: proxy credentials go in the proxy URL.
  An explicit ``proxy=`` or ``ssl=`` wins over the environment.

Example::

    network = network_settings(ssl="/etc/corp/ca.pem", proxy="http://proxy.corp:3128",
                               trust_env=False, allow_insecure=False, session=None,
                               urls=["https://api.arenasolutions.com/v1"])
    network.ssl                      # an ssl.SSLContext trusting only /etc/corp/ca.pem
    network.route_for(url)           # Route(http://proxy.corp:3128) for every origin
"""

from __future__ import annotations

import base64
import ipaddress
import os
import ssl as _ssl
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit

import yarl

__all__ = ["Network", "Route", "check_proxy", "network_settings", "read_ca_bundle"]

#: What each fix looks like, for messages (the docs page "Corporate networks" says more).
TRUST_FIXES: Final = (
    "give the CA bundle (PEM) that signs it: ssl='/path/to/ca-bundle.pem' (or an "
    "ssl.SSLContext); or trust_env=True with SSL_CERT_FILE set; or the operating system's "
    "trust store: pip install 'arena_async[truststore]' and "
    "ssl=truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)"
)

_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"


class Route:
    """The proxy one origin is reached through, with the header that authenticates to it.

    ``headers`` (``Proxy-Authorization``) hold the proxy password: never shown.
    ``setting`` is what named the proxy (``proxy=``, or ``HTTPS_PROXY (trust_env=True)``),
    for messages.

    Example: ``Route(yarl.URL("http://proxy.corp:3128"), None)``
    """

    __slots__ = ("headers", "proxy", "setting")

    proxy: yarl.URL
    headers: Mapping[str, str] | None
    setting: str

    def __init__(self, proxy: yarl.URL, headers: Mapping[str, str] | None,
                 setting: str = "proxy=") -> None:
        self.proxy = proxy
        self.headers = headers
        self.setting = setting

    def __repr__(self) -> str:
        auth = " (with credentials)" if self.headers else ""
        return f"Route({self.proxy}{auth})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Route) and other.proxy == self.proxy
                and other.headers == self.headers)

    def __hash__(self) -> int:
        return hash(self.proxy)


class Network:
    """The checked ``ssl`` / ``proxy`` / ``trust_env`` of one client.

    ``ssl`` is what the aiohttp connector verifies with (True: the default verification;
    False: none, ``allow_insecure`` only; or an ``ssl.SSLContext``). :meth:`route_for`
    is the proxy of a URL's origin, or None to connect directly; ``proxied`` is False
    when no origin goes through a proxy, so a request need not ask.

    Example: ``Network().ssl`` is True and ``Network().proxied`` False (the defaults).
    """

    __slots__ = ("_default", "_no_proxy", "_routes", "_schemes", "proxied", "ssl")

    def __init__(self, *, ssl: _ssl.SSLContext | bool = True,
                 proxy: Route | None = None,
                 env_proxies: Mapping[str, Route] | None = None,
                 no_proxy: str = "") -> None:
        self.ssl: _ssl.SSLContext | bool = ssl
        self._default = proxy  # proxy=: every origin, NO_PROXY aside
        self._schemes = dict(env_proxies or {})  # trust_env: "http" / "https" -> Route
        self._no_proxy = no_proxy
        self._routes: dict[tuple[str, str, int | None], Route | None] = {}
        self.proxied: bool = proxy is not None or bool(self._schemes)

    def __repr__(self) -> str:
        verify = ("system default" if self.ssl is True else "OFF" if self.ssl is False
                  else type(self.ssl).__name__)
        routes = (str(self._default) if self._default is not None else
                  ", ".join(f"{scheme}: {route}" for scheme, route in self._schemes.items())
                  or "none")
        return f"<Network verify={verify} proxy={routes}>"

    def route_for(self, url: yarl.URL | str) -> Route | None:
        """The proxy route of ``url``'s origin (None: direct), decided once per origin."""
        if self._default is not None:
            return self._default
        if not self._schemes:
            return None
        parsed = url if isinstance(url, yarl.URL) else yarl.URL(url)
        key = (parsed.scheme, parsed.host or "", parsed.port)
        try:
            return self._routes[key]
        except KeyError:
            pass
        route = self._schemes.get(parsed.scheme)
        if route is not None and _bypassed(key[1], key[2], self._no_proxy):
            route = None
        if len(self._routes) < 64:
            self._routes[key] = route
        return route


def network_settings(*, ssl: object, proxy: object, trust_env: object, allow_insecure: bool,
                     session: object, urls: Iterable[str | None] = ()) -> Network:
    """Check ``ssl``, ``proxy`` and ``trust_env`` (raising :class:`ValueError` naming what is
    wrong, never a password) and build the client's :class:`Network`.

    ``urls`` are the client's own URLs (base URL, token URL): with ``trust_env`` their
    proxies are decided and checked now, so a bad ``HTTPS_PROXY`` fails here, not at the
    first request. A caller's ``session`` carries its own TLS and proxy settings: with it,
    these arguments are refused.

    Example: ``network_settings(ssl=None, proxy=None, trust_env=False,
    allow_insecure=False, session=None)`` is the default :class:`Network`.
    """
    if not isinstance(trust_env, bool):
        raise ValueError(f"trust_env must be True or False, got {trust_env!r}")
    if session is not None:
        given = [name for name, value in (("ssl", ssl is not None and ssl is not True),
                                          ("proxy", proxy is not None),
                                          ("trust_env", trust_env)) if value]
        if given:
            raise ValueError(
                f"{', '.join(given)} configure the client's own aiohttp session; with "
                "session= configure your session instead (aiohttp.ClientSession(connector="
                "aiohttp.TCPConnector(ssl=...), proxy=..., trust_env=...))")
        return Network()
    context = _check_ssl(ssl, allow_insecure=allow_insecure)
    route = None if proxy is None else check_proxy(proxy, name="proxy")
    if not trust_env:
        return Network(ssl=context, proxy=route)
    env = os.environ
    if ssl is None:
        context = _ssl_from_env(env)
    if route is not None:
        return Network(ssl=context, proxy=route)
    proxies, no_proxy = _proxies_from_env(env)
    network = Network(ssl=context, env_proxies=proxies, no_proxy=no_proxy)
    for url in urls:
        if url is not None:
            network.route_for(url)  # decided (and cached) now
    return network


# -- ssl ----------------------------------------------------------------------------------

def _check_ssl(value: object, *, allow_insecure: bool) -> _ssl.SSLContext | bool:
    if value is None or value is True:
        return True
    if value is False:
        if not allow_insecure:
            raise ValueError(
                "ssl=False turns off certificate verification: anyone on the path could "
                "read the password and the session. If the server's certificate is not "
                f"trusted, {TRUST_FIXES}; to turn verification off anyway, also pass "
                "allow_insecure=True")
        return False
    if isinstance(value, _ssl.SSLContext):
        if not allow_insecure and (value.verify_mode == _ssl.CERT_NONE
                                   or not value.check_hostname):
            raise ValueError("ssl is an SSLContext that does not verify the certificate "
                             "(verify_mode CERT_NONE) or its host name (check_hostname "
                             "False): make it with ssl.create_default_context(cafile=...), "
                             "or pass allow_insecure=True to use it as it is")
        return value
    if isinstance(value, str | os.PathLike):
        return read_ca_bundle(os.fspath(value), name="ssl")
    raise ValueError(f"ssl must be None, True, an ssl.SSLContext or the path of a CA bundle "
                     f"(PEM), got {type(value).__name__}")


def read_ca_bundle(path: str | bytes, *, name: str) -> _ssl.SSLContext:
    """An ``ssl.SSLContext`` trusting only the certificates of the PEM bundle at ``path``
    (checked now: it must exist, be readable and hold PEM certificates).

    Example: ``read_ca_bundle("/etc/corp/ca.pem", name="ssl")``
    """
    shown = os.fsdecode(path)
    if not shown or "\0" in shown:
        raise ValueError(f"{name} must be the path of a CA bundle (PEM), got {shown!r}")
    file = Path(shown)
    if file.is_dir():
        raise ValueError(f"{name}: {shown!r} is a folder; give a CA bundle file (PEM), or an "
                         "ssl.SSLContext loaded with load_verify_locations(capath=...)")
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise ValueError(f"{name}: no CA bundle at {shown!r} (no such file)") from None
    except OSError as exc:
        raise ValueError(f"{name}: cannot read the CA bundle {shown!r}: "
                         f"{exc.strerror or type(exc).__name__}") from None
    if _PEM_CERTIFICATE not in data:
        raise ValueError(f"{name}: {shown!r} is not a CA bundle in PEM (no '-----BEGIN "
                         "CERTIFICATE-----' block); convert a DER file with "
                         "'openssl x509 -inform der -in ca.cer -out ca.pem'")
    try:
        return _ssl.create_default_context(cafile=shown)
    except (_ssl.SSLError, ValueError) as exc:
        raise ValueError(f"{name}: {shown!r} holds no usable PEM certificate: "
                         f"{getattr(exc, 'reason', None) or exc}") from None


def _ssl_from_env(env: Mapping[str, str]) -> _ssl.SSLContext | bool:
    cafile = env.get("SSL_CERT_FILE") or None
    capath = env.get("SSL_CERT_DIR") or None
    if cafile is None and capath is None:
        return True
    if cafile is not None:
        context = read_ca_bundle(cafile, name="SSL_CERT_FILE (trust_env=True)")
        if capath is None:
            return context
    if capath is not None and not Path(capath).is_dir():
        raise ValueError(f"SSL_CERT_DIR (trust_env=True): {capath!r} is not a folder")
    try:
        return _ssl.create_default_context(cafile=cafile, capath=capath)
    except (_ssl.SSLError, OSError) as exc:
        raise ValueError(f"SSL_CERT_DIR (trust_env=True): cannot use {capath!r}: "
                         f"{exc}") from None


# -- proxies ------------------------------------------------------------------------------

def check_proxy(value: object, *, name: str) -> Route:
    """The :class:`Route` of an ``http://[user:password@]host:port`` proxy URL.

    The password never appears in a message: a URL that carries one is named by its host.
    Example: ``check_proxy("http://u:p@proxy.corp:3128", name="proxy")``
    """
    if isinstance(value, yarl.URL):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be an http:// proxy URL (a string), got "
                         f"{type(value).__name__}")
    if not value or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError(f"{name} must be an http:// proxy URL without spaces or control "
                         "characters")
    parts = urlsplit(value)
    secret = parts.password is not None
    shown = _without_credentials(parts.scheme, parts.netloc) if secret else value
    if parts.scheme != "http":
        hint = (" (a proxy is reached in plain http; HTTPS targets are tunnelled through it "
                "with CONNECT)" if parts.scheme == "https" else "")
        raise ValueError(f"{name} must be an http:// proxy URL{hint}, got {shown!r}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError(f"{name} {shown!r} has a bad port") from None
    if not host:
        raise ValueError(f"{name} {shown!r} has no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{name} must be only http://[user:password@]host:port, got "
                         f"{shown!r}")
    headers = None
    if parts.username is not None or secret:
        login, password = unquote(parts.username or ""), unquote(parts.password or "")
        if ":" in login:
            raise ValueError(f"{name}: the proxy user name must not hold ':'")
        token = base64.b64encode(f"{login}:{password}".encode()).decode("ascii")
        headers = {"Proxy-Authorization": f"Basic {token}"}
    netloc = f"[{host}]" if ":" in host else host
    proxy = yarl.URL(f"http://{netloc}:{port or 80}")
    return Route(proxy, headers, "proxy=" if name == "proxy" else name)


def _without_credentials(scheme: str, netloc: str) -> str:
    return f"{scheme}://***@{netloc.rpartition('@')[2]}"


def _proxies_from_env(env: Mapping[str, str]) -> tuple[dict[str, Route], str]:
    """The proxies the environment names, per target scheme, and NO_PROXY."""
    def read(name: str) -> tuple[str, str] | None:
        for key in (name.lower(), name.upper()):
            if key == "HTTP_PROXY" and "REQUEST_METHOD" in env:
                continue  # httpoxy: in a CGI request, HTTP_PROXY comes from a header
            value = env.get(key)
            if value:
                return key, value.strip()
        return None

    every = read("all_proxy")
    routes: dict[str, Route] = {}
    for scheme in ("https", "http"):
        found = read(f"{scheme}_proxy") or every
        if found is None:
            continue
        key, value = found
        if "://" not in value:
            value = f"http://{value}"  # curl and requests read a bare host:port as http
        routes[scheme] = check_proxy(value, name=f"{key} (trust_env=True)")
    no_proxy = read("no_proxy")
    return routes, no_proxy[1] if no_proxy else ""


def _bypassed(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether NO_PROXY sends ``host`` (at ``port``) direct: ``*``, a host name or a
    ``.suffix`` (its subdomains too), ``host:port``, an IP address or a CIDR range."""
    host = host.lower().rstrip(".")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for raw in no_proxy.replace(" ", ",").split(","):
        entry = raw.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry_port = None
        if entry.startswith("["):  # [v6]:port
            inside, _, rest = entry[1:].partition("]")
            entry, entry_port = inside, rest.removeprefix(":") or None
        elif entry.count(":") == 1:
            entry, entry_port = entry.split(":")
        if entry_port is not None and entry_port != str(port):
            continue
        if address is not None:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry = entry.lstrip(".").rstrip(".")
        if entry and (host == entry or host.endswith("." + entry)):
            return True
    return False
