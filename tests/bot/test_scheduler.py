"""The reminder scheduler's driver stops when paused, even when the pause comes with a wake-up."""

from __future__ import annotations

import asyncio

from bot.clock import FakeClock
from bot.scheduler import ReminderScheduler
from bot.services import Services


async def test_a_pause_that_comes_with_a_wake_up_stops_the_driver(
    database_url: str, clock: FakeClock, services: Services
) -> None:
    scheduler = ReminderScheduler(database_url=database_url, clock=clock)
    scheduler.bind(services)
    scheduler.start()
    try:
        scheduler.resume()
        await asyncio.wait_for(scheduler.wait_for_pass(), 10)  # a pass ran; the driver waits for the next wake-up
        drivers = {task for task in asyncio.all_tasks() if task.get_name() == "reminder-scheduler"}
        assert len(drivers) == 1
        scheduler.wake()  # a meeting planned just as this replica lost the lead: wake-up and pause in one turn
        scheduler.pause()
        await asyncio.wait(drivers, timeout=5)
        # With asyncio.wait_for the driver dropped the cancel and ran on: a deposed replica still running jobs.
        assert all(task.done() for task in drivers)
    finally:
        scheduler.shutdown()
        scheduler.store.engine.dispose()
