"""A decision's markdown record in the repository: what it says, where it lives (path, branch), its pull request."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Environment
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.db.models import Decision, DecisionRecordFile, DecisionRecordSettings, Meeting, Project, Proposal
from bot.rendering import github_safe, new_environment
from bot.services.project_report import DecisionLine, _href, _md_cell, _num, build_report

DEFAULT_PATH = "docs/decisions"
MARKER_RE = re.compile(r"<!-- phasegate:decision-record=(\d+) project=(\d+) -->")
_PATH_RE = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+){0,2}$")


def record_marker(decision_id: int, project_id: int) -> str:
    """The hidden comment in the record and its pull request: finds them again after a crash or a lost answer."""
    return f"<!-- phasegate:decision-record={decision_id} project={project_id} -->"


def slug(text: str, limit: int = 40) -> str:
    """`CNN on log-mel spectrograms` → `cnn-on-log-mel-spectrograms` (ASCII, for file and branch names)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    out = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return out[:limit].rstrip("-") or "decision"


def check_path(path: str) -> str | None:
    """A folder for the records (at most three levels, plain names); None when it is not one."""
    path = path.strip().strip("/")
    if not _PATH_RE.match(path) or any(part in (".", "..") or part.startswith(".") for part in path.split("/")):
        return None
    return path


def branch_name(project_name: str, number: int) -> str:
    return f"phasegate/decision-{slug(project_name, 30)}-{number}"


def file_name(number: int, title: str) -> str:
    return f"{number:04d}-{slug(title)}.md"


def _link(url: str) -> str:
    # Percent-encode what could end the Markdown link.
    return url.replace("(", "%28").replace(")", "%29").replace(" ", "%20")


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = new_environment()
    env.filters.update(github_safe=github_safe, cell=_md_cell, num=_num, href=_href, link=_link)
    return env


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class Neighbour:
    """Another record, as this one links to it."""

    number: int
    title: str
    file: str  # relative to this record's folder
    pr_url: str | None


@dataclass(frozen=True)
class DesiredRecord:
    decision_id: int
    number: int
    path: str
    branch: str
    text: str  # the file
    pr_title: str
    pr_body: str
    superseded: bool

    def hash(self) -> str:
        return _digest([self.path, self.branch, self.text, self.pr_title, self.pr_body])


async def settings_of(s: AsyncSession, project_id: int) -> DecisionRecordSettings | None:
    """The project's decision-record settings when they are on (off by default: None)."""
    row = await s.get(DecisionRecordSettings, project_id)
    return row if row is not None and row.enabled else None


async def _iteration(s: AsyncSession, decision: Decision) -> int:
    meeting = await s.get(Meeting, decision.meeting_id)
    return meeting.iteration if meeting else 0


async def ensure_row(
    s: AsyncSession, project: Project, decision: Decision, settings: DecisionRecordSettings
) -> DecisionRecordFile:
    """The decision's record row, made on first need: its number, path and branch are fixed from then on.
    A record from an earlier iteration that nothing supersedes yet is superseded by this one."""
    assert decision.id is not None and project.id is not None and project.repo
    row = await s.get(DecisionRecordFile, decision.id)
    if row is not None:
        return row
    current = (
        await s.execute(select(func.max(DecisionRecordFile.number)).where(DecisionRecordFile.project_id == project.id))
    ).scalar_one_or_none()
    number = int(current or 0) + 1
    row = DecisionRecordFile(
        decision_id=decision.id,
        team_id=project.team_id,
        project_id=project.id,
        number=number,
        repo=project.repo,
        branch=branch_name(project.name, number),
        path=f"{settings.path}/{file_name(number, await _chosen_title(s, project, decision))}",
    )
    s.add(row)
    iteration = await _iteration(s, decision)
    earlier = (
        await s.execute(
            select(DecisionRecordFile)
            .where(
                DecisionRecordFile.project_id == project.id,
                col(DecisionRecordFile.superseded_by).is_(None),
                DecisionRecordFile.decision_id != decision.id,
            )
            .order_by(col(DecisionRecordFile.number).desc())
        )
    ).scalars()
    for old in earlier:
        old_decision = await s.get(Decision, old.decision_id)
        if old_decision is not None and await _iteration(s, old_decision) < iteration:
            old.superseded_by = decision.id
            s.add(old)
            break
    await s.flush()
    return row


