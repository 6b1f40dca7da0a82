"""Gate artifacts: the brief and its success criteria, the baseline, the Deliver evaluation."""

from __future__ import annotations

import math

from sqlmodel import select

from bot.db.models import Baseline, Brief, Evaluation, SuccessCriterion
from bot.errors import InvalidInput
from bot.process import Role, parse_criterion, parse_reference
from bot.services.base import Actor, ServiceBase

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


class ArtifactService(ServiceBase):
    async def set_brief(
        self, *, actor: Actor, project_id: int, problem: str | None = None, criterion: str | None = None
    ) -> tuple[Brief, list[SuccessCriterion]]:
        """Write or change the problem statement and/or add a success criterion (any member).

        A changed problem statement needs a fresh acknowledgement from a business owner.
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
            if problem is not None and problem != brief.problem:
                brief.problem = problem
                brief.acknowledged_by = None
                brief.acknowledged_at = None
            brief.updated_by, brief.updated_at = actor.user_id, now
            s.add(brief)
            if parsed is not None:
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
            await self.audit(
                s,
                actor=actor,
                action="brief.update",
                project_id=project.id,
                problem=problem,
                criterion=str(parsed) if parsed else None,
            )
            await s.flush()
            criteria = list(
                (await s.execute(select(SuccessCriterion).where(SuccessCriterion.project_id == project_id))).scalars()
            )
            return brief, criteria

    async def acknowledge_brief(self, *, actor: Actor, project_id: int) -> Brief:
        """A business owner acknowledges the brief as it stands."""
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
                raise InvalidInput('There is no brief to acknowledge yet: `/phasegate brief problem="…"` first.')
            brief.acknowledged_by, brief.acknowledged_at = actor.user_id, self.clock.now()
            s.add(brief)
            await self.audit(s, actor=actor, action="brief.ack", project_id=project_id)
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
        self, *, actor: Actor, project_id: int, metric: str, value: str, check: str | None
    ) -> Evaluation:
        """Record a Deliver evaluation against the success criteria and its real-conditions check."""
        metric = metric.strip()
        if not metric:
            raise InvalidInput("Name the metric: metric=<name>.", field="metric")
        number = parse_number(value, "value")
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            await self.require_member(s, actor, project, "record an evaluation")
            row = Evaluation(
                team_id=actor.team_id,
                project_id=project_id,
                iteration=project.iteration,
                metric=metric[:200],
                value=number,
                real_check=(check or "").strip()[:2000],
                recorded_by=actor.user_id,
                recorded_at=self.clock.now(),
            )
            s.add(row)
            await self.audit(
                s, actor=actor, action="evaluation.record", project_id=project_id, metric=metric, value=number
            )
            return row
