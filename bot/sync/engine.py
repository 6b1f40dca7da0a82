"""Plan and apply a project's GitHub side (labels, a milestone per phase, an issue per task), exactly once."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.clock import Clock
from bot.db.models import (
    Decision,
    GitHubIssue,
    GitHubMilestone,
    Member,
    OutboxItem,
    PhaseRecord,
    PhaseTarget,
    Project,
    Proposal,
    Task,
)
from bot.db.session import Database
from bot.github.gateway import (
    GhIssue,
    GhMilestone,
    GitHubError,
    GitHubGateway,
    Gone,
    NotFoundError,
    RateLimited,
    RepoLocked,
    Unprocessable,
)
from bot.github.pacing import Pacer, backoff_seconds
from bot.process import PHASE_ORDER, PHASES, Phase, Role, parse_reference
from bot.rendering import render_text

log = logging.getLogger(__name__)

# Our labels and their colours (created before any issue uses them, so GitHub never invents grey ones).
LABELS: dict[str, tuple[str, str]] = {
    "phasegate": ("5319e7", "Managed by Phasegate"),
    **{
        f"phase/{p.value}": (c, f"Phasegate phase: {p.label}")
        for p, c in zip(Phase, ("c5def5", "bfd4f2", "d4c5f9", "fef2c0", "c2e0c6"), strict=True)
    },
    **{
        f"role/{r.value}": (c, f"Phasegate role: {r.value}")
        for r, c in zip(Role, ("b60205", "fbca04", "0e8a16", "1d76db", "006b75"), strict=True)
    },
}

MARKER_RE = re.compile(r"<!-- phasegate:task=([0-9a-fA-F-]{36}) -->")


def superseded_marker(task_id: str) -> str:
    """The hidden comment in the one "superseded" comment of an issue: finds it after a lost response."""
    return f"<!-- phasegate:superseded={task_id} -->"


def marker(task_id: str) -> str:
    """The hidden comment every issue body carries: finds the issue after a crash or a lost response."""
    return f"<!-- phasegate:task={task_id} -->"


def task_id_in(body: str | None) -> str | None:
    """The task id of our marker in an issue body, if any."""
    m = MARKER_RE.search(body or "")
    return m.group(1).lower() if m else None


def milestone_title(project_name: str, phase: Phase) -> str:
    return f"{project_name} · {phase.label}"


OWN_SUFFIX = " (Phasegate)"


def milestone_marker(project_id: int | None, phase: Phase) -> str:
    """The hidden comment that says a milestone is this project's (titles alone are never trusted)."""
    return f"<!-- phasegate:project={project_id} phase={phase.value} -->"


def owns_milestone(description: str | None, project_id: int | None, phase: Phase) -> bool:
    return milestone_marker(project_id, phase) in (description or "")


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


# --------------------------------------------------------------------------- what the project wants


@dataclass(frozen=True)
class DesiredMilestone:
    phase: Phase
    title: str
    description: str
    due_on: date | None
    state: str

    def hash(self) -> str:
        return _digest([self.title, self.description, self.due_on, self.state])


@dataclass(frozen=True)
class DesiredIssue:
    task_id: str
    task_number: int
    phase: Phase
    title: str
    body: str
    state: str
    labels: tuple[str, ...]
    login: str | None  # the assignee's GitHub login when mapped (assignability is checked at write time)
    state_reason: str | None = None  # not_planned: superseded by an iterate back to Develop
    comment: str | None = None  # the one comment a superseded issue gets (with its marker), else None

    def content_hash(self, milestone: int | None) -> str:
        """Hash of what we write besides title and state (those are compared field by field)."""
        return _digest([self.body, list(self.labels), milestone, self.login])


async def desired_milestone(s: AsyncSession, project: Project, phase: Phase) -> DesiredMilestone:
    """Title, description, due date and state: closed once every record of the phase has ended."""
    records = list(
        (
            await s.execute(
                select(PhaseRecord)
                .where(PhaseRecord.project_id == project.id, PhaseRecord.phase == phase.value)
                .order_by(col(PhaseRecord.id))
            )
        ).scalars()
    )
    ended = bool(records) and all(r.ended_at is not None for r in records)
    title = milestone_title(project.name, phase)
    used = (
        await s.execute(
            select(GitHubMilestone.title).where(
                GitHubMilestone.project_id == project.id, GitHubMilestone.phase == phase.value
            )
        )
    ).scalar_one_or_none()
    if used == title + OWN_SUFFIX:  # a person's milestone has the plain title: we keep to ours
        title = used
    # The iteration shows on the phases an iterate goes round (Develop, Deliver) once there has been one.
    iteration = project.iteration + 1 if project.iteration and phase in (Phase.DEVELOP, Phase.DELIVER) else None
    text = render_text(
        "github/milestone.md.j2", spec=PHASES[phase], project_name=project.name, iteration=iteration
    ).strip()
    planned = (
        await s.execute(
            select(col(PhaseTarget.due)).where(PhaseTarget.project_id == project.id, PhaseTarget.phase == phase.value)
        )
    ).scalar_one_or_none()
    return DesiredMilestone(
        phase=phase,
        title=title,
        description=f"{text}\n\n{milestone_marker(project.id, phase)}",
        due_on=planned or (records[-1].target_date if records else None),  # `plan <phase> due=…` wins
        state="closed" if ended else "open",
    )


