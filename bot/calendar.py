"""Calendar invites (.ics, iTIP): one event per meeting, re-issued with a higher SEQUENCE when it changes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

PRODID = "-//Phasegate//Phasegate rituals//EN"


@dataclass(frozen=True)
class Invite:
    """What an invite says; `attendees` maps a display name to an email (people without one are omitted)."""

    uid: str
    sequence: int
    summary: str
    description: str
    starts_at: datetime
    duration_min: int
    stamp: datetime
    method: Literal["REQUEST", "CANCEL"] = "REQUEST"
    alarm_before: timedelta | None = None  # the proposal deadline, relative to the start
    alarm_text: str = "Proposals are due"
    attendees: Mapping[str, str] = field(default_factory=dict)


def ics(invite: Invite) -> bytes:
    """The .ics file: METHOD:REQUEST (or CANCEL with STATUS:CANCELLED), times in UTC, VALARM at the deadline."""
    from icalendar import Alarm, Calendar, Event, vCalAddress, vText  # loaded on the first invite, not at start

    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", invite.method)
    event = Event()
    event.add("uid", invite.uid)
    event.add("sequence", invite.sequence)
    event.add("dtstamp", invite.stamp)
    event.add("dtstart", invite.starts_at)
    event.add("dtend", invite.starts_at + timedelta(minutes=invite.duration_min))
    event.add("summary", invite.summary)
    event.add("description", invite.description)
    event.add("status", "CANCELLED" if invite.method == "CANCEL" else "CONFIRMED")
    for name, email in invite.attendees.items():
        address = vCalAddress(f"mailto:{email}")
        address.params["cn"] = vText(name)
        address.params["role"] = vText("REQ-PARTICIPANT")
        address.params["partstat"] = vText("NEEDS-ACTION")
        address.params["rsvp"] = vText("TRUE")
        event.add("attendee", address, encode=False)
    if invite.alarm_before is not None and invite.method == "REQUEST":
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", invite.alarm_text)
        # Written as exact hours (-PT24H), relative to DTSTART; icalendar would write -P1D, a nominal day.
        alarm["TRIGGER"] = vText(_duration(-invite.alarm_before))
        alarm["TRIGGER"].params["RELATED"] = "START"
        event.add_component(alarm)
    cal.add_component(event)
    data: bytes = cal.to_ical()
    return data


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    return f"{sign}PT{hours}H" + (f"{minutes}M" if minutes else "")
