"""The outbox sender: classification of Slack failures, backoff, retries, permanent refusals, stale messages."""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from slack_sdk.errors import SlackApiError
from sqlmodel import col, select

from bot.clock import FakeClock
from bot.db.models import AuditEntry, OutboxMessage, Workspace
from bot.db.session import Database
from bot.messaging import Delivery, RecordingMessenger
from bot.outbox import DeliveryError, Outbox, OutboxSender, backoff, classify
from bot.rendering import Message
from tests.conftest import finishes

TEAM, CHANNEL, LEAD = "TA000001", "C0CHAN0001", "U0LEAD0001"


class _Resp(dict[str, object]):
    def __init__(self, status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> None:
        super().__init__(body)
        self.status_code, self.headers = status, headers or {}


def _api_error(status: int, error: str | None = None, headers: dict[str, str] | None = None) -> SlackApiError:
    return SlackApiError("failed", _Resp(status, {"ok": False, "error": error} if error else {}, headers))


def test_backoff_doubles_with_jitter_caps_and_honours_retry_after() -> None:
    rng = random.Random(1)
    for attempt, base in ((1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0)):
        delays = [backoff(attempt, rng=rng) for _ in range(50)]
        assert all(0.75 * base <= d <= 1.25 * base for d in delays)
        assert len({round(d, 3) for d in delays}) > 10  # jittered, not in step
    assert all(backoff(30, rng=rng) <= 300 * 1.25 for _ in range(20))
    assert backoff(1, retry_after=17) == 17
    assert backoff(1, retry_after=100_000) == 900


@pytest.mark.parametrize(
    ("exc", "permanent", "code"),
    [
        (_api_error(500), False, "http_500"),
        (_api_error(503), False, "http_503"),
        (_api_error(429, "ratelimited", {"Retry-After": "7"}), False, "ratelimited"),
        (_api_error(200, "fatal_error"), False, "fatal_error"),
        (_api_error(200, "internal_error"), False, "internal_error"),
        (_api_error(200, "service_unavailable"), False, "service_unavailable"),
        (_api_error(200, "channel_not_found"), True, "channel_not_found"),
        (_api_error(200, "not_in_channel"), True, "not_in_channel"),
        (_api_error(200, "is_archived"), True, "is_archived"),
        (_api_error(200, "account_inactive"), True, "account_inactive"),
        (_api_error(200, "user_not_found"), True, "user_not_found"),
        (_api_error(200, "invalid_auth"), True, "invalid_auth"),
        (ConnectionResetError(), False, "ConnectionResetError"),
        (TimeoutError(), False, "TimeoutError"),
    ],
)
def test_classify(exc: BaseException, permanent: bool, code: str) -> None:
    err = classify(exc)
    assert (err.permanent, err.code) == (permanent, code)


def test_retry_after_is_read_from_a_429() -> None:
    assert classify(_api_error(429, "ratelimited", {"Retry-After": "7"})).retry_after == 7.0


@dataclass
class FlakyMessenger(RecordingMessenger):
    """Fails the next calls with the queued errors, then records as usual."""

    failures: list[DeliveryError] = field(default_factory=list)
    calls: int = 0

    def record(self, delivery: Delivery) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        super().record(delivery)


async def _setup(db: Database, clock: FakeClock) -> tuple[Outbox, FlakyMessenger]:
    async with db.session() as s:
        s.add(Workspace(team_id=TEAM, created_at=clock.now()))
    messenger = FlakyMessenger()
    return Outbox(db, clock, messenger), messenger


async def _post(outbox: Outbox, key: str, **extra: object) -> None:
    async with outbox.db.session() as s:
        await outbox.enqueue(
            s, team_id=TEAM, kind="post", target=CHANNEL, message=Message(text=key), key=key,
            notify_user_id=LEAD, **extra,  # type: ignore[arg-type]
        )


async def _rows(db: Database) -> list[OutboxMessage]:
    async with db.session() as s:
        return list((await s.execute(select(OutboxMessage).order_by(col(OutboxMessage.id)))).scalars())


async def test_a_transient_failure_is_retried_after_its_backoff_and_sent_once(db: Database, clock: FakeClock) -> None:
    outbox, messenger = await _setup(db, clock)
    messenger.failures = [DeliveryError("http_500", permanent=False), DeliveryError("ratelimited", permanent=False,
                                                                                  retry_after=30)]
    await _post(outbox, "verdict")
    assert await outbox.drain() == 0
    [row] = await _rows(db)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "http_500")
    first_wait = (row.next_attempt_at - clock.now()).total_seconds()
    assert 1.5 <= first_wait <= 2.5
    assert await outbox.drain() == 0 and messenger.calls == 1  # not due yet: not tried again
    clock.advance(timedelta(seconds=first_wait))
    assert await outbox.drain() == 0  # 429: waits Retry-After
    [row] = await _rows(db)
    assert (row.next_attempt_at - clock.now()).total_seconds() == 30
    clock.advance(timedelta(seconds=30))
    assert await outbox.drain() == 1
    assert messenger.texts(CHANNEL) == ["verdict"]
    [row] = await _rows(db)
    assert (row.status, row.attempts, row.sent_ts) == ("sent", 3, messenger.deliveries[0].ts)
    assert await outbox.drain() == 0 and messenger.texts(CHANNEL) == ["verdict"]