def _due_text(day: date | None) -> str:
    return f"due {day.isoformat()}" if day else ""


def _drifted(there: GhMilestone | None, want: DesiredMilestone) -> bool:
    """GitHub's copy of our milestone was closed, reopened or renamed by someone else."""
    return there is not None and (there.title, there.state) != (want.title, want.state)


def slack_channel_url(team_id: str, channel_id: str) -> str:
    return "https://slack.com/app_redirect?" + urlencode({"team": team_id, "channel": channel_id})


class IssueContext:
    """Loads what issue bodies need (members, decisions, proposals) once per unit of work."""

    def __init__(self, s: AsyncSession, project: Project) -> None:
        self.s = s
        self.project = project
        self._members: dict[str, Member] | None = None
        self._decisions: dict[int, tuple[Decision, Proposal | None] | None] = {}
        self._records: dict[int, PhaseRecord | None] = {}

    async def record(self, record_id: int) -> PhaseRecord | None:
        if record_id not in self._records:
            self._records[record_id] = await self.s.get(PhaseRecord, record_id)
        return self._records[record_id]

    async def member(self, user_id: str) -> Member | None:
        if self._members is None:
            rows = (await self.s.execute(select(Member).where(Member.team_id == self.project.team_id))).scalars()
            self._members = {m.user_id: m for m in rows}
        return self._members.get(user_id)

    async def decision(self, decision_id: int) -> tuple[Decision, Proposal | None] | None:
        if decision_id not in self._decisions:
            d = await self.s.get(Decision, decision_id)
            self._decisions[decision_id] = (d, await self.s.get(Proposal, d.proposal_id)) if d else None
        return self._decisions[decision_id]


def _owner_text(task: Task, member: Member | None) -> str:
    # Named as text, never as an @-mention (the template runs it through github_safe too).
    if task.assignee_user_id is None:
        return "unassigned"
    name = member.display_name if member and member.display_name else None
    login = member.github_login if member else None
    if name and login:
        return f"{name} (GitHub: {login})"
    if name:
        return f"{name} (no GitHub login linked)"
    if login:
        return f"GitHub user {login}"
    return f"Slack user {task.assignee_user_id} (no GitHub login linked)"


def _reference(text: str) -> dict[str, str | None]:
    ref = parse_reference(text)
    # Percent-encode what could end the Markdown link or read as a mention.
    url = ref.url.replace("(", "%28").replace(")", "%29").replace("@", "%40") if ref else None
    return {"text": ref.value if ref else text, "url": url}


async def desired_issue(ctx: IssueContext, task: Task) -> DesiredIssue:
    """The issue a task should have: title, body from templates/github/task_issue.md.j2, labels, state."""
    project = ctx.project
    member = await ctx.member(task.assignee_user_id) if task.assignee_user_id else None
    decision = proposal = None
    references: list[dict[str, str | None]] = []
    channel_url = slack_channel_url(project.team_id, project.channel_id) if project.channel_id else None
    slack_url = channel_url
    if task.decision_id is not None and (found := await ctx.decision(task.decision_id)):
        decision, proposal = found
        references = [_reference(r) for r in (proposal.references if proposal else [])]
        slack_url = decision.permalink or channel_url  # the decision's thread, once Slack has given its link
    phase = Phase(task.phase)
    body = render_text(
        "github/task_issue.md.j2",
        task=task,
        project=project,
        phase=phase,
        owner=_owner_text(task, member),
        decision=decision if proposal else None,
        proposal=proposal,
        references=references,
        slack_url=slack_url,
    )
    labels = ["phasegate", f"phase/{phase.value}"] + ([f"role/{task.role}"] if task.role else [])
    closed = task.status == "closed"
    comment = None
    if closed and task.superseded_at is not None:
        record = await ctx.record(task.superseded_by_record) if task.superseded_by_record else None
        comment = render_text(
            "github/superseded_comment.md.j2",
            task=task,
            project=project,
            note=task.superseded_note or "",
            iteration=(record.iteration if record else project.iteration) + 1,
            when=task.superseded_at,
            slack_url=(record.permalink if record and record.permalink else channel_url),
            marker=superseded_marker(task.id),
        ).strip() + "\n"
    return DesiredIssue(
        task_id=task.id,
        task_number=task.number,
        phase=phase,
        title=task.title,
        body=body.strip() + "\n",
        state="closed" if closed else "open",
        labels=tuple(labels),
        login=member.github_login if member and member.github_login else None,
        state_reason="not_planned" if comment else None,
        comment=comment,
    )


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class PlanStep:
    kind: str  # label | milestone | issue
    action: str  # create | adopt | update | close | reopen
    title: str
    number: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class SyncPlan:
    """What a sync would do, without doing it."""

    project: str
    repo: str | None
    preview_mode: bool
    steps: tuple[PlanStep, ...] = ()
    unchanged: int = 0

    def of(self, kind: str, action: str | None = None) -> list[PlanStep]:
        return [x for x in self.steps if x.kind == kind and (action is None or x.action == action)]

    @property
    def writes(self) -> int:
        """Content-creating requests the plan needs (at least): a closed new issue needs two, and a superseded
        close one more for its comment."""
        issues = [x.detail for x in self.steps if x.kind == "issue"]
        return len(self.steps) + sum(d.startswith("then close") for d in issues) + sum("(superseded)" in d for d in issues)


