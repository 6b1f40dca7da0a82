"""Literature proposals: submit (validated, late ones marked), ranked candidates, readiness so far."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.db.models import Decision, Meeting, Project, Proposal
from bot.errors import Conflict, InvalidInput, NotAllowed, NotFound
from bot.process import (
    ProposalFacts,
    Readiness,
    Reference,
    approach_family,
    duplicate_references,
    parse_reference,
    rank_proposals,
    readiness,
    score,
    validate_proposal,
)
from bot.rendering import Message, mention, mrkdwn
from bot.services.base import Actor
from bot.services.meetings import (
    COMMAND,
    OPEN_STATUSES,
    MeetingView,
    RitualBase,
    attendee_rows,
    kind_of,
    view_of,
)


@dataclass(frozen=True)
class ProposalView:
    """A proposal as the agenda, the list and the decision record show it."""

    id: int
    title: str
    approach: str
    authors: tuple[str, ...]
    references: tuple[Reference, ...]
    why: str
    benefit: int
    cost_days: float
    risk: int
    compute: str
    late: bool
    score: float
    carried: bool  # a runner-up of the previous iteration's decision
    submitted_at: datetime
    pending: tuple[str, ...] = ()  # named co-authors who have not confirmed yet ("co-author pending")


@dataclass(frozen=True)
class Candidates:
    """A meeting's proposals (plus carried-over runner-ups), ranked, with references cited twice."""

    ranked: list[ProposalView]
    duplicates: dict[str, list[int]]  # reference (as shown) → proposal ids
    own_facts: list[ProposalFacts]


@dataclass(frozen=True)
class MeetingProposals:
    meeting: MeetingView
    candidates: Candidates
    readiness: Readiness | None  # None for meetings without proposals


@dataclass(frozen=True)
class Submitted:
    proposal: ProposalView
    meeting: MeetingView


def _references(p: Proposal) -> tuple[Reference, ...]:
    return tuple(r for r in (parse_reference(x) for x in p.references) if r is not None)


def facts(p: Proposal) -> ProposalFacts:
    """A stored proposal as readiness and ranking see it (impossible values count as not stated)."""
    assert p.id is not None
    return ProposalFacts(
        id=p.id,
        title=p.title,
        authors=frozenset([p.author_user_id, *(c for c in p.coauthors if c in p.confirmed_coauthors)]),
        author=p.author_user_id,
        pending=frozenset(c for c in p.coauthors if c not in p.confirmed_coauthors),
        approach=p.approach,
        reference_keys=tuple(r.key for r in _references(p)),
        benefit=p.benefit if 1 <= p.benefit <= 5 else None,
        cost_days=p.cost_days if p.cost_days > 0 else None,
        risk=p.risk if 1 <= p.risk <= 5 else None,
        late=p.late,
    )


def _view(p: Proposal, carried: bool) -> ProposalView:
    assert p.id is not None
    return ProposalView(
        id=p.id,
        title=p.title,
        approach=p.approach,
        authors=(p.author_user_id, *(c for c in p.coauthors if c in p.confirmed_coauthors)),
        references=_references(p),
        why=p.why,
        benefit=p.benefit,
        cost_days=p.cost_days,
        risk=p.risk,
        compute=p.compute,
        late=p.late,
        score=round(score(facts(p)), 2),
        carried=carried,
        submitted_at=p.submitted_at,
        pending=tuple(c for c in p.coauthors if c not in p.confirmed_coauthors),
    )


