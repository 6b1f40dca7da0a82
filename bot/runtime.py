"""Composition for the local shell and the demo: the Slack app's core with a movable clock and text output."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.app import Core, build_core
from bot.clock import FakeClock, SystemClock
from bot.config import Settings
from bot.db.session import Database
from bot.shell import Shell, ShellMessenger


class SchedulerDriver:
    """Reminders, verdicts, agendas and nudges fall due as the shell's clock moves."""

    def __init__(self, core: Core) -> None:
        self.core = core

    async def next_due(self) -> datetime | None:
        return await asyncio.to_thread(self.core.scheduler.next_run_time)

    async def run_due(self, now: datetime) -> int:
        return await self.core.scheduler.run_due(now)


class SyncDriver:
    """With GitHub credentials, queued issues are written (paced in real time: GitHub's clock is real)."""

    def __init__(self, core: Core) -> None:
        self.core = core

    async def next_due(self) -> datetime | None:
        return None

    async def run_due(self, now: datetime) -> int:
        sync = self.core.sync
        if sync.preview_mode:
            return 0
        result = await sync.run_due(limit=None)
        await sync.flush_digests()
        return 0 if result.processed == 0 else 1


def files_dir(database_url: str) -> Path:
    """Where the shell writes shared images: beside a SQLite database file, else the working directory."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent
    return Path.cwd()


async def open_shell(
    settings: Settings, *, start: datetime | None = None, out: TextIO | None = None
) -> tuple[Shell, Callable[[], Awaitable[None]]]:
    """A shell over the configured database; returns it and an async close function."""
    logging.getLogger().setLevel(logging.WARNING)
    clock = FakeClock(start or datetime.now(UTC).replace(second=0, microsecond=0))
    db = Database(settings.database_url)
    messenger = ShellMessenger()
    # GitHub is real when credentials are given, so its pacing runs on the real clock.
    core = build_core(settings, db=db, clock=clock, messenger=messenger, sync_clock=SystemClock())
    core.scheduler.start()
    core.services.use(command=settings.phasegate_slash_command)
    shell = Shell(
        services=core.services,
        clock=clock,
        command=settings.phasegate_slash_command,
        drivers=(SchedulerDriver(core), SyncDriver(core)),
    )
    if out is not None:
        shell.out = out
    shell.files_dir = files_dir(settings.database_url)
    messenger.shell = shell

    async def close() -> None:
        core.scheduler.shutdown()
        await core.sync.aclose()
        await db.dispose()

    return shell, close