async def compute_plan(
    s: AsyncSession, project: Project, gateway: GitHubGateway | None, pacer: Pacer | None = None
) -> SyncPlan:
    """The difference between what the project wants and what GitHub has (reads only; no writes)."""
    preview = gateway is None
    if not project.repo:
        return SyncPlan(project.name, None, preview)
    steps: list[PlanStep] = []
    unchanged = 0
    existing_labels: set[str] | None = None
    existing_milestones: dict[str, GhMilestone] = {}
    if gateway is not None:
        if pacer:
            await pacer.read()
        existing_labels = {x.name.lower() for x in (await gateway.list_labels(project.repo)).value}
        if pacer:
            await pacer.read()
        existing_milestones = {m.title: m for m in (await gateway.list_milestones(project.repo)).value}
    for name in LABELS:
        if existing_labels is None or name.lower() not in existing_labels:
            steps.append(PlanStep("label", "create", name, detail="if missing" if existing_labels is None else ""))
        else:
            unchanged += 1
    rows = {
        m.phase: m
        for m in (await s.execute(select(GitHubMilestone).where(GitHubMilestone.project_id == project.id))).scalars()
    }
    by_number = {m.number: m for m in existing_milestones.values()}
    for phase in PHASE_ORDER:
        want = await desired_milestone(s, project, phase)
        row = rows.get(phase.value)
        if row is None or row.number is None:
            found = existing_milestones.get(want.title)
            ours = found is not None and owns_milestone(found.description, project.id, phase)
            steps.append(
                PlanStep(
                    "milestone",
                    "adopt" if ours else "create",
                    want.title if ours or found is None else want.title + OWN_SUFFIX,
                    found.number if ours and found else None,
                    ", ".join(
                        x
                        for x in ("closed" if want.state == "closed" else "", _due_text(want.due_on))
                        if x
                    ),
                )
            )
        elif row.synced_hash == want.hash() and not _drifted(by_number.get(row.number), want):
            unchanged += 1
        elif row.state != want.state:
            steps.append(PlanStep("milestone", "close" if want.state == "closed" else "reopen", want.title, row.number))
        else:
            steps.append(PlanStep("milestone", "update", want.title, row.number, _due_text(want.due_on)))
    ctx = IssueContext(s, project)
    issues = {
        r.task_id: r
        for r in (await s.execute(select(GitHubIssue).where(GitHubIssue.project_id == project.id))).scalars()
    }
    tasks = (await s.execute(select(Task).where(Task.project_id == project.id).order_by(col(Task.number)))).scalars()
    for task in tasks:
        want_issue = await desired_issue(ctx, task)
        row_issue = issues.get(task.id)
        label = f"#{task.number} {task.title}"
        if row_issue is None or row_issue.number is None:
            detail = "then close" if want_issue.state == "closed" else ""
            if want_issue.state_reason == "not_planned":
                detail += " as not planned (superseded)"
            steps.append(PlanStep("issue", "create", label, None, detail))
            continue
        if want_issue.comment and row_issue.superseded_comment != "done" and row_issue.state == want_issue.state:
            steps.append(PlanStep("issue", "comment", label, row_issue.number, "why it was superseded"))
            continue
        ms = rows.get(task.phase)
        same = (
            row_issue.synced_hash == want_issue.content_hash(ms.number if ms else None)
            and row_issue.title == want_issue.title
        )
        if row_issue.state != want_issue.state:
            action = "close" if want_issue.state == "closed" else "reopen"
            detail = "as not planned (superseded)" if want_issue.state_reason == "not_planned" else ""
            steps.append(PlanStep("issue", action, label, row_issue.number, detail))
        elif not same:
            steps.append(PlanStep("issue", "update", label, row_issue.number))
        else:
            unchanged += 1
    return SyncPlan(project.name, project.repo, preview, tuple(steps), unchanged)


# --------------------------------------------------------------------------- applying the outbox

PAUSE_REASONS = {
    "uninstalled": (
        "this workspace removed Phasegate from Slack, so nothing is synced to {repo}",
        "add Phasegate to Slack again (the install link of whoever runs it); the sync resumes by itself",
    ),
    "archived": (
        "GitHub says {repo} is archived, so it is read-only",
        "unarchive {repo} in GitHub (Settings → General → Danger Zone), or point the project at another "
        "repository with `{command} github repo=<owner/name>`, then run `{command} sync`",
    ),
    "no_access": (
        "the Phasegate GitHub App may not write to {repo} (\"Resource not accessible by integration\")",
        "in GitHub, give the Phasegate App access to {repo} with Issues read & write (an organization owner: "
        "Settings → GitHub Apps → Phasegate → Configure), then run `{command} sync`",
    ),
}


