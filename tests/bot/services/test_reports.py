"""The read models built in a fixed number of statements still say the same: who owes a proposal, who attends."""

from __future__ import annotations

from bot.process import Role
from bot.services import Services
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
