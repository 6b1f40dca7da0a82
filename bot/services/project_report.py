"""The project on one page: a typed report built from the database, rendered as markdown, JSON, HTML or audit CSV."""

from __future__ import annotations

import csv
import io
import json
import re
import shlex
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.db.models import (
    AuditEntry,
    Baseline,
    Brief,
    Decision,
    Evaluation,
    GitHubIssue,
    Meeting,
    Member,
    PhaseRecord,
    Project,
    ProjectMember,
    SuccessCriterion,
    Task,
)
from bot.db.session import Database
from bot.errors import InvalidInput, NotFound
from bot.paths import TEMPLATES
from bot.process import MEETING_KINDS
from bot.services.audit import in_kind, parse_kind, parse_who
from bot.services.base import Actor, ServiceBase
from bot.services.proposals import candidates

SCHEMA_VERSION = 1
Format = Literal["md", "json", "html"]
FORMATS: tuple[Format, ...] = ("md", "json", "html")


@dataclass(frozen=True)
class PersonRef:
    user_id: str
    name: str  # display name from the workspace's member records, else the id


@dataclass(frozen=True)
class ProjectInfo:
    id: int
    name: str
    repo: str | None
    channel_id: str
    lead: PersonRef
    phase: str
    phase_label: str
    iteration: int
    timezone: str
    created_at: datetime


@dataclass(frozen=True)
class MemberLine:
    person: PersonRef
    roles: list[str]


@dataclass(frozen=True)
class EvaluationLine:
    iteration: int
    metric: str
    value: float
    real_check: str
    recorded_by: PersonRef
    recorded_at: datetime


@dataclass(frozen=True)
class CriterionResult:
    iteration: int
    value: float
    met: bool | None  # None when the target is not a number we can compare with
    recorded_at: datetime


@dataclass(frozen=True)
class CriterionLine:
    metric: str
    comparator: str
    target: str
    real_check: str
    results: list[CriterionResult]  # evaluations of this metric, oldest first


@dataclass(frozen=True)
class BaselineLine:
    metric: str
    value: float
    pipeline_url: str | None
    recorded_by: PersonRef
    recorded_at: datetime


@dataclass(frozen=True)
class BriefInfo:
    problem: str
    acknowledged_by: PersonRef | None
    acknowledged_at: datetime | None
    updated_by: PersonRef
    updated_at: datetime


@dataclass(frozen=True)
class OverrideLine:
    reason: str
    by: PersonRef | None
    at: datetime | None


@dataclass(frozen=True)
class PhaseLine:
    phase: str
    label: str
    iteration: int
    started_at: datetime
    target_date: date | None
    ended_at: datetime | None
    outcome: str | None
    override: OverrideLine | None


@dataclass(frozen=True)
class ReferenceLine:
    kind: str
    value: str
    url: str


@dataclass(frozen=True)
class ProposalLine:
    rank: int
    id: int
    title: str
    approach: str
    authors: list[PersonRef]
    references: list[ReferenceLine]
    why: str
    benefit: int
    cost_days: float
    risk: int
    compute: str
    score: float
    late: bool
    carried: bool
    chosen: bool


@dataclass(frozen=True)
class DecisionLine:
    meeting_id: int
    meeting_title: str
    iteration: int
    meeting_starts_at: datetime
    ready: bool
    decided_by: PersonRef
    decided_at: datetime
    chosen_proposal_id: int
    rationale: str
    runner_up_ids: list[int]
    proposals: list[ProposalLine]  # ranked


@dataclass(frozen=True)
class IssueLine:
    number: int | None
    url: str | None
    state: str


@dataclass(frozen=True)
class TaskLine:
    number: int
    title: str
    phase: str
    iteration: int
    status: str
    origin: str
    role: str | None
    assignee: PersonRef | None
    decision_meeting_id: int | None
    issue: IssueLine | None


@dataclass(frozen=True)
class AuditLine:
    at: datetime
    who: PersonRef
    action: str
    detail: dict[str, Any]  # user ids in it are replaced by names


@dataclass(frozen=True)
class ProjectReport:
    generated_at: datetime
    project: ProjectInfo
    members: list[MemberLine]
    brief: BriefInfo | None
    criteria: list[CriterionLine]
    baselines: list[BaselineLine]
    evaluations: list[EvaluationLine]
    phases: list[PhaseLine]
    decisions: list[DecisionLine]
    tasks: list[TaskLine]
    audit: list[AuditLine]
    schema_version: int = field(default=SCHEMA_VERSION)

    def to_json_dict(self) -> dict[str, Any]:
        """The documented shape (docs/report.schema.json): datetimes as ISO 8601 UTC, dates as YYYY-MM-DD."""
        converted: dict[str, Any] = _jsonable(asdict(self))
        return converted


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


