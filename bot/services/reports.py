"""Read models: a project's status and a person's App Home, each in a fixed number of queries."""

from __future__ import annotations

import json
from collections import namedtuple
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import Row, case, func
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
    ProjectMember,
    Proposal,
    Task,
    UTCDateTime,
)
from bot.errors import InvalidInput
from bot.outbox.store import problems_from, undelivered_per_project_select
from bot.process import MEETING_KINDS, PHASE_ORDER, PHASES, GateResult, Phase, Role, evaluate_gate
from bot.services.base import Actor, ServiceBase
from bot.services.gates import facts_from, gate_columns, gate_rows, project_id, project_ids, project_params
from bot.services.projects import resolve_project_row

OPEN_TASKS_SHOWN = 15
MY_TASKS_SHOWN = 10  # App Home: the person's open tasks per project
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


@dataclass(frozen=True)
class Override:
    """A gate passed by the lead's override, with the reason given."""

    phase: str
    override_by: str | None
    override_at: datetime | None
    override_reason: str


@dataclass
class StatusReport:
    project: Project
    gate: GateResult
    phase_since: datetime | None  # when the project entered its current phase
    overrides: list[Override]
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
        """ "paused: <why> — fix: …" while a dead end in GitHub (archived, no access) holds the sync."""
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


# The report's statements are built once (`cache`), with parameters: per command only the values change. Each is
# about all the projects in `pids` at once (App Home shows several), its rows tagged with their project's id.
TEAM = sa.bindparam("team", type_=sa.String())
USER = sa.bindparam("user", type_=sa.String())
ROLES: sa.BindParameter[Any] = sa.bindparam(
    "roles", expanding=True
)  # (project id, role) for each role the acting person holds in a project (not lead)
SINCE = sa.bindparam("since", type_=UTCDateTime())
COAUTHOR = sa.bindparam("coauthor", type_=sa.String())  # the person's quoted id, LIKE-escaped: in a coauthors list


def _first_tasks(kind: str, i: int, where: Any, limit: int, *, failing: bool = False) -> Any:
    """The first `limit` tasks by number of the i-th project matching `where`, with their issue's url and failures,
    as one branch of the report's task UNION. An ORDER BY … LIMIT per project reads only those rows through an index
    (a window over all the project's tasks read every one); `failing` starts from the failing issues instead."""
    issues: Any = GitHubIssue.__table__  # type: ignore[attr-defined]
    tasks: Any = Task.__table__  # type: ignore[attr-defined]
    source = (
        sa.join(issues, tasks, col(Task.id) == col(GitHubIssue.task_id))
        if failing
        else tasks.outerjoin(issues, col(GitHubIssue.task_id) == col(Task.id))
    )
    owner = col(GitHubIssue.project_id) if failing else col(Task.project_id)
    first = (
        sa.select(
            sa.literal_column(f"'{kind}'").label("kind"),
            col(Task.number).label("number"),
            col(Task.title).label("title"),
            col(Task.phase).label("phase"),
            col(Task.status).label("status"),
            col(Task.assignee_user_id).label("assignee"),
            col(Task.role).label("role"),
            col(GitHubIssue.html_url).label("url"),
            col(GitHubIssue.failures).label("failures"),
            col(Task.superseded_at).label("superseded_at"),
            sa.cast(sa.null(), sa.Integer()).label("total"),  # typed NULLs: PostgreSQL types a UNION by its first rows
            sa.cast(sa.null(), sa.Integer()).label("closed"),
            sa.cast(sa.null(), sa.Integer()).label("dropped"),
            col(Task.project_id).label("pid"),
        )
        .select_from(source)
        .where(owner == project_id(i), where)
        .order_by(col(Task.number))
        .limit(limit)
        .subquery()
    )
    return sa.select(first)  # a UNION member may not have its own ORDER BY … LIMIT (SQLite): a subquery may


