"""`plan <phase> due=<date>`: the lead sets a phase's target date; the milestone's due_on and status follow."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlmodel import select

from bot.clock import FakeClock
from bot.commands import Context, dispatch
from bot.db.models import AuditEntry, PhaseTarget
from bot.errors import NotAllowed
from bot.process import Phase, Role
from bot.rendering import Message
from bot.services import Services
from bot.sync.service import SyncService
from tests.bot.github.conftest import LEAD, REPO, new_project
from tests.bot.rituals.helpers import valid_message
from tests.conftest import actor
from tests.fakes.github import FakeGitHub

ML = actor("UML")


def text_of(message: Message | None) -> str:
    return " ".join(str(b) for b in valid_message(message).blocks)


async def run(services: Services, who: object, text: str) -> str:
    ctx = Context(services=services, actor=who, channel_id="C1")  # type: ignore[arg-type]
    return text_of((await dispatch(ctx, text)).message)


async def test_a_planned_date_becomes_the_milestones_due_on_and_moves_with_it(
    services: Services, sync: SyncService, github: FakeGitHub
) -> None:
    pid = await new_project(services)
    await sync.run(actor=LEAD, project_id=pid)
    shown = await run(services, LEAD, "plan develop due=2026-04-30")
    assert "Develop is due 2026-04-30" in shown
    report = await sync.run(actor=LEAD, project_id=pid)
    assert report.counts == {"milestone.updated": 1}
    milestones = {m["title"]: m for m in github.state()[REPO]["milestones"]}
    assert milestones["genres · Develop"]["due_on"].startswith("2026-04-30T0")  # the day survives Pacific truncation
    assert milestones["genres · Define"]["due_on"] is None
    await run(services, LEAD, "plan develop due=2026-05-07")
    await sync.run(actor=LEAD, project_id=pid)
    milestones = {m["title"]: m for m in github.state()[REPO]["milestones"]}
    assert milestones["genres · Develop"]["due_on"].startswith("2026-05-07T0")
    async with services.db.session() as s:
        rows = list((await s.execute(select(PhaseTarget).where(PhaseTarget.project_id == pid))).scalars())
        audit = list((await s.execute(select(AuditEntry).where(AuditEntry.action == "phase.plan"))).scalars())
    assert [(r.phase, r.due) for r in rows] == [("develop", date(2026, 5, 7))]
    assert len(audit) == 2


async def test_only_the_lead_plans_and_bad_input_is_explained(services: Services) -> None:
    pid = await new_project(services)
    await services.projects.set_role(actor=LEAD, project_id=pid, user_id="UML", role=Role.ML_ENGINEER)
    with pytest.raises(NotAllowed):
        await services.gates.plan(actor=ML, project_id=pid, phase=Phase.DEVELOP, due=date(2026, 4, 30))
    assert "went wrong" not in await run(services, ML, "plan develop due=2026-04-30")
    assert "`someday` is not a date. Use YYYY-MM-DD" in await run(services, LEAD, "plan develop due=someday")
    assert "`later` is not a phase" in await run(services, LEAD, "plan later due=2026-04-30")
    assert "Say which phase and its date: `plan develop due=2026-04-30`" in await run(services, LEAD, "plan develop")


async def test_status_says_when_the_current_phase_is_overdue(services: Services, clock: FakeClock) -> None:
    pid = await new_project(services)
    assert "overdue" not in await run(services, LEAD, "status")
    await services.gates.plan(actor=LEAD, project_id=pid, phase=Phase.DISCOVERY, due=date(2026, 3, 5))
    shown = await run(services, LEAD, "status")
    assert "target 2026-03-05" in shown and "overdue" not in shown
    clock.advance(timedelta(days=5))  # 2026-03-07
    shown = await run(services, LEAD, "status")
    assert "Discovery is overdue* by 2 days (target 2026-03-05)" in shown
    assert "`/phasegate plan discovery due=YYYY-MM-DD`" in shown
    await services.gates.plan(actor=LEAD, project_id=pid, phase=Phase.DEVELOP, due=date(2026, 3, 1))
    assert "Develop is overdue" not in await run(services, LEAD, "status")  # only the current phase's date counts
