"""Decisions: tasks in Deliver with assignees, the decision record, Develop's gate; iterate → runner-ups first."""

from __future__ import annotations

import json

from sqlmodel import col, select

from bot.clock import FakeClock
from bot.commands import Context
from bot.db.models import Decision, OutboxItem, Task
from bot.messaging import RecordingMessenger
from bot.process import Outcome, Phase
from bot.scheduler import ReminderScheduler
from bot.services import Services
from tests.bot.rituals.helpers import CHANNEL, GOOD, LEAD, Member, Timeline, block_text, new_team, run, submit, utc
from tests.conftest import actor

TEAM: dict[str, Member] = {
    "UANA": {"tz": "Europe/Berlin", "name": "ana"},
    "URAJ": {"tz": "Europe/Berlin", "name": "raj"},
    "UBO": {"tz": "Europe/Berlin", "role": "business-owner", "name": "bo"},
}


async def to_develop(services: Services, pid: int) -> None:
    await services.gates.advance(actor=LEAD, project_id=pid, override_reason="brief agreed offline")
    await services.gates.advance(actor=LEAD, project_id=pid, override_reason="baseline from the old system")


async def meeting_with_proposals(services: Services, pid: int, start: int = 6) -> int:
    result = await services.meetings.schedule(
        actor=LEAD,
        project_id=pid,
        kind="model-decision",
        starts_at=utc(2026, 3, start, 14),
        attendees=["ULEAD", "UANA", "URAJ"],
    )
    mid = result.meeting.id
    for user, key in (("UANA", "transformer"), ("URAJ", "boosting"), ("URAJ", "cnn")):
        await services.proposals.submit(actor=actor(user), project_id=None, meeting_id=mid, fields=GOOD[key])
    return mid


def ctx(services: Services, user: str = "ULEAD") -> Context:
    return Context(services=services, actor=actor(user), channel_id=CHANNEL, tz="Europe/Berlin")


async def test_a_decision_creates_tasks_posts_its_record_and_meets_develops_gate(
    services: Services, scheduler: ReminderScheduler, timeline: Timeline, messenger: RecordingMessenger
) -> None:
    pid = await new_team(services, people=TEAM)
    await to_develop(services, pid)
    mid = await meeting_with_proposals(services, pid)
    await timeline.run_until(scheduler, utc(2026, 3, 6, 15, 30))  # verdict (ready), agenda, first nudge
    assert "is ready" in block_text(messenger.to(CHANNEL, "post")[-2].message)
    refused = await run(ctx(services, "UANA"), f'decide meeting={mid} proposal=1 rationale="mine"')
    assert "Only the project lead" in block_text(refused.message)

    reply = await run(
        ctx(services),
        f'decide meeting={mid} proposal=1 rationale="Best benefit; <b>risk</b> acceptable" '
        'tasks="Prototype the AST <@URAJ|raj>; Tune the learning rate @ana; Label 500 songs phase=develop"',
    )
    text = block_text(reply.message)
    assert "Decision recorded" in text and "this decision meets Develop's gate" in text
    assert "• #7 Prototype the AST → <@URAJ>" in text and "• #9 Label 500 songs" in text
    assert reply.refresh_home == {"ULEAD", "URAJ", "UANA"}

    async with services.db.session() as s:
        decision = (await s.execute(select(Decision))).scalar_one()
        tasks = list(
            (await s.execute(select(Task).where(Task.origin == "decision").order_by(col(Task.number)))).scalars()
        )
        outbox = {o.ref for o in (await s.execute(select(OutboxItem).where(OutboxItem.kind == "issue"))).scalars()}
    assert [(t.title, t.assignee_user_id, t.phase, t.role, t.decision_id) for t in tasks] == [
        ("Prototype the AST", "URAJ", "deliver", "ml-engineer", decision.id),
        ("Tune the learning rate", "UANA", "deliver", "ml-engineer", decision.id),
        ("Label 500 songs", None, "develop", None, decision.id),
    ]
    assert {t.id for t in tasks} <= outbox  # queued for GitHub
    # Runner-ups: every other proposal, in rank order (boosting scores 2.00, the CNN 0.80).
    assert (decision.proposal_id, decision.runner_up_ids, decision.ready) == (1, [2, 3], True)
    record = messenger.to(CHANNEL, "post")[-1]
    assert decision.channel_ts == record.ts
    text = block_text(record.message)
    assert "*Chosen:* #1 *Audio spectrogram transformer*" in text
    assert "Best benefit; &lt;b&gt;risk&lt;/b&gt; acceptable" in text
    assert text.index("#2 Gradient boosting on MFCCs") < text.index("#3 CNN on mel spectrograms")
    assert "Prototype the AST · <@URAJ> · Deliver" in text and "Label 500 songs · Develop" in text
    assert (await services.meetings.get(actor=LEAD, meeting_id=mid)).status == "decided"
    assert (await services.gates.evaluate(actor=LEAD, project_id=pid)).met
    # No more nudges once decided.
    assert scheduler.meeting_job_ids(mid) == []
    await timeline.run_until(scheduler, utc(2026, 3, 12))
    assert len(messenger.to("ULEAD", "dm")) == 1  # the one nudge before the decision
    again = await run(ctx(services), f'decide meeting={mid} proposal=2 rationale="again"')
    assert "already has a decision" in block_text(again.message)


