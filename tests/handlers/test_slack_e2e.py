"""The real app over HTTP receives signed Slack requests; the fake Slack records what people would see."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.handlers.harness import CHANNEL, SlackHarness, running_app, sign, validate_blocks, validate_view

LEAD, BO, RAJ = "U0LEAD0001", "U0BIZZ0001", "U0MLEN0001"


@pytest.fixture
async def slack(database_url: str) -> AsyncIterator[SlackHarness]:
    async with running_app(database_url) as harness:
        yield harness


async def init_project(slack: SlackHarness) -> None:
    sent = await slack.command("init genres repo=acme/genres")
    answer = await slack.answer(sent)
    assert "Created *genres*" in slack.text_of(answer)


async def test_help_is_an_ephemeral_answer(slack: SlackHarness) -> None:
    answer = await slack.answer(await slack.command("help"))
    assert answer["response_type"] == "ephemeral"
    text = slack.text_of(answer)
    assert "/phasegate init &lt;name&gt; repo=&lt;owner/repo&gt;" in text
    assert "/phasegate advance" in text


async def test_init_answers_the_lead_and_announces_in_the_channel(slack: SlackHarness) -> None:
    await init_project(slack)
    posted = await slack.wait_for(lambda: slack.fake.messages(CHANNEL))
    validate_blocks(posted[-1]["blocks"])
    assert "New project: genres" in slack.text_of(posted[-1])
    home = await slack.wait_for(lambda: slack.fake.home_view(LEAD))
    validate_view(home["view"] if "view" in home else home)


async def test_status_shows_the_gate_checklist(slack: SlackHarness) -> None:
    await init_project(slack)
    answer = await slack.answer(await slack.command("status"))
    text = slack.text_of(answer)
    assert "genres · Discovery" in text
    assert "✗ Problem statement" in text and "✗ Brief acknowledged by a business owner" in text


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("frobnicate", "There is no subcommand `frobnicate`"),
        ('init "broken', "A quote is not closed"),
        ("init genres repo=not-a-repo", "is not a repository"),
        ("role <@U0BIZZ0001|bo> chef", "`chef` is not a role"),
        ("task", "`task` needs one of: add, done, list, reopen"),
    ],
)
async def test_bad_input_gets_an_answer_naming_the_problem(slack: SlackHarness, text: str, words: str) -> None:
    if text.startswith("role"):
        await init_project(slack)
    answer = await slack.answer(await slack.command(text))
    assert words in slack.text_of(answer)


async def test_a_subcommand_without_input_opens_its_modal(slack: SlackHarness) -> None:
    sent = await slack.command("init")
    opened = await slack.wait_for(slack.fake.views_opened)
    view = opened[-1]["view"]
    validate_view(view)
    assert view["callback_id"] == "phasegate_form:init"
    assert opened[-1]["trigger_id"] == sent["trigger"]
    assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == ["name", "repo", "lead"]


async def test_a_modal_with_errors_keeps_the_input_and_marks_the_field(slack: SlackHarness) -> None:
    await slack.command("init")
    view = (await slack.wait_for(slack.fake.views_opened))[-1]["view"]
    values: dict[str, dict[str, Any]] = {
        "name": {"type": "plain_text_input", "value": "genres"},
        "repo": {"type": "plain_text_input", "value": "definitely not a repo"},
        "lead": {"type": "users_select", "selected_user": None},
    }
    result = await slack.submit(view, values)
    assert result["status"] == 200
    assert result["body"]["response_action"] == "errors"
    assert set(result["body"]["errors"]) == {"repo"}
    # Fixed and submitted again (same view): the project is created and the lead told.
    values["repo"] = {"type": "plain_text_input", "value": "acme/genres"}
    view = {**view, "hash": "2.def"}
    result = await slack.submit(view, values)
    assert result["status"] == 200 and result["body"] in ("", {})
    ephemeral = await slack.wait_for(lambda: slack.fake.ephemerals(user=LEAD))
    assert "Created *genres*" in slack.text_of(ephemeral[-1])


async def test_a_repeated_view_submission_creates_nothing_twice(slack: SlackHarness) -> None:
    await slack.command("init")
    view = (await slack.wait_for(slack.fake.views_opened))[-1]["view"]
    values = {"name": {"type": "plain_text_input", "value": "twice"}, "repo": {"type": "plain_text_input", "value": ""}}
    first = await slack.submit(view, values)
    second = await slack.submit(view, values)
    assert first["status"] == second["status"] == 200
    await slack.wait_for(lambda: slack.fake.ephemerals(user=LEAD))
    projects = await slack.app.services.projects.list_all(team_id="T0TEAM0001")
    assert [p.name for p in projects] == ["twice"]
    assert not any("already exists" in slack.text_of(e) for e in slack.fake.ephemerals(user=LEAD))


async def test_bad_signature_and_stale_timestamp_are_refused_and_change_nothing(slack: SlackHarness) -> None:
    form = urlencode(
        {
            "team_id": "T0TEAM0001",
            "user_id": LEAD,
            "channel_id": CHANNEL,
            "command": "/phasegate",
            "text": "init sneaky",
            "response_url": slack.fake.new_response_url(),
            "trigger_id": "x",
        }
    )
    for headers in (sign(form, secret="wrong"), sign(form, timestamp=int(time.time()) - 600), {}):
        hdrs = {"Content-Type": "application/x-www-form-urlencoded", **headers}
        async with slack.session.post(f"{slack.url}/slack/events", data=form.encode(), headers=hdrs) as resp:
            assert resp.status == 401
    assert await slack.app.services.projects.list_all(team_id="T0TEAM0001") == []


async def test_buttons_run_their_action(slack: SlackHarness) -> None:
    sent = await slack.press("phasegate:no-such-button", "1")
    answer = await slack.answer(sent)
    assert "no longer active" in slack.text_of(answer)


async def test_app_home_is_published_once_per_event_even_when_slack_retries(slack: SlackHarness) -> None:
    await init_project(slack)
    await slack.wait_for(lambda: slack.fake.home_view(LEAD))  # init refreshed the lead's Home
    before = len(slack.fake.calls_to("views.publish"))
    event = {"type": "app_home_opened", "user": LEAD, "channel": "D0001", "tab": "home"}
    assert await slack.event(event, event_id="Ev0001") == 200
    assert await slack.event(event, event_id="Ev0001", retry=1) == 200
    await slack.wait_for(lambda: len(slack.fake.calls_to("views.publish")) > before)
    home = slack.fake.home_view(LEAD)
    assert home is not None
    view = home.get("view", home)
    validate_view(view)
    assert "genres" in json.dumps(view)
    assert len(slack.fake.calls_to("views.publish")) == before + 1


async def test_user_text_cannot_ping_the_channel(slack: SlackHarness) -> None:
    await init_project(slack)
    answer = await slack.answer(await slack.command('brief problem="<!channel> & <@U0MLEN0001> <b>"'))
    text = slack.text_of(answer)
    assert "&lt;!channel&gt; &amp; &lt;@U0MLEN0001&gt; &lt;b&gt;" in text
    assert "<!channel>" not in json.dumps(answer)


async def test_healthz_answers_when_the_database_does(slack: SlackHarness) -> None:
    async with slack.session.get(f"{slack.url}/healthz") as resp:
        assert resp.status == 200
        assert (await resp.json())["database"] == "up"


async def test_a_channel_the_bot_cannot_post_in_is_explained(slack: SlackHarness) -> None:
    slack.fake.add_fault("chat.postMessage", error="not_in_channel", count=1)
    sent = await slack.command("init genres repo=acme/genres")
    # The announcement goes through the outbox; the answer waits for Slack's verdict on it and says both.
    text = slack.text_of(await slack.answer(sent))
    assert "Created *genres*" in text
    assert "could not post the announcement" in text and "/invite @Phasegate" in text
    assert len(slack.fake.responses(sent["response_id"])) == 1
    # The lead (who ran init) is also told once by DM, as for any refused message.
    await slack.wait_for(
        lambda: any("not_in_channel" in str(m.get("text")) for m in slack.fake.messages() if m["channel"] != CHANNEL)
    )


async def test_a_meeting_announcement_that_cannot_be_posted_is_explained(slack: SlackHarness) -> None:
    await init_project(slack)
    await slack.wait_for(lambda: slack.fake.messages(CHANNEL))
    slack.fake.add_fault("chat.postMessage", error="not_in_channel", count=1)
    from datetime import UTC, datetime, timedelta

    at = (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT15:00Z")
    sent = await slack.command(f"meeting schedule kind=brief-review at={at} attendees=<@U0BIZZ0001|bo>")
    text = slack.text_of(await slack.answer(sent))
    assert "could not post the announcement" in text and "/invite @Phasegate" in text
