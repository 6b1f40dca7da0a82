"""Gate artifacts: the brief and its success criteria, the baseline, the Deliver evaluation."""

from __future__ import annotations

import math

from sqlmodel import col, select

from bot.clock import Clock
from bot.db.models import Baseline, Brief, Evaluation, SuccessCriterion
from bot.db.session import Database
from bot.errors import InvalidInput
from bot.messaging import Messenger, RecordingMessenger
from bot.process import Criterion, Role, parse_criterion, parse_reference
from bot.rendering import Message, mention, slack_escape
from bot.services.base import Actor, Announce, ServiceBase, project_members

MAX_PROBLEM = 3000


def parse_number(raw: str, field: str) -> float:
    try:
        value = float(raw.strip().rstrip("%"))
    except (ValueError, AttributeError):
        raise InvalidInput(
            f"`{str(raw)[:40]}` is not a number: give {field}=<number>, e.g. 0.72.", field=field
        ) from None
    if not math.isfinite(value):
        raise InvalidInput(f"{field} must be a finite number.", field=field)
    return value


def check_url(raw: str, field: str) -> str:
    ref = parse_reference(raw)
    if ref is None or ref.kind != "url":
        raise InvalidInput(
            f"`{raw[:80]}` is not a link: give {field}=<https://…> (the repo, CI job or notebook that runs it).",
            field=field,
        )
    return ref.value


def _brief_change_message(
    project_name: str, actor: str, changes: list[tuple[str, str, str]], *, command: str
) -> Message:
    lines = [
        f"*{label}*: {slack_escape(before or '(none)')} → {slack_escape(after)}" for label, before, after in changes
    ]
    text = (
        f"The acknowledged brief of {slack_escape(project_name)} was changed by {mention(actor)}:\n"
        + "\n".join(lines)
        + f"\nIt needs a new acknowledgement from a business owner: `{command} brief ack`."
    )
    return Message(text=text, blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}])


