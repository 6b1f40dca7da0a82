"""Meetings: schedule (fixed time or the earliest shared slots), move, postpone, cancel, invites, job plans."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.calendar import Invite, ics
from bot.clock import Clock
from bot.db.models import Meeting, MeetingAttendee, PersonHours, Project, Proposal
from bot.db.session import Database
from bot.errors import Conflict, InvalidInput, NotFound
from bot.messaging import Messenger
from bot.outbox import Outbox
from bot.process import MEETING_KINDS, MeetingKind, Role
from bot.rendering import Message, mention, render_message, render_text
from bot.services.base import Actor, ServiceBase, project_members
from bot.timeplan import (
    Availability,
    LeastBad,
    PlannedJob,
    add_working_days,
    apart,
    find_slots,
    ladder,
    least_bad_slots,
    outside_hours,
)

log = logging.getLogger(__name__)

SYSTEM_USER = "phasegate"  # the actor recorded for what the bot does by itself (e.g. an automatic postponement)
OPEN_STATUSES = ("scheduled", "held")
MIN_DURATION, MAX_DURATION = 15, 8 * 60
MAX_ATTENDEES = 40
MAX_WINDOW_DAYS = 31
MAX_APART_LINES = 8  # pairs named when no slot fits; the rest are counted
MAX_AHEAD = timedelta(days=366)
COMMAND = "/phasegate"


class Planner(Protocol):
    """Where a meeting's jobs are planned (the ReminderScheduler); called after the transaction commits."""

    async def replace_meeting_jobs(self, meeting_id: int, sequence: int, jobs: Sequence[PlannedJob]) -> None: ...

    async def remove_meeting_jobs(self, meeting_id: int) -> None: ...


class NullPlanner:
    """No scheduler bound (e.g. a one-off CLI command): nothing is planned."""

    async def replace_meeting_jobs(self, meeting_id: int, sequence: int, jobs: Sequence[PlannedJob]) -> None:
        log.debug("no scheduler bound: %d job(s) of meeting %s not planned", len(jobs), meeting_id)

    async def remove_meeting_jobs(self, meeting_id: int) -> None:
        return None


@dataclass(frozen=True)
class MeetingView:
    """A meeting as the templates show it."""

    id: int
    kind: MeetingKind
    project_name: str
    channel_id: str
    lead: str
    starts_at: datetime
    duration_min: int
    status: str
    deadline: datetime | None
    deadline_hours: int
    attendees: tuple[str, ...]
    owing: tuple[str, ...]  # required attendees who must submit (whether or not they have)
    sequence: int
    postpone_count: int
    hold_anyway_by: str | None
    proposals: int = 0
    project_id: int | None = None
    # `meeting list`: who still owes a proposal now, by the verdict's rules (not authors, not away), and who is
    # excused as away; None when not worked out.
    still_owing: tuple[str, ...] | None = None
    excused: tuple[str, ...] = ()

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(minutes=self.duration_min)

    @property
    def title(self) -> str:
        return self.kind.title


@dataclass(frozen=True)
class Scheduled:
    """A scheduled (or moved) meeting and what the lead should know about its time."""

    meeting: MeetingView
    outside_hours: list[str]
    away: list[str]
    deadline_passed: bool
    nobody_owes: bool
    announced: bool = True  # False: the channel post failed (e.g. a private channel the bot is not in)
    announcement: int | None = None  # the channel post's outbox row (delivered after the commit)


@dataclass(frozen=True)
class SlotOffer:
    project_id: int
    kind: MeetingKind
    attendees: list[str]
    duration_min: int
    slots: list[datetime]
    first_day: date
    last_day: date
    # When no slot fits everyone: who cannot meet whom, and the least bad slots with who is outside by how much.
    apart: list[str] = field(default_factory=list)
    least_bad: list[tuple[datetime, list[str]]] = field(default_factory=list)


