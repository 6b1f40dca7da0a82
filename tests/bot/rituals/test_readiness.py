"""The readiness verdict in the channel, each rule failing alone; escalation buttons; automatic postponement."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from bot.clock import FakeClock
from bot.commands import Context
from bot.db.models import Meeting, Proposal
from bot.messaging import Delivery, RecordingMessenger
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
    ical,
    new_team,
    press,
    utc,
    valid_message,
)
from tests.conftest import actor

TEAM: dict[str, Member] = {
    "UANA": {"tz": "Europe/Berlin"},
    "URAJ": {"tz": "Europe/Berlin"},
    "UBO": {"role": "business-owner"},
}
RULES = {
    "all_submitted": "Every required attendee has submitted",
    "min_proposals": "At least 3 proposals",
    "distinct_families": "At least two distinct approach families",
    "cite_literature": "Every proposal cites literature",
    "cost_and_benefit": "Every proposal states cost and benefit",
}


async def setup_meeting(services: Services, **settings: Any) -> tuple[int, int]:
    pid = await new_team(services, people=TEAM)
    if settings:
        await services.projects.configure(actor=LEAD, project_id=pid, **settings)
    result = await services.meetings.schedule(
        actor=LEAD,
        project_id=pid,
        kind="model-decision",
        starts_at=utc(2026, 3, 6, 14),
        attendees=["ULEAD", "UANA", "URAJ", "UBO"],
    )
    return pid, result.meeting.id


async def propose(services: Services, user: str, mid: int, key: str, **changes: str) -> None:
    await services.proposals.submit(actor=actor(user), project_id=None, meeting_id=mid, fields={**GOOD[key], **changes})


async def insert_unchecked(services: Services, pid: int, mid: int, **changes: Any) -> None:
    """A proposal stored without the form's checks (as an import or an older version might have)."""
    async with services.db.session() as s:
        row: dict[str, Any] = {
            "title": "Imported idea",
            "approach": "cnn",
            "references": ["1609.04243"],
            "why": "w",
            "benefit": 3,
            "cost_days": 3.0,
            "risk": 2,
        }
        s.add(
            Proposal(team_id=LEAD.team_id, project_id=pid, meeting_id=mid, author_user_id="URAJ", **{**row, **changes})
        )


def verdict_of(timeline: Timeline) -> Delivery:
    posts = [d for _, d in timeline.entries if d.kind == "post" and "Readiness check" in block_text(d.message)]
    assert len(posts) == 1
    return posts[0]


@pytest.mark.parametrize("failing", list(RULES))
async def test_each_rule_failing_alone_shows_in_the_channel_verdict(
    failing: str, services: Services, scheduler: ReminderScheduler, timeline: Timeline
) -> None:
    pid, mid = await setup_meeting(services, min_proposals=3 if failing == "min_proposals" else 2)
    await propose(services, "UANA", mid, "transformer")
    if failing == "all_submitted":  # the lead brings the second (a second from Ana would not count); Raj none
        await propose(services, "ULEAD", mid, "boosting")
    elif failing == "min_proposals":  # two of the three required
        await propose(services, "URAJ", mid, "boosting")
    elif failing == "distinct_families":
        await propose(services, "URAJ", mid, "cnn", approach="Transformer!")
    elif failing == "cite_literature":
        await insert_unchecked(services, pid, mid, references=[])
    else:
        await insert_unchecked(services, pid, mid, cost_days=0.0)
    await timeline.run_until(scheduler, utc(2026, 3, 5, 14))
    text = block_text(verdict_of(timeline).message)
    label = RULES[failing] if failing != "min_proposals" else "At least 3 proposals"
    failed = [line for line in text.splitlines() if line.startswith("❌")]
    assert len(failed) == 1 and failed[0].startswith(f"❌ {label}"), text
    passed = [line for line in text.splitlines() if line.startswith("✅")]
    assert len(passed) == 4
    assert "is not ready" in text
    if failing == "all_submitted":
        assert "*Still owe a proposal:* <@URAJ>" in text
    else:
        assert "Still owe" not in text
    async with services.db.session() as s:
        meeting = await s.get(Meeting, mid)
        assert meeting is not None and meeting.ready is False
        assert [r["key"] for r in meeting.verdict["rules"] if not r["passed"]] == [failing]


