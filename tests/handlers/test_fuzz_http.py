"""Arbitrary text through the real Slack handler (signed HTTP): always a 200 and an ephemeral answer."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.commands import REGISTRY
from tests.bot.commands.test_fuzz_commands import TEXT
from tests.handlers.harness import SlackHarness, running_app, validate_blocks


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[tuple[asyncio.Runner, SlackHarness]]:
    path = tmp_path_factory.mktemp("fuzz-http") / "db.sqlite"
    shutil.copy(sqlite_template, path)
    with asyncio.Runner() as runner:
        ctx = running_app(f"sqlite:///{path}")
        harness = runner.run(ctx.__aenter__())
        runner.run(harness.answer(runner.run(harness.command("init fuzz repo=acme/fuzz"))))
        yield runner, harness
        runner.run(ctx.__aexit__(None, None, None))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(name=st.sampled_from(sorted(REGISTRY)), text=TEXT)
def test_any_text_through_the_handler_gets_an_answer(
    live: tuple[asyncio.Runner, SlackHarness], name: str, text: str
) -> None:
    runner, slack = live

    async def one() -> None:
        opened = len(slack.fake.views_opened())
        sent = await slack.command(f"{name} {text}")  # asserts the HTTP status is 200
        await slack.wait_for(lambda: slack.fake.responses(sent["response_id"]) or len(slack.fake.views_opened()) > opened)
        for response in slack.fake.responses(sent["response_id"]):
            body = response.get("body") or {}
            assert body.get("response_type") == "ephemeral"
            validate_blocks(body.get("blocks") or [])
            assert "went wrong on our side" not in slack.text_of(body)

    runner.run(one())