_NUMBER_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(%?)\s*$")


def criterion_met(comparator: str, target: str, value: float) -> bool | None:
    """Whether `value` meets `comparator target` (a percentage target accepts 0.17 or 17); None if not comparable."""
    m = _NUMBER_RE.match(target)
    if m is None:
        return None
    goal = float(m[1])
    if m[2] == "%" and abs(value) <= 1:
        goal /= 100
    ops = {
        "<": value < goal,
        "<=": value <= goal,
        "≤": value <= goal,
        ">": value > goal,
        ">=": value >= goal,
        "≥": value >= goal,
        "=": value == goal,
        "==": value == goal,
    }
    return ops.get(comparator)


def _norm(metric: str) -> str:
    return re.sub(r"[^a-z0-9%]+", " ", metric.lower()).strip()


class ProjectReportService(ServiceBase):
    async def build(self, *, actor: Actor, project_id: int) -> ProjectReport:
        """Everything about one project a lead would show a business owner (a few queries, two per decision)."""
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            return await build_report(s, project, now=self.clock.now())


async def find_project(s: AsyncSession, name: str) -> Project:
    """A project by name for the command line (`TEAM/name` when several workspaces use the same name)."""
    team, _, bare = name.rpartition("/")
    q = select(Project).where(Project.name == bare)
    if team:
        q = q.where(Project.team_id == team)
    found = list((await s.execute(q.order_by(col(Project.id)))).scalars())
    if not found:
        raise NotFound(f"There is no project named {name}. Project names are the ones given to `init`.")
    if len(found) > 1:
        raise InvalidInput(
            f"Several workspaces have a project named {bare}: name one as "
            + " or ".join(f"{p.team_id}/{p.name}" for p in found)
            + "."
        )
    return found[0]


