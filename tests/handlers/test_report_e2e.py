"""`/phasegate report` over signed HTTP: the markdown report arrives in the fake Slack as a file in the channel."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.handlers.harness import CHANNEL, SlackHarness, running_app


@pytest.fixture
async def slack(database_url: str) -> AsyncIterator[SlackHarness]:
    async with running_app(database_url) as harness:
        yield harness


async def test_report_shares_the_markdown_report_in_the_channel(slack: SlackHarness) -> None:
    await slack.answer(await slack.command("init genres repo=acme/genres"))
    answer = await slack.answer(await slack.command("report"))
    assert "The report for genres is shared in its channel as genres-report-" in slack.text_of(answer)
    shared = await slack.wait_for(lambda: [f for f in slack.fake.files() if f["completed"]])
    (report,) = shared
    assert report["name"].startswith("genres-report-") and report["name"].endswith(".md")
    assert report["channels"] == [CHANNEL]
    content = report["content"].decode()
    assert content.startswith("# genres — project report\n") and "\n## Audit trail\n" in content
    assert "project.create" in content
