"""Scheduler: 10,000 reminders across 1,000 meetings — restore time at start-up, firing lateness on a real clock."""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import fresh_pg_schema, percentile, report
from bot.clock import SystemClock
from bot.db.migrate import upgrade
from bot.scheduler import ReminderScheduler
from bot.timeplan import PlannedJob


class _ShiftedClock:
    """The wall clock moved by a fixed offset: runs at real speed, so lateness is real, but the planned window
    can start right after the restart however long planning took."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


class _Recorder:
    """Stands in for the ritual service: notes when each reminder fired against when it was due."""

    def __init__(self, due: dict[tuple[int, str], datetime], clock: _ShiftedClock) -> None:
        self.due = due
        self.clock = clock
        self.lateness: list[float] = []
        self.done = asyncio.Event()

    async def run_step(self, *, meeting_id: int, step: str, sequence: int) -> None:
        self.lateness.append((self.clock.now() - self.due[(meeting_id, step)]).total_seconds() * 1000)
        if len(self.lateness) == len(self.due):
            self.done.set()


class _Services:
    def __init__(self, recorder: _Recorder) -> None:
        self.rituals = recorder


async def measure(url: str, meetings: int, steps: int, window: float, lead: float = 2.0) -> dict[str, Any]:
    start_at = datetime.now(UTC) + timedelta(hours=1)  # moved to `lead` s after the restart by the shifted clock
    due = {
        (m, f"step{s}"): start_at + timedelta(seconds=window * ((m * steps + s) / (meetings * steps)))
        for m in range(1, meetings + 1)
        for s in range(steps)
    }
    planner = ReminderScheduler(database_url=url, clock=SystemClock(), realtime=False)
    planner.start()
    t0 = time.perf_counter()
    for m in range(1, meetings + 1):
        jobs = [PlannedJob(f"step{s}", due[(m, f"step{s}")], timedelta(hours=1)) for s in range(steps)]
        await planner.replace_meeting_jobs(m, 0, jobs)
    planning_s = time.perf_counter() - t0
    planner.shutdown()

    # A restart: a new scheduler on the same database restores the planned jobs.
    clock = _ShiftedClock(start_at - datetime.now(UTC) - timedelta(seconds=lead))
    recorder = _Recorder(due, clock)
    t0 = time.perf_counter()
    restored = ReminderScheduler(database_url=url, clock=clock, realtime=False)
    restored.services = _Services(recorder)  # type: ignore[assignment]  # what the jobs run with
    restored.start()
    jobs_found = len(await asyncio.to_thread(restored.planned))
    first = await asyncio.to_thread(restored.next_run_time)
    restore_s = time.perf_counter() - t0
    assert first is not None
    restored.resume()
    try:
        await asyncio.wait_for(recorder.done.wait(), timeout=window + 600)
    finally:
        restored.shutdown()
    late = recorder.lateness
    return {
        "meetings": meetings,
        "reminders": len(due),
        "planning_s": round(planning_s, 2),
        "restored_jobs": jobs_found,
        "restore_s": round(restore_s, 3),
        "fired": len(late),
        "window_s": window,
        "lateness_p50_ms": percentile(late, 0.5),
        "lateness_p99_ms": percentile(late, 0.99),
        "lateness_max_ms": max(late),
    }


GOALS = {"lateness_p99_ms": ("<=", 250.0), "restore_s": ("<", 1.0)}


def main(*, quick: bool = False) -> dict[str, Any]:
    meetings, steps, window, lead = (20, 5, 0.5, 0.3) if quick else (1000, 10, 20.0, 2.0)
    backends = {"sqlite": f"sqlite:///{tempfile.mkdtemp()}/sched.db"}
    if os.environ.get("TEST_POSTGRES_URL") and not quick:
        backends["postgresql"] = fresh_pg_schema(os.environ["TEST_POSTGRES_URL"], "phasegate_bench_scheduler")
    rows = []
    for backend, url in backends.items():
        upgrade(url)
        rows.append({"db": backend, **asyncio.run(measure(url, meetings, steps, window, lead))})
    return report("scheduler", rows, goals=GOALS, keys=["db", "reminders"])


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    main(quick=ap.parse_args().quick)
