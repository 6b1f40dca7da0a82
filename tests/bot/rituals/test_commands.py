"""The ritual subcommands, forms and buttons as a user meets them (text, modals, Block Kit)."""

from __future__ import annotations

import json

from bot.clock import FakeClock
from bot.commands import Context, render_form
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
    ical,
    new_team,
    press,
    run,
    slack_person,
    submit,
    utc,
    valid_message,
    valid_view,
    view_blocks,
)
from tests.conftest import actor

TEAM: dict[str, Member] = {
    "UANA": {"tz": "Europe/Berlin", "hours": "07:00-14:00"},
    "URAJ": {"slack": slack_person("URAJ", tz="Asia/Kolkata")},
    "UNEW": {"tz": "America/New_York"},
}


def ctx(services: Services, user: str = "ULEAD", tz: str = "Europe/Berlin", channel: str | None = CHANNEL) -> Context:
    return Context(services=services, actor=actor(user), channel_id=channel, tz=tz)


async def test_schedule_without_arguments_opens_the_form(services: Services) -> None:
    await new_team(services, people=TEAM)
    reply = await run(ctx(services), "meeting schedule")
    assert reply.form is not None and reply.form.form.name == "meeting_schedule"
    view = render_form(reply.form)
    valid_view(view)
    assert [b["block_id"] for b in view_blocks(view) if b["type"] == "input"] == [
        "kind",
        "at",
        "window_from",
        "window_to",
        "duration",
        "attendees",
    ]


async def test_a_window_offers_the_three_earliest_shared_slots_and_a_button_books_one(
    services: Services, scheduler: ReminderScheduler, messenger: RecordingMessenger
) -> None:
    await new_team(services, people=TEAM)
    # Ana 07:00–14:00 Berlin (06–13 UTC), Raj 09:00–17:00 Kolkata (03:30–11:30 UTC), New York 09–17 (14–22 UTC):
    # no time fits all of them and the lead (Berlin 09–17, 08–16 UTC).
    reply = await run(ctx(services), "meeting schedule kind=model-decision window=2026-03-03..2026-03-04")
    assert "No time between 2026-03-03 and 2026-03-04" in block_text(valid_message(reply.message))
    # Without New York: 08:00–11:30 UTC is shared; the three earliest hour-long slots start 08:00, 08:30, 09:00.
    reply = await run(
        ctx(services),
        "meeting schedule kind=model-decision window=2026-03-03..2026-03-04 duration=60 "
        "attendees=<@ULEAD|lead>,<@UANA|ana>,<@URAJ|raj>",
    )
    message = valid_message(reply.message)
    slots = [v for a, v in buttons(message) if a == "phasegate:slot"]
    assert [json.loads(v)["t"] for v in slots] == [
        int(utc(2026, 3, 3, 8).timestamp()),
        int(utc(2026, 3, 3, 8, 30).timestamp()),
        int(utc(2026, 3, 3, 9).timestamp()),
    ]
    draft = json.loads(slots[0])
    assert (draft["k"], draft["a"], draft["d"]) == ("model-decision", ["ULEAD", "UANA", "URAJ"], 60)
    assert "<!date^" in block_text(message)

    booked = await press(ctx(services, channel=None), "phasegate:slot", slots[0])
    text = block_text(valid_message(booked.message))
    assert "Booked *Model decision #1*" in text and "Outside working hours" not in text
    meeting = await services.meetings.get(actor=LEAD, meeting_id=1)
    assert meeting.starts_at.timestamp() == draft["t"] and meeting.attendees == ("ULEAD", "UANA", "URAJ")
    assert [d.kind for d in messenger.deliveries] == ["post", "upload"]
    twice = await press(ctx(services, channel=None), "phasegate:slot", slots[0])
    assert "already scheduled at that time" in block_text(twice.message)
    damaged = await press(ctx(services), "phasegate:slot", "{not json")
    assert "damaged" in block_text(damaged.message)


async def test_a_fixed_time_outside_someones_hours_is_allowed_with_a_warning(
    services: Services, scheduler: ReminderScheduler
) -> None:
    await new_team(services, people=TEAM)
    # 15:00 Berlin (naive = the lead's zone) = 14:00 UTC: after Ana's hours, 19:30 for Raj, 09:00 in New York.
    reply = await run(ctx(services), "meeting schedule kind=model-decision at=2026-03-06T15:00")
    text = block_text(valid_message(reply.message))
    assert "Scheduled *Model decision #1*" in text
    assert "Outside working hours (or on a day they do not work) for <@UANA>, <@URAJ>." in text
    meeting = await services.meetings.get(actor=LEAD, meeting_id=1)
    assert meeting.starts_at == utc(2026, 3, 6, 14)
    assert set(meeting.attendees) == {"ULEAD", "UANA", "URAJ", "UNEW"}  # the kind's roles by default
    refused = await run(ctx(services, "UANA"), "meeting schedule kind=model-decision at=2026-03-06T15:00")
    assert "Only the project lead" in block_text(refused.message)
    past = await run(ctx(services), "meeting schedule kind=model-decision at=2026-03-01T15:00")
    assert "has passed" in block_text(past.message)
    bad = await run(ctx(services), "meeting schedule kind=standup at=2026-03-06T15:00")
    assert "not a meeting kind" in block_text(bad.message)


