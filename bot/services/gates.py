"""Phase gates: gather the facts, evaluate the gate, advance (or override with a kept reason)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.db.models import (
    Baseline,
    Brief,
    Decision,
    Evaluation,
    Meeting,
    PhaseRecord,
    PhaseTarget,
    Project,
    SuccessCriterion,
    Task,
    UTCDateTime,
)
from bot.errors import GateNotMet, InvalidInput
from bot.process import (
    Criterion,
    CriterionResult,
    GateFacts,
    GateResult,
    Outcome,
    Phase,
    evaluate_gate,
    next_phase,
)
from bot.services.base import Actor, Announce, ServiceBase
from bot.services.tasks import add_default_tasks, enqueue_sync

MAX_REASON = 2000


@dataclass(frozen=True)
class AdvanceResult:
    from_phase: Phase
    to_phase: Phase | None  # None: Deployment finished, the project is complete
    outcome: Outcome | None
    override_reason: str | None
    gate: GateResult
    new_tasks: list[Task]
    failed: tuple[str, ...] = ()  # iterate: the criteria missed or not evaluated, with their numbers
    superseded: tuple[int, ...] = ()  # iterate: numbers of the Deliver tasks closed as superseded
    kept: tuple[int, ...] = ()  # iterate with keep=tasks: the open Deliver tasks left open
    iteration: int = 0  # the project's iteration after the advance (0 = the first)


PID = sa.bindparam("pid", type_=sa.Integer())  # the project the prepared statements below are about
ITERATION = sa.bindparam("iteration", type_=sa.Integer())  # its current iteration


def project_id(i: int) -> sa.BindParameter[int]:
    """`pid<i>`: the i-th of the projects a statement of several projects is about."""
    return sa.bindparam(f"pid{i}", type_=sa.Integer())


def project_ids(projects: int) -> list[sa.BindParameter[int]]:
    """`pid0` …: one parameter per project (an expanding IN list would make SQLAlchemy re-render the statement's
    SQL on every execution)."""
    return [project_id(i) for i in range(projects)]


def project_params(ids: Iterable[int | None]) -> dict[str, Any]:
    """The `project_ids` parameters of these projects."""
    return {f"pid{i}": pid for i, pid in enumerate(ids)}


def gate_params(project: Project) -> dict[str, Any]:
    """The parameters of `gate_columns()` and `gate_rows()` for a project."""
    return {"pid": project.id, "iteration": project.iteration}


@cache
def gate_columns(per_project: bool = False) -> tuple[Any, ...]:
    """The gates' single-valued facts as labelled scalar subqueries (one SELECT without FROM gathers them all).
    Built once, with `pid` and `iteration` parameters (`gate_params`); `per_project`: correlated to the enclosing
    SELECT's `projects` row instead (its id and iteration), so one SELECT FROM projects gathers them per project."""
    pid, iteration = (col(Project.id), col(Project.iteration)) if per_project else (PID, ITERATION)
    latest_baseline = (
        sa.select(col(Baseline.id))
        .where(col(Baseline.project_id) == pid)
        .order_by(col(Baseline.id).desc())
        .limit(1)
        .correlate_except(Baseline)  # its own baselines, the outer `projects` (per_project)
    ).scalar_subquery()
    brief = col(Brief.project_id) == pid
    decisions = (
        sa.select(col(Decision.id))
        .join(Meeting, col(Meeting.id) == col(Decision.meeting_id))
        .where(col(Decision.project_id) == pid, col(Meeting.iteration) == iteration)
    )
    deployment = sa.and_(col(Task.project_id) == pid, col(Task.phase) == Phase.DEPLOYMENT.value)
    return (
        sa.select(col(Brief.problem)).where(brief).scalar_subquery().label("brief_problem"),
        sa.select(col(Brief.acknowledged_by)).where(brief).scalar_subquery().label("brief_ack"),
        sa.select(col(Brief.changed_after_ack)).where(brief).scalar_subquery().label("brief_changed"),
        sa.select(col(Baseline.metric))
        .where(col(Baseline.id) == latest_baseline)
        .scalar_subquery()
        .label("baseline_metric"),
        sa.select(col(Baseline.value))
        .where(col(Baseline.id) == latest_baseline)
        .scalar_subquery()
        .label("baseline_value"),
        sa.select(col(Baseline.pipeline_url))
        .where(col(Baseline.project_id) == pid, col(Baseline.pipeline_url).is_not(None))
        .order_by(col(Baseline.id).desc())
        .limit(1)
        .scalar_subquery()
        .label("pipeline_url"),
        decisions.exists().label("any_decision"),
        decisions.where(col(Decision.ready).is_(True)).exists().label("ready_decision"),
        sa.select(func.count()).where(deployment).scalar_subquery().label("deployment_total"),
        sa.select(func.count())
        .where(deployment, col(Task.status) == "open")
        .scalar_subquery()
        .label("deployment_open"),
    )


