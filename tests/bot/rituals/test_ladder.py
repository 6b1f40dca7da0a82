"""One model-decision meeting walked through its whole ladder with a fake clock: who gets what, when."""

from __future__ import annotations

from datetime import date

from sqlmodel import select

from bot.clock import FakeClock
from bot.commands import Context
from bot.db.models import SentMessage
from bot.messaging import RecordingMessenger
from bot.scheduler import ReminderScheduler
from bot.services import Services
from tests.bot.rituals.helpers import (
    CHANNEL,
    GOOD,
    LEAD,
    Member,
    Timeline,
    block_text,
    buttons,
    new_team,
    press,
    slack_person,
    summary,
    utc,
)
from tests.conftest import actor

TEAM: dict[str, Member] = {
    # hours end at 14:00 in Berlin: a 15:00-Berlin reminder moves to 13:00 Berlin (12:00 UTC)
    "UANA": {"tz": "Europe/Berlin", "hours": "07:00-14:00"},
    # no zone of ours: Slack's profile says Kolkata (UTC+5:30); 19:30 there moves to 16:00 IST (10:30 UTC)
    "URAJ": {"slack": slack_person("URAJ", tz="Asia/Kolkata")},
    "USUB": {"tz": "America/New_York"},  # submits early
    "UCO": {"tz": "Europe/Berlin"},  # co-author of USUB's proposal
    "UMIA": {"tz": "Europe/Berlin", "away_until": date(2026, 3, 10)},  # declared absence
    "UKAI": {"tz": "Europe/Berlin", "slack": slack_person("UKAI", tz="Europe/Berlin", away=True)},  # Slack status
}


