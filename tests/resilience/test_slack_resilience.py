"""Slack misbehaving: retries, duplicates, expired triggers, 429s, used-up response URLs, forged requests."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest

from tests.handlers.harness import CHANNEL, TEAM, SlackHarness, running_app, sign

pytestmark = pytest.mark.resilience
LEAD = "U0LEAD0001"


class SlackClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def slack_clock() -> SlackClock:
    return SlackClock()


@pytest.fixture
async def slack(database_url: str, slack_clock: SlackClock) -> AsyncIterator[SlackHarness]:
    async with running_app(database_url, fake_options={"clock": slack_clock}) as harness:
        yield harness


async def test_an_event_retried_by_slack_is_handled_once(slack: SlackHarness) -> None:
    mention = {"type": "app_mention", "user": LEAD, "channel": CHANNEL, "ts": "1700000000.000100", "text": "<@U0BOT0001> hi"}
    statuses = [await slack.event(mention, event_id="EvMENTION1", retry=n) for n in (None, 1, 2, 3)]
    assert statuses == [200, 200, 200, 200]
    await slack.wait_for(lambda: slack.fake.messages(CHANNEL))
    replies = [m for m in slack.fake.messages(CHANNEL) if m.get("thread_ts") == "1700000000.000100"]
    assert len(replies) == 1 and "/phasegate status" in slack.text_of(replies[0])
    print(f"\nslack retries: 4 deliveries of one event -> {len(replies)} reply")


async def test_an_expired_trigger_id_gets_an_explanation_not_silence(
    slack: SlackHarness, slack_clock: SlackClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = slack.fake.new_trigger_id

    def stale_trigger(user_id: str | None = None) -> str:
        trigger = real_open(user_id)
        slack_clock.now += 10  # Slack's trigger_id lives ~3 s; this one is already too old when used
        return trigger

    monkeypatch.setattr(slack.fake, "new_trigger_id", stale_trigger)
    answer = await slack.answer(await slack.command("init"))
    text = slack.text_of(answer)
    assert "could not be opened (expired_trigger_id)" in text and "/phasegate help init" in text
    assert slack.fake.views_opened() == []


async def test_a_rate_limited_post_is_retried_after_retry_after(slack: SlackHarness) -> None:
    slack.fake.add_fault("chat.postMessage", status=429, retry_after=1, count=1)
    await slack.answer(await slack.command("init genres repo=acme/genres"))
    posted = await slack.wait_for(lambda: slack.fake.messages(CHANNEL), within=10)
    calls = slack.fake.calls_to("chat.postMessage")
    assert [c.status for c in calls] == [429, 200]
    assert len(posted) == 1 and "New project: genres" in slack.text_of(posted[0])


async def test_a_used_up_response_url_falls_back_to_an_ephemeral_message(slack: SlackHarness) -> None:
    sent = await slack.command("help")
    await slack.answer(sent)
    for _ in range(4):  # someone else used the URL up (Slack allows 5 uses)
        async with slack.session.post(sent["response_url"], json={"text": "x"}) as resp:
            assert resp.status == 200
    # The same URL again (as a slow answer would): Slack refuses, the bot answers by chat.postEphemeral.
    from bot.commands import Context
    from bot.commands.base import notice
    from bot.services import Actor
    from handlers.common import answer, responder

    ctx = Context(services=slack.app.services, actor=Actor(TEAM, LEAD), channel_id=CHANNEL)
    await answer(ctx, notice("late answer"), respond=responder(sent, slack.app.bolt.client))  # the listeners' own
    assert "late answer" in slack.text_of(slack.fake.ephemerals(user=LEAD)[-1])


async def test_two_racing_submissions_of_one_form_create_one_project(slack: SlackHarness) -> None:
    import asyncio

    await slack.command("init")
    view = (await slack.wait_for(slack.fake.views_opened))[-1]["view"]
    values = {"name": {"type": "plain_text_input", "value": "racing"}}
    results = await asyncio.gather(
        slack.submit({**view, "hash": "1.a"}, values), slack.submit({**view, "hash": "2.b"}, values)
    )
    assert sorted(r["status"] for r in results) == [200, 200]
    projects = await slack.app.services.projects.list_all(team_id=TEAM)
    assert [p.name for p in projects] == ["racing"]
    refused = [r["body"] for r in results if isinstance(r["body"], dict) and r["body"].get("response_action")]
    assert all("already exists" in json.dumps(b) for b in refused)


@pytest.mark.parametrize("kind", ["command", "interactive", "event"])
@pytest.mark.parametrize("forgery", ["bad signature", "stale timestamp", "no signature"])
async def test_forged_or_replayed_requests_are_refused_and_change_nothing(
    slack: SlackHarness, kind: str, forgery: str
) -> None:
    if kind == "command":
        body = urlencode({"team_id": TEAM, "user_id": LEAD, "channel_id": CHANNEL, "command": "/phasegate",
                          "text": "init forged", "response_url": slack.fake.new_response_url(), "trigger_id": "x"})
        ctype = "application/x-www-form-urlencoded"
    elif kind == "interactive":
        payload = {"type": "view_submission", "team": {"id": TEAM}, "user": {"id": LEAD, "team_id": TEAM},
                   "view": {"id": "V1", "hash": "h", "callback_id": "phasegate_form:init", "private_metadata": "{}",
                            "state": {"values": {"name": {"v": {"type": "plain_text_input", "value": "forged"}}}}}}
        body, ctype = urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
    else:
        body = json.dumps({"type": "event_callback", "team_id": TEAM, "event_id": "EvF",
                           "event": {"type": "app_home_opened", "user": LEAD, "tab": "home"}})
        ctype = "application/json"
    headers = {
        "bad signature": sign(body, secret="not-the-secret"),
        "stale timestamp": sign(body, timestamp=int(time.time()) - 301),
        "no signature": {},
    }[forgery]
    async with slack.session.post(f"{slack.url}/slack/events", data=body.encode(),
                                  headers={"Content-Type": ctype, **headers}) as resp:
        assert resp.status == 401
    assert await slack.app.services.projects.list_all(team_id=TEAM) == []
    assert slack.fake.calls_to("views.publish") == []
