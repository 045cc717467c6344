"""Credentials as objects: each class checks itself and never shows a secret; the one rule
(credential_from) decides what the keyword arguments, auth= and the CLI's variables mean."""

from __future__ import annotations

import pickle
from typing import Any

import attrs
import pytest

import arena_async
from arena_async import (
    AkanaClient,
    ArenaClient,
    DirectoryLogin,
    GivenCookies,
    GivenSession,
    Login,
    OAuthClient,
)
from arena_async.credentials import credential_from, credential_keys

SECRET = "Hunter2-s3cret"
TOKEN_URL = "https://auth.example.com/oauth/token"
ARENA = "http://127.0.0.1:9/v1"
AKANA = "http://127.0.0.1:9"


# -- each class: validation ----------------------------------------------------------------
@pytest.mark.parametrize(("make", "field"), [
    (lambda: Login("", SECRET), "Login.email"),
    (lambda: Login("   ", SECRET), "Login.email"),
    (lambda: Login(None, SECRET), "Login.email"),
    (lambda: Login("me@x\r\nX-Evil: 1", SECRET), "Login.email"),
    (lambda: Login("me@x", ""), "Login.password"),
    (lambda: Login("me@x", 42), "Login.password"),
    (lambda: Login("me@x", SECRET + "\n"), "Login.password"),
    (lambda: Login("me@x", SECRET + "\0"), "Login.password"),
    (lambda: Login("me@x", SECRET, workspace_id="1"), "Login.workspace_id"),
    (lambda: Login("me@x", SECRET, workspace_id=True), "Login.workspace_id"),
    (lambda: OAuthClient("", SECRET, TOKEN_URL), "OAuthClient.client_id"),
    (lambda: OAuthClient("c\n", SECRET, TOKEN_URL), "OAuthClient.client_id"),
    (lambda: OAuthClient("c", "", TOKEN_URL), "OAuthClient.client_secret"),
    (lambda: OAuthClient("c", SECRET + "\r", TOKEN_URL), "OAuthClient.client_secret"),
    (lambda: OAuthClient("c", SECRET, "ftp://auth.example.com/t"), "token_url"),
    (lambda: OAuthClient("c", SECRET, 5), "OAuthClient.token_url"),
    (lambda: OAuthClient("c", SECRET, TOKEN_URL + "\n"), "OAuthClient.token_url"),
    (lambda: GivenSession(""), "GivenSession.session_id"),
    (lambda: GivenSession("S-1\r\nX: y"), "GivenSession.session_id"),
    (lambda: GivenSession("S-1", login=OAuthClient("c", SECRET, TOKEN_URL)),
     "GivenSession.login"),
    (lambda: DirectoryLogin("", "jdoe", SECRET), "DirectoryLogin.domain"),
    (lambda: DirectoryLogin("CORP", " ", SECRET), "DirectoryLogin.username"),
    (lambda: DirectoryLogin("CORP", "jdoe\n", SECRET), "DirectoryLogin.username"),
    (lambda: DirectoryLogin("CORP", "jdoe", ""), "DirectoryLogin.password"),
    (lambda: DirectoryLogin("CORP", "jdoe", "a\0b"), "DirectoryLogin.password"),
    (lambda: GivenCookies("", "acme"), "GivenCookies.auth_token"),
    (lambda: GivenCookies(5, "acme"), "GivenCookies.auth_token must be a string"),
    (lambda: GivenCookies("a b", "acme"), "GivenCookies.auth_token"),
    (lambda: GivenCookies("tok\r\n", "acme"), "GivenCookies.auth_token"),
    (lambda: GivenCookies("tok", "acme.corp"), "GivenCookies.tenant"),
    (lambda: GivenCookies("tok", "acme", csrf_token="c;d"), "GivenCookies.csrf_token"),
    (lambda: GivenCookies("tok", "acme", login=GivenSession("s")), "GivenCookies.login"),
])
def test_each_credential_checks_itself_naming_the_field(make: Any, field: str) -> None:
    with pytest.raises(ValueError, match=field) as info:
        make()
    for secret in (SECRET, "a b", "tok\r\n", "c;d", "a\0b"):
        assert secret not in str(info.value)


def test_valid_credentials_are_frozen_equal_and_picklable() -> None:
    login = Login("me@x", SECRET, workspace_id=7)
    assert login == Login("me@x", SECRET, workspace_id=7)
    assert login != Login("me@x", SECRET)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        login.password = "other"  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(GivenSession("S", login=login))) == \
        GivenSession("S", login=login)
    # A secret is taken as is, even all blanks (only an empty one is refused).
    assert Login("me@x", " spaced ").password == " spaced "
    assert Login("me@x", "   ").password == "   "
    assert OAuthClient("c", "   ", TOKEN_URL).client_secret == "   "
    assert DirectoryLogin("CORP", "jdoe", "   ").password == "   "