async def test_the_same_key_is_enqueued_once(db: Database, clock: FakeClock) -> None:
    from sqlalchemy.exc import IntegrityError

    outbox, _ = await _setup(db, clock)
    await _post(outbox, "meeting:1:verdict:seq0")
    with pytest.raises(IntegrityError):
        await _post(outbox, "meeting:1:verdict:seq0")
    assert len(await _rows(db)) == 1


async def test_a_permanent_refusal_is_recorded_and_the_lead_told_once(db: Database, clock: FakeClock) -> None:
    outbox, messenger = await _setup(db, clock)
    messenger.failures = [DeliveryError("channel_not_found", permanent=True) for _ in range(2)]
    await _post(outbox, "reminder 1")
    await _post(outbox, "reminder 2")
    await outbox.drain()
    rows = await _rows(db)
    assert [r.status for r in rows[:2]] == ["failed", "failed"]
    assert messenger.calls == 3  # two refusals, then the one DM to the lead (not retried, not doubled)
    assert len(messenger.texts(LEAD, "dm")) == 1
    assert "invite the bot" in messenger.texts(LEAD, "dm")[0]
    async with db.session() as s:
        problems = await outbox.problems(s, team_id=TEAM)
        actions = [a.action for a in (await s.execute(select(AuditEntry))).scalars()]
    assert len(problems) == 1 and "channel_not_found" in problems[0].line()
    assert actions.count("outbox.failed") == 2


async def test_a_stale_message_is_dropped_with_a_reason_in_the_audit_log(db: Database, clock: FakeClock) -> None:
    outbox, messenger = await _setup(db, clock)
    await _post(outbox, "48 h reminder", not_after=clock.now() + timedelta(hours=1))
    messenger.failures = [DeliveryError("http_500", permanent=False)]
    await outbox.drain()
    clock.advance(timedelta(hours=2))  # Slack came back after the meeting started
    await outbox.drain()
    [row] = await _rows(db)
    assert row.status == "dropped" and messenger.deliveries == []
    async with db.session() as s:
        [entry] = (await s.execute(select(AuditEntry).where(AuditEntry.action == "outbox.dropped"))).scalars()
    assert "no longer useful" in entry.detail["reason"]


