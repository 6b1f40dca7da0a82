"""Restarts and replicas: missed reminders run once on start, never twice; a cancelled meeting's never."""

from __future__ import annotations

import asyncio

import time_machine
from sqlalchemy import text

from bot.clock import FakeClock, SystemClock
from bot.db.session import Database
from bot.messaging import RecordingMessenger
from bot.scheduler import ReminderScheduler, run_job
from bot.services import Services
from bot.services.meetings import NullPlanner
from bot.timeplan import PlannedJob
from tests.bot.rituals.helpers import LEAD, Member, new_team, slack_person, utc

TEAM: dict[str, Member] = {"UANA": {"tz": "Europe/Berlin"}, "URAJ": {"slack": slack_person("URAJ", tz="Asia/Kolkata")}}


async def two_meetings(services: Services) -> tuple[int, int]:
    """A: Fri 14:00 UTC with Ana and Raj; B: Fri 16:00 UTC with Ana only."""
    pid = await new_team(services, people=TEAM)
    a = await services.meetings.schedule(
        actor=LEAD, project_id=pid, kind="model-decision", starts_at=utc(2026, 3, 6, 14), attendees=["UANA", "URAJ"]
    )
    b = await services.meetings.schedule(
        actor=LEAD, project_id=pid, kind="model-decision", starts_at=utc(2026, 3, 6, 16), attendees=["UANA"]
    )
    return a.meeting.id, b.meeting.id


def dms(messenger: RecordingMessenger) -> list[tuple[str, str]]:
    return [(d.target, d.message.text if d.message else "") for d in messenger.deliveries if d.kind == "dm"]


async def test_missed_reminders_run_once_after_a_restart_and_never_for_a_cancelled_meeting(
    database_url: str, services: Services, clock: FakeClock
) -> None:
    messenger = services.messenger
    assert isinstance(messenger, RecordingMessenger)
    first = ReminderScheduler(database_url=database_url, clock=clock)
    first.start()
    first.bind(services)
    a, b = await two_meetings(services)
    planned = dict(first.planned())
    assert planned[f"meeting:{a}:dm48:URAJ"] == utc(2026, 3, 3, 10, 30)
    assert planned[f"meeting:{a}:dm48:UANA"] == utc(2026, 3, 3, 14)
    assert planned[f"meeting:{b}:dm48:UANA"] == utc(2026, 3, 3, 15)
    first.shutdown()  # the bot goes down…
    first.store.engine.dispose()
    # …meanwhile another replica cancels B (its jobs stay in the store: no scheduler of ours removes them)…
    services.meetings.planner = NullPlanner()
    await services.meetings.cancel(actor=LEAD, meeting_id=b)
    # …and the clock passes two of A's reminders and B's.
    clock.set(utc(2026, 3, 3, 15, 30))
    assert dms(messenger) == []

    second = ReminderScheduler(database_url=database_url, clock=clock)
    second.start()
    second.bind(services)
    try:
        assert await second.run_due(clock.now()) == 3  # two reminders of A, and B's job (which sends nothing)
        assert sorted(t for t, _ in dms(messenger)) == ["UANA", "URAJ"]
        assert await second.run_due(clock.now()) == 0
        # A second replica running the same job anyway sends nothing: the send is claimed in the database.
        await run_job(a, "dm48:UANA", 0, services=services)
        await run_job(a, "dm48:URAJ", 0, services=services)
        assert sorted(t for t, _ in dms(messenger)) == ["UANA", "URAJ"]
        assert f"meeting:{b}:dm48:UANA" not in dict(second.planned())
        assert f"meeting:{a}:dm24:URAJ" in dict(second.planned())
    finally:
        second.shutdown()
        second.store.engine.dispose()


async def test_a_reminder_missed_by_more_than_its_grace_is_dropped_not_sent_late(
    services: Services, scheduler: ReminderScheduler, clock: FakeClock, messenger: RecordingMessenger
) -> None:
    a, _ = await two_meetings(services)
    clock.set(utc(2026, 3, 3, 18))  # Raj's 10:30 reminder is 7.5 h late (grace 6 h); Ana's 14:00 one is 4 h late
    await scheduler.run_due(clock.now())
    assert [t for t, _ in dms(messenger)] == ["UANA", "UANA"]  # meeting A's and meeting B's
    assert f"meeting:{a}:dm48:URAJ" not in dict(scheduler.planned())


async def test_with_the_system_clock_start_runs_what_was_missed_while_down_and_later_jobs_on_time(
    db: Database, database_url: str
) -> None:
    """The production path: the system clock drives the scheduler; no run_due call from outside."""
    with time_machine.travel(utc(2026, 3, 2, 9), tick=False) as traveller:
        services = Services.build(db, SystemClock())
        messenger = services.messenger
        assert isinstance(messenger, RecordingMessenger)
        first = ReminderScheduler(database_url=database_url, clock=services.clock)
        assert first.realtime
        first.bind(services)
        first.start()
        assert await asyncio.wait_for(first.wait_for_pass(), timeout=20) == 0
        a, b = await two_meetings(services)
        first.shutdown()
        first.store.engine.dispose()
        services.meetings.planner = NullPlanner()
        await services.meetings.cancel(actor=LEAD, meeting_id=b)
        traveller.move_to(utc(2026, 3, 3, 15, 30))

        # A replica comes back: it plans but runs nothing until it is elected leader.
        second = ReminderScheduler(database_url=database_url, clock=services.clock, realtime=False)
        second.bind(services)
        second.start()
        try:
            await asyncio.sleep(0)
            assert dms(messenger) == []
            second.resume()
            # The first pass as leader: A's two missed reminders (sent) and B's (nothing to send).
            assert await asyncio.wait_for(second.wait_for_pass(), timeout=20) == 3
            assert sorted(t for t, _ in dms(messenger)) == ["UANA", "URAJ"]
            assert f"meeting:{a}:dm24:URAJ" in dict(second.planned())
            # Time moves on to Raj's 24 h reminder: the driver runs it without being asked.
            traveller.move_to(utc(2026, 3, 4, 10, 30))
            second.wake()  # (the driver sleeps at most a minute; no need to wait for it here)
            assert await asyncio.wait_for(second.wait_for_pass(), timeout=20) == 1
            assert [t for t, _ in dms(messenger)][-1] == "URAJ" and len(dms(messenger)) == 3
        finally:
            second.shutdown()
            second.store.engine.dispose()


async def test_planning_jobs_does_not_block_the_loop_while_a_transaction_is_open(
    services: Services, scheduler: ReminderScheduler
) -> None:
    """SQLite has one writer: the job store waits for an open transaction without freezing the event loop."""
    await new_team(services, people=TEAM)
    async with services.db.session() as s:
        await s.execute(text("UPDATE projects SET min_proposals = 3"))  # holds the write lock…
        planning = asyncio.create_task(
            scheduler.replace_meeting_jobs(77, 0, [PlannedJob("start", utc(2026, 3, 6, 14), None)])
        )
        await asyncio.sleep(0)  # …while the planner waits in its thread, this coroutine still runs and commits
    await asyncio.wait_for(planning, timeout=20)
    assert scheduler.meeting_job_ids(77) == ["meeting:77:start"]