@cache
def gate_rows(projects: int = 0) -> tuple[Any, ...]:
    """The gates' lists (success criteria; this iteration's evaluations) as branches of one UNION ALL of the same
    columns: kind, id, a, b, c, d (text), value (a number), at (a time); more branches of that shape can join the
    UNION (the status report's members and undelivered messages). Built once, with `gate_params`; `projects`:
    for that many projects (`project_ids`, each at its own iteration), with their project's id as a last column,
    `pid`."""
    if projects:
        criteria: Any = col(SuccessCriterion.project_id).in_(project_ids(projects))
        current = sa.select(col(Project.iteration)).where(col(Project.id) == col(Evaluation.project_id))
        evaluations: Any = sa.and_(
            col(Evaluation.project_id).in_(project_ids(projects)),
            col(Evaluation.iteration) == current.scalar_subquery(),
        )
        pids: tuple[Any, ...] = (col(SuccessCriterion.project_id).label("pid"),)
        eval_pids: tuple[Any, ...] = (col(Evaluation.project_id),)
    else:
        criteria = col(SuccessCriterion.project_id) == PID
        evaluations = sa.and_(col(Evaluation.project_id) == PID, col(Evaluation.iteration) == ITERATION)
        pids = eval_pids = ()
    return (
        sa.select(
            sa.literal_column("'criterion'").label("kind"),
            col(SuccessCriterion.id).label("id"),
            col(SuccessCriterion.metric).label("a"),
            col(SuccessCriterion.comparator).label("b"),
            col(SuccessCriterion.target).label("c"),
            col(SuccessCriterion.real_check).label("d"),
            sa.cast(sa.null(), sa.Float()).label("value"),  # typed NULLs: PostgreSQL types a UNION by its first rows
            sa.cast(sa.null(), UTCDateTime()).label("at"),
            *pids,
        ).where(criteria),
        sa.select(
            sa.literal_column("'evaluation'"),
            col(Evaluation.id),
            col(Evaluation.metric),
            col(Evaluation.real_check),
            col(Evaluation.evidence_url),
            sa.cast(sa.null(), sa.String()),
            col(Evaluation.value),
            sa.null(),
            *eval_pids,
        ).where(evaluations),
    )


def facts_from(row: Any, rows: Iterable[Any]) -> GateFacts:
    """GateFacts from `gate_columns`' row and `gate_rows`' rows (any order)."""
    criteria_rows = sorted((r for r in rows if r.kind == "criterion"), key=lambda r: r.id)
    criteria = tuple(Criterion(r.a, r.b, r.c, r.d) for r in criteria_rows)
    evaluations = sorted((r for r in rows if r.kind == "evaluation"), key=lambda r: -r.id)
    evaluation = evaluations[0] if evaluations else None
    checked = next((e for e in evaluations if e.b), None)
    results = tuple(CriterionResult(c, next((e.value for e in evaluations if c.matches(e.a)), None)) for c in criteria)
    has_brief = row.brief_problem is not None
    return GateFacts(
        brief_problem=row.brief_problem or "",
        criteria=criteria,
        brief_acknowledged_by_business_owner=bool(has_brief and row.brief_ack),
        baseline=f"{row.baseline_metric} = {row.baseline_value:g}" if row.baseline_metric is not None else None,
        pipeline_url=row.pipeline_url,
        ready_decision=bool(row.ready_decision),
        any_decision=bool(row.any_decision),
        evaluation=f"{evaluation.a} = {evaluation.value:g}" if evaluation else None,
        real_check=(checked.b + (f" (evidence: {checked.c})" if checked.c else "")) if checked else None,
        criterion_results=results,
        brief_changed=bool(has_brief and row.brief_changed),
        deployment_tasks_total=int(row.deployment_total or 0),
        deployment_tasks_open=int(row.deployment_open or 0),
    )


@cache
def _facts() -> Any:
    return sa.select(*gate_columns())


@cache
def _lists() -> Any:
    return sa.union_all(*gate_rows())


