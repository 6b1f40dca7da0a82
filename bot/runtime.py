"""Composition for the local shell and the demo: the same services as the Slack app, a fake clock, text output."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from bot.clock import FakeClock
from bot.config import Settings
from bot.db.session import Database
from bot.services import Services
from bot.shell import Shell, ShellMessenger


async def open_shell(
    settings: Settings, *, start: datetime | None = None, out: object = None
) -> tuple[Shell, Callable[[], Awaitable[None]]]:
    """A shell over the configured database; returns it and an async close function."""
    logging.getLogger().setLevel(logging.WARNING)
    clock = FakeClock(start or datetime.now(UTC).replace(second=0, microsecond=0))
    db = Database(settings.database_url)
    messenger = ShellMessenger()
    services = Services.build(db, clock, messenger)
    services.preview_mode = not settings.github_configured
    shell = Shell(services=services, clock=clock, command=settings.phasegate_slash_command)
    if out is not None:
        shell.out = out  # type: ignore[assignment]
    messenger.shell = shell

    async def close() -> None:
        await db.dispose()

    return shell, close
