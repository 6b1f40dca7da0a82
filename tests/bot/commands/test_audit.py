"""`audit [page=N] [who=@u] [kind=…]`: pages, filters, names instead of ids, clear refusals."""

from __future__ import annotations

import pytest

from bot.clock import FakeClock
from bot.commands import Context
from bot.services import Services
from tests.bot.rituals.helpers import CHANNEL, LEAD, Member, block_text, new_team, run, utc
from tests.conftest import actor

TEAM: dict[str, Member] = {
    "UANA": {"tz": "Europe/Berlin", "name": "ana"},
    "URAJ": {"tz": "Europe/Berlin", "name": "raj"},
}


def ctx(services: Services, user: str = "ULEAD") -> Context:
    return Context(services=services, actor=actor(user), channel_id=CHANNEL, tz="Europe/Berlin")


async def busy(services: Services) -> int:
    """A project with 20 task additions by Ana, 5 by Raj and two meetings scheduled by the lead."""
    pid = await new_team(services, people=TEAM)
    for i in range(20):
        await services.tasks.add(actor=actor("UANA"), project_id=pid, title=f"Ana's task {i}")
    for i in range(5):
        await services.tasks.add(actor=actor("URAJ"), project_id=pid, title=f"Raj's task {i}")
    for day in (10, 11):
        await services.meetings.schedule(
            actor=LEAD, project_id=pid, kind="model-decision", starts_at=utc(2026, 3, day, 14), attendees=["UANA"]
        )
    return pid


async def test_audit_pages_newest_first_with_names(services: Services, clock: FakeClock) -> None:
    await busy(services)
    first = block_text((await run(ctx(services), "audit")).message)
    assert "page 1 of" in first and "Older: `/phasegate audit page=2`" in first
    assert first.count("`meeting.schedule`") == 2 and first.count("`task.add`") == 13  # 15 a page, newest first
    assert "*ana* <@UANA>" in first or "*raj* <@URAJ>" in first
    total = int(first.split("(")[1].split(" ")[0]) if "(" in first else 0
    assert total >= 27
    pages = -(-total // 15)
    last = block_text((await run(ctx(services), f"audit page={pages}")).message)
    assert f"page {pages} of {pages}" in last and "Older:" not in last
    assert "`project.create`" in last  # the oldest entry is on the last page


async def test_audit_filters_by_person_and_kind(services: Services) -> None:
    await busy(services)
    raj = block_text((await run(ctx(services), "audit who=<@URAJ|raj>")).message)
    assert "by <@URAJ>" in raj and "page 1 of 1 (5 entries)" in raj and raj.count("`task.add`") == 5
    assert "<@UANA>" not in raj
    meetings = block_text((await run(ctx(services), "audit kind=meetings")).message)
    assert "meeting changes" in meetings and "(2 entries)" in meetings and "`task.add`" not in meetings
    both = block_text((await run(ctx(services), "audit who=<@UANA> kind=task page=2")).message)
    assert "page 2 of 2 (20 entries)" in both and both.count("`task.add`") == 5
    none = block_text((await run(ctx(services), "audit who=<@URAJ> kind=meeting")).message)
    assert "(0 entries)" in none and "Nothing recorded yet." in none


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("audit page=0", "`0` is not a page: pages are numbered from 1, e.g. `/phasegate audit page=2`."),
        ("audit page=two", "`two` is not a page"),
        ("audit page=9", "There are only 3 pages (31 entries): try `/phasegate audit page=3`."),
        ("audit kind=gossip", "`gossip` is not a kind of change. Kinds: baseline, brief, decision"),
        ("audit who=ana", "`ana` is not a Slack user: mention them"),
        ("audit colour=red", "`colour` is not an option of audit"),
        ("audit everything", "`everything` is not an audit option"),
    ],
)
async def test_bad_page_kind_or_person_is_answered_clearly(services: Services, command: str, expected: str) -> None:
    await busy(services)
    assert expected in block_text((await run(ctx(services), command)).message)


async def test_audit_of_another_workspace_is_not_shown(services: Services) -> None:
    await busy(services)
    other = Context(services=services, actor=actor("ULEAD", "TB000002"), channel_id=CHANNEL, tz="UTC")
    text = block_text((await run(other, "audit")).message)
    assert "task.add" not in text
