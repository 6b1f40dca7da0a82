"""The Slack outbox against the fake Slack Web API with faults: outages, 20 % failures, refusals, stale messages."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlmodel import select

from bot.clock import FakeClock
from bot.db.models import AuditEntry, OutboxMessage, Workspace
from bot.db.session import Database
from bot.outbox import Outbox
from bot.rendering import Message
from bot.slack_client import SlackMessenger, make_client
from tests.fakes.slack import FakeSlack

pytestmark = pytest.mark.resilience
TEAM, CHANNEL, LEAD = "T0OUTBOX01", "C0OUTBOX01", "U0LEAD0001"
PEOPLE = [f"U0PERS{n:04d}" for n in range(10)]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = FakeSlack(team_id=TEAM)
    await slack.start()
    for uid in (LEAD, *PEOPLE):
        slack.add_user(uid, uid.lower())
    slack.add_channel(CHANNEL, "proj", members=[LEAD, *PEOPLE, slack.bot_user_id])
    yield slack
    await slack.stop()


async def _outbox(db: Database, clock: FakeClock, fake: FakeSlack) -> Outbox:
    async with db.session() as s:
        s.add(Workspace(team_id=TEAM, created_at=clock.now()))
    messenger = SlackMessenger(make_client("xoxb-test", fake.api_url, rate_limit_retries=0, connection_retries=0))
    outbox = Outbox(db, clock, messenger)
    outbox.rng = random.Random(7)
    return outbox


async def _enqueue(outbox: Outbox, n: int) -> list[str]:
    """n reminders and verdicts (half channel posts, half DMs), each with its own text."""
    texts = []
    async with outbox.db.session() as s:
        for i in range(n):
            text = f"message {i:04d}"
            texts.append(text)
            dm = i % 2 == 1
            await outbox.enqueue(
                s, team_id=TEAM, kind="dm" if dm else "post", target=PEOPLE[i % 10] if dm else CHANNEL,
                message=Message(text=text), key=f"m:{i}", notify_user_id=LEAD,
            )
    return texts


def _delivered(fake: FakeSlack) -> Counter[str]:
    return Counter(str(m.get("text")) for m in fake.messages() if str(m.get("text", "")).startswith("message "))


async def _run_until_done(outbox: Outbox, clock: FakeClock, *, step: float = 1.0, limit: int = 5000) -> float:
    """Drain, moving the fake clock to the next due retry, until nothing is pending; returns seconds elapsed."""
    start = clock.now()
    for _ in range(limit):
        await outbox.drain()
        due = await outbox.next_due()
        if due is None:
            break
        clock.set(max(due, clock.now() + timedelta(seconds=0)))
    return (clock.now() - start).total_seconds()


async def test_slack_down_for_60_s_every_message_is_delivered_once_after_recovery(
    db: Database, fake: FakeSlack
) -> None:
    clock = FakeClock()
    outbox = await _outbox(db, clock, fake)
    for method in ("chat.postMessage", "conversations.open"):
        fake.add_fault(method, status=500, count=100_000)
    texts = await _enqueue(outbox, 100)
    outage_end = clock.now() + timedelta(seconds=60)
    while clock.now() < outage_end:  # the sender keeps trying during the outage, on its backoff
        await outbox.drain()
        due = await outbox.next_due()
        assert due is not None
        clock.set(min(max(due, clock.now()), outage_end))
    failed_calls = len(fake.calls)
    assert _delivered(fake) == Counter()
    fake._faults.clear()  # Slack is back
    recovered = clock.now()
    await _run_until_done(outbox, clock)
    delivered = _delivered(fake)
    async with db.session() as s:
        statuses = Counter(r.status for r in (await s.execute(select(OutboxMessage))).scalars())
    assert delivered == Counter({t: 1 for t in texts})
    assert statuses == Counter({"sent": 100})
    lag = (clock.now() - recovered).total_seconds()
    print(
        f"\nslack outbox: Web API down (HTTP 500) 60 s while 100 reminders/verdicts fell due: {failed_calls} failed "
        f"calls during the outage, {sum(delivered.values())}/100 delivered after recovery (all within {lag:.0f} s "
        f"of it, fake clock), 0 duplicates"
    )


async def test_20_percent_failing_calls_across_1000_messages_lose_nothing_and_double_nothing(
    db: Database, fake: FakeSlack
) -> None:
    clock = FakeClock()
    outbox = await _outbox(db, clock, fake)
    rng = random.Random(20)
    injected: Counter[str] = Counter()
    real_record = fake._record

    def faulty(request, method, params):  # type: ignore[no-untyped-def]
        if method in ("chat.postMessage", "conversations.open") and rng.random() < 0.2:
            kind = rng.choice(["500", "429", "reset"])
            injected[kind] += 1
            if kind == "500":
                fake.add_fault(method, status=500)
            elif kind == "429":
                fake.add_fault(method, status=429, retry_after=2)
            else:
                fake.add_fault(method, drop=True, before=True)
        return real_record(request, method, params)

    fake._record = faulty  # type: ignore[method-assign]
    texts = await _enqueue(outbox, 1000)
    elapsed = await _run_until_done(outbox, clock)
    delivered = _delivered(fake)
    lost = sum(1 for t in texts if delivered[t] == 0)
    duplicates = sum(c - 1 for c in delivered.values() if c > 1)
    assert lost == 0 and duplicates == 0 and len(delivered) == 1000
    print(
        f"\nslack outbox: 1,000 messages, {sum(injected.values())} injected faults "
        f"(500: {injected['500']}, 429 Retry-After 2 s: {injected['429']}, connection reset: {injected['reset']}) "
        f"-> {len(delivered)} delivered, {lost} lost, {duplicates} duplicates ({elapsed:.0f} s of fake clock)"
    )


async def test_a_reset_after_slack_accepted_is_the_documented_duplicate_window(db: Database, fake: FakeSlack) -> None:
    clock = FakeClock()
    outbox = await _outbox(db, clock, fake)
    texts = await _enqueue(outbox, 10)
    fake.add_fault("chat.postMessage", drop=True)  # Slack posts it, the answer never arrives
    await _run_until_done(outbox, clock)
    delivered = _delivered(fake)
    duplicates = sum(c - 1 for c in delivered.values() if c > 1)
    assert all(delivered[t] >= 1 for t in texts)
    assert duplicates == 1
    print(f"\nslack outbox: 1 connection reset after Slack accepted a post -> {duplicates} duplicate (documented)")


async def test_channel_not_found_is_recorded_shown_and_told_to_the_lead_once(db: Database, fake: FakeSlack) -> None:
    clock = FakeClock()
    outbox = await _outbox(db, clock, fake)
    async with db.session() as s:
        for i in range(5):
            await outbox.enqueue(
                s, team_id=TEAM, kind="post", target="C0GONE0001", message=Message(text=f"reminder {i}"),
                key=f"gone:{i}", notify_user_id=LEAD,
            )
    await _run_until_done(outbox, clock)
    lead_dm = fake.dm_channel_of(LEAD)
    dms = [m for m in fake.messages(lead_dm)] if lead_dm else []
    async with db.session() as s:
        problems = await outbox.problems(s, team_id=TEAM)
        failed = (await s.execute(select(OutboxMessage).where(OutboxMessage.status == "failed"))).scalars().all()
    assert len(failed) == 5 and {r.last_error for r in failed} == {"channel_not_found"}
    assert len(dms) == 1 and "channel_not_found" in str(dms[0]["text"])
    assert len(problems) == 1
    print(f"\nslack outbox: 5 posts to a deleted channel -> 5 recorded as failed, {len(dms)} DM to the lead, "
          f"status line: {problems[0].line()}")


async def test_a_48h_reminder_for_a_meeting_that_started_is_dropped(db: Database, fake: FakeSlack) -> None:
    clock = FakeClock()
    outbox = await _outbox(db, clock, fake)
    starts = clock.now() + timedelta(hours=48)
    async with db.session() as s:
        await outbox.enqueue(
            s, team_id=TEAM, kind="dm", target=PEOPLE[0], message=Message(text="message 48h"),
            key="meeting:1:dm48", not_after=starts, notify_user_id=LEAD,
        )
    fake.add_fault("conversations.open", status=500, count=100_000)
    clock.advance(timedelta(hours=49))  # Slack was down until after the meeting started
    fake._faults.clear()
    await _run_until_done(outbox, clock)
    async with db.session() as s:
        [row] = (await s.execute(select(OutboxMessage))).scalars().all()
        [entry] = (await s.execute(select(AuditEntry).where(AuditEntry.action == "outbox.dropped"))).scalars()
    assert row.status == "dropped" and _delivered(fake) == Counter()
    print(f"\nslack outbox: a 48 h reminder still queued when its meeting started -> dropped, audit: "
          f"{entry.detail['reason']}")
