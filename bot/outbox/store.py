"""Enqueue messages in the caller's session; deliver due rows through the Messenger; retry, drop or report."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from bot.clock import Clock
from bot.db.models import AuditEntry, Decision, Meeting, OutboxMessage, PhaseRecord, Project, Task
from bot.db.session import Database
from bot.messaging import Messenger
from bot.outbox.errors import DeliveryError, classify
from bot.rendering import DEFAULT_COMMAND, Message, with_command
from bot.waits import cancel_and_wait, wait_event

log = logging.getLogger(__name__)

BASE_DELAY = 2.0  # seconds before the first retry; doubles each attempt
MAX_DELAY = 300.0  # never wait longer than this between tries
MAX_RETRY_AFTER = 900.0  # a Retry-After beyond this is capped
SYSTEM = "phasegate"
UNDELIVERED_SHOWN = 200  # undelivered messages listed per project (status, App Home)


def backoff(attempts: int, *, retry_after: float | None = None, rng: random.Random | None = None) -> float:
    """Seconds until the next try after `attempts` failures: Retry-After when Slack gave one, else exponential
    (2, 4, 8 … capped at 300 s) with ±25 % jitter so replicas and channels do not retry in step."""
    if retry_after is not None and retry_after > 0:
        return min(retry_after, MAX_RETRY_AFTER)
    delay = min(BASE_DELAY * (2 ** max(attempts - 1, 0)), MAX_DELAY)
    jitter: float = (rng or random.Random()).random()
    return float(delay * (0.75 + 0.5 * jitter))


@dataclass(frozen=True)
class Problem:
    """A message Slack refused for good, as the lead sees it."""

    id: int
    kind: str
    target: str
    code: str
    fix: str
    at: datetime

    def line(self) -> str:
        where = f"<#{self.target}>" if self.kind in ("post", "upload", "update") else f"<@{self.target}>"
        return f"to {where} ({self.code}) — fix: {self.fix}"


class Outbox:
    """Write with `enqueue(s, ...)` inside the change's transaction, then call `committed()` after the commit.

    `inline=True` (tests, the shell, the demo, one-off CLI commands): `committed()` delivers at once, so output
    keeps its order. `inline=False` (the server): `committed()` wakes the leader's OutboxSender."""

    def __init__(self, db: Database, clock: Clock, messenger: Messenger, *, inline: bool = True) -> None:
        self.db, self.clock, self.messenger = db, clock, messenger
        self.inline = inline
        self.concurrency = 8  # Slack calls in flight at once (server mode; inline delivers one by one, in order)
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.rng = random.Random()
        self._failing = False  # a transient failure since the last success: on the next success, retry the rest
        self.sending = False  # an OutboxSender runs in this process (this replica leads)
        self.command = DEFAULT_COMMAND  # the configured slash command: every queued hint names it

    # --- writing -------------------------------------------------------------------------------

    async def enqueue(
        self,
        s: AsyncSession,
        *,
        team_id: str,
        kind: str,
        target: str,
        message: Message,
        key: str,
        project_id: int | None = None,
        thread_ts: str | None = None,
        thread_of_meeting: int | None = None,
        thread_of_key: str | None = None,
        update_ts: str | None = None,
        filename: str | None = None,
        content: bytes | None = None,
        title: str | None = None,
        not_after: datetime | None = None,
        notify_user_id: str | None = None,
        ts_for: str | None = None,
    ) -> OutboxMessage:
        """Add one message to the outbox in `s`; a second row with the same key fails the flush (IntegrityError),
        so a job that runs again (restart, two leaders for a moment) enqueues once."""
        now = self.clock.now()
        message = with_command(message, self.command)
        row = OutboxMessage(
            team_id=team_id,
            project_id=project_id,
            kind=kind,
            target=target,
            text=message.text,
            blocks=list(message.blocks or []),
            content=content,
            filename=filename,
            title=title,
            thread_ts=thread_ts,
            thread_of_meeting=thread_of_meeting,
            thread_of_key=thread_of_key[:200] if thread_of_key else None,
            update_ts=update_ts,
            dedupe_key=key[:200],
            notify_user_id=notify_user_id,
            ts_for=ts_for,
            created_at=now,
            not_after=not_after,
            next_attempt_at=now,
        )
        s.add(row)
        await s.flush()
        return row

    async def send(self, **fields: Any) -> None:
        """Enqueue in a transaction of its own, then deliver (for messages not tied to a state change)."""
        async with self.db.session() as s:
            await self.enqueue(s, **fields)
        await self.committed()

    async def committed(self) -> None:
        """The transaction that enqueued has committed: deliver now (inline) or wake the sender."""
        if self.inline:
            await self.drain()
        else:
            self._wake.set()

    async def settle(self, row_ids: list[int], *, within: float = 2.0) -> dict[int, tuple[str, str | None]]:
        """Each row's (status, last error), waiting up to `within` s (real time) while the sender works on them.

        Inline, `committed()` has already tried them; on a replica that does not lead, no sender here will: no
        wait in either case. For the invoker's answer (e.g. "invite me")."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (within if self.sending and not self.inline else 0.0)
        while True:
            async with self.db.session() as s:
                rows = (
                    await s.execute(
                        select(OutboxMessage.id, OutboxMessage.status, OutboxMessage.last_error).where(
                            col(OutboxMessage.id).in_(row_ids)
                        )
                    )
                ).all()
            found = {int(i): (str(st), err) for i, st, err in rows}
            if all(v[0] != "pending" for v in found.values()) or loop.time() >= deadline:
                return found
            await asyncio.sleep(0.02)

    async def wait_for_wake(self, seconds: float) -> None:
        await wait_event(self._wake, seconds)
        self._wake.clear()

    # --- delivering ----------------------------------------------------------------------------

    async def next_due(self) -> datetime | None:
        async with self.db.session() as s:
            return (
                await s.execute(
                    select(func.min(OutboxMessage.next_attempt_at)).where(OutboxMessage.status == "pending")
                )
            ).scalar_one_or_none()

    async def drain(self, *, limit: int | None = None) -> int:
        """Deliver every due message (oldest first); returns how many Slack accepted."""
        delivered = 0
        async with self._lock:
            while limit is None or delivered < limit:
                async with self.db.session() as s:
                    q = (
                        select(OutboxMessage.id)
                        .where(
                            OutboxMessage.status == "pending", col(OutboxMessage.next_attempt_at) <= self.clock.now()
                        )
                        .order_by(col(OutboxMessage.id))
                        .limit(100)
                    )
                    ids = list((await s.execute(q)).scalars())
                if not ids:
                    break
                if self.inline or self.concurrency <= 1:  # in order (the shell, tests)
                    outcomes = [await self._deliver_one(row_id) for row_id in ids]
                else:
                    gate = asyncio.Semaphore(self.concurrency)
                    outcomes = list(await asyncio.gather(*(self._gated(gate, i) for i in ids)))
                delivered += outcomes.count("sent")
                progressed = any(o not in ("retry", "wait") for o in outcomes)
                if not progressed:  # everything due is waiting for its retry
                    break
        return delivered

    async def _gated(self, gate: asyncio.Semaphore, row_id: int) -> str:
        async with gate:
            return await self._deliver_one(row_id)

    async def _deliver_one(self, row_id: int) -> str:
        now = self.clock.now()
        async with self.db.session() as s:
            row = await s.get(OutboxMessage, row_id)
            if row is None or row.status != "pending":
                return "skip"
            if row.not_after is not None and now > row.not_after:
                row.status, row.done_at, row.last_error = "dropped", now, "stale"
                s.add(row)
                s.add(
                    AuditEntry(
                        team_id=row.team_id,
                        project_id=row.project_id,
                        actor=SYSTEM,
                        action="outbox.dropped",
                        detail={
                            "key": row.dedupe_key,
                            "reason": f"not sent by {row.not_after.isoformat()}: no longer useful",
                            "created_at": row.created_at.isoformat(),
                        },
                        at=now,
                    )
                )
                return "dropped"
            thread_ts, update_ts = row.thread_ts, row.update_ts
            if row.kind == "update":  # replacements of one message apply in the order they were written
                earlier = await self._earlier_update_pending(s, row)
                if earlier is not None:
                    row.next_attempt_at = max(earlier, now)
                    s.add(row)
                    return "wait"
            if row.thread_of_meeting is not None and (thread_ts is None if row.kind != "update" else update_ts is None):
                meeting = await s.get(Meeting, row.thread_of_meeting)
                announced = meeting.channel_ts if meeting is not None else None
                if announced is None:
                    waiting = await self._announcement_pending(s, row)
                    if waiting is not None:  # its thread's parent is not posted yet: after it, not beside it
                        row.next_attempt_at = max(waiting, now)
                        s.add(row)
                        return "wait"
                    if row.kind == "update":  # the announcement it would replace was never posted
                        row.status, row.done_at, row.last_error = "dropped", now, "nothing to update"
                        s.add(row)
                        return "dropped"
                if row.kind == "update":
                    update_ts = announced
                else:
                    thread_ts = announced
            if row.thread_of_key is not None and thread_ts is None and row.kind != "update":
                parent = (
                    await s.execute(
                        select(OutboxMessage.status, OutboxMessage.sent_ts, OutboxMessage.next_attempt_at).where(
                            OutboxMessage.team_id == row.team_id, OutboxMessage.dedupe_key == row.thread_of_key
                        )
                    )
                ).first()
                if parent is not None and parent.status == "pending":  # after its parent, in its thread
                    row.next_attempt_at = max(parent.next_attempt_at, now)
                    s.add(row)
                    return "wait"
                if parent is not None and parent.status == "sent":
                    thread_ts = parent.sent_ts
                # refused, dropped or never written: it goes to the channel itself
            snapshot = _Snapshot(row, thread_ts, update_ts)
        try:
            ts = await self._send(snapshot)
        except Exception as exc:  # classified below: every failure is recorded on the row
            err = classify(exc)
            return await self._failed(row_id, err)
        link = await self._permalink(snapshot, ts) if ts and snapshot.ts_for else None
        async with self.db.session() as s:
            row = await s.get(OutboxMessage, row_id)
            if row is not None:
                row.status, row.sent_ts, row.done_at, row.attempts = "sent", ts, self.clock.now(), row.attempts + 1
                row.last_error = None
                s.add(row)
                if ts and row.ts_for:
                    await _record_ts(s, row.ts_for, ts, link, self.clock.now())
            if self._failing:  # Slack answers again: what waits for a retry need not wait out its backoff
                self._failing = False
                await s.execute(
                    update(OutboxMessage)
                    .where(
                        col(OutboxMessage.status) == "pending",
                        col(OutboxMessage.attempts) > 0,
                        col(OutboxMessage.next_attempt_at) > self.clock.now(),
                        col(OutboxMessage.last_error) != "ratelimited",
                    )
                    .values(next_attempt_at=self.clock.now())
                )
        return "sent"

    @staticmethod
    async def _announcement_pending(s: AsyncSession, row: OutboxMessage) -> datetime | None:
        """When the still-pending announcement of `row`'s meeting is next tried (None: there is none pending)."""
        due: datetime | None = (
            await s.execute(
                select(func.min(OutboxMessage.next_attempt_at)).where(
                    OutboxMessage.team_id == row.team_id,
                    OutboxMessage.ts_for == f"meeting:{row.thread_of_meeting}",
                    OutboxMessage.status == "pending",
                    col(OutboxMessage.id) < (row.id or 0),
                )
            )
        ).scalar_one_or_none()
        return due

    @staticmethod
    async def _earlier_update_pending(s: AsyncSession, row: OutboxMessage) -> datetime | None:
        """When an earlier, still-pending update of the same message is next tried (None: there is none)."""
        same = (
            OutboxMessage.thread_of_meeting == row.thread_of_meeting
            if row.thread_of_meeting is not None
            else OutboxMessage.update_ts == row.update_ts
        )
        due: datetime | None = (
            await s.execute(
                select(func.min(OutboxMessage.next_attempt_at)).where(
                    OutboxMessage.team_id == row.team_id,
                    OutboxMessage.kind == "update",
                    OutboxMessage.target == row.target,
                    OutboxMessage.status == "pending",
                    col(OutboxMessage.id) < (row.id or 0),
                    same,
                )
            )
        ).scalar_one_or_none()
        return due

    async def _permalink(self, m: _Snapshot, ts: str) -> str | None:
        """A decision's or an iterate's announcement: ask Slack for its permalink (GitHub issues link to it).
        Slack refusing is not a failed delivery: the issue then links to the channel."""
        if m.kind != "post" or not (m.ts_for or "").startswith(("decision:", "phase:")):
            return None
        ask = getattr(self.messenger, "permalink", None)
        if ask is None:
            return None
        try:
            link = await ask(team_id=m.team_id, channel_id=m.target, ts=ts)
        except Exception:  # a permalink is a nicety: never let it fail the message Slack already accepted
            log.warning("no permalink for %s in %s", ts, m.target, exc_info=True)
            return None
        return str(link)[:500] if link else None

    async def _send(self, m: _Snapshot) -> str | None:
        messenger = _strict(self.messenger)
        message = Message(text=m.text, blocks=m.blocks)
        if m.kind == "post":
            return await messenger.post(team_id=m.team_id, channel_id=m.target, message=message, thread_ts=m.thread_ts)
        if m.kind == "dm":
            return await messenger.dm(team_id=m.team_id, user_id=m.target, message=message)
        if m.kind == "update":
            assert m.update_ts is not None
            await messenger.update(team_id=m.team_id, channel_id=m.target, ts=m.update_ts, message=message)
            return m.update_ts
        if m.kind == "upload":
            await messenger.upload(
                team_id=m.team_id,
                channel_id=m.target,
                filename=m.filename or "file",
                content=m.content or b"",
                title=m.title or m.filename or "file",
                comment=m.text,
                thread_ts=m.thread_ts,
            )
            return None
        raise DeliveryError(f"unknown kind {m.kind}", permanent=True)

    async def _failed(self, row_id: int, err: DeliveryError) -> str:
        now = self.clock.now()
        async with self.db.session() as s:
            row = await s.get(OutboxMessage, row_id)
            if row is None:
                return "skip"
            row.attempts += 1
            row.last_error = err.code[:200]
            if not err.permanent:
                self._failing = True
                row.next_attempt_at = now + timedelta(
                    seconds=backoff(row.attempts, retry_after=err.retry_after, rng=self.rng)
                )
                s.add(row)
                log.info(
                    "outbox %s: %s (try %d), retrying at %s",
                    row.dedupe_key,
                    err.code,
                    row.attempts,
                    row.next_attempt_at,
                )
                return "retry"
            row.status, row.done_at = "failed", now
            s.add(row)
            log.warning("outbox %s refused by Slack: %s", row.dedupe_key, err.code)
            s.add(
                AuditEntry(
                    team_id=row.team_id,
                    project_id=row.project_id,
                    actor=SYSTEM,
                    action="outbox.failed",
                    detail={"key": row.dedupe_key, "error": err.code, "target": row.target},
                    at=now,
                )
            )
            lead = row.notify_user_id
            if lead and not row.dedupe_key.startswith("problem:") and not (row.kind == "dm" and row.target == lead):
                key = f"problem:{row.kind}:{row.target}:{err.code}"[:200]
                exists = (
                    await s.execute(
                        select(OutboxMessage.id).where(
                            OutboxMessage.team_id == row.team_id, OutboxMessage.dedupe_key == key
                        )
                    )
                ).first()
                if exists is None:
                    problem = Problem(row.id or 0, row.kind, row.target, err.code, err.fix, now)
                    await self.enqueue(
                        s,
                        team_id=row.team_id,
                        project_id=row.project_id,
                        kind="dm",
                        target=lead,
                        key=key,
                        message=Message(
                            text=f"Phasegate could not deliver a message {problem.line()}. "
                            "Messages like it will fail until then; `status` lists what was not delivered."
                        ),
                    )
        return "failed"

    # --- what the lead sees ----------------------------------------------------------------------

    async def problems(self, s: AsyncSession, *, team_id: str, project_id: int | None = None) -> list[Problem]:
        """Messages Slack refused for good (newest first, one per target and error)."""
        return await undelivered(s, team_id=team_id, project_id=project_id)


