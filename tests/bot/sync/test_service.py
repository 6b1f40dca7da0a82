"""GitHub sync with PyGithub against the fake GitHub, on SQLite and PostgreSQL: what people see in GitHub."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import Block
from sqlmodel import select

from bot.clock import FakeClock
from bot.config import Settings
from bot.db.models import Decision, GitHubIssue, Meeting, OutboxItem, PhaseRecord, Proposal
from bot.db.session import Database
from bot.github.gateway import PyGithubGateway
from bot.github.pacing import Pacer
from bot.messaging import RecordingMessenger
from bot.process import Outcome, Phase, Role
from bot.services import Services
from bot.services.tasks import new_task
from bot.sync.plan import render_plan_message, render_plan_text
from bot.sync.service import SyncService, cli_sync
from tests.bot.github.conftest import LEAD, REPO, add_member, add_tasks, make_gateway, new_project
from tests.fakes.github import FakeGitHub

MENTION = re.compile(r"(?<![\w`])@[A-Za-z0-9]")


def by_title(fake: FakeGitHub, kind: str = "issues") -> dict[str, dict[str, Any]]:
    return {x["title"]: x for x in fake.state()[REPO][kind]}


async def test_first_sync_creates_everything_and_an_unchanged_resync_costs_nothing(
    services: Services, sync: SyncService, github: FakeGitHub
) -> None:
    pid = await new_project(services)
    await add_tasks(services, pid, 18)  # + the 2 Discovery defaults = 20 tasks

    report = await sync.run(actor=LEAD, project_id=pid)
    first = github.stats.as_dict()
    github.reset_stats()
    await sync.run(actor=LEAD, project_id=pid)
    again = github.stats.as_dict()
    print(
        f"\nfirst sync: {first['requests']} requests, {first['writes']} writes, {first['counted']} counted "
        f"against the rate limit; by route: {first['by_route']}"
    )
    print(
        f"unchanged re-sync: {again['requests']} requests, {again['writes']} writes, {again['counted']} counted, "
        f"{again['not_modified']} answered 304; by route: {again['by_route']}"
    )

    state = github.state()[REPO]
    assert len(state["milestones"]) == 5 and len(state["labels"]) == 11 and len(state["issues"]) == 20
    assert report.counts == {"label.created": 11, "milestone.created": 5, "issue.created": 20}
    assert first["writes"] == 11 + 5 + 20  # labels + milestones + issues, nothing else
    reads = first["requests"] - first["writes"]
    assert reads <= 4  # list labels (twice: before and after creating them), list issues (the poll)
    # The first re-sync lists the milestones once (is ours still open and titled as we left it?); then 304s.
    assert again["writes"] == 0 and again["counted"] <= 1
    github.reset_stats()
    await sync.run(actor=LEAD, project_id=pid)
    third = github.stats.as_dict()
    assert third["writes"] == 0 and third["counted"] == 0
    assert third["requests"] == third["not_modified"] >= 1


async def test_issues_carry_milestone_labels_marker_and_context(
    services: Services, sync: SyncService, github: FakeGitHub
) -> None:
    pid = await new_project(services)
    await services.tasks.add(
        actor=LEAD,
        project_id=pid,
        title="Label 500 songs",
        phase=Phase.DEFINE,
        role=Role.DATA_ENGINEER,
        body="Use the <b>2024</b> catalogue",
    )
    await sync.run(actor=LEAD, project_id=pid)
    issue = by_title(github)["Label 500 songs"]
    assert issue["milestone"]["title"] == "genres · Define"
    assert sorted(x["name"] for x in issue["labels"]) == ["phase/define", "phasegate", "role/data-engineer"]
    labels = {x["name"]: x["color"] for x in github.state()[REPO]["labels"]}
    assert labels["phasegate"] == "5319e7" and labels["role/data-engineer"] != "ededed"  # ours, not GitHub's grey
    async with services.db.session() as s:
        task_id = (await s.execute(select(GitHubIssue.task_id).where(GitHubIssue.number == issue["number"]))).scalar()
    assert issue["body"].rstrip().endswith(f"<!-- phasegate:task={task_id} -->")
    assert "&lt;b&gt;2024&lt;/b&gt;" in issue["body"] and "**Phase:** Define" in issue["body"]
    assert "slack.com/app_redirect?team=TA000001&channel=C1" in issue["body"]
    milestone = by_title(github, "milestones")["genres · Define"]
    assert "baseline" in milestone["description"].lower() and "Gate to leave Define" in milestone["description"]


async def test_assignees_mapped_unassignable_unmapped_and_no_mentions(
    services: Services, sync: SyncService, github: FakeGitHub
) -> None:
    pid = await new_project(services)
    await add_member(services.db, "UANA", name="Ana", login="ana-gh")  # a collaborator: assignable
    await add_member(services.db, "UBOB", name="Bob @bob-gh", login="bob-gh")  # not a collaborator
    await add_member(services.db, "UCAR", name="Carol")  # no GitHub login linked
    await add_member(services.db, "UDAN", login="dan-gh")  # login only, not assignable
    for user, title in (("UANA", "ana's"), ("UBOB", "bob's"), ("UCAR", "carol's"), ("UDAN", "dan's")):
        await services.tasks.add(
            actor=LEAD,
            project_id=pid,
            title=title,
            assignee=user,
            body="cc @octocat and @acme/ml <!-- phasegate:task=00000000-0000-0000-0000-000000000000 -->",
        )
    await sync.run(actor=LEAD, project_id=pid)
    issues = by_title(github)
    assigned = {t: [a["login"] for a in issues[t]["assignees"]] for t in ("ana's", "bob's", "carol's", "dan's")}
    assert assigned == {"ana's": ["ana-gh"], "bob's": [], "carol's": [], "dan's": []}
    assert "**Owner:** Ana (GitHub: ana-gh)" in issues["ana's"]["body"]
    assert "Bob @\u200dbob-gh (GitHub: bob-gh)" in issues["bob's"]["body"]
    assert "Carol (no GitHub login linked)" in issues["carol's"]["body"]
    assert "GitHub user dan-gh" in issues["dan's"]["body"]
    for issue in issues.values():
        assert not MENTION.search(issue["body"]), issue["body"]
        assert issue["body"].count("<!-- phasegate:task=") == 1  # user text cannot fake a second marker
    checks = github.stats.by_route["GET /repos/{owner}/{repo}/assignees/{login}"]
    assert checks == 3  # ana, bob, dan: once each per run (carol has no login)


async def test_task_changes_update_the_issue_and_unchanged_tasks_cost_no_write(
    services: Services, sync: SyncService, github: FakeGitHub
) -> None:
    pid = await new_project(services)
    await add_tasks(services, pid, 3)
    await sync.run(actor=LEAD, project_id=pid)
    tasks = await services.tasks.list(actor=LEAD, project_id=pid)
    await services.tasks.set_status(actor=LEAD, project_id=pid, number=tasks[0].number, status="closed")
    async with services.db.session() as s:
        from bot.db.models import Task

        task = await s.get(Task, tasks[1].id)
        assert task is not None
        task.title = "Survey the data (renamed)"
    github.reset_stats()
    report = await sync.run(actor=LEAD, project_id=pid)
    issues = by_title(github)
    assert issues[tasks[0].title]["state"] == "closed" and issues[tasks[0].title]["state_reason"] == "completed"
    assert "Survey the data (renamed)" in issues and tasks[1].title not in issues
    assert github.stats.writes == 2 and github.stats.by_route["PATCH /repos/{owner}/{repo}/issues/{number}"] == 2
    assert report.counts == {"issue.closed": 1, "issue.updated": 1}
    await services.tasks.set_status(actor=LEAD, project_id=pid, number=tasks[0].number, status="open")
    await sync.run(actor=LEAD, project_id=pid)
    assert by_title(github)[tasks[0].title]["state"] == "open"


async def test_milestones_follow_the_phases(
    services: Services, sync: SyncService, github: FakeGitHub, clock: FakeClock
) -> None:
    pid = await new_project(services)
    # Someone already has a (closed) milestone with one of our titles: left alone, ours gets a suffixed title.
    human = github.add_milestone(REPO, "genres · Develop", state="closed", description="by hand")
    async with services.db.session() as s:
        record = (await s.execute(select(PhaseRecord).where(PhaseRecord.project_id == pid))).scalar_one()
        record.target_date = date(2026, 3, 20)
    await sync.run(actor=LEAD, project_id=pid)
    ms = by_title(github, "milestones")
    assert len(ms) == 6
    assert ms["genres · Discovery"]["due_on"].startswith("2026-03-20T0")  # the day survives Pacific truncation
    assert ms["genres · Develop"]["number"] == human
    assert (ms["genres · Develop"]["state"], ms["genres · Develop"]["description"]) == ("closed", "by hand")
    assert ms["genres · Develop (Phasegate)"]["state"] == "open"
    develop = "genres · Develop (Phasegate)"

    for _ in range(3):  # Discovery → Define → Develop → Deliver
        await services.gates.advance(actor=LEAD, project_id=pid, override_reason="test")
    await sync.run(actor=LEAD, project_id=pid)
    states = {t: m["state"] for t, m in by_title(github, "milestones").items()}
    assert states == {
        "genres · Discovery": "closed",
        "genres · Define": "closed",
        "genres · Develop": "closed",
        develop: "closed",
        "genres · Deliver": "open",
        "genres · Deployment": "open",
    }
    await services.gates.advance(actor=LEAD, project_id=pid, outcome=Outcome.ITERATE, override_reason="again")
    await sync.run(actor=LEAD, project_id=pid)
    states = {t: m["state"] for t, m in by_title(github, "milestones").items()}
    assert states[develop] == "open" and states["genres · Deliver"] == "closed"
    assert states["genres · Develop"] == "closed"  # the person's milestone is never reopened by us
    assert len(github.milestones(REPO)) == 6


async def test_dry_run_lists_the_changes_and_writes_nothing(
    services: Services,
    sync: SyncService,
    github: FakeGitHub,
    db: Database,
    clock: FakeClock,
) -> None:
    pid = await new_project(services)
    await add_tasks(services, pid, 3)
    preview = SyncService(db, clock, None, RecordingMessenger())
    plan = await preview.plan(actor=LEAD, project_id=pid)
    text = render_plan_text(plan)
    assert preview.preview_mode and text.startswith("Preview mode: no GitHub credentials")
    assert "Milestones to create (5):" in text and "Issues to create (5):" in text and "  - #3 Task 000" in text
    report = await preview.run(actor=LEAD, project_id=pid)
    assert report.preview_mode and report.plan is not None
    assert github.stats.requests == 0

    plan = await sync.plan(actor=LEAD, project_id=pid)
    assert not plan.preview_mode and len(plan.of("label", "create")) == 11 and len(plan.of("issue", "create")) == 5
    assert github.stats.writes == 0
    await sync.run(actor=LEAD, project_id=pid)
    tasks = await services.tasks.list(actor=LEAD, project_id=pid)
    await services.tasks.set_status(actor=LEAD, project_id=pid, number=tasks[0].number, status="closed")
    await services.gates.advance(actor=LEAD, project_id=pid, override_reason="test")
    writes = github.stats.writes
    plan = await sync.plan(actor=LEAD, project_id=pid)
    new_tasks = [t for t in await services.tasks.list(actor=LEAD, project_id=pid) if t.number > tasks[-1].number]
    assert [(x.kind, x.action, x.title) for x in plan.steps] == [
        ("milestone", "close", "genres · Discovery"),
        ("issue", "close", f"#{tasks[0].number} {tasks[0].title}"),
    ] + [("issue", "create", f"#{t.number} {t.title}") for t in new_tasks]
    assert github.stats.writes == writes
    message = render_plan_message(plan)
    for block in message.blocks:
        parsed = Block.parse(block)
        assert parsed is not None, f"unknown block: {block}"
        parsed.validate_json()
    assert "Milestones to close" in str(message.blocks)


async def test_failing_work_is_shown_and_retried_never_dropped(
    services: Services,
    sync: SyncService,
    github: FakeGitHub,
    clock: FakeClock,
    fake_sleep: Callable[[float], Awaitable[None]],
) -> None:
    pid = await new_project(services)
    github.add_fault("502", route="/repos/{owner}/{repo}/issues", method="POST", count=1000)
    report = await sync.run(actor=LEAD, project_id=pid, max_wait=600)
    assert report.failing == 2 and github.issues(REPO) == []
    status = await sync.status(actor=LEAD, project_id=pid)
    assert [f.title for f in status.failing] == ["#1 Write the project brief", "#2 Survey the available data"]
    assert all(f.attempts >= 5 and "502" in (f.last_error or "") for f in status.failing)
    async with services.db.session() as s:
        rows = list((await s.execute(select(GitHubIssue))).scalars())
    assert [r.failures >= 5 and "502" in (r.last_error or "") for r in rows] == [True, True]
    github.clear_faults()
    await fake_sleep(3600)
    result = await sync.run_due()
    assert result.counts["issue.created"] == 2 and len(github.issues(REPO)) == 2
    status = await sync.status(actor=LEAD, project_id=pid)
    assert status.failing == () and status.pending == 0 and status.issues_synced == status.tasks == 2


async def test_retry_after_pauses_all_work_without_hammering(
    services: Services, sync: SyncService, github: FakeGitHub, clock: FakeClock
) -> None:
    pid = await new_project(services)
    github.add_fault("secondary_403", method="POST", count=1, retry_after=120)
    start = clock.now()
    await sync.run(actor=LEAD, project_id=pid)
    assert len(github.issues(REPO)) == 2 and len(github.milestones(REPO)) == 5
    assert github.stats.by_status[403] == 1  # refused once, then waited: not a single request in the pause
    resumed = datetime.fromtimestamp(github.stats.faults[0]["at"], UTC) + timedelta(seconds=120)
    created = [x["created_at"] for x in github.milestones(REPO) + github.issues(REPO)]
    assert min(datetime.fromisoformat(c.replace("Z", "+00:00")) for c in created) >= resumed
    assert clock.now() - start >= timedelta(seconds=120)


async def test_writes_are_paced_under_the_secondary_limits(
    clock: FakeClock, fake_sleep: Callable[[float], Awaitable[None]]
) -> None:
    pacer = Pacer(clock, fake_sleep, per_minute=80, per_hour=500)
    times = []
    for _ in range(600):
        async with pacer.write():
            times.append(clock.now())
    for i, t in enumerate(times):
        assert sum(1 for u in times[i:] if u < t + timedelta(minutes=1)) <= 80
        assert sum(1 for u in times[i:] if u < t + timedelta(hours=1)) <= 500
    assert times[1] - times[0] == timedelta(seconds=0.75)
    pacer.pause(30)
    before = clock.now()
    await pacer.read()
    assert clock.now() - before == timedelta(seconds=30)


async def test_enforced_secondary_limits_are_never_hit(
    services: Services, sync: SyncService, github: FakeGitHub
) -> None:
    github.enforce_secondary(per_minute=80, per_hour=500)
    pid = await new_project(services)
    await add_tasks(services, pid, 98)
    await sync.run(actor=LEAD, project_id=pid)
    assert len(github.issues(REPO)) == 100 and github.stats.secondary_refusals == 0


async def test_no_repository_and_an_unknown_project_are_said_plainly(
    services: Services, sync: SyncService, github: FakeGitHub, db: Database
) -> None:
    pid = await new_project(services, name="norepo", repo=None)
    plan = await sync.plan(actor=LEAD, project_id=pid)
    assert "no GitHub repository is set" in render_plan_text(plan)
    report = await sync.run(actor=LEAD, project_id=pid)
    assert report.plan is not None and github.stats.requests == 0
    # The outbox items queued when the project was created are settled, not retried forever.
    await sync.run_due()
    async with db.session() as s:
        statuses = {i.status for i in (await s.execute(select(OutboxItem))).scalars()}
    assert statuses == {"done"}


async def test_a_new_gateway_for_an_existing_sync_reuses_the_issue_numbers(
    services: Services,
    sync: SyncService,
    github: FakeGitHub,
    db: Database,
    clock: FakeClock,
    fake_sleep: Callable[[float], Awaitable[None]],
) -> None:
    pid = await new_project(services)
    await sync.run(actor=LEAD, project_id=pid)
    fresh = SyncService(db, clock, make_gateway(github), RecordingMessenger(), sleep=fake_sleep)
    try:
        github.reset_stats()
        report = await fresh.run(actor=LEAD, project_id=pid)
        assert report.counts == {} and github.stats.writes == 0  # a restart does not rewrite anything
    finally:
        await fresh.aclose()


async def test_the_cli_previews_without_credentials_and_syncs_with_them(
    services: Services, github: FakeGitHub, db: Database
) -> None:
    await new_project(services)
    preview = await cli_sync(Settings(DATABASE_URL=db.url), "genres", dry_run=False)
    assert preview.startswith("Preview mode: no GitHub credentials") and "Issues to create (2):" in preview
    assert await cli_sync(Settings(DATABASE_URL=db.url), "nope", dry_run=True) == "No project named nope."
    settings = Settings(
        DATABASE_URL=db.url,
        GITHUB_TOKEN="t",
        GITHUB_API_URL=str(github._own_url),
        # The CLI runs on the real clock: a generous budget keeps the test from waiting between writes.
        PHASEGATE_GITHUB_WRITES_PER_MINUTE=600_000,
        PHASEGATE_GITHUB_WRITES_PER_HOUR=10_000_000,
    )
    dry = await cli_sync(settings, "genres", dry_run=True)
    assert dry.startswith("Sync plan for genres → acme/genres: 18 change(s)") and github.stats.writes == 0
    done = await cli_sync(settings, None, dry_run=False)
    assert done == "Synced genres → acme/genres: issue created 2, label created 11, milestone created 5."
    assert len(github.issues(REPO)) == 2


async def test_a_decision_task_carries_the_decision_proposal_and_references(
    services: Services, sync: SyncService, github: FakeGitHub, clock: FakeClock
) -> None:
    pid = await new_project(services)
    async with services.db.session() as s:
        meeting = Meeting(
            team_id=LEAD.team_id,
            project_id=pid,
            kind="model-decision",
            phase="develop",
            starts_at=clock.now(),
            duration_min=60,
            created_by="ULEAD",
        )
        s.add(meeting)
        await s.flush()
        assert meeting.id is not None
        proposal = Proposal(
            team_id=LEAD.team_id,
            project_id=pid,
            meeting_id=meeting.id,
            author_user_id="UML",
            title="Audio spectrogram transformer",
            approach="transformer on spectrograms",
            references=["arXiv:2104.01778", "https://medium.com/@someone/ast-(explained)"],
            why="Beats CNNs on AudioSet; ping @octocat",
            benefit=4,
            cost_days=10,
            risk=3,
        )
        s.add(proposal)
        await s.flush()
        assert proposal.id is not None
        decision = Decision(
            team_id=LEAD.team_id,
            project_id=pid,
            meeting_id=meeting.id,
            proposal_id=proposal.id,
            rationale="Best benefit for the cost",
            decided_by="ULEAD",
            ready=True,
        )
        s.add(decision)
        await s.flush()
        project = await services.tasks.project_by_id(s, LEAD, pid)
        await new_task(
            s,
            project=project,
            actor=LEAD,
            now=clock.now(),
            title="Prototype AST",
            phase=Phase.DELIVER,
            origin="decision",
            decision_id=decision.id,
        )
    await sync.run(actor=LEAD, project_id=pid)
    body = by_title(github)["Prototype AST"]["body"]
    assert "### Decision\nBest benefit for the cost" in body
    assert "**Chosen proposal:** Audio spectrogram transformer — transformer on spectrograms" in body
    assert "- [arXiv:2104.01778](https://arxiv.org/abs/2104.01778)" in body
    assert "(https://medium.com/%40someone/ast-%28explained%29)" in body  # a link that cannot break or ping
    assert not MENTION.search(body) and "@\u200doctocat" in body


class LiesAboutAssignees(PyGithubGateway):
    """Says everyone is assignable: as if a person lost access between our check and the write."""

    async def is_assignable(self, repo: str, login: str) -> bool:
        return True


async def test_an_assignee_refused_at_write_time_is_named_in_text_instead(
    services: Services,
    db: Database,
    clock: FakeClock,
    github: FakeGitHub,
    fake_sleep: Callable[[float], Awaitable[None]],
) -> None:
    pid = await new_project(services)
    await add_member(db, "UBOB", name="Bob", login="bob-gh")  # not a collaborator
    await services.tasks.add(actor=LEAD, project_id=pid, title="bob's", assignee="UBOB")
    sync = SyncService(db, clock, make_gateway(github, LiesAboutAssignees), RecordingMessenger(), sleep=fake_sleep)
    try:
        await sync.run(actor=LEAD, project_id=pid)
        status = await sync.status(actor=LEAD, project_id=pid)
    finally:
        await sync.aclose()
    issue = by_title(github)["bob's"]
    assert issue["assignees"] == [] and "**Owner:** Bob (GitHub: bob-gh)" in issue["body"]
    assert github.stats.by_status[422] == 1 and len(github.issues(REPO)) == 3
    assert status.failing == () and status.pending == 0 and status.last_synced_at is not None