def span_text(delta: timedelta) -> str:
    """`30 min`, `2 h`, `6 h 30 min`."""
    minutes = int(delta.total_seconds() // 60)
    h, m = divmod(minutes, 60)
    return " ".join(part for part in (f"{h} h" if h else "", f"{m} min" if m or not h else "") if part)


def who(p: Availability) -> str:
    """`@ana (Los Angeles, 09:00–17:00)`: a person with the zone and hours that rule them."""
    return f"{mention(p.user_id)} ({p.place}, {p.hours_text})"


def apart_lines(
    people: Sequence[Availability], *, earliest: datetime, latest: datetime, duration: timedelta
) -> list[str]:
    """Why no slot fits everyone, in people's words."""
    found = apart(people, earliest=earliest, latest=latest, duration=duration)
    by_id = {p.user_id: p for p in people}
    lines = [f"{who(by_id[u])} has no working time in this window (away, or days off)." for u in found.nowhere]
    lines += [f"{who(by_id[a])} and {who(by_id[b])} never overlap." for a, b in found.pairs[:MAX_APART_LINES]]
    if len(found.pairs) > MAX_APART_LINES:
        lines.append(f"…and {len(found.pairs) - MAX_APART_LINES} more pairs who never overlap.")
    if not lines:
        lines.append("Every two of them overlap at some time, but never all at once.")
    return lines


def least_bad_lines(slot: LeastBad, people: Sequence[Availability], duration: timedelta) -> list[str]:
    """Who is outside their hours at this slot, by how much, and what time it is for them."""
    by_id = {p.user_id: p for p in people}
    lines = []
    for o in slot.outside:
        p = by_id[o.user_id]
        local = f"{p.local(slot.start):%a %H:%M}–{p.local(slot.start + duration):%H:%M} in {p.place}"
        if o.away:
            lines.append(f"{mention(p.user_id)} is away ({local})")
        else:
            lines.append(f"{mention(p.user_id)} {span_text(o.by)} outside their {p.hours_text} ({local})")
    return lines


def parse_kind(key: str) -> MeetingKind:
    kind = MEETING_KINDS.get(key.strip().lower())
    if kind is None:
        raise InvalidInput(
            f"`{key[:40]}` is not a meeting kind. Kinds: {', '.join(MEETING_KINDS)}.",
            field="kind",
        )
    return kind


def kind_of(meeting: Meeting) -> MeetingKind:
    return MEETING_KINDS[meeting.kind]


async def attendee_rows(s: AsyncSession, meeting_id: int) -> list[MeetingAttendee]:
    rows = await s.execute(
        select(MeetingAttendee).where(MeetingAttendee.meeting_id == meeting_id).order_by(col(MeetingAttendee.id))
    )
    return list(rows.scalars())


async def view_of(s: AsyncSession, meeting: Meeting, project: Project) -> MeetingView:
    assert meeting.id is not None
    rows = await attendee_rows(s, meeting.id)
    count = (
        await s.execute(select(func.count()).select_from(Proposal).where(Proposal.meeting_id == meeting.id))
    ).scalar_one()
    return MeetingView(
        id=meeting.id,
        kind=kind_of(meeting),
        project_name=project.name,
        channel_id=project.channel_id,
        lead=project.lead_user_id,
        starts_at=meeting.starts_at,
        duration_min=meeting.duration_min,
        status=meeting.status,
        deadline=meeting.proposal_deadline,
        deadline_hours=(
            int((meeting.starts_at - meeting.proposal_deadline).total_seconds() // 3600)
            if meeting.proposal_deadline
            else project.proposal_deadline_hours
        ),
        attendees=tuple(r.user_id for r in rows),
        owing=tuple(r.user_id for r in rows if r.owes_proposal and r.required),
        sequence=meeting.invite_sequence,
        postpone_count=meeting.postpone_count,
        hold_anyway_by=meeting.hold_anyway_by,
        proposals=int(count or 0),
        project_id=project.id,
    )


def _valid_zone(name: str | None) -> str | None:
    if not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def _check_start(starts_at: datetime, now: datetime) -> None:
    if starts_at <= now:
        raise InvalidInput("That time has passed: pick a time in the future.", field="at")
    if starts_at > now + MAX_AHEAD:
        raise InvalidInput("Meetings are planned at most a year ahead.", field="at")


class RitualBase(ServiceBase):
    """Shared by the ritual services: the messenger, meetings by id, people's hours, invites."""

    outbox: Outbox

    def __init__(self, db: Database, clock: Clock, messenger: Messenger, outbox: Outbox | None = None) -> None:
        super().__init__(db, clock)
        self.messenger = messenger
        self.outbox = outbox or Outbox(db, clock, messenger)  # what the bot sends on its own goes through it

    async def open_proposal_meetings(self, s: AsyncSession, actor: Actor, project_id: int | None) -> list[Meeting]:
        """The project's meetings that take proposals and are not over (soonest first)."""
        if project_id is None:
            raise InvalidInput("Say which meeting with meeting=<id>.", field="meeting")
        rows = await s.execute(
            select(Meeting)
            .where(
                Meeting.project_id == project_id,
                Meeting.team_id == actor.team_id,
                col(Meeting.status).in_(OPEN_STATUSES),
            )
            .order_by(col(Meeting.starts_at))
        )
        return [m for m in rows.scalars() if kind_of(m).proposals_required]

    async def meeting_and_project(self, s: AsyncSession, actor: Actor, meeting_id: int) -> tuple[Meeting, Project]:
        meeting = await s.get(Meeting, meeting_id)
        if meeting is None or meeting.team_id != actor.team_id:
            raise NotFound(f"There is no meeting #{meeting_id} in this workspace. `{COMMAND} meeting list` lists them.")
        return meeting, await self.project_by_id(s, actor, meeting.project_id)

    async def availabilities(self, s: AsyncSession, project: Project, user_ids: Sequence[str]) -> list[Availability]:
        """Each person's zone (theirs, else their Slack profile's — then kept —, else the project's), hours and days.

        Hours: their own (`hours`), else the project's default; days: their own, else Mon–Fri.
        """
        own = {
            r.user_id: r
            for r in (
                await s.execute(
                    select(PersonHours).where(
                        PersonHours.team_id == project.team_id, col(PersonHours.user_id).in_(list(user_ids))
                    )
                )
            ).scalars()
        }
        result = []
        for uid in user_ids:
            member = await self.member(s, project.team_id, uid)
            zone = _valid_zone(member.timezone)
            if zone is None:
                person = await self.messenger.person(team_id=project.team_id, user_id=uid)
                zone = _valid_zone(person.timezone if person else None)
                if zone is not None:
                    member.timezone = zone
                    s.add(member)
            result.append(
                Availability.of(
                    uid,
                    zone=zone or _valid_zone(project.timezone) or "UTC",
                    hours=own[uid].hours if uid in own else member.working_hours,
                    fallback_hours=project.working_hours,
                    away_until=member.away_until,
                    days=own[uid].days if uid in own else None,
                )
            )
        return result

    async def slack_away(self, team_id: str, user_id: str) -> bool:
        person = await self.messenger.person(team_id=team_id, user_id=user_id)
        return bool(person and person.away)

    async def queue_invite(
        self, s: AsyncSession, view: MeetingView, *, team_id: str, uid: str, cancelled: bool, lead: str
    ) -> None:
        """Queue the meeting's .ics (REQUEST, or CANCEL) for the announcement's thread, in the change's
        transaction `s`; the file's bytes are kept in the outbox row."""
        description = render_text(
            "calendar/invite_description.txt.j2",
            title=view.title,
            project=view.project_name,
            cancelled=cancelled,
            purpose=view.kind.agenda[-1] if view.kind.proposals_required else view.kind.title,
            agenda=view.kind.agenda,
            deadline=view.deadline,
            deadline_hours=view.deadline_hours,
            command=COMMAND,
            meeting_id=view.id,
        )
        content = ics(
            Invite(
                uid=uid,
                sequence=view.sequence,
                summary=f"{view.title} · {view.project_name}",
                description=description,
                starts_at=view.starts_at,
                duration_min=view.duration_min,
                stamp=self.clock.now(),
                method="CANCEL" if cancelled else "REQUEST",
                alarm_before=(view.starts_at - view.deadline) if view.deadline else None,
            )
        )
        verb = "Cancellation" if cancelled else ("Updated invite" if view.sequence else "Invite")
        await self.outbox_for().enqueue(
            s,
            team_id=team_id,
            project_id=view.project_id,
            kind="upload",
            target=view.channel_id,
            message=Message(text=f"{verb} for {view.title} #{view.id} (add it to your calendar)."),
            key=f"meeting:{view.id}:invite:{view.sequence}:{'cancel' if cancelled else 'request'}",
            filename=f"phasegate-meeting-{view.id}.ics",
            content=content,
            title=f"{verb}: {view.title} #{view.id}",
            thread_of_meeting=view.id,
            notify_user_id=lead,
        )

    def outbox_for(self) -> Outbox:
        """The shared outbox (Services.build sets it on every service), else this service's own."""
        assert self.outbox is not None
        return self.outbox


class MeetingService(RitualBase):
    def __init__(self, db: Database, clock: Clock, messenger: Messenger, outbox: Outbox | None = None) -> None:
        super().__init__(db, clock, messenger, outbox)
        self.planner: Planner = NullPlanner()

    # --- scheduling ------------------------------------------------------------------------------

    async def _attendees(
        self, s: AsyncSession, project: Project, kind: MeetingKind, given: Sequence[str] | None
    ) -> list[str]:
        assert project.id is not None
        if given:
            # The lead runs every ritual (and records the decision), so they attend even when not listed.
            lead = [project.lead_user_id] if Role.LEAD in kind.attendee_roles else []
            people = list(dict.fromkeys([*lead, *given]))
        else:
            members = await project_members(s, project.id)
            members.setdefault(project.lead_user_id, set()).add("lead")
            wanted = {r.value for r in kind.attendee_roles}
            people = [u for u, roles in members.items() if roles & wanted]
        if not people:
            raise InvalidInput("Who attends? Add attendees=@ana,@raj.", field="attendees")
        if len(people) > MAX_ATTENDEES:
            raise InvalidInput(f"At most {MAX_ATTENDEES} attendees.", field="attendees")
        return people

    @staticmethod
    def _duration(kind: MeetingKind, duration_min: int | None) -> int:
        duration = kind.duration_min if duration_min is None else duration_min
        if not MIN_DURATION <= duration <= MAX_DURATION:
            raise InvalidInput(
                f"A meeting lasts {MIN_DURATION}–{MAX_DURATION} minutes; {duration} is out of range.", field="duration"
            )
        return duration

    async def find_slots(
        self,
        *,
        actor: Actor,
        project_id: int,
        kind: str,
        first_day: date,
        last_day: date,
        zone: str,
        attendees: Sequence[str] | None = None,
        duration_min: int | None = None,
    ) -> SlotOffer:
        """The three earliest 30-minute-grid slots in the window (days in `zone`) inside everyone's hours."""
        spec = parse_kind(kind)
        duration = self._duration(spec, duration_min)
        if last_day < first_day:
            raise InvalidInput(
                "The window ends before it starts: write window=<first day>..<last day>.", field="window"
            )
        if (last_day - first_day).days >= MAX_WINDOW_DAYS:
            raise InvalidInput(f"Keep the window under {MAX_WINDOW_DAYS} days.", field="window")
        if first_day > (self.clock.now() + MAX_AHEAD).date():
            raise InvalidInput("Meetings are planned at most a year ahead.", field="window")
        tz = ZoneInfo(_valid_zone(zone) or "UTC")
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            await self.require_lead(s, actor, project, "schedule meetings")
            people = await self._attendees(s, project, spec, attendees)
            hours = await self.availabilities(s, project, people)
        earliest = max(datetime.combine(first_day, time(0), tzinfo=tz).astimezone(UTC), self.clock.now())
        latest = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
        span = timedelta(minutes=duration)
        slots = find_slots(hours, earliest=earliest, latest=latest, duration=span)
        if slots:
            return SlotOffer(project_id, spec, people, duration, slots, first_day, last_day)
        worst = least_bad_slots(hours, earliest=earliest, latest=latest, duration=span)
        return SlotOffer(
            project_id,
            spec,
            people,
            duration,
            slots,
            first_day,
            last_day,
            apart=apart_lines(hours, earliest=earliest, latest=latest, duration=span),
            least_bad=[(b.start, least_bad_lines(b, hours, span)) for b in worst],
        )

    async def schedule(
        self,
        *,
        actor: Actor,
        project_id: int,
        kind: str,
        starts_at: datetime,
        attendees: Sequence[str] | None = None,
        duration_min: int | None = None,
    ) -> Scheduled:
        """Schedule a meeting (lead or admin): announce it with an invite and plan its reminders."""
        spec = parse_kind(kind)
        duration = self._duration(spec, duration_min)
        now = self.clock.now()
        _check_start(starts_at, now)
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            await self.require_lead(s, actor, project, "schedule meetings")
            assert project.id is not None
            same = (
                await s.execute(
                    select(Meeting.id).where(
                        Meeting.project_id == project.id,
                        Meeting.kind == spec.key,
                        Meeting.starts_at == starts_at,
                        col(Meeting.status).in_(OPEN_STATUSES),
                    )
                )
            ).first()
            if same is not None:
                raise Conflict(f"{spec.title} #{same[0]} is already scheduled at that time.")
            people = await self._attendees(s, project, spec, attendees)
            hours = await self.availabilities(s, project, people)
            members = await project_members(s, project.id)
            proposal_roles = {r.value for r in spec.proposal_roles}
            deadline = starts_at - timedelta(hours=project.proposal_deadline_hours) if spec.proposals_required else None
            meeting = Meeting(
                team_id=project.team_id,
                project_id=project.id,
                kind=spec.key,
                phase=spec.phase.value,
                iteration=project.iteration,
                starts_at=starts_at,
                duration_min=duration,
                proposal_deadline=deadline,
                created_by=actor.user_id,
                created_at=now,
                updated_at=now,
            )
            s.add(meeting)
            await s.flush()
            assert meeting.id is not None
            for uid in people:
                owes = spec.proposals_required and bool(members.get(uid, set()) & proposal_roles)
                s.add(
                    MeetingAttendee(
                        team_id=project.team_id, meeting_id=meeting.id, user_id=uid, required=True, owes_proposal=owes
                    )
                )
            await s.flush()
            await self.audit(
                s,
                actor=actor,
                action="meeting.schedule",
                project_id=project.id,
                meeting=meeting.id,
                kind=spec.key,
                starts_at=starts_at.isoformat(),
                attendees=people,
            )
            view = await view_of(s, meeting, project)
            # The announcement and its invite commit with the meeting; the sender posts them after the commit
            # and stores the announcement's ts on the meeting (the invite and reminders go in its thread).
            announcement = await self.outbox_for().enqueue(
                s,
                team_id=actor.team_id,
                project_id=project.id,
                kind="post",
                target=view.channel_id,
                message=render_message(
                    "blocks/meeting_announcement.json.j2",
                    text=f"{view.title} #{view.id} scheduled",
                    m=view,
                    actor=actor.user_id,
                    change="scheduled",
                    previous=None,
                    reason=None,
                    max_postpones=0,
                    command=COMMAND,
                ),
                key=f"meeting:{view.id}:announce",
                ts_for=f"meeting:{view.id}",
                notify_user_id=project.lead_user_id,
            )
            await self.queue_invite(
                s, view, team_id=actor.team_id, uid=meeting.invite_uid, cancelled=False, lead=project.lead_user_id
            )
        await self.outbox_for().committed()
        await self.replan(meeting_id=view.id)
        return replace(self._scheduled(view, hours, now), announcement=announcement.id)

    def _scheduled(
        self, view: MeetingView, hours: Sequence[Availability], now: datetime, *, announced: bool = True
    ) -> Scheduled:
        return Scheduled(
            meeting=view,
            outside_hours=outside_hours(hours, view.starts_at, view.ends_at),
            away=[h.user_id for h in hours if h.away_on(view.starts_at)],
            deadline_passed=view.deadline is not None and view.deadline <= now,
            nobody_owes=view.kind.proposals_required and not view.owing,
            announced=announced,
        )

    # --- changing ----------------------------------------------------------------------------------

    async def move(self, *, actor: Actor, meeting_id: int, starts_at: datetime) -> Scheduled:
        """Move a meeting (lead or admin): new invite (higher SEQUENCE), new deadline, reminders re-planned."""
        _check_start(starts_at, self.clock.now())
        return await self._reschedule(actor=actor, meeting_id=meeting_id, starts_at=starts_at, reason=None)

    async def postpone(self, *, actor: Actor, meeting_id: int, reason: str, automatic: bool = False) -> Scheduled:
        """Postpone by the project's `postpone_days` working days (the lead, or the bot by policy)."""
        return await self._reschedule(
            actor=actor, meeting_id=meeting_id, starts_at=None, reason=reason, automatic=automatic
        )

    async def _reschedule(
        self,
        *,
        actor: Actor,
        meeting_id: int,
        starts_at: datetime | None,
        reason: str | None,
        automatic: bool = False,
    ) -> Scheduled:
        now = self.clock.now()
        async with self.db.session() as s:
            meeting, project = await self.meeting_and_project(s, actor, meeting_id)
            if not automatic:
                await self.require_lead(s, actor, project, "move or postpone meetings")
            if meeting.status not in OPEN_STATUSES:
                raise Conflict(f"Meeting #{meeting_id} is {meeting.status}: it can no longer be moved.")
            # People's hours before any write: a Slack profile lookup must not hold the write lock.
            hours = await self.availabilities(s, project, [r.user_id for r in await attendee_rows(s, meeting_id)])
            previous = meeting.starts_at
            if starts_at is None:
                starts_at = add_working_days(previous, project.postpone_days, _valid_zone(project.timezone) or "UTC")
                meeting.postpone_count += 1
            meeting.starts_at = starts_at
            if meeting.proposal_deadline is not None:
                meeting.proposal_deadline = starts_at - timedelta(hours=project.proposal_deadline_hours)
            meeting.invite_sequence += 1
            meeting.status = "scheduled"
            meeting.ready, meeting.verdict, meeting.hold_anyway_by = None, {}, None
            meeting.updated_at = now
            s.add(meeting)
            await self.audit(
                s,
                actor=actor,
                action="meeting.postpone" if reason else "meeting.move",
                project_id=project.id,
                meeting=meeting_id,
                starts_at=starts_at.isoformat(),
                previous=previous.isoformat(),
                reason=reason,
                postpone_count=meeting.postpone_count if reason else None,
            )
            view = await view_of(s, meeting, project)
            told = await self._tell_channel(
                s,
                view,
                actor=actor,
                change="postponed" if reason else "moved",
                previous=previous,
                reason=reason,
                max_postpones=project.max_postpones,
                lead=project.lead_user_id,
            )
            await self.queue_invite(
                s, view, team_id=actor.team_id, uid=meeting.invite_uid, cancelled=False, lead=project.lead_user_id
            )
        await self.outbox_for().committed()
        await self.replan(meeting_id=meeting_id)
        return replace(self._scheduled(view, hours, now), announcement=told)

    async def cancel(
        self, *, actor: Actor, meeting_id: int, automatic: bool = False, note: Message | None = None
    ) -> MeetingView:
        """Cancel a meeting (lead or admin; `automatic`: the project's policy): CANCEL invite, channel told
        (and `note` posted after, e.g. why the bot cancelled it), all queued with the cancellation."""
        async with self.db.session() as s:
            meeting, project = await self.meeting_and_project(s, actor, meeting_id)
            if not automatic:
                await self.require_lead(s, actor, project, "cancel meetings")
            if meeting.status not in OPEN_STATUSES:
                raise Conflict(f"Meeting #{meeting_id} is already {meeting.status}.")
            meeting.status = "cancelled"
            meeting.invite_sequence += 1
            meeting.updated_at = self.clock.now()
            s.add(meeting)
            await self.audit(s, actor=actor, action="meeting.cancel", project_id=project.id, meeting=meeting_id)
            view = await view_of(s, meeting, project)
            lead = project.lead_user_id
            await self._tell_channel(s, view, actor=actor, change="cancelled", lead=lead)
            await self.queue_invite(s, view, team_id=actor.team_id, uid=meeting.invite_uid, cancelled=True, lead=lead)
            if note is not None:
                await self.outbox_for().enqueue(
                    s,
                    team_id=actor.team_id,
                    project_id=project.id,
                    kind="post",
                    target=view.channel_id,
                    message=note,
                    key=f"meeting:{meeting_id}:cancelled:note",
                    notify_user_id=lead,
                )
        await self.outbox_for().committed()
        await self.planner.remove_meeting_jobs(meeting_id)
        return view

    async def _tell_channel(
        self,
        s: AsyncSession,
        view: MeetingView,
        *,
        actor: Actor,
        change: Literal["moved", "postponed", "cancelled"],
        lead: str,
        previous: datetime | None = None,
        reason: str | None = None,
        max_postpones: int = 0,
    ) -> int | None:
        """Queue a channel post saying what changed and an update of the original announcement to match (its ts
        is looked up when sent); returns the post's outbox row."""
        message = render_message(
            "blocks/meeting_announcement.json.j2",
            text=f"{view.title} #{view.id} {change}",
            m=view,
            actor=actor.user_id,
            change=change,
            previous=previous,
            reason=reason,
            max_postpones=max_postpones,
            command=COMMAND,
        )
        outbox = self.outbox_for()
        change_key = f"meeting:{view.id}:{change}:{view.sequence}"
        post = await outbox.enqueue(
            s,
            team_id=actor.team_id,
            project_id=view.project_id,
            kind="post",
            target=view.channel_id,
            message=message,
            key=change_key,
            notify_user_id=lead,
        )
        await outbox.enqueue(
            s,
            team_id=actor.team_id,
            project_id=view.project_id,
            kind="update",
            target=view.channel_id,
            message=message,
            key=f"{change_key}:update",
            thread_of_meeting=view.id,
            notify_user_id=lead,
        )
        return post.id

    # --- reading -----------------------------------------------------------------------------------

    async def get(self, *, actor: Actor, meeting_id: int) -> MeetingView:
        """One meeting of the actor's workspace."""
        async with self.db.session() as s:
            meeting, project = await self.meeting_and_project(s, actor, meeting_id)
            return await view_of(s, meeting, project)

    async def upcoming(self, *, actor: Actor, project_id: int) -> list[MeetingView]:
        """The project's meetings that are coming up or still await a decision, soonest first."""
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            rows = await s.execute(
                select(Meeting)
                .where(
                    Meeting.project_id == project_id,
                    col(Meeting.status).in_(OPEN_STATUSES),
                )
                .order_by(col(Meeting.starts_at))
                .limit(30)
            )
            views = []
            now = self.clock.now()
            for meeting in rows.scalars():
                view = await view_of(s, meeting, project)
                if view.owing:  # the same rules as the readiness verdict: authors and people away do not owe
                    authors = {
                        u
                        for author, co in (
                            await s.execute(
                                select(Proposal.author_user_id, Proposal.coauthors).where(
                                    Proposal.meeting_id == meeting.id
                                )
                            )
                        ).all()
                        for u in (author, *(co or []))
                    }
                    left = [u for u in view.owing if u not in authors]
                    hours = {h.user_id: h for h in await self.availabilities(s, project, left)}
                    away = [u for u in left if hours[u].away_on(now) or await self.slack_away(project.team_id, u)]
                    view = replace(view, still_owing=tuple(u for u in left if u not in away), excused=tuple(away))
                views.append(view)
            return views

    # --- planning ----------------------------------------------------------------------------------

    async def replan(self, *, meeting_id: int) -> list[PlannedJob]:
        """Replace a meeting's jobs with the plan for its current state (nothing for a closed meeting)."""
        now = self.clock.now()
        async with self.db.session() as s:
            meeting = await s.get(Meeting, meeting_id)
            if meeting is None or meeting.status not in OPEN_STATUSES:
                jobs: list[PlannedJob] = []
                sequence = meeting.invite_sequence if meeting else 0
            else:
                project = await s.get(Project, meeting.project_id)
                assert project is not None
                owing = [r.user_id for r in await attendee_rows(s, meeting_id) if r.owes_proposal and r.required]
                spec = kind_of(meeting)
                jobs = ladder(
                    starts_at=meeting.starts_at,
                    duration_min=meeting.duration_min,
                    # Once the verdict is in, only the agenda and the nudges remain.
                    deadline=meeting.proposal_deadline if meeting.ready is None else None,
                    owing=await self.availabilities(s, project, owing),
                    now=now,
                    decision_meeting=spec.proposals_required,
                )
                sequence = meeting.invite_sequence
        if jobs:
            await self.planner.replace_meeting_jobs(meeting_id, sequence, jobs)
        else:
            await self.planner.remove_meeting_jobs(meeting_id)
        return jobs
