"""Tasks: phase defaults, hand-added tasks, closing and reopening; every change queues a GitHub sync."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.db.models import OutboxItem, Project, Task
from bot.errors import InvalidInput, NotFound
from bot.process import PHASES, Phase, Role
from bot.services.base import Actor, ServiceBase

MAX_TITLE = 256


async def enqueue_sync(s: AsyncSession, *, project: Project, kind: str, ref: str, now: datetime) -> None:
    """Put GitHub work in the persistent outbox; one pending item per thing (re-queuing resets it)."""
    assert project.id is not None
    key = f"{project.id}:{kind}:{ref}"
    item = (await s.execute(select(OutboxItem).where(OutboxItem.dedupe_key == key))).scalar_one_or_none()
    if item is None:
        try:
            async with s.begin_nested():  # a concurrent request may insert the same key first: then reuse it
                s.add(
                    OutboxItem(
                        team_id=project.team_id,
                        project_id=project.id,
                        kind=kind,
                        ref=ref,
                        dedupe_key=key,
                        next_attempt_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                )
            return
        except IntegrityError:
            item = (await s.execute(select(OutboxItem).where(OutboxItem.dedupe_key == key))).scalar_one()
    if item.status == "done":
        # Pending or failing items already read the latest state when they run.
        item.status, item.attempts, item.next_attempt_at, item.updated_at = "pending", 0, now, now
        s.add(item)


async def _next_number(s: AsyncSession, project_id: int) -> int:
    """max+1 under the project's row lock, held until commit, so concurrent adds never share or skip a number.

    The lock is a no-op UPDATE of the project row: on PostgreSQL it waits for the other transaction's row lock
    (READ COMMITTED: the max() after it sees that transaction's task); on SQLite, as the transaction's first
    write, it takes the database's write lock (waiting up to busy_timeout), so no other writer commits in between.
    """
    await s.execute(
        update(Project)
        .where(col(Project.id) == project_id)
        .values(iteration=Project.iteration)
        .execution_options(synchronize_session=False)
    )
    current = (
        await s.execute(select(func.max(Task.number)).where(col(Task.project_id) == project_id))
    ).scalar_one_or_none()
    return int(current or 0) + 1


async def new_task(
    s: AsyncSession,
    *,
    project: Project,
    actor: Actor,
    now: datetime,
    title: str,
    phase: Phase,
    body: str = "",
    assignee: str | None = None,
    role: str | None = None,
    origin: str = "manual",
    decision_id: int | None = None,
) -> Task:
    """Insert a task and queue its GitHub issue (callers audit)."""
    assert project.id is not None
    task = Task(
        number=await _next_number(s, project.id),
        team_id=project.team_id,
        project_id=project.id,
        phase=phase.value,
        iteration=project.iteration,
        title=title,
        body=body,
        assignee_user_id=assignee,
        role=role,
        origin=origin,
        decision_id=decision_id,
        created_by=actor.user_id,
        created_at=now,
        updated_at=now,
    )
    s.add(task)
    await s.flush()
    await enqueue_sync(s, project=project, kind="issue", ref=task.id, now=now)
    return task


async def add_default_tasks(
    s: AsyncSession, *, project: Project, phase: Phase, actor: Actor, now: datetime
) -> list[Task]:
    """A phase's default tasks (e.g. Deployment's four parallel ones), created when the phase starts."""
    created = []
    for default in PHASES[phase].default_tasks:
        created.append(
            await new_task(
                s,
                project=project,
                actor=actor,
                now=now,
                title=default.title,
                body=default.body,
                phase=phase,
                role=default.role.value,
                origin="default",
            )
        )
    return created


class TaskService(ServiceBase):
    async def add(
        self,
        *,
        actor: Actor,
        project_id: int,
        title: str,
        assignee: str | None = None,
        phase: Phase | None = None,
        role: Role | None = None,
        body: str = "",
    ) -> Task:
        """Add a task by hand (any member); it lands in the current phase unless one is given."""
        title = " ".join(title.split())
        if not title:
            raise InvalidInput('A task needs a title: `/phasegate task add "Label 500 songs" @ana`.', field="title")
        if len(title) > MAX_TITLE:
            raise InvalidInput(f"The title is {len(title)} characters; GitHub allows {MAX_TITLE}.", field="title")
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            await self.require_member(s, actor, project, "add tasks")
            now = self.clock.now()
            task = await new_task(
                s,
                project=project,
                actor=actor,
                now=now,
                title=title,
                phase=phase or Phase(project.phase),
                body=body.strip(),
                assignee=assignee,
                role=role.value if role else None,
            )
            await self.audit(s, actor=actor, action="task.add", project_id=project_id, task=task.number, title=title)
            return task

    async def set_status(self, *, actor: Actor, project_id: int, number: int, status: str) -> Task:
        """Close or reopen a task by its number (any member)."""
        if status not in ("open", "closed"):
            raise InvalidInput("A task is either open or closed.")
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            await self.require_member(s, actor, project, "close or reopen tasks")
            task = (
                await s.execute(select(Task).where(Task.project_id == project_id, Task.number == number))
            ).scalar_one_or_none()
            if task is None:
                raise NotFound(f"There is no task {number} in {project.name}. `/phasegate status` lists them.")
            if task.status != status:
                task.status = status
                if status == "open":  # a superseded task reopened is an ordinary task again
                    task.superseded_at = task.superseded_by_record = task.superseded_note = None
                task.updated_at = self.clock.now()
                s.add(task)
                await enqueue_sync(s, project=project, kind="issue", ref=task.id, now=self.clock.now())
                await self.audit(s, actor=actor, action=f"task.{status}", project_id=project_id, task=number)
            return task

    async def list(self, *, actor: Actor, project_id: int, open_only: bool = False) -> list[Task]:
        async with self.db.session() as s:
            await self.project_by_id(s, actor, project_id)
            q = select(Task).where(Task.project_id == project_id)
            if open_only:
                q = q.where(Task.status == "open")
            return list((await s.execute(q.order_by(col(Task.number)))).scalars())