def _count_branch(projects: int) -> Any:
    """Tasks per project and phase (counted, superseded apart) as the task UNION's `count` rows."""
    nulls = [sa.null()] * 6
    return (
        sa.select(
            sa.literal_column("'count'"),
            sa.null(),
            sa.null(),
            col(Task.phase),
            *nulls,
            func.count().filter(col(Task.superseded_at).is_(None)),
            func.count().filter(col(Task.status) == "closed", col(Task.superseded_at).is_(None)),
            func.count().filter(col(Task.superseded_at).is_not(None)),
            col(Task.project_id),
        )
        .where(col(Task.project_id).in_(project_ids(projects)))
        .group_by(col(Task.project_id), col(Task.phase))
    )


@cache
def _tasks(home: bool, projects: int) -> Any:
    """For each of `projects` projects: its first open tasks of each phase (one index range each, read in order and
    left early; the report shows the current phase's first, so a long list never hides them), its failing tasks,
    and for App Home the acting person's open tasks (assigned to them, or to nobody yet but to a role they hold in
    that project, as `task list mine`); the counts per phase of all of them. One UNION ALL, its shape fixed by
    `projects`."""
    is_open = col(Task.status) == "open"
    branches: list[Any] = []
    for i in range(projects):
        branches += [
            _first_tasks("open", i, sa.and_(is_open, col(Task.phase) == phase.value), OPEN_TASKS_SHOWN)
            for phase in PHASE_ORDER
        ]
        branches.append(_first_tasks("failing", i, col(GitHubIssue.failures) > 0, OPEN_TASKS_SHOWN, failing=True))
        if home:
            mine = or_(
                col(Task.assignee_user_id) == USER,
                col(Task.assignee_user_id).is_(None) & sa.tuple_(col(Task.project_id), col(Task.role)).in_(ROLES),
            )
            branches.append(_first_tasks("mine", i, sa.and_(is_open, mine), MY_TASKS_SHOWN))
    return sa.union_all(*branches, _count_branch(projects))


def _line(r: Any) -> TaskLine:
    return TaskLine(
        r.number,
        r.title,
        r.phase,
        r.status,
        r.assignee,
        r.role,
        r.url,
        bool(r.failures),
        r.superseded_at is not None,
    )


@cache
def _fact_columns() -> tuple[Any, ...]:
    """Per project, correlated to its `projects` row: the gates' facts, the GitHub sync's pending and failing items,
    the current phase's target date and since when the project is in it (a command's project lookup reads them in
    its own statement: `resolve_project_row`)."""
    pending, failing = (
        sa.select(func.count())
        .where(col(OutboxItem.project_id) == col(Project.id), col(OutboxItem.status) == status)
        .scalar_subquery()
        for status in ("pending", "failing")
    )
    due = sa.select(col(PhaseTarget.due)).where(
        col(PhaseTarget.project_id) == col(Project.id), col(PhaseTarget.phase) == col(Project.phase)
    )
    since = (
        sa.select(col(PhaseRecord.started_at))
        .where(col(PhaseRecord.project_id) == col(Project.id), col(PhaseRecord.ended_at).is_(None))
        .order_by(col(PhaseRecord.id).desc())
        .limit(1)
    )
    return (
        col(Project.id).label("pid"),
        *gate_columns(per_project=True),
        pending.label("sync_pending"),
        failing.label("sync_failing"),
        due.scalar_subquery().label("target_due"),
        since.scalar_subquery().label("phase_since"),
    )


@cache
def _facts(projects: int) -> Any:
    """`_fact_columns` of `projects` projects already loaded: one SELECT FROM projects."""
    return sa.select(*_fact_columns()).where(col(Project.id).in_(project_ids(projects)))


