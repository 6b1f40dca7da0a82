"""Waiting with a time limit: the answer says whether the event came, and a cancel is never lost."""

from __future__ import annotations

import asyncio

import pytest

from bot.waits import wait_event


async def test_it_says_whether_the_event_was_set_in_time() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 60) is True


async def test_a_cancel_that_arrives_as_the_event_is_set_is_not_lost() -> None:
    event = asyncio.Event()
    waiting = asyncio.create_task(wait_event(event, 60))
    await asyncio.sleep(0)  # it waits
    event.set()
    waiting.cancel()  # in the same turn: asyncio.wait_for (Python 3.11) returned here and dropped the cancel
    with pytest.raises(asyncio.CancelledError):
        await waiting
