"""Waiting with a time limit without losing a cancel: the background loops' stop depends on it.

`asyncio.wait_for` (Python 3.11) runs the awaited thing as a task of its own; when the waiting task is cancelled
in the same turn as that task finishes (an event set as the loop is stopped), it returns the result and drops the
cancel, so a loop that relies on `task.cancel()` to end runs on. `asyncio.timeout` awaits in the caller's own
task and counts cancels, so a cancel always arrives.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait up to `seconds` for `event`; True when it is set. A cancel of the caller always propagates."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait until it has ended. A cancel of the caller propagates: awaiting the task inside
    `suppress(CancelledError)` would take the caller's own cancel for the task's and drop it."""
    task.cancel()
    await asyncio.wait({task})