async def test_a_ready_meeting_flags_references_cited_twice(
    services: Services, scheduler: ReminderScheduler, timeline: Timeline, messenger: RecordingMessenger
) -> None:
    _, mid = await setup_meeting(services)
    await propose(services, "UANA", mid, "transformer")
    await propose(services, "URAJ", mid, "cnn", refs="https://arxiv.org/abs/2104.01778v2, 1609.04243")
    await timeline.run_until(scheduler, utc(2026, 3, 5, 14))
    text = block_text(verdict_of(timeline).message)
    assert "✅ Model decision #1 is ready" in text and "❌" not in text
    assert "Cited by more than one proposal" in text
    assert "arXiv:2104.01778 — #1 Audio spectrogram transformer, #2 CNN on mel spectrograms" in text
    assert messenger.to("ULEAD", "dm") == []  # nothing to escalate


async def not_ready(services: Services, scheduler: ReminderScheduler, timeline: Timeline) -> int:
    _, mid = await setup_meeting(services)
    await propose(services, "UANA", mid, "transformer")
    await timeline.run_until(scheduler, utc(2026, 3, 5, 14))
    return mid


def lead_ctx(services: Services, user: str = "ULEAD") -> Context:
    return Context(services=services, actor=actor(user), channel_id=None)


async def test_escalation_postpone_moves_it_by_working_days_with_a_new_invite_and_ladder(
    services: Services, scheduler: ReminderScheduler, timeline: Timeline, messenger: RecordingMessenger
) -> None:
    mid = await not_ready(services, scheduler, timeline)
    dm = messenger.to("ULEAD", "dm")[-1].message
    valid_message(dm)
    assert ("phasegate:escalation_postpone", str(mid)) in buttons(dm)
    refused = await press(lead_ctx(services, "UANA"), "phasegate:escalation_postpone", str(mid))
    assert "Only the project lead" in block_text(refused.message)
    timeline.take()
    reply = await press(lead_ctx(services), "phasegate:escalation_postpone", str(mid))
    assert "postponed" in block_text(reply.message)
    meeting = await services.meetings.get(actor=LEAD, meeting_id=mid)
    assert meeting.starts_at == utc(2026, 3, 10, 14)  # Friday + 2 working days = Tuesday
    assert meeting.deadline == utc(2026, 3, 9, 14) and meeting.sequence == 1 and meeting.postpone_count == 1
    new = timeline.take()
    assert [(d.kind, d.target) for _, d in new] == [("post", CHANNEL), ("update", CHANNEL), ("upload", CHANNEL)]
    assert "postponed" in block_text(new[0][1].message) and "<@URAJ>" in block_text(new[0][1].message)
    ev = ical(new[2][1].content).walk("VEVENT")[0]
    assert ev.decoded("SEQUENCE") == 1 and ev.decoded("DTSTART") == utc(2026, 3, 10, 14)
    planned = dict(scheduler.planned())
    assert planned[f"meeting:{mid}:verdict"] == utc(2026, 3, 9, 14)
    # The new deadline is Monday 15:00 Berlin: both DMs fall on the weekend and collapse onto Friday's last hour.
    assert planned[f"meeting:{mid}:dm24:URAJ"] == utc(2026, 3, 6, 15)
    assert f"meeting:{mid}:dm48:URAJ" not in planned
    entries = await services.audit.entries(actor=LEAD)
    assert (entries[0].action, entries[0].actor) == ("meeting.postpone", "ULEAD")
    # The new ladder runs: Raj is reminded again for the new deadline.
    await timeline.run_until(scheduler, utc(2026, 3, 6, 15))
    assert [(w, d.target) for w, d in timeline.entries if d.kind == "dm"][-1] == (utc(2026, 3, 6, 15), "URAJ")


