"""Find things: `task list [mine|open|all] [phase=…] [role=…]` and the current phase's tasks first in `status`."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from bot.commands import Context, dispatch
from bot.db.models import GitHubIssue, Task
from bot.process import Phase, Role
from bot.rendering import Message
from bot.services import Services
from tests.bot.rituals.helpers import valid_message
from tests.conftest import actor

LEAD = actor("ULEAD")
ML = actor("UML")
BO = actor("UBO")
OUTSIDER = actor("UOUT")  # in the workspace, not in the project


def text_of(message: Message | None) -> str:
    return " ".join(str(b) for b in valid_message(message).blocks)


async def setup(services: Services) -> int:
    """genres (Discovery): #1 brief (business-owner), #2 survey (ml-engineer), #3 for @ml, #4 define for @lead."""
    project = await services.projects.create(actor=LEAD, name="genres", channel_id="C1", repo="acme/genres")
    assert project.id is not None
    pid = project.id
    await services.projects.set_role(actor=LEAD, project_id=pid, user_id="UML", role=Role.ML_ENGINEER)
    await services.projects.set_role(actor=LEAD, project_id=pid, user_id="UBO", role=Role.BUSINESS_OWNER)
    await services.tasks.add(actor=LEAD, project_id=pid, title="Label songs", assignee="UML")
    await services.tasks.add(actor=LEAD, project_id=pid, title="Plan the pilot", assignee="ULEAD", phase=Phase.DEFINE)
    return pid


async def run(services: Services, who: Any, text: str) -> str:
    return text_of((await dispatch(Context(services=services, actor=who, channel_id="C1"), text)).message)


async def test_the_service_filters_open_all_mine_phase_and_role(services: Services) -> None:
    pid = await setup(services)
    await services.tasks.set_status(actor=LEAD, project_id=pid, number=1, status="closed")

    async def numbers(who: Any = LEAD, **kw: Any) -> list[int]:
        return [t.number for t in await services.reports.find_tasks(actor=who, project_id=pid, **kw)]

    assert await numbers() == [2, 3, 4]
    assert await numbers(which="all") == [1, 2, 3, 4]
    assert await numbers(ML, which="mine") == [2, 3]  # assigned to me, or to my role and nobody in particular
    assert await numbers(BO, which="mine") == []  # their role's task is closed
    assert await numbers(BO, which="all", role=Role.BUSINESS_OWNER) == [1]
    assert await numbers(which="all", phase=Phase.DEFINE) == [4]
    assert await numbers(LEAD, which="mine") == [4]
    assert await numbers(OUTSIDER) == [2, 3, 4]  # a read: anyone in the workspace


async def test_the_command_shows_number_title_phase_assignee_status_and_issue(services: Services) -> None:
    pid = await setup(services)
    async with services.db.session() as s:
        task = (await s.execute(select(Task).where(Task.project_id == pid, Task.number == 3))).scalar_one()
        s.add(
            GitHubIssue(
                task_id=task.id,
                team_id=task.team_id,
                project_id=pid,
                number=12,
                html_url="https://github.com/acme/genres/issues/12",
            )
        )
    shown = await run(services, ML, "task list mine")
    assert "Your open tasks* (2)" in shown
    assert "#3 Label songs · <@UML> · <https://github.com/acme/genres/issues/12|issue> · Discovery · open" in shown
    assert "#2 Survey the available data · _ml-engineer_ · Discovery · open · no GitHub issue yet" in shown
    assert "#1 " not in shown and "#4 " not in shown
    everything = await run(services, OUTSIDER, "task list all phase=define")
    assert "All tasks in Define* (1)" in everything and "#4 Plan the pilot · <@ULEAD>" in everything
    by_role = await run(services, LEAD, "task list role=bo")
    assert "Open tasks for business-owner* (1)" in by_role and "#1 Write the project brief" in by_role
    none = await run(services, BO, "task list mine phase=deployment")
    assert "none" in none and "`/phasegate task list all`" in none


async def test_unknown_filters_are_refused_in_the_words_people_type(services: Services) -> None:
    await setup(services)
    shown = await run(services, LEAD, "task list closed")
    assert "`closed` is not a task list: say mine, open or all" in shown and "went wrong" not in shown
    assert "`stage=` is not a filter for tasks: use phase= or role=" in await run(services, LEAD, "task list stage=x")
    assert "`later` is not a phase" in await run(services, LEAD, "task list phase=later")
    assert "`chef` is not a role: lead, business-owner" in await run(services, LEAD, "task list role=chef")
    assert "Usage: `/phasegate task list [mine|open|all]" in shown


async def test_status_shows_the_current_phases_tasks_before_the_others(services: Services) -> None:
    pid = await setup(services)
    for n in range(20):  # more than status shows, all in a later phase and numbered before the next Discovery task
        await services.tasks.add(actor=LEAD, project_id=pid, title=f"Later {n}", phase=Phase.DEVELOP)
    await services.tasks.add(actor=LEAD, project_id=pid, title="Interview the editors")
    report = await services.reports.status(actor=LEAD, project_id=pid)
    assert [t.number for t in report.open_tasks[:4]] == [1, 2, 3, 25]
    assert {t.phase for t in report.open_tasks[:4]} == {"discovery"}
    shown = await run(services, LEAD, "status")
    assert "#25 Interview the editors" in shown
    assert shown.index("#25 Interview the editors") < shown.index("#4 Plan the pilot")
