"""``arena-async fake-server``: run FakeArena and/or FakeAkana until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from pathlib import Path
from typing import TypeVar

from ..testing import FakeArena
from ..testing._banner import akana_lines, arena_lines, temporary_share
from ._common import EXIT_ERROR, CliError
from ._fakes import start_fake_akana, start_fake_arena
from ._select import Entry

__all__ = ["item_numbers", "serve"]

_F = TypeVar("_F")


def _say(line: str) -> None:
    print(line, flush=True)


def _write_lines(path: Path, lines: list[str]) -> None:
    try:
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}", EXIT_ERROR) from None


def item_numbers(fake: FakeArena) -> list[str]:
    """The fake's item numbers as lines of an ``--items`` file: each number once, in item
    order (a number selects every item that has it)."""
    numbers: dict[str, None] = {}
    for guid in fake.item_guids:
        number = fake.item(guid, view="minimum").get("number")
        if number:
            numbers[Entry(str(number), is_number=True).line] = None
    return list(numbers)


async def _listen(stack: AsyncExitStack, server: AbstractAsyncContextManager[_F], host: str,
                  port: int) -> _F:
    """``server`` started on ``stack``; a port that cannot be had is one CLI error."""
    try:
        return await stack.enter_async_context(server)
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}", EXIT_ERROR) from None


async def serve(*, arena: bool, akana: bool, host: str, arena_port: int, akana_port: int,
                items: int, tickets: int, seed: int, quota: int | None, latency: float,
                write_items: Path | None, write_numbers: Path | None = None) -> None:
    """Start the fakes, print where they listen and how to log in, wait for a signal.

    ``write_items`` / ``write_numbers``: files to write the Arena items' GUIDs / item
    numbers to, one a line, for ``export --items``.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
            handled.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - Windows
            pass
    try:
        async with AsyncExitStack() as stack:
            if arena:
                fake = await _listen(stack, start_fake_arena(
                    items=items, seed=seed, quota=quota, latency=latency, port=arena_port,
                    host=host), host, arena_port)
                quota_text = f"quota {quota:,}/day" if quota is not None else "no quota"
                _say(f"FakeArena  {fake.url}  ({items:,} items, seed {seed}, {quota_text})")
                for line in arena_lines(fake, share=temporary_share(stack.callback)):
                    _say("  " + line)
                if write_items is not None:
                    _write_lines(write_items, fake.item_guids)
                    _say(f"  item GUIDs written to {write_items}")
                if write_numbers is not None:
                    _write_lines(write_numbers, item_numbers(fake))
                    _say(f"  item numbers written to {write_numbers}")
            if akana:
                fake_akana = await _listen(stack, start_fake_akana(
                    tickets=tickets, seed=seed, latency=latency, port=akana_port,
                    host=host), host, akana_port)
                _say(f"FakeAkana  {fake_akana.url}  ({tickets:,} tickets, seed {seed})")
                for line in akana_lines(fake_akana):
                    _say("  " + line)
            _say("Serving; Ctrl-C (or SIGTERM) stops.")
            await stop.wait()
        _say("Stopped.")
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
