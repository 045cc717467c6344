"""Credentials as objects: who a client is, checked once, never shown.

Arena: :class:`Login` (``POST /login``), :class:`OAuthClient` (an OAuth 2.0 machine user)
or :class:`GivenSession` (an existing session id, optionally with a :class:`Login` to log
in again when it ends). Akana: :class:`Login` (``POST /api/login``), :class:`DirectoryLogin`
(a directory/LDAP user, ``POST /api/login/ssoLogin``) or :class:`GivenCookies` (an existing
session's cookies, optionally with a login to fall back on).

Each is a frozen attrs class that checks itself when it is made (a ``ValueError`` naming
the field; CR, LF and NUL are refused everywhere, since every field ends up in a header,
a cookie, a form field or a login body) and never shows a secret in its ``repr``.

Give one to a client with ``auth=``; the keyword arguments (``email=``, ``password=``,
``session_id=``, ``client_id=``, ``auth_token=``...) are a shorthand that builds the same
object through :func:`credential_from`, which is also how the command line reads its
environment variables: **one rule** for every way of giving credentials.

The rule: exactly one kind of credential. A given session or given cookies may carry a
login to fall back on (``GivenSession(session_id, login=Login(...))``); every other mix
(OAuth and a password, a password and a directory login, a ``workspace_id`` with OAuth...)
is refused with a ``ValueError`` that names both, rather than one winning silently: the
two would log in as different users, with different rights and a different quota, and a
silent winner turns a stale environment variable into work done under the wrong identity.

Example::

    from arena_async import ArenaClient, Login, OAuthClient

    ArenaClient(auth=Login("me@example.com", password, workspace_id=123456789))
    ArenaClient(auth=OAuthClient("etl-machine", secret, "https://auth.example/oauth/token"))
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final, Literal, TypeAlias, overload

import attrs

from ._checks import check_one_token, check_workspace_id
from ._client import check_base_url

__all__ = [
    "AkanaCredential",
    "ArenaCredential",
    "DirectoryLogin",
    "GivenCookies",
    "GivenSession",
    "Login",
    "OAuthClient",
    "akana_credential",
    "arena_credential",
    "check_auth",
    "check_tenant",
    "credential_from",
    "credential_keys",
]

_CONTROL = re.compile(r"[\r\n\0]")
# A tenant is a cookie-name suffix and the part after the last "." of resource ids.
_TENANT = re.compile(r"[A-Za-z0-9_\-]+")
# Cookie values travel in a Cookie header: no separators, whitespace or control characters.
_COOKIE_VALUE = re.compile(r"[!#-+\--:<-\[\]-~]+")
_HIDDEN = "***"


def check_tenant(name: str, value: object) -> None:
    """An Akana tenant (fedmemberid): letters, digits, '-', '_' (it is a cookie-name suffix
    and the part after the last '.' of resource ids). ``ValueError`` naming ``name``.

    Example: ``check_tenant("tenant", "acme.corp")`` raises (no dots).
    """
    if not isinstance(value, str) or not _TENANT.fullmatch(value):
        raise ValueError(f"{name} must be the tenant name (letters, digits, '-', '_'; no "
                         f"dots), got {value!r}")


def _text(owner: str, blank: bool = False,
          token: bool = False) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """An attrs validator: a non-empty string (not blank unless ``blank``), no CR/LF/NUL;
    ``token``: sent as it is (a header, the login), so no whitespace or control character
    at all. The message names ``owner.field`` and never repeats the value."""

    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        name = f"{owner}.{attribute.name}"
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {type(value).__name__}")
        if not (value if blank else value.strip()):
            raise ValueError(f"{name} must not be empty")
        if token:
            check_one_token(name, value)
        elif _CONTROL.search(value):
            raise ValueError(f"{name} must not hold CR, LF or NUL characters")
    return check


def _cookie(owner: str) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """An attrs validator: a cookie value as the portal set it (it is secret: the message
    says what is wrong, never the value)."""

    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        name = f"{owner}.{attribute.name}"
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {type(value).__name__}")
        if not _COOKIE_VALUE.fullmatch(value):  # an empty value too
            raise ValueError(f"{name} must be a cookie value as the portal set it (no "
                             "spaces, ';', ',', '\"' or control characters)")
    return check


def _fallback(self: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """An attrs validator of ``login``: None or one of the class's ``fallbacks``."""
    kinds: tuple[type, ...] = type(self).fallbacks
    if value is not None and not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise ValueError(f"{type(self).__name__}.{attribute.name} must be a {names} or None, "
                         f"got {type(value).__name__}")


