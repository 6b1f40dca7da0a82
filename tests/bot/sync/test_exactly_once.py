"""Exactly once: crashes, lost responses, lagging search and a storm of faults never lose or duplicate work."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

import pytest
from sqlmodel import select

from bot.clock import FakeClock
from bot.db.models import GitHubIssue, OutboxItem, Task
from bot.db.session import Database
from bot.github.gateway import GhIssue, PyGithubGateway
from bot.messaging import RecordingMessenger
from bot.process import Phase
from bot.services import Services
from bot.sync.desired import task_id_in
from bot.sync.service import SyncService
from tests.bot.github.conftest import LEAD, REPO, add_member, add_tasks, make_gateway, new_project
from tests.fakes.github import FAULT_KINDS, FakeGitHub

Sleep = Callable[[float], Awaitable[None]]


class Killed(BaseException):
    """The process dies (not an error the sync could catch)."""


class DiesAfterCreate(PyGithubGateway):
    """GitHub creates the issue, then the process dies before our database hears of it."""

    async def create_issue(
        self,
        repo: str,
        *,
        title: str,
        body: str,
        milestone: int | None,
        labels: Sequence[str],
        assignees: Sequence[str],
    ) -> GhIssue:
        await super().create_issue(
            repo, title=title, body=body, milestone=milestone, labels=labels, assignees=assignees
        )
        raise Killed


def markers(fake: FakeGitHub) -> Counter[str | None]:
    return Counter(task_id_in(i["body"]) for i in fake.issues(REPO))


async def task_ids(db: Database) -> set[str]:
    async with db.session() as s:
        return set((await s.execute(select(Task.id))).scalars())


async def test_killed_between_create_and_database_write_restarts_to_exactly_one_issue(
    services: Services, db: Database, clock: FakeClock, github: FakeGitHub, fake_sleep: Sleep
) -> None:
    pid = await new_project(services)
    first = SyncService(db, clock, make_gateway(github, DiesAfterCreate), RecordingMessenger(), sleep=fake_sleep)
    with pytest.raises(Killed):
        await first.run(actor=LEAD, project_id=pid)
    await first.aclose()
    assert len(github.issues(REPO)) == 1  # GitHub has it; we never wrote its number down
    async with db.session() as s:
        assert [r.number for r in (await s.execute(select(GitHubIssue))).scalars()] == [None]

    restarted = SyncService(db, clock, make_gateway(github), RecordingMessenger(), sleep=fake_sleep)
    try:
        report = await restarted.run(actor=LEAD, project_id=pid)
    finally:
        await restarted.aclose()
    assert report.counts["issue.adopted"] == 1 and report.counts["issue.created"] == 1
    assert markers(github) == Counter(await task_ids(db))  # one issue per task, none twice
    assert github.stats.by_route["GET /search/issues"] == 1  # found by its marker
    async with db.session() as s:
        numbers = sorted(r.number or 0 for r in (await s.execute(select(GitHubIssue))).scalars())
    assert numbers == sorted(i["number"] for i in github.issues(REPO))


async def test_a_lost_response_with_lagging_search_is_found_by_listing_the_milestone(
    services: Services, sync: SyncService, github: FakeGitHub, db: Database
) -> None:
    pid = await new_project(services)
    github.search_index_delay = 1e9  # search never sees the new issue
    github.add_fault("drop_after_commit", route="/repos/{owner}/{repo}/issues", method="POST", count=1)
    report = await sync.run(actor=LEAD, project_id=pid)
    assert markers(github) == Counter(await task_ids(db))
    assert report.counts["issue.adopted"] == 1
    assert github.stats.by_route["GET /search/issues"] == 1
    assert github.stats.by_route["GET /repos/{owner}/{repo}/issues"] >= 2  # the milestone's issues, then the poll


async def test_lost_milestone_and_label_creates_are_adopted(
    services: Services, sync: SyncService, github: FakeGitHub
) -> None:
    pid = await new_project(services)
    github.add_fault("drop_after_commit", route="/repos/{owner}/{repo}/milestones", method="POST", count=2)
    github.add_fault("drop_after_commit", route="/repos/{owner}/{repo}/labels", method="POST", count=2)
    await sync.run(actor=LEAD, project_id=pid)
    state = github.state()[REPO]
    assert sorted(m["title"] for m in state["milestones"]) == sorted(f"genres · {p.label}" for p in Phase)
    assert len(state["labels"]) == 11 and len(state["issues"]) == 2


@pytest.mark.resilience
async def test_200_tasks_under_20_percent_faults_of_every_kind(
    services: Services, db: Database, clock: FakeClock, github: FakeGitHub, fake_sleep: Sleep
) -> None:
    started, fake_start = time.monotonic(), clock.now()
    pid = await new_project(services)
    await add_member(db, "UANA", name="Ana", login="ana-gh")
    await add_member(db, "UBOB", name="Bob", login="bob-gh")  # not assignable
    await add_tasks(services, pid, 198, assignees=("UANA", "UBOB", None))  # + 2 defaults = 200
    github.seed(20261126)
    github.enforce_secondary(per_minute=80, per_hour=500)
    share = 1 - 0.8 ** (1 / len(FAULT_KINDS))  # every kind equally likely, 20 % of requests in all
    for kind in sorted(FAULT_KINDS):
        github.add_fault(kind, probability=share, retry_after=2, delay=0.01 if kind == "slow" else 0.0)
    sync = SyncService(db, clock, make_gateway(github), RecordingMessenger(), sleep=fake_sleep)
    try:
        report = await sync.run(actor=LEAD, project_id=pid, max_wait=6 * 3600)
    finally:
        await sync.aclose()
    github.clear_faults()
    stats = github.stats
    kinds = Counter(f["kind"] for f in stats.faults)
    print(
        f"\n200 tasks under faults: {stats.requests} requests, {sum(kinds.values())} faults injected {dict(kinds)}, "
        f"{stats.writes} writes, {stats.secondary_refusals} secondary-limit refusals, outcome {report.counts}, "
        f"fake clock +{clock.now() - fake_start}, {time.monotonic() - started:.1f} s"
    )

    state = github.state()[REPO]
    assert set(kinds) == FAULT_KINDS and sum(kinds.values()) >= 0.15 * stats.requests
    assert sorted(m["title"] for m in state["milestones"]) == sorted(f"genres · {p.label}" for p in Phase)
    assert len(state["labels"]) == 11 and all(x["color"] != "ededed" for x in state["labels"])
    assert markers(github) == Counter(await task_ids(db))  # exactly 200 issues: none lost, none twice
    assert len(state["issues"]) == 200
    async with db.session() as s:
        tasks = {t.id: t for t in (await s.execute(select(Task))).scalars()}
        rows = {r.task_id: r for r in (await s.execute(select(GitHubIssue))).scalars()}
        statuses = Counter(i.status for i in (await s.execute(select(OutboxItem))).scalars())
    assert set(statuses) == {"done"}  # nothing left queued
    for issue in state["issues"]:
        task = tasks[task_id_in(issue["body"]) or ""]
        assert issue["milestone"]["title"] == f"genres · {Phase(task.phase).label}"
        assert sorted(x["name"] for x in issue["labels"]) == sorted(
            ["phasegate", f"phase/{task.phase}"] + ([f"role/{task.role}"] if task.role else [])
        )
        assert [a["login"] for a in issue["assignees"]] == (["ana-gh"] if task.assignee_user_id == "UANA" else [])
        assert rows[task.id].number == issue["number"]
    assert stats.secondary_refusals == 0  # our pacing kept under 80/min and 500/h by itself