# -- each class: nothing secret in repr/str -----------------------------------------------
@pytest.mark.parametrize(("credential", "shown"), [
    (Login("me@x", SECRET), "Login(email='me@x', password=***)"),
    (Login("me@x", SECRET, workspace_id=12), "Login(email='me@x', password=***, workspace_id=12)"),
    (OAuthClient("etl", SECRET, TOKEN_URL),
     f"OAuthClient(client_id='etl', client_secret=***, token_url='{TOKEN_URL}')"),
    (GivenSession(SECRET), "GivenSession(session_id=***, login=None)"),
    (GivenSession(SECRET, login=Login("me@x", SECRET + "2")),
     "GivenSession(session_id=***, login=Login(email='me@x', password=***))"),
    (DirectoryLogin("CORP", "jdoe", SECRET),
     "DirectoryLogin(domain='CORP', username='jdoe', password=***)"),
    (GivenCookies(SECRET, "acme", csrf_token=SECRET + "c"),
     "GivenCookies(auth_token=***, tenant='acme', csrf_token=***, login=None)"),
    (GivenCookies(SECRET, "acme", login=DirectoryLogin("CORP", "jdoe", SECRET + "d")),
     "GivenCookies(auth_token=***, tenant='acme', csrf_token=None, "
     "login=DirectoryLogin(domain='CORP', username='jdoe', password=***))"),
])
def test_no_credential_shows_a_secret(credential: Any, shown: str) -> None:
    assert repr(credential) == shown
    assert str(credential) == shown
    assert SECRET not in f"{credential!r} {credential!s} {credential}"


def test_what_the_auth_layer_reads() -> None:
    login = Login("me@x", SECRET, workspace_id=3)
    oauth = OAuthClient("etl", SECRET + "o", TOKEN_URL)
    assert (login.share_identity, login.share_secret, login.workspace_id) == ("me@x", SECRET, 3)
    assert (oauth.share_identity, oauth.share_secret, oauth.workspace_id) == \
        ("etl", SECRET + "o", None)
    given = GivenSession("S", login=login)
    assert (given.share_identity, given.share_secret, given.workspace_id) == (None, None, 3)
    assert [c.logs_out for c in (login, oauth, given)] == [True, False, False]
    assert [c.login for c in (login, oauth, given)] == [login, oauth, login]
    assert GivenSession("S").login is None
    directory = DirectoryLogin("CORP", "jdoe", SECRET)
    cookies = GivenCookies("tok", "acme", login=directory)
    assert (directory.who, cookies.who, directory.logs_out, cookies.logs_out) == \
        ("CORP\\jdoe", "given token", True, False)
    assert cookies.login is directory
    with pytest.raises(ValueError, match="plain http"):
        OAuthClient("etl", SECRET, "http://auth.example.com/t").checked_url(
            allow_insecure=False)
    assert OAuthClient("etl", SECRET, "http://auth.example.com/t/").checked_url(
        allow_insecure=True) == "http://auth.example.com/t"


# -- the one rule ----------------------------------------------------------------------------
@pytest.mark.parametrize(("server", "values", "expected"), [
    ("arena", {"email": "e@x", "password": SECRET}, Login("e@x", SECRET)),
    ("arena", {"email": "e@x", "password": SECRET, "workspace_id": 9},
     Login("e@x", SECRET, workspace_id=9)),
    ("arena", {"client_id": "c", "client_secret": SECRET, "token_url": TOKEN_URL},
     OAuthClient("c", SECRET, TOKEN_URL)),
    ("arena", {"session_id": "S"}, GivenSession("S")),
    ("arena", {"session_id": "S", "email": "e@x", "password": SECRET, "workspace_id": 9},
     GivenSession("S", login=Login("e@x", SECRET, workspace_id=9))),
    ("arena", {"email": "e@x", "password": SECRET, "session_id": None, "client_id": None},
     Login("e@x", SECRET)),
    ("akana", {"email": "e@x", "password": SECRET}, Login("e@x", SECRET)),
    ("akana", {"email": "e@x", "password": SECRET, "tenant": "acme"}, Login("e@x", SECRET)),
    ("akana", {"domain": "CORP", "username": "jdoe", "password": SECRET},
     DirectoryLogin("CORP", "jdoe", SECRET)),
    ("akana", {"auth_token": "t", "tenant": "acme", "csrf_token": "c"},
     GivenCookies("t", "acme", csrf_token="c")),
    ("akana", {"auth_token": "t", "tenant": "acme", "domain": "CORP", "username": "jdoe",
               "password": SECRET},
     GivenCookies("t", "acme", login=DirectoryLogin("CORP", "jdoe", SECRET))),
])
def test_the_rule_builds_one_credential(server: Any, values: dict[str, Any],
                                        expected: Any) -> None:
    assert credential_from(server, values) == expected


