"""`status` reads a project in a few index-backed queries: what each part of the report shows must still be right
(overrides, since when, the first open tasks of every phase, failing issues, counts), at any size."""

from __future__ import annotations

from sqlmodel import select

from bot.clock import FakeClock
from bot.db.models import GitHubIssue, Task
from bot.process import Phase
from bot.services import Services
from bot.services.reports import OPEN_TASKS_SHOWN
from tests.bot.commands.test_task_list import LEAD, run, setup


async def test_status_shows_every_override_reason_and_since_when_the_phase_runs(
    services: Services, clock: FakeClock
) -> None:
    pid = await setup(services)
    await services.gates.advance(actor=LEAD, project_id=pid, override_reason="brief agreed by email")
    await services.gates.advance(actor=LEAD, project_id=pid, override_reason="criteria from the pilot")
    report = await services.reports.status(actor=LEAD, project_id=pid)
    assert [(o.phase, o.override_by, o.override_reason) for o in report.overrides] == [
        ("discovery", "ULEAD", "brief agreed by email"),
        ("define", "ULEAD", "criteria from the pilot"),
    ]
    assert report.phase_since == clock.now()
    shown = await run(services, LEAD, "status")
    assert "Discovery gate overridden by <@ULEAD>" in shown and "brief agreed by email" in shown
    assert shown.index("brief agreed by email") < shown.index("criteria from the pilot")
    assert "in Develop since" in shown


async def test_status_lists_the_first_open_tasks_of_each_phase_the_current_first(services: Services) -> None:
    pid = await setup(services)  # Discovery: #1–#3 open; Define: #4
    for n in range(OPEN_TASKS_SHOWN + 5):  # more Discovery tasks than status shows
        await services.tasks.add(actor=LEAD, project_id=pid, title=f"Read paper {n}")
    await services.tasks.add(actor=LEAD, project_id=pid, title="Ship it", phase=Phase.DEPLOYMENT)
    await services.tasks.set_status(actor=LEAD, project_id=pid, number=2, status="closed")
    report = await services.reports.status(actor=LEAD, project_id=pid)
    assert len(report.open_tasks) == OPEN_TASKS_SHOWN
    assert [t.number for t in report.open_tasks] == [1, 3, *range(5, 5 + OPEN_TASKS_SHOWN - 2)]
    assert report.open_total == (3 + OPEN_TASKS_SHOWN + 5) + 1 + 1 - 1  # Discovery, Define, Deployment, one closed
    progress = {p.phase: (p.total, p.closed) for p in report.progress}
    assert progress[Phase.DISCOVERY] == (3 + OPEN_TASKS_SHOWN + 5, 1)
    assert progress[Phase.DEFINE] == (1, 0) and progress[Phase.DEPLOYMENT] == (1, 0)

    await services.gates.advance(actor=LEAD, project_id=pid, override_reason="enough reading")
    moved = await services.reports.status(actor=LEAD, project_id=pid)  # now in Define (#4 and its default tasks)
    define = [t.number for t in moved.open_tasks if t.phase == "define"]
    assert define[0] == 4 and define == sorted(define)
    assert [t.number for t in moved.open_tasks] == [*define, 1, 3, *range(5, 5 + OPEN_TASKS_SHOWN - 2 - len(define))]


async def test_status_lists_failing_issues_whatever_their_task_and_phase(services: Services) -> None:
    pid = await setup(services)
    async with services.db.session() as s:
        tasks = {t.number: t for t in (await s.execute(select(Task).where(Task.project_id == pid))).scalars()}
        for number, failures in ((4, 3), (3, 0), (1, 1)):
            task = tasks[number]
            s.add(GitHubIssue(task_id=task.id, team_id=task.team_id, project_id=pid, failures=failures))
    report = await services.reports.status(actor=LEAD, project_id=pid)
    assert [t.number for t in report.failing_tasks] == [1, 4]
    assert all(t.sync_failing for t in report.failing_tasks)