@cache
def _project_rows(projects: int) -> Any:
    """Gate lists, members, gate overrides and undelivered messages of the projects: one UNION ALL (see
    gates.gate_rows)."""
    members: Any = sa.select(
        sa.literal_column("'member'"),
        col(ProjectMember.id),
        col(ProjectMember.user_id),
        sa.cast(col(ProjectMember.roles), sa.String()),
        *[sa.null()] * 4,
        col(ProjectMember.project_id),
    ).where(col(ProjectMember.project_id).in_(project_ids(projects)))
    overrides: Any = sa.select(
        sa.literal_column("'override'"),
        col(PhaseRecord.id),
        col(PhaseRecord.phase),
        col(PhaseRecord.override_by),
        col(PhaseRecord.override_reason),
        sa.null(),
        sa.null(),
        col(PhaseRecord.override_at),
        col(PhaseRecord.project_id),
    ).where(col(PhaseRecord.project_id).in_(project_ids(projects)), col(PhaseRecord.override_reason).is_not(None))
    failed = undelivered_per_project_select(team_id=TEAM, project_ids=project_ids(projects)).subquery()
    problems = sa.select(
        sa.literal_column("'undelivered'"),
        failed.c.id,
        failed.c.kind,
        failed.c.target,
        failed.c.last_error,
        sa.null(),
        sa.null(),
        func.coalesce(failed.c.done_at, failed.c.created_at),
        failed.c.project_id,
    )
    return sa.union_all(*gate_rows(projects), members, overrides, problems)


MEETINGS_SHOWN = 50  # per project, from 12 hours ago


def _upcoming(i: int) -> Any:
    """The i-th project's first upcoming meetings (from 12 h ago) by start, with their proposal count, and for the
    person looking: attending, owing a proposal (an attendee who owes one), wrote or co-wrote one. ORDER BY … LIMIT
    over the project's meetings by start (an index range, left early); the subqueries run for those rows only."""
    me = col(MeetingAttendee.user_id) == USER
    here = col(MeetingAttendee.meeting_id) == col(Meeting.id)
    wrote = or_(
        col(Proposal.author_user_id) == USER,
        # '%' || ? || '%', not a bound pattern: SQLite re-prepares a statement on every run whose LIKE pattern is a
        # bare parameter (to try its LIKE optimization with each value)
        sa.cast(col(Proposal.coauthors), sa.String()).like(
            sa.literal_column("'%'") + COAUTHOR + sa.literal_column("'%'"), escape="\\"
        ),
    )
    first = (
        sa.select(
            col(Meeting.id),
            col(Meeting.project_id),
            col(Meeting.kind),
            col(Meeting.starts_at),
            col(Meeting.duration_min),
            col(Meeting.status),
            col(Meeting.proposal_deadline),
            sa.select(func.count())
            .where(col(Proposal.meeting_id) == col(Meeting.id))
            .scalar_subquery()
            .label("proposals"),
            sa.select(col(MeetingAttendee.id)).where(here, me).exists().label("attending"),
            sa.select(col(MeetingAttendee.id))
            .where(here, me, col(MeetingAttendee.owes_proposal).is_(True))
            .exists()
            .label("owes"),
            sa.select(col(Proposal.id))
            .where(col(Proposal.meeting_id) == col(Meeting.id), wrote)
            .exists()
            .label("wrote"),
        )
        .where(
            col(Meeting.project_id) == project_id(i),
            or_(col(Meeting.status) == "scheduled", col(Meeting.status) == "held"),
            col(Meeting.starts_at) >= SINCE,
        )
        .order_by(col(Meeting.starts_at), col(Meeting.id))
        .limit(MEETINGS_SHOWN)
        .subquery()
    )
    return sa.select(first)


@cache
def _meetings_select(projects: int) -> Any:
    """Upcoming meetings of each of `projects` projects (see `_upcoming`): one statement, ordered by start."""
    if projects == 1:
        return _upcoming(0)
    union = sa.union_all(*(_upcoming(i) for i in range(projects))).subquery()
    return sa.select(union).order_by(union.c.starts_at, union.c.id)


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def _meetings(
    s: AsyncSession, params: dict[str, Any], projects: int
) -> dict[int, list[tuple[MeetingLine, bool]]]:
    """Upcoming meetings of each project, each with whether the person looking attends it: one query."""
    rows = await _records(s, _meetings_select(projects), params)
    by_project: dict[int, list[tuple[MeetingLine, bool]]] = {}
    for m in rows:
        line = MeetingLine(
            m.id or 0,
            m.kind,
            MEETING_KINDS[m.kind].title if m.kind in MEETING_KINDS else m.kind,
            m.starts_at,
            m.duration_min,
            m.status,
            m.proposal_deadline,
            int(m.proposals or 0),
            bool(m.owes) and not m.wrote,
        )
        by_project.setdefault(m.project_id, []).append((line, bool(m.attending)))
    return by_project


