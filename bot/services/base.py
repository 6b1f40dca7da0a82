"""What every service shares: the acting user, the unit of work, the audit trail, lookups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.clock import Clock
from bot.db.models import AuditEntry, Member, Project, ProjectMember, Workspace
from bot.db.session import Database
from bot.errors import NotAllowed, NotFound
from bot.process import Role
from bot.rendering import mention


@dataclass(frozen=True)
class Actor:
    """Who is acting, and in which workspace. Every service call carries one."""

    team_id: str
    user_id: str


class ServiceBase:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def audit(
        self,
        s: AsyncSession,
        *,
        actor: Actor,
        action: str,
        project_id: int | None = None,
        **detail: Any,
    ) -> None:
        """Record who did what, when (every change calls this)."""
        s.add(
            AuditEntry(
                team_id=actor.team_id,
                project_id=project_id,
                actor=actor.user_id,
                action=action,
                detail={k: v for k, v in detail.items() if v is not None},
                at=self.clock.now(),
            )
        )

    async def ensure_workspace(self, s: AsyncSession, team_id: str) -> Workspace:
        ws = await s.get(Workspace, team_id)
        if ws is None:
            ws = Workspace(team_id=team_id, created_at=self.clock.now())
            s.add(ws)
            await s.flush()
        return ws

    async def member(self, s: AsyncSession, team_id: str, user_id: str) -> Member:
        """The workspace's record of a person, created on first sight."""
        row = (
            await s.execute(select(Member).where(Member.team_id == team_id, Member.user_id == user_id))
        ).scalar_one_or_none()
        if row is None:
            await self.ensure_workspace(s, team_id)
            row = Member(team_id=team_id, user_id=user_id, updated_at=self.clock.now())
            s.add(row)
            await s.flush()
        return row

    async def project_by_id(self, s: AsyncSession, actor: Actor, project_id: int) -> Project:
        project = await s.get(Project, project_id)
        if project is None or project.team_id != actor.team_id:
            raise NotFound(f"There is no project #{project_id} in this workspace.")
        return project

    async def roles_of(self, s: AsyncSession, project: Project, user_id: str) -> set[str]:
        row = (
            await s.execute(
                select(ProjectMember).where(ProjectMember.project_id == project.id, ProjectMember.user_id == user_id)
            )
        ).scalar_one_or_none()
        roles = set(row.roles) if row else set()
        if project.lead_user_id == user_id:
            roles.add(Role.LEAD.value)
        return roles

    async def is_admin(self, s: AsyncSession, actor: Actor) -> bool:
        ws = await s.get(Workspace, actor.team_id)
        if ws is not None and actor.user_id in ws.admin_user_ids:
            return True
        m = (
            await s.execute(
                select(Member.is_admin).where(Member.team_id == actor.team_id, Member.user_id == actor.user_id)
            )
        ).scalar_one_or_none()
        return bool(m)

    async def require_lead(self, s: AsyncSession, actor: Actor, project: Project, doing: str) -> None:
        """Leads (and workspace admins) decide, advance, override, change settings, cancel meetings."""
        if project.lead_user_id == actor.user_id or await self.is_admin(s, actor):
            return
        raise NotAllowed(
            f"Only the project lead ({mention(project.lead_user_id)}) or a workspace admin can {doing}. "
            "Ask them, or ask them to make you lead with `role @you lead`."
        )


async def project_members(s: AsyncSession, project_id: int) -> dict[str, set[str]]:
    rows = (await s.execute(select(ProjectMember).where(col(ProjectMember.project_id) == project_id))).scalars()
    return {r.user_id: set(r.roles) for r in rows}