def _undelivered(team_id: Any) -> Any:
    """Failed for good and not healed since (a later message to the same place went through)."""
    later = aliased(OutboxMessage)
    healed = (
        select(later.id)
        .where(
            later.team_id == team_id,
            later.status == "sent",
            later.kind == OutboxMessage.kind,
            later.target == OutboxMessage.target,
            col(later.id) > col(OutboxMessage.id),
        )
        .exists()
    )
    return sa.and_(col(OutboxMessage.team_id) == team_id, col(OutboxMessage.status) == "failed", ~healed)


def undelivered_select(*, team_id: Any, project_id: Any = None) -> Any:
    """Messages Slack refused for good and not healed since (a later message to the same place went through),
    newest first: one query (`team_id`, `project_id`: values, or bind parameters of a statement built once)."""
    q = select(OutboxMessage).where(_undelivered(team_id))
    if project_id is not None:
        q = q.where(OutboxMessage.project_id == project_id)
    return q.order_by(col(OutboxMessage.id).desc()).limit(UNDELIVERED_SHOWN)


def undelivered_per_project_select(*, team_id: Any, project_ids: Any) -> Any:
    """As `undelivered_select` for each of several projects at once (`project_ids`: a list of ids or of bind
    parameters): up to the same number per project, the newest, in one query; the order is left to the caller."""
    newest = func.row_number().over(partition_by=col(OutboxMessage.project_id), order_by=col(OutboxMessage.id).desc())
    ranked = (
        sa.select(*OutboxMessage.__table__.columns, newest.label("newest"))  # type: ignore[attr-defined]
        .where(_undelivered(team_id), col(OutboxMessage.project_id).in_(project_ids))
        .subquery()
    )
    return sa.select(*[c for c in ranked.c if c.name != "newest"]).where(ranked.c.newest <= UNDELIVERED_SHOWN)


