"""The running app with GitHub configured: tasks become issues, and an issue closed in GitHub comes back."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bot.db.models import Task
from bot.services import Actor
from tests.fakes.github import FakeGitHub
from tests.handlers.harness import SlackHarness, running_app

SECRET = "webhook-secret"
REPO = "acme/genres"


@pytest.fixture
async def github() -> AsyncIterator[FakeGitHub]:
    fake = FakeGitHub()
    await fake.start()
    fake.add_repo(REPO, collaborators=["lena-gh"])
    yield fake
    await fake.stop()


@pytest.fixture
async def slack(database_url: str, github: FakeGitHub) -> AsyncIterator[SlackHarness]:
    assert github._own_url is not None
    async with running_app(
        database_url,
        GITHUB_TOKEN="github_pat_test",
        GITHUB_API_URL=github._own_url,
        GITHUB_WEBHOOK_SECRET=SECRET,
        PHASEGATE_GITHUB_WRITES_PER_MINUTE="6000",
        PHASEGATE_GITHUB_WRITES_PER_HOUR="100000",
    ) as harness:
        github.webhook_target(f"{harness.url}/github/webhook", SECRET)
        yield harness


async def eventually(read: Callable[[], Awaitable[object]], expected: object, within: float = 10.0) -> None:
    """Poll an async read until it equals `expected` (the webhook's work is applied after its 202)."""
    deadline = asyncio.get_running_loop().time() + within
    while (got := await read()) != expected:
        assert asyncio.get_running_loop().time() < deadline, got
        await asyncio.sleep(0.02)


async def statuses(slack: SlackHarness) -> dict[int, str]:
    from sqlmodel import select

    async with slack.app.db.session() as s:
        return {t.number: t.status for t in (await s.execute(select(Task))).scalars()}


async def test_tasks_become_issues_and_a_close_in_github_closes_the_task_once(
    slack: SlackHarness, github: FakeGitHub
) -> None:
    await slack.answer(await slack.command("init genres repo=acme/genres"))
    issues = await slack.wait_for(lambda: len(github.issues(REPO)) == 2 and github.issues(REPO), within=20)
    first = min(issues, key=lambda i: i["number"])
    assert "<!-- phasegate:task=" in first["body"] and first["milestone"]["title"] == "genres · Discovery"

    github.close_issue(REPO, first["number"], by="lena-gh")
    await github.flush_webhooks()
    delivery = next(d for d in github.deliveries if d["event"] == "issues" and d["action"] == "closed")
    assert delivery["status"] in (200, 202)
    await eventually(lambda: statuses(slack), {1: "closed", 2: "open"})

    # GitHub's manual redelivery keeps the GUID: answered, applied once.
    raw = json.dumps(delivery["payload"]).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": delivery["delivery"],
        "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest(),
    }
    async with slack.session.post(f"{slack.url}/github/webhook", data=raw, headers=headers) as resp:
        assert resp.status == 200
    await slack.app.core.sync.webhooks_idle()
    entries = await slack.app.services.audit.entries(actor=Actor("T0TEAM0001", "U0LEAD0001"))
    assert [e.action for e in entries].count("github.issue_closed") == 1

    # A forged delivery is refused and changes nothing.
    forged = json.dumps({**delivery["payload"], "action": "reopened"}).encode()
    async with slack.session.post(
        f"{slack.url}/github/webhook", data=forged, headers={**headers, "X-GitHub-Delivery": "forged-1"}
    ) as resp:
        assert resp.status == 401
    assert (await statuses(slack))[1] == "closed"