def pause_text(reason: str, repo: str, command: str = "/phasegate") -> tuple[str, str]:
    """Why a project's sync is paused and what fixes it, in the words people type."""
    why, fix = PAUSE_REASONS.get(reason, ("GitHub refuses every change to {repo}", "fix access, then run `{command} sync`"))
    return why.format(repo=repo, command=command), fix.format(repo=repo, command=command)


class DeadEndNotice(Protocol):
    """Tells a project's lead about a dead end in GitHub (a paused sync, a deleted issue recreated), once."""

    async def __call__(self, *, project_id: int, key: str, text: str) -> None: ...



def _paused_projects() -> Any:
    """Projects whose sync is paused on a dead end: their queued work waits for the next `sync` command."""
    return select(Project.id).where(col(Project.sync_paused_reason).is_not(None))


@dataclass
class DrainResult:
    """What one pass over the outbox did."""

    processed: int = 0
    counts: Counter[str] = field(default_factory=Counter)  # e.g. issue.created, milestone.adopted, failed
    next_due_at: datetime | None = None


@dataclass
class _Known:
    """What GitHub has for an issue, as far as we know (the base of the three-way comparison)."""

    number: int | None
    title: str | None
    state: str
    assignees: tuple[str, ...]
    content: str | None
    html_url: str | None


