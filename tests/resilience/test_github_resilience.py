"""GitHub misbehaving at scale, and the bot killed mid-sync: every task still ends up as exactly one issue."""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from bot.clock import FakeClock, SystemClock
from bot.db.migrate import upgrade
from bot.db.models import GitHubIssue, OutboxItem, Task
from bot.db.session import Database
from bot.messaging import RecordingMessenger
from bot.process import Phase
from bot.services import Services
from bot.sync.desired import task_id_in
from bot.sync.service import SyncService
from tests.bot.github import conftest as github_fixtures
from tests.bot.github.conftest import COLLABORATORS, LEAD, REPO, add_member, add_tasks, make_gateway, new_project
from tests.bot.sync.test_exactly_once import markers, task_ids
from tests.conftest import POSTGRES_URL, _libpq
from tests.fakes.github import FAULT_KINDS, FakeGitHub
from tests.resilience.procs import FakeGitHubProc, Processes, await_until, bot_env

pytestmark = pytest.mark.resilience
# The in-process fake GitHub on the fake clock, and a sleep that moves the clock (tests/bot/github/conftest.py).
github, fake_sleep = github_fixtures.github, github_fixtures.fake_sleep
Sleep = Callable[[float], Awaitable[None]]
ISSUES = "/repos/{owner}/{repo}/issues"


def duplicates(counts: Counter[str | None]) -> int:
    """Issues beyond the first for each task marker."""
    return sum(n - 1 for n in counts.values() if n > 1)


async def test_1000_tasks_over_5_phases_under_20_percent_faults_of_every_kind(
    services: Services, db: Database, clock: FakeClock, github: FakeGitHub, fake_sleep: Sleep
) -> None:
    started, fake_start = time.monotonic(), clock.now()
    pid = await new_project(services)
    await add_member(db, "UANA", name="Ana", login="ana-gh")
    await add_member(db, "UBOB", name="Bob", login="bob-gh")  # not a collaborator: never assigned
    await add_tasks(services, pid, 998, assignees=("UANA", "UBOB", None))  # + the 2 Discovery defaults = 1000
    tasks = await task_ids(db)
    github.seed(20261126)
    github.enforce_secondary(per_minute=80, per_hour=500)  # GitHub's own limits, refused with 403 if we exceed them
    share = 1 - 0.8 ** (1 / len(FAULT_KINDS))  # each kind equally likely; 20 % of all requests fail somehow
    for kind in sorted(FAULT_KINDS):
        github.add_fault(kind, probability=share, retry_after=2, delay=0.005 if kind == "slow" else 0.0)
    sync = SyncService(db, clock, make_gateway(github), RecordingMessenger(), sleep=fake_sleep)
    try:
        report = await sync.run(actor=LEAD, project_id=pid, max_wait=24 * 3600)
    finally:
        await sync.aclose()
    github.clear_faults()

    stats = github.stats
    kinds = Counter(f["kind"] for f in stats.faults)
    state = github.state()[REPO]
    found = markers(github)
    lost = tasks - set(found)
    print(
        f"\n1000 tasks / 5 phases under faults: {stats.requests} requests, {sum(kinds.values())} faults injected "
        f"({sum(kinds.values()) / stats.requests:.0%}) {dict(sorted(kinds.items()))}; tasks {len(tasks)}, "
        f"issues {len(state['issues'])}, milestones {len(state['milestones'])}, lost {len(lost)}, "
        f"duplicates {duplicates(found)}; outcome {dict(report.counts)}; secondary-limit refusals "
        f"{stats.secondary_refusals}; fake clock +{clock.now() - fake_start}, {time.monotonic() - started:.1f} s"
    )

    assert set(kinds) == FAULT_KINDS and 0.15 * stats.requests <= sum(kinds.values()) <= 0.25 * stats.requests
    assert len(tasks) == 1000 and not lost and duplicates(found) == 0 and None not in found
    assert len(state["issues"]) == 1000
    assert sorted(m["title"] for m in state["milestones"]) == sorted(f"genres · {p.label}" for p in Phase)
    assert len(state["labels"]) == 11 and all(x["color"] != "ededed" for x in state["labels"])
    async with db.session() as s:
        by_id = {t.id: t for t in (await s.execute(select(Task))).scalars()}
        rows = {r.task_id: r for r in (await s.execute(select(GitHubIssue))).scalars()}
        queued = Counter(i.status for i in (await s.execute(select(OutboxItem))).scalars())
    assert set(queued) == {"done"}  # nothing left waiting or failing
    per_milestone = Counter(i["milestone"]["title"] for i in state["issues"])
    assert per_milestone == Counter(f"genres · {Phase(t.phase).label}" for t in by_id.values())
    assert min(per_milestone.values()) >= 199  # spread over all five phases
    for issue in state["issues"]:
        task = by_id[task_id_in(issue["body"]) or ""]
        assert issue["milestone"]["title"] == f"genres · {Phase(task.phase).label}"
        assert sorted(x["name"] for x in issue["labels"]) == sorted(
            ["phasegate", f"phase/{task.phase}"] + ([f"role/{task.role}"] if task.role else [])
        )
        assert [a["login"] for a in issue["assignees"]] == (["ana-gh"] if task.assignee_user_id == "UANA" else [])
        assert issue["title"] == task.title and rows[task.id].number == issue["number"]
    assert stats.secondary_refusals == 0  # our pacing stayed under 80 writes/min and 500/h by itself


