"""Bad input over signed HTTP: a huge command is answered "too long" at once, control characters never stored."""

from __future__ import annotations

import time
from functools import partial
from urllib.parse import urlencode

import pytest
from sqlmodel import select

from bot.db.models import Task
from tests.handlers.harness import CHANNEL, TEAM, SlackHarness, as_slack_sends, running_app, sign

pytestmark = pytest.mark.resilience


def command_body(slack: SlackHarness, text: str) -> tuple[str, str]:
    """A slash command's form as Slack sends it, and its response_url's id."""
    url = slack.fake.new_response_url(channel=CHANNEL, user="U0LEAD0001")
    form = {"team_id": TEAM, "channel_id": CHANNEL, "user_id": "U0LEAD0001", "command": "/phasegate",
            "text": as_slack_sends(text), "response_url": url, "trigger_id": slack.fake.new_trigger_id("U0LEAD0001")}
    return urlencode(form), url.rsplit("/", 1)[-1]


async def test_huge_command_text_and_control_characters(database_url: str) -> None:
    async with running_app(database_url) as slack:
        assert "Created *genres*" in slack.text_of(await slack.answer(await slack.command("init genres repo=acme/genres")))
        for label, text in (("900 kB", 'task add "' + "x" * 900_000 + '"'), ("1 MB of &<>", "&<>" * 333_000)):
            # The form is encoded and signed before the clock starts: only the server's part is timed.
            body, rid = command_body(slack, text)
            headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
            started = time.perf_counter()
            async with slack.session.post(f"{slack.url}/slack/events", data=body.encode(), headers=headers) as resp:
                assert resp.status == 200
            await slack.wait_for(partial(slack.fake.responses, rid), within=2.0)
            elapsed = time.perf_counter() - started
            answer = slack.text_of(slack.fake.responses(rid)[-1]["body"])
            print(
                f"\n{label} command ({len(body) / 1e6:.1f} MB form) over HTTP ({slack.app.db.backend}): "
                f"answered in {elapsed * 1000:.0f} ms"
            )
            assert "too long" in answer and "went wrong" not in answer
            assert elapsed < 2.0
        # A NUL byte cannot even be stored in a PostgreSQL text column: stripped before the database.
        answer = slack.text_of(await slack.answer(await slack.command('task add "Label\x00 songs\x1b" body="a\x00b"')))
        assert "went wrong" not in answer and "added" in answer
        window = slack.text_of(
            await slack.answer(await slack.command("meeting schedule kind=model-decision window=0001-01-01..0001-01-02"))
        )
        assert "between 2000 and 2100" in window and "went wrong" not in window
        async with slack.app.db.session() as s:
            task = (await s.execute(select(Task).where(Task.origin == "manual"))).scalar_one()
        assert (task.title, task.body) == ("Label songs", "ab")
