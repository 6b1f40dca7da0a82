"""Iterations leave a clean record in GitHub: superseded Deliver tasks closed as not planned, exactly one comment
linking the iterate, kept tasks left alone, the iteration in milestones, issue bodies linking the decision's thread."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import col, select

from bot.clock import FakeClock
from bot.db.models import Decision, GitHubIssue, Meeting, OutboxMessage, PhaseRecord, Proposal, Task
from bot.db.session import Database
from bot.errors import InvalidInput, NotAllowed
from bot.messaging import RecordingMessenger
from bot.process import Outcome, Phase
from bot.rendering import Message
from bot.services import Services
from bot.services.base import Announce
from bot.services.gates import AdvanceResult
from bot.services.tasks import new_task
from bot.slack_client import SlackMessenger, make_client
from bot.sync.service import SyncService
from tests.bot.github.conftest import LEAD, REPO, new_project
from tests.conftest import actor
from tests.fakes.github import FakeGitHub
from tests.fakes.slack import FakeSlack

COMMENTS_ROUTE = "/repos/{owner}/{repo}/issues/{number}/comments"


def issues_by_title(fake: FakeGitHub) -> dict[str, dict[str, Any]]:
    return {x["title"]: x for x in fake.state()[REPO]["issues"]}


def comments_on(fake: FakeGitHub, number: int) -> list[str]:
    return [c["body"] for c in fake.state()[REPO]["comments"] if c["issue_url"].endswith(f"/issues/{number}")]


def announced() -> Announce[AdvanceResult]:
    return Announce(lambda r: Message(text=f"{r.from_phase.label} → {r.to_phase.label if r.to_phase else 'done'}"))


async def to_deliver_with_tasks(services: Services, pid: int, titles: tuple[str, ...]) -> None:
    for _ in range(3):  # Discovery → Define → Develop → Deliver
        await services.gates.advance(actor=LEAD, project_id=pid, override_reason="test")
    for title in titles:
        await services.tasks.add(actor=LEAD, project_id=pid, title=title, phase=Phase.DELIVER)


async def numbered(services: Services, pid: int) -> dict[str, int]:
    async with services.db.session() as s:
        return {t.title: t.number for t in (await s.execute(select(Task).where(Task.project_id == pid))).scalars()}


async def test_iterate_closes_the_open_deliver_tasks_as_not_planned_with_one_comment(
    services: Services, sync: SyncService, github: FakeGitHub, messenger: RecordingMessenger
) -> None:
    pid = await new_project(services)
    await to_deliver_with_tasks(services, pid, ("Prototype the CNN", "Build the feature cache", "Ship the demo"))
    await services.tasks.add(actor=LEAD, project_id=pid, title="Label 500 songs", phase=Phase.DEVELOP)
    n = await numbered(services, pid)
    await services.tasks.set_status(actor=LEAD, project_id=pid, number=n["Ship the demo"], status="closed")
    await sync.run(actor=LEAD, project_id=pid)

    result = await services.gates.advance(
        actor=LEAD, project_id=pid, outcome=Outcome.ITERATE, announce=announced()
    )
    async with services.db.session() as s:
        defaults = [t.number for t in (await s.execute(select(Task).where(Task.origin == "default"))).scalars()
                    if t.phase == "deliver"]
    assert defaults  # Deliver's own default tasks of that iteration go too (the next Deliver makes new ones)
    assert result.superseded == tuple(sorted([*defaults, n["Prototype the CNN"], n["Build the feature cache"]]))
    assert result.iteration == 1
    plan = await sync.plan(actor=LEAD, project_id=pid)
    closing = {st.title: st.detail for st in plan.of("issue", "close")}
    assert len(closing) == len(result.superseded)
    assert closing[f"#{n['Prototype the CNN']} Prototype the CNN"] == "as not planned (superseded)"
    await sync.run(actor=LEAD, project_id=pid)

    issues = issues_by_title(github)
    for title in ("Prototype the CNN", "Build the feature cache"):
        issue = issues[title]
        assert (issue["state"], issue["state_reason"]) == ("closed", "not_planned"), title
        (comment,) = comments_on(github, issue["number"])
        assert comment.startswith("**Superseded.** genres went back from Deliver to Develop (iteration 2)")
        assert "[The decision to iterate, in Slack](https://slack.example/archives/C1/p" in comment
    # Done before the iterate: closed as completed, no comment; another phase's task is left open.
    assert (issues["Ship the demo"]["state"], issues["Ship the demo"]["state_reason"]) == ("closed", "completed")
    assert comments_on(github, issues["Ship the demo"]["number"]) == []
    assert issues["Label 500 songs"]["state"] == "open"
    # The milestones name the iteration; status counts superseded tasks apart from the closed ones.
    milestones = {m["title"]: m for m in github.state()[REPO]["milestones"]}
    assert "Iteration 2:" in milestones["genres · Develop"]["description"]
    assert "Iteration 2:" in milestones["genres · Deliver"]["description"]
    assert "Iteration" not in milestones["genres · Define"]["description"]
    status = await services.reports.status(actor=LEAD, project_id=pid)
    deliver = next(p for p in status.progress if p.phase is Phase.DELIVER)
    assert (deliver.total, deliver.closed, deliver.superseded) == (1, 1, len(result.superseded))
    # Nothing more to write: a re-sync adds no comment and changes nothing.
    github.reset_stats()
    await sync.run(actor=LEAD, project_id=pid)
    assert github.stats.as_dict()["writes"] == 0


async def test_the_superseded_comment_is_written_once_when_the_answer_is_lost(
    services: Services, sync: SyncService, github: FakeGitHub
) -> None:
    pid = await new_project(services)
    await to_deliver_with_tasks(services, pid, ("Prototype the CNN",))
    await sync.run(actor=LEAD, project_id=pid)
    await services.gates.advance(actor=LEAD, project_id=pid, outcome=Outcome.ITERATE, announce=announced())
    github.add_fault("drop_after_commit", route=COMMENTS_ROUTE, method="POST")  # made, but the answer is lost
    await sync.run(actor=LEAD, project_id=pid)
    await sync.run(actor=LEAD, project_id=pid)
    issue = issues_by_title(github)["Prototype the CNN"]
    assert issue["state_reason"] == "not_planned"
    assert len(comments_on(github, issue["number"])) == 1
    async with services.db.session() as s:
        task_id = (await s.execute(select(GitHubIssue.task_id).where(GitHubIssue.number == issue["number"]))).scalar()
        row = await s.get(GitHubIssue, task_id)
        assert row is not None and row.superseded_comment == "done"


async def test_a_failed_comment_is_retried_without_closing_again(
    services: Services, sync: SyncService, github: FakeGitHub
) -> None:
    pid = await new_project(services)
    await to_deliver_with_tasks(services, pid, ("Prototype the CNN",))
    await sync.run(actor=LEAD, project_id=pid)
    await services.gates.advance(actor=LEAD, project_id=pid, outcome=Outcome.ITERATE, announce=announced())
    github.add_fault("500", route=COMMENTS_ROUTE, method="POST", count=1)
    await sync.run(actor=LEAD, project_id=pid)
    issue = issues_by_title(github)["Prototype the CNN"]
    assert issue["state_reason"] == "not_planned" and len(comments_on(github, issue["number"])) == 1


async def test_keep_tasks_leaves_the_deliver_tasks_open(
    services: Services, sync: SyncService, github: FakeGitHub
) -> None:
    pid = await new_project(services)
    await to_deliver_with_tasks(services, pid, ("Prototype the CNN",))
    await sync.run(actor=LEAD, project_id=pid)
    result = await services.gates.advance(
        actor=LEAD, project_id=pid, outcome=Outcome.ITERATE, keep_tasks=True, announce=announced()
    )
    number = (await numbered(services, pid))["Prototype the CNN"]
    assert result.kept == (number,)
    assert result.superseded and number not in result.superseded  # Deliver's defaults: the next Deliver adds them
    await sync.run(actor=LEAD, project_id=pid)
    issue = issues_by_title(github)["Prototype the CNN"]
    assert issue["state"] == "open" and comments_on(github, issue["number"]) == []


async def test_reopening_a_superseded_task_makes_it_ordinary_again(
    services: Services, sync: SyncService, github: FakeGitHub
) -> None:
    pid = await new_project(services)
    await to_deliver_with_tasks(services, pid, ("Prototype the CNN",))
    await services.gates.advance(actor=LEAD, project_id=pid, outcome=Outcome.ITERATE, announce=announced())
    await sync.run(actor=LEAD, project_id=pid)
    number = (await numbered(services, pid))["Prototype the CNN"]
    task = await services.tasks.set_status(actor=LEAD, project_id=pid, number=number, status="open")
    assert task.superseded_at is None
    await sync.run(actor=LEAD, project_id=pid)
    await services.tasks.set_status(actor=LEAD, project_id=pid, number=number, status="closed")
    await sync.run(actor=LEAD, project_id=pid)
    issue = issues_by_title(github)["Prototype the CNN"]
    assert (issue["state"], issue["state_reason"]) == ("closed", "completed")
    assert len(comments_on(github, issue["number"])) == 1  # the superseded comment, once


async def test_issue_bodies_link_the_decisions_thread(
    services: Services, sync: SyncService, github: FakeGitHub, clock: FakeClock
) -> None:
    pid = await new_project(services)
    async with services.db.session() as s:
        meeting = Meeting(
            team_id=LEAD.team_id, project_id=pid, kind="model-decision", phase="develop", starts_at=clock.now(),
            duration_min=60, created_by="ULEAD",
        )
        s.add(meeting)
        await s.flush()
        assert meeting.id is not None
        proposal = Proposal(
            team_id=LEAD.team_id, project_id=pid, meeting_id=meeting.id, author_user_id="UML", title="CNN",
            approach="cnn", references=["arXiv:1609.09430"], why="cheap", benefit=3, cost_days=3, risk=1,
        )
        s.add(proposal)
        await s.flush()
        assert proposal.id is not None
        decision = Decision(
            team_id=LEAD.team_id, project_id=pid, meeting_id=meeting.id, proposal_id=proposal.id,
            rationale="cheapest", decided_by="ULEAD", ready=True,
        )
        s.add(decision)
        await s.flush()
        assert decision.id is not None
        decision_id = decision.id
        project = await services.tasks.project_by_id(s, LEAD, pid)
        await new_task(s, project=project, actor=LEAD, now=clock.now(), title="Prototype the CNN",
                       phase=Phase.DELIVER, origin="decision", decision_id=decision.id)
    # Synced before Slack has posted the record: the body links to the channel for now.
    await sync.run(actor=LEAD, project_id=pid)
    assert "slack.com/app_redirect?team=TA000001&channel=C1" in issues_by_title(github)["Prototype the CNN"]["body"]
    # The record is posted (its ts and chat.getPermalink kept on the decision): the body is updated to the thread.
    assert services.outbox is not None
    await services.outbox.send(
        team_id=LEAD.team_id, project_id=pid, kind="post", target="C1", message=Message(text="Decision"),
        key=f"decision:{decision_id}:record", ts_for=f"decision:{decision_id}",
    )
    async with services.db.session() as s:
        row = await s.get(Decision, decision_id)
        assert row is not None and row.permalink is not None and row.permalink.startswith("https://")
        link = row.permalink
    await sync.run(actor=LEAD, project_id=pid)
    body = issues_by_title(github)["Prototype the CNN"]["body"]
    assert f"[Discussed in Slack]({link})" in body and "app_redirect" not in body


async def test_the_iterate_announcement_keeps_its_permalink(services: Services) -> None:
    pid = await new_project(services, repo=None)
    for _ in range(3):
        await services.gates.advance(actor=LEAD, project_id=pid, override_reason="test")
    await services.gates.advance(actor=LEAD, project_id=pid, outcome=Outcome.ITERATE, announce=announced())
    async with services.db.session() as s:
        record = (
            await s.execute(select(PhaseRecord).where(PhaseRecord.project_id == pid).order_by(col(PhaseRecord.id).desc()))
        ).scalars().first()
    assert record is not None and record.phase == "develop" and record.iteration == 1
    assert record.channel_ts and record.permalink and record.permalink.startswith("https://")


async def test_keep_tasks_is_only_for_an_iterate_and_only_for_the_lead(services: Services) -> None:
    pid = await new_project(services, repo=None)
    await to_deliver_with_tasks(services, pid, ("Prototype the CNN",))
    with pytest.raises(InvalidInput, match="keep=tasks only applies to `advance outcome=iterate`"):
        await services.gates.advance(
            actor=LEAD, project_id=pid, outcome=Outcome.SHIP, override_reason="x", keep_tasks=True
        )
    with pytest.raises(NotAllowed):
        await services.gates.advance(actor=actor("UOTHER"), project_id=pid, outcome=Outcome.ITERATE)
    async with services.db.session() as s:
        still = (await s.execute(select(Task).where(Task.project_id == pid, Task.status == "open"))).scalars()
        assert all(t.superseded_at is None for t in still)  # nothing was closed by the refused attempts
    await services.gates.advance(actor=LEAD, project_id=pid, outcome=Outcome.ITERATE)
    with pytest.raises(InvalidInput, match="outcome= only applies when leaving Deliver"):  # the same request twice
        await services.gates.advance(actor=LEAD, project_id=pid, outcome=Outcome.ITERATE)


async def test_the_permalink_comes_from_chat_get_permalink_and_its_failure_loses_nothing(
    db: Database, clock: FakeClock
) -> None:
    """Against the fake Slack with the real SlackMessenger: the iterate's announcement is posted, then its
    permalink asked for with chat.getPermalink; when Slack refuses that, the post still counts as delivered."""
    slack = FakeSlack(team_id=LEAD.team_id)
    await slack.start()
    try:
        slack.add_user("ULEAD", "lena")
        slack.add_channel("C1", "proj", members=["ULEAD", slack.bot_user_id])
        services = Services.build(db, clock, SlackMessenger(make_client("xoxb-test", slack.api_url, rate_limit_retries=0)))
        links = []
        for attempt in range(2):
            pid = await new_project(services, name=f"genres{attempt}", repo=None)
            for _ in range(3):
                await services.gates.advance(actor=LEAD, project_id=pid, override_reason="test")
            if attempt:
                slack.add_fault("chat.getPermalink", status=500, count=5)
            await services.gates.advance(actor=LEAD, project_id=pid, outcome=Outcome.ITERATE, announce=announced())
            async with services.db.session() as s:
                record = (
                    await s.execute(
                        select(PhaseRecord).where(PhaseRecord.project_id == pid, PhaseRecord.iteration == 1)
                    )
                ).scalar_one()
                links.append((record.channel_ts, record.permalink))
        asked = slack.calls_to("chat.getPermalink")
        assert len(asked) >= 2 and asked[0].params["channel"] == "C1"
        assert links[0][0] and links[0][1] and links[0][1].startswith("https://") and links[0][0].replace(".", "") in links[0][1]
        assert links[1][0] and links[1][1] is None  # posted (ts kept), no permalink: issues link to the channel
        async with services.db.session() as s:
            statuses = {m.status for m in (await s.execute(select(OutboxMessage))).scalars()}
        assert statuses == {"sent"}
    finally:
        await slack.stop()
