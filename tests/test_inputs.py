"""What a client is made with is checked before anything is sent: text that travels as it
is (URLs, the login's email, session ids and tokens in headers) holds no spaces or control
characters, and ``workspace_id`` is a positive 64-bit integer. The messages name the
argument and never repeat a secret.
"""

from __future__ import annotations

from typing import Any

import pytest

from arena_async import AkanaClient, ArenaClient
from arena_async._checks import MAX_WORKSPACE_ID

BAD_TEXT = ["\r\n", "\n", "\r", "\0", " ", "\t", "\x7f", "\x1b", "\u200b", "\u2028", "\u00a0"]
SECRET = "S3CRET-VALUE"


def arena(**kwargs: Any) -> ArenaClient:
    given: dict[str, Any] = {"email": "me@example.com", "password": "pw",
                             "workspace_id": 123456789}
    given.update(kwargs)
    return ArenaClient(**given)


def akana(**kwargs: Any) -> AkanaClient:
    given: dict[str, Any] = {"base_url": "https://portal.example.com",
                             "email": "me@example.com", "password": "pw"}
    given.update(kwargs)
    return AkanaClient(**given)


@pytest.mark.parametrize("bad", BAD_TEXT)
def test_base_urls_with_spaces_or_control_characters_are_refused(bad: str) -> None:
    url = f"https://api.arenasolutions.com/v1{bad}X-Injected: 1"
    for make in (lambda: arena(base_url=url), lambda: akana(base_url=url),
                 lambda: ArenaClient(client_id="id", client_secret="s", token_url=url)):
        with pytest.raises(ValueError, match=r"(base_url|token_url) must not contain spaces "
                                             r"or control characters") as info:
            make()
        assert "X-Injected" not in str(info.value)


def test_the_offending_character_is_named_by_its_position() -> None:
    with pytest.raises(ValueError) as info:
        arena(base_url="https://api.arenasolutions.com/v1\r\n")
    assert str(info.value) == ("base_url must not contain spaces or control characters "
                               "(CR, LF, NUL...): found '\\r' at index 33")


@pytest.mark.parametrize("bad", BAD_TEXT)
def test_emails_with_spaces_or_control_characters_are_refused(bad: str) -> None:
    for email in (f"me@example.com{bad}", f"me{bad}@example.com", f"{bad}me@example.com"):
        for make in (arena, akana):
            with pytest.raises(ValueError, match="email must not contain spaces or control"):
                make(email=email)


@pytest.mark.parametrize("name", ["session_id", "client_id"])
@pytest.mark.parametrize("bad", ["\r\nX-Evil: 1", "\0", " ", "\t"])
def test_values_sent_in_headers_are_refused_without_echoing_them(name: str, bad: str) -> None:
    given: dict[str, Any] = ({"session_id": SECRET + bad} if name == "session_id" else
                             {"client_id": SECRET + bad, "client_secret": "s",
                              "token_url": "https://login.example.com/oauth/token"})
    with pytest.raises(ValueError, match=f"{name} must not contain") as info:
        ArenaClient(**given)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("name", ["auth_token", "csrf_token"])
def test_akana_tokens_with_control_characters_are_refused_without_echoing_them(
        name: str) -> None:
    given: dict[str, Any] = {"auth_token": "tok", "tenant": "acme", name: SECRET + "\r\n"}
    with pytest.raises(ValueError, match=name) as info:
        AkanaClient(base_url="https://portal.example.com", **given)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("tenant", ["acme\r\n", "ac me", "acme\0", "acme.corp", ""])
def test_akana_tenants_are_names(tenant: str) -> None:
    with pytest.raises(ValueError, match="tenant must be"):
        AkanaClient(base_url="https://portal.example.com", auth_token="tok", tenant=tenant)


@pytest.mark.parametrize("value", [-1, 0, MAX_WORKSPACE_ID + 1, 10**30, -(10**30)])
def test_workspace_ids_outside_the_64_bit_positive_range_are_refused(value: int) -> None:
    with pytest.raises(ValueError, match=r"workspace_id must be 1\.\.9223372036854775807 "
                                         r"\(Arena's workspace ids are positive 64-bit"):
        arena(workspace_id=value)


@pytest.mark.parametrize("value", [True, "123456789", 1.0])
def test_workspace_ids_must_be_integers(value: object) -> None:
    with pytest.raises(ValueError, match="workspace_id must be an integer"):
        arena(workspace_id=value)


def test_a_huge_workspace_id_is_not_printed_whole() -> None:
    with pytest.raises(ValueError, match="got a 101-digit number"):
        arena(workspace_id=10**100)


@pytest.mark.parametrize("value", [None, 1, 123456789, 2**31, MAX_WORKSPACE_ID])
def test_workspace_ids_in_range_are_accepted(value: int | None) -> None:
    arena(workspace_id=value)