@pytest.mark.parametrize(("server", "values", "words"), [
    ("arena", {}, "no credentials: give email and password (Login); or client_id, "
                  "client_secret and token_url (OAuthClient); or session_id (GivenSession)"),
    ("arena", {"email": "e@x"}, "Login needs password too (given: email): give both email "
                                "and password"),
    ("arena", {"client_id": "c", "client_secret": SECRET},
     "OAuthClient needs token_url too (given: client_id and client_secret): give all three "
     "of client_id, client_secret and token_url"),
    # OAuth and a password: refused, never one chosen
    ("arena", {"client_id": "c", "client_secret": SECRET, "token_url": TOKEN_URL,
               "email": "e@x", "password": SECRET},
     "give one credential, not both: Login (email, password and workspace_id) and "
     "OAuthClient (client_id, client_secret and token_url)"),
    ("arena", {"client_id": "c", "client_secret": SECRET, "token_url": TOKEN_URL,
               "session_id": "S"}, "not both: OAuthClient"),
    ("arena", {"client_id": "c", "client_secret": SECRET, "token_url": TOKEN_URL,
               "workspace_id": 5}, "not both: Login"),
    ("arena", {"session_id": "S", "workspace_id": 5}, "Login needs email and password too"),
    ("akana", {"password": SECRET}, "password alone is not a credential: give email and "
                                    "password (Login)"),
    ("akana", {"tenant": "acme"}, "no credentials: give email and password (Login); or "
                                  "domain, username and password (DirectoryLogin)"),
    ("akana", {"email": "e@x", "password": SECRET, "domain": "CORP", "username": "jdoe"},
     "give one credential, not both: Login (email and password) and DirectoryLogin"),
    ("akana", {"email": "e@x", "domain": "CORP", "username": "jdoe", "password": SECRET,
               "auth_token": "t", "tenant": "acme"}, "give one credential, not several"),
    ("akana", {"auth_token": "t"}, "GivenCookies needs tenant too (given: auth_token)"),
    ("akana", {"auth_token": "t", "tenant": "acme", "password": SECRET},
     "password goes with Login or DirectoryLogin, not with GivenCookies"),
    ("arena", {"email": "e@x", "password": SECRET, "tenant": "acme", "domain": "D"},
     "domain and tenant go with no credential, not with Login"),
    ("akana", {"email": "e@x", "password": SECRET, "csrf_token": "c"},
     "GivenCookies needs auth_token and tenant too (given: csrf_token)"),
])
def test_the_rule_refuses_what_is_ambiguous_or_incomplete(server: Any, values: dict[str, Any],
                                                          words: str) -> None:
    with pytest.raises(ValueError) as info:
        credential_from(server, values)
    assert words in str(info.value)
    assert SECRET not in str(info.value)


def test_the_rule_names_keys_as_the_caller_does() -> None:
    with pytest.raises(ValueError) as info:
        credential_from("akana", {"auth_token": "t"}, name=lambda key: "AKANA_" + key.upper())
    assert str(info.value) == ("GivenCookies needs AKANA_TENANT too (given: AKANA_AUTH_TOKEN):"
                               " give both AKANA_AUTH_TOKEN and AKANA_TENANT")
    assert credential_keys("arena") == ("email", "password", "workspace_id", "client_id",
                                        "client_secret", "token_url", "session_id")
    assert credential_keys("akana") == ("email", "password", "domain", "username",
                                        "auth_token", "tenant", "csrf_token")


# -- the clients: auth= and the shorthand ---------------------------------------------------
@pytest.mark.parametrize(("kwargs", "auth"), [
    ({"email": "e@x", "password": SECRET, "workspace_id": 4},
     Login("e@x", SECRET, workspace_id=4)),
    ({"client_id": "c", "client_secret": SECRET, "token_url": TOKEN_URL},
     OAuthClient("c", SECRET, TOKEN_URL)),
    ({"session_id": "S"}, GivenSession("S")),
    ({"session_id": "S", "email": "e@x", "password": SECRET},
     GivenSession("S", login=Login("e@x", SECRET))),
])
def test_arena_auth_and_the_keywords_build_equal_credentials(kwargs: dict[str, Any],
                                                             auth: Any) -> None:
    by_keywords = ArenaClient(base_url=ARENA, **kwargs)
    by_object = ArenaClient(base_url=ARENA, auth=auth)
    assert by_keywords.auth == by_object.auth == auth
    assert repr(by_keywords) == repr(by_object)
    assert SECRET not in repr(by_object) + repr(by_object._auth)


