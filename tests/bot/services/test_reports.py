"""The read models built in a fixed number of statements still say the same: who owes a proposal, who attends."""

from __future__ import annotations

from typing import Any

import pytest

from bot.commands import Context
from bot.commands.home import home_view
from bot.process import Role
from bot.services import Services
from bot.services.reports import ReportService
from tests.bot.rituals.helpers import GOOD, LEAD, Member, new_team, utc
from tests.conftest import actor

PEOPLE: dict[str, Member] = {"USUB": {"tz": "Europe/Berlin"}, "UCO": {"tz": "Europe/Berlin"}, "UANA": {"tz": "Europe/Berlin"}}


async def test_home_says_who_still_owes_a_proposal_and_which_meetings_they_attend(services: Services) -> None:
    pid = await new_team(services, people=PEOPLE)
    result = await services.meetings.schedule(
        actor=LEAD, project_id=pid, kind="model-decision", starts_at=utc(2026, 3, 6, 14), attendees=["ULEAD", *PEOPLE]
    )
    mid = result.meeting.id
    await services.proposals.submit(
        actor=actor("USUB"), project_id=None, meeting_id=mid, fields=GOOD["transformer"], coauthors=["UCO"]
    )

    async def owes(user: str) -> bool:
        (home,) = await services.reports.home(actor=actor(user))
        (line,) = home.my_meetings
        assert line.id == mid and line.proposals == 1
        return line.owes_proposal

    assert not await owes("USUB")  # wrote it
    assert not await owes("UCO")  # named as its co-author
    assert await owes("UANA")  # owes one and has not written any
    assert not await owes("ULEAD")  # attends; the lead owes none
    status = await services.reports.status(actor=LEAD, project_id=pid)
    assert [(m.id, m.proposals) for m in status.meetings] == [(mid, 1)]
    assert set(status.members) == {"ULEAD", *PEOPLE} and status.members["UANA"] == {Role.ML_ENGINEER.value}


async def five_projects(services: Services) -> list[int]:
    """Five projects led by ULEAD in different phases, UANA in four of them with different roles; tasks assigned to
    people, to roles, to nobody; meetings with and without proposals, attended by UANA or not."""
    pids = [await new_team(services, people=PEOPLE)]
    roles = [None, Role.ML_ENGINEER, Role.DATA_ENGINEER, Role.SOFTWARE_ENGINEER, Role.ML_ENGINEER]
    for i in range(1, 5):
        project = await services.projects.create(actor=LEAD, name=f"p{i}", channel_id=f"C{i}", repo=f"acme/p{i}")
        assert project.id is not None
        pids.append(project.id)
        if i != 3:
            role = roles[i]
            assert role is not None
            await services.projects.set_role(actor=LEAD, project_id=project.id, user_id="UANA", role=role)
        for _ in range(i - 1):  # p2 one phase on, p3 two, p4 three
            await services.gates.advance(actor=LEAD, project_id=project.id, override_reason="the bench can wait")
    for n, pid in enumerate(pids):
        await services.tasks.add(actor=LEAD, project_id=pid, title=f"Ana's {n}", assignee="UANA")
        await services.tasks.add(actor=LEAD, project_id=pid, title=f"For a data engineer {n}", role=Role.DATA_ENGINEER)
        await services.tasks.add(actor=LEAD, project_id=pid, title=f"For an ML engineer {n}", role=Role.ML_ENGINEER)
        await services.tasks.add(actor=LEAD, project_id=pid, title=f"The lead's {n}", assignee="ULEAD")
    for n, pid in enumerate(pids[:3]):
        result = await services.meetings.schedule(
            actor=LEAD,
            project_id=pid,
            kind="model-decision",
            starts_at=utc(2026, 3, 6 + n, 14),
            attendees=["ULEAD", "USUB", "UANA"] if n != 1 else ["ULEAD", "USUB"],
        )
        if n != 2:
            await services.proposals.submit(
                actor=actor("USUB"), project_id=None, meeting_id=result.meeting.id, fields=GOOD["transformer"]
            )
    return pids


async def test_home_over_several_projects_says_what_one_project_at_a_time_says(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """App Home reads all the person's projects in the same queries; its view is the one built project by project."""
    await five_projects(services)
    views = {}
    for user in ("UANA", "ULEAD", "USUB"):
        ctx = Context(services=services, actor=actor(user), channel_id=None)
        views[user] = await home_view(ctx)
    assert len(await services.reports.home(actor=actor("UANA"))) == 4
    assert len(await services.reports.home(actor=actor("ULEAD"))) == 5
    batched = ReportService._statuses

    async def one_at_a_time(self: ReportService, s: Any, who: Any, projects: list[Any], **kw: Any) -> list[Any]:
        return [r for p in projects for r in await batched(self, s, who, [p], **kw)]

    monkeypatch.setattr(ReportService, "_statuses", one_at_a_time)
    for user, view in views.items():
        ctx = Context(services=services, actor=actor(user), channel_id=None)
        assert await home_view(ctx) == view, user
