"""Each benchmark runs at tiny sizes, so none can rot (figures are reported by `make bench`, never asserted)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

import bench.common
from bench.run_all import BENCHMARKS


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_runs_and_writes_its_results(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bench.common, "RESULTS", tmp_path)  # keep `make bench`'s real figures untouched
    result = importlib.import_module(f"bench.{name}").main(quick=True)
    assert result["rows"], name
    written = json.loads((tmp_path / f"{result['benchmark']}.json").read_text())
    assert written["rows"] == json.loads(json.dumps(result["rows"]))
    assert written["machine"]["cores"]
    if name == "memory_day":  # the simulated day ran: every simulated hour sampled, no request failed
        assert [len(hours) for hours in result["rss_per_hour_mib"].values()] == [3]
        assert [r["errors"] for r in result["rows"]] == [0]


def test_the_readme_table_is_generated_from_the_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import readme_table

    monkeypatch.setattr(bench.common, "RESULTS", tmp_path)
    bench.common.report("scheduler", [{"db": "sqlite", "lateness_p99_ms": 12.5}], goals={"lateness_p99_ms": ("<=", 250)})
    bench.common.report("db_statements", [{"view": "status", "statements": 18}], goals={"statements": ("<=", 6)})
    bench.common.report(
        "charts", [{"chart": "timeline", "items": 10, "p50_ms": 68.13, "max_ms": 291.6}],
        goals={"max_ms": ("<", 500)}, keys=["chart", "items"],
    )  # fmt: skip
    section = readme_table.render(readme_table.load(tmp_path))
    assert "| lateness_p99_ms (sqlite) | 12.500 | <= 250 | met |" in section
    assert "| max_ms (timeline, 10) | 291.6 | < 500 | met |" in section  # named by its keys, not by its p50
    assert "keys:" not in section
    assert "| statements (status) | 18 | <= 6 | **missed** |" in section
    assert "cores" in section
    readme = tmp_path / "README.md"
    readme.write_text("# X\n")
    readme_table.rewrite(readme, section)
    readme_table.rewrite(readme, section)  # idempotent: the block is replaced, not appended again
    assert readme.read_text().count(readme_table.START) == 1
