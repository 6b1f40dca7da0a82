"""Dedupe of deliveries: Slack event ids, repeated view submissions, GitHub delivery GUIDs."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from bot.db.models import ProcessedDelivery
from bot.services.base import ServiceBase

SIGNATURE_SOURCE = "slack-sig"  # a signed slash command or interaction already accepted (replay guard)
PRUNE_EVERY = timedelta(minutes=1)  # expired signatures are deleted at most this often (kept longer: still correct)


class DeliveryService(ServiceBase):
    _pruned_at: datetime | None = None  # when expired signatures were last deleted (by this process)

    async def first_time(self, *, source: str, delivery_id: str) -> bool:
        """True the first time a delivery is seen (recorded atomically), False for every repeat."""
        try:
            async with self.db.session() as s:
                s.add(ProcessedDelivery(source=source, delivery_id=delivery_id[:100], received_at=self.clock.now()))
        except IntegrityError:
            return False
        return True

    async def forget(self, *, source: str, delivery_id: str) -> None:
        """Let a delivery be processed again (e.g. a modal submission refused with field errors)."""
        async with self.db.session() as s:
            await s.execute(
                delete(ProcessedDelivery).where(
                    col(ProcessedDelivery.source) == source, col(ProcessedDelivery.delivery_id) == delivery_id[:100]
                )
            )

    async def forget_older_than(self, *, days: int = 14) -> int:
        """Drop old dedupe records (Slack and GitHub never redeliver after days)."""
        async with self.db.session() as s:
            result = await s.execute(
                delete(ProcessedDelivery).where(
                    col(ProcessedDelivery.received_at) < self.clock.now() - timedelta(days=days)
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

    async def first_signature(self, *, signature: str, window_seconds: int = 300) -> bool:
        """True the first time a signed Slack request's signature is seen (a replay gets False).

        Kept in the database (shared by replicas) for Slack's signature window, then pruned. This runs before every
        ack: one INSERT (the prune of expired signatures at most once a minute), and on SQLite the process's
        inserts take turns on a lock instead of waiting in SQLite's busy handler, which sleeps in steps of up to
        100 ms.
        """
        now = self.clock.now()
        prune = self._pruned_at is None or now - self._pruned_at >= PRUNE_EVERY
        try:
            async with self.db.writer(), self.db.session() as s:
                if prune:
                    await s.execute(
                        delete(ProcessedDelivery).where(
                            col(ProcessedDelivery.source) == SIGNATURE_SOURCE,
                            col(ProcessedDelivery.received_at) < now - timedelta(seconds=2 * window_seconds),
                        )
                    )
                s.add(ProcessedDelivery(source=SIGNATURE_SOURCE, delivery_id=signature[:100], received_at=now))
        except IntegrityError:
            return False
        if prune:
            self._pruned_at = now
        return True