async def gather_facts(s: AsyncSession, project: Project) -> GateFacts:
    """Everything the gates look at, in two queries whatever the project's size."""
    row = (await s.execute(_facts(), gate_params(project))).one()
    rows = (await s.execute(_lists(), gate_params(project))).all()
    return facts_from(row, rows)


async def current_record(s: AsyncSession, project: Project) -> PhaseRecord | None:
    return (
        await s.execute(
            select(PhaseRecord)
            .where(PhaseRecord.project_id == project.id, col(PhaseRecord.ended_at).is_(None))
            .order_by(col(PhaseRecord.id).desc())
            .limit(1)
        )
    ).scalar_one_or_none()


class GateService(ServiceBase):
    async def evaluate(self, *, actor: Actor, project_id: int) -> GateResult:
        """The current phase's gate: what is met and what is missing."""
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            return evaluate_gate(Phase(project.phase), await gather_facts(s, project))

    async def advance(
        self,
        *,
        actor: Actor,
        project_id: int,
        outcome: Outcome | None = None,
        override_reason: str | None = None,
        keep_tasks: bool = False,
        announce: Announce[AdvanceResult] | None = None,
    ) -> AdvanceResult:
        """Leave the current phase when its gate is met, or override it (lead only, reason required and kept);
        `announce`: the channel post, queued with the change. An iterate closes the iteration's open Deliver
        tasks as superseded (their issues: closed as not planned, with a comment) unless `keep_tasks`."""
        if override_reason is not None:
            override_reason = override_reason.strip()
            if not override_reason:
                raise InvalidInput(
                    'An override needs a reason that will be kept: advance override="why the gate can wait".',
                    field="override",
                )
            if len(override_reason) > MAX_REASON:
                raise InvalidInput(f"The override reason is too long (at most {MAX_REASON}).", field="override")
        now = self.clock.now()
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            await self.require_lead(s, actor, project, "advance the phase or override a gate")
            phase = Phase(project.phase)
            if phase is Phase.DELIVER and outcome is None:
                raise InvalidInput(
                    "Deliver ends with an outcome: `advance outcome=ship` (to Deployment) or "
                    "`advance outcome=iterate` (back to Develop, runner-up proposals first).",
                    field="outcome",
                )
            if phase is not Phase.DELIVER and outcome is not None:
                raise InvalidInput(
                    f"outcome= only applies when leaving Deliver; {project.name} is in {phase.label}.",
                    field="outcome",
                )
            if keep_tasks and outcome is not Outcome.ITERATE:
                raise InvalidInput(
                    "keep=tasks only applies to `advance outcome=iterate` (it keeps the open Deliver tasks open).",
                    field="keep",
                )
            record = await current_record(s, project)
            if phase is Phase.DEPLOYMENT and record is None:
                raise InvalidInput(f"{project.name} has finished Deployment: nothing left to advance.")
            gate = evaluate_gate(phase, await gather_facts(s, project))
            iterate = outcome is Outcome.ITERATE
            if iterate:  # going back to Develop is always allowed: it is what a missed criterion calls for
                override_reason = None
            if not gate.met and override_reason is None and not iterate:
                missing = [f"{i.label} — {i.todo}" for i in gate.missing]
                raise GateNotMet(
                    f"{phase.label} cannot end yet: {len(missing)} gate item(s) missing"
                    + (": " + "; ".join(i.label for i in gate.missing) + ". " if outcome is Outcome.SHIP else ". ")
                    + (
                        "Improve the model (`advance outcome=iterate`), or ship anyway with a kept reason "
                        '(lead only): `advance outcome=ship override="reason"`.'
                        if outcome is Outcome.SHIP
                        else 'Meet them, or (lead only) `advance override="reason"`.'
                    ),
                    missing=missing,
                )
            target = next_phase(phase, outcome)
            if record is not None:
                record.ended_at = now
                record.outcome = outcome.value if outcome else ("shipped" if target is None else None)
                record.artifacts = {"gate": [{"item": i.label, "met": i.met} for i in gate.items]}
                if not gate.met and not iterate:
                    record.override_reason, record.override_by, record.override_at = (
                        override_reason,
                        actor.user_id,
                        now,
                    )
                s.add(record)
            await enqueue_sync(s, project=project, kind="milestone", ref=phase.value, now=now)
            new_tasks: list[Task] = []
            superseded: list[Task] = []
            kept: list[Task] = []
            failed = tuple(i.label for i in gate.missing) if iterate else ()
            started: PhaseRecord | None = None
            if target is not None:
                left_iteration = project.iteration
                if outcome is Outcome.ITERATE:
                    project.iteration += 1
                project.phase = target.value
                s.add(project)
                started = PhaseRecord(
                    team_id=project.team_id,
                    project_id=project_id,
                    phase=target.value,
                    iteration=project.iteration,
                    started_at=now,
                )
                s.add(started)
                await s.flush()
                if iterate:
                    open_deliver = list(
                        (
                            await s.execute(
                                select(Task)
                                .where(
                                    Task.project_id == project_id,
                                    Task.phase == Phase.DELIVER.value,
                                    Task.iteration == left_iteration,
                                    Task.status == "open",
                                )
                                .order_by(col(Task.number))
                            )
                        ).scalars()
                    )
                    # Deliver's default tasks always go: entering Deliver again adds them anew.
                    kept = [t for t in open_deliver if t.origin != "default"] if keep_tasks else []
                    superseded = [t for t in open_deliver if t not in kept]
                    if superseded:
                        note = ("criteria not met: " + "; ".join(failed)) if failed else "the lead chose to iterate"
                        for task in superseded:
                            task.status, task.updated_at = "closed", now
                            task.superseded_at, task.superseded_by_record = now, started.id
                            task.superseded_note = note[:1000]
                            s.add(task)
                            await enqueue_sync(s, project=project, kind="issue", ref=task.id, now=now)
                await enqueue_sync(s, project=project, kind="milestone", ref=target.value, now=now)
                new_tasks = await add_default_tasks(s, project=project, phase=target, actor=actor, now=now)
            await self.audit(
                s,
                actor=actor,
                action="phase.override" if not gate.met and not iterate else "phase.advance",
                project_id=project_id,
                from_phase=phase.value,
                to_phase=target.value if target else "complete",
                outcome=outcome.value if outcome else None,
                reason=override_reason if not gate.met else None,
                missing=[i.label for i in gate.missing] or None,
                superseded=[t.number for t in superseded] or None,
                kept=[t.number for t in kept] or None,
            )
            reason_kept = override_reason if not gate.met else None
            result = AdvanceResult(
                phase,
                target,
                outcome,
                reason_kept,
                gate,
                new_tasks,
                failed,
                tuple(t.number for t in superseded),
                tuple(t.number for t in kept),
                project.iteration,
            )
            if announce is not None:
                announce.row = await self.say(
                    s,
                    team_id=project.team_id,
                    kind="post",
                    target=project.channel_id,
                    message=announce.render(result),
                    topic=f"project:{project_id}:advance",
                    project_id=project_id,
                    notify_user_id=project.lead_user_id,
                    # Its ts and permalink are kept on the new phase's record: superseded issues link to it.
                    ts_for=f"phase:{started.id}" if started is not None and iterate else None,
                )
        await self.said()
        return result

    async def plan(self, *, actor: Actor, project_id: int, phase: Phase, due: date) -> PhaseTarget:
        """`plan <phase> due=<date>` (lead only): the phase's target date; its GitHub milestone's due date follows."""
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            await self.require_lead(s, actor, project, "plan phase dates")
            now = self.clock.now()
            row = (
                await s.execute(
                    select(PhaseTarget).where(PhaseTarget.project_id == project_id, PhaseTarget.phase == phase.value)
                )
            ).scalar_one_or_none()
            if row is None:
                row = PhaseTarget(
                    team_id=project.team_id, project_id=project_id, phase=phase.value, due=due, set_by=actor.user_id
                )
                row.set_at = now
                s.add(row)
            else:
                row.due, row.set_by, row.set_at = due, actor.user_id, now
                s.add(row)
            await enqueue_sync(s, project=project, kind="milestone", ref=phase.value, now=now)
            await self.audit(
                s,
                actor=actor,
                action="phase.plan",
                project_id=project_id,
                phase=phase.value,
                due=due.isoformat(),
            )
            return row

    async def history(self, *, actor: Actor, project_id: int) -> list[PhaseRecord]:
        """Phase records, oldest first: when each started and ended, outcome, overrides (who, why)."""
        async with self.db.session() as s:
            await self.project_by_id(s, actor, project_id)
            rows = await s.execute(
                select(PhaseRecord).where(PhaseRecord.project_id == project_id).order_by(col(PhaseRecord.id))
            )
            return list(rows.scalars())
