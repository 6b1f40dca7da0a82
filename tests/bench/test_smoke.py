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
