"""Slack down while people work: every announcement, invite, notice and DM their commands cause is delivered once.

The commands run as in the server (the outbox is not inline: a command only writes its rows, the sender delivers);
the fake Slack answers HTTP 500 to every posting method for 60 s of fake clock, then recovers."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlmodel import col, select

from bot.clock import FakeClock
from bot.commands import Context, dispatch
from bot.db.models import Meeting, OutboxMessage
from bot.db.session import Database
from bot.services import Actor, Services
from bot.slack_client import SlackMessenger, make_client
from tests.fakes.slack import FakeSlack

pytestmark = pytest.mark.resilience
TEAM, CHANNEL = "T0ANNOUNCE", "C0ANNOUNCE"
LEAD, BO, RAJ = "U0LEAD0001", "U0BIZZ0001", "U0MLEN0001"
POSTING = (
    "chat.postMessage",
    "chat.update",
    "conversations.open",
    "files.getUploadURLExternal",
    "files.completeUploadExternal",
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = FakeSlack(team_id=TEAM)
    await slack.start()
    for uid in (LEAD, BO, RAJ):
        slack.add_user(uid, uid.lower())
    slack.add_channel(CHANNEL, "proj", members=[LEAD, BO, RAJ, slack.bot_user_id])
    yield slack
    await slack.stop()


async def test_slack_down_around_announcements_each_is_delivered_once_after_recovery(
    db: Database, fake: FakeSlack
) -> None:
    clock = FakeClock()
    messenger = SlackMessenger(make_client("xoxb-test", fake.api_url, rate_limit_retries=0))
    services = Services.build(db, clock, messenger)
    outbox = services.outbox
    assert outbox is not None
    outbox.inline, outbox.rng = False, random.Random(10)  # as in the server: commands write, the sender delivers

    async def run(text: str, user: str = LEAD) -> str:
        reply = await dispatch(Context(services, Actor(TEAM, user), CHANNEL), text)
        assert reply.message is not None
        return reply.message.text

    for method in POSTING:
        fake.add_fault(method, status=500, count=100_000)
    outage_end = clock.now() + timedelta(seconds=60)
    at = (clock.now() + timedelta(days=7)).strftime("%Y-%m-%dT15:00Z")
    later = (clock.now() + timedelta(days=8)).strftime("%Y-%m-%dT15:00Z")
    assert "Created" in await run("init genres")
    await run(f"role <@{BO}> business-owner")
    await run("join genres", user=RAJ)  # the lead gets a DM with Approve/Decline
    assert "Scheduled" in await run(f"meeting schedule kind=brief-review at={at} attendees=<@{BO}>")
    assert "Moved" in await run(f"meeting move 1 at={later}")
    await run("meeting cancel 1")
    assert "told" in await run('advance override="agreed on a call"')

    while clock.now() < outage_end:  # the sender keeps trying on its backoff; Slack answers 500
        await outbox.drain()
        due = await outbox.next_due()
        assert due is not None
        clock.set(min(max(due, clock.now() + timedelta(milliseconds=1)), outage_end))
    failed_calls = len(fake.calls)
    assert fake.messages() == [] and fake.files() == []

    fake._faults.clear()  # Slack is back
    recovered = clock.now()
    for _ in range(1000):
        await outbox.drain()
        due = await outbox.next_due()
        if due is None:
            break
        clock.set(max(due, clock.now()))
    lag = (clock.now() - recovered).total_seconds()

    async with db.session() as s:
        rows = list((await s.execute(select(OutboxMessage).order_by(col(OutboxMessage.id)))).scalars())
        meeting = await s.get(Meeting, 1)
    assert meeting is not None
    statuses = Counter(r.status for r in rows)
    assert statuses == Counter({"sent": len(rows)}), [(r.dedupe_key, r.status, r.last_error) for r in rows]

    channel = [m for m in fake.messages(CHANNEL) if not m.get("upload")]
    announcement = next(m for m in channel if m["ts"] == meeting.channel_ts)  # stored by the sender once accepted
    assert "cancelled" in str(announcement.get("text"))  # updated in place by the move, then by the cancel
    others = Counter(str(m.get("text")) for m in channel if m is not announcement)
    assert len(channel) == 5 and all(count == 1 for count in others.values()), others  # nothing doubled
    for needle in ("Project genres started", "moved", "cancelled", "Discovery →"):  # nothing lost
        assert sum(needle in t for t in others) == 1, (needle, others)
    invites = fake.files()
    assert sorted(f["title"] for f in invites) == [
        "Cancellation: Brief review #1", "Invite: Brief review #1", "Updated invite: Brief review #1"
    ]
    assert all(f["thread_ts"] == announcement["ts"] for f in invites)  # in its thread, though posted after it
    assert b"METHOD:CANCEL" in next(f for f in invites if f["title"].startswith("Cancellation"))["content"]
    dms = [m for m in fake.messages() if str(m["channel"]).startswith("D")]
    assert sum("join" in str(m.get("text")).lower() for m in dms) == 1
    print(
        f"\nslack outbox: Web API down (HTTP 500) for 60 s from before 7 commands (init, role, join, schedule, "
        f"move, cancel, advance): {failed_calls} failed calls, then {len(rows)} messages (announcements, "
        f"move/cancel notices, {len(invites)} .ics invites, announcement updates, a join DM) each delivered once, "
        f"the last {lag:.0f} s after recovery (fake clock: the sender sees Slack back at its next due retry); "
        f"0 lost, 0 duplicates"
    )
