"""Each person's own working hours and days (`hours 07:00-15:00 days=sun-thu`), over the project's default."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from bot.clock import Clock
from bot.db.models import PersonHours, Project
from bot.db.session import Database
from bot.errors import InvalidInput
from bot.outbox import Outbox
from bot.process import DAY_NAMES, WEEKDAYS, format_days, format_working_hours, parse_days, parse_working_hours
from bot.rendering import Message, mention, ours, render_message
from bot.services.base import Actor, ServiceBase


@dataclass(frozen=True)
class HoursView:
    """Someone's hours as they apply: their own, else the project's default (else 09:00–17:00)."""

    user_id: str
    hours: str  # 07:00–15:00
    days: str  # Mon–Fri
    own: bool  # set with `hours`; False: the project's default applies
    default: str  # the project's (or the built-in) hours, for `hours reset`
    project: str | None  # the project whose default applies

    @property
    def text(self) -> str:
        return f"{self.hours}, {self.days}"


def check_hours(hours: str) -> tuple[int, int]:
    parsed = parse_working_hours(hours)
    if parsed is None:
        raise InvalidInput(
            f"`{hours[:40]}` is not working hours: write them as 09:00-17:00 (overnight: 18:00-09:00).", field="hours"
        )
    return parsed


def check_days(days: str) -> frozenset[int]:
    parsed = parse_days(days)
    if parsed is None:
        raise InvalidInput(
            f"`{days[:40]}` is not a set of days: write days=sun-thu, days=mon-fri or days=mon,wed,fri.", field="days"
        )
    return parsed


class HoursService(ServiceBase):
    def __init__(self, db: Database, clock: Clock, outbox: Outbox | None = None) -> None:
        super().__init__(db, clock)
        self.outbox = outbox

    def _told(self, actor: Actor, view: HoursView, verb: str) -> Message:
        text = (
            f"{mention(actor.user_id)} {verb} your working hours to {view.text}. Reminders and meeting slots follow "
            f"them; `{self.command} hours` shows them, `{self.command} hours 09:00-17:00 days=mon-fri` changes them."
        )
        return render_message("blocks/notice.json.j2", text=ours(text), title="", body=text, detail=[], usage="")

    async def _tell(self, s: AsyncSession, actor: Actor, view: HoursView, verb: str) -> bool:
        """A lead changed someone's hours: that person is told by DM (durably, with the change)."""
        if view.user_id == actor.user_id or self.outbox is None:
            return False
        await self.outbox.enqueue(
            s,
            team_id=actor.team_id,
            kind="dm",
            target=view.user_id,
            message=self._told(actor, view, verb),
            key=f"hours:{view.user_id}:{self.clock.now().isoformat()}:{actor.user_id}",
        )
        return True

    async def _row(self, s: AsyncSession, team_id: str, user_id: str) -> PersonHours | None:
        return (
            await s.execute(select(PersonHours).where(PersonHours.team_id == team_id, PersonHours.user_id == user_id))
        ).scalar_one_or_none()

    async def _may_set(self, s: AsyncSession, actor: Actor, user_id: str, project_id: int | None) -> Project | None:
        """Your own hours: always. Someone else's: the lead of a project they are in (or a workspace admin)."""
        if user_id == actor.user_id:
            return await self.project_by_id(s, actor, project_id) if project_id is not None else None
        doing = f"set the working hours of {mention(user_id)}"
        if project_id is None:
            if await self.is_admin(s, actor):
                return None
            raise await self.refuse(
                s,
                actor=actor,
                project=None,
                doing=doing,
                message=f"Only a project's lead (in the project's channel) or a workspace admin can {doing}. "
                f"They can set their own with `{self.command} hours 09:00-17:00`.",
            )
        project = await self.project_by_id(s, actor, project_id)
        await self.require_lead(s, actor, project, doing)
        if not await self.roles_of(s, project, user_id) and not await self.is_admin(s, actor):
            raise InvalidInput(
                f"{mention(user_id)} is not a member of {project.name}. Give them a role first "
                f"(`{self.command} role {mention(user_id)} <role>`), or they set their own hours.",
                field="user",
            )
        return project

    async def view(self, *, actor: Actor, user_id: str, project_id: int | None) -> HoursView:
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id) if project_id is not None else None
            row = await self._row(s, actor.team_id, user_id)
            member = await self.member(s, actor.team_id, user_id)
            return self._view(user_id, row, member.working_hours, project)

    @staticmethod
    def _view(user_id: str, row: PersonHours | None, profile_hours: str | None, project: Project | None) -> HoursView:
        default = parse_working_hours(project.working_hours if project else "") or (9 * 60, 17 * 60)
        mine = parse_working_hours(row.hours if row else profile_hours or "")
        start, end = mine or default
        days = parse_days(row.days or "") if row else None
        return HoursView(
            user_id=user_id,
            hours=format_working_hours(start, end, "–"),
            days=format_days(days or WEEKDAYS),
            own=row is not None,
            default=format_working_hours(*default, "–"),
            project=project.name if project else None,
        )

    async def set(
        self, *, actor: Actor, user_id: str, hours: str, days: str | None, project_id: int | None
    ) -> HoursView:
        """Set someone's own hours (and days; Mon–Fri unless given)."""
        normal = format_working_hours(*check_hours(hours))
        chosen = check_days(days) if days is not None else None
        async with self.db.session() as s:
            project = await self._may_set(s, actor, user_id, project_id)
            await self.member(s, actor.team_id, user_id)
            row = await self._row(s, actor.team_id, user_id)
            if row is None:
                row = PersonHours(team_id=actor.team_id, user_id=user_id, hours=normal)
            row.hours = normal
            if chosen is not None:
                row.days = None if chosen == WEEKDAYS else ",".join(DAY_NAMES[d] for d in sorted(chosen))
            elif row.id is None:
                row.days = None
            row.set_by = actor.user_id
            row.set_at = self.clock.now()
            s.add(row)
            await s.flush()
            await self.audit(
                s,
                actor=actor,
                action="member.hours",
                project_id=project.id if project else None,
                user=user_id,
                hours=row.hours,
                days=row.days,
            )
            view = self._view(user_id, row, None, project)
            told = await self._tell(s, actor, view, "set")
        if told and self.outbox is not None:
            await self.outbox.committed()
        return view

    async def reset(self, *, actor: Actor, user_id: str, project_id: int | None) -> HoursView:
        """Back to the project's default hours (Mon–Fri)."""
        async with self.db.session() as s:
            project = await self._may_set(s, actor, user_id, project_id)
            row = await self._row(s, actor.team_id, user_id)
            if row is not None:
                await s.delete(row)
                await self.audit(
                    s, actor=actor, action="member.hours", project_id=project.id if project else None, user=user_id
                )
            member = await self.member(s, actor.team_id, user_id)
            member.working_hours = None
            s.add(member)
            view = self._view(user_id, None, None, project)
            told = await self._tell(s, actor, view, "set back")
        if told and self.outbox is not None:
            await self.outbox.committed()
        return view
