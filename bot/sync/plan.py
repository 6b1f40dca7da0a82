"""The sync plan: what a sync would change in GitHub (reads only), and its text for Slack and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.db.models import GitHubIssue, GitHubMilestone, Project, Task
from bot.github.gateway import GhMilestone, GitHubGateway
from bot.github.pacing import Pacer
from bot.process import PHASE_ORDER
from bot.rendering import Message, render_message
from bot.sync.desired import (
    LABELS,
    OWN_SUFFIX,
    DesiredMilestone,
    IssueContext,
    desired_issue,
    desired_milestone,
    owns_milestone,
)

PREVIEW_NOTE = (
    "Preview mode: no GitHub credentials are configured, so nothing is sent to GitHub. Set GITHUB_TOKEN "
    "(or GITHUB_APP_ID, GITHUB_APP_PRIVATE_KEY and GITHUB_APP_INSTALLATION_ID) to sync for real."
)
ACTIONS = ("create", "adopt", "update", "close", "reopen", "comment")
KINDS = (("label", "Labels"), ("milestone", "Milestones"), ("issue", "Issues"))


def _due_text(day: date | None) -> str:
    return f"due {day.isoformat()}" if day else ""


def _drifted(there: GhMilestone | None, want: DesiredMilestone) -> bool:
    """GitHub's copy of our milestone was closed, reopened or renamed by someone else."""
    return there is not None and (there.title, there.state) != (want.title, want.state)


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
        return (
            len(self.steps) + sum(d.startswith("then close") for d in issues) + sum("(superseded)" in d for d in issues)
        )


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
                    ", ".join(x for x in ("closed" if want.state == "closed" else "", _due_text(want.due_on)) if x),
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


def render_plan_text(plan: SyncPlan, *, limit: int = 25) -> str:
    """The plan as plain text (CLI `phasegate sync --dry-run`, the shell)."""
    lines: list[str] = []
    if plan.preview_mode:
        lines.append(PREVIEW_NOTE)
    if not plan.repo:
        lines.append(f"{plan.project}: no GitHub repository is set for this project, so there is nothing to sync.")
        return "\n".join(lines)
    lines.append(
        f"Sync plan for {plan.project} → {plan.repo}: {len(plan.steps)} change(s), {plan.unchanged} unchanged."
    )
    for kind, label in KINDS:
        for action in ACTIONS:
            steps = plan.of(kind, action)
            if not steps:
                continue
            lines.append(f"{label} to {action} ({len(steps)}):")
            for step in steps[:limit]:
                extra = [f"#{step.number}" if step.number and kind != "issue" else "", step.detail]
                suffix = " ".join(x for x in extra if x)
                lines.append(f"  - {step.title}" + (f" ({suffix})" if suffix else ""))
            if len(steps) > limit:
                lines.append(f"  …and {len(steps) - limit} more")
    if not plan.steps:
        lines.append("Nothing to change: GitHub is in step.")
    return "\n".join(lines)


def render_plan_message(plan: SyncPlan) -> Message:
    """The plan as a Slack message (templates/blocks/sync_plan.json.j2)."""
    groups = [
        {"label": label, "action": action, "steps": plan.of(kind, action)}
        for kind, label in KINDS
        for action in ACTIONS
        if plan.of(kind, action)
    ]
    return render_message(
        "blocks/sync_plan.json.j2",
        text=f"GitHub sync plan for {plan.project}: {len(plan.steps)} change(s)",
        plan=plan,
        groups=groups,
        preview_note=PREVIEW_NOTE,
    )
