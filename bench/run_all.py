"""`make bench`: every benchmark, one after the other; figures printed and saved in bench/results/."""

from __future__ import annotations

import argparse
import importlib

from bench import readme_table

BENCHMARKS = [
    "ack_latency", "memory", "memory_day", "db_statements", "instructions", "github_sync", "scheduler", "outbox",
    "workers", "github_installations", "workspaces", "charts",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="tiny sizes and durations (the smoke test uses this)")
    ap.add_argument("names", nargs="*", default=BENCHMARKS)
    a = ap.parse_args()
    results = []
    for name in a.names:
        module = importlib.import_module(f"bench.{name}")
        results.append(module.main(quick=a.quick))
    print("\nEvery figure with a goal:")
    for result in results:
        for line in readme_table.goal_lines(result):
            print("  " + line.strip("|").replace(" | ", "   "))


if __name__ == "__main__":
    main()