def problems_from(rows: Iterable[tuple[int, str, str, str | None, datetime]]) -> list[Problem]:
    """(id, kind, target, last_error, at) of undelivered messages, newest first → one Problem per target and error."""
    seen: dict[tuple[str, str, str], Problem] = {}
    for row_id, kind, target, last_error, at in rows:
        err = DeliveryError(last_error or "error", permanent=True)
        k = (kind, target, err.code)
        if k not in seen:
            seen[k] = Problem(row_id, kind, target, err.code, err.fix, at)
    return list(seen.values())


async def undelivered(s: AsyncSession, *, team_id: str, project_id: int | None = None) -> list[Problem]:
    """Messages Slack refused for good (newest first, one per target and error): for `status` and App Home."""
    rows = (await s.execute(undelivered_select(team_id=team_id, project_id=project_id))).scalars()
    return problems_from((r.id or 0, r.kind, r.target, r.last_error, r.done_at or r.created_at) for r in rows)


@dataclass(frozen=True)
class _Snapshot:
    team_id: str
    kind: str
    target: str
    text: str
    blocks: list[Any]
    thread_ts: str | None
    update_ts: str | None
    filename: str | None
    content: bytes | None
    title: str | None
    ts_for: str | None

    def __init__(self, row: OutboxMessage, thread_ts: str | None, update_ts: str | None) -> None:
        for name in ("team_id", "kind", "target", "text", "filename", "content", "title", "ts_for"):
            object.__setattr__(self, name, getattr(row, name))
        object.__setattr__(self, "blocks", list(row.blocks or []))
        object.__setattr__(self, "thread_ts", thread_ts)
        object.__setattr__(self, "update_ts", update_ts)