async def build_report(s: AsyncSession, project: Project, *, now: datetime) -> ProjectReport:
    assert project.id is not None
    pid = project.id
    members = {
        m.user_id: m for m in (await s.execute(select(Member).where(Member.team_id == project.team_id))).scalars()
    }

    def who(user_id: str) -> PersonRef:
        m = members.get(user_id)
        return PersonRef(user_id, (m.display_name if m and m.display_name else user_id))

    def maybe(user_id: str | None) -> PersonRef | None:
        return who(user_id) if user_id else None

    roles = list(
        (
            await s.execute(
                select(ProjectMember).where(ProjectMember.project_id == pid).order_by(col(ProjectMember.id))
            )
        ).scalars()
    )
    member_lines = [MemberLine(who(project.lead_user_id), ["lead"])] + [
        MemberLine(who(r.user_id), sorted(r.roles)) for r in roles if r.user_id != project.lead_user_id
    ]
    brief_row = (await s.execute(select(Brief).where(Brief.project_id == pid))).scalar_one_or_none()
    brief = (
        BriefInfo(
            brief_row.problem,
            maybe(brief_row.acknowledged_by),
            brief_row.acknowledged_at,
            who(brief_row.updated_by),
            brief_row.updated_at,
        )
        if brief_row
        else None
    )
    evaluations = [
        EvaluationLine(e.iteration, e.metric, e.value, e.real_check, who(e.recorded_by), e.recorded_at)
        for e in (
            await s.execute(select(Evaluation).where(Evaluation.project_id == pid).order_by(col(Evaluation.id)))
        ).scalars()
    ]
    criteria = [
        CriterionLine(
            c.metric,
            c.comparator,
            c.target,
            c.real_check,
            [
                CriterionResult(e.iteration, e.value, criterion_met(c.comparator, c.target, e.value), e.recorded_at)
                for e in evaluations
                if _norm(e.metric) == _norm(c.metric)
            ],
        )
        for c in (
            await s.execute(
                select(SuccessCriterion).where(SuccessCriterion.project_id == pid).order_by(col(SuccessCriterion.id))
            )
        ).scalars()
    ]
    baselines = [
        BaselineLine(b.metric, b.value, b.pipeline_url, who(b.recorded_by), b.recorded_at)
        for b in (
            await s.execute(select(Baseline).where(Baseline.project_id == pid).order_by(col(Baseline.id)))
        ).scalars()
    ]
    phases = [
        PhaseLine(
            r.phase,
            r.phase.capitalize(),
            r.iteration,
            r.started_at,
            r.target_date,
            r.ended_at,
            r.outcome,
            OverrideLine(r.override_reason, maybe(r.override_by), r.override_at) if r.override_reason else None,
        )
        for r in (
            await s.execute(select(PhaseRecord).where(PhaseRecord.project_id == pid).order_by(col(PhaseRecord.id)))
        ).scalars()
    ]
    decisions: list[DecisionLine] = []
    rows = (
        await s.execute(
            select(Decision, Meeting)
            .join(Meeting, col(Meeting.id) == col(Decision.meeting_id))
            .where(Decision.project_id == pid)
            .order_by(col(Decision.id))
        )
    ).all()
    for d, meeting in rows:
        ranked = (await candidates(s, meeting)).ranked
        decisions.append(
            DecisionLine(
                meeting_id=meeting.id or 0,
                meeting_title=MEETING_KINDS[meeting.kind].title if meeting.kind in MEETING_KINDS else meeting.kind,
                iteration=meeting.iteration,
                meeting_starts_at=meeting.starts_at,
                ready=d.ready,
                decided_by=who(d.decided_by),
                decided_at=d.decided_at,
                chosen_proposal_id=d.proposal_id,
                rationale=d.rationale,
                runner_up_ids=[int(i) for i in d.runner_up_ids],
                proposals=[
                    ProposalLine(
                        rank=i,
                        id=p.id,
                        title=p.title,
                        approach=p.approach,
                        authors=[who(a) for a in p.authors],
                        references=[ReferenceLine(r.kind, r.value, r.url) for r in p.references],
                        why=p.why,
                        benefit=p.benefit,
                        cost_days=p.cost_days,
                        risk=p.risk,
                        compute=p.compute,
                        score=p.score,
                        late=p.late,
                        carried=p.carried,
                        chosen=p.id == d.proposal_id,
                    )
                    for i, p in enumerate(ranked, start=1)
                ],
            )
        )
    meeting_of_decision = {d.id: m.id for d, m in rows}
    tasks = [
        TaskLine(
            number=t.number,
            title=t.title,
            phase=t.phase,
            iteration=t.iteration,
            status=t.status,
            origin=t.origin,
            role=t.role,
            assignee=maybe(t.assignee_user_id),
            decision_meeting_id=meeting_of_decision.get(t.decision_id) if t.decision_id else None,
            issue=IssueLine(issue.number, issue.html_url, issue.state) if issue is not None else None,
        )
        for t, issue in (
            await s.execute(
                select(Task, GitHubIssue)
                .outerjoin(GitHubIssue, col(GitHubIssue.task_id) == col(Task.id))
                .where(Task.project_id == pid)
                .order_by(col(Task.number))
            )
        ).all()
    ]

    def named(value: Any) -> Any:
        if isinstance(value, str) and value in members:
            return who(value).name
        if isinstance(value, list):
            return [named(v) for v in value]
        return value

    audit = [
        AuditLine(a.at, who(a.actor), a.action, {k: named(v) for k, v in a.detail.items()})
        for a in (
            await s.execute(select(AuditEntry).where(AuditEntry.project_id == pid).order_by(col(AuditEntry.id)))
        ).scalars()
    ]
    return ProjectReport(
        generated_at=now,
        project=ProjectInfo(
            id=pid,
            name=project.name,
            repo=project.repo,
            channel_id=project.channel_id,
            lead=who(project.lead_user_id),
            phase=project.phase,
            phase_label=project.phase.capitalize(),
            iteration=project.iteration,
            timezone=project.timezone,
            created_at=project.created_at,
        ),
        members=member_lines,
        brief=brief,
        criteria=criteria,
        baselines=baselines,
        evaluations=evaluations,
        phases=phases,
        decisions=decisions,
        tasks=tasks,
        audit=audit,
    )


# --- renderers ----------------------------------------------------------------------------------


def _when(value: datetime | date | None, tz: str = "UTC") -> str:
    """A time in the project's zone (with its abbreviation), a date as YYYY-MM-DD, nothing as a dash."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        return value.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
    return value.isoformat()


def _num(value: float) -> str:
    return f"{value:g}"


def _detail(detail: dict[str, Any]) -> str:
    return "; ".join(f"{k}={', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in detail.items())


def _md_cell(value: object) -> str:
    """Markdown table cell: no line breaks, pipes escaped."""
    return " ".join(str(value if value is not None else "").split()).replace("|", "\\|")


def _href(url: str | None) -> str:
    """Only web links become links (defence in depth: stored URLs are checked when recorded)."""
    return url if url and re.match(r"^https?://", url, re.IGNORECASE) else "#"


def _csv_cell(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (text starting with = + - @ gets a leading quote)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False, default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(when=_when, num=_num, detail=_detail, cell=_md_cell, href=_href)
    return env


@dataclass(frozen=True)
class InlineChart:
    alt: str
    data_uri: str  # data:image/png;base64,… — the HTML report stays one self-contained file


@dataclass(frozen=True)
class ReportCharts:
    timeline: InlineChart | None
    decisions: dict[int, InlineChart]  # each decision's proposals, by meeting id


async def report_charts(report: ProjectReport) -> ReportCharts:
    """The phase timeline and each decision's proposals chart, drawn off the event loop, as data URIs."""
    import base64

    from bot.charts import (
        Chart,
        PhaseSpan,
        ProposalPoint,
        ProposalsInput,
        TimelineInput,
        proposals_chart,
        render_off_loop,
        timeline_chart,
    )

    def inline(chart: Chart) -> InlineChart:
        return InlineChart(chart.alt, "data:image/png;base64," + base64.b64encode(chart.png).decode("ascii"))

    timeline = None
    if report.phases:
        spans = [
            PhaseSpan(
                p.label + (f" (iter. {p.iteration})" if p.iteration else ""),
                p.started_at.date(),
                p.ended_at.date() if p.ended_at else None,
                p.target_date,
            )
            for p in report.phases
        ]
        timeline = inline(
            await render_off_loop(timeline_chart, TimelineInput(report.project.name, spans, report.generated_at.date()))
        )
    decisions = {}
    for d in report.decisions:
        points = [ProposalPoint(p.rank, p.title, p.benefit, p.cost_days, p.risk) for p in d.proposals]
        title = f"{d.meeting_title} #{d.meeting_id}"
        decisions[d.meeting_id] = inline(await render_off_loop(proposals_chart, ProposalsInput(title, points)))
    return ReportCharts(timeline, decisions)


