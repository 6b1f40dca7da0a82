"""`hours`: each person's own working hours and days move their reminders and the offered slots."""

from __future__ import annotations

from bot.clock import FakeClock
from bot.commands import Context
from bot.messaging import RecordingMessenger
from bot.scheduler import ReminderScheduler
from bot.services import Services
from tests.bot.rituals.helpers import CHANNEL, LEAD, Member, Timeline, block_text, buttons, new_team, run, summary, utc
from tests.conftest import actor


def ctx(services: Services, user: str = "ULEAD", tz: str = "Europe/Berlin") -> Context:
    return Context(services=services, actor=actor(user), channel_id=CHANNEL, tz=tz)


async def said(services: Services, user: str, text: str) -> str:
    return block_text((await run(ctx(services, user), text)).message)


async def test_own_hours_are_shown_set_by_the_person_or_their_lead_and_reset(services: Services) -> None:
    await new_team(services, people={"URAJ": {"tz": "Asia/Kolkata"}, "UANA": {"tz": "Europe/Berlin"}})
    assert "Your working hours: 09:00–17:00, Mon–Fri (the default of genres)" in await said(services, "URAJ", "hours")
    mine = await said(services, "URAJ", "hours 07:00-15:00 days=sun-thu")
    assert "Your working hours: 07:00–15:00, Sun–Thu, in your own time zone" in mine
    assert "`/phasegate hours reset`" in mine
    # The lead sets a member's hours; the days stay as the member set them.
    lead = await said(services, "ULEAD", "hours <@URAJ> 13:00-21:00")
    assert "<@URAJ>'s working hours: 13:00–21:00, Sun–Thu" in lead
    # …and the member is told who changed them.
    assert isinstance(services.messenger, RecordingMessenger)
    told = [d for d in services.messenger.deliveries if d.kind == "dm" and d.target == "URAJ"]
    assert "<@ULEAD> set your working hours to 13:00–21:00, Sun–Thu." in block_text(told[-1].message)
    # Overnight ranges work, for a person and for the project's default.
    assert "18:00–09:00, Mon–Fri" in await said(services, "UANA", "hours 18:00-09:00 days=mon-fri")
    settings = await said(services, "ULEAD", "settings hours=18:00-09:00")
    assert "18:00-09:00" in settings and "is not working hours" not in settings
    reset = await said(services, "URAJ", "hours reset")
    assert "Your working hours: 18:00–09:00, Mon–Fri (the default of genres)" in reset
    # Spaces around the dash, and the days without `days=`, are understood.
    assert "08:00–16:00, Mon, Wed, Fri" in await said(services, "URAJ", "hours 8:00 - 16:00 mon,wed,fri")
    # Words people type when they get it wrong.
    assert "`25:00-26:00` is not working hours: write them as 09:00-17:00" in await said(
        services, "URAJ", "hours 25:00-26:00"
    )
    assert "`funday` is not a set of days: write days=sun-thu" in await said(services, "URAJ", "hours days=funday")


async def test_a_member_cannot_set_someone_elses_hours(services: Services) -> None:
    await new_team(services, people={"URAJ": {"tz": "Asia/Kolkata"}, "UANA": {"tz": "Europe/Berlin"}})
    refused = await said(services, "URAJ", "hours <@UANA> 10:00-18:00")
    assert "Only the project lead (<@ULEAD>) or a workspace admin can set the working hours of <@UANA>" in refused
    assert "09:00–17:00, Mon–Fri (the default" in await said(services, "UANA", "hours")
    # The lead cannot set the hours of someone outside the project either: they are told how to add them.
    outsider = await said(services, "ULEAD", "hours <@UZED> 10:00-18:00")
    assert "<@UZED> is not a member of genres" in outsider and "/phasegate role <@UZED> &lt;role&gt;" in outsider


async def test_own_hours_move_the_reminders(
    services: Services, scheduler: ReminderScheduler, clock: FakeClock, timeline: Timeline
) -> None:
    pid = await new_team(services, people={"UANA": {"tz": "Europe/Berlin"}, "UBEN": {"tz": "Europe/Berlin"}})
    # Ana works 07:00–13:00 Berlin: a 15:00-Berlin reminder moves to her last working hour, 12:00 (11:00 UTC).
    await said(services, "UANA", "hours 07:00-13:00")
    await services.meetings.schedule(
        actor=LEAD, project_id=pid, kind="model-decision", starts_at=utc(2026, 3, 6, 14), attendees=["UANA", "UBEN"]
    )
    entries = await timeline.run_until(scheduler, utc(2026, 3, 5, 13))
    dms = [(when, kind, target) for when, kind, target in summary(entries) if kind == "dm"]
    assert dms == [
        ("Tue 11:00", "dm", "UANA"),
        ("Tue 14:00", "dm", "UBEN"),
        ("Wed 11:00", "dm", "UANA"),
        ("Wed 14:00", "dm", "UBEN"),
    ]


