"""Dead ends in GitHub: an archived repository or no App access pauses the sync; deleted and transferred issues."""

from __future__ import annotations

import json

import pytest
from sqlmodel import col, select

from bot.clock import FakeClock
from bot.db.models import GitHubIssue, OutboxMessage, Project
from bot.db.session import Database
from bot.github.gateway import AuthError, Gone, NotFoundError, RateLimited, RepoLocked, _error
from bot.messaging import RecordingMessenger
from bot.outbox import Outbox
from bot.rendering import render_message
from bot.services import Services
from bot.sync.service import SyncService
from tests.bot.github.conftest import LEAD, REPO, new_project
from tests.fakes.github import FakeGitHub

LOCKS = [
    ("archived", "archive_repo", "Repository was archived so is read-only.", "unarchive acme/genres"),
    ("no_access", "deny_integration", "Resource not accessible by integration", "in GitHub, give the Phasegate App access"),
]


def _dms(messenger: RecordingMessenger) -> list[str]:
    texts = []
    for d in messenger.deliveries:
        if d.kind == "dm":
            assert d.message is not None
            texts.append(d.message.text)
    return texts


@pytest.mark.parametrize(("reason", "lock", "github_says", "fix"), LOCKS, ids=[x[0] for x in LOCKS])
async def test_a_locked_repository_pauses_the_sync_tells_the_lead_once_and_an_explicit_sync_resumes(
    db: Database,
    clock: FakeClock,
    services: Services,
    sync: SyncService,
    github: FakeGitHub,
    messenger: RecordingMessenger,
    reason: str,
    lock: str,
    github_says: str,
    fix: str,
) -> None:
    sync.outbox = Outbox(db, clock, messenger)  # the lead is told through the durable Slack outbox
    pid = await new_project(services)
    getattr(github, lock)(REPO)

    github.reset_stats()
    first = await sync.run(actor=LEAD, project_id=pid)
    writes_first = github.stats.writes
    second = await sync.run(actor=LEAD, project_id=pid)  # still locked: paused again, nobody told twice
    due = await sync.run_due()  # the worker does not retry a paused project
    print(f"\n{reason}: first sync {writes_first} write(s) refused, counts {first.counts}; "
          f"total writes after two syncs and a worker pass: {github.stats.writes}; lead DMs: {len(_dms(messenger))}")

    assert first.counts.get("sync.paused") == 1 and second.counts.get("sync.paused") == 1
    assert writes_first == 1  # the first refused write stops the run: no retrying against the lock
    assert github.stats.writes == 2 and due.processed == 0
    dms = _dms(messenger)
    assert len(dms) == 1 and fix in dms[0] and "/phasegate sync" in dms[0]
    async with db.session() as s:
        project = await s.get(Project, pid)
        assert project is not None and project.sync_paused_reason == reason
        keys = list((await s.execute(select(OutboxMessage.dedupe_key))).scalars())
        assert keys.count(f"sync-paused:{pid}:{reason}") == 1
    status = await sync.status(actor=LEAD, project_id=pid)
    assert status.paused is not None and status.paused.startswith("paused: ") and f"— fix: {fix}" in status.paused
    report = await services.reports.status(actor=LEAD, project_id=pid)
    assert report.sync_paused == status.paused
    shown = json.dumps(
        render_message("blocks/status.json.j2", text="genres", r=report, stage="", preview=False).blocks,
        ensure_ascii=False,
    )
    assert "GitHub sync paused: " in shown and "— fix: " in shown and "change(s) waiting" in shown
    assert github_says  # the fake's wording is what the gateway recognises (see the fake)

    getattr(github, lock)(REPO, False)
    assert (await sync.run_due()).processed == 0  # fixed in GitHub, but only an explicit sync resumes
    await sync.request(actor=LEAD, project_id=pid)  # `/phasegate sync` by a member
    resumed = await sync.run_due()
    assert "sync.paused" not in resumed.counts and resumed.counts.get("issue.created") == 2  # Discovery defaults
    assert (await sync.status(actor=LEAD, project_id=pid)).paused is None
    assert len(github.state()[REPO]["milestones"]) == 5 and len(_dms(messenger)) == 1


