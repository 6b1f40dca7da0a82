"""A repository belongs to one project: claimed at first sync, refused to others unless shared; the allowlist."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bot.config import Settings
from bot.db.models import AuditEntry, RepoClaim
from bot.db.session import Database
from bot.errors import NotAllowed
from bot.services import Services
from bot.services.repos import parse_allowlist
from bot.sync.service import SyncService
from tests.bot.github.conftest import LEAD, REPO, new_project
from tests.conftest import actor
from tests.fakes.github import FakeGitHub

OTHER_LEAD = actor("UOTHER", team="TB000002")
SAME_TEAM_LEAD = actor("USECOND")


async def test_a_second_project_naming_a_claimed_repo_is_refused_until_shared(
    services: Services, sync: SyncService, github: FakeGitHub, db: Database
) -> None:
    first = await new_project(services)
    await sync.run(actor=LEAD, project_id=first)
    milestones_before = {m["title"]: m["state"] for m in github.state()[REPO]["milestones"]}

    # Another workspace, same name and repo: refused at init, with who holds it.
    with pytest.raises(NotAllowed) as refused:
        await services.projects.create(actor=OTHER_LEAD, name="genres", channel_id="C9", repo=REPO)
    assert "belongs to project genres" in str(refused.value) and "TA000001" in str(refused.value)
    assert f"share repo={REPO} with=genres" in str(refused.value)

    # Same workspace, via settings: refused too; and at sync if it got the repo some other way.
    second = (await services.projects.create(actor=SAME_TEAM_LEAD, name="genres-eval", channel_id="C2")).id
    assert second is not None
    with pytest.raises(NotAllowed, match="belongs to project genres in this workspace"):
        await services.projects.configure(actor=SAME_TEAM_LEAD, project_id=second, repo=REPO)
    writes = github.stats.as_dict()["writes"]
    async with db.session() as s:
        from bot.db.models import Project

        project = await s.get(Project, second)
        assert project is not None
        project.repo = REPO
        s.add(project)
    with pytest.raises(NotAllowed):
        await sync.run(actor=SAME_TEAM_LEAD, project_id=second)
    assert github.stats.as_dict()["writes"] == writes  # nothing sent to GitHub
    assert {m["title"]: m["state"] for m in github.state()[REPO]["milestones"]} == milestones_before

    # Only the holder's lead may share.
    with pytest.raises(NotAllowed, match="Only"):
        await services.projects.share_repo(
            actor=SAME_TEAM_LEAD, project_id=first, repo=REPO, with_project="genres-eval"
        )
    with pytest.raises(NotAllowed, match="does not hold"):
        await services.projects.share_repo(actor=SAME_TEAM_LEAD, project_id=second, repo=REPO, with_project="genres")
    await services.projects.share_repo(actor=LEAD, project_id=first, repo=REPO, with_project="genres-eval")
    await services.projects.configure(actor=SAME_TEAM_LEAD, project_id=second, repo=REPO)
    await sync.plan(actor=SAME_TEAM_LEAD, project_id=second)

    async with db.session() as s:
        claims = (await s.execute(select(RepoClaim))).scalars().all()
        shares = (await s.execute(select(AuditEntry).where(AuditEntry.action == "github.share"))).scalars().all()
    assert [(c.repo, c.project_id) for c in claims] == [(REPO, first)]  # the holder stays the holder
    assert len(shares) == 1 and shares[0].actor == LEAD.user_id and shares[0].detail["with_project"] == "genres-eval"


async def test_sharing_across_workspaces_lets_the_other_project_in(services: Services, sync: SyncService) -> None:
    first = await new_project(services)
    await sync.run(actor=LEAD, project_id=first)
    await services.projects.create(actor=OTHER_LEAD, name="genres-b", channel_id="C9")
    await services.projects.share_repo(actor=LEAD, project_id=first, repo=REPO.upper(), with_project="genres-b")
    project = await services.projects.create(actor=OTHER_LEAD, name="genres-c", channel_id="C8")
    assert project.id is not None
    with pytest.raises(NotAllowed):  # shared with genres-b only
        await services.projects.configure(actor=OTHER_LEAD, project_id=project.id, repo=REPO)


async def test_a_repository_unclaimed_in_preview_mode(services: Services, db: Database) -> None:
    preview = SyncService(db, services.clock, None, services.messenger)
    pid = await new_project(services)
    await preview.plan(actor=LEAD, project_id=pid)
    async with db.session() as s:
        assert (await s.execute(select(RepoClaim))).scalars().all() == []


async def test_the_allowlist_limits_what_any_project_may_name(services: Services, db: Database) -> None:
    settings = Settings(PHASEGATE_GITHUB_REPOS="acme/genres, lab/*")
    allowed = parse_allowlist(settings.github_repos)
    assert allowed == ("acme/genres", "lab/*")
    services.projects.allowed_repos = allowed
    await new_project(services, name="a", repo="acme/genres")
    await new_project(services, name="b", repo="Lab/anything")
    with pytest.raises(NotAllowed) as refused:
        await new_project(services, name="c", repo="acme/other")
    assert "acme/genres, lab/*" in str(refused.value) and "PHASEGATE_GITHUB_REPOS" in str(refused.value)
    pid = await new_project(services, name="d", repo=None)
    with pytest.raises(NotAllowed):
        await services.projects.configure(actor=LEAD, project_id=pid, repo="evil/repo")
    sync = SyncService.from_settings(db, services.clock, services.messenger, settings)
    assert sync.allowed_repos == allowed


async def test_a_humans_milestone_with_the_same_title_is_left_alone(
    services: Services, sync: SyncService, github: FakeGitHub
) -> None:
    human = github.add_milestone(REPO, "genres · Discovery", description="Our own plan, by hand.")
    pid = await new_project(services)
    await sync.run(actor=LEAD, project_id=pid)
    milestones = {m["title"]: m for m in github.state()[REPO]["milestones"]}
    assert milestones["genres · Discovery"]["number"] == human
    assert milestones["genres · Discovery"]["description"] == "Our own plan, by hand."
    ours = milestones["genres · Discovery (Phasegate)"]
    assert f"phasegate:project={pid} phase=discovery" in ours["description"]
    issues = github.state()[REPO]["issues"]
    discovery_issues = [i for i in issues if (i.get("milestone") or {}).get("number") == ours["number"]]
    assert len(discovery_issues) == 2  # the Discovery default tasks went into ours, not the person's
    github.reset_stats()
    await sync.run(actor=LEAD, project_id=pid)
    assert github.stats.as_dict()["writes"] == 0  # and the suffixed title sticks (no rename back and forth)


async def test_the_first_projects_milestones_are_never_written_by_another(
    services: Services, sync: SyncService, github: FakeGitHub
) -> None:
    first = await new_project(services)
    await sync.run(actor=LEAD, project_id=first)
    before = {m["number"]: (m["title"], m["state"], m["description"]) for m in github.state()[REPO]["milestones"]}
    other = await services.projects.create(actor=OTHER_LEAD, name="genres", channel_id="C9")
    assert other.id is not None
    await services.projects.share_repo(actor=LEAD, project_id=first, repo=REPO, with_project="genres")
    await services.projects.configure(actor=OTHER_LEAD, project_id=other.id, repo=REPO)
    await sync.run(actor=OTHER_LEAD, project_id=other.id)
    after = {m["number"]: (m["title"], m["state"], m["description"]) for m in github.state()[REPO]["milestones"]}
    assert {n: after[n] for n in before} == before
    assert len(after) == 2 * len(before)
    assert all(title.endswith("(Phasegate)") for n, (title, _, _) in after.items() if n not in before)


async def test_a_milestone_closed_or_renamed_behind_our_back_is_put_right(
    services: Services, sync: SyncService, github: FakeGitHub
) -> None:
    pid = await new_project(services)
    await sync.run(actor=LEAD, project_id=pid)
    numbers = {m["title"]: m["number"] for m in github.state()[REPO]["milestones"]}
    github.edit_milestone(REPO, numbers["genres · Discovery"], state="closed")
    github.edit_milestone(REPO, numbers["genres · Define"], title="renamed by someone")
    plan = await sync.plan(actor=LEAD, project_id=pid)
    assert sorted(s.title for s in plan.steps if s.kind == "milestone") == ["genres · Define", "genres · Discovery"]
    report = await sync.run(actor=LEAD, project_id=pid)
    assert report.counts.get("milestone.healed") == 2
    after = {m["number"]: (m["title"], m["state"]) for m in github.state()[REPO]["milestones"]}
    assert after[numbers["genres · Discovery"]] == ("genres · Discovery", "open")
    assert after[numbers["genres · Define"]] == ("genres · Define", "open")
    github.reset_stats()
    await sync.run(actor=LEAD, project_id=pid)
    assert github.stats.as_dict()["writes"] == 0  # healed once, then quiet
