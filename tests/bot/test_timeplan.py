"""Slots inside everyone's working hours across time zones and DST; reminder times; working days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from bot.timeplan import (
    Availability,
    add_working_days,
    apart,
    ceil_to_grid,
    find_slots,
    grid_starts,
    ladder,
    last_working_hour_before,
    least_bad_slots,
    outside_hours,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def person(
    uid: str, zone: str, hours: str | None = None, away_until: date | None = None, days: str | None = None
) -> Availability:
    return Availability.of(uid, zone=zone, hours=hours, away_until=away_until, days=days)


def slots(people: list[Availability], first: datetime, last: datetime, minutes: int) -> list[datetime]:
    return find_slots(people, earliest=first, latest=last, duration=timedelta(minutes=minutes))


def test_three_zones_including_a_half_hour_offset() -> None:
    # Monday 2 March 2026: Berlin UTC+1, Kolkata UTC+5:30, New York UTC-5.
    berlin = person("UB", "Europe/Berlin")  # 08:00–16:00 UTC
    kolkata = person("UK", "Asia/Kolkata", "12:00-20:00")  # 06:30–14:30 UTC
    new_york = person("UN", "America/New_York", "08:00-16:00")  # 13:00–21:00 UTC
    found = slots([berlin, kolkata, new_york], utc(2026, 3, 2), utc(2026, 3, 4), 30)
    assert found == [utc(2026, 3, 2, 13), utc(2026, 3, 2, 13, 30), utc(2026, 3, 2, 14)]
    # In Kolkata these are 18:30, 19:00 and 19:30: the grid holds in a half-hour zone too.
    assert [kolkata.local(t).strftime("%H:%M") for t in found] == ["18:30", "19:00", "19:30"]
    # An hour-long meeting must also end by 14:30 UTC (20:00 in Kolkata).
    assert slots([berlin, kolkata, new_york], utc(2026, 3, 2), utc(2026, 3, 3), 60) == [
        utc(2026, 3, 2, 13),
        utc(2026, 3, 2, 13, 30),
    ]


def test_a_half_hour_zone_ending_on_the_half_hour() -> None:
    kolkata = person("UK", "Asia/Kolkata", "09:00-17:30")  # 03:30–12:00 UTC
    berlin = person("UB", "Europe/Berlin", "11:00-17:00")  # 10:00–16:00 UTC
    assert slots([kolkata, berlin], utc(2026, 3, 2), utc(2026, 3, 3), 90) == [
        utc(2026, 3, 2, 10),
        utc(2026, 3, 2, 10, 30),
    ]


def test_new_york_and_berlin_in_the_weeks_when_only_new_york_has_switched() -> None:
    # New York moves to UTC-4 on Sunday 8 March 2026; Berlin stays UTC+1 until 29 March.
    berlin = person("UB", "Europe/Berlin")  # 08:00–16:00 UTC all month
    new_york = person("UN", "America/New_York")  # 14:00–22:00 UTC before the 8th, 13:00–21:00 after
    # 150 minutes do not fit in Friday's two shared hours; on Monday there are three.
    found = slots([berlin, new_york], utc(2026, 3, 6), utc(2026, 3, 11), 150)
    assert found == [utc(2026, 3, 9, 13), utc(2026, 3, 9, 13, 30), utc(2026, 3, 10, 13)]
    assert [new_york.local(t).strftime("%a %H:%M") for t in found] == ["Mon 09:00", "Mon 09:30", "Tue 09:00"]
    # A one-hour meeting on the Friday before the switch starts at 14:00 UTC (09:00 in New York).
    assert slots([berlin, new_york], utc(2026, 3, 6), utc(2026, 3, 7), 60)[0] == utc(2026, 3, 6, 14)
    # After Berlin switches too (29 March) both are an hour earlier in UTC: 07:00–15:00 and 13:00–21:00.
    assert slots([berlin, new_york], utc(2026, 3, 30), utc(2026, 3, 31), 60)[0] == utc(2026, 3, 30, 13)


def test_weekends_count_in_each_persons_own_zone() -> None:
    # Friday afternoon in Los Angeles is Saturday morning in Tokyo; Monday morning in Tokyo is Sunday in LA.
    tokyo = person("UT", "Asia/Tokyo", "07:00-11:00")  # 22:00–02:00 UTC (previous UTC day)
    los_angeles = person("UL", "America/Los_Angeles", "14:00-18:00")  # 22:00–02:00 UTC
    found = slots([tokyo, los_angeles], utc(2026, 3, 5, 20), utc(2026, 3, 12), 60)
    # Thu 22:00 UTC = Thu 14:00 LA = Fri 07:00 Tokyo fits; Friday (LA) is Saturday in Tokyo; Sunday (LA) too.
    assert found[0] == utc(2026, 3, 5, 22)
    assert all(los_angeles.local(t).weekday() < 5 and tokyo.local(t).weekday() < 5 for t in found)
    assert utc(2026, 3, 6, 22) not in found  # Fri in LA, Sat in Tokyo
    assert utc(2026, 3, 8, 22) not in found  # Mon in Tokyo, Sun in LA


def test_away_days_are_skipped() -> None:
    ana = person("UA", "Europe/Berlin", away_until=date(2026, 3, 3))
    raj = person("UR", "Europe/Berlin")
    assert slots([ana, raj], utc(2026, 3, 2), utc(2026, 3, 6), 60)[0] == utc(2026, 3, 4, 8)


def test_a_fixed_time_names_who_is_outside_their_hours() -> None:
    ana = person("UA", "Europe/Berlin", "07:00-14:00")
    raj = person("UR", "Asia/Kolkata")
    bo = person("UB", "America/New_York")
    start = utc(2026, 3, 6, 14)  # 15:00 Berlin, 19:30 Kolkata, 09:00 New York
    assert outside_hours([ana, raj, bo], start, start + timedelta(hours=1)) == ["UA", "UR"]
    saturday = utc(2026, 3, 7, 14)
    assert outside_hours([bo], saturday, saturday + timedelta(hours=1)) == ["UB"]


def test_a_reminder_outside_hours_moves_to_the_last_working_hour_before_it() -> None:
    raj = person("UR", "Asia/Kolkata")  # 09:00–17:00 IST = 03:30–11:30 UTC
    assert last_working_hour_before(raj, utc(2026, 3, 3, 14)) == utc(2026, 3, 3, 10, 30)  # 16:00 IST
    assert last_working_hour_before(raj, utc(2026, 3, 3, 5)) == utc(2026, 3, 3, 5)  # inside: unchanged
    assert last_working_hour_before(raj, utc(2026, 3, 3, 1)) == utc(2026, 3, 2, 10, 30)  # before hours: day before
    # Monday 06:00 IST → Friday's last hour; a weekend never gets a DM.
    assert last_working_hour_before(raj, utc(2026, 3, 9, 0, 30)) == utc(2026, 3, 6, 10, 30)
    # DST: New York's last working hour on the Friday before the switch is 21:00 UTC, after it 20:00 UTC.
    ny = person("UN", "America/New_York")
    assert last_working_hour_before(ny, utc(2026, 3, 7, 12)) == utc(2026, 3, 6, 21)
    assert last_working_hour_before(ny, utc(2026, 3, 10, 23)) == utc(2026, 3, 10, 20)


def test_working_days_skip_weekends_and_keep_the_wall_clock_across_dst() -> None:
    # Friday 6 March 15:00 Berlin + 2 working days = Tuesday 10 March 15:00 Berlin.
    assert add_working_days(utc(2026, 3, 6, 14), 2, "Europe/Berlin") == utc(2026, 3, 10, 14)
    # Friday 27 March 15:00 Berlin (UTC+1) + 1 = Monday 30 March 15:00 Berlin (UTC+2) = 13:00 UTC.
    assert add_working_days(utc(2026, 3, 27, 14), 1, "Europe/Berlin") == utc(2026, 3, 30, 13)


def test_the_grid_is_thirty_minutes_in_utc() -> None:
    assert ceil_to_grid(utc(2026, 3, 2, 9, 0)) == utc(2026, 3, 2, 9, 0)
    assert ceil_to_grid(utc(2026, 3, 2, 9, 0, 1)) == utc(2026, 3, 2, 9, 30)
    assert ceil_to_grid(utc(2026, 3, 2, 9, 31)) == utc(2026, 3, 2, 10, 0)


def test_the_ladder_skips_what_has_passed() -> None:
    ana = person("UA", "Europe/Berlin")
    deadline = utc(2026, 3, 5, 14)
    # Scheduled 30 h before the deadline: the 48 h DM is gone, the 24 h one stays.
    jobs = ladder(
        starts_at=utc(2026, 3, 6, 14),
        duration_min=60,
        deadline=deadline,
        owing=[ana],
        now=deadline - timedelta(hours=30),
        decision_meeting=True,
    )
    assert [(j.step, j.run_at) for j in jobs] == [
        ("dm24:UA", utc(2026, 3, 4, 14)),
        ("mention2", utc(2026, 3, 5, 12)),
        ("verdict", deadline),
        ("start", utc(2026, 3, 6, 14)),
        ("nudge", utc(2026, 3, 6, 15)),
    ]
    # A meeting without proposals only gets its agenda.
    jobs = ladder(
        starts_at=utc(2026, 3, 6, 14),
        duration_min=45,
        deadline=None,
        owing=[],
        now=utc(2026, 3, 2),
        decision_meeting=False,
    )
    assert [j.step for j in jobs] == ["start"]


# --- each person's own hours and days -----------------------------------------------------------


def test_an_overnight_range_belongs_to_the_day_it_starts() -> None:
    # 18:00–09:00 in Berlin (UTC+1 in March), Mon–Fri shifts: Monday 17:00 UTC to Tuesday 08:00 UTC, …
    night = person("UN", "Europe/Berlin", "18:00-09:00")
    assert (night.start_min, night.end_min) == (18 * 60, 33 * 60) and night.hours_text == "18:00–09:00"
    assert night.in_hours(utc(2026, 3, 2, 22)) and night.in_hours(utc(2026, 3, 3, 1))  # Mon 23:00, Tue 02:00
    assert not night.in_hours(utc(2026, 3, 2, 12))  # Monday 13:00: daytime is off
    assert night.in_hours(utc(2026, 3, 7, 1))  # Saturday 02:00 is still Friday's shift
    assert not night.in_hours(utc(2026, 3, 2, 1))  # Monday 02:00 would be Sunday's shift: none
    # A meeting across midnight fits; the slots run through the night.
    assert night.covers(utc(2026, 3, 2, 22, 30), utc(2026, 3, 2, 23, 30))
    assert slots([night], utc(2026, 3, 2, 7), utc(2026, 3, 3), 60)[:2] == [utc(2026, 3, 2, 17), utc(2026, 3, 2, 17, 30)]
    # Its reminder moves to the last hour of the shift before: Tuesday 08:00 Berlin (07:00 UTC).
    assert last_working_hour_before(night, utc(2026, 3, 3, 12)) == utc(2026, 3, 3, 7)


def test_sunday_to_thursday_days() -> None:
    # Tel Aviv (UTC+2 until 27 March): 09:00–17:00 Sun–Thu = 07:00–15:00 UTC.
    dana = person("UD", "Asia/Jerusalem", days="sun-thu")
    assert dana.days == {6, 0, 1, 2, 3} and dana.hours_text == "09:00–17:00 Sun–Thu"
    assert not dana.in_hours(utc(2026, 3, 6, 9)) and dana.in_hours(utc(2026, 3, 8, 9))  # Friday off, Sunday on
    # A window from Friday morning to Sunday: the first slot is Sunday 09:00 there.
    assert slots([dana], utc(2026, 3, 6), utc(2026, 3, 9), 60)[0] == utc(2026, 3, 8, 7)
    # Friday evening's reminder moves back to Thursday's last working hour (16:00 there, 14:00 UTC).
    assert last_working_hour_before(dana, utc(2026, 3, 6, 18)) == utc(2026, 3, 5, 14)
    # Working days follow the person's days: one working day after Thursday is Sunday.
    assert add_working_days(utc(2026, 3, 5, 10), 1, "Asia/Jerusalem", dana.days) == utc(2026, 3, 8, 10)
    # Outside their days is outside their hours, with the weekday reached for the next shift.
    assert outside_hours([dana], utc(2026, 3, 6, 9), utc(2026, 3, 6, 10)) == ["UD"]


def test_who_never_overlaps_and_the_least_bad_slots() -> None:
    # Tuesday 10 March 2026 (US on DST): Los Angeles 09–17 = 16:00–00:00 UTC, Kolkata 09–17 = 03:30–11:30 UTC,
    # Berlin 09–17 = 08:00–16:00 UTC.
    ana = person("UANA", "America/Los_Angeles")
    raj = person("URAJ", "Asia/Kolkata")
    lena = person("ULENA", "Europe/Berlin")
    first, last, hour = utc(2026, 3, 10), utc(2026, 3, 12), timedelta(hours=1)
    assert slots([ana, raj, lena], first, last, 60) == []
    found = apart([lena, ana, raj], earliest=first, latest=last, duration=hour)
    assert found.pairs == [("ULENA", "UANA"), ("UANA", "URAJ")] and found.nowhere == []
    best = least_bad_slots([lena, ana, raj], earliest=first, latest=last, duration=hour)
    assert len(best) == 3
    # Ranked by how many are outside their hours, then by the total time outside; never better elsewhere.
    chosen = {b.start for b in best}
    for t in grid_starts(earliest=first, latest=last, duration=hour):
        if t in chosen:
            continue
        out = [p for p in (lena, ana, raj) if not p.fits(t, t + hour)]
        score = (len(out), sum((p.outside_by(t, t + hour) for p in out), timedelta(0)))
        assert (len(best[-1].outside), best[-1].total_outside) <= score
    # The best: 10:30 UTC (Kolkata's last hour, Berlin inside): only Ana is out, by 5 h 30 min (03:30 there).
    # The same on Wednesday; then 10:00 UTC, where Ana is 6 h out.
    assert [b.start for b in best] == [utc(2026, 3, 10, 10, 30), utc(2026, 3, 11, 10, 30), utc(2026, 3, 10, 10)]
    assert [(o.user_id, o.by) for o in best[0].outside] == [("UANA", timedelta(hours=5, minutes=30))]
    assert [(o.user_id, o.by) for o in best[2].outside] == [("UANA", timedelta(hours=6))]
    # Someone away the whole window has no working time in it.
    away = person("UMIA", "Europe/Berlin", away_until=date(2026, 3, 20))
    assert apart([lena, away], earliest=first, latest=last, duration=hour).nowhere == ["UMIA"]
