"""GitHub sync use cases: preview, run, status, and changes coming back (webhook, poll) with their digest."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.db.models import (
    Decision,
    GitHubIssue,
    GitHubIssueVersion,
    GitHubMilestone,
    Member,
    OutboxItem,
    OutboxMessage,
    PhaseTarget,
    ProcessedDelivery,
    Project,
    Task,
    WebhookDelivery,
)
from bot.db.session import Database
from bot.github.gateway import GhIssue, GitHubError, GitHubGateway, RateLimited, build_gateway, parse_issue
from bot.github.pacing import Pacer, Sleep
from bot.locks import SyncLock
from bot.messaging import Messenger, RecordingMessenger
from bot.outbox import Outbox
from bot.process import PHASE_ORDER, Phase, evaluate_gate
from bot.rendering import Message, render_message
from bot.services.base import Actor, ServiceBase
from bot.services.decisions import records_on
from bot.services.gates import gather_facts
from bot.services.repos import check_allowed, check_claim, claim, parse_allowlist
from bot.services.tasks import enqueue_sync
from bot.slack_oauth import UNINSTALLED
from bot.sync.desired import milestone_title, task_id_in
from bot.sync.digest import DigestEntry, _entry, _entry_json, _name, _person
from bot.sync.engine import DrainResult, SyncEngine, pause_text
from bot.sync.inbound import WebhookEvent
from bot.sync.plan import SyncPlan, compute_plan, render_plan_text
from bot.waits import wait_event

log = logging.getLogger(__name__)

RETENTION_DAYS = 14  # webhook deliveries and dedupe records older than this are pruned (GitHub keeps 3 days)


@dataclass(frozen=True)
class FailingItem:
    kind: str
    ref: str
    title: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime


@dataclass(frozen=True)
class SyncStatus:
    """GitHub sync health for `/phasegate status`."""

    preview_mode: bool
    repo: str | None
    pending: int
    failing: tuple[FailingItem, ...]
    issues_synced: int
    tasks: int
    last_synced_at: datetime | None
    paused_until: datetime | None
    paused: str | None = None  # "paused: <why> — fix: …" while a dead end in GitHub holds the project's sync


@dataclass(frozen=True)
class SyncReport:
    """What `run` did (or, in preview mode, would do: `plan`)."""

    project: str
    repo: str | None
    preview_mode: bool
    plan: SyncPlan | None = None
    counts: dict[str, int] = field(default_factory=dict)
    pending: int = 0
    failing: int = 0
    inbound: int = 0


class SyncService(ServiceBase):
    """GitHub sync for every project.

    `gateway=None` is preview mode: plans are shown, nothing is sent, queued work waits for credentials.
    Writes are paced by `writes_per_minute` / `writes_per_hour`; `sleep` (and the clock) can be fakes.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        gateway: GitHubGateway | None,
        messenger: Messenger,
        *,
        writes_per_minute: int = 80,
        writes_per_hour: int = 500,
        sleep: Sleep = asyncio.sleep,
        max_failures: int = 5,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(db, clock)
        self.gateway = gateway
        self.messenger = messenger
        self.outbox: Outbox | None = None  # set by build_core: the digest goes through the Slack outbox
        self.pacer = Pacer(clock, sleep, per_minute=writes_per_minute, per_hour=writes_per_hour)
        self.engine = (
            SyncEngine(db, clock, gateway, self.pacer, max_failures=max_failures, rng=rng) if gateway else None
        )
        self._drain_lock = SyncLock(db.url)  # shared with `phasegate sync` and other replicas
        self._runs: dict[int, asyncio.Task[SyncReport]] = {}
        self._kicked = asyncio.Event()
        self._digest: dict[int, list[DigestEntry]] = {}
        self.allowed_repos: tuple[str, ...] = ()  # PHASEGATE_GITHUB_REPOS
        self._told: set[str] = set()  # dead-end notices sent without an outbox (tests, CLI)
        if self.engine is not None:
            self.engine.notify = self._tell_lead

    @classmethod
    def from_settings(
        cls, db: Database, clock: Clock, messenger: Messenger, settings: Settings, **options: Any
    ) -> SyncService:
        """The app's service: a PyGithub gateway when credentials are set (else preview mode), paced from Settings."""
        service = cls(
            db,
            clock,
            build_gateway(settings),
            messenger,
            writes_per_minute=settings.github_writes_per_minute,
            writes_per_hour=settings.github_writes_per_hour,
            **options,
        )
        service.allowed_repos = parse_allowlist(settings.github_repos)
        return service

    async def _claim(self, s: AsyncSession, project: Project, *, claiming: bool = True) -> None:
        """Before anything is planned or sent: the repo is allowed, and this project holds it or was shared it."""
        if project.repo:
            check_allowed(project.repo, self.allowed_repos)
            if self.engine is None or not claiming:  # a preview sends nothing, so it claims nothing
                await check_claim(s, project, project.repo)
            else:
                await claim(s, project, project.repo, self.clock)

    @property
    def preview_mode(self) -> bool:
        """True without GitHub credentials: plans only."""
        return self.gateway is None

    # ------------------------------------------------------------------ preview and run

    async def plan(self, *, actor: Actor, project_id: int) -> SyncPlan:
        """What a sync would create, change and close (reads GitHub conditionally; writes nothing)."""
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            await self._claim(s, project, claiming=False)
            return await compute_plan(s, project, self.gateway, self.pacer)

    async def run(self, *, actor: Actor, project_id: int, max_wait: float = 1800.0) -> SyncReport:
        """Queue everything the project has (labels, every phase's milestone, every task's issue), drain the
        queue (sleeping through backoffs, up to `max_wait` seconds), then read back changes made in GitHub.
        A run asked for while one is under way for the project joins it (one run, the same report)."""
        running = self._runs.get(project_id)
        if running is None or running.done():
            running = asyncio.get_running_loop().create_task(
                self._run(actor=actor, project_id=project_id, max_wait=max_wait)
            )
            self._runs[project_id] = running
            running.add_done_callback(
                lambda t: self._runs.pop(project_id, None) if self._runs.get(project_id) is t else None
            )
        return await asyncio.shield(running)

    async def _run(self, *, actor: Actor, project_id: int, max_wait: float) -> SyncReport:
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            await self._claim(s, project)
            if self.engine is None or not project.repo:
                return SyncReport(
                    project.name,
                    project.repo,
                    self.preview_mode,
                    plan=await compute_plan(s, project, self.gateway, self.pacer),
                )
            await self._enqueue_all(s, actor, project)
        async with self._drain_lock.hold():
            result = await self.engine.drain(project_id=project_id, wait=True, max_wait=max_wait)
        inbound = await self.poll(project_id=project_id)
        pending, failing = await self._queue_counts(project_id)
        counts = {k: v for k, v in result.counts.items() if "." in k or k == "failed"}
        return SyncReport(
            project.name, project.repo, False, counts=counts, pending=pending, failing=failing, inbound=inbound
        )

    async def _tell_lead(self, *, project_id: int, key: str, text: str) -> None:
        """A DM to the project's lead about a dead end in GitHub, once per `key` (durable via the Slack outbox)."""
        message = Message(text=text, blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}])
        async with self.db.session() as s:
            project = await s.get(Project, project_id)
            if project is None:
                return
            team_id, lead = project.team_id, project.lead_user_id
            if self.outbox is not None:
                seen = (
                    await s.execute(
                        select(OutboxMessage.id).where(
                            OutboxMessage.team_id == team_id, OutboxMessage.dedupe_key == key
                        )
                    )
                ).first()
                if seen is not None:
                    return
                await self.outbox.enqueue(
                    s, team_id=team_id, project_id=project_id, kind="dm", target=lead, message=message, key=key
                )
        if self.outbox is not None:
            await self.outbox.committed()
        elif key not in self._told:
            self._told.add(key)
            await self.messenger.dm(team_id=team_id, user_id=lead, message=message)

    async def _enqueue_all(self, s: AsyncSession, actor: Actor, project: Project) -> None:
        now = self.clock.now()
        if project.sync_paused_reason is not None:  # an explicit sync resumes a paused project: try again
            await self.audit(
                s, actor=actor, action="github.sync_resumed", project_id=project.id, reason=project.sync_paused_reason
            )
            project.sync_paused_reason, project.sync_paused_at = None, None
        await enqueue_sync(s, project=project, kind="labels", ref="", now=now)
        for phase in PHASE_ORDER:
            await enqueue_sync(s, project=project, kind="milestone", ref=phase.value, now=now)
        task_ids = (
            await s.execute(select(Task.id).where(Task.project_id == project.id).order_by(col(Task.number)))
        ).scalars()
        for task_id in task_ids:
            await enqueue_sync(s, project=project, kind="issue", ref=task_id, now=now)
        if await records_on(s, project.id or 0):  # after the issues: records link to them
            decision_ids = (
                await s.execute(select(Decision.id).where(Decision.project_id == project.id).order_by(col(Decision.id)))
            ).scalars()
            for decision_id in decision_ids:
                await enqueue_sync(s, project=project, kind="decision_record", ref=str(decision_id), now=now)
        await self.audit(s, actor=actor, action="github.sync", project_id=project.id, repo=project.repo)

    async def request(self, *, actor: Actor, project_id: int) -> SyncPlan:
        """`/phasegate sync`: queue everything the project has and wake the worker; returns the plan it works to."""
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            await self._claim(s, project)
            plan = await compute_plan(s, project, self.gateway, self.pacer)
            if self.engine is not None and project.repo:
                await self.require_member(s, actor, project, "sync with GitHub")
                await self._enqueue_all(s, actor, project)
        self.kick()
        return plan

    async def run_due(self, *, limit: int | None = 100) -> DrainResult:
        """Apply due outbox items across projects (the scheduler and SyncWorker call this); preview mode: nothing."""
        if self.engine is None:
            return DrainResult()
        async with self._drain_lock.hold():
            return await self.engine.drain(limit=limit)

    def kick(self) -> None:
        """Wake the worker now (after a decision or a task change), instead of at its next interval."""
        self._kicked.set()

    async def wait_for_kick(self, seconds: float) -> bool:
        """Wait up to `seconds` for `kick()`; True when kicked."""
        try:
            return await wait_event(self._kicked, seconds)
        finally:
            self._kicked.clear()

    async def _queue_counts(self, project_id: int) -> tuple[int, int]:
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(OutboxItem.status, func.count())
                    .where(OutboxItem.project_id == project_id, col(OutboxItem.status).in_(("pending", "failing")))
                    .group_by(col(OutboxItem.status))
                )
            ).all()
        by = {str(status): int(n) for status, n in rows}
        return by.get("pending", 0), by.get("failing", 0)

    async def status(self, *, actor: Actor, project_id: int) -> SyncStatus:
        """Queued and failing GitHub work (failing work is still retried), for `/phasegate status`."""
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            items = list(
                (
                    await s.execute(
                        select(OutboxItem)
                        .where(OutboxItem.project_id == project_id, col(OutboxItem.status).in_(("pending", "failing")))
                        .order_by(col(OutboxItem.id))
                    )
                ).scalars()
            )
            titles = {
                t.id: f"#{t.number} {t.title}"
                for t in (
                    await s.execute(select(Task).where(col(Task.id).in_([i.ref for i in items if i.kind == "issue"])))
                ).scalars()
            }
            synced, last = (
                await s.execute(
                    select(func.count(col(GitHubIssue.number)), func.max(GitHubIssue.synced_at)).where(
                        GitHubIssue.project_id == project_id
                    )
                )
            ).one()
            tasks = (await s.execute(select(func.count()).where(Task.project_id == project_id))).scalar_one()
        failing = tuple(
            FailingItem(
                i.kind, i.ref, self._item_title(project, i, titles), i.attempts, i.last_error, i.next_attempt_at
            )
            for i in items
            if i.status == "failing"
        )
        return SyncStatus(
            preview_mode=self.preview_mode,
            repo=project.repo,
            pending=sum(1 for i in items if i.status == "pending"),
            failing=failing,
            issues_synced=int(synced or 0),
            tasks=int(tasks or 0),
            last_synced_at=last,
            paused_until=self.pacer.paused_until,
            paused=self._paused_text(project),
        )

    @staticmethod
    def _paused_text(project: Project) -> str | None:
        if project.sync_paused_reason is None:
            return None
        why, fix = pause_text(project.sync_paused_reason, project.repo or "the repository")
        return f"paused: {why} — fix: {fix}"

    @staticmethod
    def _item_title(project: Project, item: OutboxItem, titles: dict[str, str]) -> str:
        if item.kind == "issue":
            return titles.get(item.ref, item.ref)
        if item.kind == "milestone":
            return milestone_title(project.name, Phase(item.ref))
        return "labels"

    # ------------------------------------------------------------------ changes made in GitHub

    async def seen(self, delivery_id: str) -> bool:
        """True when this GitHub delivery GUID is already stored in the inbox."""
        async with self.db.session() as s:
            found = (
                await s.execute(select(WebhookDelivery.id).where(WebhookDelivery.guid == delivery_id[:100]))
            ).first()
        return found is not None

    async def store(self, *, guid: str, event: str, action: str, body: str) -> bool:
        """Persist a verified delivery in the inbox (before it is answered 202) and wake the worker; False when
        this GUID is already stored (a redelivery). Any replica may store; the leader applies."""
        try:
            async with self.db.session() as s:
                s.add(
                    WebhookDelivery(
                        guid=guid[:100], event=event[:40], action=action[:40], body=body, received_at=self.clock.now()
                    )
                )
        except IntegrityError:
            return False
        self.kick()
        return True

    async def apply_stored(self, *, limit: int = 500) -> int:
        """Apply stored deliveries not yet applied, in the order received; each is marked applied in the same
        transaction as its effect (so a crash redoes it, never half of it). Returns how many were applied."""
        async with self.db.session() as s:
            ids = list(
                (
                    await s.execute(
                        select(WebhookDelivery.id)
                        .where(col(WebhookDelivery.applied_at).is_(None))
                        .order_by(col(WebhookDelivery.id))
                        .limit(limit)
                    )
                ).scalars()
            )
        applied = 0
        for delivery_id in ids:
            if delivery_id is None:
                continue
            try:
                applied += await self._apply_one(delivery_id)
            except (DBAPIError, OSError):
                raise  # the database is unreachable or busy: leave it (and what follows) for the next pass
            except Exception:
                log.exception("applying stored GitHub delivery %s failed; it is skipped", delivery_id)
                async with self.db.session() as s:
                    await s.execute(
                        update(WebhookDelivery)
                        .where(col(WebhookDelivery.id) == delivery_id, col(WebhookDelivery.applied_at).is_(None))
                        .values(applied_at=self.clock.now(), digested_at=self.clock.now())
                    )
        return applied

    async def _apply_one(self, delivery_id: int) -> bool:
        now = self.clock.now()
        async with self.db.session() as s:
            claimed = await s.execute(
                update(WebhookDelivery)
                .where(col(WebhookDelivery.id) == delivery_id, col(WebhookDelivery.applied_at).is_(None))
                .values(applied_at=now)
            )
            if not getattr(claimed, "rowcount", 0):
                return False  # applied meanwhile (by another pass)
            row = await s.get(WebhookDelivery, delivery_id)
            assert row is not None
            try:
                payload = json.loads(row.body)
            except ValueError:
                payload = {}
            entries = await self._apply_payload(s, row.event, payload if isinstance(payload, dict) else {})
            row.digest = [{"project_id": pid, **_entry_json(e)} for pid, e in entries]
            if not entries:
                row.digested_at = now
            s.add(row)
        return True

    async def webhooks_idle(self) -> None:
        """Apply every stored delivery now (tests and the CLI; the leader's worker does it in the background)."""
        while await self.apply_stored():
            pass

    async def apply_webhook(self, event: WebhookEvent) -> bool:
        """Store one `issues` / `milestone` event and apply what is stored; False for a delivery already stored."""
        stored = await self.store(
            guid=event.delivery_id,
            event=event.event,
            action=str(event.payload.get("action") or ""),
            body=json.dumps(event.payload),
        )
        if stored:
            await self.apply_stored()
        return stored

    async def _apply_payload(
        self, s: AsyncSession, event: str, payload: dict[str, Any]
    ) -> list[tuple[int, DigestEntry]]:
        repo = str((payload.get("repository") or {}).get("full_name") or "")
        sender = str((payload.get("sender") or {}).get("login") or "") or None
        entries: list[tuple[int, DigestEntry]] = []
        if event == "issues" and isinstance(payload.get("issue"), dict):
            gh = parse_issue(payload["issue"])
            if await self._stale(s, repo, gh):
                log.info("ignored a stale GitHub %s event for %s#%s", payload.get("action"), repo, gh.number)
                return []
        for project in await self._projects_for(s, repo):
            assert project.id is not None
            if event == "issues" and isinstance(payload.get("issue"), dict):
                found = await self._reconcile(s, project, parse_issue(payload["issue"]), sender)
            elif event == "milestone" and isinstance(payload.get("milestone"), dict):
                found = await self._milestone_event(
                    s, project, str(payload.get("action")), payload["milestone"], sender
                )
            else:
                found = []
            entries.extend((project.id, e) for e in found)
        return entries

    async def _stale(self, s: AsyncSession, repo: str, gh: GhIssue) -> bool:
        """True when an event for this issue with a later `updated_at` was already applied; else remember this one."""
        if gh.updated_at is None or not repo:
            return False
        key = repo.lower()[:200]
        version = await s.get(GitHubIssueVersion, (key, gh.number))
        if version is None:
            s.add(GitHubIssueVersion(repo=key, number=gh.number, updated_at=gh.updated_at))
            await s.flush()
            return False
        if gh.updated_at < version.updated_at:
            return True
        version.updated_at = gh.updated_at
        s.add(version)
        return False

    async def prune(self, *, days: int = RETENTION_DAYS) -> int:
        """Delete webhook deliveries (applied and digested) and dedupe records older than `days`."""
        cutoff = self.clock.now() - timedelta(days=days)
        async with self.db.session() as s:
            a = await s.execute(
                delete(WebhookDelivery).where(
                    col(WebhookDelivery.received_at) < cutoff,
                    col(WebhookDelivery.applied_at).is_not(None),
                    col(WebhookDelivery.digested_at).is_not(None),
                )
            )
            b = await s.execute(delete(ProcessedDelivery).where(col(ProcessedDelivery.received_at) < cutoff))
        return int(getattr(a, "rowcount", 0) or 0) + int(getattr(b, "rowcount", 0) or 0)

    async def poll(self, *, project_id: int) -> int:
        """Read the repository's issues (conditional: 304 when nothing changed) and apply what people changed
        in GitHub, for when no webhook can reach us. Returns the number of changes applied."""
        if self.gateway is None:
            return 0
        async with self.db.session() as s:
            project = await s.get(Project, project_id)
        if project is None or not project.repo:
            return 0
        try:
            await self.pacer.read()
            read = await self.gateway.list_issues(project.repo)
        except RateLimited as exc:
            self.pacer.pause(exc.wait_seconds(self.clock.now().timestamp()))
            return 0
        except GitHubError as exc:
            log.warning("polling %s failed: %s", project.repo, exc)
            return 0
        if read.not_modified:
            return 0
        entries: list[tuple[int, DigestEntry]] = []
        async with self.db.session() as s:
            project = await s.get(Project, project_id)
            assert project is not None
            index = await _IssueIndex.load(s, project)
            for gh in read.value:
                entries.extend((project_id, e) for e in await self._reconcile(s, project, gh, None, index))
        self._add_digest(entries)
        return len(entries)

    async def poll_all(self) -> int:
        """`poll` every project that has a repository."""
        async with self.db.session() as s:
            ids = [i for i in (await s.execute(select(Project.id).where(col(Project.repo).is_not(None)))).scalars()]
        return sum([await self.poll(project_id=i) for i in ids if i is not None])

    async def _projects_for(self, s: AsyncSession, repo: str) -> Sequence[Project]:
        if not repo:
            return []
        q = select(Project).where(func.lower(col(Project.repo)) == repo.lower())
        return list((await s.execute(q)).scalars())

    async def _reconcile(
        self, s: AsyncSession, project: Project, gh: GhIssue, sender: str | None, index: _IssueIndex | None = None
    ) -> list[DigestEntry]:
        """Three-way merge of one issue: GitHub's values against the last ones we knew (the GitHubIssue row);
        a field GitHub changed updates the task unless our side changed it too (then ours is pushed)."""
        index = index or await _IssueIndex.load(s, project, gh.number, task_id_in(gh.body))
        row = index.find(gh)
        if row is None:
            return []
        task = await s.get(Task, row.task_id)
        if task is None:
            return []
        members = index.members
        who = _person(members, sender)
        changes: list[str] = []
        actions: list[str] = []
        if gh.state != row.state:
            if task.status == row.state and task.status != gh.state:
                task.status = gh.state
                if gh.state == "open":  # reopened in GitHub: no longer superseded
                    task.superseded_at = task.superseded_by_record = task.superseded_note = None
                changes.append("closed" if gh.state == "closed" else "reopened")
                actions.append(f"github.issue_{changes[-1]}")
            row.state = gh.state
        if row.title is not None and gh.title != row.title:
            if task.title == row.title and gh.title.strip():
                task.title = gh.title[:256]
                changes.append(f"renamed to “{task.title}”")
                actions.append("github.issue_renamed")
            row.title = gh.title
        theirs = [a.lower() for a in gh.assignees]
        if sorted(theirs) != sorted(a.lower() for a in row.assignees):
            current = next((m for m in members.values() if m.user_id == task.assignee_user_id), None)
            current_login = (current.github_login or "").lower() if current else ""
            mapped = next((members[a] for a in theirs if a in members), None)
            if current_login and current_login in theirs:
                pass  # still assigned (someone was added alongside)
            elif mapped is not None:
                task.assignee_user_id = mapped.user_id
                changes.append(f"assigned to {_name(mapped)}")
                actions.append("github.issue_assigned")
            elif not theirs and current_login and current_login in (a.lower() for a in row.assignees):
                task.assignee_user_id = None
                changes.append("unassigned")
                actions.append("github.issue_unassigned")
            elif theirs:
                changes.append(f"assigned in GitHub to {', '.join(gh.assignees)} (no Slack user linked)")
            row.assignees = list(gh.assignees)
        if actions:
            task.updated_at = self.clock.now()
            await enqueue_sync(s, project=project, kind="issue", ref=task.id, now=self.clock.now())
            actor = Actor(
                project.team_id, members[sender.lower()].user_id if sender and sender.lower() in members else "github"
            )
            for action in actions:
                await self.audit(
                    s,
                    actor=actor,
                    action=action,
                    project_id=project.id,
                    task=task.number,
                    issue=gh.number,
                    login=sender,
                )
            self.kick()
        return [DigestEntry(Phase(task.phase), task.number, task.title, c, who) for c in changes]

    async def _milestone_event(
        self, s: AsyncSession, project: Project, action: str, data: dict[str, Any], sender: str | None
    ) -> list[DigestEntry]:
        row = (
            await s.execute(
                select(GitHubMilestone).where(
                    GitHubMilestone.project_id == project.id, GitHubMilestone.number == data.get("number")
                )
            )
        ).scalar_one_or_none()
        if row is None:
            return []
        who = _person(await self._members(s, project.team_id), sender)
        phase = Phase(row.phase)
        if action == "deleted":
            row.number, row.synced_hash = None, None  # one milestone per phase: the next sync recreates it
            await enqueue_sync(s, project=project, kind="milestone", ref=phase.value, now=self.clock.now())
            await self.audit(
                s,
                actor=Actor(project.team_id, "github"),
                action="github.milestone_deleted",
                project_id=project.id,
                milestone=row.title,
                login=sender,
            )
            return [DigestEntry(phase, None, row.title, "milestone deleted in GitHub (it will be recreated)", who)]
        if action in ("closed", "opened") and data.get("state") != row.state:
            return [DigestEntry(phase, None, row.title, f"milestone {action} in GitHub", who)]
        return []

    async def _members(self, s: AsyncSession, team_id: str) -> dict[str, Member]:
        rows = (
            await s.execute(select(Member).where(Member.team_id == team_id, col(Member.github_login).is_not(None)))
        ).scalars()
        return {(m.github_login or "").lower(): m for m in rows}

    # ------------------------------------------------------------------ the digest

    def _add_digest(self, entries: Sequence[tuple[int, DigestEntry]]) -> None:
        for project_id, entry in entries:
            self._digest.setdefault(project_id, []).append(entry)

    async def pending_digest(self, project_id: int) -> list[DigestEntry]:
        """Changes from GitHub not yet reported in Slack (stored webhook effects, then polled ones)."""
        async with self.db.session() as s:
            stored = [e for _, e in await self._stored_digest(s, project_id)]
        return stored + list(self._digest.get(project_id, []))

    async def _stored_digest(self, s: AsyncSession, project_id: int) -> list[tuple[WebhookDelivery, DigestEntry]]:
        rows = (
            await s.execute(
                select(WebhookDelivery)
                .where(col(WebhookDelivery.applied_at).is_not(None), col(WebhookDelivery.digested_at).is_(None))
                .order_by(col(WebhookDelivery.id))
            )
        ).scalars()
        return [(row, _entry(d)) for row in rows for d in row.digest if d.get("project_id") == project_id]

    async def flush_digest(self, *, project_id: int) -> Message | None:
        """Post one Slack message for the changes gathered since the last flush: per phase touched, tasks
        closed out of all, who changed what, and whether the phase's gate is now met. None when nothing changed.
        Stored webhook entries are marked digested in the same transaction, so each ends in exactly one digest."""
        async with self.db.session() as s:
            stored = await self._stored_digest(s, project_id)
            entries = [e for _, e in stored] + self._digest.pop(project_id, [])
            if not entries:
                return None
            project = await s.get(Project, project_id)
            if project is None:
                return None
            facts = await gather_facts(s, project)
            counts = {
                str(phase): (int(total), int(closed or 0))
                for phase, total, closed in (
                    await s.execute(
                        select(Task.phase, func.count(), func.count().filter(col(Task.status) == "closed"))
                        .where(Task.project_id == project_id, col(Task.superseded_at).is_(None))
                        .group_by(col(Task.phase))
                    )
                ).all()
            }
            now = self.clock.now()
            due = (
                await s.execute(
                    select(col(PhaseTarget.due)).where(
                        PhaseTarget.project_id == project_id, PhaseTarget.phase == project.phase
                    )
                )
            ).scalar_one_or_none()
            today = now.astimezone(ZoneInfo(project.timezone)).date()
            overdue = (due, (today - due).days) if due is not None and today > due else None
            for row in {id(r): r for r, _ in stored}.values():
                row.digest = [d for d in row.digest if d.get("project_id") != project_id]
                if not row.digest:
                    row.digested_at = now
                s.add(row)
            message = await self._post_digest(s, project, entries, facts, counts, overdue)
        if self.outbox is not None:
            await self.outbox.committed()
        return message

    async def _post_digest(
        self,
        s: AsyncSession,
        project: Project,
        entries: list[DigestEntry],
        facts: Any,
        counts: dict[str, tuple[int, int]],
        overdue: tuple[date, int] | None = None,
    ) -> Message:
        """Render the digest and queue it in `s` (the transaction that marks its entries digested)."""
        phases = []
        for phase in PHASE_ORDER:
            mine = [e for e in entries if e.phase is phase]
            if not mine:
                continue
            total, closed = counts.get(phase.value, (0, 0))
            gate = evaluate_gate(phase, facts)
            phases.append(
                {
                    "label": phase.label,
                    "total": total,
                    "closed": closed,
                    "gate": gate,
                    "current": phase.value == project.phase,
                    "entries": mine,
                }
            )
        changed = len(entries)
        message = render_message(
            "blocks/sync_digest.json.j2",
            text=f"{project.name}: {changed} change(s) from GitHub",
            project=project.name,
            repo=project.repo or "",
            phases=phases,
            overdue=overdue,
            current=Phase(project.phase).label,
            project_phase=project.phase,
            command=self.command,
        )
        if self.outbox is None:
            await self.messenger.post(team_id=project.team_id, channel_id=project.channel_id, message=message)
        else:
            await self.outbox.enqueue(
                s,
                team_id=project.team_id,
                project_id=project.id,
                kind="post",
                target=project.channel_id,
                message=message,
                key=f"digest:{project.id}:{uuid.uuid4().hex}",
                notify_user_id=project.lead_user_id,
            )
        return message

    async def flush_digests(self) -> int:
        """`flush_digest` for every project with gathered changes; returns the number of messages posted."""
        posted = 0
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(WebhookDelivery.digest).where(
                        col(WebhookDelivery.applied_at).is_not(None), col(WebhookDelivery.digested_at).is_(None)
                    )
                )
            ).scalars()
            stored = {int(d["project_id"]) for digest in rows for d in digest if "project_id" in d}
        for project_id in sorted(stored | set(self._digest)):
            posted += await self.flush_digest(project_id=project_id) is not None
        return posted

    async def aclose(self) -> None:
        """Close the gateway."""
        if self.gateway is not None:
            await self.gateway.close()