async def _chosen_title(s: AsyncSession, project: Project, decision: Decision) -> str:
    proposal = await s.get(Proposal, decision.proposal_id)
    return proposal.title if proposal else f"decision {decision.id}"


def _relative(from_path: str, to_path: str) -> str:
    """A link from one record to another: the file name when both are in the same folder."""
    same = from_path.rsplit("/", 1)[0] == to_path.rsplit("/", 1)[0]
    return to_path.rsplit("/", 1)[-1] if same else "/" + to_path


async def _neighbour(s: AsyncSession, row: DecisionRecordFile, other: DecisionRecordFile) -> Neighbour:
    decision = await s.get(Decision, other.decision_id)
    project = await s.get(Project, other.project_id)
    title = await _chosen_title(s, project, decision) if decision and project else f"record {other.number}"
    return Neighbour(other.number, title, _relative(row.path, other.path), other.pr_url)


async def desired_record(s: AsyncSession, project: Project, row: DecisionRecordFile) -> DesiredRecord:
    """The record's file and its pull request's title and body, from what the project has now."""
    assert project.id is not None
    decision = await s.get(Decision, row.decision_id)
    assert decision is not None
    report = await build_report(s, project, now=decision.decided_at)
    line: DecisionLine = next(d for d in report.decisions if d.meeting_id == decision.meeting_id)
    chosen = next(p for p in line.proposals if p.chosen)
    by_id = {p.id: p for p in line.proposals}
    runner_ups = [by_id[i] for i in line.runner_up_ids if i in by_id]
    tasks = [t for t in report.tasks if t.decision_meeting_id == decision.meeting_id]
    superseded = supersedes = None
    if row.superseded_by is not None and (newer := await s.get(DecisionRecordFile, row.superseded_by)):
        superseded = await _neighbour(s, row, newer)
    older = (
        await s.execute(select(DecisionRecordFile).where(DecisionRecordFile.superseded_by == row.decision_id))
    ).scalar_one_or_none()
    if older is not None:
        supersedes = await _neighbour(s, row, older)
    marker = record_marker(row.decision_id, project.id)
    text = (
        _environment()
        .get_template("github/decision_record.md.j2")
        .render(
            row=row,
            project=project,
            repo=project.repo or "",
            d=line,
            chosen=chosen,
            runner_ups=runner_ups,
            tasks=tasks,
            brief=report.brief,
            criteria=report.criteria,
            superseded=superseded,
            supersedes=supersedes,
            marker=marker,
        )
    )
    title = " ".join(github_safe(chosen.title).split())[:120]
    pr_title = (
        f"Decision record {row.number:04d} (superseded by {superseded.number:04d}): {title}"
        if superseded
        else f"Decision record {row.number:04d}: {title}"
    )
    lines = [
        f"The decision taken at {line.meeting_title} #{line.meeting_id} of {github_safe(project.name)}, "
        f"recorded in `{row.path}`. Merge it to keep the record with the code.",
    ]
    if superseded:
        link = f"[{superseded.number:04d}]({superseded.pr_url})" if superseded.pr_url else f"{superseded.number:04d}"
        lines.append(f"\n**Superseded** by decision record {link}: {github_safe(superseded.title)}.")
    if supersedes:
        link = f"[{supersedes.number:04d}]({supersedes.pr_url})" if supersedes.pr_url else f"{supersedes.number:04d}"
        lines.append(f"\nSupersedes decision record {link}: {github_safe(supersedes.title)}.")
    lines.append("\n_Proposed by Phasegate._\n" + marker)
    return DesiredRecord(
        decision_id=row.decision_id,
        number=row.number,
        path=row.path,
        branch=row.branch,
        text=text,
        pr_title=pr_title,
        pr_body="\n".join(lines),
        superseded=superseded is not None,
    )
