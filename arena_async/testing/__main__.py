"""Run a fake server until SIGTERM / SIGINT: ``python -m arena_async.testing arena ...``
(FakeArena) or ``python -m arena_async.testing akana ...`` (FakeAkana).

Once listening, prints ``READY <base_url>`` to stdout as its first line (programs read
that line), then how to use the fake by hand: the shell lines of its credentials, the
same ``export ARENA_...`` / ``export AKANA_...`` lines ``arena-async fake-server`` prints
(``ARENA_SHARE``: a temporary share of this fake's own, removed when it stops). Example::

    python -m arena_async.testing arena --port 0 --items 5000 --seed 1 \\
        --latency 0.02 --quota 500 --quota-window 2.0
    python -m arena_async.testing akana --port 0 --tickets 300 --host ::1
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any

from ._banner import akana_lines, arena_lines, temporary_share
from ._fake_arena import FakeArena
from ._server import FakeServer


def _add_server(subparsers: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    """A subcommand with what every fake takes: ``--host --port --seed --latency``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text)
    parser.add_argument("--host", default="127.0.0.1", help="::1 serves IPv6")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    return parser


def _add_arena(subparsers: Any) -> None:
    arena = _add_server(subparsers, "arena", "run FakeArena")
    arena.add_argument("--items", type=int, default=2000)
    arena.add_argument("--quota", type=int, default=None, help="requests per window")
    arena.add_argument("--quota-window", type=float, default=86400.0, help="seconds")
    arena.add_argument("--reset-format", choices=("arena", "rfc1123", "iso"), default="arena")
    arena.add_argument(
        "--multi-session",
        action="store_true",
        help="a new login does not end the same user's earlier sessions",
    )
    arena.set_defaults(make=_make_arena)


def _make_arena(args: argparse.Namespace) -> FakeArena:
    return FakeArena.seeded(
        items=args.items,
        seed=args.seed,
        host=args.host,
        port=args.port,
        latency=args.latency,
        quota_limit=args.quota,
        quota_window=args.quota_window,
        reset_header_format=args.reset_format,
        single_session=not args.multi_session,
    )


def _add_akana(subparsers: Any) -> None:
    akana = _add_server(subparsers, "akana", "run FakeAkana")
    akana.add_argument("--tickets", type=int, default=1001)
    akana.set_defaults(make=_make_akana)


def _make_akana(args: argparse.Namespace) -> FakeServer:
    from ._fake_akana import FakeAkana

    return FakeAkana.seeded(
        tickets=args.tickets, seed=args.seed, host=args.host, port=args.port,
        latency=args.latency,
    )


def build_parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per fake server."""
    parser = argparse.ArgumentParser(
        prog="python -m arena_async.testing",
        description="Run a fake server for tests. Once it listens, prints 'READY <url>' "
                    "first, then its credentials as the shell lines the arena-async "
                    "command line reads (export ARENA_... or AKANA_...).",
    )
    subparsers = parser.add_subparsers(dest="server", required=True)
    _add_arena(subparsers)
    _add_akana(subparsers)
    return parser


def banner(fake: FakeServer, cleanup: Callable[..., Any]) -> list[str]:
    """What is printed once ``fake`` listens: ``READY <url>``, then its credentials as
    shell lines; ``cleanup`` (an exit stack's ``callback``) removes FakeArena's temporary
    share when the fake stops."""
    if isinstance(fake, FakeArena):
        usage = arena_lines(fake, share=temporary_share(cleanup))
    else:
        from ._fake_akana import FakeAkana

        assert isinstance(fake, FakeAkana)
        usage = akana_lines(fake)
    return [f"READY {fake.url}", *usage, "# serving until Ctrl-C or SIGTERM"]


async def _serve(fake: FakeServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    with ExitStack() as stack:
        async with fake:
            sys.stdout.write("".join(line + "\n" for line in banner(fake, stack.callback)))
            sys.stdout.flush()
            await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    asyncio.run(_serve(args.make(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