async def test_escalation_hold_anyway_keeps_the_meeting_not_ready(
    services: Services, scheduler: ReminderScheduler, timeline: Timeline, messenger: RecordingMessenger
) -> None:
    mid = await not_ready(services, scheduler, timeline)
    await services.projects.update_profile(team_id=LEAD.team_id, user_id="UADMIN", is_admin=True)
    reply = await press(lead_ctx(services, "UADMIN"), "phasegate:escalation_hold", str(mid))
    assert "held anyway" in block_text(reply.message)
    again = await press(lead_ctx(services), "phasegate:escalation_hold", str(mid))
    assert "already being held" in block_text(again.message)
    meeting = await services.meetings.get(actor=LEAD, meeting_id=mid)
    assert (meeting.status, meeting.hold_anyway_by) == ("held", "UADMIN")
    assert "<@UADMIN> will hold" in block_text(messenger.to(CHANNEL, "post")[-1].message)
    entries = await services.audit.entries(actor=LEAD)
    assert (entries[0].action, entries[0].actor) == ("meeting.hold_anyway", "UADMIN")
    await timeline.run_until(scheduler, utc(2026, 3, 6, 14))
    agenda = messenger.to(CHANNEL, "post")[-1]
    assert "Held without readiness" in block_text(agenda.message)
    record = await services.decisions.decide(
        actor=LEAD, project_id=None, meeting_id=mid, proposal_id=1, rationale="Only one on the table"
    )
    assert record.decision.ready is False


async def test_escalation_cancel_withdraws_the_invite_and_the_reminders(
    services: Services, scheduler: ReminderScheduler, timeline: Timeline, messenger: RecordingMessenger
) -> None:
    mid = await not_ready(services, scheduler, timeline)
    refused = await press(lead_ctx(services, "URAJ"), "phasegate:escalation_cancel", str(mid))
    assert "Only the project lead" in block_text(refused.message)
    timeline.take()
    reply = await press(lead_ctx(services), "phasegate:escalation_cancel", str(mid))
    assert "cancelled" in block_text(reply.message)
    new = timeline.take()
    assert [(d.kind, d.target) for _, d in new] == [("post", CHANNEL), ("update", CHANNEL), ("upload", CHANNEL)]
    cal = ical(new[2][1].content)
    ev = cal.walk("VEVENT")[0]
    assert str(cal["METHOD"]) == "CANCEL" and str(ev["STATUS"]) == "CANCELLED" and ev.decoded("SEQUENCE") == 1
    assert scheduler.meeting_job_ids(mid) == []
    entries = await services.audit.entries(actor=LEAD)
    assert (entries[0].action, entries[0].actor) == ("meeting.cancel", "ULEAD")
    await timeline.run_until(scheduler, utc(2026, 3, 10))
    assert timeline.take() == [] and [d for _, d in timeline.entries[-3:] if d.kind == "dm"] == []


