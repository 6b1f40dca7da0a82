"""`make bench`: every benchmark, one after the other; figures printed and saved in bench/results/."""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS = ["ack_latency", "db_statements", "github_sync", "scheduler", "outbox", "github_installations"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="tiny sizes and durations (the smoke test uses this)")
    ap.add_argument("names", nargs="*", default=BENCHMARKS)
    a = ap.parse_args()
    for name in a.names:
        module = importlib.import_module(f"bench.{name}")
        module.main(quick=a.quick)


if __name__ == "__main__":
    main()
