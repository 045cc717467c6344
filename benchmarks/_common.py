"""Shared plumbing of the benchmarks: servers in subprocesses, CPU pinning, tables, RESULTS.md.

Every benchmark script is runnable on its own (``python benchmarks/overhead.py``) and
rewrites only its own section of ``benchmarks/RESULTS.md`` (between ``<!-- bench:NAME -->``
markers); ``run_all.py`` starts the file afresh and runs every script in a fresh process.
A ``--quick`` run prints its table but does not touch RESULTS.md unless ``--write``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "RESULTS.md"
ANALYSIS = HERE / "analysis.md"  # hand-written; copied to the end of RESULTS.md
LOAD_SERVER = HERE / "load_server.py"
LOOPBACK = "127.0.0.1"  # every server binds here and only here

#: Core layout when pinning: the server gets SERVER_CPU, the client CLIENT_CPU.
SERVER_CPU = 1
CLIENT_CPU = 0

#: The order of sections in RESULTS.md.
SECTIONS = ("overhead", "instructions", "breakdown", "latency", "streaming", "structuring", "quota",
            "sharing", "frugal")

EMAIL = "bench@example.com"
PASSWORD = "bench-password"


# -- arguments ----------------------------------------------------------------------------
def parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark script accepts."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true",
                   help="a small smoke run (prints; leaves RESULTS.md alone unless --write)")
    p.add_argument("--rounds", type=int, default=None, help="rounds per figure (median)")
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin server and client to different cores")
    p.add_argument("--write", action="store_true", help="update RESULTS.md even with --quick")
    p.add_argument("--no-write", action="store_true", help="never touch RESULTS.md")
    p.add_argument("--results", type=Path, default=RESULTS, help="the results file")
    return p


def should_write(args: argparse.Namespace) -> bool:
    """Full runs update RESULTS.md; quick runs only with --write."""
    if args.no_write:
        return False
    return bool(args.write or not args.quick)


# -- pinning ------------------------------------------------------------------------------
def can_pin() -> bool:
    """True when this machine has both cores of the layout and lets us set affinity."""
    try:
        cpus = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        return False
    return {SERVER_CPU, CLIENT_CPU} <= cpus


def pin(pid: int, cpu: int) -> bool:
    """Pin process ``pid`` (0: this one) to one core; False when that is not possible."""
    try:
        os.sched_setaffinity(pid, {cpu})
    except (AttributeError, OSError):
        return False
    return True


def unpin_self() -> None:
    """Let this process run on every core again."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


def pin_note(pinned: bool) -> str:
    if pinned:
        return (f"server pinned to CPU {SERVER_CPU}, client to CPU {CLIENT_CPU} "
                "(os.sched_setaffinity)")
    return "not pinned: server and client share every core"


# -- servers in subprocesses -------------------------------------------------------------
class Server:
    """A server process that prints ``READY <url>``; terminated on exit."""

    def __init__(self, argv: Sequence[str], *, cpu: int | None = None,
                 ready_timeout: float = 60.0) -> None:
        self.argv = list(argv)
        self.cpu = cpu
        self.ready_timeout = ready_timeout
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in stop()

    def start(self) -> Server:
        self.proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL,
            text=True, cwd=REPO,
        )
        if self.cpu is not None:
            pin(self.proc.pid, self.cpu)
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self._readline()), daemon=True)
        reader.start()
        reader.join(self.ready_timeout)
        text = line[0] if line else ""
        if not text.startswith("READY "):
            self.stop()
            self._log.seek(0)
            raise RuntimeError(f"server did not start ({' '.join(self.argv)}): {text!r}\n"
                               f"{self._log.read()[-2000:]}")
        self.url = text.split(None, 1)[1].strip()
        if not self.url.startswith(f"http://{LOOPBACK}:"):
            self.stop()
            raise RuntimeError(f"server is not on loopback: {self.url}")
        return self

    def _readline(self) -> str:
        assert self.proc is not None
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    @property
    def root(self) -> str:
        """``http://127.0.0.1:port`` (without ``/v1``)."""
        return self.url.rsplit("/v1", 1)[0]

    def stats(self) -> dict[str, Any]:
        """FakeArena's (or the load server's) ``GET /_fake/stats``."""
        with urllib.request.urlopen(f"{self.root}/_fake/stats", timeout=10) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]

    def cpu_seconds(self) -> float:
        """User + system CPU the server process has used so far (0.0 when unknown)."""
        if self.proc is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        self._log.close()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def load_server(*, latency: float = 0.0, cpu: int | None = None) -> Server:
    """The minimal benchmark server (``load_server.py``): canned tickets, generated records."""
    argv = [sys.executable, str(LOAD_SERVER), "--port", "0", "--latency", str(latency)]
    return Server(argv, cpu=cpu)


