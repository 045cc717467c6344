"""``arena-async fake-server``: run FakeArena and/or FakeAkana until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import shlex
import signal
from contextlib import AsyncExitStack
from pathlib import Path

from ._common import EXIT_ERROR, CliError
from ._fakes import start_fake_akana, start_fake_arena

__all__ = ["serve"]


def _say(line: str) -> None:
    print(line, flush=True)


def _write_lines(path: Path, lines: list[str]) -> None:
    try:
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}", EXIT_ERROR) from None


def _exports(pairs: dict[str, str]) -> str:
    return "export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in pairs.items())


async def serve(*, arena: bool, akana: bool, host: str, arena_port: int, akana_port: int,
                items: int, tickets: int, seed: int, quota: int | None, latency: float,
                write_items: Path | None) -> None:
    """Start the fakes, print where they listen and how to log in, wait for a signal."""
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
                try:
                    fake = await stack.enter_async_context(start_fake_arena(
                        items=items, seed=seed, quota=quota, latency=latency, port=arena_port,
                        host=host))
                except OSError as exc:
                    raise CliError(f"cannot listen on {host}:{arena_port}: {exc.strerror}",
                                   EXIT_ERROR) from None
                quota_text = f"quota {quota:,}/day" if quota is not None else "no quota"
                _say(f"FakeArena  {fake.url}  ({items:,} items, seed {seed}, {quota_text})")
                _say("  " + _exports({
                    "ARENA_BASE_URL": fake.url, "ARENA_EMAIL": fake.email,
                    "ARENA_PASSWORD": fake.password,
                    "ARENA_WORKSPACE_ID": str(fake.workspace_id)}))
                if write_items is not None:
                    _write_lines(write_items, fake.item_guids)
                    _say(f"  item GUIDs written to {write_items}")
            if akana:
                try:
                    fake_akana = await stack.enter_async_context(start_fake_akana(
                        tickets=tickets, seed=seed, latency=latency, port=akana_port,
                        host=host))
                except OSError as exc:
                    raise CliError(f"cannot listen on {host}:{akana_port}: {exc.strerror}",
                                   EXIT_ERROR) from None
                _say(f"FakeAkana  {fake_akana.url}  ({tickets:,} tickets, seed {seed})")
                _say("  " + _exports({
                    "AKANA_BASE_URL": fake_akana.url, "AKANA_EMAIL": fake_akana.email,
                    "AKANA_PASSWORD": fake_akana.password}))
            _say("Serving; Ctrl-C (or SIGTERM) stops.")
            await stop.wait()
        _say("Stopped.")
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
