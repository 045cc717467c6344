"""What every command shares: exit codes, the expected-error type, and credentials from
the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from .._protocol import is_transient_status
from ..credentials import GivenCookies, Server, credential_from, credential_keys
from ..errors import (
    AnswerTooLargeError,
    APIError,
    ArenaAsyncError,
    AuthenticationError,
    QuotaExhaustedError,
    TransportError,
)

__all__ = [
    "EXIT_EMPTY",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_QUOTA",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "CliError",
    "UnknownItemNumber",
    "akana_settings",
    "arena_settings",
    "auth_advice",
    "exit_code_for",
    "is_fatal",
    "is_permanent",
    "one_line",
    "share_settings",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
#: The Arena request quota is spent: the export is resumable after the reset.
EXIT_QUOTA = 3
#: The export finished, but some items failed for good (or some item numbers are
#: unknown): they are listed in ``<out>.failed.jsonl``; the checkpoint is removed.
EXIT_PARTIAL = 4
#: The selection matched nothing (a query, or Akana filters): nothing is written and
#: nothing is recorded as complete, so the next run asks again (``--allow-empty``: an
#: empty output and exit 0 instead).
EXIT_EMPTY = 5
#: Ctrl-C (128 + SIGINT), also resumable.
EXIT_INTERRUPTED = 130
#: SIGTERM (128 + 15), also resumable.
EXIT_TERMINATED = 143


class UnknownItemNumber(Exception):
    """No item has this number (``export items`` fetches by number): a permanent failure
    of one item, listed in ``<out>.failed.jsonl``."""

    def __init__(self, number: str) -> None:
        super().__init__(f"no item has the number {number!r}")
        self.number = number


class CliError(Exception):
    """An expected failure: the command prints ``arena-async: error: <message>`` on stderr
    (one line, no traceback) and exits with ``exit_code``; ``warning``: the line says
    ``warning:`` instead (the command did what it was told, but the outcome needs a look:
    a selection that matched nothing)."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR, *,
                 warning: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.warning = warning