def fake_arena(*, items: int = 50, quota: int | None = None, window: float = 86400.0,
               latency: float = 0.0, multi_session: bool = False,
               cpu: int | None = None) -> Server:
    """FakeArena in a subprocess: ``python -m arena_async.testing arena ...``."""
    argv = [sys.executable, "-m", "arena_async.testing", "arena", "--host", LOOPBACK,
            "--port", "0", "--items", str(items), "--seed", "1", "--latency", str(latency),
            "--quota-window", str(window)]
    if quota is not None:
        argv += ["--quota", str(quota)]
    if multi_session:
        argv.append("--multi-session")
    return Server(argv, cpu=cpu)


# -- numbers and tables -----------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def spread(values: Sequence[float]) -> str:
    """``min..max`` of a figure over its rounds."""
    return f"{fmt(min(values))}..{fmt(max(values))}"


def fmt(value: float, digits: int = 3) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> tuple[str, str]:
    """The same table as aligned text (for the terminal) and as Markdown."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    text = "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in cells)
    md = ["| " + " | ".join(cells[0]) + " |", "|" + "|".join("---" for _ in header) + "|"]
    md += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in cells[1:]]
    return text, "\n".join(md)


# -- environment ------------------------------------------------------------------------
def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def environment() -> dict[str, str]:
    libs = ("arena_async", "aiohttp", "httpx", "cattrs", "attrs", "multidict", "yarl",
            "aiolimiter", "orjson", "psutil")
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{_cpu_model()}, {os.cpu_count()} cores, {platform.machine()}, "
                   f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "libraries": ", ".join(f"{n} {_version(n)}" for n in libs),
        "load": "load average {:.2f} {:.2f} {:.2f} at start".format(*load),
    }


def env_line(env: dict[str, str] | None = None) -> str:
    env = env or environment()
    return (f"_Run {env['date']} on {env['machine']}; {env['python']}; {env['libraries']}; "
            f"{env['load']}._")


# -- RESULTS.md -------------------------------------------------------------------------
HEADER = """# Benchmarks (issue #7, and the quota figures of issue #3)

Generated by the scripts in `benchmarks/` (`make bench` runs them all; each script can run
alone and rewrites only its own section; `--quick` is a smoke run that writes nothing). Do
not edit by hand: edit the scripts, or `benchmarks/analysis.md` for the closing analysis.

Every figure is the median of several rounds and, where it is a ratio, is measured against
a baseline measured in the same run, in the same rounds (interleaved), against the same
server. Servers run in a separate process on 127.0.0.1 only.

**The machine is shared and noisy, and has 2 cores**: the client and the server compete
for them (and with anything else running on the box). Unless `--no-pin` is given, the
server is pinned to CPU 1 and the client to CPU 0 (`os.sched_setaffinity`), so that each
gets one core and a throughput figure shows whichever side is slower. Absolute numbers
move by 10-30 % from run to run; the ratios are much steadier, but only ratios well clear
of their target are conclusive.
"""


def _marker(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"


def reset_results(path: Path = RESULTS) -> None:
    """Start RESULTS.md afresh: the header, an empty slot per section, the analysis."""
    parts = [HEADER.rstrip() + "\n"]
    for name in SECTIONS:
        start, end = _marker(name)
        parts.append(f"{start}\n_({name}: not run yet)_\n{end}\n")
    path.write_text("\n".join(parts))
    _replace(path, "analysis", _analysis())


def _analysis() -> str:
    try:
        return ANALYSIS.read_text()
    except OSError:
        return "_(benchmarks/analysis.md is missing)_"


def _replace(path: Path, name: str, markdown: str) -> None:
    text = path.read_text()
    start, end = _marker(name)
    block = f"{start}\n{markdown.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def write_section(name: str, markdown: str, path: Path = RESULTS) -> None:
    """Replace (or add) the section ``name`` of RESULTS.md, and refresh the analysis."""
    if not path.exists() or "<!-- bench:" not in path.read_text():
        reset_results(path)
    _replace(path, name, markdown)
    _replace(path, "analysis", _analysis())
    text = path.read_text()
    path.write_text(HEADER.rstrip() + "\n\n" + text[text.index("<!-- bench:"):])


def report(args: argparse.Namespace, name: str, title: str, text_table: str,
           markdown: str) -> None:
    """Print the table; update RESULTS.md when this run should."""
    print(f"\n== {title} ==")
    print(text_table)
    if should_write(args):
        write_section(name, markdown, args.results)
        print(f"(section '{name}' of {args.results} updated)")


@contextlib.contextmanager
def timed() -> Iterator[dict[str, float]]:
    """Wall and CPU time of a block: ``with timed() as t: ...; t["wall"], t["cpu"]``."""
    out: dict[str, float] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield out
    finally:
        out["wall"] = time.perf_counter() - wall
        out["cpu"] = time.process_time() - cpu
