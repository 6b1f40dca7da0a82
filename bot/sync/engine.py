"""Apply a project's GitHub side (labels, a milestone per phase, an issue per task) from the outbox, exactly once;
pause on dead ends."""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.clock import Clock
from bot.db.models import GitHubIssue, GitHubMilestone, OutboxItem, Project, Task
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
from bot.process import Phase
from bot.sync.desired import (
    LABELS,
    OWN_SUFFIX,
    DesiredIssue,
    IssueContext,
    desired_issue,
    desired_milestone,
    marker,
    owns_milestone,
    superseded_marker,
)

log = logging.getLogger(__name__)

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
        'the Phasegate GitHub App may not write to {repo} ("Resource not accessible by integration")',
        "in GitHub, give the Phasegate App access to {repo} with Issues read & write (an organization owner: "
        "Settings → GitHub Apps → Phasegate → Configure), then run `{command} sync`",
    ),
}


def pause_text(reason: str, repo: str, command: str = "/phasegate") -> tuple[str, str]:
    """Why a project's sync is paused and what fixes it, in the words people type."""
    why, fix = PAUSE_REASONS.get(
        reason, ("GitHub refuses every change to {repo}", "fix access, then run `{command} sync`")
    )
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

    async def _superseded_comment(self, repo: str, task_id: str, number: int, body: str, state: str | None) -> None:
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
