"""What the commands that talk to a server share beyond credentials: the network (a CA
bundle, a proxy, the standard environment variables, the answer size limit), the share,
and the library's messages put in command-line terms."""

from __future__ import annotations

from typing import Any

from .._network import TRUST_FIXES, check_proxy, read_ca_bundle
from .._share._base import share_from_url
from ._common import EXIT_USAGE, CliError

__all__ = ["MIB", "cli_terms", "fake_share", "network_settings", "share_option"]

#: ``--max-answer-size`` is in MiB.
MIB = 2**20

#: Library phrases (option names of the Python API) and what a command-line user does
#: instead; a phrase the library no longer uses is simply not replaced.
_TERMS: tuple[tuple[str, str], ...] = (
    (TRUST_FIXES, "give the CA bundle (PEM) that signs it: --ca-bundle /path/to/ca.pem, "
                  "or SSL_CERT_FILE=/path/to/ca.pem in the environment"),
    ("(proxy=, or HTTPS_PROXY with trust_env=True)", "(--proxy, or HTTPS_PROXY)"),
    ("raise max_answer_size= on the client", "raise the limit with --max-answer-size MIB"),
    (" (trust_env=True)", ""),
)


def cli_terms(text: str) -> str:
    """A library message with the Python option names replaced by the command line's
    (``ssl=`` -> ``--ca-bundle``, ``max_answer_size=`` -> ``--max-answer-size``...).

    Example: ``cli_terms("HTTPS_PROXY (trust_env=True): bad")`` is ``"HTTPS_PROXY: bad"``.
    """
    for library, command_line in _TERMS:
        text = text.replace(library, command_line)
    return text


def network_settings(*, ca_bundle: str | None, proxy: str | None,
                     max_answer_mib: int | None, environment: bool) -> dict[str, Any]:
    """Client keyword arguments for ``--ca-bundle``, ``--proxy`` and ``--max-answer-size``,
    checked now (:class:`CliError`, exit 2, naming the option, never the proxy password).

    ``environment``: read ``HTTPS_PROXY``, ``NO_PROXY``, ``SSL_CERT_FILE``... too
    (``trust_env=True``); the options win over them. False for the built-in fakes, which
    are on loopback whatever the machine's proxy.

    Example: ``network_settings(ca_bundle="/etc/corp/ca.pem", proxy=None,
    max_answer_mib=None, environment=True)``
    """
    settings: dict[str, Any] = {"trust_env": environment}
    try:
        if ca_bundle is not None:
            # Read once, here: the client is given the context, not the path again.
            settings["ssl"] = read_ca_bundle(ca_bundle, name="--ca-bundle")
        if proxy is not None:
            check_proxy(proxy, name="--proxy")
            settings["proxy"] = proxy
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if max_answer_mib is not None:
        settings["max_answer_size"] = max_answer_mib * MIB
    return settings


def share_option(share: str | None) -> dict[str, Any]:
    """``--share``: ``{"share": url}``, ``{"share": False}`` for ``none``, or ``{}`` when
    not given, which leaves the library's default share (``ARENA_SHARE`` when set, else a
    private SQLite file in the user's state folder). A malformed URL or a relative SQLite
    path is a :class:`CliError` (exit 2) naming ``--share``, never a password.

    Example: ``share_option("none")`` is ``{"share": False}``.
    """
    if share is None:
        return {}
    value = share.strip()
    if value.lower() == "none":
        return {"share": False}
    try:
        share_from_url(value)
    except ValueError as exc:
        raise CliError(f"--share: {exc}", EXIT_USAGE) from None
    return {"share": value}


def fake_share(share: str | None) -> dict[str, Any]:
    """The share of a run against a built-in fake (``--fake``, ``demo``): none, unless
    ``--share`` names one. Neither ``ARENA_SHARE`` nor the user's default share is used: a
    fake's sessions and quota have no business there.

    Example: ``fake_share(None)`` is ``{"share": False}``.
    """
    return share_option(share) if share is not None else {"share": False}

