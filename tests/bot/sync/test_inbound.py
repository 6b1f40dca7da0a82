"""Changes made in GitHub come back: signed webhooks (once per delivery), polling, and one digest per flush."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.models.blocks import Block
from sqlmodel import col, select

from bot.db.models import AuditEntry, Task
from bot.db.session import Database
from bot.messaging import RecordingMessenger
from bot.process import Phase
from bot.services import Services
from bot.sync.inbound import WebhookEvent, make_webhook_handler, signature, verify_signature
from bot.sync.service import SyncService
from bot.sync.worker import SyncWorker
from tests.bot.github.conftest import LEAD, REPO, add_member, new_project
from tests.fakes.github import FakeGitHub

SECRET = "It's a Secret to Everybody"


def test_the_signature_matches_githubs_test_vector() -> None:
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert signature(SECRET, b"Hello, World!") == expected
    assert verify_signature(SECRET, b"Hello, World!", expected)
    assert not verify_signature(SECRET, b"Hello, World?", expected)
    assert not verify_signature(SECRET, b"Hello, World!", expected.replace("sha256=", "sha1="))
    assert not verify_signature(SECRET, b"Hello, World!", None)


@pytest.fixture
async def webhook_url(sync: SyncService) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/github/webhook", make_webhook_handler(sync, secret=SECRET))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/github/webhook"
    await runner.cleanup()


async def synced_project(services: Services, sync: SyncService) -> tuple[int, dict[str, int]]:
    """A project whose two Discovery tasks and one Define task have issues; returns task title → issue number."""
    pid = await new_project(services)
    await add_member(services.db, "UANA", name="Ana", login="ana-gh")
    await services.tasks.add(actor=LEAD, project_id=pid, title="Prepare the data", phase=Phase.DEFINE)
    await sync.run(actor=LEAD, project_id=pid)
    async with services.db.session() as s:
        from bot.db.models import GitHubIssue

        rows = (
            await s.execute(
                select(Task.title, GitHubIssue.number).join(GitHubIssue, col(GitHubIssue.task_id) == col(Task.id))
            )
        ).all()
    return pid, {str(t): int(n) for t, n in rows}


async def tasks_by_title(services: Services, pid: int) -> dict[str, Task]:
    return {t.title: t for t in await services.tasks.list(actor=LEAD, project_id=pid)}


async def github_audit(db: Database) -> list[str]:
    async with db.session() as s:
        rows = (await s.execute(select(AuditEntry.action).where(col(AuditEntry.action).like("github.issue%")))).all()
    return sorted(str(a) for (a,) in rows)


async def post(url: str, delivery: dict[str, Any], *, secret: str = SECRET) -> int:
    raw = json.dumps(delivery["payload"]).encode()
    headers = {
        "X-GitHub-Event": delivery["event"],
        "X-GitHub-Delivery": delivery["delivery"],
        "X-Hub-Signature-256": signature(secret, raw),
        "Content-Type": "application/json",
    }
    async with aiohttp.ClientSession() as http, http.post(url, data=raw, headers=headers) as resp:
        return resp.status


async def test_a_signed_delivery_applies_once_even_when_delivered_twice(
    services: Services, sync: SyncService, github: FakeGitHub, webhook_url: str
) -> None:
    pid, numbers = await synced_project(services, sync)
    github.webhook_target(webhook_url, SECRET)
    github.close_issue(REPO, numbers["Write the project brief"], by="ana-gh")
    github.assign_issue(REPO, numbers["Survey the available data"], "ana-gh", by="ana-gh")
    await github.flush_webhooks()
    await sync.webhooks_idle()
    assert [d["status"] for d in github.deliveries] == [202, 202]
    tasks = await tasks_by_title(services, pid)
    assert tasks["Write the project brief"].status == "closed"
    assert tasks["Survey the available data"].assignee_user_id == "UANA"
    assert await github_audit(services.db) == ["github.issue_assigned", "github.issue_closed"]

    # The lead reopens the task in Slack; the issue follows (and GitHub echoes that back, harmlessly).
    await services.tasks.set_status(actor=LEAD, project_id=pid, number=1, status="open")
    await sync.run_due()
    await github.flush_webhooks()
    await sync.webhooks_idle()
    assert github.issue(REPO, numbers["Write the project brief"])["state"] == "open"
    # GitHub's "Redeliver" keeps the GUID: answered 200 and not applied again — applying that old
    # "closed" event again would close the task the lead has just reopened.
    closed = github.deliveries[0]
    assert list(await asyncio.gather(post(webhook_url, closed), post(webhook_url, closed))) == [200, 200]
    await sync.webhooks_idle()
    assert (await tasks_by_title(services, pid))["Write the project brief"].status == "open"
    assert await github_audit(services.db) == ["github.issue_assigned", "github.issue_closed"]
    # Two copies racing are stored once (the GUID is unique). This old "closed" under a new GUID is a replay
    # older (by the issue's updated_at) than the reopen already applied: ignored, the task stays open.
    event = WebhookEvent("2f6f7c1e-race", "issues", closed["payload"])
    assert sorted(await asyncio.gather(sync.apply_webhook(event), sync.apply_webhook(event))) == [False, True]
    assert (await tasks_by_title(services, pid))["Write the project brief"].status == "open"
    assert await github_audit(services.db) == ["github.issue_assigned", "github.issue_closed"]


async def test_a_bad_signature_is_refused_and_changes_nothing(
    services: Services, sync: SyncService, github: FakeGitHub, webhook_url: str
) -> None:
    pid, numbers = await synced_project(services, sync)
    github.webhook_target(webhook_url, "not the secret")
    github.close_issue(REPO, numbers["Write the project brief"], by="ana-gh")
    await github.flush_webhooks()
    await sync.webhooks_idle()
    assert [d["status"] for d in github.deliveries] == [401]
    forged = {**github.deliveries[0], "delivery": "forged-1"}
    assert await post(webhook_url, forged, secret="guess") == 401
    assert (await tasks_by_title(services, pid))["Write the project brief"].status == "open"
    assert await github_audit(services.db) == []
    assert not await sync.seen(github.deliveries[0]["delivery"])
    async with aiohttp.ClientSession() as http, http.post(webhook_url, data=b"{}") as resp:
        assert resp.status == 401  # no signature at all


async def test_our_own_writes_echoed_back_change_nothing(
    services: Services, sync: SyncService, github: FakeGitHub, webhook_url: str
) -> None:
    pid, _ = await synced_project(services, sync)
    github.webhook_target(webhook_url, SECRET)
    await services.tasks.set_status(actor=LEAD, project_id=pid, number=1, status="closed")
    await services.tasks.set_status(actor=LEAD, project_id=pid, number=1, status="open")  # before the echo
    await sync.run_due()  # one PATCH… no: the task is open again, so nothing at all to write
    await services.tasks.set_status(actor=LEAD, project_id=pid, number=2, status="closed")
    await sync.run_due()
    await github.flush_webhooks()
    await sync.webhooks_idle()
    assert [d["action"] for d in github.deliveries] == ["closed"]
    tasks = await tasks_by_title(services, pid)
    assert tasks["Write the project brief"].status == "open" and tasks["Survey the available data"].status == "closed"
    assert (await sync.pending_digest(pid)) == [] and await github_audit(services.db) == []


async def test_the_digest_is_one_message_per_flush_with_progress_per_phase(
    services: Services, sync: SyncService, github: FakeGitHub, webhook_url: str, messenger: RecordingMessenger
) -> None:
    pid, numbers = await synced_project(services, sync)
    github.webhook_target(webhook_url, SECRET)
    github.close_issue(REPO, numbers["Write the project brief"], by="ana-gh")
    github.close_issue(REPO, numbers["Survey the available data"], by="mallory")
    github.edit_issue(REPO, numbers["Prepare the data"], title="Prepare the <!channel> data", by="ana-gh")
    await github.flush_webhooks()
    await sync.webhooks_idle()
    assert messenger.deliveries == []  # nothing posted per event

    message = await sync.flush_digest(project_id=pid)
    assert message is not None and [d.kind for d in messenger.to("C1")] == ["post"]
    for block in message.blocks:
        parsed = Block.parse(block)
        assert parsed is not None, f"unknown block: {block}"
        parsed.validate_json()
    sections = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    assert sections[0].startswith("*Discovery* — 2/2 tasks closed · gate not met (3 items missing) · current phase")
    assert "• Ana closed: #1 Write the project brief" in sections[0]
    assert "• mallory (GitHub) closed: #2 Survey the available data" in sections[0]
    assert sections[1].startswith("*Define* — 0/1 tasks closed")
    assert "renamed to “Prepare the &lt;!channel&gt; data”" in sections[1]  # no channel ping from GitHub text
    assert await sync.flush_digest(project_id=pid) is None
    assert len(messenger.deliveries) == 1


async def test_the_digest_says_when_the_current_phase_is_overdue(
    services: Services, sync: SyncService, github: FakeGitHub, webhook_url: str
) -> None:
    from datetime import date

    pid, numbers = await synced_project(services, sync)
    await services.gates.plan(actor=LEAD, project_id=pid, phase=Phase.DISCOVERY, due=date(2026, 2, 27))
    github.webhook_target(webhook_url, SECRET)
    github.close_issue(REPO, numbers["Write the project brief"], by="ana-gh")
    await github.flush_webhooks()
    await sync.webhooks_idle()
    message = await sync.flush_digest(project_id=pid)
    assert message is not None
    sections = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    assert sections[0] == (
        "⏰ *Discovery is overdue* by 3 days (target 2026-02-27). The lead can set a new date: "
        "`/phasegate plan discovery due=YYYY-MM-DD`."
    )


async def test_polling_applies_changes_and_costs_nothing_when_nothing_changed(
    services: Services, sync: SyncService, github: FakeGitHub
) -> None:
    pid, numbers = await synced_project(services, sync)
    github.close_issue(REPO, numbers["Prepare the data"], by="ana-gh")
    github.assign_issue(REPO, numbers["Write the project brief"], "ana-gh")
    github.edit_issue(REPO, numbers["Write the project brief"], assignees=[])  # …and unassigned again
    github.assign_issue(REPO, numbers["Survey the available data"], "lead-gh")  # no Slack user for this login
    assert await sync.poll(project_id=pid) == 2
    tasks = await tasks_by_title(services, pid)
    assert tasks["Prepare the data"].status == "closed"
    assert tasks["Survey the available data"].assignee_user_id is None
    changes = [e.change for e in (await sync.pending_digest(pid))]
    assert changes == ["assigned in GitHub to lead-gh (no Slack user linked)", "closed"]
    await sync.run_due()  # the closed task's issue needs no write: GitHub already has it closed
    github.reset_stats()
    assert await sync.poll(project_id=pid) == 0
    assert github.stats.requests == github.stats.not_modified == 1 and github.stats.counted == 0


async def test_the_worker_syncs_a_new_task_promptly_when_kicked(
    services: Services, sync: SyncService, github: FakeGitHub
) -> None:
    pid, _ = await synced_project(services, sync)
    worker = SyncWorker(sync, interval=3600, digest_interval=3600)
    await worker.start()
    try:
        await asyncio.sleep(0.05)
        await services.tasks.add(actor=LEAD, project_id=pid, title="Brand new")
        sync.kick()
        for _ in range(200):
            if any(i["title"] == "Brand new" for i in github.issues(REPO)):
                break
            await asyncio.sleep(0.02)
        assert any(i["title"] == "Brand new" for i in github.issues(REPO))
    finally:
        await worker.stop()
