"""Pure time planning: working hours in each person's zone, shared slots, reminder times, working days."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import combinations
from zoneinfo import ZoneInfo

from bot.process import WEEKDAYS, format_days, format_working_hours, parse_days, parse_working_hours

GRID = timedelta(minutes=30)
DEFAULT_HOURS = (9 * 60, 17 * 60)
DM_HOURS_BEFORE_DEADLINE = (48, 24)
MENTION_HOURS_BEFORE_DEADLINE = 2
# How late a job may still run (e.g. after a restart); None = however late.
DM_GRACE = timedelta(hours=6)
VERDICT_GRACE: timedelta | None = None
NUDGE_GRACE: timedelta | None = None


@dataclass(frozen=True)
class Availability:
    """When one person works: their zone, daily hours (minutes after local midnight), working days, absence.

    `end_min` may pass midnight (an overnight range, e.g. 18:00–09:00 is 1080–1980); a shift belongs to the
    day it starts on, so `days` are the days a shift starts.
    """

    user_id: str
    zone: str = "UTC"
    start_min: int = DEFAULT_HOURS[0]
    end_min: int = DEFAULT_HOURS[1]
    away_until: date | None = None  # inclusive, in the person's zone
    days: frozenset[int] = WEEKDAYS  # Mon = 0

    @classmethod
    def of(
        cls,
        user_id: str,
        *,
        zone: str,
        hours: str | None,
        fallback_hours: str | None = None,
        away_until: date | None,
        days: str | None = None,
    ) -> Availability:
        start, end = parse_working_hours(hours or "") or parse_working_hours(fallback_hours or "") or DEFAULT_HOURS
        return cls(user_id, zone, start, end, away_until, parse_days(days or "") or WEEKDAYS)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    @property
    def hours_text(self) -> str:
        """`09:00–17:00`, with the days when they are not Mon–Fri: `07:00–15:00 Sun–Thu`."""
        hours = format_working_hours(self.start_min, self.end_min, "–")
        return hours if self.days == WEEKDAYS else f"{hours} {format_days(self.days)}"

    @property
    def place(self) -> str:
        """The zone's city, as people say it: `Los Angeles`, `Kolkata`, `UTC`."""
        return self.zone.rsplit("/", 1)[-1].replace("_", " ")

    def local(self, when: datetime) -> datetime:
        return when.astimezone(self.tz)

    def at(self, day: date, minute: int) -> datetime:
        """A local wall-clock time on `day` as aware UTC (DST handled by the zone); minutes may pass midnight."""
        day, minute = day + timedelta(days=minute // (24 * 60)), minute % (24 * 60)
        return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=self.tz).astimezone(UTC)

    def shifts(self, around: datetime, reach: int = 1) -> list[tuple[datetime, datetime]]:
        """Working spans (start, end) of the shifts starting within `reach` days of `around`'s local day."""
        day = self.local(around).date()
        spans = []
        for offset in range(-reach, reach + 1):
            d = day + timedelta(days=offset)
            if d.weekday() in self.days:
                spans.append((self.at(d, self.start_min), self.at(d, self.end_min)))
        return spans

    def away_on(self, when: datetime) -> bool:
        return self.away_until is not None and self.local(when).date() <= self.away_until

    def in_hours(self, when: datetime) -> bool:
        """Inside this person's working hours on one of their working days (in their zone)."""
        return any(s <= when < e for s, e in self.shifts(when))

    def covers(self, start: datetime, end: datetime) -> bool:
        """The whole meeting falls inside one of this person's shifts."""
        return any(s <= start and end <= e for s, e in self.shifts(start))

    def fits(self, start: datetime, end: datetime) -> bool:
        """Inside their hours and not away."""
        return self.covers(start, end) and not self.away_on(start)

    def outside_by(self, start: datetime, end: datetime) -> timedelta:
        """How far the meeting reaches outside this person's nearest shift (zero when it is inside one)."""
        best: timedelta | None = None
        for s, e in self.shifts(start) or self.shifts(start, reach=7):
            over = max(s - start, timedelta(0)) + max(end - e, timedelta(0))
            best = over if best is None else min(best, over)
        return best if best is not None else end - start


def ceil_to_grid(when: datetime, grid: timedelta = GRID) -> datetime:
    step = grid.total_seconds()
    return datetime.fromtimestamp(math.ceil(when.timestamp() / step) * step, UTC)


def find_slots(
    people: Sequence[Availability],
    *,
    earliest: datetime,
    latest: datetime,
    duration: timedelta,
    count: int = 3,
) -> list[datetime]:
    """The earliest starts on the 30-minute grid where the meeting fits everyone's working hours."""
    slots: list[datetime] = []
    t = ceil_to_grid(earliest)
    while t + duration <= latest and len(slots) < count:
        if all(p.fits(t, t + duration) for p in people):
            slots.append(t)
        t += GRID
    return slots


def grid_starts(*, earliest: datetime, latest: datetime, duration: timedelta) -> list[datetime]:
    """Every start on the 30-minute grid from `earliest` where the meeting ends by `latest`."""
    starts = []
    t = ceil_to_grid(earliest)
    while t + duration <= latest:
        starts.append(t)
        t += GRID
    return starts


@dataclass(frozen=True)
class Outside:
    """One attendee a slot does not suit: how far it reaches outside their hours, or that they are away."""

    user_id: str
    by: timedelta
    away: bool = False


