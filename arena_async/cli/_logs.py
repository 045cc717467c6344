"""``-v`` / ``--log-level`` (or ``ARENA_LOG_LEVEL``): the library's log records on stderr.

The library adds no handlers; without these options the command adds none either, and
Python shows the library's warnings as bare lines on stderr (its last-resort handler).
Asked for, one handler on the ``arena_async`` logger writes each record as one compact
line, ``14:03:07.512 DEBUG arena_async._transport: GET /v1/items/... 200 3 ms``, for the
time of the command only. The library's records hold no secret (tests/test_secrets.py).
"""

from __future__ import annotations

import enum
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from ._common import EXIT_USAGE, CliError

__all__ = ["ENV", "FORMAT", "LogLevel", "level_for", "logs_on_stderr"]

#: The environment variable ``--log-level`` defaults to.
ENV = "ARENA_LOG_LEVEL"
#: One line per record: time of day with milliseconds, level, logger, message.
FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s"
_DATE = "%H:%M:%S"


class LogLevel(enum.StrEnum):
    """``--log-level`` values (any case)."""

    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


def level_for(verbose: int, log_level: LogLevel | None,
              environ: Mapping[str, str] | None = None) -> int | None:
    """The level a command logs at: the more verbose of ``-v`` (INFO; ``-vv`` and more:
    DEBUG) and ``log_level``, which defaults to ``ARENA_LOG_LEVEL`` (``environ``, default
    ``os.environ``; blank is unset); None when none is given (no handler: the warnings
    stay bare lines). ``-v`` with ``debug`` is DEBUG: ``-v`` never hides what was asked.
    A variable that is not a level is a :class:`CliError` naming it (exit 2).

    Example: ``level_for(2, None, {})`` → ``logging.DEBUG``
    """
    levels = []
    if verbose > 0:
        levels.append(logging.INFO if verbose == 1 else logging.DEBUG)
    if log_level is None:
        given = (os.environ if environ is None else environ).get(ENV, "").strip()
        if given:
            try:
                log_level = LogLevel(given.lower())
            except ValueError:
                raise CliError(f"{ENV} must be one of {', '.join(LogLevel)} (any case), not "
                               f"{given[:20]!r}", EXIT_USAGE) from None
    if log_level is not None:
        levels.append(logging.getLevelNamesMapping()[log_level.value.upper()])
    return min(levels) if levels else None


class _Stderr(logging.Handler):
    """Writes to the ``sys.stderr`` of the moment, not the one it was made with: live
    progress bars put a proxy there that prints each line above them (and a test's capture
    replaces it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = sys.stderr
            stream.write(line + "\n")
            stream.flush()
        except Exception:  # logging's own rule: a record never breaks a run
            self.handleError(record)


@contextmanager
def logs_on_stderr(level: int | None) -> Iterator[None]:
    """Within the block, the ``arena_async`` loggers' records at ``level`` and above are
    lines on stderr (:data:`FORMAT`); ``None``: nothing is changed. The logger's level and
    handlers are restored after."""
    if level is None:
        yield
        return
    logger = logging.getLogger("arena_async")
    handler = _Stderr()
    handler.setFormatter(logging.Formatter(FORMAT, _DATE))
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved)