async def test_moving_reissues_the_invite_and_replans_cancelling_sends_a_cancellation(
    services: Services, scheduler: ReminderScheduler, messenger: RecordingMessenger
) -> None:
    await new_team(services, people=TEAM)
    await run(ctx(services), "meeting schedule kind=model-decision at=2026-03-06T15:00")
    before = dict(scheduler.planned())
    reply = await run(ctx(services), "meeting move 1 at=2026-03-10T10:00")
    assert "Moved *Model decision #1*" in block_text(valid_message(reply.message))
    after = dict(scheduler.planned())
    assert before["meeting:1:verdict"] == utc(2026, 3, 5, 14) and after["meeting:1:verdict"] == utc(2026, 3, 9, 9)
    assert after["meeting:1:start"] == utc(2026, 3, 10, 9)
    uploads = [d for d in messenger.deliveries if d.kind == "upload"]
    assert len(uploads) == 2 and uploads[1].thread_ts == messenger.deliveries[0].ts
    moved = ical(uploads[1].content).walk("VEVENT")[0]
    first = ical(uploads[0].content).walk("VEVENT")[0]
    assert str(moved["UID"]) == str(first["UID"]) and moved.decoded("SEQUENCE") == 1
    assert moved.decoded("DTSTART") == utc(2026, 3, 10, 9)
    update = [d for d in messenger.deliveries if d.kind == "update"]
    assert update and update[0].ts == messenger.deliveries[0].ts  # the announcement now shows the new time

    listing = await run(ctx(services, "URAJ"), "meeting list")
    assert "#1 Model decision" in block_text(valid_message(listing.message))
    reply = await run(ctx(services), "meeting cancel 1")
    assert "Cancelled Model decision #1" in block_text(reply.message)
    cancel = ical([d for d in messenger.deliveries if d.kind == "upload"][-1].content)
    assert str(cancel["METHOD"]) == "CANCEL" and cancel.walk("VEVENT")[0].decoded("SEQUENCE") == 2
    assert scheduler.meeting_job_ids(1) == []
    again = await run(ctx(services), "meeting cancel 1")
    assert "already cancelled" in block_text(again.message)
    listing = await run(ctx(services), "meeting list")
    assert "None scheduled" in block_text(listing.message)


async def test_a_proposal_with_errors_names_every_bad_field_and_saves_nothing(
    services: Services, scheduler: ReminderScheduler
) -> None:
    await new_team(services, people=TEAM)
    await run(ctx(services), "meeting schedule kind=model-decision at=2026-03-06T15:00")
    values = {
        "meeting": "1",
        "title": "",
        "approach": "cnn",
        "refs": "my blog",
        "why": "",
        "benefit": "9",
        "cost": "0",
        "risk": "x",
    }
    reply = await submit(ctx(services, "URAJ"), "propose", {**values, "title": "T", "why": "W"})
    assert set(reply.field_errors) == {"refs", "benefit", "cost", "risk"}
    assert "Not a literature reference: my blog" in reply.field_errors["refs"]
    text_reply = await run(ctx(services, "URAJ"), "propose meeting=1 approach=cnn refs=my-blog benefit=9")
    message = block_text(text_reply.message)
    for field in (
        "Title is missing",
        "Why it fits the problem is missing",
        "Not a literature reference",
        "benefit must be",
        "cost must be",
        "Risk / complexity must be",
    ):
        assert field.lower() in message.lower(), field
    assert set(text_reply.field_errors) == {"title", "why", "refs", "benefit", "cost", "risk"}
    listing = await services.proposals.ranked(actor=LEAD, project_id=None, meeting_id=1)
    assert listing.candidates.ranked == []