class SyncEngine:
    """Applies outbox items one at a time, paced; an item leaves the queue only once it is done."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        gateway: GitHubGateway,
        pacer: Pacer,
        *,
        max_failures: int = 5,
        backoff_base: float = 2.0,
        backoff_cap: float = 900.0,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.gateway = gateway
        self.pacer = pacer
        self.max_failures = max_failures
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.rng = rng or random.Random()
        self.counts: Counter[str] = Counter()
        self._assignable: dict[tuple[str, str], bool] = {}
        self._labels_ready: set[int] = set()
        self._milestones_seen: dict[str, dict[int, GhMilestone]] = {}
        self._milestones_written: set[tuple[str, int]] = set()  # written this run: no need to look again
        self._gone: set[tuple[str, int]] = set()  # deleted issues: search may still list them for a while
        self.notify: DeadEndNotice | None = None  # set by SyncService: tells the lead through the Slack outbox

    def new_run(self) -> None:
        """Forget per-run caches (who is assignable, labels checked); every drain starts with this."""
        self._assignable.clear()
        self._labels_ready.clear()
        self._milestones_seen.clear()
        self._milestones_written.clear()

    async def _milestone_in_github(self, repo: str, number: int) -> GhMilestone | None:
        """GitHub's copy of one of our milestones, from one conditional listing per run."""
        if repo not in self._milestones_seen:
            await self.pacer.read()
            self._milestones_seen[repo] = {m.number: m for m in (await self.gateway.list_milestones(repo)).value}
        return self._milestones_seen[repo].get(number)

    # ------------------------------------------------------------------ the queue

    async def _due_ids(self, project_id: int | None, n: int) -> list[int]:
        async with self.db.session() as s:
            q = select(OutboxItem.id).where(
                col(OutboxItem.status).in_(("pending", "failing")), OutboxItem.next_attempt_at <= self.clock.now()
            )
            if project_id is not None:
                q = q.where(OutboxItem.project_id == project_id)
            q = q.where(col(OutboxItem.project_id).not_in(_paused_projects()))
            q = q.order_by(col(OutboxItem.next_attempt_at), col(OutboxItem.id)).limit(n)
            return [int(i) for i in (await s.execute(q)).scalars() if i is not None]

    async def next_due_at(self, project_id: int | None = None) -> datetime | None:
        async with self.db.session() as s:
            q = select(OutboxItem.next_attempt_at).where(col(OutboxItem.status).in_(("pending", "failing")))
            if project_id is not None:
                q = q.where(OutboxItem.project_id == project_id)
            q = q.where(col(OutboxItem.project_id).not_in(_paused_projects()))
            return (await s.execute(q.order_by(col(OutboxItem.next_attempt_at)).limit(1))).scalar_one_or_none()

    async def drain(
        self, *, project_id: int | None = None, limit: int | None = None, wait: bool = False, max_wait: float = 1800.0
    ) -> DrainResult:
        """Process due items in order; with `wait`, sleep through backoffs until the queue is empty
        (or the next item is more than `max_wait` seconds after the start)."""
        result = DrainResult()
        deadline = self.clock.now() + timedelta(seconds=max_wait)
        self.new_run()
        while limit is None or result.processed < limit:
            batch = await self._due_ids(project_id, 50 if limit is None else min(50, limit - result.processed))
            if not batch:
                nxt = await self.next_due_at(project_id)
                if not wait or nxt is None or nxt > deadline:
                    break
                await self.pacer.sleep(max((nxt - self.clock.now()).total_seconds(), 0.001))
                continue
            for item_id in batch:
                outcome = await self.process(item_id)
                result.processed += 1
                result.counts[outcome] += 1
                if outcome == "paused":
                    break  # the rest of the batch may be the paused project's: ask the queue again
        result.next_due_at = await self.next_due_at(project_id)
        for key, value in self.counts.items():
            result.counts[key] += value
        self.counts.clear()
        return result

    async def process(self, item_id: int) -> str:
        """Apply one outbox item; returns what happened (done, unchanged, failed, rate_limited, skipped)."""
        async with self.db.session() as s:
            item = await s.get(OutboxItem, item_id)
            if item is None or item.status == "done":
                return "skipped"
            project = await s.get(Project, item.project_id)
            kind, ref = item.kind, item.ref
            if project is None or not project.repo:
                self._mark_done(item, note="no GitHub repository set for the project")
                return "skipped"
            s.expunge(project)
        try:
            if kind == "labels":
                await self._sync_labels(project, item_id)
            elif kind == "milestone":
                await self._sync_milestone(project, Phase(ref), item_id)
            elif kind == "issue":
                return await self._sync_issue(project, ref, item_id)
            elif kind == "decision_record":
                from bot.sync.record_engine import sync_decision_record  # reads the project report

                return await sync_decision_record(self, project, ref, item_id)
            else:
                async with self.db.session() as s:
                    if (it := await s.get(OutboxItem, item_id)) is not None:
                        self._mark_done(it, note=f"unknown kind {kind!r}")
                return "skipped"
            return "done"
        except RateLimited as exc:
            until = self.pacer.pause(exc.wait_seconds(self.clock.now().timestamp()))
            log.warning("GitHub rate limit (%s): pausing all GitHub work until %s", exc, until.isoformat())
            async with self.db.session() as s:
                if (it := await s.get(OutboxItem, item_id)) is not None and it.status != "done":
                    it.next_attempt_at, it.last_error, it.updated_at = until, str(exc)[:1000], self.clock.now()
            return "rate_limited"
        except RepoLocked as exc:  # retrying cannot help: pause the project's sync and tell the lead once
            await self._pause(project, item_id, exc)
            return "paused"
        except Gone as exc:  # a deleted issue: the mapping is cleared, so the retry (now) creates it again
            await self._deleted(project, ref, item_id, exc)
            return "recreating"
        except Exception as exc:  # every failure stays queued and is retried with backoff
            if not isinstance(exc, GitHubError):
                log.exception("GitHub sync of %s %s failed", kind, ref)
            await self._failed(item_id, exc)
            return "failed"

    async def _pause(self, project: Project, item_id: int, exc: RepoLocked) -> None:
        now = self.clock.now()
        assert project.id is not None
        async with self.db.session() as s:
            row = await s.get(Project, project.id)
            if row is not None and row.sync_paused_reason is None:
                row.sync_paused_reason, row.sync_paused_at = exc.reason, now
            if (it := await s.get(OutboxItem, item_id)) is not None and it.status != "done":
                it.last_error, it.updated_at = str(exc)[:1000], now  # not an attempt: it waits for the resume
        log.warning("GitHub sync of project %s paused (%s): %s", project.id, exc.reason, exc)
        self.counts["sync.paused"] += 1
        if self.notify is not None:
            why, fix = pause_text(exc.reason, project.repo or "the repository")
            await self.notify(
                project_id=project.id,
                key=f"sync-paused:{project.id}:{exc.reason}",
                text=f"GitHub sync for {project.name} is paused: {why}. To fix it: {fix}.",
            )

    async def _deleted(self, project: Project, task_id: str, item_id: int, exc: Gone) -> None:
        now = self.clock.now()
        assert project.id is not None
        async with self.db.session() as s:
            if (it := await s.get(OutboxItem, item_id)) is not None and it.status != "done":
                it.next_attempt_at, it.last_error, it.updated_at = now, str(exc)[:1000], now
            task = await s.get(Task, task_id)
            label = f"#{task.number} {task.title}" if task else "a task"
        self.counts["issue.deleted"] += 1
        if self.notify is not None:
            await self.notify(
                project_id=project.id,
                key=f"issue-deleted:{project.id}:{task_id}:{exc.number}",
                text=(
                    f"The GitHub issue of task {label} was deleted in {project.repo}; "
                    "Phasegate creates it again. To drop the task instead, close it in Slack."
                ),
            )

    def _mark_done(self, item: OutboxItem, note: str | None = None) -> None:
        item.status, item.last_error, item.updated_at = "done", note, self.clock.now()

    async def _finish(self, s: AsyncSession, item_id: int | None, still_current: bool) -> None:
        if item_id is None:
            return
        item = await s.get(OutboxItem, item_id)
        if item is None:
            return
        if still_current:
            self._mark_done(item)
        else:  # the thing changed while we wrote it: go again with the new state
            item.status, item.next_attempt_at, item.updated_at = "pending", self.clock.now(), self.clock.now()

    async def _failed(self, item_id: int, exc: Exception) -> None:
        now = self.clock.now()
        text = f"{exc.__class__.__name__}: {exc}"[:1000]
        async with self.db.session() as s:
            item = await s.get(OutboxItem, item_id)
            if item is None:
                return
            item.attempts += 1
            delay = backoff_seconds(item.attempts, base=self.backoff_base, cap=self.backoff_cap, rng=self.rng)
            item.next_attempt_at = now + timedelta(seconds=delay)
            item.last_error, item.updated_at = text, now
            if item.attempts >= self.max_failures:
                item.status = "failing"  # still retried, and shown in /phasegate status
            if item.kind == "issue" and (row := await s.get(GitHubIssue, item.ref)) is not None:
                row.failures += 1
                row.last_error = text

    # ------------------------------------------------------------------ labels

    async def _ensure_labels(self, project: Project, *, force: bool = False) -> None:
        """Create our labels that are missing (422 already_exists is fine), once per run unless forced."""
        assert project.id is not None and project.repo
        if project.id in self._labels_ready and not force:
            return
        await self.pacer.read()
        have = {x.name.lower() for x in (await self.gateway.list_labels(project.repo)).value}
        created = 0
        for name, (color, description) in LABELS.items():
            if name.lower() in have:
                continue
            try:
                async with self.pacer.write():
                    await self.gateway.create_label(project.repo, name=name, color=color, description=description)
                created += 1
                self.counts["label.created"] += 1
            except Unprocessable as exc:
                if "already_exists" not in exc.codes:
                    raise
        if created:
            await self.pacer.read()
            await self.gateway.list_labels(project.repo)  # refresh the ETag, so the next check is a free 304
        self._labels_ready.add(project.id)

    async def _sync_labels(self, project: Project, item_id: int) -> None:
        await self._ensure_labels(project, force=True)
        async with self.db.session() as s:
            await self._finish(s, item_id, True)

    # ------------------------------------------------------------------ milestones

    async def _sync_milestone(self, project: Project, phase: Phase, item_id: int | None) -> int:
        """Create, adopt or update the phase's milestone; returns its number."""
        assert project.repo and project.id is not None
        async with self.db.session() as s:
            want = await desired_milestone(s, project, phase)
            row = (
                await s.execute(
                    select(GitHubMilestone).where(
                        GitHubMilestone.project_id == project.id, GitHubMilestone.phase == phase.value
                    )
                )
            ).scalar_one_or_none()
            number = row.number if row else None
            unchanged = number is not None and row is not None and row.synced_hash == want.hash()
        if unchanged and number is not None and (project.repo, number) in self._milestones_written:
            async with self.db.session() as s:
                await self._finish(s, item_id, True)
            return number
        if unchanged and number is not None:
            # Drift: closed, reopened or renamed in GitHub behind our back is put right (a 304 costs nothing).
            there = await self._milestone_in_github(project.repo, number)
            if there is not None and (there.title, there.state) == (want.title, want.state):
                async with self.db.session() as s:
                    await self._finish(s, item_id, True)
                return number
            if there is not None:
                self.counts["milestone.healed"] += 1
        fields: dict[str, Any] = {
            "title": want.title,
            "description": want.description,
            "due_on": want.due_on,
            "state": want.state,
        }
        if number is not None:
            try:
                async with self.pacer.write():
                    await self.gateway.update_milestone(project.repo, number, **fields)
                self.counts["milestone.updated"] += 1
            except GitHubError as exc:
                if exc.status not in (404, 410):
                    raise
                number = None  # deleted in GitHub: create it again
        if number is None:
            try:
                async with self.pacer.write():
                    number = (await self.gateway.create_milestone(project.repo, **fields)).number
                self.counts["milestone.created"] += 1
            except Unprocessable as exc:
                # The title exists (ours from a lost response, or a person's): adopt it, never duplicate.
                if "already_exists" not in exc.codes:
                    raise
                await self.pacer.read()
                listed = {m.title: m for m in (await self.gateway.list_milestones(project.repo)).value}
                found = listed.get(want.title)
                if found is None:
                    raise
                if not owns_milestone(found.description, project.id, phase):
                    # A person's (or another project's) milestone: never written; ours gets a suffixed title.
                    want = replace(want, title=want.title + OWN_SUFFIX)
                    fields["title"] = want.title
                    found = listed.get(want.title)
                    if found is None:
                        async with self.pacer.write():
                            number = (await self.gateway.create_milestone(project.repo, **fields)).number
                        self.counts["milestone.created"] += 1
                    elif not owns_milestone(found.description, project.id, phase):
                        raise
                if found is not None:
                    number = found.number
                    self.counts["milestone.adopted"] += 1
                    current = (found.title, found.description or "", found.due_on, found.state)
                    if current != (want.title, want.description, want.due_on, want.state):
                        async with self.pacer.write():
                            await self.gateway.update_milestone(project.repo, number, **fields)
        assert number is not None
        self._milestones_written.add((project.repo, number))
        async with self.db.session() as s:
            row = (
                await s.execute(
                    select(GitHubMilestone).where(
                        GitHubMilestone.project_id == project.id, GitHubMilestone.phase == phase.value
                    )
                )
            ).scalar_one_or_none()
            if row is None:
                row = GitHubMilestone(team_id=project.team_id, project_id=project.id, phase=phase.value, title="")
                s.add(row)
            row.number, row.title, row.state = number, want.title, want.state
            row.synced_hash, row.synced_at = want.hash(), self.clock.now()
            await s.flush()
            await self._finish(s, item_id, (await desired_milestone(s, project, phase)).hash() == want.hash())
        return number

    async def _milestone_number(self, project: Project, phase: Phase) -> int:
        async with self.db.session() as s:
            number = (
                await s.execute(
                    select(GitHubMilestone.number).where(
                        GitHubMilestone.project_id == project.id, GitHubMilestone.phase == phase.value
                    )
                )
            ).scalar_one_or_none()
        return number if number is not None else await self._sync_milestone(project, phase, None)

    # ------------------------------------------------------------------ issues

    async def _assignees(self, repo: str, login: str | None) -> tuple[str, ...]:
        if not login:
            return ()
        key = (repo.lower(), login.lower())
        if key not in self._assignable:
            await self.pacer.read()
            self._assignable[key] = await self.gateway.is_assignable(repo, login)
        return (login,) if self._assignable[key] else ()

    async def find_by_marker(self, repo: str, task_id: str, milestone: int | None) -> GhIssue | None:
        """The issue carrying the task's marker: by search, then (search lags) by listing the milestone."""
        needle = marker(task_id)
        try:
            await self.pacer.read()
            query = f'"phasegate:task={task_id}" repo:{repo} is:issue in:body'
            for hit in await self.gateway.search_issues(query):
                if needle in hit.body and (repo.lower(), hit.number) not in self._gone:
                    return hit
        except RateLimited as exc:
            if exc.resource != "search" or exc.retry_after is not None:
                raise  # a secondary limit holds for everything
        except Unprocessable:
            pass  # search refused the query (e.g. GHES without it): listing below still finds the issue
        await self.pacer.read()
        for issue in (await self.gateway.list_issues(repo, milestone=milestone)).value:
            if needle in issue.body and (repo.lower(), issue.number) not in self._gone:
                return issue
        return None

    async def _sync_issue(self, project: Project, task_id: str, item_id: int) -> str:
        assert project.repo and project.id is not None
        repo = project.repo
        async with self.db.session() as s:
            task = await s.get(Task, task_id)
            if task is None:
                await self._finish(s, item_id, True)
                return "skipped"
            want = await desired_issue(IssueContext(s, project), task)
            row = await s.get(GitHubIssue, task_id)
            fresh = row is None
            if row is None:
                # Written before the create is sent: from now on a create may have happened, and any
                # later attempt looks for the marker first.
                row = GitHubIssue(task_id=task_id, team_id=project.team_id, project_id=project.id, state="open")
                s.add(row)
            known = _Known(row.number, row.title, row.state, tuple(row.assignees), row.synced_hash, row.html_url)
            comment_state = row.superseded_comment
        milestone = await self._milestone_number(project, want.phase)
        content = want.content_hash(milestone)
        comment_due = want.comment is not None and comment_state != "done"
        if (
            known.number is not None
            and known.content == content
            and known.title == want.title
            and known.state == want.state
            and not comment_due
        ):
            async with self.db.session() as s:
                await self._finish(s, item_id, True)
            return "unchanged"
        await self._ensure_labels(project)
        assignees = await self._assignees(repo, want.login)
        created = adopted = False
        if known.number is None and not fresh:
            found = await self.find_by_marker(repo, task_id, milestone)
            if found is not None:
                adopted = True
                self.counts["issue.adopted"] += 1
                known = _Known(found.number, found.title, found.state, found.assignees, None, found.html_url)
        if known.number is None:
            try:
                async with self.pacer.write():
                    gh = await self.gateway.create_issue(
                        repo,
                        title=want.title,
                        body=want.body,
                        milestone=milestone,
                        labels=want.labels,
                        assignees=assignees,
                    )
            except Unprocessable as exc:
                self._unassignable(repo, want.login, exc)
                raise
            created = True
            self.counts["issue.created"] += 1
            known = _Known(gh.number, gh.title, gh.state, gh.assignees, content, gh.html_url)
        assert known.number is not None
        changes: dict[str, Any] = {}
        if known.title != want.title:
            changes["title"] = want.title
        if known.state != want.state:
            changes["state"] = want.state
            if want.state == "closed" and want.state_reason:
                changes["state_reason"] = want.state_reason
        if known.content != content:
            changes.update(body=want.body, labels=list(want.labels), milestone=milestone)
            if assignees != known.assignees:
                changes["assignees"] = list(assignees)
        try:
            if changes:
                async with self.pacer.write():
                    gh = await self.gateway.update_issue(repo, known.number, **changes)
                if gh.html_url and f"/{repo.lower()}/issues/" not in gh.html_url.lower():
                    # Transferred (301, followed): GitHub keeps redirecting the old number; we record where it is.
                    self.counts["issue.moved"] += 1
                    log.info("issue %s#%s was transferred to %s", repo, known.number, gh.html_url)
                known.html_url = gh.html_url or known.html_url
                if not created:
                    self.counts["issue.closed" if changes.get("state") == "closed" else "issue.updated"] += 1
        except Exception as exc:
            if isinstance(exc, Unprocessable) and not (created or adopted) and exc.fields & {"milestone", "labels"}:
                if (moved := await self._moved_issue(repo, known.number)) is not None:
                    await self._record_moved(project, task_id, item_id, want, content, moved)
                    return "moved"
            if isinstance(exc, Unprocessable):
                self._unassignable(repo, want.login, exc)
            if created or adopted:  # keep what we learned, so the next attempt does not search again
                await self._remember(task_id, known)
            elif isinstance(exc, NotFoundError):  # deleted or transferred in GitHub: find or create it again
                await self._remember(task_id, _Known(None, None, "open", (), None, None), force=True)
                if isinstance(exc, Gone):
                    self._gone.add((repo.lower(), known.number))
                    exc.number = known.number
            raise
        async with self.db.session() as s:
            row = await s.get(GitHubIssue, task_id)
            task = await s.get(Task, task_id)
            if row is None or task is None:
                return "skipped"
            row.number, row.html_url = known.number, known.html_url
            row.title, row.state = want.title, want.state
            row.assignees = list(changes.get("assignees", known.assignees))
            row.synced_hash, row.synced_at = content, self.clock.now()
            row.failures, row.last_error = 0, None
        if comment_due and want.comment is not None and want.state == "closed":
            # After the close is recorded: a failure here leaves the item queued, and the retry only comments.
            await self._superseded_comment(repo, task_id, known.number, want.comment, comment_state)
        async with self.db.session() as s:
            task = await s.get(Task, task_id)
            if task is None:
                return "skipped"
            now_want = await desired_issue(IssueContext(s, project), task)
            await self._finish(s, item_id, now_want == want)
        return "done"

    async def _superseded_comment(
        self, repo: str, task_id: str, number: int, body: str, state: str | None
    ) -> None:
        """The one comment saying why the issue was closed as not planned, exactly once: marked "sending" before
        the POST, so an attempt after a lost answer looks for the comment's marker before writing again."""
        needle = superseded_marker(task_id)
        if state == "sending":
            await self.pacer.read()
            if any(needle in c.body for c in await self.gateway.list_comments(repo, number)):
                await self._comment_state(task_id, "done")
                self.counts["comment.adopted"] += 1
                return
        await self._comment_state(task_id, "sending")
        async with self.pacer.write():
            await self.gateway.create_comment(repo, number, body=body)
        await self._comment_state(task_id, "done")
        self.counts["comment.created"] += 1

    async def _comment_state(self, task_id: str, state: str | None) -> None:
        async with self.db.session() as s:
            if (row := await s.get(GitHubIssue, task_id)) is not None:
                row.superseded_comment = state

    async def _moved_issue(self, repo: str, number: int) -> GhIssue | None:
        """The issue, when `number` was transferred out of `repo` (GitHub answers 301; PyGithub follows it),
        found by an empty PATCH: our milestone and labels do not exist there, so the full write was refused."""
        async with self.pacer.write():
            there = await self.gateway.update_issue(repo, number)
        return there if there.html_url and f"/{repo.lower()}/issues/" not in there.html_url.lower() else None

    async def _record_moved(
        self, project: Project, task_id: str, item_id: int, want: DesiredIssue, content: str, moved: GhIssue
    ) -> None:
        """Stop writing to a transferred issue: keep where it is now, and leave it to its new repository."""
        log.info("issue of task %s in %s was transferred to %s", task_id, project.repo, moved.html_url)
        self.counts["issue.moved"] += 1
        async with self.db.session() as s:
            row = await s.get(GitHubIssue, task_id)
            if row is not None:
                row.html_url, row.title, row.state = moved.html_url, want.title, want.state
                row.synced_hash, row.synced_at = content, self.clock.now()
                row.failures, row.last_error = 0, f"transferred to {moved.html_url}"[:1000]
            await self._finish(s, item_id, True)

    def _unassignable(self, repo: str, login: str | None, exc: Unprocessable) -> None:
        # Someone lost access between our check and the write (GitHub refuses the whole write):
        # the next attempt writes without them, and names them in the body instead.
        if login and exc.fields & {"assignees", "assignee"}:
            self._assignable[(repo.lower(), login.lower())] = False

    async def _remember(self, task_id: str, known: _Known, *, force: bool = False) -> None:
        async with self.db.session() as s:
            row = await s.get(GitHubIssue, task_id)
            if row is not None and (row.number is None or force):
                row.number, row.html_url = known.number, known.html_url
                row.title, row.state, row.assignees = known.title, known.state, list(known.assignees)
                row.synced_hash = None
