"""What a project wants in GitHub: our labels, a milestone per phase, an issue per task, and the hidden markers
that find them again."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.db.models import Decision, GitHubMilestone, Member, PhaseRecord, PhaseTarget, Project, Proposal, Task
from bot.process import PHASES, Phase, Role, parse_reference
from bot.rendering import render_text

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
        comment = (
            render_text(
                "github/superseded_comment.md.j2",
                task=task,
                project=project,
                note=task.superseded_note or "",
                iteration=(record.iteration if record else project.iteration) + 1,
                when=task.superseded_at,
                slack_url=(record.permalink if record and record.permalink else channel_url),
                marker=superseded_marker(task.id),
            ).strip()
            + "\n"
        )
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
