"""The weekly digest: at the lead's local time across a DST change, once; a quiet week in one line; bad input."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.clock import FakeClock
from bot.commands import Context
from bot.errors import InvalidInput
from bot.messaging import Delivery
from bot.scheduler import ReminderScheduler, digest_job_id, run_digest_job
from bot.services import Services
from bot.services.digest import DigestSlot, next_slot, parse_digest
from tests.bot.rituals.helpers import CHANNEL, LEAD, Timeline, block_text, new_team, run, utc
from tests.conftest import actor

ZONE = "Europe/Berlin"  # summer time from Sun 29 Mar 2026, 02:00 → 03:00


def ctx(services: Services, user: str = "ULEAD") -> Context:
    return Context(services=services, actor=actor(user), channel_id=CHANNEL, tz=ZONE)


def digests(entries: list[tuple[datetime, Delivery]]) -> list[tuple[str, str]]:
    """(local-looking UTC time, text) of each weekly digest posted."""
    return [
        (when.strftime("%a %d %b %H:%M"), d.message.text)
        for when, d in entries
        if d.kind == "post" and d.message is not None and "Weekly digest" in d.message.text
    ]


def test_parse_digest_reads_days_and_times_and_refuses_with_an_example() -> None:
    assert parse_digest("mon 09:00") == DigestSlot(0, 540)
    assert parse_digest("Friday 16:30") == DigestSlot(4, 990)
    assert parse_digest("tues 7:05") == DigestSlot(1, 425)
    assert parse_digest("off") is None
    for bad in ("monday", "09:00", "mo 09:00", "mon 25:00", "mon 09:60", "funday 09:00", "mon 9am", ""):
        with pytest.raises(InvalidInput) as err:
            parse_digest(bad)
        assert 'digest="mon 09:00"' in str(err.value) and "digest=off" in str(err.value)


def test_next_slot_keeps_the_local_time_across_dst() -> None:
    slot = DigestSlot(0, 540)
    assert next_slot(utc(2026, 3, 20, 12), slot, ZONE) == utc(2026, 3, 23, 8)  # CET: UTC+1
    assert next_slot(utc(2026, 3, 23, 8), slot, ZONE) == utc(2026, 3, 30, 7)  # CEST: UTC+2
    assert next_slot(utc(2026, 10, 20), slot, ZONE) == utc(2026, 10, 26, 8)  # back to CET on 25 Oct


async def test_digest_is_posted_at_the_leads_local_time_across_dst_once(
    services: Services, scheduler: ReminderScheduler, timeline: Timeline, clock: FakeClock
) -> None:
    pid = await new_team(services)
    clock.set(utc(2026, 3, 20, 12))
    reply = await run(ctx(services), 'settings digest="mon 09:00"')
    assert "Mon 09:00 (Europe/Berlin" in block_text(reply.message)
    assert dict(scheduler.planned())[digest_job_id(pid)] == utc(2026, 3, 23, 8)
    await services.tasks.add(actor=LEAD, project_id=pid, title="Collect labelled clips")

    entries = await timeline.run_until(scheduler, utc(2026, 3, 23, 7, 59))
    assert digests(entries) == []
    entries = await timeline.run_until(scheduler, utc(2026, 4, 1))
    posted = digests(entries)
    assert [when for when, _ in posted] == ["Mon 23 Mar 08:00", "Mon 30 Mar 07:00"]  # 09:00 in Berlin both times
    first = next(d for _, d in entries if d.kind == "post" and d.message and "Weekly digest" in d.message.text)
    text = block_text(first.message)
    assert "Discovery phase, day" in text and "Tasks opened" in text and "Collect labelled clips" in text
    assert "Gate" in text
    assert first.target == CHANNEL
    charts = [d for _, d in entries if d.kind == "upload" and (d.filename or "").endswith(".png")]
    assert len(charts) == 1 and all((d.content or b"").startswith(b"\x89PNG\r\n\x1a\n") for d in charts)
    assert "Phase timeline of genres" in (charts[0].message.text if charts[0].message else "")
    assert charts[0].thread_ts == first.ts and first.ts  # in the digest's thread

    # The job runs again for the same week (a restart before it was marked done, a second replica): no repost.
    await run_digest_job(pid, utc(2026, 3, 30, 7), services=services)
    assert services.outbox is not None
    await services.outbox.drain()
    assert digests(timeline.take()) == []
    assert dict(scheduler.planned())[digest_job_id(pid)] == utc(2026, 4, 6, 7)


async def test_a_quiet_week_is_one_line(
    services: Services, scheduler: ReminderScheduler, timeline: Timeline, clock: FakeClock
) -> None:
    pid = await new_team(services)
    clock.set(utc(2026, 3, 20, 12))
    await run(ctx(services), 'settings digest="fri 16:00"')
    await services.tasks.add(actor=LEAD, project_id=pid, title="Collect labelled clips")
    entries = await timeline.run_until(scheduler, utc(2026, 4, 4))
    posted = digests(entries)
    assert [when for when, _ in posted] == ["Fri 20 Mar 15:00", "Fri 27 Mar 15:00", "Fri 03 Apr 14:00"]
    assert "quiet week" not in posted[0][1]
    for _, quiet in posted[1:]:
        assert "quiet week" in quiet and "\n" not in quiet
    last = [d.message for _, d in entries if d.kind == "post" and d.message and "quiet week" in d.message.text][-1]
    assert last is not None and len(last.blocks) == 1
    assert not [d for _, d in entries if d.kind == "upload" and d.filename and "timeline" in d.filename][1:]


async def test_digest_off_and_refusals(
    services: Services, scheduler: ReminderScheduler, timeline: Timeline, clock: FakeClock
) -> None:
    pid = await new_team(services, people={"UANA": {"tz": "Europe/Berlin"}})
    clock.set(utc(2026, 3, 20, 12))
    refused = block_text((await run(ctx(services), "settings digest=monday")).message)
    assert "`monday` is not a digest time" in refused and 'digest="mon 09:00"' in refused
    refused = block_text((await run(ctx(services, "UANA"), 'settings digest="mon 09:00"')).message)
    assert "Only the project lead" in refused
    assert digest_job_id(pid) not in dict(scheduler.planned())
    await run(ctx(services), 'settings digest="mon 09:00"')
    assert digest_job_id(pid) in dict(scheduler.planned())
    reply = await run(ctx(services), "settings digest=off")
    assert "Weekly digest in the channel* (`digest`)\noff" in block_text(reply.message)
    assert digest_job_id(pid) not in dict(scheduler.planned())
    assert digests(await timeline.run_until(scheduler, utc(2026, 4, 4))) == []


async def test_a_busy_week_lists_phase_gate_meetings_owing_decisions_tasks_overdue_and_github(
    services: Services, scheduler: ReminderScheduler, timeline: Timeline, clock: FakeClock
) -> None:
    from datetime import date

    from bot.db.models import GitHubIssue, WebhookDelivery
    from bot.process import Phase
    from tests.bot.rituals.test_decisions import TEAM, meeting_with_proposals, to_develop

    pid = await new_team(services, people=TEAM)
    await to_develop(services, pid)
    await services.gates.plan(actor=LEAD, project_id=pid, phase=Phase.DEVELOP, due=date(2026, 3, 5))
    await run(ctx(services), 'settings digest="mon 09:00"')
    mid = await meeting_with_proposals(services, pid)
    await timeline.run_until(scheduler, utc(2026, 3, 6, 15, 30))
    await run(ctx(services), f'decide meeting={mid} proposal=1 rationale="best benefit" tasks="Prototype the AST"')
    coming = await services.meetings.schedule(
        actor=LEAD, project_id=pid, kind="model-decision", starts_at=utc(2026, 3, 12, 14),
        attendees=["ULEAD", "UANA", "URAJ"],
    )
    task = await services.tasks.add(actor=LEAD, project_id=pid, title="Throwaway spike")
    await services.tasks.set_status(actor=LEAD, project_id=pid, number=task.number, status="closed")
    async with services.db.session() as s:
        s.add(GitHubIssue(task_id=task.id, team_id=LEAD.team_id, project_id=pid, number=12,
                          html_url="https://github.com/acme/genres/issues/12", state="closed"))
        s.add(
            WebhookDelivery(
                guid="g-1", event="issues", action="closed", body="{}", received_at=clock.now(),
                applied_at=clock.now(), digested_at=clock.now(),
                digest=[{"project_id": pid, "phase": "deliver", "task_number": 7, "title": "Prototype the AST",
                         "change": "assigned to raj", "who": "octocat"}],
            )
        )
    entries = await timeline.run_until(scheduler, utc(2026, 3, 9, 8, 1))
    post = [d for _, d in entries if d.kind == "post" and d.message and "Weekly digest" in d.message.text]
    assert len(post) == 1
    text = block_text(post[0].message)
    assert "Develop phase, day 8 — target 2026-03-05 (*4 days late*)" in text
    assert "⚠️ Develop phase is 4 days past its target" in text
    assert "*Gate*\n" in text
    assert f"Model decision #{coming.meeting.id}" in text and "still owing a proposal: <@UANA>, <@URAJ>" in text
    assert f"#{mid}: Audio spectrogram transformer (<@ULEAD>)" in text
    assert "Prototype the AST" in text and "Tasks closed* (1)\n• <https://github.com/acme/genres/issues/12|#8 Throwaway spike>" in text
    assert "#7 Prototype the AST: assigned to raj by octocat" in text


async def test_two_replicas_running_the_same_digest_job_post_it_once(
    database_url: str, services: Services, scheduler: ReminderScheduler, timeline: Timeline, clock: FakeClock
) -> None:
    import asyncio

    pid = await new_team(services)
    clock.set(utc(2026, 3, 20, 12))
    await run(ctx(services), 'settings digest="mon 09:00"')
    other = ReminderScheduler(database_url=database_url, clock=clock)  # a second replica on the same database
    other.services = services  # its jobs run with the same services (the planning stays with `scheduler`)
    other.start()
    try:
        clock.set(utc(2026, 3, 23, 8))
        await asyncio.gather(scheduler.run_due(clock.now()), other.run_due(clock.now()))
        assert services.outbox is not None
        await services.outbox.drain()
    finally:
        other.shutdown()
        other.store.engine.dispose()
    assert len(digests(timeline.take())) == 1
    assert dict(scheduler.planned())[digest_job_id(pid)] == utc(2026, 3, 30, 7)


async def test_user_text_in_the_digest_cannot_ping_or_break_links(
    services: Services, scheduler: ReminderScheduler, timeline: Timeline, clock: FakeClock
) -> None:
    from bot.db.models import GitHubIssue

    pid = await new_team(services)
    clock.set(utc(2026, 3, 20, 12))
    await run(ctx(services), 'settings digest="mon 09:00"')
    task = await services.tasks.add(actor=LEAD, project_id=pid, title="<!channel> & <b>x|y</b>")
    async with services.db.session() as s:
        s.add(GitHubIssue(task_id=task.id, team_id=LEAD.team_id, project_id=pid, number=3,
                          html_url="https://github.com/acme/genres/issues/3", state="open"))
    entries = await timeline.run_until(scheduler, utc(2026, 3, 23, 8, 1))
    post = next(d for _, d in entries if d.kind == "post" and d.message and "Weekly digest" in d.message.text)
    text = block_text(post.message)
    assert "<!channel>" not in text
    assert f"<https://github.com/acme/genres/issues/3|#{task.number} &lt;!channel&gt; &amp; &lt;b&gt;x¦y&lt;/b&gt;>" in text


@pytest.mark.parametrize(
    ("late", "posted"),
    [
        (timedelta(0), True),  # on time
        (timedelta(hours=11, minutes=59), True),  # the bot was down over the slot, back the same day
        (timedelta(hours=12), True),  # exactly 12 h late still counts
        (timedelta(hours=12, minutes=1), False),  # more than 12 h: a Monday digest on Tuesday is not posted
        (timedelta(days=3), False),
    ],
)
async def test_a_late_digest_is_posted_once_within_12_hours_and_skipped_beyond_and_next_weeks_still_comes(
    services: Services,
    scheduler: ReminderScheduler,
    timeline: Timeline,
    clock: FakeClock,
    late: timedelta,
    posted: bool,
) -> None:
    pid = await new_team(services)
    clock.set(utc(2026, 3, 20, 12))
    await run(ctx(services), 'settings digest="mon 09:00"')
    await services.tasks.add(actor=LEAD, project_id=pid, title="Collect labelled clips")
    slot = utc(2026, 3, 23, 8)  # Mon 09:00 in Berlin
    assert dict(scheduler.planned())[digest_job_id(pid)] == slot
    clock.set(slot + late)  # nothing ran in between: the bot was down (or the machine asleep)
    await scheduler.run_due(clock.now())
    await services.outbox.drain()  # type: ignore[union-attr]
    await scheduler.run_due(clock.now())  # a second pass (a restart right after): nothing more
    await services.outbox.drain()  # type: ignore[union-attr]
    entries = timeline.take()
    assert len(digests(entries)) == (1 if posted else 0)
    if posted:  # the week it covers is the slot's, however late it goes out
        [text] = [block_text(d.message) for _, d in entries if d.kind == "post" and "Weekly digest" in block_text(d.message)]
        assert "Collect labelled clips" in text and "quiet week" not in text
    assert dict(scheduler.planned())[digest_job_id(pid)] == utc(2026, 3, 30, 7)  # next Monday 09:00 (summer time)
    entries = await timeline.run_until(scheduler, utc(2026, 3, 31))
    assert [when for when, _ in digests(entries)] == ["Mon 30 Mar 07:00"]
    assert dict(scheduler.planned())[digest_job_id(pid)] == utc(2026, 4, 6, 7)