class ArtifactService(ServiceBase):
    def __init__(self, db: Database, clock: Clock, messenger: Messenger | None = None) -> None:
        super().__init__(db, clock)
        self.messenger: Messenger = messenger or RecordingMessenger()

    async def set_brief(
        self, *, actor: Actor, project_id: int, problem: str | None = None, criterion: str | None = None
    ) -> tuple[Brief, list[SuccessCriterion]]:
        """Write or change the problem statement and/or add a success criterion (any member).

        A changed problem statement or a new criterion needs a fresh acknowledgement from a business owner;
        when the brief had been acknowledged, the change (before → after) is posted in the channel and sent to
        the business owners.
        """
        if problem is None and criterion is None:
            raise InvalidInput('Give problem="…" and/or criterion="…".')
        parsed = None
        if criterion is not None:
            parsed, error = parse_criterion(criterion)
            if error:
                raise InvalidInput(error, field="criterion")
        if problem is not None:
            problem = problem.strip()
            if not problem:
                raise InvalidInput(
                    'The problem statement is empty: problem="What we solve, for whom".', field="problem"
                )
            if len(problem) > MAX_PROBLEM:
                raise InvalidInput(f"The problem statement is too long (at most {MAX_PROBLEM}).", field="problem")
        now = self.clock.now()
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            await self.require_member(s, actor, project, "change the brief")
            brief = (await s.execute(select(Brief).where(Brief.project_id == project_id))).scalar_one_or_none()
            if brief is None:
                brief = Brief(team_id=actor.team_id, project_id=project_id, updated_by=actor.user_id, updated_at=now)
            was_acknowledged = bool(brief.acknowledged_by) or brief.changed_after_ack
            changes: list[tuple[str, str, str]] = []
            if problem is not None and problem != brief.problem:
                changes.append(("Problem", brief.problem, problem))
                brief.problem = problem
                brief.acknowledged_by = None
                brief.acknowledged_at = None
            brief.updated_by, brief.updated_at = actor.user_id, now
            s.add(brief)
            if parsed is not None:
                existing = list(
                    (
                        await s.execute(
                            select(SuccessCriterion)
                            .where(SuccessCriterion.project_id == project_id)
                            .order_by(col(SuccessCriterion.id))
                        )
                    ).scalars()
                )
                same = [c for c in existing if Criterion(c.metric, c.comparator, "", "").matches(parsed.metric)]
                before = "; ".join(str(Criterion(c.metric, c.comparator, c.target, c.real_check)) for c in same)
                for c in same:  # a criterion on the same metric replaces the old one
                    await s.delete(c)
                changes.append(("Success criterion", before, str(parsed)))
                s.add(
                    SuccessCriterion(
                        team_id=actor.team_id,
                        project_id=project_id,
                        metric=parsed.metric[:200],
                        comparator=parsed.comparator,
                        target=parsed.target[:200],
                        real_check=parsed.real_check[:500],
                        created_by=actor.user_id,
                        created_at=now,
                    )
                )
                brief.acknowledged_by = None
                brief.acknowledged_at = None
            notify = was_acknowledged and bool(changes)
            if notify:
                brief.changed_after_ack = True
            await self.audit(
                s,
                actor=actor,
                action="brief.update",
                project_id=project.id,
                problem=problem,
                criterion=str(parsed) if parsed else None,
                changed_after_ack=notify or None,
            )
            await s.flush()
            criteria = list(
                (
                    await s.execute(
                        select(SuccessCriterion)
                        .where(SuccessCriterion.project_id == project_id)
                        .order_by(col(SuccessCriterion.id))
                    )
                ).scalars()
            )
            owners = (
                sorted(u for u, r in (await project_members(s, project_id)).items() if Role.BUSINESS_OWNER.value in r)
                if notify
                else []
            )
            if notify:  # the channel and each business owner, queued with the change
                message = _brief_change_message(project.name, actor.user_id, changes, command=self.command)
                lead = project.lead_user_id
                await self.say(
                    s,
                    team_id=actor.team_id,
                    kind="post",
                    target=project.channel_id,
                    message=message,
                    topic=f"brief:{project_id}:changed",
                    project_id=project_id,
                    notify_user_id=lead,
                )
                for owner in owners:
                    await self.say(
                        s,
                        team_id=actor.team_id,
                        kind="dm",
                        target=owner,
                        message=message,
                        topic=f"brief:{project_id}:changed:{owner}",
                        project_id=project_id,
                        notify_user_id=lead,
                    )
        await self.said()
        return brief, criteria

    async def acknowledge_brief(
        self, *, actor: Actor, project_id: int, announce: Announce[Brief] | None = None
    ) -> Brief:
        """A business owner acknowledges the brief as it stands (`announce`: the channel post, queued with it)."""
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            if Role.BUSINESS_OWNER.value not in await self.roles_of(s, project, actor.user_id):
                raise await self.refuse(
                    s,
                    actor=actor,
                    project=project,
                    doing="acknowledge the brief",
                    message="Only a business owner can acknowledge the brief. The lead can give the role with "
                    f"`{self.command} role @person business-owner`.",
                )
            brief = (await s.execute(select(Brief).where(Brief.project_id == project_id))).scalar_one_or_none()
            if brief is None or not brief.problem:
                raise InvalidInput(f'There is no brief to acknowledge yet: `{self.command} brief problem="…"` first.')
            brief.acknowledged_by, brief.acknowledged_at = actor.user_id, self.clock.now()
            brief.changed_after_ack = False
            s.add(brief)
            await self.audit(s, actor=actor, action="brief.ack", project_id=project_id)
            if announce is not None:
                announce.row = await self.say(
                    s,
                    team_id=actor.team_id,
                    kind="post",
                    target=project.channel_id,
                    message=announce.render(brief),
                    topic=f"brief:{project_id}:ack",
                    project_id=project_id,
                    notify_user_id=project.lead_user_id,
                )
        await self.said()
        return brief

    async def record_baseline(
        self, *, actor: Actor, project_id: int, metric: str, value: str, pipeline: str | None
    ) -> Baseline:
        """Record a baseline result (metric = value) and the evaluation pipeline's link."""
        metric = metric.strip()
        if not metric:
            raise InvalidInput("Name the metric: metric=<name>, e.g. metric=f1.", field="metric")
        number = parse_number(value, "value")
        url = check_url(pipeline, "pipeline") if pipeline else None
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            await self.require_member(s, actor, project, "record a baseline")
            row = Baseline(
                team_id=actor.team_id,
                project_id=project_id,
                metric=metric[:200],
                value=number,
                pipeline_url=url,
                recorded_by=actor.user_id,
                recorded_at=self.clock.now(),
            )
            s.add(row)
            await self.audit(
                s, actor=actor, action="baseline.record", project_id=project_id, metric=metric, value=number, url=url
            )
            return row

    async def record_evaluation(
        self,
        *,
        actor: Actor,
        project_id: int,
        metric: str,
        value: str,
        check: str | None,
        evidence: str | None = None,
    ) -> Evaluation:
        """Record a Deliver result for one success criterion's metric, and the real-conditions check."""
        metric = metric.strip()
        if not metric:
            raise InvalidInput("Name the metric: metric=<name>.", field="metric")
        number = parse_number(value, "value")
        url = check_url(evidence, "evidence") if evidence else None
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            await self.require_member(s, actor, project, "record an evaluation")
            criteria = [
                Criterion(c.metric, c.comparator, c.target, c.real_check)
                for c in (
                    await s.execute(
                        select(SuccessCriterion)
                        .where(SuccessCriterion.project_id == project_id)
                        .order_by(col(SuccessCriterion.id))
                    )
                ).scalars()
            ]
            match = next((c for c in criteria if c.matches(metric)), None)
            if match is None:
                named = "; ".join(f'"{c.metric} {c.comparison}"' for c in criteria)
                raise InvalidInput(
                    f"`{metric[:80]}` is not a metric of the brief's success criteria"
                    + (
                        f" ({named}): give metric= one of them."
                        if criteria
                        else f' (none yet): add one with `{self.command} brief criterion="…"`.'
                    ),
                    field="metric",
                )
            row = Evaluation(
                team_id=actor.team_id,
                project_id=project_id,
                iteration=project.iteration,
                metric=match.metric[:200],
                value=number,
                real_check=(check or "").strip()[:2000],
                evidence_url=url,
                recorded_by=actor.user_id,
                recorded_at=self.clock.now(),
            )
            s.add(row)
            await self.audit(
                s,
                actor=actor,
                action="evaluation.record",
                project_id=project_id,
                metric=match.metric,
                value=number,
                met=match.met_by(number),
                evidence=url,
            )
            return row