async def test_a_decision_refuses_unknown_people_and_proposals_by_field(
    services: Services, scheduler: ReminderScheduler, clock: FakeClock
) -> None:
    pid = await new_team(services, people=TEAM)
    mid = await meeting_with_proposals(services, pid)
    clock.set(utc(2026, 3, 6, 14))
    reply = await submit(ctx(services), "decide", {"meeting": str(mid), "proposal": "9", "rationale": "x", "tasks": ""})
    assert set(reply.field_errors) == {"proposal"} and "#1 Audio" in reply.field_errors["proposal"]
    reply = await submit(
        ctx(services), "decide", {"meeting": str(mid), "proposal": "1", "rationale": "x", "tasks": "Prototype @nobody"}
    )
    assert set(reply.field_errors) == {"tasks"} and "@nobody" in reply.field_errors["tasks"]
    reply = await submit(
        ctx(services), "decide", {"meeting": str(mid), "proposal": "1", "rationale": "ok", "tasks": "x phase=nope"}
    )
    assert set(reply.field_errors) == {"tasks"} and "not a phase" in reply.field_errors["tasks"]
    async with services.db.session() as s:
        assert (await s.execute(select(Decision))).first() is None


async def test_after_an_iterate_the_next_agenda_lists_the_runner_ups_first(
    services: Services,
    scheduler: ReminderScheduler,
    clock: FakeClock,
    timeline: Timeline,
    messenger: RecordingMessenger,
) -> None:
    pid = await new_team(services, people=TEAM)
    await to_develop(services, pid)
    first = await meeting_with_proposals(services, pid)
    await timeline.run_until(scheduler, utc(2026, 3, 6, 15, 30))
    await services.decisions.decide(actor=LEAD, project_id=None, meeting_id=first, proposal_id=1, rationale="AST")
    await services.gates.advance(actor=LEAD, project_id=pid)  # Develop's gate is met by the ready decision
    result = await services.gates.advance(actor=LEAD, project_id=pid, outcome=Outcome.ITERATE)
    assert result.to_phase is Phase.DEVELOP

    second = await services.meetings.schedule(
        actor=LEAD,
        project_id=pid,
        kind="model-decision",
        starts_at=utc(2026, 3, 13, 14),
        attendees=["ULEAD", "UANA", "URAJ"],
    )
    mid = second.meeting.id
    # A new proposal that outscores everything, one whose title tries to ping the channel.
    await services.proposals.submit(
        actor=actor("UANA"),
        project_id=None,
        meeting_id=mid,
        fields={**GOOD["boosting"], "title": "<!channel> & <@U999>", "approach": "linear", "benefit": "5"},
    )
    await services.proposals.submit(actor=actor("URAJ"), project_id=None, meeting_id=mid, fields=GOOD["cnn"])
    listing = await run(ctx(services, "URAJ"), f"proposals meeting={mid}")
    await timeline.run_until(scheduler, utc(2026, 3, 13, 14))
    agenda = messenger.to(CHANNEL, "post")[-1]
    assert agenda.thread_ts is not None and agenda.message is not None and "agenda" in agenda.message.text
    heads = [
        b["text"]["text"]
        for b in agenda.message.blocks
        if b["type"] == "section" and "fields" in b
    ]
    # Runner-ups of the last decision (#2 boosting, #3 CNN) lead, then this meeting's own, by score.
    assert [h.split("*")[1] for h in heads] == [
        "1. #2 Gradient boosting on MFCCs",
        "2. #3 CNN on mel spectrograms",
        "3. #4 &lt;!channel&gt; &amp; &lt;@U999&gt;",
        "4. #5 CNN on mel spectrograms",
    ]
    assert all("runner-up of the last decision" in h for h in heads[:2])
    assert not any("runner-up" in h for h in heads[2:])
    # Escaped everywhere: the raw mention appears in no block and not in the notification text.
    raw = json.dumps(agenda.message.blocks)
    assert "<!channel>" not in raw and "<@U999>" not in raw
    assert "&lt;!channel&gt; &amp; &lt;@U999&gt;" in raw
    assert "<!channel>" not in agenda.message.text
    # Reference cited by a runner-up and a new proposal is flagged.
    assert "Cited by more than one proposal" in block_text(agenda.message)
    assert "CNN on mel spectrograms" in block_text(listing.message)
    # A carried runner-up can be chosen.
    record = await services.decisions.decide(
        actor=LEAD, project_id=None, meeting_id=mid, proposal_id=2, rationale="Cheap and good enough"
    )
    # Runner-ups in score order (the new top-scoring #4 first), not carried-first as on the agenda.
    assert record.decision.runner_up_ids == [4, 3, 5]
    scores = [p.score for p in record.runner_ups]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[1]


