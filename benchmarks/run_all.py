"""Run every benchmark, each in a fresh process, and rewrite ``benchmarks/RESULTS.md``.

``python benchmarks/run_all.py`` (``make bench``): the full figures, a few minutes in all.
``python benchmarks/run_all.py --quick``: a small smoke run of every script that prints its
tables and leaves RESULTS.md alone (add ``--write`` to record it anyway). Other options
(``--no-pin``, ``--rounds N``) are passed to every script; ``--only NAME ...`` runs some.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

SCRIPTS = {
    "overhead": "overhead.py",
    "instructions": "instructions.py",
    "breakdown": "breakdown.py",
    "latency": "latency.py",
    "streaming": "streaming.py",
    "structuring": "structuring.py",
    "quota": "quota.py",
    "sharing": "sharing.py",
    "frugal": "frugal.py",
}
#: Each script must finish well inside this (they take 10-90 s on the 2-core box).
TIMEOUT = 300


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--write", action="store_true")
    p.add_argument("--no-pin", action="store_true")
    p.add_argument("--rounds", type=int, default=None)
    p.add_argument("--only", nargs="+", choices=sorted(SCRIPTS), default=None)
    args = p.parse_args(argv)
    names = args.only or list(SCRIPTS)
    writes = args.write or not args.quick
    if writes and args.only is None:
        c.reset_results()
    passthrough = [flag for flag, on in (("--quick", args.quick), ("--write", args.write),
                                         ("--no-pin", args.no_pin)) if on]
    if args.rounds is not None:
        passthrough += ["--rounds", str(args.rounds)]
    failed = []
    for name in names:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, str(c.HERE / SCRIPTS[name]), *passthrough],
                              timeout=TIMEOUT, check=False)
        print(f"[{name}: {time.perf_counter() - started:.0f} s, exit {done.returncode}]",
              flush=True)
        if done.returncode != 0:
            failed.append(name)
    if writes:
        print(f"\nwrote {c.RESULTS}")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
