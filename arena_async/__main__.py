"""``arena-async`` / ``python -m arena_async``: demo, export and fake-server commands.

The commands live in :mod:`arena_async.cli` and need the ``cli`` extra (typer, rich);
without it this prints a one-line hint and exits 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

HINT = ("arena-async: the command line needs typer and rich: "
        "pip install 'arena_async[cli]'")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m arena_async`` and the ``arena-async`` command.

    Returns the exit status: 0 done, 1 error, 2 bad usage, 3 Arena quota exhausted
    (resumable), 4 export finished but some items failed for good (listed in
    ``<out>.failed.jsonl``), 130 interrupted by Ctrl-C and 143 by SIGTERM (resumable).

    Example: ``main(["export", "ticket-refs", "--fake", "--out", "refs.jsonl"])``
    """
    try:
        import rich  # noqa: F401
        import typer  # noqa: F401
    except ImportError:
        print(HINT, file=sys.stderr)
        return 2
    from .cli import run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