async def test_status_and_home_show_an_undelivered_message_until_one_goes_through(
    db: Database, clock: FakeClock
) -> None:
    from bot.commands import Context, dispatch
    from bot.commands.home import home_view
    from bot.services import Actor, Services

    messenger = FlakyMessenger()
    services = Services.build(db, clock, messenger)
    lead = Actor(TEAM, LEAD)
    project = await services.projects.create(actor=lead, name="genres", channel_id=CHANNEL)
    outbox = services.outbox
    assert outbox is not None
    messenger.failures = [DeliveryError("not_in_channel", permanent=True)]
    await outbox.send(team_id=TEAM, project_id=project.id, kind="post", target=CHANNEL,
                      message=Message(text="verdict"), key="v1", notify_user_id=LEAD)
    ctx = Context(services=services, actor=lead, channel_id=CHANNEL, command="/pg")
    status = await dispatch(ctx, "status")
    assert status.message is not None
    shown = str(status.message.blocks)
    assert "1 message(s) could not be delivered" in shown and "invite the bot" in shown
    assert "could not be delivered" in str(await home_view(ctx))
    await outbox.send(team_id=TEAM, project_id=project.id, kind="post", target=CHANNEL,
                      message=Message(text="next"), key="v2", notify_user_id=LEAD)  # the lead invited the bot
    status = await dispatch(ctx, "status")
    assert status.message is not None and "could not be delivered" not in str(status.message.blocks)


async def test_a_reply_in_another_rows_thread_waits_for_it_then_goes_under_it(db: Database, clock: FakeClock) -> None:
    outbox, messenger = await _setup(db, clock)
    messenger.failures = [DeliveryError("http_500", permanent=False)]
    await _post(outbox, "digest:1:2026-03-09")
    await _post(outbox, "digest:1:2026-03-09:timeline", thread_of_key="digest:1:2026-03-09")
    assert await outbox.drain() == 0  # the parent failed once; its reply waits instead of going first
    parent, reply = await _rows(db)
    assert (parent.status, reply.status, reply.attempts) == ("pending", "pending", 0)
    assert reply.next_attempt_at == parent.next_attempt_at
    clock.advance(timedelta(seconds=5))
    assert await outbox.drain() == 2
    first, second = messenger.deliveries
    assert first.message and first.message.text == "digest:1:2026-03-09" and first.thread_ts is None
    assert second.thread_ts == first.ts


async def test_a_reply_whose_parent_was_refused_goes_to_the_channel(db: Database, clock: FakeClock) -> None:
    outbox, messenger = await _setup(db, clock)
    messenger.failures = [DeliveryError("msg_too_long", permanent=True)]
    await _post(outbox, "digest:1:2026-03-09")
    await _post(outbox, "digest:1:2026-03-09:timeline", thread_of_key="digest:1:2026-03-09")
    await outbox.drain()
    replies = [d for d in messenger.deliveries if d.message and d.message.text.endswith(":timeline")]
    assert len(replies) == 1 and replies[0].thread_ts is None and replies[0].target == CHANNEL


async def test_a_stop_that_comes_with_a_wake_up_ends_the_sender(
    db: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox, _ = await _setup(db, clock)
    outbox.inline = False  # as in the server: committed() wakes the sender
    waiting = asyncio.Event()
    wait = outbox.wait_for_wake

    async def noted_wait(seconds: float) -> None:
        waiting.set()
        await wait(seconds)

    monkeypatch.setattr(outbox, "wait_for_wake", noted_wait)
    sender = OutboxSender(outbox, interval=3600)
    await sender.start()
    await asyncio.wait_for(waiting.wait(), 10)
    await asyncio.sleep(0)  # it waits for a wake-up
    await outbox.committed()  # a message committed as the replica stops: the wake-up and the stop in one turn
    assert await finishes(sender.stop(), within=5)  # with asyncio.wait_for the sender dropped the stop, ran on


async def test_a_stop_lost_in_the_senders_wait_still_ends_it(
    db: Database, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox, _ = await _setup(db, clock)
    waiting = asyncio.Event()

    async def wait_losing_the_cancel(seconds: float) -> None:
        waiting.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(seconds)

    monkeypatch.setattr(outbox, "wait_for_wake", wait_losing_the_cancel)
    sender = OutboxSender(outbox, interval=3600)
    await sender.start()
    await asyncio.wait_for(waiting.wait(), 10)
    assert await finishes(sender.stop(), within=5)
