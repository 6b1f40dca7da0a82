"""The bot is down across three reminder times; after a restart each reminder is sent once, none twice."""

from __future__ import annotations

import pytest

from bot.clock import FakeClock
from bot.messaging import RecordingMessenger
from bot.scheduler import ReminderScheduler
from bot.services import Services
from tests.bot.rituals.helpers import LEAD, Member, new_team, utc

pytestmark = pytest.mark.resilience

# Proposals due Wednesday 11 March 14:00 UTC: the 24 h DMs fall on Tuesday 14:00 UTC, outside these three
# people's hours, so each moves to their last working hour before it: 05:00, 07:00 and 10:30 UTC.
PEOPLE: dict[str, Member] = {
    "USYD": {"tz": "Australia/Sydney"},
    "UTYO": {"tz": "Asia/Tokyo"},
    "UKOL": {"tz": "Asia/Kolkata"},
}


def reminders(messenger: RecordingMessenger) -> list[str]:
    return [d.target for d in messenger.deliveries if d.kind == "dm" and d.message and "your proposal" in d.message.text]


async def test_three_reminders_missed_while_down_are_each_sent_once(
    database_url: str, services: Services, clock: FakeClock
) -> None:
    messenger = services.messenger
    assert isinstance(messenger, RecordingMessenger)
    clock.set(utc(2026, 3, 6, 9))
    scheduler = ReminderScheduler(database_url=database_url, clock=clock)
    scheduler.start()
    scheduler.bind(services)
    pid = await new_team(services, people=PEOPLE)
    meeting = (
        await services.meetings.schedule(
            actor=LEAD, project_id=pid, kind="model-decision", starts_at=utc(2026, 3, 12, 14), attendees=list(PEOPLE)
        )
    ).meeting
    planned = dict(scheduler.planned())
    assert [planned[f"meeting:{meeting.id}:dm24:{u}"] for u in PEOPLE] == [
        utc(2026, 3, 10, 5), utc(2026, 3, 10, 7), utc(2026, 3, 10, 10, 30)
    ]
    await scheduler.advance(clock, utc(2026, 3, 10, 4, 30))  # Monday's 48 h reminders go out while the bot is up
    assert sorted(reminders(messenger)) == sorted(PEOPLE)
    scheduler.shutdown()  # …then it goes down for six hours
    scheduler.store.engine.dispose()
    before = len(reminders(messenger))

    clock.set(utc(2026, 3, 10, 10, 45))  # back up, after all three reminder times (the first 5 h 45 min ago)
    restarted = ReminderScheduler(database_url=database_url, clock=clock)
    restarted.start()
    restarted.bind(services)
    try:
        await restarted.run_due(clock.now())
        await restarted.run_due(clock.now())  # a second pass (or a second replica) sends nothing more
        sent = reminders(messenger)[before:]
        assert sorted(sent) == sorted(PEOPLE)
        print(f"\nbot down across 3 reminder times: {len(sent)} sent once each after the restart, 0 duplicates")
    finally:
        restarted.shutdown()