def one_line(exc: BaseException) -> str:
    """An exception as one line: its message, newlines folded (library messages never
    hold secrets), prefixed with its type unless it is one of arena_async's; the Python
    option names a fix mentions are put in command-line terms (``--ca-bundle``...)."""
    from ._network import cli_terms

    text = cli_terms(" ".join(str(exc).split()))
    if isinstance(exc, ArenaAsyncError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def exit_code_for(exc: BaseException) -> int:
    """3 for a spent quota (resumable), 1 for any other error."""
    return EXIT_QUOTA if isinstance(exc, QuotaExhaustedError) else EXIT_ERROR


#: Statuses of a login refused for its credentials (Arena refuses bad ones with a 400).
_REFUSED = frozenset({400, 401, 403})
#: Statuses of a login endpoint that is not there: the URL is wrong, not the credentials.
_NOT_THERE = frozenset({404, 405, 410})


def auth_advice(exc: BaseException, server: Literal["arena", "akana"] | None = None) -> str:
    """What to check after ``exc`` stopped a run, by what the server said: the
    credentials when it refused them (400, 401, 403); the URL when the login or token
    endpoint is not there (404, 405, 410: ``ARENA_BASE_URL``, ``ARENA_TOKEN_URL`` for an
    OAuth token endpoint, ``AKANA_BASE_URL``); else "" (the message says what is wrong).
    ``server`` None: told by the path asked (Akana logs in at ``/api/login...``).

    Example: ``auth_advice(LoginError(404, [], url="/login"), "arena")`` is ``"check
    ARENA_BASE_URL"``.
    """
    if not isinstance(exc, AuthenticationError):
        return ""
    if exc.status in _REFUSED:
        return "check the credentials in the environment"
    if exc.status not in _NOT_THERE:
        return ""
    if server == "akana" or (server is None and exc.url.startswith("/api/login")):
        return "check AKANA_BASE_URL (the portal's root, e.g. https://portal.example.com)"
    if exc.url == "/login":
        return "check ARENA_BASE_URL"
    return "check ARENA_TOKEN_URL"  # only the OAuth token endpoint is asked elsewhere


def is_fatal(exc: BaseException) -> bool:
    """Errors that would fail every other item too, so the run stops (resumably): a spent
    quota, refused credentials, an unreachable server (a refused certificate or proxy
    included), an answer over ``--max-answer-size``, or anything not from the API (a full
    disk, a bug). Other API errors (404 for an unknown item...) fail one item."""
    if isinstance(exc, QuotaExhaustedError | AuthenticationError | TransportError
                  | AnswerTooLargeError):
        return True
    return not isinstance(exc, ArenaAsyncError | UnknownItemNumber)


def is_permanent(exc: BaseException) -> bool:
    """An error that asking again will not change (an unknown item, a malformed GUID, no
    privilege): a 4xx other than a 401 (a session to renew) or a transient status (408,
    425, 429: ``is_transient_status``). Check :func:`is_fatal` first: a refused login is a
    400 too, but it stops the run."""
    if isinstance(exc, UnknownItemNumber):
        return True
    return (isinstance(exc, APIError) and 400 <= exc.status < 500
            and exc.status != 401 and not is_transient_status(exc.status))


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _credential(server: Server, prefix: str, values: dict[str, object],
                remedy: str) -> Any:
    """The one rule (:func:`~arena_async.credentials.credential_from`) over environment
    values, its errors naming the variables (exit 2)."""
    try:
        return credential_from(server, values, name=lambda key: prefix + key.upper())
    except ValueError as exc:
        raise CliError(f"{exc}{remedy}", EXIT_USAGE) from None


def _named(environ: Mapping[str, str], prefix: str, server: Server) -> dict[str, object]:
    """Every credential key of ``server`` read from ``prefix`` + its name in capitals."""
    return {key: _env(environ, prefix + key.upper()) for key in credential_keys(server)}


def arena_settings(environ: Mapping[str, str] | None = None, *,
                   share: str | None = None) -> dict[str, Any]:
    """ArenaClient keyword arguments from ``ARENA_*`` environment variables.

    The credential (``auth``) by the library's one rule: ``ARENA_EMAIL`` +
    ``ARENA_PASSWORD`` (+ ``ARENA_WORKSPACE_ID``), or ``ARENA_CLIENT_ID`` +
    ``ARENA_CLIENT_SECRET`` + ``ARENA_TOKEN_URL`` (an OAuth machine user), or
    ``ARENA_SESSION_ID`` (with email and password too: to log in again when it ends); two
    kinds at once are refused, never one chosen. Optional: ``ARENA_BASE_URL``,
    ``ARENA_USAGE_REASON``, and the share (``share``, the ``--share`` option, else
    ``ARENA_SHARE``). Raises :class:`CliError` (exit 2) naming what is missing or
    clashing, never a value.

    Example::

        ArenaClient(**arena_settings(), max_concurrency=16)
    """
    env = os.environ if environ is None else environ
    values = _named(env, "ARENA_", "arena")
    workspace = values.get("workspace_id")
    if isinstance(workspace, str):
        if not workspace.isdigit():
            raise CliError("ARENA_WORKSPACE_ID must be an integer", EXIT_USAGE)
        values["workspace_id"] = int(workspace)
    settings: dict[str, Any] = {"auth": _credential("arena", "ARENA_", values,
                                                    "; or use --fake")}
    for name, key in (("ARENA_BASE_URL", "base_url"), ("ARENA_USAGE_REASON", "usage_reason")):
        value = _env(env, name)
        if value is not None:
            settings[key] = value
    settings.update(share_settings(env, share))
    return settings


def share_settings(environ: Mapping[str, str] | None = None,
                   share: str | None = None) -> dict[str, Any]:
    """The share of a run against a server: ``share`` (the ``--share`` option: a URL, or
    ``none``), else nothing, which leaves the library's default share (``ARENA_SHARE`` when
    set, ``none`` opting out, else a private SQLite file in the user's state folder; a
    client given a session id never shares). A malformed ``--share`` or a relative SQLite
    path is a :class:`CliError` (exit 2); ``environ`` is not read (the library reads
    ``ARENA_SHARE`` itself, with the same rules as every program).

    Example: ``share_settings(share="none")`` is ``{"share": False}``.
    """
    from ._network import share_option

    del environ  # the library's default reads ARENA_SHARE
    return share_option(share)


def akana_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """AkanaClient keyword arguments from ``AKANA_*`` environment variables.

    ``AKANA_BASE_URL`` (required) and the credential (``auth``) by the library's one rule:
    ``AKANA_EMAIL`` + ``AKANA_PASSWORD``, or ``AKANA_DOMAIN`` + ``AKANA_USERNAME`` +
    ``AKANA_PASSWORD`` (a directory user), or ``AKANA_AUTH_TOKEN`` + ``AKANA_TENANT``
    (+ ``AKANA_CSRF_TOKEN``; with a login too: to log in when the token cannot be
    renewed); optional ``AKANA_TENANT`` (with a login: which tenant) and
    ``AKANA_API_VERSION``.
    """
    env = os.environ if environ is None else environ
    base_url = _env(env, "AKANA_BASE_URL")
    if base_url is None:
        raise CliError("AKANA_BASE_URL is not set (e.g. https://portal.example.com); "
                       "or use --fake", EXIT_USAGE)
    settings: dict[str, Any] = {"base_url": base_url}
    values = _named(env, "AKANA_", "akana")
    settings["auth"] = _credential("akana", "AKANA_", values, "; or use --fake")
    if not isinstance(settings["auth"], GivenCookies) and values["tenant"] is not None:
        settings["tenant"] = values["tenant"]  # which tenant's cookies a login keeps
    version = _env(env, "AKANA_API_VERSION")
    if version is not None:
        settings["api_version"] = version
    return settings
