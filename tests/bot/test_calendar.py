"""Calendar invites parse with icalendar and carry UID, SEQUENCE, UTC times, the deadline alarm, CANCEL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from icalendar import Calendar

from bot.calendar import Invite, ics

START = datetime(2026, 3, 6, 14, tzinfo=UTC)


def invite(**changes: object) -> Invite:
    base = Invite(
        uid="f3a1-uid",
        sequence=0,
        summary="Model decision · genres",
        description="Agenda:\n- Decide, one model; its rationale",
        starts_at=START,
        duration_min=60,
        stamp=datetime(2026, 3, 2, 9, tzinfo=UTC),
        alarm_before=timedelta(hours=24),
    )
    return Invite(**{**base.__dict__, **changes})


def event(data: bytes) -> tuple[Calendar, Any]:
    cal = Calendar.from_ical(data)
    events = cal.walk("VEVENT")
    assert len(events) == 1
    return cal, events[0]


def test_a_request_carries_the_deadline_alarm_and_utc_times() -> None:
    data = ics(invite(attendees={"Ana": "ana@example.com"}))
    cal, ev = event(data)
    assert str(cal["METHOD"]) == "REQUEST"
    assert str(ev["UID"]) == "f3a1-uid" and int(ev["SEQUENCE"]) == 0
    assert ev.decoded("DTSTART") == START and ev.decoded("DTEND") == START + timedelta(hours=1)
    assert b"DTSTART:20260306T140000Z" in data
    assert str(ev.decoded("DESCRIPTION")) == "Agenda:\n- Decide, one model; its rationale"
    alarms = ev.walk("VALARM")
    assert len(alarms) == 1
    assert alarms[0].decoded("TRIGGER") == timedelta(hours=-24)
    assert b"TRIGGER;RELATED=START:-PT24H" in data
    assert str(ev["ATTENDEE"]) == "mailto:ana@example.com"
    assert str(ev["STATUS"]) == "CONFIRMED"


def test_without_an_email_there_is_no_attendee_and_without_a_deadline_no_alarm() -> None:
    _, ev = event(ics(invite(alarm_before=None)))
    assert "ATTENDEE" not in ev
    assert ev.walk("VALARM") == []


def test_a_move_bumps_the_sequence_and_a_cancellation_says_so() -> None:
    _, moved = event(ics(invite(sequence=1, starts_at=START + timedelta(days=4))))
    assert int(moved["SEQUENCE"]) == 1
    cal, cancelled = event(ics(invite(sequence=2, method="CANCEL")))
    assert str(cal["METHOD"]) == "CANCEL"
    assert str(cancelled["STATUS"]) == "CANCELLED" and int(cancelled["SEQUENCE"]) == 2
    assert str(cancelled["UID"]) == "f3a1-uid"
    assert cancelled.walk("VALARM") == []
