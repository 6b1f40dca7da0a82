"""`phasegate serve --workers N`: N server processes on one port (SO_REUSEPORT), kept running by a supervisor.

The kernel spreads connections over the processes; they share the database, and one of them — the holder of the
PostgreSQL leader lock (bot/leader.py) — runs the scheduler and the sync worker. A worker that dies is started
again; SIGTERM or SIGINT is passed on to every worker, each of which shuts down gracefully.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

log = logging.getLogger(__name__)

RESTART_PAUSE = 1.0  # seconds before a worker that died is started again
STOP_GRACE = 30.0  # seconds a worker gets to finish its requests before it is killed


def worker_command(mode: str) -> list[str]:
    """One worker: the same `serve`, without migrating again, listening with SO_REUSEPORT."""
    return [sys.executable, "-m", "bot.cli", "serve", "--mode", mode, "--no-migrate", "--reuse-port"]


def supervise(workers: int, command: Sequence[str]) -> int:
    """Run `workers` copies of `command` until SIGTERM/SIGINT; returns the exit status."""
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    procs = [subprocess.Popen(list(command)) for _ in range(workers)]
    log.info("Phasegate supervisor: %d workers (pids %s)", workers, ", ".join(str(p.pid) for p in procs))
    try:
        while not stopping:
            time.sleep(0.2)
            for i, proc in enumerate(procs):
                if proc.poll() is not None and not stopping:
                    log.warning("worker pid %s exited with %s: starting another", proc.pid, proc.returncode)
                    time.sleep(RESTART_PAUSE)
                    procs[i] = subprocess.Popen(list(command))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for proc in procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
