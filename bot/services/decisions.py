"""Decisions: the chosen proposal, rationale, ranked runner-ups and the tasks they create (Deliver by default)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from bot.clock import Clock
from bot.db.models import Decision, DecisionRecordSettings, Meeting, Member, Project, Task
from bot.db.session import Database
from bot.errors import Conflict, InvalidInput
from bot.messaging import Messenger
from bot.process import Phase, Role
from bot.rendering import render_message, slack_escape
from bot.services.base import Actor, project_members
from bot.services.meetings import COMMAND, OPEN_STATUSES, MeetingService, MeetingView, RitualBase, kind_of, view_of
from bot.services.proposals import ProposalService, ProposalView, candidates
from bot.services.tasks import MAX_TITLE, enqueue_sync, new_task

MAX_RATIONALE = 3000


async def records_on(s: AsyncSession, project_id: int) -> bool:
    """Decision records in the repository are opt-in per project (off by default)."""
    row = await s.get(DecisionRecordSettings, project_id)
    return row is not None and row.enabled


MAX_TASKS = 20


@dataclass(frozen=True)
class TaskSpec:
    """A task as typed in a decision: `title @user phase=develop` (a name is resolved against the workspace)."""

    title: str
    assignee: str | None = None  # a Slack user id
    assignee_name: str | None = None  # `@raj` typed as text (e.g. in a modal)
    phase: Phase | None = None
    role: Role | None = None  # `role=data-engineer` typed anywhere in the line


@dataclass(frozen=True)
class DecisionRecord:
    decision: Decision
    meeting: MeetingView
    chosen: ProposalView
    runner_ups: list[ProposalView]
    tasks: list[Task]


class DecisionService(RitualBase):
    def __init__(self, db: Database, clock: Clock, messenger: Messenger, meetings: MeetingService) -> None:
        super().__init__(db, clock, messenger)
        self.meetings = meetings
        self.proposals = ProposalService(db, clock, messenger)

    async def awaiting(self, s: AsyncSession, actor: Actor, project_id: int | None) -> Meeting:
        """The project's one proposal meeting still waiting for a decision (else say which to choose)."""
        rows = await self.open_proposal_meetings(s, actor, project_id)
        if len(rows) != 1:
            ids = ", ".join(f"#{m.id}" for m in rows) or "none"
            raise InvalidInput(f"Say which meeting with meeting=<id> (waiting for a decision: {ids}).", field="meeting")
        return rows[0]

    async def _assignee(self, s: AsyncSession, project: Project, spec: TaskSpec) -> str | None:
        if spec.assignee or not spec.assignee_name:
            return spec.assignee
        name = spec.assignee_name.strip().lstrip("@")
        rows = (
            await s.execute(
                select(Member.user_id).where(
                    Member.team_id == project.team_id,
                    (func.lower(Member.display_name) == name.lower()) | (Member.user_id == name),
                )
            )
        ).all()
        if len(rows) != 1:
            raise InvalidInput(
                f"Who is `@{name[:40]}`? Mention them (<@…> in a command) or use their exact Slack display name.",
                field="tasks",
            )
        return str(rows[0][0])

    async def _refuse_before_start(self, s: AsyncSession, actor: Actor, project: Project, meeting: Meeting) -> None:
        """Decisions are taken at the meeting: say when it starts (in the person's zone) and how to bring it forward."""
        zone = (
            await s.execute(
                select(Member.timezone).where(Member.team_id == actor.team_id, Member.user_id == actor.user_id)
            )
        ).scalar_one_or_none() or project.timezone
        try:
            tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            tz, zone = ZoneInfo("UTC"), "UTC"
        local = meeting.starts_at.astimezone(tz)
        raise InvalidInput(
            f"{kind_of(meeting).title} #{meeting.id} starts {local:%a %d %b %Y %H:%M} ({zone}): the decision is "
            "taken at the meeting, from its start. If everyone is ready earlier, the lead can move it: "
            f"`{COMMAND} meeting move {meeting.id} at=<earlier time>`.",
            field="meeting",
        )

    async def decide(
        self,
        *,
        actor: Actor,
        project_id: int | None,
        meeting_id: int | None,
        proposal_id: int,
        rationale: str,
        tasks: Sequence[TaskSpec] = (),
    ) -> DecisionRecord:
        """Record a decision (lead or admin): runner-ups ranked, tasks created and queued for GitHub, posted."""
        rationale = rationale.strip()
        problems: dict[str, str] = {}
        if not rationale:
            problems["rationale"] = "Give the rationale: why this proposal, and why not the runner-ups."
        elif len(rationale) > MAX_RATIONALE:
            problems["rationale"] = f"The rationale is too long ({len(rationale)} characters; at most {MAX_RATIONALE})."
        if len(tasks) > MAX_TASKS:
            problems["tasks"] = f"At most {MAX_TASKS} tasks per decision; add more with `task add`."
        bad = [t.title[:40] for t in tasks if not t.title.strip() or len(t.title) > MAX_TITLE]
        if bad and "tasks" not in problems:
            problems["tasks"] = f"Each task needs a title of 1–{MAX_TITLE} characters: `title @user; title @user`."
        if problems:
            raise InvalidInput("The decision was not recorded: " + " ".join(problems.values()), fields=problems)
        now = self.clock.now()
        async with self.db.session() as s:
            if meeting_id is None:
                meeting = await self.awaiting(s, actor, project_id)
                project = await self.project_by_id(s, actor, meeting.project_id)
            else:
                meeting, project = await self.meeting_and_project(s, actor, meeting_id)
            assert meeting.id is not None and project.id is not None
            await self.require_lead(s, actor, project, "record decisions")
            if not kind_of(meeting).proposals_required:
                raise InvalidInput(
                    f"Meeting #{meeting.id} is a {kind_of(meeting).title.lower()}; decisions are taken at "
                    "model-decision meetings.",
                    field="meeting",
                )
            if meeting.status == "decided":
                raise Conflict(f"Meeting #{meeting.id} already has a decision.")
            if meeting.status not in OPEN_STATUSES:
                raise Conflict(f"Meeting #{meeting.id} is {meeting.status}.")
            if now < meeting.starts_at:
                await self._refuse_before_start(s, actor, project, meeting)
            cands = await candidates(s, meeting)
            chosen = next((p for p in cands.ranked if p.id == proposal_id), None)
            if chosen is None:
                listed = ", ".join(f"#{p.id} {p.title[:40]}" for p in cands.ranked) or "none yet"
                raise InvalidInput(
                    f"Proposal #{proposal_id} is not on meeting #{meeting.id}'s table (proposals: {listed}).",
                    field="proposal",
                )
            if meeting.hold_anyway_by:
                ready = False
            elif meeting.ready is not None:
                ready = meeting.ready
            else:  # decided before the deadline: judge readiness as it stands
                ready = (await self.proposals.readiness_of(s, meeting, project, cands, at=now)).ready
            # Runner-ups by score (the agenda leads with the last iteration's, the record ranks them all).
            runner_ups = sorted((p for p in cands.ranked if p.id != chosen.id), key=lambda p: -p.score)
            decision = Decision(
                team_id=project.team_id,
                project_id=project.id,
                meeting_id=meeting.id,
                proposal_id=chosen.id,
                rationale=rationale,
                runner_up_ids=[p.id for p in runner_ups],
                ready=ready,
                decided_by=actor.user_id,
                decided_at=now,
            )
            s.add(decision)
            await s.flush()
            assert decision.id is not None
            roles = await project_members(s, project.id)
            created: list[Task] = []
            for spec in tasks:
                assignee = await self._assignee(s, project, spec)
                theirs = sorted(roles.get(assignee or "", set()) - {Role.LEAD.value})
                created.append(
                    await new_task(
                        s,
                        project=project,
                        actor=actor,
                        now=now,
                        title=" ".join(spec.title.split()),
                        phase=spec.phase or Phase.DELIVER,
                        body=f"From decision #{decision.id} ({kind_of(meeting).title} #{meeting.id}): "
                        f"{chosen.title} — {chosen.approach}.\n\nRationale: {rationale}"[:5000],
                        assignee=assignee,
                        role=spec.role.value if spec.role else (theirs[0] if len(theirs) == 1 else None),
                        origin="decision",
                        decision_id=decision.id,
                    )
                )
            if project.repo and await records_on(s, project.id):  # `settings decision_records=on`
                await enqueue_sync(s, project=project, kind="decision_record", ref=str(decision.id), now=now)
            meeting.status, meeting.updated_at = "decided", now
            s.add(meeting)
            await self.audit(
                s,
                actor=actor,
                action="decision.record",
                project_id=project.id,
                meeting=meeting.id,
                decision=decision.id,
                proposal=chosen.id,
                ready=ready,
                tasks=[t.number for t in created] or None,
            )
            view = await view_of(s, meeting, project)
            # The record commits with the decision; the sender posts it and stores its ts on the decision.
            await self.outbox_for().enqueue(
                s,
                team_id=actor.team_id,
                project_id=project.id,
                kind="post",
                target=view.channel_id,
                message=render_message(
                    "blocks/decision_record.json.j2",
                    text=f"Decision at {view.title} #{view.id}: {slack_escape(chosen.title)}",
                    m=view,
                    d=decision,
                    chosen=chosen,
                    runner_ups=runner_ups,
                    tasks=created,
                    command=COMMAND,
                ),
                key=f"decision:{decision.id}:record",
                ts_for=f"decision:{decision.id}",
                notify_user_id=project.lead_user_id,
            )
        await self.outbox_for().committed()
        await self.meetings.planner.remove_meeting_jobs(view.id)
        return DecisionRecord(decision, view, chosen, runner_ups, created)

    async def choices(self, *, actor: Actor, meeting_id: int) -> tuple[MeetingView, list[ProposalView]]:
        """A meeting and its ranked candidates (for the decide form's proposal picker)."""
        async with self.db.session() as s:
            meeting, project = await self.meeting_and_project(s, actor, meeting_id)
            return await view_of(s, meeting, project), (await candidates(s, meeting)).ranked


