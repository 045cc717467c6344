"""The benchmark scripts still import and run (tiny sizes; figures are not checked here)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench() -> object:
    sys.path.insert(0, str(BENCH))
    try:
        yield
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.parametrize("name", ["_common", "_prototype", "_codegen", "load_server", "overhead",
                                  "latency", "streaming", "structuring", "quota", "run_all",
                                  "breakdown", "sharing", "instructions", "frugal"])
def test_imports(bench: object, name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__


def test_structuring_tiny(bench: object) -> None:
    structuring = importlib.import_module("structuring")
    results = structuring.measure(quick=True, rounds=1)  # also checks the prototypes agree
    assert {r["name"] for r in results} == {name for name, *_ in structuring.CASES}
    for r in results:
        assert r["parse"] > 0
        assert r["structure"] > 0
        assert r["ratio"] > 0


def test_results_sections(bench: object, tmp_path: Path) -> None:
    common = importlib.import_module("_common")
    path = tmp_path / "RESULTS.md"
    common.reset_results(path)
    common.write_section("quota", "## quota\nTOKEN-ONE", path)
    common.write_section("quota", "## quota\nTOKEN-TWO", path)
    text = path.read_text()
    assert "TOKEN-TWO" in text
    assert "TOKEN-ONE" not in text
    assert text.index("bench:overhead") < text.index("bench:quota")
    _, md = common.table(["a", "b"], [[1, "x|y"]])
    assert md.splitlines()[2] == "| 1 | x\\|y |"


def test_instructions_reads_callgrinds_total(bench: object) -> None:
    instructions = importlib.import_module("instructions")
    out = "version: 1\ncmd: python x.py\nevents: Ir\nfn=(1) main\n3 12\nsummary: 987654321\n"
    assert instructions.instructions(out) == 987654321
    assert instructions.instructions(out.replace("summary", "totals")) == 987654321
    with pytest.raises(ValueError, match="summary"):
        instructions.instructions("events: Ir\n")


def test_load_server_pages(bench: object) -> None:
    load_server = importlib.import_module("load_server")
    page = json.loads(load_server.records_page(1000, 900, 400))
    assert page["count"] == 100
    assert len(page["results"]) == 100
    assert page["results"][0]["guid"] == "TR000000000000000900"


def test_overhead_quick(bench: object, tmp_path: Path) -> None:
    overhead = importlib.import_module("overhead")
    results = tmp_path / "RESULTS.md"
    assert overhead.main(["--quick", "--requests", "40", "--no-pin", "--write",
                          "--results", str(results)]) == 0
    assert "Per-request overhead" in results.read_text()


def test_latency_quick(bench: object, tmp_path: Path) -> None:
    latency = importlib.import_module("latency")
    assert latency.main(["--quick", "--requests", "100", "--no-pin", "--no-write"]) == 0


def test_streaming_quick(bench: object) -> None:
    streaming = importlib.import_module("streaming")
    assert streaming.main(["--quick", "--sizes", "500", "1200", "--no-pin", "--no-write"]) == 0


def test_quota_scenario_runs(bench: object) -> None:
    quota = importlib.import_module("quota")
    rows = quota.scenario_a(quick=True)
    assert rows[0][0] == "(a) raise: requests sent"
    assert all(isinstance(value, float | int) for _, value, *_ in rows)


def test_sharing_tiny(bench: object, tmp_path: Path) -> None:
    sharing = importlib.import_module("sharing")
    figures = sharing.throughput(40, 1, False, None)  # unshared and SQLite, no Redis
    assert set(figures) == {"unshared", "shared, SQLite"}
    assert figures["shared, SQLite"]["contacts"][0] > 0  # the ledger was used
    four = sharing.four_processes(f"sqlite:///{tmp_path / 'share.db'}", 10, 100, 0)
    assert four["ok"] + four["failed"] == 40


def test_frugal_jobs_tiny(bench: object) -> None:
    frugal = importlib.import_module("frugal")
    (row,) = frugal.etl_rerun(quick=True)
    assert row[1:3] == ["180", "90"]  # the re-run spends nothing with the cache


def test_frugal_three_jobs_tiny(bench: object) -> None:
    frugal = importlib.import_module("frugal")
    rows = frugal.three_jobs(quick=True)
    assert len(rows) == 4
    backend, etl, at_once, in_turn = rows
    assert backend[1] == "160"
    assert int(backend[2]) <= 80  # 20 items, 4 GETs each, fetched once across the workers
    assert etl[1:3] == ["90 (30)", "61 (1)"]
    assert at_once[1] == in_turn[1] == "80"
    assert at_once[2] == "1"  # one batch of 20 numbers, asked by one worker for all four
    assert in_turn[2] == "1"