@cache
def _record_type(keys: tuple[str, ...]) -> Any:
    return namedtuple("Record", keys, rename=True)  # the keys are the result's, known only when it is read


async def _records(s: AsyncSession, statement: Any, params: dict[str, Any]) -> list[Any]:
    """A report statement's rows as plain named tuples, read once. A SQLAlchemy Row answers `row.name` only after a
    normal attribute lookup has failed (an AttributeError raised and dropped on every access), and a report reads
    its rows' fields many times."""
    result = await s.execute(statement, params)
    record = _record_type(tuple(result.keys()))
    return [record._make(row) for row in result]


def _record(row: Row[Any]) -> Any:
    """A row read by the project lookup as a named tuple (see `_records`)."""
    return _record_type(tuple(row._fields))._make(row)


def _grouped(rows: Iterable[Any]) -> dict[int, list[Any]]:
    """Rows by project id, `pid` (their order kept)."""
    by_project: dict[int, list[Any]] = {}
    for r in rows:
        by_project.setdefault(r.pid, []).append(r)
    return by_project


@cache
def _home_projects() -> Any:
    """The first projects (by id) a person leads, has a role in or attends a meeting of, with their facts."""
    member_of = select(ProjectMember.project_id).where(
        col(ProjectMember.team_id) == TEAM, col(ProjectMember.user_id) == USER
    )
    attending = (
        select(Meeting.project_id)
        .join(MeetingAttendee, col(MeetingAttendee.meeting_id) == col(Meeting.id))
        .where(col(MeetingAttendee.team_id) == TEAM, col(MeetingAttendee.user_id) == USER)
    )
    mine = or_(col(Project.lead_user_id) == USER, col(Project.id).in_(member_of), col(Project.id).in_(attending))
    return (
        select(Project, *_fact_columns())
        .where(col(Project.team_id) == TEAM, mine)
        .order_by(col(Project.id))
        .limit(sa.bindparam("limit", type_=sa.Integer()))
    )


