"""What every service shares: the acting user, the unit of work, the audit trail, lookups."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from uuid import uuid4

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.clock import Clock
from bot.db.insert import insert_missing
from bot.db.models import AuditEntry, Member, Project, ProjectMember, Workspace
from bot.db.session import Database
from bot.errors import NotAllowed, NotFound
from bot.process import Role
from bot.rendering import mention

if TYPE_CHECKING:
    from bot.messaging import Messenger
    from bot.outbox import Outbox
    from bot.rendering import Message

MEMBER_ROLE = "member"  # a member without a particular role (their join request was approved)
ADMIN_TTL = timedelta(minutes=5)  # how long Slack's is_admin/is_owner answer is trusted before asking again


class AdminCheck:
    """Slack's current admin flag for a person (users.info via the messenger), remembered for ADMIN_TTL."""

    def __init__(self, messenger: Messenger, clock: Clock, ttl: timedelta = ADMIN_TTL) -> None:
        self.messenger = messenger
        self.clock = clock
        self.ttl = ttl
        self._seen: dict[tuple[str, str], tuple[bool | None, datetime]] = {}

    async def current(self, team_id: str, user_id: str) -> bool | None:
        """True/False as Slack says now (within the TTL); None when Slack does not know the person."""
        now = self.clock.now()
        hit = self._seen.get((team_id, user_id))
        if hit is not None and now - hit[1] < self.ttl:
            return hit[0]
        try:
            person = await self.messenger.person(team_id=team_id, user_id=user_id)
        except Exception:
            person = None
        flag = None if person is None else bool(person.is_admin)
        if len(self._seen) > 10_000:
            self._seen.clear()
        self._seen[(team_id, user_id)] = (flag, now)
        return flag


T = TypeVar("T")


@dataclass
class Announce(Generic[T]):
    """A channel post a command asks for with a change: the service renders it from its result and queues it in
    the change's transaction; `row` is then the outbox row (the command's answer says if Slack refused it)."""

    render: Callable[[T], Message]
    row: int | None = None


@dataclass(frozen=True)
class Actor:
    """Who is acting, and in which workspace. Every service call carries one."""

    team_id: str
    user_id: str


class ServiceBase:
    admins: AdminCheck | None = None  # set by Services.build: the admin override follows Slack's current flag
    command: str = "/phasegate"  # the configured slash command, for refusals that say what to type
    outbox: Outbox | None = None  # set by Services.build: what the bot sends on its own is queued with the change

    async def say(
        self,
        s: AsyncSession,
        *,
        team_id: str,
        kind: str,
        target: str,
        message: Message,
        topic: str,
        project_id: int | None = None,
        notify_user_id: str | None = None,
        **extra: Any,
    ) -> int | None:
        """Queue a message in the change's transaction `s` (call `said()` after the commit); its outbox row id.

        The key is unique per call: a command runs once, and its message commits (or rolls back) with it."""
        if self.outbox is None:  # a service built alone (a unit test): nothing to deliver through
            return None
        row = await self.outbox.enqueue(
            s,
            team_id=team_id,
            kind=kind,
            target=target,
            message=message,
            key=f"{topic}:{uuid4().hex}",
            project_id=project_id,
            notify_user_id=notify_user_id,
            **extra,
        )
        return row.id

    async def said(self) -> None:
        """The transaction that queued messages has committed: deliver them (or wake the sender)."""
        if self.outbox is not None:
            await self.outbox.committed()

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
        if ws is None:  # first sight, perhaps by two requests at once: the second inserts nothing
            await insert_missing(s, Workspace(team_id=team_id, created_at=self.clock.now()), ["team_id"])
            ws = await s.get(Workspace, team_id)
            assert ws is not None
        return ws

    async def member(self, s: AsyncSession, team_id: str, user_id: str) -> Member:
        """The workspace's record of a person, created on first sight."""
        row = (
            await s.execute(select(Member).where(Member.team_id == team_id, Member.user_id == user_id))
        ).scalar_one_or_none()
        if row is None:  # first sight, perhaps by two requests at once: the second inserts nothing
            await self.ensure_workspace(s, team_id)
            person = Member(team_id=team_id, user_id=user_id, updated_at=self.clock.now())
            await insert_missing(s, person, ["team_id", "user_id"])
            row = (
                await s.execute(select(Member).where(Member.team_id == team_id, Member.user_id == user_id))
            ).scalar_one()
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
        """Configured admins, else Slack's current is_admin/is_owner (cached minutes), else the last flag stored."""
        ws = await s.get(Workspace, actor.team_id)
        if ws is not None and actor.user_id in ws.admin_user_ids:
            return True
        if self.admins is not None:
            current = await self.admins.current(actor.team_id, actor.user_id)
            if current is not None:
                return current
        m = (
            await s.execute(
                select(Member.is_admin).where(Member.team_id == actor.team_id, Member.user_id == actor.user_id)
            )
        ).scalar_one_or_none()
        return bool(m)

    async def refuse(
        self, s: AsyncSession, *, actor: Actor, project: Project | None, doing: str, message: str
    ) -> NotAllowed:
        """Audit a refused attempt (kept: committed before the caller raises) and return the error to raise."""
        await self.audit(
            s, actor=actor, action="refused", project_id=project.id if project else None, doing=doing[:200]
        )
        await s.commit()
        return NotAllowed(message)

    async def require_lead(self, s: AsyncSession, actor: Actor, project: Project, doing: str) -> None:
        """Leads (and workspace admins) decide, advance, override, change settings, cancel meetings."""
        if project.lead_user_id == actor.user_id or await self.is_admin(s, actor):
            return
        raise await self.refuse(
            s,
            actor=actor,
            project=project,
            doing=doing,
            message=f"Only the project lead ({mention(project.lead_user_id)}) or a workspace admin can {doing}. "
            f"Ask them, or ask them to make you lead with `{self.command} role @you lead`.",
        )

    async def is_member(self, s: AsyncSession, actor: Actor, project: Project) -> bool:
        """The lead and the people the lead gave a role."""
        if project.lead_user_id == actor.user_id:
            return True
        row = (
            await s.execute(
                select(ProjectMember).where(
                    ProjectMember.project_id == project.id, ProjectMember.user_id == actor.user_id
                )
            )
        ).scalar_one_or_none()
        return row is not None and bool(row.roles)

    async def require_member(self, s: AsyncSession, actor: Actor, project: Project, doing: str) -> None:
        """Only members (and workspace admins) change a project; everyone may read it."""
        if await self.is_member(s, actor, project) or await self.is_admin(s, actor):
            return
        raise await self.refuse(s, actor=actor, project=project, doing=doing, message=self.not_member(project, doing))

    def not_member(self, project: Project, doing: str) -> str:
        return (
            f"Only members of {project.name} can {doing}. Ask the lead, {mention(project.lead_user_id)}, to add you "
            f"(`{self.command} role @you <role>`), or ask to join with `{self.command} join {project.name}`."
        )


async def project_members(s: AsyncSession, project_id: int) -> dict[str, set[str]]:
    rows = (await s.execute(select(ProjectMember).where(col(ProjectMember.project_id) == project_id))).scalars()
    return {r.user_id: set(r.roles) for r in rows}