async def test_own_hours_change_the_offered_slots(services: Services) -> None:
    await new_team(services, people={"URAJ": {"tz": "Asia/Kolkata"}})
    window = "meeting schedule kind=model-decision window=2026-03-03..2026-03-04 attendees=<@URAJ>"
    # Berlin 09:00 (08:00 UTC) is 13:30 in Kolkata: the first shared slot.
    before = (await run(ctx(services), window)).message
    assert "phasegate:slot" in {a for a, _ in buttons(before)}
    assert '"t":1772524800' in buttons(before)[0][1]  # 2026-03-03T08:00Z
    # Raj now works 14:00–22:00 Kolkata (08:30–16:30 UTC): the first slot moves to 08:30 UTC.
    await said(services, "URAJ", "hours 14:00-22:00")
    after = (await run(ctx(services), window)).message
    assert '"t":1772526600' in buttons(after)[0][1]  # 2026-03-03T08:30Z
    # Sunday to Thursday in Kolkata, on a window of Friday and the weekend: no slot, and Raj has no time in it.
    await said(services, "URAJ", "hours 09:00-17:00 days=sun-thu")
    weekend = block_text(
        (
            await run(
                ctx(services), "meeting schedule kind=model-decision window=2026-03-06..2026-03-07 attendees=<@URAJ>"
            )
        ).message
    )
    assert "<@URAJ> (Kolkata, 09:00–17:00 Sun–Thu) has no working time in this window" in weekend


async def test_a_window_nobody_shares_names_who_never_overlaps_and_offers_the_three_least_bad_slots(
    services: Services,
) -> None:
    await new_team(services, people={"UANA": {"tz": "America/Los_Angeles"}, "URAJ": {"tz": "Asia/Kolkata"}})
    reply = (
        await run(
            ctx(services),
            "meeting schedule kind=model-decision window=2026-03-10..2026-03-11 attendees=<@UANA>,<@URAJ>",
        )
    ).message
    text = block_text(reply)
    assert "Widen the window" not in text
    assert "<@UANA> (Los Angeles, 09:00–17:00) and <@URAJ> (Kolkata, 09:00–17:00) never overlap." in text
    assert "<@ULEAD> (Berlin, 09:00–17:00) and <@UANA> (Los Angeles, 09:00–17:00) never overlap." in text
    # Three least bad slots, each bookable and saying who is outside by how much (and what time it is there).
    slots = [v for a, v in buttons(reply) if a == "phasegate:slot"]
    assert len(slots) == 3
    assert "<@UANA> 5 h 30 min outside their 09:00–17:00 (Tue 03:30–04:30 in Los Angeles)" in text
    assert "<@UANA> 6 h outside their 09:00–17:00 (Tue 03:00–04:00 in Los Angeles)" in text
    assert '"t":1773138600' in slots[0]  # 2026-03-10T10:30Z: Kolkata's last hour, Berlin inside
    # A lead who moves someone's hours gets a fitting slot.
    await said(services, "ULEAD", "hours <@UANA> 06:00-14:00")
    await said(services, "ULEAD", "hours <@URAJ> 13:00-21:00")
    fits = block_text(
        (
            await run(
                ctx(services),
                "meeting schedule kind=model-decision window=2026-03-10..2026-03-11 attendees=<@UANA>,<@URAJ>",
            )
        ).message
    )
    assert "the earliest times inside everyone's working hours" in fits


async def test_a_big_team_that_never_meets_gets_a_short_valid_answer(services: Services) -> None:
    zones = ("America/Los_Angeles", "Asia/Kolkata", "Pacific/Auckland")
    people: dict[str, Member] = {f"UP{i:02d}": {"tz": zones[i % 3]} for i in range(12)}
    await new_team(services, people=people)
    reply = (
        await run(ctx(services), "meeting schedule kind=model-decision window=2026-03-10..2026-03-20 attendees=")
    ).message  # run() checks the Block Kit limits
    text = block_text(reply)
    assert text.count("never overlap.") == 8 + 1  # eight pairs named, the rest counted
    assert "more pairs who never overlap" in text
    assert len([a for a, _ in buttons(reply) if a == "phasegate:slot"]) == 3
