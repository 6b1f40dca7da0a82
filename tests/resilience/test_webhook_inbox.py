"""The webhook inbox against a real `phasegate serve`: a delivery answered 202 is applied, across kill -9 and SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from bot.clock import SystemClock
from bot.db.models import AuditEntry, GitHubIssue, Task, WebhookDelivery
from bot.db.session import Database
from bot.services import Services
from bot.sync.inbound import signature
from tests.bot.github.conftest import COLLABORATORS, REPO, add_tasks, new_project
from tests.resilience.procs import FakeSlackProc, Proc, Processes, await_until, bot_env
from tests.resilience.test_github_resilience import marker_counts, outbox_left, procs, served_database

pytestmark = pytest.mark.resilience
__all__ = ["procs", "served_database"]  # fixtures used by name

SECRET = "resilience-webhook-secret"
ISSUES = 10  # issues a flood is spread over: 400 webhooks (SIGTERM and rolling-restart floods)
KILL_ISSUES = 50  # the kill -9 flood: 2,000 webhooks (~50 s on SQLite, ~75 s on PostgreSQL here)
PER_ISSUE = 40  # closed / reopened events per issue, in order
BASE = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def seed(db: Database, n: int) -> tuple[int, dict[int, str]]:
    """A project on REPO whose `n` tasks have issues 1..n (open); returns the project id and number → title."""
    services = Services.build(db, SystemClock())
    pid = await new_project(services)
    await add_tasks(services, pid, n - 2)  # + the 2 Discovery defaults
    titles: dict[int, str] = {}
    async with db.session() as s:
        tasks = list((await s.execute(select(Task).where(Task.project_id == pid).order_by(col(Task.number)))).scalars())
        for number, task in enumerate(tasks, start=1):
            assert task.id is not None
            s.add(GitHubIssue(task_id=task.id, team_id=task.team_id, project_id=pid, number=number, title=task.title))
            titles[number] = task.title
    return pid, titles


def payload(number: int, title: str, seq: int) -> dict[str, Any]:
    closed = seq % 2 == 0
    return {
        "action": "closed" if closed else "reopened",
        "issue": {
            "number": number,
            "title": title,
            "body": "",
            "state": "closed" if closed else "open",
            "assignees": [],
            "updated_at": (BASE + timedelta(seconds=seq)).isoformat().replace("+00:00", "Z"),
        },
        "repository": {"full_name": REPO},
        "sender": {"login": "ana-gh"},
    }


class Flood:
    """One sender per issue, each posting its issue's events in order and re-sending an event until it is
    answered 202 (as GitHub's redelivery would): 503 while the bot shuts down, no connection while it is down."""

    def __init__(self, url: str | list[str], titles: dict[int, str]) -> None:
        self.urls = [url] if isinstance(url, str) else url  # issue n goes to urls[n % len], the next one on refusal
        self.titles = titles
        self.accepted = 0
        self.refused: Counter[str] = Counter()

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            await asyncio.gather(*(self._issue(http, n) for n in self.titles))

    async def _issue(self, http: aiohttp.ClientSession, number: int) -> None:
        for seq in range(PER_ISSUE):
            raw = json.dumps(payload(number, self.titles[number], seq)).encode()
            headers = {
                "X-GitHub-Event": "issues",
                "X-GitHub-Delivery": f"flood-{number}-{seq}",
                "X-Hub-Signature-256": signature(SECRET, raw),
                "Content-Type": "application/json",
            }
            target = number
            while True:
                url = self.urls[target % len(self.urls)]
                try:
                    async with http.post(url, data=raw, headers=headers) as resp:
                        if resp.status in (200, 202):
                            self.accepted += 1
                            break
                        self.refused[str(resp.status)] += 1
                except (aiohttp.ClientError, TimeoutError) as exc:
                    self.refused[exc.__class__.__name__] += 1
                target += 1
                await asyncio.sleep(0.2)


async def applied(db: Database) -> int:
    async with db.session() as s:
        n = (await s.execute(select(func.count()).where(col(WebhookDelivery.applied_at).is_not(None)))).scalar_one()
    return int(n)


async def state_changes(db: Database) -> int:
    async with db.session() as s:
        n = (
            await s.execute(
                select(func.count()).where(col(AuditEntry.action).in_(("github.issue_closed", "github.issue_reopened")))
            )
        ).scalar_one()
    return int(n)


async def final_states(db: Database, pid: int) -> Counter[str]:
    async with db.session() as s:
        return Counter((await s.execute(select(Task.status).where(Task.project_id == pid))).scalars())


def start(procs: Processes, url: str, slack: FakeSlackProc | None = None) -> Proc:
    slack = slack or procs.fake_slack()
    env = bot_env(database_url=url, slack_api_url=slack.api_url, github_api_url=None, GITHUB_WEBHOOK_SECRET=SECRET)
    return procs.bot(env)


async def check_all_applied(db: Database, pid: int, flood: Flood, bot: Proc) -> None:
    total = len(flood.titles) * PER_ISSUE

    async def done() -> bool:
        return await applied(db) == total

    try:
        await await_until(done, within=300, interval=0.2, what="every stored delivery to be applied")
    except TimeoutError as exc:
        raise bot.fail(str(exc)) from None
    assert flood.accepted == total
    # Every event flips its issue's state, applied once and in order: one state change per webhook.
    assert await state_changes(db) == total
    # The last event of each issue is a "reopened" (PER_ISSUE is even): every task is open again.
    assert (await final_states(db, pid))["open"] == len(flood.titles)


async def test_a_webhook_flood_answered_202_then_kill_9_are_all_applied_after_the_restart(
    served_database: str, procs: Processes
) -> None:
    db = Database(served_database)
    try:
        pid, titles = await seed(db, KILL_ISSUES)
        bot = await asyncio.to_thread(start, procs, served_database)
        flood = Flood(f"{bot.url}/github/webhook", titles)
        started = time.monotonic()
        await flood.run()
        sent = time.monotonic() - started
        bot.kill9()
        at_kill = await applied(db)
        bot = await asyncio.to_thread(bot.restart)
        started = time.monotonic()
        await check_all_applied(db, pid, flood, bot)
        print(
            f"\n{KILL_ISSUES * PER_ISSUE} webhooks then kill -9 ({make_url(served_database).get_backend_name()}): answered 202 "
            f"{flood.accepted} in {sent:.1f} s, applied at the kill {at_kill}, applied after the restart "
            f"{await applied(db)} (in {time.monotonic() - started:.1f} s), state changes {await state_changes(db)}"
        )
        await asyncio.to_thread(bot.stop)
    finally:
        await db.dispose()


async def test_sigterm_during_a_webhook_flood_exits_0_and_every_delivery_is_applied(
    served_database: str, procs: Processes
) -> None:
    db = Database(served_database)
    try:
        pid, titles = await seed(db, ISSUES)
        bot = await asyncio.to_thread(start, procs, served_database)
        flood = Flood(f"{bot.url}/github/webhook", titles)
        sending = asyncio.create_task(flood.run())

        async def some() -> bool:
            return flood.accepted >= 150

        await await_until(some, within=60, what="150 webhooks answered")
        os.kill(bot.pid, signal.SIGTERM)
        code = await asyncio.to_thread(bot.popen.wait, 30)
        at_stop = flood.accepted
        log = bot.log.read_text(errors="replace")[bot.log_offset :]
        assert code == 0, bot.log_tail()
        assert "Phasegate stopped cleanly" in log and "Traceback" not in log
        bot = await asyncio.to_thread(bot.restart)
        await sending
        await check_all_applied(db, pid, flood, bot)
        print(
            f"\nSIGTERM during a webhook flood ({make_url(served_database).get_backend_name()}): exit code {code}, "
            f"answered before the stop {at_stop}, refused while stopping/down {dict(flood.refused)} (re-sent), "
            f"applied {await applied(db)} of {ISSUES * PER_ISSUE}, state changes {await state_changes(db)}"
        )
        await asyncio.to_thread(bot.stop)
    finally:
        await db.dispose()


async def sigterm(bot: Proc) -> int | None:
    os.kill(bot.pid, signal.SIGTERM)
    code = await asyncio.to_thread(bot.popen.wait, 30)
    assert code == 0, bot.log_tail()
    assert "Phasegate stopped cleanly" in bot.log.read_text(errors="replace")[bot.log_offset :]
    return code


async def test_a_rolling_restart_of_two_replicas_during_a_webhook_flood_loses_nothing(
    served_database: str, procs: Processes
) -> None:
    if make_url(served_database).get_backend_name() == "sqlite":
        pytest.skip("replicas share a PostgreSQL database")
    db = Database(served_database)
    try:
        pid, titles = await seed(db, ISSUES)
        slack = await asyncio.to_thread(procs.fake_slack)
        a = await asyncio.to_thread(start, procs, served_database, slack)
        b = await asyncio.to_thread(start, procs, served_database, slack)
        flood = Flood([f"{a.url}/github/webhook", f"{b.url}/github/webhook"], titles)
        sending = asyncio.create_task(flood.run())
        codes = []
        for i, replica in enumerate((a, b)):

            async def enough(n: int = 100 * (i + 1)) -> bool:
                return flood.accepted >= n

            await await_until(enough, within=60, what="webhooks answered")
            codes.append(await sigterm(replica))
            restarted = await asyncio.to_thread(replica.restart)
            a, b = (restarted, b) if i == 0 else (a, restarted)
        await sending
        await check_all_applied(db, pid, flood, b)
        print(
            f"\nrolling restart of 2 replicas during a flood (postgresql): exit codes {codes}, "
            f"answered {flood.accepted}, refused while stopping {dict(flood.refused)} (re-sent to the other), "
            f"applied {await applied(db)} of {ISSUES * PER_ISSUE}, state changes {await state_changes(db)}"
        )
        await asyncio.to_thread(a.stop)
        await asyncio.to_thread(b.stop)
    finally:
        await db.dispose()


async def test_serve_and_two_cli_syncs_side_by_side_create_no_duplicate_issue(
    served_database: str, procs: Processes
) -> None:
    db = Database(served_database)
    try:
        services = Services.build(db, SystemClock())
        pid = await new_project(services)
        await add_tasks(services, pid, 58)  # + the 2 Discovery defaults = 60 issues
        fake = await asyncio.to_thread(procs.fake_github, repos={REPO: COLLABORATORS})
        fake.add_fault(
            "slow", route="/repos/{owner}/{repo}/issues", method="POST", probability=1.0, delay=0.15
        )  # overlap: without the lock, 20 duplicates
        slack = await asyncio.to_thread(procs.fake_slack)
        env = bot_env(
            database_url=served_database,
            slack_api_url=slack.api_url,
            github_api_url=fake.url,
            PHASEGATE_GITHUB_WRITES_PER_MINUTE="6000",
            PHASEGATE_GITHUB_WRITES_PER_HOUR="1000000",
        )
        bot = await asyncio.to_thread(procs.bot, env)
        started = time.monotonic()
        clis = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot.cli",
                "sync",
                "genres",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            for _ in range(2)
        ]
        outputs = [(await asyncio.wait_for(p.communicate(), 180))[0].decode(errors="replace") for p in clis]
        codes = [p.returncode for p in clis]

        async def drained() -> bool:
            return await outbox_left(db) == (0, 0)

        await await_until(drained, within=90, interval=0.2, what="the outbox to drain")
        counts = marker_counts(fake)
        dupes = sum(n - 1 for n in counts.values() if n > 1)
        print(
            f"\nserve + 2 x `phasegate sync` ({make_url(served_database).get_backend_name()}): exit codes {codes}, "
            f"issues {sum(counts.values())} for 60 tasks, duplicates {dupes}, in {time.monotonic() - started:.1f} s"
        )
        assert codes == [0, 0], outputs
        assert all("Traceback" not in o for o in outputs), outputs
        assert dupes == 0 and len(counts) == 60
        await asyncio.to_thread(bot.stop)
    finally:
        await db.dispose()