@dataclass(frozen=True)
class LeastBad:
    """A slot that does not fit everyone, with who is outside their hours and by how much."""

    start: datetime
    outside: tuple[Outside, ...]

    @property
    def total_outside(self) -> timedelta:
        return sum((o.by for o in self.outside), timedelta(0))


def least_bad_slots(
    people: Sequence[Availability], *, earliest: datetime, latest: datetime, duration: timedelta, count: int = 3
) -> list[LeastBad]:
    """The slots with the most attendees inside their hours, then the least total time outside, then earliest."""
    ranked: list[tuple[tuple[int, timedelta, datetime], LeastBad]] = []
    for t in grid_starts(earliest=earliest, latest=latest, duration=duration):
        end = t + duration
        out = tuple(Outside(p.user_id, p.outside_by(t, end), p.away_on(t)) for p in people if not p.fits(t, end))
        slot = LeastBad(t, out)
        ranked.append(((len(out), slot.total_outside, t), slot))
    ranked.sort(key=lambda pair: pair[0])
    return [slot for _, slot in ranked[:count]]


@dataclass(frozen=True)
class Apart:
    """Why no slot fits everyone: pairs who never overlap, and people with no working time in the window."""

    pairs: list[tuple[str, str]]
    nowhere: list[str]


def apart(people: Sequence[Availability], *, earliest: datetime, latest: datetime, duration: timedelta) -> Apart:
    """Who cannot meet whom in the window (each pair checked on its own)."""
    starts = grid_starts(earliest=earliest, latest=latest, duration=duration)
    fitting = {p.user_id: {i for i, t in enumerate(starts) if p.fits(t, t + duration)} for p in people}
    nowhere = [uid for uid, slots in fitting.items() if not slots]
    pairs = [
        (a.user_id, b.user_id)
        for a, b in combinations(people, 2)
        if fitting[a.user_id] and fitting[b.user_id] and not fitting[a.user_id] & fitting[b.user_id]
    ]
    return Apart(pairs, nowhere)


def outside_hours(people: Iterable[Availability], start: datetime, end: datetime) -> list[str]:
    """Who would be outside their working hours (or on a day they do not work) for this meeting."""
    return [p.user_id for p in people if not p.covers(start, end)]


def last_working_hour_before(p: Availability, when: datetime) -> datetime:
    """`when` if it is in the person's hours; else the start of their last working hour before it."""
    if p.in_hours(when):
        return when
    day = p.local(when).date()
    for back in range(15):
        d = day - timedelta(days=back)
        if d.weekday() not in p.days:
            continue
        candidate = p.at(d, max(p.start_min, p.end_min - 60))
        if candidate <= when:
            return candidate
    return when


def add_working_days(when: datetime, days: int, zone: str, working: frozenset[int] = WEEKDAYS) -> datetime:
    """Move by `days` working days (Mon–Fri, or the given weekdays) in `zone`, keeping the local wall-clock time."""
    tz = ZoneInfo(zone)
    local = when.astimezone(tz)
    day = local.date()
    moved = 0
    while moved < days:
        day += timedelta(days=1)
        if day.weekday() in (working or WEEKDAYS):
            moved += 1
    return datetime.combine(day, local.time().replace(tzinfo=None), tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True)
class PlannedJob:
    """One step of a meeting's plan: what runs when, and how late it may still run."""

    step: str  # dm48:<user> | dm24:<user> | mention2 | verdict | start | nudge
    run_at: datetime
    grace: timedelta | None


def ladder(
    *,
    starts_at: datetime,
    duration_min: int,
    deadline: datetime | None,
    owing: Sequence[Availability],
    now: datetime,
    decision_meeting: bool,
) -> list[PlannedJob]:
    """Every job of a meeting, in time order.

    With a proposal deadline: a DM to each person who owes a proposal 48 h and 24 h before it (moved to
    their last working hour before that when it would land outside their hours; skipped when that moment
    has passed; one DM when both land on the same hour), a channel mention 2 h before it, and the readiness verdict at it. Then the agenda at the
    start and, for decision meetings, the first nudge at the end.
    """
    jobs: list[PlannedJob] = []
    if deadline is not None:
        for p in owing:
            mine: list[PlannedJob] = []
            for hours in DM_HOURS_BEFORE_DEADLINE:
                nominal = deadline - timedelta(hours=hours)
                at = last_working_hour_before(p, nominal)
                if at < now:
                    if not (nominal >= now and p.in_hours(now)):
                        continue
                    at = now
                # Two rungs moved onto the same working hour (e.g. over a weekend): send the later one only.
                mine = [j for j in mine if j.run_at < at]
                mine.append(PlannedJob(f"dm{hours}:{p.user_id}", at, DM_GRACE))
            jobs.extend(mine)
        mention_at = deadline - timedelta(hours=MENTION_HOURS_BEFORE_DEADLINE)
        if mention_at >= now:
            jobs.append(PlannedJob(f"mention{MENTION_HOURS_BEFORE_DEADLINE}", mention_at, deadline - mention_at))
        jobs.append(PlannedJob("verdict", max(deadline, now), VERDICT_GRACE))
    end = starts_at + timedelta(minutes=duration_min)
    if starts_at >= now:
        jobs.append(PlannedJob("start", starts_at, timedelta(minutes=duration_min)))
    if decision_meeting:
        jobs.append(PlannedJob("nudge", max(end, now), NUDGE_GRACE))
    return sorted(jobs, key=lambda j: j.run_at)