def render_markdown(report: ProjectReport) -> str:
    return _environment().get_template("report/project_report.md.j2").render(r=report)


def render_html(report: ProjectReport, charts: ReportCharts | None = None) -> str:
    """One self-contained page; with `charts` (report_charts), the timeline and proposals charts inline."""
    return _environment().get_template("report/project_report.html.j2").render(r=report, charts=charts)


def render_json(report: ProjectReport) -> str:
    return json.dumps(report.to_json_dict(), indent=2, ensure_ascii=False) + "\n"


def render(report: ProjectReport, fmt: str) -> str:
    if fmt == "md":
        return render_markdown(report)
    if fmt == "json":
        return render_json(report)
    if fmt == "html":
        return render_html(report)
    raise InvalidInput(f"`{fmt}` is not a report format: use md, json or html.")


AUDIT_CSV_COLUMNS = ("at_utc", "project", "who", "action", "detail")


def render_audit_csv(report: ProjectReport, *, who: str | None = None, kind: str | None = None) -> str:
    """The audit trail as CSV, oldest first, with names instead of user ids; optionally only what one person
    did (`who`, a user id or `phasegate`) and of one kind (`kind`, one of bot.services.audit.KINDS)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(AUDIT_CSV_COLUMNS)
    for a in report.audit:
        if (who is not None and a.who.user_id != who) or (kind is not None and not in_kind(a.action, kind)):
            continue
        writer.writerow(
            [_jsonable(a.at), *map(_csv_cell, (report.project.name, a.who.name, a.action, _detail(a.detail)))]
        )
    return out.getvalue()


async def cli_report(
    database_url: str,
    project_name: str,
    *,
    fmt: str,
    audit_csv: bool = False,
    who: str | None = None,
    kind: str | None = None,
) -> str:
    """`phasegate report` / `phasegate audit export [--who NAME] [--kind KIND]`: the rendered text (raises
    NotFound/InvalidInput). `who` and `kind` are read as the Slack `audit` reads them, a person by name here."""
    from bot.clock import SystemClock

    if not audit_csv and fmt not in FORMATS:
        raise InvalidInput(f"`{fmt}` is not a report format: use --format md, json or html.")

    def spell(option: str, value: str) -> str:
        return f"phasegate audit export {project_name} --{option} {shlex.quote(value)}"

    kind = parse_kind(kind, spell=spell) if kind is not None else None
    db = Database(database_url)
    try:
        async with db.session() as s:
            project = await find_project(s, project_name)
            if who is not None:
                names = {
                    m.user_id: m.display_name or ""
                    for m in (await s.execute(select(Member).where(Member.team_id == project.team_id))).scalars()
                }
                who = parse_who(who, names=names, spell=spell)
            report = await build_report(s, project, now=SystemClock().now())
    finally:
        await db.dispose()
    if audit_csv:
        return render_audit_csv(report, who=who, kind=kind)
    if fmt == "html":
        return render_html(report, await report_charts(report))
    return render(report, fmt)


async def write_report_files(db: Database, *, project_name: str, directory: Path, now: datetime) -> list[Path]:
    """The markdown and HTML report of one project written into `directory` (the demo ends with these)."""
    async with db.session() as s:
        report = await build_report(s, await find_project(s, project_name), now=now)
    paths = []
    charts = await report_charts(report)
    for fmt in ("md", "html"):
        path = directory / f"{report.project.name}-report.{fmt}"
        path.write_text(render_html(report, charts) if fmt == "html" else render(report, fmt), encoding="utf-8")
        paths.append(path)
    return paths
