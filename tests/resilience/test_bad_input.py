"""Bad input over signed HTTP: a huge command is answered "too long" at once, control characters never stored."""

from __future__ import annotations

import time

import pytest
from sqlmodel import select

from bot.db.models import Task
from tests.handlers.harness import running_app

pytestmark = pytest.mark.resilience


async def test_huge_command_text_and_control_characters(database_url: str) -> None:
    async with running_app(database_url) as slack:
        assert "Created *genres*" in slack.text_of(await slack.answer(await slack.command("init genres repo=acme/genres")))
        text = 'task add "' + "x" * 900_000 + '"'  # the HTTP server takes bodies up to 1 MiB
        started = time.perf_counter()
        answer = slack.text_of(await slack.answer(await slack.command(text)))
        elapsed = time.perf_counter() - started
        print(f"\n900 kB command over HTTP ({slack.app.db.backend}): answered in {elapsed * 1000:.0f} ms")
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
