"""Reading the audit log: who did what, when."""

from __future__ import annotations

from sqlmodel import col, select

from bot.db.models import AuditEntry
from bot.services.base import Actor, ServiceBase


class AuditService(ServiceBase):
    async def entries(self, *, actor: Actor, project_id: int | None = None, limit: int = 50) -> list[AuditEntry]:
        """Newest first, only this workspace's entries (optionally one project's)."""
        async with self.db.session() as s:
            q = select(AuditEntry).where(AuditEntry.team_id == actor.team_id)
            if project_id is not None:
                await self.project_by_id(s, actor, project_id)
                q = q.where(AuditEntry.project_id == project_id)
            rows = await s.execute(q.order_by(col(AuditEntry.id).desc()).limit(limit))
            return list(rows.scalars())
