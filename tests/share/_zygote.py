"""A fork server for tests/share/test_multiprocess.py: each sharer a real OS process, forked
from one that has already imported arena_async and redis.

Starting ``python tests/share/_worker.py`` costs every worker its interpreter start and
imports (about half a second of CPU each, 4 workers a test); forking from this process
costs milliseconds. A forked worker is no less a separate process: its own pid, memory,
event loop, ArenaClient and share connections (none exists before the fork: this process
only imports), killed with real signals. ``random`` is reseeded in each child by Python.

Run as ``python tests/share/_zygote.py FD`` where FD is the inherited end of an
``AF_UNIX``/``SOCK_SEQPACKET`` socket pair. Once its imports are done it sends
``{"ready": true}``; then each request is one JSON message:

- ``{"config": {...}}`` with three file descriptors (stdout, stderr and status: the write
  ends of pipes): fork a worker that runs ``_worker.run(config)`` with that stdout and
  stderr; the answer is ``{"pid": N}``. When the worker ends, its exit code (negative: the
  signal that ended it, as ``subprocess``) is written to the status pipe, which is closed.

End of the socket (the test process is done): every worker still running is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _worker  # arena_async and everything a worker imports
import redis.asyncio  # noqa: F401 - imported once here, not in each worker

#: pid -> the write end of its status pipe
STATUS: dict[int, int] = {}


def child(sock: socket.socket, wakeup: tuple[int, int], fds: list[int],
          config: dict[str, object]) -> None:
    """In the forked worker: its own stdio, none of the server's descriptors; never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sock.close()
        for fd in (*wakeup, *STATUS.values(), fds[2]):
            os.close(fd)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        os.close(fds[0])
        os.close(fds[1])
        _worker.run(config)
        code = 0
    except BaseException:  # reported on the worker's stderr: exit 1
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def reap() -> None:
    """Report every ended worker on its status pipe."""
    while STATUS:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        fd = STATUS.pop(pid, None)
        if fd is not None:
            with contextlib.suppress(OSError):  # nobody reads it any more
                os.write(fd, f"{os.waitstatus_to_exitcode(status)}\n".encode())
            os.close(fd)


def serve(sock: socket.socket) -> None:
    wakeup = os.pipe()
    os.set_blocking(wakeup[1], False)
    signal.set_wakeup_fd(wakeup[1])
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    selector.register(wakeup[0], selectors.EVENT_READ)
    sock.send(b'{"ready": true}')  # imports done: each fork from now on takes milliseconds
    try:
        while True:
            for key, _ in selector.select():
                if key.fileobj is not sock:
                    os.read(wakeup[0], 4096)
                    reap()
                    continue
                message, fds, _, _ = socket.recv_fds(sock, 1 << 20, 3)
                if not message:
                    return
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    child(sock, wakeup, fds, json.loads(message)["config"])
                os.close(fds[0])
                os.close(fds[1])
                STATUS[pid] = fds[2]
                sock.send(json.dumps({"pid": pid}).encode())
                reap()  # one that ended at once
    finally:
        for pid in STATUS:
            os.kill(pid, signal.SIGKILL)
        while STATUS:
            os.read(wakeup[0], 4096)
            reap()


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
