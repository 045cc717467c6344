"""What a running fake prints for a person to use it: the shell lines that point the
``arena-async`` command line (and the docs' examples) at it.

Shared by ``python -m arena_async.testing`` and ``arena-async fake-server``, which print
the same lines; this module imports neither typer nor rich (the test kit works without
the ``cli`` extra).
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._fake_arena import FakeArena

if TYPE_CHECKING:
    from ._fake_akana import FakeAkana

__all__ = ["akana_kwargs_for", "akana_lines", "arena_kwargs_for", "arena_lines", "exports",
           "temporary_share"]


def arena_kwargs_for(fake: FakeArena) -> dict[str, Any]:
    """ArenaClient credentials of a fake."""
    return {"base_url": fake.url, "email": fake.email, "password": fake.password,
            "workspace_id": fake.workspace_id}


def akana_kwargs_for(fake: FakeAkana) -> dict[str, Any]:
    """AkanaClient credentials of a fake."""
    return {"base_url": fake.url, "email": fake.email, "password": fake.password}


def exports(prefix: str, client_kwargs: dict[str, Any]) -> str:
    """The shell line that sets the environment the CLI reads for these client keywords
    (``ARENA_`` + ``BASE_URL``, ``EMAIL``, ...)."""
    return "export " + " ".join(f"{prefix}{k.upper()}={shlex.quote(str(v))}"
                                for k, v in client_kwargs.items())


def _oauth_exports(fake: FakeArena) -> str:
    """The shell line that switches the environment from the fake's login to its OAuth
    client: the variables the CLI and the docs' OAuth example read (``ARENA_CLIENT_ID``,
    ``ARENA_CLIENT_SECRET``, ``ARENA_TOKEN_URL``), after unsetting the login's (two
    credentials at once are refused)."""
    login = " ".join(f"ARENA_{k.upper()}" for k in arena_kwargs_for(fake) if k != "base_url")
    return f"unset {login}; " + exports("ARENA_", {"client_id": fake.client_id,
                                                   "client_secret": fake.client_secret,
                                                   "token_url": fake.token_url})


def temporary_share(cleanup: Callable[..., Any]) -> str:
    """The URL of a share for the clients run against a fake: a SQLite file in a private
    temporary folder (0700); ``cleanup(function, *args, **kwargs)`` (an exit stack's
    ``callback``) is given what removes the folder when the fake stops. Trying the fake
    never touches the user's default share, and sharing works as with it."""
    folder = tempfile.mkdtemp(prefix="arena_async-fake-share-")
    cleanup(shutil.rmtree, folder, ignore_errors=True)
    return f"sqlite:///{Path(folder, 'share.db')}"


def arena_lines(fake: FakeArena, *, share: str) -> list[str]:
    """How to use a running FakeArena: the ``export ARENA_...`` line of its login (with
    ``ARENA_SHARE=share``, a :func:`temporary_share`), then the line that switches to its
    OAuth machine user; the lines that are not commands are shell comments, so that
    pasting them all is harmless."""
    return [exports("ARENA_", {**arena_kwargs_for(fake), "share": share}),
            "# ARENA_SHARE: a temporary share of this fake's own, removed when it stops: "
            "your default share is not used",
            "# or as its OAuth machine user (one credential at a time: the login's "
            "variables go first):",
            _oauth_exports(fake)]


def akana_lines(fake: FakeAkana) -> list[str]:
    """How to use a running FakeAkana: the ``export AKANA_...`` line of its login."""
    return [exports("AKANA_", akana_kwargs_for(fake))]