async def previous_runner_ups(s: AsyncSession, meeting: Meeting) -> list[int]:
    """Runner-ups (ranked) of the latest decision of an earlier iteration, when the project iterated."""
    if meeting.iteration == 0:
        return []
    row = (
        await s.execute(
            select(Decision.runner_up_ids)
            .join(Meeting, col(Meeting.id) == col(Decision.meeting_id))
            .where(Decision.project_id == meeting.project_id, Meeting.iteration < meeting.iteration)
            .order_by(col(Meeting.iteration).desc(), col(Decision.id).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return [int(i) for i in row or []]


async def candidates(s: AsyncSession, meeting: Meeting) -> Candidates:
    """What is on the table: the meeting's proposals and the last iteration's runner-ups, which lead."""
    own = list(
        (
            await s.execute(select(Proposal).where(Proposal.meeting_id == meeting.id).order_by(col(Proposal.id)))
        ).scalars()
    )
    first = [i for i in await previous_runner_ups(s, meeting) if i not in {p.id for p in own}]
    carried: list[Proposal] = []
    if first:
        by_id = {
            p.id: p
            for p in (await s.execute(select(Proposal).where(col(Proposal.id).in_(first)))).scalars()
            if p.project_id == meeting.project_id
        }
        carried = [by_id[i] for i in first if i in by_id]
    rows = {p.id: (p, False) for p in own} | {p.id: (p, True) for p in carried}
    ranked = rank_proposals([facts(p) for p in carried + own], first=first)
    views = [_view(*rows[f.id]) for f in ranked]
    shown = {r.key: r.value for v in views for r in v.references}
    dups = duplicate_references(facts(p) for p, _ in rows.values())
    return Candidates(views, {shown.get(k, k): ids for k, ids in dups.items()}, [facts(p) for p in own])


class ProposalService(RitualBase):
    async def readiness_of(
        self, s: AsyncSession, meeting: Meeting, project: Project, cands: Candidates, *, at: datetime
    ) -> Readiness:
        """The five rules over the meeting's own proposals; people away (declared or Slack status) are excused."""
        assert meeting.id is not None
        required = [r.user_id for r in await attendee_rows(s, meeting.id) if r.required and r.owes_proposal]
        hours = {h.user_id: h for h in await self.availabilities(s, project, required)}
        away = [u for u in required if hours[u].away_on(at) or await self.slack_away(project.team_id, u)]
        return readiness(required=required, away=away, proposals=cands.own_facts, min_proposals=project.min_proposals)

    async def open_meeting(self, s: AsyncSession, actor: Actor, project_id: int | None) -> Meeting:
        """The project's one meeting open for proposals (else say which ids to choose from)."""
        rows = await self.open_proposal_meetings(s, actor, project_id)
        if not rows:
            raise NotFound(
                "No meeting is open for proposals. The lead schedules one with "
                f"`{COMMAND} meeting schedule kind=model-decision …`.",
                field="meeting",
            )
        if len(rows) > 1:
            ids = ", ".join(f"#{m.id}" for m in rows)
            raise InvalidInput(
                f"Several meetings take proposals ({ids}): say which with meeting=<id>.", field="meeting"
            )
        return rows[0]

    async def submit(
        self,
        *,
        actor: Actor,
        project_id: int | None,
        meeting_id: int | None,
        fields: Mapping[str, str],
        coauthors: Sequence[str] = (),
    ) -> Submitted:
        """Submit a proposal (any project member or attendee); every bad field is named; late ones are marked."""
        valid, errors = validate_proposal(fields)
        problems = {e.field: e.message for e in errors}
        now = self.clock.now()
        async with self.db.session() as s:
            try:
                if meeting_id is None:
                    meeting = await self.open_meeting(s, actor, project_id)
                else:
                    meeting, _ = await self.meeting_and_project(s, actor, meeting_id)
            except (NotFound, InvalidInput) as exc:
                problems = {"meeting": exc.message, **problems}
                meeting = None
            if problems or valid is None or meeting is None:
                raise InvalidInput("The proposal was not saved: " + " ".join(problems.values()), fields=problems)
            project = await self.project_by_id(s, actor, meeting.project_id)
            assert meeting.id is not None and project.id is not None
            if not kind_of(meeting).proposals_required:
                raise InvalidInput(
                    f"Meeting #{meeting.id} is a {kind_of(meeting).title.lower()}: it takes no proposals.",
                    field="meeting",
                )
            if meeting.status not in OPEN_STATUSES:
                raise Conflict(f"Meeting #{meeting.id} is {meeting.status}: it takes no more proposals.")
            attendees = {r.user_id for r in await attendee_rows(s, meeting.id)}
            # Attendees who are not members may propose for this meeting only.
            if (
                actor.user_id not in attendees
                and not await self.is_member(s, actor, project)
                and not await self.is_admin(s, actor)
            ):
                raise await self.refuse(
                    s,
                    actor=actor,
                    project=project,
                    doing=f"propose for meeting #{meeting.id}",
                    message=f"Only members of {project.name} (or people invited to meeting #{meeting.id}) can "
                    f"propose. Ask the lead, {mention(project.lead_user_id)}, to add you "
                    f"(`{self.command} role @you <role>`), or ask to join with `{self.command} join {project.name}`.",
                )
            deadline = meeting.proposal_deadline
            named = [c for c in dict.fromkeys(coauthors) if c != actor.user_id]
            # One person's resubmission of the same proposal (same title) updates it instead of adding one.
            same = [
                p
                for p in (
                    await s.execute(
                        select(Proposal).where(
                            Proposal.meeting_id == meeting.id, Proposal.author_user_id == actor.user_id
                        )
                    )
                ).scalars()
                if approach_family(p.title) == approach_family(valid.title)
            ]
            proposal = (
                same[0]
                if same
                else Proposal(
                    team_id=project.team_id,
                    project_id=project.id,
                    meeting_id=meeting.id,
                    author_user_id=actor.user_id,
                    title=valid.title,
                    approach=valid.approach,
                    why=valid.why,
                    benefit=valid.benefit,
                    cost_days=valid.cost_days,
                    risk=valid.risk,
                    submitted_at=now,
                )
            )
            updated = bool(same)
            proposal.confirmed_coauthors = [c for c in proposal.confirmed_coauthors if c in named]
            asked = [c for c in named if c not in proposal.confirmed_coauthors and c not in proposal.coauthors]
            proposal.coauthors = named
            proposal.title, proposal.approach, proposal.why = valid.title, valid.approach, valid.why
            proposal.references = [r.value for r in valid.references]
            proposal.benefit, proposal.cost_days, proposal.risk = valid.benefit, valid.cost_days, valid.risk
            proposal.compute = valid.compute
            proposal.submitted_at = now
            proposal.late = deadline is not None and now > deadline
            s.add(proposal)
            await s.flush()
            await self.audit(
                s,
                actor=actor,
                action="proposal.update" if updated else "proposal.submit",
                project_id=project.id,
                meeting=meeting.id,
                proposal=proposal.id,
                late=proposal.late or None,
                coauthors=named or None,
            )
            assert proposal.id is not None
            for c in asked:  # the confirm buttons, queued with the proposal
                await self.outbox_for().enqueue(
                    s,
                    team_id=project.team_id,
                    project_id=project.id,
                    kind="dm",
                    target=c,
                    message=coauthor_request(proposal, actor.user_id, meeting.id),
                    key=f"proposal:{proposal.id}:coauthor:{c}:{now.isoformat()}",
                    notify_user_id=actor.user_id,
                )
            submitted = Submitted(_view(proposal, carried=False), await view_of(s, meeting, project))
        await self.outbox_for().committed()
        return submitted

    async def ranked(self, *, actor: Actor, project_id: int | None, meeting_id: int | None = None) -> MeetingProposals:
        """A meeting's proposals ranked (runner-ups of an iterate first) and its readiness so far."""
        async with self.db.session() as s:
            if meeting_id is None:
                meeting = await self.open_meeting(s, actor, project_id)
                project = await self.project_by_id(s, actor, meeting.project_id)
            else:
                meeting, project = await self.meeting_and_project(s, actor, meeting_id)
            cands = await candidates(s, meeting)
            ready = None
            if kind_of(meeting).proposals_required:
                ready = await self.readiness_of(s, meeting, project, cands, at=self.clock.now())
            return MeetingProposals(await view_of(s, meeting, project), cands, ready)

    async def consent(self, *, actor: Actor, proposal_id: int, confirm: bool) -> ProposalView:
        """A named co-author confirms (then the proposal counts for them) or declines (then they are removed)."""
        async with self.db.session() as s:
            proposal = await s.get(Proposal, proposal_id)
            if proposal is None or proposal.team_id != actor.team_id:
                raise NotFound(f"There is no proposal #{proposal_id} in this workspace.")
            if actor.user_id not in proposal.coauthors:
                raise NotAllowed(
                    f"Proposal #{proposal_id} does not name you as a co-author; only the people it names can confirm."
                )
            if confirm:
                proposal.confirmed_coauthors = sorted({*proposal.confirmed_coauthors, actor.user_id})
            else:
                proposal.coauthors = [c for c in proposal.coauthors if c != actor.user_id]
                proposal.confirmed_coauthors = [c for c in proposal.confirmed_coauthors if c != actor.user_id]
            s.add(proposal)
            await self.audit(
                s,
                actor=actor,
                action="proposal.coauthor-confirm" if confirm else "proposal.coauthor-decline",
                project_id=proposal.project_id,
                proposal=proposal.id,
            )
            return _view(proposal, carried=False)


def coauthor_request(p: Proposal, author: str, meeting_id: int) -> Message:
    """The DM asking a named co-author to confirm: until they do, the proposal does not count for them."""
    text = (
        f"{mention(author)} named you co-author of proposal #{p.id} *{mrkdwn(p.title, 150)}* for meeting #{meeting_id}. "
        "It counts as your proposal only once you confirm."
    )
    return Message(
        text=f"Confirm co-authoring proposal #{p.id}?",
        blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "phasegate:coauthor-confirm",
                        "text": {"type": "plain_text", "text": "Confirm"},
                        "style": "primary",
                        "value": str(p.id),
                    },
                    {
                        "type": "button",
                        "action_id": "phasegate:coauthor-decline",
                        "text": {"type": "plain_text", "text": "Decline"},
                        "value": str(p.id),
                    },
                ],
            },
        ],
    )
