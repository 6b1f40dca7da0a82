"""The scheduler under a burst: due jobs claimed in batches, run concurrently (bounded), each exactly once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from bot.clock import FakeClock
from bot.scheduler import ReminderScheduler
from bot.timeplan import PlannedJob

MEETINGS, STEPS, BATCH, CONCURRENCY = 12, 3, 10, 4


class _Rituals:
    """Stands in for the ritual service: notes each run and how many run at once."""

    def __init__(self) -> None:
        self.runs: list[tuple[int, str]] = []
        self.running = 0
        self.most = 0

    async def run_step(self, *, meeting_id: int, step: str, sequence: int) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        await asyncio.sleep(0)  # let the other lanes in: concurrency shows here
        await asyncio.sleep(0)
        self.runs.append((meeting_id, step))
        self.running -= 1


class _Services:
    def __init__(self, rituals: _Rituals) -> None:
        self.rituals = rituals


@pytest.fixture
def rituals() -> _Rituals:
    return _Rituals()


def _started(database_url: str, clock: FakeClock, rituals: _Rituals) -> ReminderScheduler:
    scheduler = ReminderScheduler(database_url=database_url, clock=clock, batch=BATCH, concurrency=CONCURRENCY)
    scheduler.services = _Services(rituals)  # type: ignore[assignment]  # what the jobs run with
    scheduler.start()
    return scheduler


async def test_a_burst_runs_each_job_once_in_batches_with_bounded_concurrency_and_meeting_order(
    database_url: str, clock: FakeClock, rituals: _Rituals
) -> None:
    scheduler = _started(database_url, clock, rituals)
    try:
        due = clock.now() + timedelta(minutes=5)
        for m in range(1, MEETINGS + 1):
            steps = [PlannedJob(f"s{s}", due + timedelta(seconds=s), timedelta(hours=1)) for s in range(STEPS)]
            await scheduler.replace_meeting_jobs(m, 0, steps)
        reads = 0

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            nonlocal reads
            reads += statement.lstrip().upper().startswith("SELECT")

        event.listen(scheduler.store.engine, "before_cursor_execute", count)
        clock.set(due + timedelta(minutes=1))
        assert await scheduler.run_due(clock.now()) == MEETINGS * STEPS
        event.remove(scheduler.store.engine, "before_cursor_execute", count)

        assert sorted(rituals.runs) == sorted((m, f"s{s}") for m in range(1, MEETINGS + 1) for s in range(STEPS))
        assert 1 < rituals.most <= CONCURRENCY
        for m in range(1, MEETINGS + 1):  # a meeting's own jobs ran in their time order
            assert [step for meeting, step in rituals.runs if meeting == m] == [f"s{s}" for s in range(STEPS)]
        assert reads == -(-MEETINGS * STEPS // BATCH)  # one read per batch, not one per job
        assert scheduler.planned() == []
        assert await scheduler.run_due(clock.now()) == 0  # nothing runs twice
    finally:
        scheduler.shutdown()
        scheduler.store.engine.dispose()


async def test_a_job_past_its_grace_is_dropped_unrun_while_the_rest_of_its_batch_runs(
    database_url: str, clock: FakeClock, rituals: _Rituals
) -> None:
    scheduler = _started(database_url, clock, rituals)
    try:
        due = clock.now() + timedelta(minutes=5)
        await scheduler.replace_meeting_jobs(1, 0, [PlannedJob("late", due, timedelta(minutes=1))])
        await scheduler.replace_meeting_jobs(2, 0, [PlannedJob("fine", due, timedelta(hours=1))])
        clock.set(due + timedelta(minutes=10))
        assert await scheduler.run_due(clock.now()) == 1
        assert rituals.runs == [(2, "fine")]
        assert scheduler.planned() == []
    finally:
        scheduler.shutdown()
        scheduler.store.engine.dispose()
