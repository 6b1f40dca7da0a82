"""The webhook inbox in process: stale events, malformed payloads, pruning, and concurrent syncs that coalesce."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func
from sqlmodel import col, select

from bot.clock import FakeClock
from bot.db.models import OutboxItem, WebhookDelivery
from bot.db.session import Database
from bot.messaging import RecordingMessenger
from bot.services import Services
from bot.sync.inbound import signature
from bot.sync.service import SyncService
from tests.bot.github.conftest import LEAD, REPO
from tests.bot.sync.test_inbound import SECRET, synced_project, tasks_by_title, webhook_url

__all__ = ["webhook_url"]  # fixture used by name


async def post_raw(url: str, body: bytes, *, guid: str, event: str = "issues") -> int:
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": guid,
        "X-Hub-Signature-256": signature(SECRET, body),
        "Content-Type": "application/json",
    }
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as resp:
        return resp.status


def issue_event(number: int, title: str, state: str, updated_at: str) -> dict[str, Any]:
    return {
        "action": "closed" if state == "closed" else "reopened",
        "issue": {
            "number": number,
            "title": title,
            "body": "",
            "state": state,
            "assignees": [],
            "updated_at": updated_at,
        },
        "repository": {"full_name": REPO},
        "sender": {"login": "ana-gh"},
    }


async def stored(db: Database) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count()).select_from(WebhookDelivery))).scalar_one())


async def test_a_stale_closed_after_a_reopened_is_ignored(
    services: Services, sync: SyncService, webhook_url: str
) -> None:
    pid, numbers = await synced_project(services, sync)
    title = "Write the project brief"
    number = numbers[title]
    closed = issue_event(number, title, "closed", "2026-12-01T10:00:00Z")
    reopened = issue_event(number, title, "open", "2026-12-01T10:05:00Z")
    assert await post_raw(webhook_url, json.dumps(closed).encode(), guid="g-closed") == 202
    assert await post_raw(webhook_url, json.dumps(reopened).encode(), guid="g-reopened") == 202
    await sync.webhooks_idle()
    assert (await tasks_by_title(services, pid))[title].status == "open"
    # The same "closed" replayed under a new GUID (or arriving late): older than the reopen, so ignored.
    assert await post_raw(webhook_url, json.dumps(closed).encode(), guid="g-closed-replayed") == 202
    await sync.webhooks_idle()
    assert (await tasks_by_title(services, pid))[title].status == "open"
    # A newer "closed" still applies.
    newer = issue_event(number, title, "closed", "2026-12-01T10:06:00Z")
    assert await post_raw(webhook_url, json.dumps(newer).encode(), guid="g-closed-newer") == 202
    await sync.webhooks_idle()
    assert (await tasks_by_title(services, pid))[title].status == "closed"


@pytest.mark.parametrize(
    "body",
    [
        b'{"action": "closed"}',
        b'{"action": "closed", "repository": {"full_name": "acme/genres"}, "issue": "nope"}',
        b'{"action": "closed", "repository": {"full_name": "acme/genres"}, "issue": {"title": "no number"}}',
        b'{"action": "closed", "repository": {"full_name": "acme/genres"}, "issue": {"number": 1, "assignees": 5}}',
        b"[1, 2]",
        b"not json",
    ],
)
async def test_a_signed_malformed_payload_is_answered_400_without_a_traceback(
    db: Database, webhook_url: str, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert await post_raw(webhook_url, body, guid="malformed-1") == 400
    assert await stored(db) == 0
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def test_a_duplicate_guid_is_stored_once(db: Database, sync: SyncService, webhook_url: str) -> None:
    body = json.dumps(issue_event(999, "x", "closed", "2026-12-01T10:00:00Z")).encode()
    statuses = await asyncio.gather(*(post_raw(webhook_url, body, guid="same-guid") for _ in range(5)))
    assert sorted(statuses) == [200, 200, 200, 200, 202]
    assert await stored(db) == 1


async def test_old_applied_deliveries_are_pruned(db: Database, sync: SyncService, clock: FakeClock) -> None:
    body = json.dumps(issue_event(999, "x", "closed", "2026-12-01T10:00:00Z"))
    assert await sync.store(guid="old", event="issues", action="closed", body=body)
    await sync.webhooks_idle()
    clock.advance(timedelta(days=13))
    assert await sync.store(guid="new", event="issues", action="closed", body=body)
    await sync.webhooks_idle()
    clock.advance(timedelta(days=2))
    assert await sync.prune() >= 1
    async with db.session() as s:
        left = list((await s.execute(select(WebhookDelivery.guid))).scalars())
    assert left == ["new"]


async def test_two_concurrent_syncs_coalesce_into_one_run(services: Services, sync: SyncService, db: Database) -> None:
    pid, _ = await synced_project(services, sync)
    assert sync.engine is not None
    drains = 0
    drain = sync.engine.drain

    async def counting(**kwargs: Any) -> Any:
        nonlocal drains
        drains += 1
        return await drain(**kwargs)

    sync.engine.drain = counting  # type: ignore[method-assign]
    first, second = await asyncio.gather(sync.run(actor=LEAD, project_id=pid), sync.run(actor=LEAD, project_id=pid))
    assert first is second and drains == 1
    # Two `/phasegate sync` requests at once queue each thing once, with no error.
    await asyncio.gather(sync.request(actor=LEAD, project_id=pid), sync.request(actor=LEAD, project_id=pid))
    async with db.session() as s:
        keys = list((await s.execute(select(OutboxItem.dedupe_key).where(OutboxItem.project_id == pid))).scalars())
    assert len(keys) == len(set(keys)) and keys
    assert [k for k in keys if k.endswith(":labels:")] == [f"{pid}:labels:"]
    assert col(OutboxItem.id) is not None


async def test_a_webhook_received_by_a_replica_that_does_not_lead_ends_in_exactly_one_digest(
    services: Services, sync: SyncService, db: Database, clock: FakeClock
) -> None:
    _, numbers = await synced_project(services, sync)
    title = "Write the project brief"
    body = json.dumps(issue_event(numbers[title], title, "closed", "2026-12-01T10:00:00Z"))
    follower, leader = RecordingMessenger(), RecordingMessenger()
    receiving = SyncService(db, clock, None, follower)  # another replica: stores only
    leading = SyncService(db, clock, None, leader)  # the leader (a process of its own): applies and reports
    assert await receiving.store(guid="via-follower", event="issues", action="closed", body=body)
    assert await receiving.flush_digests() == 0  # stored, not applied yet: nothing to report
    await leading.webhooks_idle()
    assert await leading.flush_digests() == 1
    assert await leading.flush_digests() == 0 and await receiving.flush_digests() == 0
    assert len(leader.deliveries) == 1 and follower.deliveries == []
    message = leader.deliveries[0].message
    assert message is not None and "closed: #1 Write the project brief" in json.dumps(message.blocks)