def _workspace(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    try:
        check_workspace_id(value)
    except ValueError as exc:
        raise ValueError(f"Login.{exc}") from None


@attrs.frozen(repr=False)
class Login:
    """An email and password: Arena's ``POST /login`` (``workspace_id`` picks the
    workspace, None: the user's default) or Akana's ``POST /api/login`` (no workspace).

    The client logs in on first use, again when the session is refused or lapses, and out
    when it closes. The password is never shown.

    Example: ``ArenaClient(auth=Login("me@example.com", password, workspace_id=123456789))``
    """

    #: The user's email (shown in ``repr``: it names who, it proves nothing).
    email: str = attrs.field(validator=_text("Login", token=True))
    #: The password (never shown).
    password: str = attrs.field(validator=_text("Login", blank=True))
    #: Arena only: the workspace to log in to (None: the user's default workspace).
    workspace_id: int | None = attrs.field(default=None, validator=_workspace)

    def __repr__(self) -> str:
        workspace = f", workspace_id={self.workspace_id}" if self.workspace_id is not None \
            else ""
        return f"Login(email={self.email!r}, password={_HIDDEN}{workspace})"

    @property
    def who(self) -> str:
        """Who this credential logs in as, for messages: the email."""
        return self.email

    @property
    def login(self) -> Login:
        """The credential the client logs in with: this one."""
        return self

    @property
    def share_identity(self) -> str:
        """What names this user in a share (one session per base URL, user, workspace)."""
        return self.email

    @property
    def share_secret(self) -> str:
        """What the share's seal derives its key from: the password (never stored)."""
        return self.password

    @property
    def logs_out(self) -> bool:
        """True: the client ends the session it logged in for when it closes (on Arena, a
        counted request)."""
        return True


@attrs.frozen(repr=False)
class OAuthClient:
    """An Arena OAuth 2.0 machine user (client credentials grant): the token is fetched
    from ``token_url`` with HTTP Basic client authentication on first use, renewed before
    it expires and once on a 401, and sent as ``Authorization: Bearer``. No workspace: the
    machine user's own. The secret is never shown.

    Example: ``ArenaClient(auth=OAuthClient("etl-machine", secret, token_url))``
    """

    #: The OAuth application's client id (shown: it names who).
    client_id: str = attrs.field(validator=_text("OAuthClient", token=True))
    #: Its client secret (never shown).
    client_secret: str = attrs.field(validator=_text("OAuthClient", blank=True))
    #: The token endpoint (https; plain http only to loopback unless the client is given
    #: ``allow_insecure=True``).
    token_url: str = attrs.field()

    @token_url.validator
    def _check_token_url(self, _: attrs.Attribute[Any], value: Any) -> None:
        if not isinstance(value, str):
            raise ValueError(f"OAuthClient.token_url must be a string, got "
                             f"{type(value).__name__}")
        check_base_url(value, allow_insecure=True, name="OAuthClient.token_url")

    def __repr__(self) -> str:
        return (f"OAuthClient(client_id={self.client_id!r}, client_secret={_HIDDEN}, "
                f"token_url={self.token_url!r})")

    def checked_url(self, *, allow_insecure: bool) -> str:
        """The token URL (no trailing slash); plain http to another host than loopback
        raises ``ValueError`` unless ``allow_insecure``: the secret would travel in clear."""
        return check_base_url(self.token_url, allow_insecure=allow_insecure, name="token_url")

    @property
    def workspace_id(self) -> None:
        """None: a machine user works in the workspace it was granted."""
        return None

    @property
    def who(self) -> str:
        """The client id."""
        return self.client_id

    @property
    def login(self) -> OAuthClient:
        """The credential the client fetches tokens with: this one."""
        return self

    @property
    def share_identity(self) -> str:
        """What names this machine user in a share: the client id."""
        return self.client_id

    @property
    def share_secret(self) -> str:
        """What the share's seal derives its key from: the client secret."""
        return self.client_secret

    @property
    def logs_out(self) -> bool:
        """False: a token just expires."""
        return False


@attrs.frozen(repr=False)
class GivenSession:
    """An existing Arena session id (``arena_session_id``), used as it is.

    Alone, the client neither logs in nor out, and a refused session raises
    :class:`~arena_async.AuthenticationError`. With ``login``, a refused session is
    replaced by a login (which the client logs out of at close). Never shared: a share
    holds the session its sharers log in for. The session id is never shown.

    Example: ``ArenaClient(auth=GivenSession(session_id, login=Login(email, password)))``
    """

    #: The session id (never shown).
    session_id: str = attrs.field(validator=_text("GivenSession", token=True))
    #: Credentials to log in with when the session ends (None: fail instead).
    login: Login | None = attrs.field(default=None, validator=_fallback)
    #: What ``login`` may be.
    fallbacks: ClassVar[tuple[type, ...]] = (Login,)

    def __repr__(self) -> str:
        return f"GivenSession(session_id={_HIDDEN}, login={self.login!r})"

    @property
    def workspace_id(self) -> int | None:
        """The workspace of ``login`` (None without one)."""
        return self.login.workspace_id if self.login is not None else None

    @property
    def who(self) -> str:
        """``given session``: a session id names nobody."""
        return "given session"

    @property
    def share_identity(self) -> None:
        """None: a given session is never shared."""
        return None

    @property
    def share_secret(self) -> None:
        """None: a given session is never shared."""
        return None

    @property
    def logs_out(self) -> bool:
        """False: the given session is the caller's to end."""
        return False


@attrs.frozen(repr=False)
class DirectoryLogin:
    """An Akana directory (LDAP) user: ``POST /api/login/ssoLogin`` with the form fields
    ``domain``, ``identity_username`` and ``secret_password``. The same cookies come back
    as for a :class:`Login`; the client logs in on first use, again when the token lapses
    or is refused, and ends the session at close. The password is never shown.

    Example: ``AkanaClient(base_url=url, auth=DirectoryLogin("CORP", "jdoe", password))``
    """

    #: The directory (login domain) the portal knows it by.
    domain: str = attrs.field(validator=_text("DirectoryLogin"))
    #: The user's name in that directory.
    username: str = attrs.field(validator=_text("DirectoryLogin"))
    #: The directory password (never shown).
    password: str = attrs.field(validator=_text("DirectoryLogin", blank=True))

    def __repr__(self) -> str:
        return (f"DirectoryLogin(domain={self.domain!r}, username={self.username!r}, "
                f"password={_HIDDEN})")

    @property
    def who(self) -> str:
        """``domain\\username``."""
        return f"{self.domain}\\{self.username}"

    @property
    def login(self) -> DirectoryLogin:
        """The credential the client logs in with: this one."""
        return self

    @property
    def logs_out(self) -> bool:
        """True: the client ends the session it logged in for."""
        return True


@attrs.frozen(repr=False)
class GivenCookies:
    """An existing Akana session's cookies: ``auth_token`` (the ``AtmoAuthToken_{tenant}``
    value), its ``tenant`` (the fedmemberid) and, when CSRF prevention is on,
    ``csrf_token`` (the ``Csrf-Token_{tenant}`` value, as is).

    Used as they are and renewed before the token lapses; never ended by the client. With
    ``login`` (a :class:`Login` or :class:`DirectoryLogin`), a token that cannot be renewed
    is replaced by a login. Nothing but the tenant is shown.

    Example: ``AkanaClient(base_url=url, auth=GivenCookies(token, "acmepaymentscorp"))``
    """

    #: The token cookie's value (never shown).
    auth_token: str = attrs.field(validator=_cookie("GivenCookies"))
    #: The tenant (fedmemberid): letters, digits, '-', '_'.
    tenant: str = attrs.field()
    #: The CSRF cookie's value, as is (never shown).
    csrf_token: str | None = attrs.field(default=None)
    #: Credentials to log in with when the token cannot be renewed (None: fail instead).
    login: Login | DirectoryLogin | None = attrs.field(default=None, validator=_fallback)
    #: What ``login`` may be.
    fallbacks: ClassVar[tuple[type, ...]] = (Login, DirectoryLogin)

    @tenant.validator
    def _check_tenant(self, _: attrs.Attribute[Any], value: Any) -> None:
        check_tenant("GivenCookies.tenant", value)

    @csrf_token.validator
    def _check_csrf(self, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            _cookie("GivenCookies")(self, attribute, value)

    def __repr__(self) -> str:
        csrf = _HIDDEN if self.csrf_token is not None else None
        return (f"GivenCookies(auth_token={_HIDDEN}, tenant={self.tenant!r}, "
                f"csrf_token={csrf}, login={self.login!r})")

    @property
    def who(self) -> str:
        """``given token``: a cookie names nobody."""
        return "given token"

    @property
    def logs_out(self) -> bool:
        """False: the given session is the caller's to end."""
        return False


#: What ``ArenaClient(auth=...)`` takes.
ArenaCredential: TypeAlias = Login | OAuthClient | GivenSession
#: What ``AkanaClient(auth=...)`` takes.
AkanaCredential: TypeAlias = Login | DirectoryLogin | GivenCookies

Server = Literal["arena", "akana"]


@attrs.frozen
class _Kind:
    """A credential kind as :func:`credential_from` builds it from flat keys."""

    cls: type[Any]
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    #: Keys whose presence means this kind was meant (default: every key of its own).
    triggers: tuple[str, ...] | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        return (*self.required, *self.optional)


#: Each server's credential kinds, and the flat keys (the clients' keyword arguments, the
#: command line's environment variables without their prefix) that build each. A new kind
#: is a class above and a line here.
KINDS: Final[dict[Server, tuple[_Kind, ...]]] = {
    "arena": (
        _Kind(Login, ("email", "password"), ("workspace_id",)),
        _Kind(OAuthClient, ("client_id", "client_secret", "token_url")),
        _Kind(GivenSession, ("session_id",)),
    ),
    "akana": (
        _Kind(Login, ("email", "password"), triggers=("email",)),
        _Kind(DirectoryLogin, ("domain", "username", "password"),
              triggers=("domain", "username")),
        # tenant alone also picks the tenant of a login: only the cookies mean this kind.
        _Kind(GivenCookies, ("auth_token", "tenant"), ("csrf_token",),
              triggers=("auth_token", "csrf_token")),
    ),
}
#: Keys a client reads for itself when no kind takes them (Akana's tenant picks which
#: tenant's cookies a login keeps).
_CONTEXT: Final[dict[Server, frozenset[str]]] = {"arena": frozenset(),
                                                   "akana": frozenset({"tenant"})}


def credential_keys(server: Server) -> tuple[str, ...]:
    """Every flat key :func:`credential_from` reads for ``server``, in table order.

    Example: ``credential_keys("akana")`` → ``("email", "password", "domain", ...)``
    """
    keys: dict[str, None] = {}
    for kind in KINDS[server]:
        keys.update(dict.fromkeys(kind.keys))
    return tuple(keys)


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


@overload
def credential_from(server: Literal["arena"], values: Mapping[str, object], *,
                    name: Callable[[str], str] = ...) -> ArenaCredential: ...


@overload
def credential_from(server: Literal["akana"], values: Mapping[str, object], *,
                    name: Callable[[str], str] = ...) -> AkanaCredential: ...


@overload
def credential_from(server: Server, values: Mapping[str, object], *,
                    name: Callable[[str], str] = ...) -> ArenaCredential | AkanaCredential: ...


def credential_from(server: Server, values: Mapping[str, object], *,
                    name: Callable[[str], str] = str) -> Any:
    """The one rule for which credential a client uses, from flat ``values`` (keyword
    arguments, or environment variables; None means not given).

    Exactly one kind of credential must be given, completely; a given session (Arena) or
    given cookies (Akana) may come with a login to fall back on, and then carry it
    (``GivenSession(session_id, login=Login(...))``). Anything else (two kinds, a part of
    one, a key no given kind takes) raises ``ValueError`` naming the keys (through
    ``name``: the CLI names its environment variables), never a value.

    Example::

        credential_from("arena", {"email": "me@x", "password": pw})  # Login(...)
        credential_from("arena", {"client_id": "c", "email": "me@x", ...})  # ValueError
    """
    kinds = KINDS[server]
    given = {key for key, value in values.items() if value is not None}
    meant = [k for k in kinds if given & set(k.triggers if k.triggers is not None else k.keys)]
    if not meant:
        options = "; or ".join(f"{_and([name(key) for key in k.required])} ({k.cls.__name__})"
                               for k in kinds)
        stray = given - _CONTEXT[server]
        lead = (f"{_and(sorted(name(key) for key in stray))} alone is not a credential: "
                if stray else "no credentials: ")
        raise ValueError(f"{lead}give {options}")
    outer = [k for k in meant if hasattr(k.cls, "fallbacks")]
    inner = [k for k in meant if k not in outer]
    # One kind; or a given session / given cookies with a login it may fall back on.
    if not (len(meant) == 1 or (len(meant) == 2 and len(outer) == 1
                                and inner[0].cls in outer[0].cls.fallbacks)):
        shown = " and ".join(f"{k.cls.__name__} ({_and([name(key) for key in k.keys])})"
                             for k in meant)
        raise ValueError(f"give one credential, not {'both' if len(meant) == 2 else 'several'}"
                         f": {shown}")
    taken = {key for k in meant for key in k.keys}
    stray = given - taken - _CONTEXT[server]
    if stray:
        holders = [k.cls.__name__ for k in kinds if stray & set(k.keys)]
        raise ValueError(f"{_and(sorted(name(key) for key in stray))} "
                         f"{'goes' if len(stray) == 1 else 'go'} with "
                         f"{' or '.join(holders) or 'no credential'}, not with "
                         f"{' and '.join(k.cls.__name__ for k in meant)}")
    built: Any = None
    for kind in (*inner, *outer):  # the login first: the given session carries it
        missing = [key for key in kind.required if key not in given]
        if missing:
            required = [name(key) for key in kind.required]
            count = {2: "both ", 3: "all three of "}.get(len(required), "all of ")
            had = [name(key) for key in kind.keys if key in given]
            raise ValueError(f"{kind.cls.__name__} needs {_and([name(m) for m in missing])}"
                             f" too (given: {_and(had)}): give {count}{_and(required)}")
        fields = {key: values[key] for key in kind.keys if key in given}
        if kind in outer:
            fields["login"] = built
        built = kind.cls(**fields)
    return built


def check_auth(server: Server, auth: object, shorthand: Mapping[str, object]) -> Any:
    """What a client's ``auth=`` and credential keyword arguments mean: ``auth`` when it
    is given (then no keyword may be), else :func:`credential_from` the keywords.

    Example: ``check_auth("arena", None, {"email": e, "password": p})`` is ``Login(e, p)``.
    """
    if auth is None:
        return credential_from(server, shorthand)
    kinds = {k.cls: k for k in KINDS[server]}
    kind = kinds.get(type(auth))
    if kind is None:
        names = ", ".join(cls.__name__ for cls in kinds)
        raise ValueError(f"auth must be one of {names}, got {type(auth).__name__}")
    given = sorted(key for key, value in shorthand.items() if value is not None and (
        key not in _CONTEXT[server] or key in kind.keys))
    if given:
        raise ValueError(f"give auth= or {_and(given)}, not both (auth= is the credential "
                         f"the keyword arguments would build)")
    for credential in (auth, getattr(auth, "login", None)):
        if credential is None:
            continue
        of = kinds[type(credential)]
        unused = [key for key in attrs.fields_dict(of.cls)
                  if key not in of.keys and key != "login"
                  and getattr(credential, key) is not None]
        if unused:
            raise ValueError(f"{type(credential).__name__}.{_and(unused)} has no meaning for "
                             f"{server.capitalize()}: leave it None")
    return auth


def arena_credential(auth: object, **shorthand: object) -> ArenaCredential:
    """``ArenaClient``'s credential: ``auth`` or the one its keyword arguments build.

    Example: ``arena_credential(None, email=e, password=p, session_id=None)`` → ``Login``
    """
    credential: ArenaCredential = check_auth("arena", auth, shorthand)
    return credential


def akana_credential(auth: object, **shorthand: object) -> AkanaCredential:
    """``AkanaClient``'s credential: ``auth`` or the one its keyword arguments build
    (``tenant`` may come with a login too: it picks the tenant the login keeps).

    Example: ``akana_credential(None, auth_token=t, tenant="acme")`` → ``GivenCookies``
    """
    credential: AkanaCredential = check_auth("akana", auth, shorthand)
    return credential
