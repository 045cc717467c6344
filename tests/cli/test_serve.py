"""``fake-server`` on a port that is taken: one CLI error naming the address, for either fake."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from arena_async.cli._common import EXIT_ERROR, CliError
from arena_async.cli._serve import serve


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("which", ["arena", "akana"])
async def test_a_taken_port_is_one_error_naming_it(which: str, taken_port: int,
                                                  tmp_path: Path) -> None:
    ports = {"arena_port": 0, "akana_port": 0, f"{which}_port": taken_port}
    with pytest.raises(CliError) as caught:
        await serve(arena=which == "arena", akana=which == "akana", host="127.0.0.1",
                    items=2, tickets=2, seed=1, quota=None, latency=0.0,
                    write_items=tmp_path / "items.txt", **ports)
    assert caught.value.exit_code == EXIT_ERROR
    assert caught.value.message.startswith(f"cannot listen on 127.0.0.1:{taken_port}: ")
    assert not (tmp_path / "items.txt").exists()
