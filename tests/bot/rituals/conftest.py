"""Fixtures for the ritual tests: a started ReminderScheduler on the test database, bound to the services."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.clock import FakeClock
from bot.messaging import RecordingMessenger
from bot.scheduler import ReminderScheduler
from bot.services import Services
from tests.bot.rituals.helpers import Timeline


@pytest.fixture
async def scheduler(database_url: str, services: Services, clock: FakeClock) -> AsyncIterator[ReminderScheduler]:
    sched = ReminderScheduler(database_url=database_url, clock=clock)
    sched.start()
    sched.bind(services)
    yield sched
    sched.shutdown()
    sched.store.engine.dispose()


@pytest.fixture
def messenger(services: Services) -> RecordingMessenger:
    assert isinstance(services.messenger, RecordingMessenger)
    return services.messenger


@pytest.fixture
def timeline(messenger: RecordingMessenger, clock: FakeClock) -> Timeline:
    return Timeline(messenger, clock)