async def _record_ts(s: AsyncSession, ts_for: str, ts: str, permalink: str | None, now: datetime) -> None:
    """Store a sent announcement's ts (and permalink) on what it announces: later thread replies and updates need
    the ts; GitHub issues link to the decision's thread, and superseded ones to the iterate."""
    kind, _, raw = ts_for.partition(":")
    if not raw.isdecimal():
        return
    target: Meeting | Decision | PhaseRecord | None = None
    if kind == "meeting":
        target = await s.get(Meeting, int(raw))
    elif kind == "decision":
        target = await s.get(Decision, int(raw))
    elif kind == "phase":
        target = await s.get(PhaseRecord, int(raw))
    if target is None:
        return
    if target.channel_ts is None:
        target.channel_ts = ts
        s.add(target)
    if permalink and not isinstance(target, Meeting) and target.permalink is None:
        target.permalink = permalink
        s.add(target)
        if isinstance(target, Decision):  # issue bodies already written link to the channel: update them
            await _resync_tasks(s, target.project_id, Task.decision_id == target.id, now)


async def _resync_tasks(s: AsyncSession, project_id: int, where: Any, now: datetime) -> None:
    from bot.services.tasks import enqueue_sync  # the GitHub queue's one writer (imported late: it is above us)

    project = await s.get(Project, project_id)
    if project is None or not project.repo:
        return
    for (task_id,) in (await s.execute(select(Task.id).where(Task.project_id == project_id, where))).all():
        await enqueue_sync(s, project=project, kind="issue", ref=task_id, now=now)


def _strict(messenger: Messenger) -> Messenger:
    """The messenger that raises DeliveryError instead of logging (SlackMessenger.strict()); others as they are."""
    strict = getattr(messenger, "strict", None)
    return strict() if callable(strict) else messenger


class OutboxSender:
    """The leader's loop: deliver what is due, sleep until the next due row or a wake-up from `committed()`."""

    def __init__(self, outbox: Outbox, *, interval: float = 5.0) -> None:
        self.outbox, self.interval = outbox, interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="slack-outbox-sender")
        self.outbox.sending = True

    async def stop(self) -> None:
        self.outbox.sending = False
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)

    async def _loop(self) -> None:
        me = asyncio.current_task()
        while self._task is me:  # `stop()` cancels this task and forgets it: either ends the loop
            timeout = self.interval
            try:
                await self.outbox.drain()
                due = await self.outbox.next_due()
                if due is not None:
                    timeout = min(self.interval, max((due - self.outbox.clock.now()).total_seconds(), 0.05))
            except Exception:
                log.exception("outbox sender pass failed")
            await self.outbox.wait_for_wake(timeout)