async def test_proposing_through_the_form_the_button_and_text(
    services: Services, scheduler: ReminderScheduler, clock: FakeClock, messenger: RecordingMessenger
) -> None:
    pid = await new_team(services, people=TEAM)
    await run(ctx(services), "meeting schedule kind=model-decision at=2026-03-06T15:00")
    form = await run(ctx(services, "URAJ"), "propose")
    assert form.form is not None and form.form.form.name == "propose"
    assert form.form.prefill == {"meeting": "1"}  # the project's one meeting that takes proposals
    valid_view(render_form(form.form))
    # The "Submit proposal" button (DM, announcement, App Home) opens the form for that meeting.
    button = await press(ctx(services, "URAJ", channel=None), "phasegate:propose", "1")
    assert button.form is not None and button.form.prefill == {"meeting": "1"}
    view = render_form(button.form)
    valid_view(view)
    meeting_block = next(b for b in view_blocks(view) if b.get("block_id") == "meeting")
    assert meeting_block["element"]["initial_value"] == "1"
    # Submitted from the modal, without a meeting: the project's only open one is used.
    values = {**GOOD["transformer"], "coauthors": "UANA"}
    reply = await submit(ctx(services, "URAJ"), "propose", values)
    assert reply.field_errors == {}
    assert "Saved proposal #1" in block_text(valid_message(reply.message))
    # The co-author has not confirmed yet: the proposal says so, and they got a DM to confirm or decline.
    assert "Co-author pending: <@UANA>" in block_text(reply.message) and reply.refresh_home == {"URAJ"}
    assert ("phasegate:coauthor-confirm", "1") in buttons(messenger.to("UANA", "dm")[-1].message)
    confirmed = await press(ctx(services, "UANA", channel=None), "phasegate:coauthor-confirm", "1")
    assert "now counts as yours too" in block_text(confirmed.message)
    # Text, late: after the deadline it is accepted and marked late.
    clock.set(utc(2026, 3, 5, 15))
    late = await run(
        ctx(services, "UNEW"),
        'propose meeting=1 title="Gradient boosting" approach="gradient boosting" '
        "refs=10.1145/2939672.2939785 why=cheap benefit=2 cost=1 risk=1",
    )
    assert "marked late" in block_text(valid_message(late.message))
    listing = await run(ctx(services, "UNEW"), "proposals")
    text = block_text(valid_message(listing.message))
    assert "*1. #2 Gradient boosting* — _gradient boosting_ · by <@UNEW> · ⏰ *late*" in text
    assert "Readiness so far" in text
    # Two open meetings: say which.
    await run(ctx(services), "meeting schedule kind=model-decision at=2026-03-20T15:00")
    which = await submit(ctx(services, "URAJ"), "propose", GOOD["cnn"])
    assert "Several meetings take proposals (#1, #2)" in which.field_errors["meeting"]
    # Someone from outside the project may not propose.
    stranger = await run(
        ctx(services, "USTRANGER"),
        "propose meeting=1 project=genres title=t approach=a refs=1609.04243 why=w benefit=1 cost=1 risk=1",
    )
    refusal = block_text(stranger.message)
    assert "Only members of genres" in refusal and "/phasegate join genres" in refusal and "<@ULEAD>" in refusal
    assert pid


async def test_the_record_decision_button_offers_the_ranked_proposals(
    services: Services, scheduler: ReminderScheduler
) -> None:
    await new_team(services, people=TEAM)
    await run(ctx(services), "meeting schedule kind=model-decision at=2026-03-06T15:00")
    empty = await press(ctx(services, channel=None), "phasegate:decide", "1")
    assert "no proposals" in block_text(empty.message)
    for user, key in (("UANA", "transformer"), ("URAJ", "boosting")):
        await services.proposals.submit(actor=actor(user), project_id=None, meeting_id=1, fields=GOOD[key])
    reply = await press(ctx(services, channel=None), "phasegate:decide", "1")
    assert reply.form is not None
    view = render_form(reply.form)
    valid_view(view)
    picker = next(b for b in view_blocks(view) if b.get("block_id") == "proposal")["element"]
    assert [o["value"] for o in picker["options"]] == ["2", "1"]  # ranked: boosting scores higher
    other_team = await press(
        Context(services=services, actor=actor("ULEAD", "TB000002"), channel_id=None), "phasegate:decide", "1"
    )
    assert "no meeting #1" in block_text(other_team.message)


async def test_a_meeting_without_proposals_gets_its_agenda_and_no_reminders(
    services: Services, scheduler: ReminderScheduler, timeline: Timeline
) -> None:
    await new_team(services, people={**TEAM, "UBO": {"role": "business-owner", "tz": "Europe/Berlin"}})
    reply = await run(ctx(services), "meeting schedule kind=brief-review at=2026-03-04T10:00 duration=30")
    assert "Proposals due" not in block_text(valid_message(reply.message))
    announcement = timeline.take()[0][1]
    assert "Proposals due" not in block_text(announcement.message) and buttons(announcement.message) == []
    ics = ical(next(d for _, d in timeline.entries if d.kind == "upload").content)
    assert ics.walk("VALARM") == []
    assert [j for j, _ in scheduler.planned()] == ["meeting:1:start"]
    await timeline.run_until(scheduler, utc(2026, 3, 10))
    later = timeline.entries[2:]
    assert [(w, d.kind, d.thread_ts) for w, d in later] == [(utc(2026, 3, 4, 9), "post", announcement.ts)]
    text = block_text(later[0][1].message)
    assert "Brief review #1 — agenda" in text and "Agree the success criteria" in text and "decide" not in text
    assert "UBO" in (await services.meetings.get(actor=LEAD, meeting_id=1)).attendees
    assert (await services.meetings.get(actor=LEAD, meeting_id=1)).owing == ()