async def test_policy_postpone_twice_then_escalate_when_the_postponements_are_used_up(
    services: Services,
    scheduler: ReminderScheduler,
    clock: FakeClock,
    timeline: Timeline,
    messenger: RecordingMessenger,
) -> None:
    _, mid = await setup_meeting(services, readiness_policy="postpone", postpone_days=2, max_postpones=2)
    await propose(services, "UANA", mid, "transformer")
    await timeline.run_until(scheduler, utc(2026, 3, 20))
    verdicts = [(w, d) for w, d in timeline.entries if d.kind == "post" and "Readiness check" in block_text(d.message)]
    assert [w for w, _ in verdicts] == [utc(2026, 3, 5, 14), utc(2026, 3, 9, 14), utc(2026, 3, 11, 14)]
    assert "postponed by 2 working day(s)" in block_text(verdicts[0][1].message)
    assert "postponed by 2 working day(s)" in block_text(verdicts[1][1].message)
    assert "<@ULEAD> decides" in block_text(verdicts[2][1].message)
    invites = [ical(d.content).walk("VEVENT")[0] for _, d in timeline.entries if d.kind == "upload"]
    assert [(e.decoded("SEQUENCE"), e.decoded("DTSTART")) for e in invites] == [
        (0, utc(2026, 3, 6, 14)),
        (1, utc(2026, 3, 10, 14)),
        (2, utc(2026, 3, 12, 14)),
        (3, utc(2026, 3, 12, 14)),  # nobody answered the escalation: cancelled at the start (postponements used up)
    ]
    cancelled = [d for _, d in timeline.entries if d.kind == "post" and "nobody answered" in block_text(d.message)]
    assert len(cancelled) == 1 and "was cancelled" in block_text(cancelled[0].message)
    told = [d for _, d in timeline.entries if d.kind == "post" and "— postponed" in block_text(d.message)]
    assert len(told) == 2
    for n, d in enumerate(told, start=1):
        text = block_text(d.message)
        assert "*Why:* the readiness check failed: every required attendee has submitted — no" in text
        assert f"(postponement {n}; at most 2 automatic)" in text
        assert "*Who:* <@ULEAD>, <@UANA>, <@URAJ>, <@UBO>" in text  # everyone is told
    # Raj was reminded on each ladder; the lead got exactly one escalation, after the second postponement.
    raj = [w for w, d in timeline.entries if d.kind == "dm" and d.target == "URAJ"]
    assert raj == [
        utc(2026, 3, 3, 14),  # ladder 1: 48 h and 24 h before Thursday's deadline
        utc(2026, 3, 4, 14),
        utc(2026, 3, 6, 15),  # ladder 2 (deadline Monday): both rungs fall on the weekend → Friday's last hour
        utc(2026, 3, 9, 14),  # ladder 3 (deadline Wednesday): 48 h before is right now, then 24 h before
        utc(2026, 3, 10, 14),
    ]
    lead_dms = messenger.to("ULEAD", "dm")
    escalations = [d for d in lead_dms if "escalation_hold" in str(d.message.blocks if d.message else "")]
    assert len(escalations) == 1
    meeting = await services.meetings.get(actor=LEAD, meeting_id=mid)
    assert (meeting.postpone_count, meeting.sequence, meeting.starts_at) == (2, 3, utc(2026, 3, 12, 14))
    assert meeting.status == "cancelled"
    async with services.db.session() as s:
        row = (await s.execute(select(Meeting).where(Meeting.id == mid))).scalar_one()
        assert row.ready is False
    entries = [e for e in await services.audit.entries(actor=LEAD) if e.action == "meeting.postpone"]
    assert [e.actor for e in entries] == ["phasegate", "phasegate"]


async def test_an_unanswered_escalation_postpones_once_then_cancels(
    services: Services,
    scheduler: ReminderScheduler,
    clock: FakeClock,
    timeline: Timeline,
    messenger: RecordingMessenger,
) -> None:
    _, mid = await setup_meeting(services)  # the default policy: escalate to the lead
    await propose(services, "UANA", mid, "transformer")
    await timeline.run_until(scheduler, utc(2026, 3, 20))
    escalations = [d for d in messenger.to("ULEAD", "dm") if "escalation_hold" in str(d.message.blocks if d.message else "")]
    assert len(escalations) == 2  # one per readiness check; the lead answered neither
    posts = [(w, block_text(d.message)) for w, d in timeline.entries if d.kind == "post"]
    postponed = [(w, t) for w, t in posts if "— postponed" in t]
    assert [w for w, _ in postponed] == [utc(2026, 3, 6, 14)]  # at the meeting's start, not before
    assert "nobody answered the escalation" in postponed[0][1]
    cancelled = [(w, t) for w, t in posts if "was cancelled" in t and "nobody answered" in t]
    assert [w for w, _ in cancelled] == [utc(2026, 3, 10, 14)]
    meeting = await services.meetings.get(actor=LEAD, meeting_id=mid)
    assert (meeting.status, meeting.postpone_count) == ("cancelled", 1)
    # The unready meeting was never held: no agenda was posted.
    assert not any("agenda" in t.lower() and "starts now" in t.lower() for _, t in posts)
