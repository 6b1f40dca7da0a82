"""SQL statements per `status` and App Home, counted with a SQLAlchemy event listener: no N+1 over tasks or projects.

The counts are the same at 10 and 1,000 tasks, App Home's the same for a person in 1 and in 5 projects, and they stay
within 4 statements each (issue #15 asks for at most 6), on SQLite and PostgreSQL (a change that adds a statement
fails here and has to say why).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from sqlalchemy import event

from bot.commands import Context, dispatch
from bot.commands.home import home_view
from bot.db.models import Task
from bot.db.session import Database
from bot.services import Actor, Services

LEAD, CHANNEL = "U0LEAD0001", "C0STMT0001"
STATUS_BUDGET, HOME_BUDGET = 4, 4  # what they run now (issue #15 asks for at most 6): one more fails here


async def _project_with(services: Services, team: str, tasks: int) -> Context:
    ctx = Context(services=services, actor=Actor(team, LEAD), channel_id=CHANNEL)
    await dispatch(ctx, "init stmts repo=acme/stmts")
    project = await services.projects.resolve(actor=ctx.actor, channel_id=CHANNEL)
    assert project.id is not None
    async with services.db.session() as s:  # written directly: 1,000 `task add`s would be slow
        s.add_all(
            Task(
                number=1000 + i,
                team_id=team,
                project_id=project.id,
                phase=project.phase,
                title=f"Task {i}",
                assignee_user_id=LEAD,
                status="closed" if i % 3 == 0 else "open",
            )
            for i in range(tasks)
        )
    return ctx


async def _count(db: Database, run: Callable[[], Awaitable[Any]]) -> int:
    await run()  # warm: first-use caches are not what this counts
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        await run()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    return statements


async def test_status_and_app_home_cost_the_same_statements_at_10_and_1000_tasks(services: Services) -> None:
    small = await _project_with(services, "TSMALL001", 10)
    large = await _project_with(services, "TLARGE001", 1000)
    counts = {}
    for size, ctx in (("10", small), ("1000", large)):
        counts[("status", size)] = await _count(services.db, partial(dispatch, ctx, "status"))
        counts[("home", size)] = await _count(services.db, partial(home_view, ctx))
    assert counts[("status", "10")] == counts[("status", "1000")], counts
    assert counts[("home", "10")] == counts[("home", "1000")], counts
    assert counts[("status", "10")] <= STATUS_BUDGET, counts
    assert counts[("home", "10")] <= HOME_BUDGET, counts


async def test_status_loads_the_project_once(services: Services) -> None:
    ctx = await _project_with(services, "TONCE0001", 3)
    selects: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        selects.append(statement)

    await dispatch(ctx, "status")
    event.listen(services.db.engine.sync_engine, "before_cursor_execute", note)
    try:
        await dispatch(ctx, "status")
    finally:
        event.remove(services.db.engine.sync_engine, "before_cursor_execute", note)
    # The project's row is loaded once; the report's queries only join `projects` by id (its phase and iteration).
    loads = [s for s in selects if s.startswith("SELECT projects.id, projects.team_id, projects.name")]
    assert len(loads) == 1, selects


async def _lead_of(services: Services, team: str, projects: int) -> Context:
    """A person leading `projects` projects (each with a few tasks), as the context of the last."""
    ctx = Context(services=services, actor=Actor(team, LEAD), channel_id=CHANNEL)
    for p in range(projects):
        ctx = Context(services=services, actor=Actor(team, LEAD), channel_id=f"{CHANNEL}{p}")
        await dispatch(ctx, f"init stmts{p} repo=acme/stmts{p}")
        for i in range(3):
            await dispatch(ctx, f'task add "Task {i}" @{LEAD}')
    return ctx


async def test_app_home_costs_the_same_statements_in_1_and_in_5_projects(services: Services) -> None:
    one, five = await _lead_of(services, "TONEPROJ1", 1), await _lead_of(services, "TFIVEPROJ", 5)
    assert len(await services.reports.home(actor=five.actor)) == 5
    counts = {n: await _count(services.db, partial(home_view, ctx)) for n, ctx in ((1, one), (5, five))}
    assert counts[1] == counts[5] <= HOME_BUDGET, counts