class ReportService(ServiceBase):
    async def _statuses(
        self,
        s: AsyncSession,
        actor: Actor,
        projects: list[Project],
        *,
        home: bool = False,
        facts: dict[int, Any] | None = None,
    ) -> list[tuple[StatusReport, list[TaskLine], set[int]]]:
        """The status reports of `projects` in three queries whatever their number and size, four without `facts`
        (the projects' `_fact_columns`, when their lookup read them); with `home`, also the acting person's open
        tasks and the meetings they attend (no extra query)."""
        if not projects:
            return []
        now = self.clock.now()
        params: dict[str, Any] = {
            **project_params(p.id for p in projects),
            "team": actor.team_id,
            "user": actor.user_id,
            "since": now - timedelta(hours=12),
            "coauthor": f'"{_like_literal(actor.user_id)}"',
        }
        n = len(projects)
        if facts is None:
            facts = {r.pid: r for r in await _records(s, _facts(n), params)}
        rows = _grouped(await _records(s, _project_rows(n), params))
        members: dict[int, dict[str, set[str]]] = {
            pid: {r.a: set(json.loads(r.b) if isinstance(r.b, str) else r.b or []) for r in mine if r.kind == "member"}
            for pid, mine in rows.items()
        }
        params["roles"] = [
            (pid, role)
            for pid, people in members.items()
            for role in sorted(people.get(actor.user_id, set()) - {Role.LEAD.value})
        ]
        tasks = _grouped(await _records(s, _tasks(home, n), params))
        meetings = await _meetings(s, params, n)
        return [
            self._report(project, now, facts[project.id], rows, members, tasks, meetings)
            for project in projects
            if project.id is not None
        ]

    @staticmethod
    def _report(
        project: Project,
        now: datetime,
        facts: Any,
        all_rows: dict[int, list[Any]],
        all_members: dict[int, dict[str, set[str]]],
        all_tasks: dict[int, list[Any]],
        all_meetings: dict[int, list[tuple[MeetingLine, bool]]],
    ) -> tuple[StatusReport, list[TaskLine], set[int]]:
        """One project's report from the rows of all the projects' queries."""
        assert project.id is not None
        rows = all_rows.get(project.id, [])
        tasks = all_tasks.get(project.id, [])
        meetings = all_meetings.get(project.id, [])
        gate = evaluate_gate(Phase(project.phase), facts_from(facts, rows))
        problems = problems_from(
            (r.id, r.a, r.b, r.c, r.at)
            for r in sorted((r for r in rows if r.kind == "undelivered"), key=lambda r: -r.id)
        )
        by_phase = {r.phase: (int(r.total), int(r.closed)) for r in tasks if r.kind == "count"}
        dropped = {r.phase: int(r.dropped) for r in tasks if r.kind == "count"}
        progress = [PhaseProgress(p, *by_phase[p.value], dropped[p.value]) for p in PHASE_ORDER if p.value in by_phase]

        def lines(kind: str, key: Callable[[Any], Any] = lambda r: r.number) -> list[TaskLine]:
            return [_line(r) for r in sorted((r for r in tasks if r.kind == kind), key=key)]

        target_due = facts.target_due
        today = now.astimezone(ZoneInfo(project.timezone)).date()
        report = StatusReport(
            project=project,
            gate=gate,
            phase_since=facts.phase_since,
            overrides=[
                Override(r.a, r.b, r.at, r.c)
                for r in sorted((r for r in rows if r.kind == "override"), key=lambda r: r.id)
            ],
            progress=progress,
            open_tasks=lines("open", lambda r: (r.phase != project.phase, r.number))[:OPEN_TASKS_SHOWN],
            open_total=sum(t - c for t, c in by_phase.values()),
            meetings=[m for m, _ in meetings],
            members=all_members.get(project.id, {}),
            sync_pending=int(facts.sync_pending or 0),
            sync_failing=int(facts.sync_failing or 0),
            failing_tasks=lines("failing"),
            undelivered=[p.line() for p in problems],
            target_due=target_due,
            overdue_days=max(0, (today - target_due).days) if target_due else 0,
        )
        return report, lines("mine"), {m.id for m, attending in meetings if attending}

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
            return (await self._statuses(s, actor, [project]))[0][0]

    async def status_here(self, *, actor: Actor, channel_id: str | None, name: str | None = None) -> StatusReport:
        """`status`: the project the command is about (as `ProjectService.resolve`, its facts in the same statement)
        and its report, in one session and one transaction."""
        async with self.db.session() as s:
            project, row = await resolve_project_row(
                s, actor=actor, channel_id=channel_id, name=name, columns=_fact_columns()
            )
            facts = _record(row)
            return (await self._statuses(s, actor, [project], facts={facts.pid: facts}))[0][0]

    async def home(self, *, actor: Actor, limit_projects: int = 5) -> list[HomeProject]:
        """A person's App Home: their projects with gate, their meetings (owing a proposal?) and tasks; the projects
        and their facts in one query, their reports in three more however many they are (each over all of them)."""
        async with self.db.session() as s:
            params = {"team": actor.team_id, "user": actor.user_id, "limit": limit_projects}
            rows = await _records(s, _home_projects(), params)
            projects = [r.Project for r in rows]
            facts = {r.pid: r for r in rows}
            return [
                HomeProject(status, my_tasks, [m for m in status.meetings if m.id in attends])
                for status, my_tasks, attends in await self._statuses(s, actor, projects, home=True, facts=facts)
            ]
