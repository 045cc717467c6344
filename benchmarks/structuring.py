"""Benchmark 4: the cost of structuring a page against ``json.loads`` of it.

No I/O: a page body is built once, then per round the median time of ``json.loads(body)``
(the baseline) and of ``arena_async._convert.structure(results, list[Model])`` (what the
client does with each page after decoding it) are measured with ``timeit``.

- Arena ``TrainingRecord``: a 400-record page as the list endpoint sends it (``guid`` +
  ``trainingplan``), and the same page with ``dueDate`` / ``signedDateTime`` (two
  datetimes per record, as the single-record endpoint sends them).
- Akana ``Ticket``: a 100-ticket page (Akana's default page size) of realistic tickets:
  the two seed samples of ``tests/models/data/akana_tickets_sample.json`` (23 fields,
  nested objects, three lists, two datetimes), repeated with distinct ids.

Target: structure <= 1.5x parse (per page). Also records/s for both.
"""

from __future__ import annotations

import json
import sys
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
import _prototype

from arena_async._convert import structure
from arena_async.models.akana import Ticket
from arena_async.models.arena import TrainingRecord

TARGET = 1.5
SAMPLE = c.REPO / "tests" / "models" / "data" / "akana_tickets_sample.json"


def training_page(n: int = 400, *, dates: bool = False) -> bytes:
    results = []
    for i in range(n):
        rec: dict[str, Any] = {
            "guid": f"TR{i:018d}",
            "trainingplan": {"guid": f"PLAN{i % 50:016d}", "number": f"TRP-{i % 50 + 1:06d}"},
        }
        if dates:
            rec["dueDate"] = f"2024-{i % 12 + 1:02d}-{i % 28 + 1:02d}T12:00:00Z"
            if i % 3:
                rec["signedDateTime"] = f"2024-{i % 12 + 1:02d}-{i % 28 + 1:02d}T08:30:15Z"
        results.append(rec)
    return json.dumps({"count": n, "results": results}).encode()


def ticket_samples() -> list[dict[str, Any]]:
    data: dict[str, list[dict[str, Any]]] = json.loads(SAMPLE.read_text())
    return data["Ticket"]


def ticket_page(n: int = 100) -> bytes:
    samples = ticket_samples()
    tickets = []
    for i in range(n):
        t = json.loads(json.dumps(samples[i % len(samples)]))
        t["TicketID"] = f"ticket{20000 + i}.acmepaymentscorp"
        t["Title"] = f"{t['Title']} #{i}"
        tickets.append(t)
    return json.dumps({"Ticket": tickets}, indent=1).encode()  # Akana pretty-prints


CASES: list[tuple[str, Any, Any, str]] = [
    # name, page builder, model, results key
    ("TrainingRecord, list form", lambda q: training_page(40 if q else 400), TrainingRecord,
     "results"),
    ("TrainingRecord, with 2 dates", lambda q: training_page(40 if q else 400, dates=True),
     TrainingRecord, "results"),
    ("Akana Ticket (seed sample)", lambda q: ticket_page(10 if q else 100), Ticket, "Ticket"),
]


def best_per_call(fn: Any, budget: float) -> float:
    """Seconds per call: the fastest of 3 batches sized to take about ``budget`` each."""
    number, elapsed = 1, 0.0
    while elapsed < budget / 4:
        number *= 2
        elapsed = timeit.timeit(fn, number=number)
    number = max(1, int(number * budget / max(elapsed, 1e-9)))
    return min(timeit.repeat(fn, number=number, repeat=3)) / number


#: The library before fix 7 (cattrs' fast converter for every type), for comparison.
PROTOTYPES = {"cattrs": ["cattrs"]}


def usable_prototypes(data: Any, model: Any, expected: Any) -> dict[str, list[str]]:
    """The prototypes that still run and give the library's result (else a warning)."""
    usable = {}
    for key, which in PROTOTYPES.items():
        try:
            with _prototype.applied(which):
                same = structure(data, list[model]) == expected
        except Exception as exc:  # library internals changed under the prototype
            print(f"prototype {which} dropped: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        if same:
            usable[key] = which
        else:
            print(f"prototype {which} dropped: it structures differently", file=sys.stderr)
    return usable


def measure(quick: bool, rounds: int) -> list[dict[str, Any]]:
    budget = 0.01 if quick else 0.15
    out = []
    for name, build, model, key in CASES:
        body = build(quick)
        data = json.loads(body)[key]
        n = len(data)
        expected = structure(data, list[model])  # warms the converter's generated hooks
        prototypes = usable_prototypes(data, model, expected)
        parse, struct, ratio = [], [], []
        proto: dict[str, list[float]] = {k: [] for k in prototypes}
        for _ in range(rounds):
            p = best_per_call(lambda body=body: json.loads(body), budget)
            s = best_per_call(lambda data=data, model=model: structure(data, list[model]),
                              budget)
            for label, which in prototypes.items():
                with _prototype.applied(which):
                    proto[label].append(best_per_call(
                        lambda data=data, model=model: structure(data, list[model]),
                        budget) / p)
            parse.append(p)
            struct.append(s)
            ratio.append(s / p)
        out.append({"name": name, "n": n, "bytes": len(body), "parse": c.median(parse),
                    "structure": c.median(struct), "ratio": c.median(ratio),
                    "ratios": ratio,
                    **{k: c.median(v) if v else float("nan") for k, v in proto.items()}})
    return out


def main(argv: list[str] | None = None) -> int:
    p = c.parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 5)
    env = c.environment()
    pinned = not args.no_pin and c.can_pin()
    if pinned:
        c.pin(0, c.CLIENT_CPU)
    try:
        results = measure(args.quick, rounds)
    finally:
        c.unpin_self()
    rows = []
    for r in results:
        n = r["n"]
        rows.append([
            r["name"], f"{n} / {r['bytes'] / 1024:.0f} KiB",
            f"{r['parse'] * 1e3:.3f}", f"{r['structure'] * 1e3:.3f}", f"{r['ratio']:.2f}x",
            f"{min(r['ratios']):.2f}..{max(r['ratios']):.2f}",
            c.fmt(n / r["parse"]), c.fmt(n / r["structure"]),
            c.fmt(n / (r["parse"] + r["structure"])),
            f"{c.verdict(r['ratio'] <= TARGET)} (<= {TARGET}x)",
            f"{r.get('cattrs', float('nan')):.2f}x",
        ])
    header = ["model (page)", "records / body", "json.loads ms", "structure ms",
              "structure / parse", "(min..max)", "parse rec/s", "structure rec/s",
              "both rec/s", "target", "cattrs fast converter (before fix 7)"]
    text, md = c.table(header, rows)
    title = f"Structuring cost: structure vs json.loads per page, median of {rounds} rounds"
    markdown = "\n".join([
        f"## 4. {title}", "", c.env_line(env), "",
        "In-process, no I/O; each figure is the fastest of 3 timeit batches, median over the "
        "rounds; `structure` is `arena_async._convert.structure(results, list[Model])` (what "
        "the client does with each page: the generated per-model functions, with cattrs' "
        "detailed converter as the fallback that decides and names the wire path), "
        "`json.loads` parses the whole page body. The last column is structure / parse "
        "through cattrs' fast converter instead (the library before fix 7; "
        "`benchmarks/_codegen.py`, measurement only; its result is checked equal to the "
        "library's on every run). "
        f"{f'Pinned to CPU {c.CLIENT_CPU}.' if pinned else 'Not pinned.'}", "", md,
    ])
    c.report(args, "structuring", title, text, markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
