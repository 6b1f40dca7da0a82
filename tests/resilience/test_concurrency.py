"""Concurrent commands: 50 `task add` at once over signed HTTP get 50 tasks numbered without gaps, no errors."""

from __future__ import annotations

import asyncio
import time
from functools import partial

import pytest
from sqlmodel import col, select

from bot.db.models import Task
from tests.handlers.harness import running_app

pytestmark = pytest.mark.resilience

CONCURRENT = 50


async def test_concurrent_task_adds_get_consecutive_numbers(database_url: str) -> None:
    async with running_app(database_url) as slack:
        first = await slack.answer(await slack.command("init genres repo=acme/genres"))
        assert "Created *genres*" in slack.text_of(first)
        async with slack.app.db.session() as s:
            before = len((await s.execute(select(Task.id))).scalars().all())  # the phase's default tasks
        started = time.perf_counter()
        sent = await asyncio.gather(*(slack.command(f'task add "Label batch {i}"') for i in range(CONCURRENT)))
        # 50 answers queue behind each other on a loaded machine: wait longer than answer()'s 5 s for each.
        answers = []
        for one in sent:
            responses = await slack.wait_for(partial(slack.fake.responses, one["response_id"]), within=120)
            answers.append(slack.text_of(responses[-1].get("body", responses[-1])))
        elapsed = time.perf_counter() - started
        sorry = [a for a in answers if "Sorry" in a or "went wrong" in a]
        async with slack.app.db.session() as s:
            numbers = sorted((await s.execute(select(Task.number).order_by(col(Task.number)))).scalars().all())
        titles = {t for t in answers if "Label batch" in t}
        print(
            f"\n{CONCURRENT} concurrent task add ({slack.app.db.backend}): {len(numbers) - before} added, "
            f"{len(sorry)} errors, numbers {numbers[:1]}..{numbers[-1:]}, {elapsed:.2f} s"
        )
        assert sorry == []
        assert numbers == list(range(1, before + CONCURRENT + 1))
        assert len(titles) == CONCURRENT