async def test_a_deleted_issue_is_recreated_once_and_the_lead_told(
    db: Database, services: Services, sync: SyncService, github: FakeGitHub, messenger: RecordingMessenger
) -> None:
    pid = await new_project(services)
    await sync.run(actor=LEAD, project_id=pid)
    async with db.session() as s:
        row = (await s.execute(select(GitHubIssue).order_by(col(GitHubIssue.number)))).scalars().first()
        assert row is not None and row.number is not None
        task_id, old = row.task_id, row.number
    github.delete_issue(REPO, old)
    async with db.session() as s:  # make the issue need an update, whatever the task API looks like
        stored = await s.get(GitHubIssue, task_id)
        assert stored is not None
        stored.synced_hash = "stale"

    report = await sync.run(actor=LEAD, project_id=pid)
    again = await sync.run(actor=LEAD, project_id=pid)
    print(f"\ndeleted issue #{old}: counts {report.counts}; re-sync {again.counts}; lead DMs {len(_dms(messenger))}")

    assert report.counts.get("issue.deleted") == 1 and report.counts.get("issue.created") == 1
    assert "issue.created" not in again.counts and "issue.deleted" not in again.counts
    async with db.session() as s:
        stored = await s.get(GitHubIssue, task_id)
        assert stored is not None and stored.number not in (None, old)
        new = stored.number
    issues = [i for i in github.issues(REPO) if f"phasegate:task={task_id}" in (i["body"] or "")]
    assert [i["number"] for i in issues] == [new]
    dms = _dms(messenger)
    assert len(dms) == 1 and "was deleted" in dms[0] and "creates it again" in dms[0]


async def test_a_transferred_issue_is_followed_without_a_retry_loop(
    db: Database, services: Services, sync: SyncService, github: FakeGitHub
) -> None:
    github.add_repo("acme/elsewhere")
    pid = await new_project(services)
    await sync.run(actor=LEAD, project_id=pid)
    async with db.session() as s:
        row = (await s.execute(select(GitHubIssue).order_by(col(GitHubIssue.number)))).scalars().first()
        assert row is not None and row.number is not None
        task_id, old = row.task_id, row.number
        row.synced_hash = "stale"  # the task changed: the sync writes to the issue
    moved_to = github.transfer_issue(REPO, old, "acme/elsewhere")

    github.reset_stats()
    report = await sync.run(actor=LEAD, project_id=pid)
    print(f"\ntransferred issue #{old} → acme/elsewhere#{moved_to}: counts {report.counts}, "
          f"{github.stats.requests} requests, by status {dict(github.stats.by_status)}")

    assert report.failing == 0 and report.pending == 0 and "failed" not in report.counts
    # The write (301, followed, refused: our milestone is not there) and one empty PATCH that finds where it went.
    assert github.stats.by_status.get(301, 0) == 2 and github.stats.by_status.get(422, 0) == 1
    assert report.counts.get("issue.moved") == 1 and "issue.created" not in report.counts
    async with db.session() as s:
        stored = await s.get(GitHubIssue, task_id)
        assert stored is not None and stored.html_url is not None
        assert stored.html_url.endswith(f"/acme/elsewhere/issues/{moved_to}")
    assert [i["number"] for i in github.issues(REPO) if f"phasegate:task={task_id}" in (i["body"] or "")] == []
    github.reset_stats()
    again = await sync.run(actor=LEAD, project_id=pid)  # nothing left to retry against the old number
    assert github.stats.by_status.get(301, 0) == 0 and github.stats.writes == 0 and again.failing == 0


@pytest.mark.parametrize(
    ("status", "message", "kind", "reason"),
    [
        (403, "Repository was archived so is read-only.", RepoLocked, "archived"),
        (403, "Resource not accessible by integration", RepoLocked, "no_access"),
        (403, "You have exceeded a secondary rate limit", RateLimited, None),
        (403, "Resource not accessible by personal access token", AuthError, None),
        (410, "This issue was deleted", Gone, None),
        (404, "Not Found", NotFoundError, None),
    ],
)
def test_github_answers_map_to_dead_end_errors(status: int, message: str, kind: type, reason: str | None) -> None:
    err = _error(status, {}, {"message": message}, "PATCH /repos/acme/genres/issues/1")
    assert type(err) is kind and err.status == status
    assert getattr(err, "reason", None) == reason
