"""The weekly digest: per project, posted in its channel at the day and time the lead picked (in the lead's zone).

`settings digest="mon 09:00"` stores the slot and plans one job (`digest:<project>`) in the ReminderScheduler;
the job posts through the durable outbox and plans the next week's. The post is claimed in `sent_messages`
(`digest:<project>:<local date>`) in the transaction that queues it, so a job that runs twice — a restart, two
replicas leading for a moment — posts once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.db.models import (
    Decision,
    DigestSettings,
    GitHubIssue,
    Meeting,
    MeetingAttendee,
    PhaseRecord,
    PhaseTarget,
    Project,
    Proposal,
    SentMessage,
    Task,
    WebhookDelivery,
)
from bot.errors import InvalidInput
from bot.process import DAY_NAMES, MEETING_KINDS, Phase, evaluate_gate
from bot.rendering import Message, slack_escape
from bot.services.base import Actor
from bot.services.gates import gather_facts
from bot.services.meetings import OPEN_STATUSES, RitualBase

if TYPE_CHECKING:
    from bot.charts import Chart, TimelineInput

log = logging.getLogger(__name__)

LATE_LIMIT = timedelta(hours=12)  # a digest later than this (the bot was down) is skipped: next week's follows
MEETINGS_AHEAD = timedelta(days=14)
SHOWN = 10  # lines per section; the rest are counted
EXAMPLE = 'digest="mon 09:00"'
_DIGEST_RE = re.compile(r"^\s*([a-z]+)\s+(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class DigestSlot:
    weekday: int  # Mon = 0
    minute: int  # after local midnight

    @property
    def text(self) -> str:
        return f"{DAY_NAMES[self.weekday].title()} {self.minute // 60:02d}:{self.minute % 60:02d}"


def parse_digest(raw: str) -> DigestSlot | None:
    """`mon 09:00` (any day name or its first three letters, 24-hour time) → a slot; `off` → None.

    Raises InvalidInput with an example for anything else."""
    text = (raw or "").strip().lower()
    if text in ("off", "none", "no"):
        return None
    refusal = (
        f"`{raw[:40]}` is not a digest time: say a day and a 24-hour time in your time zone, "
        f"like `{EXAMPLE}`, or `digest=off`."
    )
    m = _DIGEST_RE.match(text)
    if m is None:
        raise InvalidInput(refusal, field="digest")
    day = next((i for i, full in enumerate(_FULL_DAYS) if len(m[1]) >= 3 and full.startswith(m[1])), None)
    hour, minute = int(m[2]), int(m[3])
    if day is None or hour > 23 or minute > 59:
        raise InvalidInput(refusal, field="digest")
    return DigestSlot(day, hour * 60 + minute)


_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def next_slot(after: datetime, slot: DigestSlot, zone: str) -> datetime:
    """The first time strictly after `after` that is `slot` on the wall clock of `zone`, as aware UTC.

    Local wall-clock time, so across a DST change it stays at 09:00 local (the UTC hour moves). A time that
    does not exist that day (in the spring gap) is read with the offset before the change."""
    tz = ZoneInfo(zone)
    day = after.astimezone(tz).date()
    for offset in range(9):
        d = day + timedelta(days=offset)
        if d.weekday() != slot.weekday:
            continue
        at = datetime.combine(d, time(slot.minute // 60, slot.minute % 60), tzinfo=tz).astimezone(UTC)
        if at > after:
            return at
    raise AssertionError("a weekday recurs within 8 days")


class DigestPlanner(Protocol):
    async def replace_digest_job(self, project_id: int, run_at: datetime) -> None: ...

    async def remove_digest_job(self, project_id: int) -> None: ...


@dataclass(frozen=True)
class DigestTask:
    number: int
    title: str
    url: str | None


@dataclass(frozen=True)
class DigestMeeting:
    id: int
    title: str
    starts_at: datetime
    owing: list[str]  # user ids who still owe a proposal


@dataclass(frozen=True)
class DigestDecision:
    meeting_id: int
    title: str
    chosen: str
    by: str


@dataclass
class WeeklyDigest:
    project: Project
    since: datetime
    until: datetime
    zone: str
    phase: Phase
    days_in_phase: int
    target_due: date | None
    gate: list[tuple[str, bool]]
    meetings: list[DigestMeeting] = field(default_factory=list)
    decisions: list[DigestDecision] = field(default_factory=list)
    opened: list[DigestTask] = field(default_factory=list)
    closed: list[DigestTask] = field(default_factory=list)
    overdue: list[str] = field(default_factory=list)
    github: list[str] = field(default_factory=list)
    phases: list[PhaseRecord] = field(default_factory=list)
    targets: dict[str, date] = field(default_factory=dict)

    @property
    def quiet(self) -> bool:
        return not (self.meetings or self.decisions or self.opened or self.closed or self.overdue or self.github)

    def _local(self, when: datetime) -> str:
        return when.astimezone(ZoneInfo(self.zone)).strftime("%a %d %b %H:%M")

    def phase_line(self) -> str:
        label = self.phase.label
        line = f"{label} phase, day {self.days_in_phase + 1}"
        if self.target_due is not None:
            today = self.until.astimezone(ZoneInfo(self.zone)).date()
            left = (self.target_due - today).days
            if left >= 0:
                line += f" — target {self.target_due.isoformat()} ({left} day{'s' if left != 1 else ''} left)"
            else:
                line += f" — target {self.target_due.isoformat()} (*{-left} day{'s' if left != -1 else ''} late*)"
        else:
            line += " — no target date"
        return line

    def message(self, command: str) -> Message:
        name = slack_escape(self.project.name)
        start = self.since.astimezone(ZoneInfo(self.zone)).date().isoformat()
        if self.quiet:
            text = f"Weekly digest for {name}: a quiet week since {start} — {self.phase_line()}, nothing else changed."
            return Message(text=text, blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}])
        sections: list[str] = [f"*Weekly digest for {name}* (since {start})\n{self.phase_line()}"]
        if self.gate:
            sections.append("*Gate*\n" + "\n".join(f"{'✅' if met else '⬜'} {label}" for label, met in self.gate))

        def listed(title: str, lines: list[str]) -> None:
            if lines:
                more = f"\n…and {len(lines) - SHOWN} more" if len(lines) > SHOWN else ""
                sections.append(f"*{title}* ({len(lines)})\n" + "\n".join(lines[:SHOWN]) + more)

        listed("Overdue", [f"⚠️ {o}" for o in self.overdue])
        listed(
            "Meetings coming",
            [
                f"• {m.title} #{m.id}, {self._local(m.starts_at)}"
                + (f" — still owing a proposal: {', '.join(f'<@{u}>' for u in m.owing)}" if m.owing else "")
                for m in self.meetings
            ],
        )
        listed(
            "Decisions made",
            [f"• {d.title} #{d.meeting_id}: {slack_escape(d.chosen)} (<@{d.by}>)" for d in self.decisions],
        )
        listed("Tasks opened", [_task(t) for t in self.opened])
        listed("Tasks closed", [_task(t) for t in self.closed])
        listed("Changed in GitHub", [f"• {slack_escape(g)}" for g in self.github])
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": part[:2900]}} for part in sections
        ]
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"`{command} status` for the full picture; "
                        f"`{command} settings digest=off` stops this digest.",
                    }
                ],
            }
        )
        return Message(text=f"Weekly digest for {name}", blocks=blocks)


def _task(t: DigestTask) -> str:
    title = slack_escape(t.title)
    if t.url and re.match(r"^https?://[^\s<>|]+$", t.url):
        return f"• <{t.url}|#{t.number} {title.replace('|', '¦')}>"
    return f"• #{t.number} {title}"


async def build_digest(
    s: AsyncSession, project: Project, *, since: datetime, until: datetime, zone: str
) -> WeeklyDigest:
    """What happened in a project between `since` and `until`, and what is coming (a fixed number of queries)."""
    assert project.id is not None
    pid = project.id
    phase = Phase(project.phase)
    records = list(
        (
            await s.execute(select(PhaseRecord).where(PhaseRecord.project_id == pid).order_by(col(PhaseRecord.id)))
        ).scalars()
    )
    current = next((r for r in reversed(records) if r.ended_at is None), None)
    started = current.started_at if current is not None else project.created_at
    targets = {
        t.phase: t.due for t in (await s.execute(select(PhaseTarget).where(PhaseTarget.project_id == pid))).scalars()
    }
    tz = ZoneInfo(zone)
    today = until.astimezone(tz).date()
    gate = evaluate_gate(phase, await gather_facts(s, project))
    digest = WeeklyDigest(
        project=project,
        since=since,
        until=until,
        zone=zone,
        phase=phase,
        days_in_phase=max((today - started.astimezone(tz).date()).days, 0),
        target_due=targets.get(project.phase),
        gate=[(i.label, i.met) for i in gate.items],
        phases=records,
        targets=targets,
    )
    if digest.target_due is not None and digest.target_due < today:
        late = (today - digest.target_due).days
        digest.overdue.append(f"{phase.label} phase is {late} day{'s' if late != 1 else ''} past its target")
    meetings = list(
        (
            await s.execute(
                select(Meeting)
                .where(
                    Meeting.project_id == pid,
                    col(Meeting.status).in_(OPEN_STATUSES),
                    Meeting.starts_at < until + MEETINGS_AHEAD,
                )
                .order_by(col(Meeting.starts_at))
            )
        ).scalars()
    )
    ids = [m.id for m in meetings]
    owes: dict[int, list[str]] = {}
    authored: set[tuple[int, str]] = set()
    if ids:
        for mid, user in (
            await s.execute(
                select(MeetingAttendee.meeting_id, MeetingAttendee.user_id)
                .where(col(MeetingAttendee.meeting_id).in_(ids), col(MeetingAttendee.owes_proposal).is_(True))
                .order_by(col(MeetingAttendee.id))
            )
        ).all():
            owes.setdefault(int(mid), []).append(str(user))
        for mid, author, coauthors in (
            await s.execute(
                select(Proposal.meeting_id, Proposal.author_user_id, Proposal.coauthors).where(
                    col(Proposal.meeting_id).in_(ids)
                )
            )
        ).all():
            for u in (author, *(coauthors or [])):
                authored.add((int(mid), str(u)))
    for m in meetings:
        assert m.id is not None
        title = MEETING_KINDS[m.kind].title if m.kind in MEETING_KINDS else m.kind
        owing = [u for u in owes.get(m.id, []) if (m.id, u) not in authored]
        ends = m.starts_at + timedelta(minutes=m.duration_min)
        decides = m.kind in MEETING_KINDS and MEETING_KINDS[m.kind].proposals_required
        if ends <= until:  # over: a decision meeting without its decision is overdue; any other is simply past
            if decides:
                digest.overdue.append(f"{title} #{m.id} ended {digest._local(ends)} without a recorded decision")
        else:
            digest.meetings.append(DigestMeeting(m.id, title, m.starts_at, owing))
            if m.proposal_deadline is not None and m.proposal_deadline <= until and owing:
                digest.overdue.append(
                    f"{title} #{m.id}: proposals were due {digest._local(m.proposal_deadline)}, still owed by "
                    + ", ".join(f"<@{u}>" for u in owing)
                )
    for d, m, p in (
        await s.execute(
            select(Decision, Meeting, Proposal)
            .join(Meeting, col(Meeting.id) == col(Decision.meeting_id))
            .join(Proposal, col(Proposal.id) == col(Decision.proposal_id))
            .where(Decision.project_id == pid, Decision.decided_at >= since, Decision.decided_at < until)
            .order_by(col(Decision.decided_at))
        )
    ).all():
        title = MEETING_KINDS[m.kind].title if m.kind in MEETING_KINDS else m.kind
        digest.decisions.append(DigestDecision(m.id or 0, title, p.title, d.decided_by))
    for t, url in (
        await s.execute(
            select(Task, GitHubIssue.html_url)
            .outerjoin(GitHubIssue, col(GitHubIssue.task_id) == col(Task.id))
            .where(Task.project_id == pid, Task.updated_at >= since)
            .order_by(col(Task.number))
        )
    ).all():
        line = DigestTask(t.number, t.title, url)
        if since <= t.created_at < until:
            digest.opened.append(line)
        if t.status == "closed" and since <= t.updated_at < until:
            digest.closed.append(line)
    for row in (
        await s.execute(
            select(WebhookDelivery)
            .where(
                col(WebhookDelivery.digested_at).is_not(None),
                col(WebhookDelivery.digested_at) >= since,
                col(WebhookDelivery.digested_at) < until,
            )
            .order_by(col(WebhookDelivery.id))
        )
    ).scalars():
        for e in row.digest:
            if e.get("project_id") == pid:
                number = e.get("task_number")
                what = f"#{number} {e.get('title') or ''}".strip() if number is not None else str(e.get("title") or "")
                who = f" by {e['who']}" if e.get("who") else ""
                digest.github.append(f"{what}: {e.get('change') or 'changed'}{who}")
    return digest


class DigestService(RitualBase):
    """`settings digest=…` and the weekly job."""

    planner: DigestPlanner | None = None

    async def lead_zone(self, s: AsyncSession, project: Project) -> str:
        return (await self.availabilities(s, project, [project.lead_user_id]))[0].zone

    async def setting(self, *, actor: Actor, project_id: int) -> tuple[DigestSlot | None, str]:
        """The project's digest slot (None: off) and the lead's zone it is read in."""
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            row = await s.get(DigestSettings, project_id)
            zone = await self.lead_zone(s, project)
            return (DigestSlot(row.weekday, row.minute) if row and row.enabled else None), zone

    async def configure(self, *, actor: Actor, project_id: int, raw: str) -> tuple[DigestSlot | None, str]:
        """Set (lead or admin) the weekly digest; plans its next run. Raises InvalidInput with an example."""
        slot = parse_digest(raw)
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            await self.require_lead(s, actor, project, "change the weekly digest")
            row = await s.get(DigestSettings, project_id)
            if row is None:
                row = DigestSettings(project_id=project_id, team_id=project.team_id)
            row.enabled = slot is not None
            if slot is not None:
                row.weekday, row.minute = slot.weekday, slot.minute
            row.updated_by, row.updated_at = actor.user_id, self.clock.now()
            s.add(row)
            zone = await self.lead_zone(s, project)
            await self.audit(
                s,
                actor=actor,
                action="project.digest",
                project_id=project_id,
                digest=slot.text if slot else "off",
                zone=zone,
            )
        await self._plan(project_id, slot, zone, self.clock.now())
        return slot, zone

    async def _plan(self, project_id: int, slot: DigestSlot | None, zone: str, after: datetime) -> None:
        if self.planner is None:
            return
        if slot is None:
            await self.planner.remove_digest_job(project_id)
        else:
            await self.planner.replace_digest_job(project_id, next_slot(after, slot, zone))

    async def run(self, *, project_id: int, slot_at: datetime) -> bool:
        """The weekly job for the slot at `slot_at`: post the digest (once) and plan next week's. True if queued."""
        now = self.clock.now()
        queued = False
        async with self.db.session() as s:
            project = await s.get(Project, project_id)
            row = await s.get(DigestSettings, project_id)
            if project is None or row is None or not row.enabled:
                return False
            slot = DigestSlot(row.weekday, row.minute)
            zone = await self.lead_zone(s, project)
        local = slot_at.astimezone(ZoneInfo(zone))
        current = local.weekday() == slot.weekday and local.hour * 60 + local.minute == slot.minute
        try:
            if current and now - slot_at <= LATE_LIMIT:
                queued = await self._post(project_id, slot_at, zone, f"digest:{project_id}:{local.date().isoformat()}")
            elif current:
                log.warning("digest of project %s for %s is %s late: skipped", project_id, slot_at, now - slot_at)
        finally:  # weekly: the job plans its own next run (also after a repeat or a failure: the chain goes on)
            await self._plan(project_id, slot, zone, max(slot_at, now))
        if queued:
            await self.outbox.committed()
        return queued

    async def _post(self, project_id: int, slot_at: datetime, zone: str, key: str) -> bool:
        """Claim and queue one week's digest; False when this week's was already claimed."""
        try:
            async with self.db.session() as s:
                project = await s.get(Project, project_id)
                assert project is not None
                digest = await build_digest(s, project, since=slot_at - timedelta(days=7), until=slot_at, zone=zone)
                chart = None if digest.quiet else await self._timeline(digest)  # drawn before the claim's write
                s.add(SentMessage(team_id=project.team_id, key=key, sent_at=self.clock.now()))
                await s.flush()
                await self.outbox.enqueue(
                    s,
                    team_id=project.team_id,
                    project_id=project_id,
                    kind="post",
                    target=project.channel_id,
                    key=key,
                    notify_user_id=project.lead_user_id,
                    message=digest.message(self.command),
                )
                if chart is not None:
                    await self._enqueue_timeline(s, project, digest, key, chart)
        except IntegrityError:  # already claimed: this run repeats one (restart, another replica)
            return False
        return True

    @staticmethod
    async def _timeline(digest: WeeklyDigest) -> Chart:
        from bot.charts import render_off_loop, timeline_chart

        return await render_off_loop(timeline_chart, timeline_input(digest))

    async def _enqueue_timeline(
        self, s: AsyncSession, project: Project, digest: WeeklyDigest, key: str, chart: Chart
    ) -> None:
        """The phase timeline chart, uploaded beside the digest (its text is the chart's description)."""
        await self.outbox.enqueue(
            s,
            team_id=project.team_id,
            project_id=project.id,
            kind="upload",
            target=project.channel_id,
            key=f"{key}:timeline",
            thread_of_key=key,  # in the digest's thread
            message=Message(text=slack_escape(chart.alt)),  # posted as the file's comment (mrkdwn)
            filename=f"{project.name}-timeline-{digest.until.astimezone(ZoneInfo(digest.zone)).date()}.png",
            content=chart.png,
            title=f"{project.name}: phase timeline",
            notify_user_id=project.lead_user_id,
        )


def timeline_input(digest: WeeklyDigest) -> TimelineInput:
    from bot.charts import PhaseSpan, TimelineInput

    spans = [
        PhaseSpan(
            label=Phase(r.phase).label + (f" (iter. {r.iteration})" if r.iteration else ""),
            started=r.started_at.date(),
            ended=r.ended_at.date() if r.ended_at else None,
            target=digest.targets.get(r.phase),
        )
        for r in digest.phases
    ]
    return TimelineInput(project=digest.project.name, spans=spans, today=digest.until.date())
