"""Fixtures for GitHub sync tests: the fake GitHub on a fake clock, PyGithub against it, a SyncService."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest
from github import Auth

from bot.clock import FakeClock
from bot.db.models import Member, ProjectMember
from bot.db.session import Database
from bot.github.gateway import PyGithubGateway
from bot.messaging import RecordingMessenger
from bot.process import Phase, Role
from bot.services import Services
from bot.services.tasks import new_task
from bot.sync.service import SyncService
from tests.conftest import actor
from tests.fakes.github import FakeGitHub

REPO = "acme/genres"
LEAD = actor("ULEAD")
COLLABORATORS = ["ana-gh", "lead-gh"]


@pytest.fixture
def fake_sleep(clock: FakeClock) -> Callable[[float], Awaitable[None]]:
    """Sleeping moves the fake clock (and the fake GitHub's clock) instead of waiting."""

    async def sleep(seconds: float) -> None:
        clock.advance(timedelta(seconds=max(seconds, 0.0)))
        await asyncio.sleep(0)

    return sleep


@pytest.fixture
async def github(clock: FakeClock) -> AsyncIterator[FakeGitHub]:
    fake = FakeGitHub(clock=lambda: clock.now().timestamp())
    await fake.start()
    fake.add_repo(REPO, collaborators=COLLABORATORS)
    yield fake
    await fake.stop()


def make_gateway(fake: FakeGitHub, cls: type[PyGithubGateway] = PyGithubGateway) -> PyGithubGateway:
    """PyGithub (through our gateway) pointed at the fake; no PyGithub pacing: we pace ourselves."""
    assert fake._own_url is not None
    return cls(auth=Auth.Token("test-token"), base_url=fake._own_url)


@pytest.fixture
def messenger() -> RecordingMessenger:
    return RecordingMessenger()


@pytest.fixture
async def sync(
    db: Database,
    clock: FakeClock,
    github: FakeGitHub,
    messenger: RecordingMessenger,
    fake_sleep: Callable[[float], Awaitable[None]],
) -> AsyncIterator[SyncService]:
    service = SyncService(db, clock, make_gateway(github), messenger, sleep=fake_sleep)
    yield service
    await service.aclose()


async def new_project(services: Services, name: str = "genres", repo: str | None = REPO) -> int:
    project = await services.projects.create(actor=LEAD, name=name, channel_id="C1", repo=repo)
    assert project.id is not None
    return project.id


async def add_member(
    db: Database,
    user_id: str,
    *,
    name: str = "",
    login: str | None = None,
    role: Role | None = None,
    project_id: int | None = None,
) -> None:
    async with db.session() as s:
        s.add(Member(team_id=LEAD.team_id, user_id=user_id, display_name=name, github_login=login))
        if role is not None and project_id is not None:
            s.add(ProjectMember(team_id=LEAD.team_id, project_id=project_id, user_id=user_id, roles=[role.value]))


async def add_tasks(
    services: Services, project_id: int, n: int, *, assignees: tuple[str | None, ...] = (None,)
) -> None:
    """`n` tasks spread over the five phases and the roles, in one unit of work."""
    roles = list(Role)
    phases = list(Phase)
    async with services.db.session() as s:
        project = await services.tasks.project_by_id(s, LEAD, project_id)
        for i in range(n):
            await new_task(
                s,
                project=project,
                actor=LEAD,
                now=services.clock.now(),
                title=f"Task {i:03d}",
                body=f"Work item {i}",
                phase=phases[i % len(phases)],
                role=roles[i % len(roles)].value,
                assignee=assignees[i % len(assignees)],
            )