async def test_the_whole_ladder_of_a_model_decision_meeting(
    services: Services,
    scheduler: ReminderScheduler,
    clock: FakeClock,
    timeline: Timeline,
    messenger: RecordingMessenger,
) -> None:
    pid = await new_team(services, people=TEAM)
    everyone = ["ULEAD", *TEAM]
    # Monday 2 March 09:00 UTC: the lead schedules Friday 6 March 14:00 UTC (15:00 Berlin).
    result = await services.meetings.schedule(
        actor=LEAD, project_id=pid, kind="model-decision", starts_at=utc(2026, 3, 6, 14), attendees=everyone
    )
    mid = result.meeting.id
    assert result.meeting.deadline == utc(2026, 3, 5, 14)
    assert set(result.meeting.owing) == set(TEAM)  # the ML engineers owe; the lead does not
    assert result.outside_hours == ["UANA", "URAJ"]  # 15:00 Berlin is after Ana's hours; 19:30 in Kolkata
    assert result.away == ["UMIA"]  # declared absence on the day (a Slack status is checked when sending)
    first = timeline.take()
    assert [(d.kind, d.target) for _, d in first] == [("post", CHANNEL), ("upload", CHANNEL)]
    assert ("phasegate:propose", str(mid)) in buttons(first[0][1].message)
    # Raj's zone came from his Slack profile and is now kept on his member record.
    assert (await services.projects.members(team_id=LEAD.team_id, user_ids=["URAJ"]))["URAJ"].timezone == (
        "Asia/Kolkata"
    )

    clock.set(utc(2026, 3, 2, 10))
    await services.proposals.submit(
        actor=actor("USUB"), project_id=None, meeting_id=mid, fields=GOOD["transformer"], coauthors=["UCO"]
    )
    # The co-author is asked first; only once they confirm does the proposal count for them too.
    consent = timeline.take()
    assert summary(consent) == [("Mon 10:00", "dm", "UCO")]
    assert ("phasegate:coauthor-confirm", "1") in buttons(consent[0][1].message)
    await press(Context(services=services, actor=actor("UCO"), channel_id=None), "phasegate:coauthor-confirm", "1")
    del timeline.entries[-1]
    await timeline.run_until(scheduler, utc(2026, 3, 3, 15))
    await services.proposals.submit(actor=actor("UANA"), project_id=None, meeting_id=mid, fields=GOOD["boosting"])
    await timeline.run_until(scheduler, utc(2026, 3, 5, 15))

    # The lead answers the escalation: hold anyway.
    escalation = messenger.to("ULEAD", "dm")[-1].message
    assert {a for a, _ in buttons(escalation)} == {
        "phasegate:escalation_postpone",
        "phasegate:escalation_hold",
        "phasegate:escalation_cancel",
    }
    ctx = Context(services=services, actor=LEAD, channel_id=None)
    reply = await press(ctx, "phasegate:escalation_hold", str(mid))
    assert "held anyway" in block_text(reply.message)
    await timeline.run_until(scheduler, utc(2026, 3, 9, 16))
    await services.decisions.decide(
        actor=LEAD, project_id=None, meeting_id=mid, proposal_id=1, rationale="Best score; risk acceptable"
    )
    await timeline.run_until(scheduler, utc(2026, 3, 12, 18))

    assert summary(timeline.entries[2:]) == [
        ("Tue 10:30", "dm", "URAJ"),  # 48 h before the deadline → his last working hour (16:00 IST)
        ("Tue 12:00", "dm", "UANA"),  # 48 h before → her last working hour (13:00 Berlin)
        ("Wed 10:30", "dm", "URAJ"),  # 24 h before; Ana submitted on Tuesday
        ("Thu 12:00", "post", CHANNEL),  # 2 h before the deadline: the channel mention
        ("Thu 14:00", "post", CHANNEL),  # the readiness verdict
        ("Thu 14:00", "dm", "ULEAD"),  # escalation (policy escalate)
        ("Thu 15:00", "post", CHANNEL),  # held anyway
        ("Fri 14:00", "post", CHANNEL),  # agenda, in the announcement's thread
        ("Fri 14:00", "upload", CHANNEL),  # the proposals chart, in the same thread
        ("Fri 15:00", "dm", "ULEAD"),  # ended without a decision
        ("Mon 15:00", "dm", "ULEAD"),  # daily, on working days
        ("Mon 16:00", "post", CHANNEL),  # the decision record; no nudge after it
    ]
    entries = timeline.entries[2:]
    # Nobody who submitted, co-authored or is away was nagged.
    nagged = {d.target for _, d in entries if d.kind == "dm"}
    assert nagged == {"URAJ", "UANA", "ULEAD"}
    dm = entries[0][1].message
    assert ("phasegate:propose", str(mid)) in buttons(dm)
    assert "Model decision #1" in block_text(dm)
    mention = block_text(entries[3][1].message)
    assert "<@URAJ>" in mention and "<@UANA>" not in mention and "<@UMIA>" not in mention
    verdict = block_text(entries[4][1].message)
    assert "is not ready" in verdict and "❌ Every required attendee has submitted" in verdict
    assert "*Still owe a proposal:* <@URAJ>" in verdict
    assert "_Excused (away):_ <@UMIA>, <@UKAI>" in verdict
    agenda = entries[7][1]
    assert agenda.thread_ts == first[0][1].ts
    assert "Purpose: decide." in block_text(agenda.message) and "Held without readiness" in block_text(agenda.message)
    chart = entries[8][1]
    assert chart.thread_ts == first[0][1].ts and (chart.filename or "").endswith("-proposals.png")
    assert (chart.content or b"").startswith(b"\x89PNG") and chart.message and "Chart of 2 proposals" in chart.message.text
    assert ("phasegate:decide", str(mid)) in buttons(entries[9][1].message)
    # Every send was claimed once.
    async with services.db.session() as s:
        keys = sorted(k for (k,) in (await s.execute(select(SentMessage.key))).all())
    assert keys == sorted(
        [
            f"meeting:{mid}:dm48:URAJ:seq0",
            f"meeting:{mid}:dm48:UANA:seq0",
            f"meeting:{mid}:dm24:URAJ:seq0",
            f"meeting:{mid}:mention2:seq0",
            f"meeting:{mid}:verdict:seq0",
            f"meeting:{mid}:start:seq0",
            f"meeting:{mid}:nudge:2026-03-06",
            f"meeting:{mid}:nudge:2026-03-09",
        ]
    )
    assert scheduler.meeting_job_ids(mid) == []