@pytest.mark.parametrize(("kwargs", "auth"), [
    ({"email": "e@x", "password": SECRET}, Login("e@x", SECRET)),
    ({"auth_token": "t", "tenant": "acme", "csrf_token": "c"},
     GivenCookies("t", "acme", csrf_token="c")),
    ({"auth_token": "t", "tenant": "acme", "email": "e@x", "password": SECRET},
     GivenCookies("t", "acme", login=Login("e@x", SECRET))),
])
def test_akana_auth_and_the_keywords_build_equal_credentials(kwargs: dict[str, Any],
                                                             auth: Any) -> None:
    by_keywords = AkanaClient(base_url=AKANA, **kwargs)
    by_object = AkanaClient(base_url=AKANA, auth=auth)
    assert by_keywords.auth == by_object.auth == auth
    assert by_keywords.tenant == by_object.tenant
    assert repr(by_keywords) == repr(by_object)
    assert SECRET not in repr(by_object) + repr(by_object._auth)


@pytest.mark.parametrize("extra", [{"email": "e@x"}, {"password": SECRET},
                                   {"session_id": "S"}, {"workspace_id": 3},
                                   {"client_id": "c"}, {"token_url": TOKEN_URL}])
def test_arena_auth_with_a_keyword_is_refused(extra: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"give auth= or .*, not both") as info:
        ArenaClient(base_url=ARENA, auth=Login("e@x", SECRET), **extra)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(("auth", "extra"), [
    (Login("e@x", SECRET), {"email": "e@x"}),
    (Login("e@x", SECRET), {"auth_token": "t"}),
    (DirectoryLogin("CORP", "jdoe", SECRET), {"password": SECRET}),
    (GivenCookies("t", "acme"), {"tenant": "acme"}),  # the cookies' own tenant
    (GivenCookies("t", "acme"), {"csrf_token": "c"}),
])
def test_akana_auth_with_a_keyword_is_refused(auth: Any, extra: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"give auth= or .*, not both") as info:
        AkanaClient(base_url=AKANA, auth=auth, **extra)
    assert SECRET not in str(info.value)


def test_a_login_may_pick_its_tenant_and_akana_refuses_a_workspace() -> None:
    akana = AkanaClient(base_url=AKANA, auth=DirectoryLogin("CORP", "jdoe", SECRET),
                        tenant="acme")
    assert akana.tenant == "acme"
    with pytest.raises(ValueError, match=r"Login.workspace_id has no meaning for Akana"):
        AkanaClient(base_url=AKANA, auth=Login("e@x", SECRET, workspace_id=3))
    with pytest.raises(ValueError, match=r"Login.workspace_id has no meaning for Akana"):
        AkanaClient(base_url=AKANA, auth=GivenCookies(
            "t", "acme", login=Login("e@x", SECRET, workspace_id=3)))


@pytest.mark.parametrize(("client", "auth", "words"), [
    (ArenaClient, DirectoryLogin("CORP", "jdoe", SECRET),
     "auth must be one of Login, OAuthClient, GivenSession, got DirectoryLogin"),
    (ArenaClient, GivenCookies("t", "acme"), "got GivenCookies"),
    (AkanaClient, OAuthClient("c", SECRET, TOKEN_URL),
     "auth must be one of Login, DirectoryLogin, GivenCookies, got OAuthClient"),
    (AkanaClient, {"email": "e@x", "password": SECRET}, "got dict"),
])
def test_a_credential_of_the_other_server_is_refused(client: Any, auth: Any,
                                                     words: str) -> None:
    base = ARENA if client is ArenaClient else AKANA
    with pytest.raises(ValueError, match=words) as info:
        client(base_url=base, auth=auth)
    assert SECRET not in str(info.value)


def test_token_url_over_plain_http_needs_allow_insecure() -> None:
    oauth = OAuthClient("c", SECRET, "http://auth.example.com/token")
    with pytest.raises(ValueError, match=r"token_url .* plain http"):
        ArenaClient(base_url=ARENA, auth=oauth)
    assert ArenaClient(base_url="https://a.example.com/v1", auth=oauth,
                       allow_insecure=True).auth is oauth


def test_a_given_session_is_never_shared(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="not session_id"):
        ArenaClient(base_url=ARENA, auth=GivenSession("S", login=Login("e@x", SECRET)),
                    share=f"sqlite:///{tmp_path}/s.db")


def test_the_credential_classes_are_public() -> None:
    for name in ("Login", "OAuthClient", "GivenSession", "DirectoryLogin", "GivenCookies"):
        assert name in arena_async.__all__
        assert getattr(arena_async, name).__doc__