# --------------------------------------------------------------------------- kill -9 of a real process


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def served_database(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A migrated database a `phasegate serve` subprocess can use.

    PostgreSQL gets a database of its own (not just a schema): the leader lock is a database-wide advisory
    lock, so a bot under test must not compete for it with other test runs on the same server.
    """
    if request.param == "sqlite":
        path = tmp_path / "served.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    request.getfixturevalue("postgres_template")  # skips (or fails) as the other PostgreSQL tests do
    assert POSTGRES_URL is not None
    name = f"phasegate_res_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_libpq(POSTGRES_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(_libpq(POSTGRES_URL), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    """Subprocesses of one test, stopped at teardown (their logs are under tmp_path/logs)."""
    with Processes(tmp_path / "logs") as group:
        yield group


async def outbox_left(db: Database) -> tuple[int, int]:
    """(outbox items still pending or failing, issue rows without an issue number)."""
    async with db.session() as s:
        left = (
            await s.execute(select(func.count()).where(col(OutboxItem.status).in_(("pending", "failing"))))
        ).scalar_one()
        unnumbered = (await s.execute(select(func.count()).where(col(GitHubIssue.number).is_(None)))).scalar_one()
    return int(left), int(unnumbered)


async def numbered(db: Database) -> set[str]:
    """Tasks whose issue number the bot has recorded."""
    async with db.session() as s:
        return set((await s.execute(select(GitHubIssue.task_id).where(col(GitHubIssue.number).is_not(None)))).scalars())


def marker_counts(fake: FakeGitHubProc) -> Counter[str | None]:
    return Counter(task_id_in(i["body"]) for i in fake.issues(REPO))


async def test_kill_9_during_a_sync_then_restart_leaves_exactly_one_issue_per_task(
    served_database: str, procs: Processes
) -> None:
    db = Database(served_database)
    try:
        await _kill_and_restart(db, served_database, procs)
    finally:
        await db.dispose()


async def _kill_and_restart(db: Database, url: str, procs: Processes) -> None:
    services = Services.build(db, SystemClock())  # the bot runs on real time: its outbox must be due now
    pid = await new_project(services)
    await add_tasks(services, pid, 148)  # + the 2 Discovery defaults = 150 issues waiting in the outbox
    tasks = await task_ids(db)
    fake = await asyncio.to_thread(procs.fake_github, repos={REPO: COLLABORATORS})
    slack = await asyncio.to_thread(procs.fake_slack)
    # Every issue create takes a little while, as on a busy GitHub, so the sync is still under way when we look.
    fake.add_fault("slow", route=ISSUES, method="POST", probability=1.0, delay=0.03)
    env = bot_env(
        database_url=url,
        slack_api_url=slack.api_url,
        github_api_url=fake.url,
        PHASEGATE_GITHUB_WRITES_PER_MINUTE="6000",  # real time here: pace at 10 ms, not GitHub's 750 ms
        PHASEGATE_GITHUB_WRITES_PER_HOUR="1000000",
    )
    bot = await asyncio.to_thread(procs.bot, env)

    async def some_issues() -> int:
        n = len(await asyncio.to_thread(fake.issues, REPO))
        return n if n >= 30 else 0

    await await_until(some_issues, within=60, what="the first 30 issues")
    # The next create is applied by GitHub but its answer is lost; the bot will retry it after a backoff of
    # at least a second, and is killed before then: GitHub has an issue whose number the bot never learnt.
    seen_faults = len(fake.stats()["faults"])
    fake.clear_faults()
    fake.add_fault("drop_after_commit", route=ISSUES, method="POST", count=1)
    fake.add_fault("slow", route=ISSUES, method="POST", probability=1.0, delay=0.03)

    async def answer_lost() -> bool:
        faults = (await asyncio.to_thread(fake.stats))["faults"][seen_faults:]
        return any(f["kind"] == "drop_after_commit" for f in faults)

    await await_until(answer_lost, within=30, what="a create whose answer was lost")
    bot.kill9()
    await asyncio.sleep(0.2)  # a create in flight when the bot died finishes (or not) in GitHub
    before = marker_counts(fake)
    orphans = set(before) - await numbered(db)  # created in GitHub, but the bot never wrote the number down
    assert 30 < len(before) < len(tasks), "the kill must land mid-sync"
    assert len(orphans) >= 1

    # After the restart, the next three creates are applied by GitHub but their answers are lost.
    fake.clear_faults()
    fake.add_fault("drop_after_commit", route=ISSUES, method="POST", count=3)
    bot = await asyncio.to_thread(bot.restart)

    async def drained() -> bool:
        return await outbox_left(db) == (0, 0)

    try:
        await await_until(drained, within=90, interval=0.2, what="the outbox to drain after the restart")
    except TimeoutError as exc:
        raise bot.fail(str(exc)) from None
    await asyncio.to_thread(bot.stop)

    after = marker_counts(fake)
    stats = fake.stats()
    dropped = sum(1 for f in stats["faults"] if f["kind"] == "drop_after_commit")
    print(
        f"\nkill -9 mid-sync ({make_url(url).get_backend_name()}): tasks {len(tasks)}, issues before the kill "
        f"{len(before)} (created in GitHub but unknown to the bot: {len(orphans)}), issues after the restart "
        f"{sum(after.values())}, duplicates {duplicates(after)}, lost responses {dropped} (1 before the kill, 3 after), "
        f"searches by marker {stats['by_route'].get('GET /search/issues', 0)}"
    )
    assert dropped == 1 + 3
    assert after == Counter(dict.fromkeys(tasks, 1))  # exactly one issue per task: none lost, none twice
    state = fake.state()[REPO]
    assert sorted(m["title"] for m in state["milestones"]) == sorted(f"genres · {p.label}" for p in Phase)
    assert len(state["labels"]) == 11
    numbers = {task_id_in(i["body"]): i["number"] for i in state["issues"]}
    async with db.session() as s:
        rows = {r.task_id: r.number for r in (await s.execute(select(GitHubIssue))).scalars()}
    assert rows == numbers  # every task's row knows its issue's number
