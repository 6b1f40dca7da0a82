"""Leadership stops when told, even when the stop comes as the lock is taken (a replica shutting down at start)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from bot.leader import Leadership
from tests.conftest import finishes

NOWHERE = "postgresql://phasegate@127.0.0.1:1/none"  # never connected to: the lock check is stood in for


def _leadership(events: list[str], *, retry: float) -> Leadership:
    async def elected() -> None:
        events.append("elected")

    async def deposed() -> None:
        events.append("deposed")

    return Leadership(NOWHERE, on_elected=elected, on_deposed=deposed, retry=retry)


async def test_a_stop_that_comes_as_the_lock_is_taken_ends_the_campaign(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    leadership = _leadership(events, retry=3600)
    answered = asyncio.Event()

    async def check() -> bool:  # the lock is granted when the test says so
        await answered.wait()
        return True

    monkeypatch.setattr(leadership, "_check", check)
    await leadership.start()
    await asyncio.sleep(0)  # the campaign waits for the database's answer
    answered.set()
    # Stopped in the same turn as the answer: with asyncio.wait_for the campaign took the lead, lost the cancel,
    # and slept on (stop() waited forever: the CI teardown that hung for 300 s).
    assert await finishes(leadership.stop(), within=5)
    assert not leadership.is_leader
    assert events in ([], ["elected", "deposed"])


async def test_a_cancel_lost_inside_the_check_still_ends_the_campaign(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    leadership = _leadership(events, retry=0.01)
    checking = asyncio.Event()

    async def check() -> bool:  # a driver that swallows the cancel
        checking.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        return False

    monkeypatch.setattr(leadership, "_check", check)
    await leadership.start()
    await asyncio.wait_for(checking.wait(), 5)
    assert await finishes(leadership.stop(), within=5)
    assert not leadership.is_leader and events == []
