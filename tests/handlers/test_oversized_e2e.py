"""A slash command far over Slack's own cap is answered "too long" before Bolt parses it, over real HTTP."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest

from tests.handlers.harness import CHANNEL, TEAM, SlackHarness, as_slack_sends, running_app, sign

USER = "U0LEAD0001"


@pytest.fixture
async def slack(database_url: str) -> AsyncIterator[SlackHarness]:
    async with running_app(database_url) as harness:
        yield harness


def _body(slack: SlackHarness, text: str) -> tuple[str, str]:
    url = slack.fake.new_response_url(channel=CHANNEL, user=USER)
    form = {"team_id": TEAM, "channel_id": CHANNEL, "user_id": USER, "command": "/phasegate",
            "text": as_slack_sends(text), "response_url": url, "trigger_id": slack.fake.new_trigger_id(USER)}
    return urlencode(form), url.rsplit("/", 1)[-1]


@pytest.mark.parametrize("label,text", [("1 MB of &<>", "&<>" * 333_000), ("900 kB quoted", '"' + "y " * 450_000)])
async def test_an_oversized_command_is_answered_too_long(slack: SlackHarness, label: str, text: str) -> None:
    body, rid = _body(slack, text)
    start = time.perf_counter()
    resp = await slack.post(body, "application/x-www-form-urlencoded")
    assert resp.status == 200
    await slack.wait_for(lambda: slack.fake.responses(rid))
    elapsed = (time.perf_counter() - start) * 1000
    answer = slack.fake.responses(rid)[-1]["body"]
    said = slack.text_of(answer)
    assert "That command is too long" in said and "the limit is 8,000" in said and "/phasegate &lt;subcommand&gt;" in said
    assert answer.get("response_type") == "ephemeral"
    print(f"\noversized command ({label}, {len(body) / 1e6:.1f} MB form): 'too long' answered in {elapsed:.0f} ms")


async def test_an_oversized_request_not_signed_by_slack_is_refused(slack: SlackHarness) -> None:
    body, rid = _body(slack, "a" * 200_000)
    headers = sign(body, secret="not-the-signing-secret")
    async with slack.session.post(
        f"{slack.url}/slack/events", data=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
    ) as resp:
        assert resp.status == 401
    assert slack.fake.responses(rid) == []


async def test_an_oversized_command_replayed_is_answered_once(slack: SlackHarness) -> None:
    body, rid = _body(slack, "a" * 200_000)
    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
    for _ in range(2):
        async with slack.session.post(f"{slack.url}/slack/events", data=body.encode(), headers=headers) as resp:
            assert resp.status == 200
    await slack.wait_for(lambda: slack.fake.responses(rid))
    await slack.answer(await slack.command("help"))  # a later answer: a second "too long" would be in by now
    assert len(slack.fake.responses(rid)) == 1


async def test_a_big_interaction_payload_still_reaches_its_action(slack: SlackHarness) -> None:
    url = slack.fake.new_response_url(channel=CHANNEL, user=USER)
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "phasegate-test"},
        "user": {"id": USER, "team_id": TEAM},
        "api_app_id": "A0APP0001",
        "trigger_id": slack.fake.new_trigger_id(USER),
        "response_url": url,
        "actions": [{"type": "button", "action_id": "phasegate:no-such-button", "value": "1", "block_id": "b",
                     "action_ts": "1"}],
        "container": {"type": "message", "channel_id": CHANNEL},
        "channel": {"id": CHANNEL},
        "message": {"text": "x" * 100_000},  # a long message the button sits under: > 64 kB of form
    }
    resp = await slack.interactive(payload)
    assert resp.status == 200
    rid = url.rsplit("/", 1)[-1]
    await slack.wait_for(lambda: slack.fake.responses(rid))
    assert "no longer active" in slack.text_of(slack.fake.responses(rid)[-1]["body"])