@dataclass
class _IssueIndex:
    """Our issue rows of one project, by task id and by issue number."""

    by_task: dict[str, GitHubIssue]
    by_number: dict[int, GitHubIssue]
    members: dict[str, Member]  # by lower-case GitHub login

    @classmethod
    async def load(
        cls, s: AsyncSession, project: Project, number: int | None = None, task_id: str | None = None
    ) -> _IssueIndex:
        q = select(GitHubIssue).where(GitHubIssue.project_id == project.id)
        if number is not None:
            q = q.where((col(GitHubIssue.number) == number) | (col(GitHubIssue.task_id) == (task_id or "")))
        rows = list((await s.execute(q)).scalars())
        members = (
            await s.execute(
                select(Member).where(Member.team_id == project.team_id, col(Member.github_login).is_not(None))
            )
        ).scalars()
        return cls(
            {r.task_id: r for r in rows},
            {r.number: r for r in rows if r.number is not None},
            {(m.github_login or "").lower(): m for m in members},
        )

    def find(self, gh: GhIssue) -> GitHubIssue | None:
        task_id = task_id_in(gh.body)
        row = self.by_task.get(task_id) if task_id else None
        row = row or self.by_number.get(gh.number)
        return row if row is not None and row.number == gh.number else None


def render_report_text(report: SyncReport) -> str:
    """What a run did, as plain text."""
    if report.plan is not None:
        return render_plan_text(report.plan)
    done = ", ".join(f"{k.replace('.', ' ')} {v}" for k, v in sorted(report.counts.items()) if v) or "no writes needed"
    text = f"Synced {report.project} → {report.repo}: {done}."
    if report.inbound:
        text += f" {report.inbound} change(s) read back from GitHub."
    if report.pending or report.failing:
        text += f" Still queued: {report.pending}; failing (retried automatically): {report.failing}."
    return text


async def cli_sync(settings: Settings, project_name: str | None, dry_run: bool) -> str:
    """`phasegate sync [--dry-run] [PROJECT]`: the plan (dry run or preview mode) or a real sync, as text."""
    db = Database(settings.database_url)
    service = SyncService.from_settings(db, SystemClock(), RecordingMessenger(), settings)
    try:
        async with db.session() as s:
            q = select(Project).order_by(col(Project.id))
            if project_name:
                q = q.where(Project.name == project_name)
            projects = list((await s.execute(q)).scalars())
        if not projects:
            return f"No project named {project_name}." if project_name else "There are no projects yet."
        texts = []
        for project in projects:
            assert project.id is not None
            actor = Actor(project.team_id, "cli")
            if project.sync_paused_reason == UNINSTALLED:  # resumed only by the workspace adding Phasegate again
                texts.append(f"{project.name}: skipped, its workspace removed Phasegate from Slack.")
                continue
            if dry_run or service.preview_mode:
                texts.append(render_plan_text(await service.plan(actor=actor, project_id=project.id)))
            else:
                texts.append(render_report_text(await service.run(actor=actor, project_id=project.id)))
        return "\n\n".join(texts)
    finally:
        await service.aclose()
        await db.dispose()
