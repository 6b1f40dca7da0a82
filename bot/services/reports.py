"""Read models: a project's status and a person's App Home, each in a fixed number of queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, or_, select

from bot.db.models import (
    GitHubIssue,
    Meeting,
    MeetingAttendee,
    OutboxItem,
    PhaseRecord,
    PhaseTarget,
    Project,
    Proposal,
    Task,
)
from bot.errors import InvalidInput
from bot.outbox import undelivered
from bot.process import MEETING_KINDS, PHASE_ORDER, PHASES, GateResult, Phase, Role, evaluate_gate
from bot.services.base import Actor, ServiceBase, project_members
from bot.services.gates import gather_facts

OPEN_TASKS_SHOWN = 15
TASK_FILTERS = ("mine", "open", "all")


@dataclass(frozen=True)
class TaskLine:
    number: int
    title: str
    phase: str
    status: str
    assignee: str | None
    role: str | None
    issue_url: str | None
    sync_failing: bool
    superseded: bool = False  # closed by an iterate back to Develop


@dataclass(frozen=True)
class MeetingLine:
    id: int
    kind: str
    title: str
    starts_at: datetime
    duration_min: int
    status: str
    proposal_deadline: datetime | None
    proposals: int
    owes_proposal: bool  # for the person looking


@dataclass(frozen=True)
class PhaseProgress:
    phase: Phase
    total: int  # superseded tasks (closed by an iterate) are not counted here
    closed: int
    superseded: int = 0


@dataclass
class StatusReport:
    project: Project
    gate: GateResult
    record: PhaseRecord | None
    overrides: list[PhaseRecord]
    progress: list[PhaseProgress]
    open_tasks: list[TaskLine]
    open_total: int
    meetings: list[MeetingLine]
    members: dict[str, set[str]]
    sync_pending: int
    sync_failing: int
    failing_tasks: list[TaskLine] = field(default_factory=list)
    undelivered: list[str] = field(default_factory=list)  # Slack refused these for good (outbox), with the fix
    target_due: date | None = None  # `plan <phase> due=…` for the current phase
    overdue_days: int = 0  # days past target_due (in the project's time zone), 0 when not overdue

    @property
    def purpose(self) -> str:
        return PHASES[Phase(self.project.phase)].purpose

    @property
    def sync_paused(self) -> str | None:
        """"paused: <why> — fix: …" while a dead end in GitHub (archived, no access) holds the sync."""
        from bot.sync.engine import pause_text

        if self.project.sync_paused_reason is None:
            return None
        why, fix = pause_text(self.project.sync_paused_reason, self.project.repo or "the repository")
        return f"paused: {why} — fix: {fix}"


@dataclass
class HomeProject:
    status: StatusReport
    my_tasks: list[TaskLine]
    my_meetings: list[MeetingLine]


async def _task_lines(
    s: AsyncSession, q: object, limit: int | None, *, first_phase: str | None = None
) -> list[TaskLine]:
    stmt = q.outerjoin(GitHubIssue, col(GitHubIssue.task_id) == col(Task.id))  # type: ignore[attr-defined]
    if first_phase is not None:  # the current phase's tasks first, so a long list never hides them
        stmt = stmt.order_by(case((col(Task.phase) == first_phase, 0), else_=1))
    stmt = stmt.order_by(col(Task.number))
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = (await s.execute(stmt)).all()
    return [
        TaskLine(
            t.number,
            t.title,
            t.phase,
            t.status,
            t.assignee_user_id,
            t.role,
            url,
            bool(failures),
            t.superseded_at is not None,
        )
        for t, url, failures in rows
    ]


async def _meetings(s: AsyncSession, project_ids: list[int], now: datetime, user_id: str) -> list[MeetingLine]:
    if not project_ids:
        return []
    rows = (
        await s.execute(
            select(Meeting)
            .where(
                col(Meeting.project_id).in_(project_ids),
                col(Meeting.status).in_(("scheduled", "held")),
                Meeting.starts_at >= now - timedelta(hours=12),
            )
            .order_by(col(Meeting.starts_at))
            .limit(50)
        )
    ).scalars()
    meetings = list(rows)
    ids = [m.id for m in meetings]
    if not ids:
        return []
    counts = dict(
        (
            await s.execute(
                select(Proposal.meeting_id, func.count())
                .where(col(Proposal.meeting_id).in_(ids))
                .group_by(col(Proposal.meeting_id))
            )
        ).all()
    )
    owes = {
        mid
        for (mid,) in (
            await s.execute(
                select(MeetingAttendee.meeting_id).where(
                    col(MeetingAttendee.meeting_id).in_(ids),
                    MeetingAttendee.user_id == user_id,
                    col(MeetingAttendee.owes_proposal).is_(True),
                )
            )
        ).all()
    }
    authored = {
        mid
        for mid, author, coauthors in (
            await s.execute(
                select(Proposal.meeting_id, Proposal.author_user_id, Proposal.coauthors).where(
                    col(Proposal.meeting_id).in_(ids)
                )
            )
        ).all()
        if author == user_id or user_id in (coauthors or [])
    }
    return [
        MeetingLine(
            m.id or 0,
            m.kind,
            MEETING_KINDS[m.kind].title if m.kind in MEETING_KINDS else m.kind,
            m.starts_at,
            m.duration_min,
            m.status,
            m.proposal_deadline,
            int(counts.get(m.id or 0, 0)),
            m.id in owes and m.id not in authored,
        )
        for m in meetings
    ]


class ReportService(ServiceBase):
    async def _status(self, s: AsyncSession, actor: Actor, project: Project) -> StatusReport:
        assert project.id is not None
        pid = project.id
        gate = evaluate_gate(Phase(project.phase), await gather_facts(s, project))
        records = list(
            (
                await s.execute(select(PhaseRecord).where(PhaseRecord.project_id == pid).order_by(col(PhaseRecord.id)))
            ).scalars()
        )
        record = next((r for r in reversed(records) if r.ended_at is None), None)
        counts = (
            await s.execute(
                select(
                    Task.phase,
                    func.count().filter(col(Task.superseded_at).is_(None)),
                    func.count().filter(col(Task.status) == "closed", col(Task.superseded_at).is_(None)),
                    func.count().filter(col(Task.superseded_at).is_not(None)),
                )
                .where(Task.project_id == pid)
                .group_by(col(Task.phase))
            )
        ).all()
        by_phase = {ph: (int(total), int(closed)) for ph, total, closed, _ in counts}
        dropped = {ph: int(n) for ph, _, _, n in counts}
        progress = [
            PhaseProgress(p, *by_phase[p.value], dropped[p.value]) for p in PHASE_ORDER if p.value in by_phase
        ]
        open_q = select(Task, GitHubIssue.html_url, GitHubIssue.failures).where(
            Task.project_id == pid, Task.status == "open"
        )
        open_tasks = await _task_lines(s, open_q, OPEN_TASKS_SHOWN, first_phase=project.phase)
        failing_q = select(Task, GitHubIssue.html_url, GitHubIssue.failures).where(
            Task.project_id == pid, col(GitHubIssue.failures) > 0
        )
        failing = await _task_lines(s, failing_q, OPEN_TASKS_SHOWN)
        outbox = dict(
            (
                await s.execute(
                    select(OutboxItem.status, func.count())
                    .where(OutboxItem.project_id == pid)
                    .group_by(col(OutboxItem.status))
                )
            ).all()
        )
        target_due = (
            await s.execute(
                select(col(PhaseTarget.due)).where(PhaseTarget.project_id == pid, PhaseTarget.phase == project.phase)
            )
        ).scalar_one_or_none()
        today = self.clock.now().astimezone(ZoneInfo(project.timezone)).date()
        return StatusReport(
            project=project,
            gate=gate,
            record=record,
            overrides=[r for r in records if r.override_reason],
            progress=progress,
            open_tasks=open_tasks,
            open_total=sum(t - c for t, c in by_phase.values()),
            meetings=await _meetings(s, [pid], self.clock.now(), actor.user_id),
            members=await project_members(s, pid),
            sync_pending=int(outbox.get("pending", 0)),
            sync_failing=int(outbox.get("failing", 0)),
            failing_tasks=failing,
            undelivered=[p.line() for p in await undelivered(s, team_id=project.team_id, project_id=pid)],
            target_due=target_due,
            overdue_days=max(0, (today - target_due).days) if target_due else 0,
        )

    async def find_tasks(
        self,
        *,
        actor: Actor,
        project_id: int,
        which: str = "open",
        phase: Phase | None = None,
        role: Role | None = None,
    ) -> list[TaskLine]:
        """`task list`: open (default), all, or mine (assigned to me or to a role I hold); anyone in the workspace."""
        if which not in TASK_FILTERS:
            raise InvalidInput(f"`{which[:30]}` is not a task list: say {', '.join(TASK_FILTERS)}.", field="which")
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            q = select(Task, GitHubIssue.html_url, GitHubIssue.failures).where(Task.project_id == project_id)
            if which in ("open", "mine"):
                q = q.where(Task.status == "open")
            if which == "mine":
                my_roles = sorted(await self.roles_of(s, project, actor.user_id))
                mine = col(Task.assignee_user_id) == actor.user_id
                if my_roles:
                    mine = or_(mine, (col(Task.assignee_user_id).is_(None)) & col(Task.role).in_(my_roles))
                q = q.where(mine)
            if phase is not None:
                q = q.where(Task.phase == phase.value)
            if role is not None:
                q = q.where(Task.role == role.value)
            return await _task_lines(s, q, None, first_phase=project.phase)

    async def status(self, *, actor: Actor, project_id: int, project: Project | None = None) -> StatusReport:
        """Phase, gate checklist, overrides, progress per phase, open tasks, meetings, sync health.

        `project`: the project row the caller already resolved (the command path), so it is not loaded again."""
        async with self.db.session() as s:
            if project is None or project.id != project_id or project.team_id != actor.team_id:
                project = await self.project_by_id(s, actor, project_id)
            return await self._status(s, actor, project)

    async def home(self, *, actor: Actor, limit_projects: int = 5) -> list[HomeProject]:
        """A person's App Home: their projects with gate, their meetings (owing a proposal?) and tasks."""
        async with self.db.session() as s:
            from bot.db.models import ProjectMember

            member_of = select(ProjectMember.project_id).where(
                ProjectMember.team_id == actor.team_id, ProjectMember.user_id == actor.user_id
            )
            attending = (
                select(Meeting.project_id)
                .join(MeetingAttendee, col(MeetingAttendee.meeting_id) == col(Meeting.id))
                .where(MeetingAttendee.team_id == actor.team_id, MeetingAttendee.user_id == actor.user_id)
            )
            projects = list(
                (
                    await s.execute(
                        select(Project)
                        .where(
                            Project.team_id == actor.team_id,
                            or_(
                                Project.lead_user_id == actor.user_id,
                                col(Project.id).in_(member_of),
                                col(Project.id).in_(attending),
                            ),
                        )
                        .order_by(col(Project.id))
                        .limit(limit_projects)
                    )
                ).scalars()
            )
            result = []
            for project in projects:
                status = await self._status(s, actor, project)
                # Mine: assigned to me, or to nobody yet but to a role I hold in the project (as `task list mine`).
                roles = sorted(status.members.get(actor.user_id, set()) - {Role.LEAD.value})
                mine = col(Task.assignee_user_id) == actor.user_id
                if roles:
                    mine = or_(mine, col(Task.assignee_user_id).is_(None) & col(Task.role).in_(roles))
                mine_q = select(Task, GitHubIssue.html_url, GitHubIssue.failures).where(
                    Task.project_id == project.id, Task.status == "open", mine
                )
                my_tasks = await _task_lines(s, mine_q, 10)
                attendee_of = {
                    mid
                    for (mid,) in (
                        await s.execute(
                            select(MeetingAttendee.meeting_id).where(
                                col(MeetingAttendee.meeting_id).in_([m.id for m in status.meetings] or [-1]),
                                MeetingAttendee.user_id == actor.user_id,
                            )
                        )
                    ).all()
                }
                result.append(HomeProject(status, my_tasks, [m for m in status.meetings if m.id in attendee_of]))
            return result
