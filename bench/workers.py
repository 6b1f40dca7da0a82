"""Scale out on one machine: sustained commands/s (closed loop, answers included) with 1 and 2 worker processes
on one port (SO_REUSEPORT), sharing one PostgreSQL database with one leader — what `phasegate serve --workers N`
runs. Without TEST_POSTGRES_URL only the single worker is measured, on SQLite."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
import time
from typing import Any

from bench.ack_latency import free_port, load, start
from bench.common import fresh_pg_schema, report


def measure(workers: int, url: str, *, seconds: float, concurrency: int) -> dict[str, Any]:
    env = {**os.environ, "BENCH_DATABASE_URL": url}
    port = free_port()
    procs: list[subprocess.Popen[str]] = []
    try:
        procs.append(start("phasegate", port=port, extra=("--reuse-port",), env=env)[0])
        for _ in range(workers - 1):
            procs.append(start("phasegate", port=port, extra=("--reuse-port", "--no-seed"), env=env)[0])
        time.sleep(0.5)
        result = asyncio.run(load(port, concurrency=concurrency, seconds=seconds, answers=True))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)
    return {"workers": workers, **result}


def main(*, quick: bool = False) -> dict[str, Any]:
    seconds, concurrency = (0.5, 5) if quick else (15.0, 50)
    rows = []
    pg = os.environ.get("TEST_POSTGRES_URL")
    if pg:
        for n in (1,) if quick else (1, 2):
            url = fresh_pg_schema(pg, f"phasegate_bench_workers{n}")
            rows.append({"db": "postgresql", **measure(n, url, seconds=seconds, concurrency=concurrency)})
    else:
        url = f"sqlite:///{tempfile.mkdtemp()}/workers.db"
        rows.append({"db": "sqlite", **measure(1, url, seconds=seconds, concurrency=concurrency)})
    return report("workers", rows, {"concurrency": concurrency, "seconds_each": seconds})


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    main(quick=ap.parse_args().quick)
