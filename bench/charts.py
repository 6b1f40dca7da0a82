"""Charts: time to draw the agenda's proposals chart and the digest's phase timeline (PNG), and the first chart's
cost including loading matplotlib (paid once per process, only when a chart is drawn)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import date, timedelta
from typing import Any

from bench.common import percentile, report
from bot.charts import PhaseSpan, ProposalPoint, ProposalsInput, TimelineInput, proposals_chart, timeline_chart


def proposals(n: int) -> ProposalsInput:
    return ProposalsInput(
        "Model decision #1",
        [ProposalPoint(i, f"Proposal number {i} with a long title", (i % 5) + 1, 1.5 * i, (i % 3) + 1)
         for i in range(1, n + 1)],
    )


def timeline(n: int) -> TimelineInput:
    start = date(2026, 1, 5)
    spans = [
        PhaseSpan(f"Phase {i}", start + timedelta(days=10 * i), start + timedelta(days=10 * i + 9) if i < n - 1 else None,
                  start + timedelta(days=10 * i + 8))
        for i in range(n)
    ]
    return TimelineInput("genres", spans, start + timedelta(days=10 * n))


def first_chart_ms() -> float:
    """A fresh process: import bot.charts, draw one proposals chart (matplotlib loads here)."""
    code = (
        "import time; t=time.perf_counter(); from bench.charts import proposals; from bot.charts import proposals_chart; "
        "proposals_chart(proposals(6)); print((time.perf_counter()-t)*1000)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def measure(kind: str, sizes: list[int], repeat: int) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        times, size = [], 0
        for _ in range(repeat):
            t = time.perf_counter()
            chart = proposals_chart(proposals(n)) if kind == "proposals" else timeline_chart(timeline(n))
            times.append((time.perf_counter() - t) * 1000)
            size = len(chart.png)
        rows.append({"chart": kind, "items": n, "p50_ms": percentile(times, 0.5), "max_ms": max(times),
                     "png_kib": round(size / 1024, 1)})
    return rows


GOALS = {"max_ms": ("<", 500.0)}


def main(*, quick: bool = False) -> dict[str, Any]:
    repeat = 2 if quick else 10
    proposals_chart(proposals(1))  # warm: the import is measured separately below
    rows = measure("proposals", [1, 3, 8] if quick else [1, 3, 8, 20], repeat)
    rows += measure("timeline", [2, 5] if quick else [2, 5, 10], repeat)
    extra = {"first_chart_with_import_ms": round(first_chart_ms(), 1)}
    return report("charts", rows, extra=extra, goals=GOALS, keys=["chart", "items"])


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    main(quick=ap.parse_args().quick)