async def test_a_decision_before_the_meeting_starts_is_refused_with_its_start_time(
    services: Services, scheduler: ReminderScheduler, clock: FakeClock
) -> None:
    pid = await new_team(services, people=TEAM)
    mid = await meeting_with_proposals(services, pid)
    clock.set(utc(2026, 3, 6, 13, 59))
    reply = await run(ctx(services), f'decide meeting={mid} proposal=1 rationale="AST"')
    text = block_text(reply.message)
    assert "starts Fri 06 Mar 2026" in text and "the decision is taken at the meeting" in text, text
    assert f"meeting move {mid} at=" in text
    async with services.db.session() as s:
        assert (await s.execute(select(Decision))).first() is None
    clock.set(utc(2026, 3, 6, 14))
    record = await services.decisions.decide(
        actor=LEAD, project_id=None, meeting_id=mid, proposal_id=1, rationale="AST"
    )
    assert record.decision.meeting_id == mid


def test_task_lines_parse_person_role_and_phase_wherever_they_appear() -> None:
    from bot.commands.rituals import parse_tasks
    from bot.process import Role

    specs = parse_tasks("role=data-engineer Build cache @omar; Label songs phase=define @raj role=ml-engineer now")
    assert [(t.title, t.assignee_name, t.role, t.phase) for t in specs] == [
        ("Build cache", "omar", Role.DATA_ENGINEER, None),
        ("Label songs now", "raj", Role.ML_ENGINEER, Phase.DEFINE),
    ]
    assert all("role=" not in t.title and "phase=" not in t.title for t in specs)
