"""Decision records in the repository: one pull request per decision, found again after a crash, superseded."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from bot.clock import FakeClock
from bot.db.models import (
    Brief,
    Decision,
    DecisionRecordFile,
    DecisionRecordSettings,
    Meeting,
    Proposal,
    SuccessCriterion,
)
from bot.db.session import Database
from bot.process import Phase
from bot.services import Actor, Services
from bot.services.decisions import records_on
from bot.services.tasks import enqueue_sync, new_task
from bot.sync.service import SyncService
from tests.bot.github.conftest import LEAD, REPO, new_project
from tests.fakes.github import FakeGitHub


async def enable(db: Database, pid: int, path: str = "docs/decisions", lead: Actor = LEAD) -> None:
    async with db.session() as s:
        s.add(DecisionRecordSettings(project_id=pid, team_id=lead.team_id, enabled=True, path=path))


async def decide(
    services: Services,
    pid: int,
    iteration: int = 0,
    title: str = "CNN on log-mel spectrograms",
    lead: Actor = LEAD,
) -> int:
    """A decision with two proposals and one task, queued for its record like `decide` does."""
    db, now = services.db, services.clock.now()
    async with db.session() as s:
        project = await services.tasks.project_by_id(s, lead, pid)
        if iteration == 0:
            s.add(Brief(team_id=lead.team_id, project_id=pid, problem="Tag genres of new uploads", updated_by="ULEAD"))
            s.add(SuccessCriterion(team_id=lead.team_id, project_id=pid, metric="skip rate", comparator="<",
                                   target="20%", real_check="a week of live traffic", created_by="ULEAD"))
        meeting = Meeting(team_id=lead.team_id, project_id=pid, kind="model-decision", phase="develop",
                          iteration=iteration, starts_at=now, duration_min=60, status="decided", created_by="ULEAD")
        s.add(meeting)
        await s.flush()
        assert meeting.id is not None
        ids = []
        for name, benefit, cost, risk in ((title, 3, 3.0, 1), ("Audio spectrogram transformer", 5, 10.0, 4)):
            p = Proposal(team_id=lead.team_id, project_id=pid, meeting_id=meeting.id, author_user_id="ULEAD",
                         title=name, approach="cnn", references=["arXiv:1609.09430"], why="works", benefit=benefit,
                         cost_days=cost, risk=risk)
            s.add(p)
            await s.flush()
            ids.append(p.id)
        assert ids[0] is not None and ids[1] is not None
        decision = Decision(team_id=lead.team_id, project_id=pid, meeting_id=meeting.id, proposal_id=ids[0],
                            rationale="Best benefit for its cost", runner_up_ids=[ids[1]], decided_by="ULEAD",
                            decided_at=now)
        s.add(decision)
        await s.flush()
        assert decision.id is not None
        await new_task(s, project=project, actor=lead, now=now, title=f"Train {title}", phase=Phase.DELIVER,
                       origin="decision", decision_id=decision.id)
        if await records_on(s, pid):
            await enqueue_sync(s, project=project, kind="decision_record", ref=str(decision.id), now=now)
        return decision.id


async def rows(db: Database) -> list[DecisionRecordFile]:
    async with db.session() as s:
        return list((await s.execute(select(DecisionRecordFile).order_by(col(DecisionRecordFile.number)))).scalars())


async def test_off_by_default_nothing_is_proposed(services: Services, sync: SyncService, github: FakeGitHub) -> None:
    pid = await new_project(services)
    await decide(services, pid)
    await sync.run(actor=LEAD, project_id=pid)
    assert github.pulls(REPO) == [] and await rows(services.db) == []


async def test_a_record_pull_request_is_made_once_with_every_section(
    services: Services, sync: SyncService, github: FakeGitHub, db: Database
) -> None:
    pid = await new_project(services)
    await enable(db, pid)
    await decide(services, pid)
    assert sync.engine is not None
    await sync.engine.drain(wait=True)
    [pull] = github.pulls(REPO)
    assert pull.head == "phasegate/decision-genres-1" and pull.base == "main"
    assert pull.title == "Decision record 0001: CNN on log-mel spectrograms"
    [row] = await rows(db)
    assert row.pr_number == pull.number and row.path == "docs/decisions/0001-cnn-on-log-mel-spectrograms.md"
    text = github.file_on(REPO, pull.head, row.path)
    assert text is not None
    for section in ("## Context", "Tag genres of new uploads", "skip rate < 20%", "## Options", "## Decision",
                    "Best benefit for its cost", "## Runner-ups", "1. Audio spectrogram transformer",
                    "## Consequences", f"[{REPO}#", "arxiv.org/abs/1609.09430", "| 1 | **CNN"):
        assert section in text, section
    routes = ("POST /repos/{owner}/{repo}/pulls", "POST /repos/{owner}/{repo}/git/refs",
              "PUT /repos/{owner}/{repo}/contents/{path}", "PATCH /repos/{owner}/{repo}/pulls/{number}")
    before = [github.stats.by_route[r] for r in routes]
    assert before[:3] == [1, 1, 1]
    await sync.run(actor=LEAD, project_id=pid)  # a full re-sync: no record write
    assert len(github.pulls(REPO)) == 1
    assert [github.stats.by_route[r] for r in routes] == before


async def test_a_lost_answer_to_the_pull_request_create_makes_no_second_one(
    services: Services, sync: SyncService, github: FakeGitHub, db: Database, clock: FakeClock
) -> None:
    pid = await new_project(services)
    await enable(db, pid)
    await decide(services, pid)
    github.add_fault("drop_after_commit", route="/repos/{owner}/{repo}/pulls", method="POST", count=1)
    github.add_fault("drop_after_commit", route="/repos/{owner}/{repo}/git/refs", method="POST", count=1)
    assert sync.engine is not None
    await sync.engine.drain(wait=True)
    clock.advance(timedelta(hours=1))
    await sync.engine.drain(wait=True)
    [pull] = github.pulls(REPO)
    [row] = await rows(db)
    assert row.pr_number == pull.number


async def test_the_next_iteration_supersedes_the_record(
    services: Services, sync: SyncService, github: FakeGitHub, db: Database
) -> None:
    pid = await new_project(services)
    await enable(db, pid)
    await decide(services, pid)
    assert sync.engine is not None
    await sync.engine.drain(wait=True)
    await decide(services, pid, iteration=1, title="Audio spectrogram transformer v2")
    await sync.engine.drain(wait=True)
    first, second = sorted(github.pulls(REPO), key=lambda p: p.number)
    old, new = await rows(db)
    assert old.superseded_by == new.decision_id
    assert first.title.startswith("Decision record 0001 (superseded by 0002)")
    assert "Superseded" in first.body and (new.pr_url or "") in first.body
    old_text = github.file_on(REPO, first.head, old.path) or ""
    assert "> **Superseded** by [decision record 0002](0002-audio-spectrogram-transformer-v2.md)" in old_text
    assert "Supersedes" in (github.file_on(REPO, second.head, new.path) or "")


async def test_a_merged_record_superseded_later_is_updated_in_the_superseding_pull_request(
    services: Services, sync: SyncService, github: FakeGitHub, db: Database
) -> None:
    """A merged pull request cannot take more commits: the first record's "superseded" note rides on the second
    record's branch, so merging the second brings both files up to date; nothing is opened twice."""
    pid = await new_project(services)
    await enable(db, pid)
    await decide(services, pid)
    assert sync.engine is not None
    await sync.engine.drain(wait=True)
    [first] = github.pulls(REPO)
    github.merge_pull(REPO, first.number)  # a person merges the record
    await sync.run(actor=LEAD, project_id=pid)  # a sync after the merge: nothing to write
    assert len(github.pulls(REPO)) == 1
    await decide(services, pid, iteration=1, title="Audio spectrogram transformer v2")
    await sync.engine.drain(wait=True)
    first, second = sorted(github.pulls(REPO), key=lambda p: p.number)
    old, new = await rows(db)
    assert old.pr_state == "merged" and new.pr_state == "open"
    assert first.title.startswith("Decision record 0001 (superseded by 0002)")  # a merged PR's title still edits
    on_main = github.file_on(REPO, "main", old.path) or ""
    on_second = github.file_on(REPO, second.head, old.path) or ""
    assert "Superseded" not in on_main  # main changes only when a person merges the second record
    assert "> **Superseded** by [decision record 0002](0002-audio-spectrogram-transformer-v2.md)" in on_second
    assert "Supersedes" in (github.file_on(REPO, second.head, new.path) or "")
    before = github.stats.by_route["PUT /repos/{owner}/{repo}/contents/{path}"]
    await sync.run(actor=LEAD, project_id=pid)
    assert len(github.pulls(REPO)) == 2
    assert github.stats.by_route["PUT /repos/{owner}/{repo}/contents/{path}"] == before
