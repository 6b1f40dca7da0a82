"""The ritual jobs: reminder ladder, readiness verdict, escalation, agenda and daily decision nudges."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.clock import Clock
from bot.db.models import Meeting, Project, Proposal, SentMessage, Workspace
from bot.db.session import Database
from bot.errors import Conflict
from bot.messaging import Messenger
from bot.outbox import Outbox
from bot.process import Readiness
from bot.rendering import Message, render_message, slack_escape
from bot.services.base import Actor
from bot.services.meetings import (
    COMMAND,
    OPEN_STATUSES,
    SYSTEM_USER,
    MeetingService,
    MeetingView,
    RitualBase,
    view_of,
)
from bot.services.proposals import ProposalService, ProposalView, candidates
from bot.timeplan import NUDGE_GRACE, PlannedJob, add_working_days

if TYPE_CHECKING:
    from bot.charts import Chart

log = logging.getLogger(__name__)

Choice = Literal["postpone", "hold", "cancel"]
UNANSWERED_POSTPONES = 1  # an escalation nobody answers postpones the meeting this many times, then cancels it


@dataclass(frozen=True)
class _Due:
    """A job's meeting, reloaded: still the one the job was planned for?"""

    meeting: Meeting
    project: Project
    view: MeetingView


def verdict_record(r: Readiness) -> dict[str, object]:
    """The verdict as kept on the meeting (JSON)."""
    return {
        "ready": r.ready,
        "rules": [{"key": x.key, "label": x.label, "passed": x.passed, "detail": x.detail} for x in r.rules],
        "owed_by": list(r.owed_by),
        "excused": list(r.excused),
        "duplicates": {k: v for k, v in r.duplicates.items()},
    }


async def proposals_chart_for(m: MeetingView, ranked: Sequence[ProposalView]) -> Chart:
    """The agenda's chart: each ranked proposal's benefit against its cost, marker size by risk."""
    from bot.charts import ProposalPoint, ProposalsInput, proposals_chart, render_off_loop

    points = [ProposalPoint(i, p.title, p.benefit, p.cost_days, p.risk) for i, p in enumerate(ranked, start=1)]
    return await render_off_loop(proposals_chart, ProposalsInput(f"{m.title} #{m.id}", points))