async def configure_records(
    service: DecisionService, *, actor: Actor, project_id: int, enabled: bool | None, path: str | None
) -> DecisionRecordSettings:
    """`settings decision_records=on|off path=<folder>` (lead or admin); off by default."""
    from bot.sync.records import DEFAULT_PATH, check_path

    folder = check_path(path) if path is not None else None
    if path is not None and folder is None:
        raise InvalidInput(
            f"`{path[:60]}` is not a folder for decision records: give a folder of up to three plain names, "
            "e.g. path=docs/decisions.",
            field="path",
        )
    async with service.db.session() as s:
        project = await service.project_by_id(s, actor, project_id)
        await service.require_lead(s, actor, project, "change project settings")
        row = await s.get(DecisionRecordSettings, project_id)
        if row is None:
            row = DecisionRecordSettings(project_id=project_id, team_id=project.team_id, path=DEFAULT_PATH)
        if enabled is not None:
            row.enabled = enabled
        if folder is not None:
            row.path = folder
        row.updated_by, row.updated_at = actor.user_id, service.clock.now()
        s.add(row)
        await service.audit(
            s, actor=actor, action="project.decision_records", project_id=project_id, on=row.enabled, path=row.path
        )
        return row


async def records_settings(service: DecisionService, *, actor: Actor, project_id: int) -> DecisionRecordSettings:
    """The project's decision-record settings (off, docs/decisions when never set)."""
    from bot.sync.records import DEFAULT_PATH

    async with service.db.session() as s:
        project = await service.project_by_id(s, actor, project_id)
        row = await s.get(DecisionRecordSettings, project_id)
        return row or DecisionRecordSettings(project_id=project_id, team_id=project.team_id, path=DEFAULT_PATH)
