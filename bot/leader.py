"""Leader election for replicas: the holder of a PostgreSQL advisory lock runs the scheduler and sync worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

# Any constant works; all replicas must agree. ("phasegate" as a 63-bit number.)
LOCK_KEY = 0x7068617365676174 & 0x7FFF_FFFF_FFFF_FFFF

Hook = Callable[[], Awaitable[None]]


def libpq_url(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class Leadership:
    """Runs `on_elected` while this process holds the lock and `on_deposed` when it loses it.

    The lock is a session-level advisory lock on a dedicated connection: if the process dies, PostgreSQL
    drops the session and the lock, and another replica takes over at its next try (`retry` seconds).
    With SQLite there is one process, so it leads at once.
    """

    def __init__(
        self,
        database_url: str,
        *,
        on_elected: Hook,
        on_deposed: Hook,
        retry: float = 5.0,
        key: int = LOCK_KEY,
    ) -> None:
        self.database_url = database_url
        self.on_elected, self.on_deposed = on_elected, on_deposed
        self.retry, self.key = retry, key
        self.is_leader = False
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self.elected = asyncio.Event()

    @property
    def shared(self) -> bool:
        return make_url(self.database_url).get_backend_name() in ("postgresql", "postgres")

    async def start(self) -> None:
        if not self.shared:
            await self._become_leader()
            return
        self._task = asyncio.create_task(self._campaign(), name="phasegate-leadership")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._step_down()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def _become_leader(self) -> None:
        self.is_leader = True
        log.info("this replica leads: running the scheduler and the GitHub sync worker")
        await self.on_elected()
        self.elected.set()

    async def _step_down(self) -> None:
        if self.is_leader:
            self.is_leader = False
            self.elected.clear()
            log.warning("this replica no longer leads: stopping the scheduler and the sync worker")
            with contextlib.suppress(Exception):
                await self.on_deposed()

    async def _campaign(self) -> None:
        while True:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = await psycopg.AsyncConnection.connect(libpq_url(self.database_url), autocommit=True)
                if not self.is_leader:
                    cur = await self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
                    row = await cur.fetchone()
                    if row and row[0]:
                        await self._become_leader()
                else:
                    await self._conn.execute("SELECT 1")  # still connected, so still holding the lock
            except (psycopg.Error, OSError) as exc:
                log.warning("leadership check failed (%s); retrying", exc)
                await self._step_down()
                if self._conn is not None:
                    with contextlib.suppress(Exception):
                        await self._conn.close()
                self._conn = None
            await asyncio.sleep(self.retry)
