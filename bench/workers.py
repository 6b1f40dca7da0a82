"""Scale out on one machine: sustained commands/s (closed loop, answers included) with 1 and 2 worker processes
on one port (SO_REUSEPORT), sharing one PostgreSQL database with one leader — what `phasegate serve --workers N`
runs. Without TEST_POSTGRES_URL only the single worker is measured, on SQLite.

Where the CPU went while measuring, in ms per command: the worker processes (`worker_cpu_ms`), this load
generator (`client_cpu_ms`) and everything else on the machine (`other_cpu_ms`: PostgreSQL, mostly), with
how busy the machine's cores were (`machine_busy_pct`). A second worker can only add throughput while cores
are idle; `1000 / worker_cpu_ms` is what one core of workers answers per second."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
import time
from typing import Any

from bench.ack_latency import free_port, load, start
from bench.common import cpu_s, fresh_pg_schema, machine_cpu_s, report


def measure(workers: int, url: str, *, seconds: float, concurrency: int) -> dict[str, Any]:
    env = {**os.environ, "BENCH_DATABASE_URL": url}
    port = free_port()
    procs: list[subprocess.Popen[str]] = []
    try:
        procs.append(start("phasegate", port=port, extra=("--reuse-port",), env=env)[0])
        for _ in range(workers - 1):
            procs.append(start("phasegate", port=port, extra=("--reuse-port", "--no-seed"), env=env)[0])
        time.sleep(0.5)
        result = asyncio.run(_measured(port, [p.pid for p in procs], seconds=seconds, concurrency=concurrency))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)
    return {"workers": workers, **result}


async def _measured(port: int, pids: list[int], *, seconds: float, concurrency: int) -> dict[str, Any]:
    """The closed-loop load, with the CPU used during its measured window (after its warm-up) split by who used it."""
    warmup = 1.0
    running = asyncio.create_task(load(port, concurrency=concurrency, seconds=seconds, answers=True, warmup=warmup))
    await asyncio.sleep(warmup)
    workers0, client0, (busy0, total0) = sum(map(cpu_s, pids)), time.process_time(), machine_cpu_s()
    await asyncio.sleep(seconds)
    workers1, client1, (busy1, total1) = sum(map(cpu_s, pids)), time.process_time(), machine_cpu_s()
    result = await running
    per_command = 1000 / max(result["commands"], 1)
    worker_ms, client_ms = (workers1 - workers0) * per_command, (client1 - client0) * per_command
    return {
        **result,
        "worker_cpu_ms": round(worker_ms, 2),
        "client_cpu_ms": round(client_ms, 2),
        "other_cpu_ms": round((busy1 - busy0) * per_command - worker_ms - client_ms, 2),
        "machine_busy_pct": round(100 * (busy1 - busy0) / max(total1 - total0, 1e-9), 1),
    }


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