class RitualService(RitualBase):
    def __init__(
        self, db: Database, clock: Clock, messenger: Messenger, meetings: MeetingService, outbox: Outbox | None = None
    ) -> None:
        super().__init__(db, clock, messenger, outbox)
        self.meetings = meetings
        self.proposals = ProposalService(db, clock, messenger)

    # --- the job entry point -------------------------------------------------------------------

    async def run_step(self, *, meeting_id: int, step: str, sequence: int) -> None:
        """Run one planned step; a step for a cancelled, decided or moved meeting does nothing, nor one of a
        workspace that uninstalled Phasegate."""
        if await self._uninstalled(meeting_id):
            log.info("skipped step %s of meeting %s: its workspace uninstalled Phasegate", step, meeting_id)
            return
        name, _, user = step.partition(":")
        if name in ("dm48", "dm24"):
            await self._dm(meeting_id, step, sequence, user)
        elif name == "mention2":
            await self._mention(meeting_id, step, sequence)
        elif name == "verdict":
            await self._verdict(meeting_id, sequence)
        elif name == "start":
            await self._agenda(meeting_id, sequence)
        elif name == "nudge":
            await self._nudge(meeting_id, sequence)
        else:
            log.error("unknown step %r for meeting %s", step, meeting_id)

    async def _uninstalled(self, meeting_id: int) -> bool:
        async with self.db.session() as s:
            gone = await s.execute(
                select(Workspace.uninstalled_at)
                .join(Project, col(Project.team_id) == col(Workspace.team_id))
                .join(Meeting, col(Meeting.project_id) == col(Project.id))
                .where(Meeting.id == meeting_id)
            )
            return gone.scalar_one_or_none() is not None

    async def _load(self, s: AsyncSession, meeting_id: int, sequence: int) -> _Due | None:
        meeting = await s.get(Meeting, meeting_id)
        if meeting is None or meeting.status not in OPEN_STATUSES or meeting.invite_sequence != sequence:
            return None
        project = await s.get(Project, meeting.project_id)
        assert project is not None
        return _Due(meeting, project, await view_of(s, meeting, project))

    async def _claim(self, s: AsyncSession, team_id: str, key: str) -> None:
        """Claim a step in this transaction; a second claim (restart, replica) fails at flush.

        The claim commits together with the step's outbox message(s), so a job that runs again (its process was
        killed mid-run, or two replicas led for a moment) enqueues once, and a message claimed is a message
        queued: the outbox sender delivers it after the commit, retrying until Slack accepts it.
        """
        s.add(SentMessage(team_id=team_id, key=key[:200], sent_at=self.clock.now()))
        await s.flush()

    async def _authors(self, s: AsyncSession, meeting_id: int) -> set[str]:
        rows = await s.execute(
            select(Proposal.author_user_id, Proposal.coauthors).where(Proposal.meeting_id == meeting_id)
        )
        return {u for author, co in rows.all() for u in (author, *(co or []))}

    async def _still_owing(self, s: AsyncSession, due: _Due, users: list[str]) -> list[str]:
        """Of `users`, who still owes: not an author or co-author, not away (declared or Slack status)."""
        now = self.clock.now()
        authored = await self._authors(s, due.view.id)
        hours = {h.user_id: h for h in await self.availabilities(s, due.project, users)}
        return [
            u
            for u in users
            if u not in authored and not hours[u].away_on(now) and not await self.slack_away(due.project.team_id, u)
        ]

    # --- the ladder --------------------------------------------------------------------------

    async def _dm(self, meeting_id: int, step: str, sequence: int, user: str) -> None:
        try:
            async with self.db.session() as s:
                due = await self._load(s, meeting_id, sequence)
                if due is None or user not in due.view.owing or not await self._still_owing(s, due, [user]):
                    return
                key = f"meeting:{meeting_id}:{step}:seq{sequence}"
                await self._claim(s, due.project.team_id, key)
                await self.outbox.enqueue(
                    s,
                    team_id=due.project.team_id,
                    project_id=due.project.id,
                    kind="dm",
                    target=user,
                    key=key,
                    not_after=due.view.deadline or due.view.starts_at,
                    notify_user_id=due.view.lead,
                    message=render_message(
                        "blocks/reminder_dm.json.j2",
                        text=f"Reminder: your proposal for {due.view.title} #{meeting_id} is due",
                        m=due.view,
                        user=user,
                        hours_left=max(int((due.view.deadline - self.clock.now()).total_seconds() // 3600), 0)
                        if due.view.deadline
                        else 0,
                        command=COMMAND,
                    ),
                )
        except IntegrityError:
            return
        await self.outbox.committed()

    async def _mention(self, meeting_id: int, step: str, sequence: int) -> None:
        try:
            async with self.db.session() as s:
                due = await self._load(s, meeting_id, sequence)
                if due is None:
                    return
                owing = await self._still_owing(s, due, list(due.view.owing))
                if not owing:
                    return
                key = f"meeting:{meeting_id}:{step}:seq{sequence}"
                await self._claim(s, due.project.team_id, key)
                await self.outbox.enqueue(
                    s,
                    team_id=due.project.team_id,
                    project_id=due.project.id,
                    kind="post",
                    target=due.view.channel_id,
                    key=key,
                    not_after=due.view.deadline or due.view.starts_at,
                    notify_user_id=due.view.lead,
                    message=render_message(
                        "blocks/reminder_mention.json.j2",
                        text=f"Proposals for {due.view.title} #{meeting_id} are due soon",
                        m=due.view,
                        owing=owing,
                        command=COMMAND,
                    ),
                )
        except IntegrityError:
            return
        await self.outbox.committed()

    # --- the verdict at the deadline ------------------------------------------------------------

    async def _verdict(self, meeting_id: int, sequence: int) -> None:
        try:
            async with self.db.session() as s:
                due = await self._load(s, meeting_id, sequence)
                if due is None or due.meeting.ready is not None:
                    return
                cands = await candidates(s, due.meeting)
                at = due.meeting.proposal_deadline or self.clock.now()
                result = await self.proposals.readiness_of(s, due.meeting, due.project, cands, at=at)
                await self._claim(s, due.project.team_id, f"meeting:{meeting_id}:verdict:seq{sequence}")
                due.meeting.ready = result.ready
                due.meeting.verdict = verdict_record(result)
                due.meeting.updated_at = self.clock.now()
                s.add(due.meeting)
                policy = due.project.readiness_policy
                can_postpone = due.meeting.postpone_count < due.project.max_postpones
                outcome = (
                    "ready" if result.ready else ("postpone" if policy == "postpone" and can_postpone else "escalate")
                )
                titles = {p.id: p.title for p in cands.ranked}
                team = due.project.team_id
                await self.outbox.enqueue(
                    s,
                    team_id=team,
                    project_id=due.project.id,
                    kind="post",
                    target=due.view.channel_id,
                    key=f"meeting:{meeting_id}:verdict:seq{sequence}",
                    notify_user_id=due.view.lead,
                    message=render_message(
                        "blocks/readiness_verdict.json.j2",
                        text=f"{due.view.title} #{meeting_id}: " + ("ready" if result.ready else "not ready"),
                        m=due.view,
                        r=result,
                        outcome=outcome,
                        titles=titles,
                        duplicates=cands.duplicates,
                        postpone_days=due.project.postpone_days,
                        policy=policy,
                    ),
                )
                if outcome == "escalate":
                    await self.outbox.enqueue(
                        s,
                        team_id=team,
                        project_id=due.project.id,
                        kind="dm",
                        target=due.view.lead,
                        key=f"meeting:{meeting_id}:escalation:seq{sequence}",
                        notify_user_id=due.view.lead,
                        message=render_message(
                            "blocks/escalation_dm.json.j2",
                            text=f"{due.view.title} #{meeting_id} is not ready: postpone, hold anyway or cancel?",
                            m=due.view,
                            r=result,
                            postpone_days=due.project.postpone_days,
                        ),
                    )
        except IntegrityError:
            return
        await self.outbox.committed()
        if outcome == "postpone":
            failed = "; ".join(f"{r.label.lower()} — no ({r.detail})" for r in result.failed)
            await self.meetings.postpone(
                actor=Actor(team, SYSTEM_USER),
                meeting_id=meeting_id,
                reason=f"the readiness check failed: {failed}",
                automatic=True,
            )

    async def escalation(self, *, actor: Actor, meeting_id: int, choice: Choice) -> MeetingView:
        """The lead's answer to a not-ready meeting: postpone, hold anyway (not ready, kept) or cancel."""
        if choice == "cancel":
            return await self.meetings.cancel(actor=actor, meeting_id=meeting_id)
        async with self.db.session() as s:
            meeting, project = await self.meeting_and_project(s, actor, meeting_id)
            await self.require_lead(s, actor, project, "answer a readiness escalation")
            if meeting.status not in OPEN_STATUSES:
                raise Conflict(f"Meeting #{meeting_id} is already {meeting.status}.")
            if meeting.ready is not False:
                raise Conflict(
                    f"Meeting #{meeting_id} is not waiting for an answer: its readiness check has not failed."
                )
            if choice == "hold":
                if meeting.status == "held":
                    raise Conflict(f"Meeting #{meeting_id} is already being held anyway.")
                meeting.status, meeting.hold_anyway_by, meeting.updated_at = "held", actor.user_id, self.clock.now()
                s.add(meeting)
                await self.audit(
                    s, actor=actor, action="meeting.hold_anyway", project_id=project.id, meeting=meeting_id
                )
                view = await view_of(s, meeting, project)
                await self.outbox.enqueue(
                    s,
                    team_id=actor.team_id,
                    project_id=project.id,
                    kind="post",
                    target=view.channel_id,
                    key=f"meeting:{meeting_id}:held_anyway:seq{meeting.invite_sequence}",
                    notify_user_id=view.lead,
                    message=render_message(
                        "blocks/meeting_held_anyway.json.j2",
                        text=f"{view.title} #{meeting_id} will be held anyway",
                        m=view,
                    ),
                )
        if choice == "postpone":
            scheduled = await self.meetings.postpone(
                actor=actor, meeting_id=meeting_id, reason="the lead postponed it after the readiness check failed"
            )
            return scheduled.meeting
        await self.outbox.committed()
        return view

    # --- the start and after the end --------------------------------------------------------------

    async def _agenda(self, meeting_id: int, sequence: int) -> None:
        try:
            async with self.db.session() as s:
                due = await self._load(s, meeting_id, sequence)
                if due is None:
                    return
                cands = await candidates(s, due.meeting)
                key = f"meeting:{meeting_id}:start:seq{sequence}"
                # Not ready, and the lead neither postponed, cancelled nor pressed "Hold anyway": the policy decides.
                unanswered = due.meeting.ready is False and due.meeting.hold_anyway_by is None
                # Drawn before the claim (a write): the chart takes tens of ms in a worker thread.
                drawn = cands.ranked and not unanswered
                chart = await proposals_chart_for(due.view, cands.ranked) if drawn else None
                await self._claim(s, due.project.team_id, key)
                postpone = unanswered and due.meeting.postpone_count < min(
                    UNANSWERED_POSTPONES, due.project.max_postpones
                )
                if not unanswered:
                    await self.outbox.enqueue(
                        s,
                        team_id=due.project.team_id,
                        project_id=due.project.id,
                        kind="post",
                        target=due.view.channel_id,
                        key=key,
                        thread_ts=due.meeting.channel_ts,
                        thread_of_meeting=meeting_id,  # the announcement's ts, if it is only known at send time
                        notify_user_id=due.view.lead,
                        message=self.agenda_message(due.view, cands.ranked, cands.duplicates, due.meeting.ready),
                    )
                    if chart is not None:  # the proposals at a glance, in the agenda's thread
                        await self.outbox.enqueue(
                            s,
                            team_id=due.project.team_id,
                            project_id=due.project.id,
                            kind="upload",
                            target=due.view.channel_id,
                            key=f"{key}:chart",
                            thread_ts=due.meeting.channel_ts,
                            thread_of_meeting=meeting_id,
                            notify_user_id=due.view.lead,
                            message=Message(text=slack_escape(chart.alt)),  # posted as the file's comment (mrkdwn)
                            filename=f"phasegate-meeting-{meeting_id}-proposals.png",
                            content=chart.png,
                            title=f"{due.view.title} #{meeting_id}: proposals, benefit against cost",
                        )
        except IntegrityError:
            return
        if unanswered:
            await self._unanswered_escalation(due, postpone=postpone)
            return
        await self.outbox.committed()

    async def _unanswered_escalation(self, due: _Due, *, postpone: bool) -> None:
        """Nobody answered the escalation by the start: postpone once, then cancel (said in the channel)."""
        system = Actor(due.project.team_id, SYSTEM_USER)
        assert due.view.id is not None
        if postpone:
            await self.meetings.postpone(
                actor=system,
                meeting_id=due.view.id,
                reason="the readiness check failed and nobody answered the escalation by the start "
                "(project policy: postpone once, then cancel)",
                automatic=True,
            )
            return
        text = (
            f"{due.view.title} #{due.view.id} was cancelled: it was still not ready at its start and nobody "
            "answered the escalation (project policy: postpone once, then cancel). The lead can schedule a new one "
            f"with `{COMMAND} meeting schedule …`, or next time press *Hold anyway* to hold an unready meeting."
        )
        await self.meetings.cancel(
            actor=system,
            meeting_id=due.view.id,
            automatic=True,
            note=Message(text=text, blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}]),
        )

    @staticmethod
    def agenda_message(
        m: MeetingView,
        ranked: Sequence[ProposalView],
        duplicates: dict[str, list[int]],
        ready: bool | None,
    ) -> Message:
        return render_message(
            "blocks/agenda.json.j2",
            text=f"{m.title} #{m.id} starts now: agenda",
            m=m,
            proposals=ranked,
            duplicates=duplicates,
            ready=ready,
            command=COMMAND,
        )

    async def _nudge(self, meeting_id: int, sequence: int) -> None:
        now = self.clock.now()
        next_at: datetime | None = None
        try:
            async with self.db.session() as s:
                due = await self._load(s, meeting_id, sequence)
                if due is None:  # cancelled, moved or decided meanwhile
                    return
                lead = (await self.availabilities(s, due.project, [due.view.lead]))[0]
                next_at = add_working_days(now, 1, lead.zone, lead.days)
                key = f"meeting:{meeting_id}:nudge:{lead.local(now).date().isoformat()}"
                await self._claim(s, due.project.team_id, key)
                await self.outbox.enqueue(
                    s,
                    team_id=due.project.team_id,
                    project_id=due.project.id,
                    kind="dm",
                    target=due.view.lead,
                    key=key,
                    not_after=next_at,  # tomorrow's nudge replaces it
                    notify_user_id=due.view.lead,
                    message=render_message(
                        "blocks/nudge_dm.json.j2",
                        text=f"{due.view.title} #{meeting_id} ended without a recorded decision",
                        m=due.view,
                        days=max((now - due.view.ends_at) // timedelta(days=1), 0),
                        command=COMMAND,
                    ),
                )
        except IntegrityError:
            # Today's nudge was already claimed: this run repeats one whose process died after the claim, maybe
            # before it planned tomorrow's. Plan it again (the same job, idempotent) so the daily chain goes on.
            if next_at is not None:
                await self.meetings.planner.replace_meeting_jobs(
                    meeting_id, sequence, [PlannedJob("nudge", next_at, NUDGE_GRACE)]
                )
            return
        # Daily until a decision or a cancellation: the job plans its own next run.
        await self.meetings.planner.replace_meeting_jobs(
            meeting_id, sequence, [PlannedJob("nudge", next_at, NUDGE_GRACE)]
        )
        await self.outbox.committed()
