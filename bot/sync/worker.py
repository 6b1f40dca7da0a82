"""The long-running sync loop: apply stored webhooks, drain due outbox items, poll, post digests, prune."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from bot.waits import cancel_and_wait

if TYPE_CHECKING:
    from bot.sync.service import SyncService

log = logging.getLogger(__name__)

PRUNE_INTERVAL = 3600.0  # seconds between prunes of old delivery records


class SyncWorker:
    """Long-running loop: drain due outbox items, poll when configured, post digests; wakes on `kick()`."""

    def __init__(
        self,
        service: SyncService,
        *,
        interval: float = 30.0,
        poll_interval: float | None = None,
        digest_interval: float = 60.0,
        batch: int = 100,
    ) -> None:
        self.service = service
        self.interval = interval
        self.poll_interval = poll_interval
        self.digest_interval = digest_interval
        self.batch = batch
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        """Start the loop in the background (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="github-sync-worker")

    async def stop(self, *, grace: float = 10.0) -> None:
        """Let the pass under way finish (up to `grace` seconds; whatever is cut short is rolled back and left
        to the next leader), then stop the loop."""
        task = self._task
        if task is not None:
            self._stopping = True
            self.service.kick()
            await asyncio.wait({task}, timeout=grace)
            self._task = None
            await cancel_and_wait(task)
            self._stopping = False

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_poll = last_digest = loop.time()
        last_prune = -PRUNE_INTERVAL
        me = asyncio.current_task()
        while not self._stopping and self._task is me:  # a cancel from `stop()` that got lost still ends it
            timeout = self.interval
            try:
                applied = await self.service.apply_stored()
                if self._stopping:
                    break
                result = await self.service.run_due(limit=self.batch)
                now = loop.time()
                if self.poll_interval is not None and now - last_poll >= self.poll_interval:
                    last_poll = now
                    await self.service.poll_all()
                if now - last_digest >= self.digest_interval:
                    last_digest = now
                    await self.service.flush_digests()
                if now - last_prune >= PRUNE_INTERVAL:
                    last_prune = now
                    await self.service.prune()
                if result.processed >= self.batch or applied:
                    timeout = 0.0
                elif result.next_due_at is not None:
                    due = (result.next_due_at - self.service.clock.now()).total_seconds()
                    timeout = min(self.interval, max(due, 0.05))
            except Exception:
                log.exception("GitHub sync worker pass failed")
            if timeout > 0 and not self._stopping:
                await self.service.wait_for_kick(timeout)
