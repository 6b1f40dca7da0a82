"""ReminderScheduler: meeting jobs in APScheduler 3's SQLAlchemyJobStore, run by `run_due` with the injected clock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.base import STATE_STOPPED, BaseScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.util import datetime_to_utc_timestamp
from sqlalchemy import bindparam, select

from bot.clock import Clock, SystemClock
from bot.db.session import sync_url
from bot.timeplan import PlannedJob
from bot.waits import wait_event

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(hours=6)
MAX_SLEEP = 60.0  # seconds: the wall-clock driver looks again at least this often
BATCH = 500  # due jobs claimed (one read) and marked done (one transaction) at a time
CONCURRENCY = 32  # jobs of different meetings running at once

# Jobs are pickled into the job store, so they carry ids only; the scheduler that runs one passes its services
# (`services=`, a keyword APScheduler's argument check allows because it has a default).


async def run_job(meeting_id: int, step: str, sequence: int, *, services: Services | None = None) -> None:
    """The one job function: reloads the meeting; a job for a cancelled or moved meeting does nothing."""
    await _given(services).rituals.run_step(meeting_id=meeting_id, step=step, sequence=sequence)


async def run_digest_job(project_id: int, slot_at: datetime, *, services: Services | None = None) -> None:
    """The weekly digest job (`digest:<project>`): posts once, then plans next week's."""
    await _given(services).digests.run(project_id=project_id, slot_at=slot_at)


def _given(services: Services | None) -> Services:
    if services is None:
        raise RuntimeError("a job runs with the services of the scheduler that runs it (services=…)")
    return services


DIGEST_GRACE: int | None = None  # however late: the digest itself skips a stale week and plans the next


def digest_job_id(project_id: int) -> str:
    return f"digest:{project_id}"


def _restore(state: bytes) -> Job:
    """A job from its stored state (pickled `Job.__getstate__()`), as the job store restores it."""
    job = Job.__new__(Job)
    job.__setstate__(pickle.loads(state))
    return job


def job_id(meeting_id: int, step: str) -> str:
    return f"meeting:{meeting_id}:{step}"


JOBS_TABLE = "apscheduler_jobs"  # SQLAlchemyJobStore's table, on the app database (not Alembic's)


class SettableClock(Protocol):
    def now(self) -> datetime: ...

    def set(self, when: datetime) -> None: ...


class _Scheduler(BaseScheduler):  # type: ignore[misc]
    """APScheduler holds and plans the jobs but never runs them (it stays paused; `run_due` runs them), so it
    needs no event loop or timer of its own: there is nothing to wake."""

    def wakeup(self) -> None:
        """Nothing to wake: APScheduler runs no jobs here."""

    def shutdown(self, wait: bool = True) -> None:  # closes the job store, at once (no loop to queue it on)
        super().shutdown(wait)


class ReminderScheduler:
    """Meeting jobs with explicit ids (`meeting:<id>:<step>`) in APScheduler's job store on the app database.

    APScheduler holds the jobs: ids, date triggers, `misfire_grace_time`, `coalesce`, `replace_existing`,
    pickled in `apscheduler_jobs`. It is started paused: jobs run through one path, `run_due(now)`, with
    the injected clock — driven by the wall clock after `resume()` (which `start()` calls with the system
    clock), or by the clock's owner (tests, the local shell, the demo) with `run_due` / `advance`. Job-store I/O runs in a worker thread:
    on SQLite a write from the event-loop thread would wait for another coroutine's open transaction while
    blocking the loop that has to finish it.

    With several replicas every one plans (`realtime=False`, `start()`), and only the leader runs jobs
    (`resume()` when elected, `pause()` when deposed). Every send is also claimed in `sent_messages`, so a
    job that runs twice anyway still sends once.
    """

    def __init__(
        self,
        *,
        database_url: str,
        clock: Clock,
        realtime: bool | None = None,
        grace: timedelta = DEFAULT_GRACE,
        batch: int = BATCH,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self.clock = clock
        self.batch = batch
        self.concurrency = concurrency
        self.realtime = isinstance(clock, SystemClock) if realtime is None else realtime
        self.store = SQLAlchemyJobStore(url=sync_url(database_url), tablename=JOBS_TABLE)
        self.aps = _Scheduler(
            jobstores={"default": self.store},
            timezone=UTC,
            job_defaults={"misfire_grace_time": int(grace.total_seconds()), "coalesce": True, "max_instances": 1},
        )
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._driver: asyncio.Task[None] | None = None
        self._pass_waiters: list[asyncio.Future[int]] = []
        self.services: Services | None = None  # what jobs run with: `bind()`

    def bind(self, services: Services) -> None:
        """Jobs run with `services`, whose meetings and digests (re)plan their jobs here."""
        self.services = services
        services.meetings.planner = self
        services.digests.planner = self

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the job store (planning works from here on); with the system clock also `resume()` (which needs
        a running event loop)."""
        self.aps.start(paused=True)
        if self.realtime:
            self.resume()

    def resume(self) -> None:
        """Run due jobs by the clock from now on — first those missed while nobody ran them (each once,
        when still within its grace time). With several replicas only the leader calls this."""
        if self.services is None:
            raise RuntimeError("bind(services) before running jobs: they run at once")
        if self._driver is None:
            self._driver = asyncio.get_running_loop().create_task(self._drive(), name="reminder-scheduler")

    def pause(self) -> None:
        """Stop running jobs (e.g. this replica lost the leadership); planning still works."""
        if self._driver is not None:
            self._driver.cancel()
            self._driver = None

    def shutdown(self) -> None:
        """Stop running jobs and close the job store; planned jobs stay in the database."""
        self.pause()
        if self.running:
            self.aps.shutdown(wait=False)

    @property
    def running(self) -> bool:
        return bool(self.aps.state != STATE_STOPPED)

    async def _drive(self) -> None:
        me = asyncio.current_task()
        while self._driver is me:  # `pause()` cancels this task and forgets it: either ends the loop
            try:
                ran = await self.run_due(self.clock.now())
                upcoming = await asyncio.to_thread(self.next_run_time)
            except Exception:
                log.exception("reminder scheduler pass failed; retrying")
                ran, upcoming = 0, None
            for waiter in self._pass_waiters:
                if not waiter.done():
                    waiter.set_result(ran)
            self._pass_waiters.clear()
            delay = MAX_SLEEP
            if upcoming is not None:
                delay = min(max((upcoming - self.clock.now()).total_seconds(), 0.0), MAX_SLEEP)
            self._wake.clear()
            await wait_event(self._wake, delay)

    def wake(self) -> None:
        """Look for due jobs now (e.g. after the clock jumped) instead of at the planned wake-up."""
        self._wake.set()

    async def wait_for_pass(self) -> int:
        """Wait until the wall-clock driver finishes its next pass; how many jobs that pass ran."""
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pass_waiters.append(waiter)
        return await waiter

    # --- planning (the services call these after their transaction committed) ----------------------

    async def replace_meeting_jobs(self, meeting_id: int, sequence: int, jobs: Sequence[PlannedJob]) -> None:
        """Drop a meeting's jobs and plan `jobs` for its current invite sequence."""
        await asyncio.to_thread(self._replace, meeting_id, sequence, list(jobs))
        self._wake.set()

    async def remove_meeting_jobs(self, meeting_id: int) -> None:
        await asyncio.to_thread(self._remove, meeting_id)

    async def replace_digest_job(self, project_id: int, run_at: datetime) -> None:
        """Plan a project's next weekly digest (one job per project, replaced)."""
        await asyncio.to_thread(self._replace_digest, project_id, run_at)
        self._wake.set()

    async def remove_digest_job(self, project_id: int) -> None:
        await asyncio.to_thread(self._remove_digest, project_id)

    def _replace_digest(self, project_id: int, run_at: datetime) -> None:
        self.aps.add_job(
            run_digest_job,
            trigger=DateTrigger(run_date=run_at, timezone=UTC),
            args=(project_id, run_at),
            id=digest_job_id(project_id),
            name=digest_job_id(project_id),
            replace_existing=True,
            misfire_grace_time=DIGEST_GRACE,
            coalesce=True,
        )

    def _remove_digest(self, project_id: int) -> None:
        with contextlib.suppress(JobLookupError):
            self.aps.remove_job(digest_job_id(project_id), jobstore="default")

    def _replace(self, meeting_id: int, sequence: int, jobs: list[PlannedJob]) -> None:
        self._remove(meeting_id)
        for job in jobs:
            self.aps.add_job(
                run_job,
                trigger=DateTrigger(run_date=job.run_at, timezone=UTC),
                args=(meeting_id, job.step, sequence),
                id=job_id(meeting_id, job.step),
                name=job_id(meeting_id, job.step),
                replace_existing=True,
                misfire_grace_time=None if job.grace is None else max(int(job.grace.total_seconds()), 1),
                coalesce=True,
            )

    def _remove(self, meeting_id: int) -> None:
        for jid in self.meeting_job_ids(meeting_id):
            with contextlib.suppress(JobLookupError):
                self.aps.remove_job(jid, jobstore="default")

    def meeting_job_ids(self, meeting_id: int) -> list[str]:
        table = self.store.jobs_t
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(table.c.id).where(table.c.id.like(f"meeting:{meeting_id}:%")))
            return [str(r[0]) for r in rows]

    def planned(self) -> list[tuple[str, datetime]]:
        """Every planned job (id, run time), soonest first."""
        return [(str(j.id), j.next_run_time) for j in self.store.get_all_jobs()]

    def next_run_time(self) -> datetime | None:
        when: datetime | None = self.store.get_next_run_time()
        return when

    # --- running -------------------------------------------------------------------------------------

    def _claim_due(self, now: datetime, limit: int) -> list[tuple[Job, bytes]]:
        """Up to `limit` due jobs, earliest first, each with its stored state; they stay in the store until
        `_done` removes them after they ran. One read for the batch; a job that cannot be unpickled is
        deleted (as APScheduler does)."""
        table = self.store.jobs_t
        query = (
            select(table.c.id, table.c.job_state)
            .where(table.c.next_run_time <= datetime_to_utc_timestamp(now))
            .order_by(table.c.next_run_time, table.c.id)
            .limit(limit)
        )
        claimed: list[tuple[Job, bytes]] = []
        broken: list[dict[str, Any]] = []
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        for row in rows:
            state = bytes(row.job_state)
            try:
                claimed.append((_restore(state), state))
            except Exception:
                log.exception("job %s cannot be restored: removed", row.id)
                broken.append({"jid": row.id, "state": state})
        if broken:
            with self.store.engine.begin() as conn:
                conn.execute(
                    table.delete().where(table.c.id == bindparam("jid"), table.c.job_state == bindparam("state")),
                    broken,
                )
        return claimed

    def _done(self, finished: Sequence[tuple[Job, bytes]], now: datetime) -> None:
        """Jobs ran (or missed their grace): remove them, or move a recurring one to its next time (coalescing
        the runs missed until `now` into this one) — unless one was re-planned meanwhile (the daily nudge
        re-plans itself; another replica may have moved the meeting): only the exact stored state that ran is
        touched. One transaction for the batch."""
        table = self.store.jobs_t
        removed: list[dict[str, Any]] = []
        moved: list[dict[str, Any]] = []
        for job, state in finished:
            following = job.trigger.get_next_fire_time(job.next_run_time, now)
            while following is not None and following <= now:  # coalesce missed runs into one
                following = job.trigger.get_next_fire_time(following, now)
            if following is None:
                removed.append({"jid": job.id, "state": state})
            else:
                changed = {**job.__getstate__(), "next_run_time": following}
                moved.append(
                    {
                        "jid": job.id,
                        "state": state,
                        "next": datetime_to_utc_timestamp(following),
                        "new_state": pickle.dumps(changed, self.store.pickle_protocol),
                    }
                )
        unchanged = (table.c.id == bindparam("jid")) & (table.c.job_state == bindparam("state"))
        with self.store.engine.begin() as conn:
            if removed:
                conn.execute(table.delete().where(unchanged), removed)
            if moved:
                conn.execute(
                    table.update()
                    .where(unchanged)
                    .values(next_run_time=bindparam("next"), job_state=bindparam("new_state")),
                    moved,
                )

    async def run_due(self, now: datetime) -> int:
        """Run every job due at `now`, each removed from the store only after it ran; returns how many ran.

        Due jobs are claimed in batches of `batch` (one read) and marked done per batch (one transaction);
        within a batch, jobs of different meetings run concurrently (at most `concurrency` at once) and a
        meeting's own jobs one after the other in run-date order. A job later than its misfire grace time is
        dropped unrun (as APScheduler does).

        Exactly once, as far as it goes: only the leader runs jobs, and one pass at a time (a lock); a process
        killed while a batch runs leaves its jobs in the store, and the next leader runs them again; every send
        is claimed in `sent_messages` in the transaction that writes its Slack outbox row, so what was already
        queued is not queued again, and the outbox sender delivers it (retrying until Slack accepts it). What
        remains: a message Slack accepted just before the process died, not yet marked sent, is sent again
        (README, "Delivery guarantees").
        """
        if not self.running:
            raise RuntimeError("start() the ReminderScheduler before running jobs")
        if self.services is None:
            raise RuntimeError("bind(services) before running jobs")
        ran = 0
        async with self._lock:
            for _ in range(10_000):
                batch = await asyncio.to_thread(self._claim_due, now, self.batch)
                if not batch:
                    break
                ran += await self._run_batch(batch, now)
                await asyncio.to_thread(self._done, batch, now)
                if len(batch) < self.batch:
                    break
        return ran

    async def _run_batch(self, batch: list[tuple[Job, bytes]], now: datetime) -> int:
        services = self.services
        lanes: dict[Any, list[Job]] = {}
        for job, _state in batch:
            run_at: datetime = job.next_run_time
            if job.misfire_grace_time is not None and now - run_at > timedelta(seconds=job.misfire_grace_time):
                log.warning("job %s missed its time (%s) by more than its grace: dropped", job.id, run_at)
                continue
            # A meeting's jobs run one after the other; every other job (a project's digest) in a lane of its own.
            lane_key = job.args[0] if job.args and str(job.id).startswith("meeting:") else job.id
            lanes.setdefault(lane_key, []).append(job)
        gate = asyncio.Semaphore(self.concurrency)

        async def lane(jobs: list[Job]) -> int:
            async with gate:
                for job in jobs:
                    try:
                        await job.func(*job.args, **job.kwargs, services=services)
                    except Exception:
                        log.exception("job %s failed", job.id)
            return len(jobs)

        if len(lanes) == 1:
            return await lane(next(iter(lanes.values())))
        return sum(await asyncio.gather(*(lane(jobs) for jobs in lanes.values())))

    async def advance(self, clock: SettableClock, until: datetime) -> int:
        """Move a settable clock to `until`, stopping at each job's time to run it then (shell, demo)."""
        ran = 0
        for _ in range(10_000):
            upcoming = await asyncio.to_thread(self.next_run_time)
            if upcoming is None or upcoming > until:
                break
            if upcoming > clock.now():
                clock.set(upcoming)
            ran += await self.run_due(clock.now())
        if until > clock.now():
            clock.set(until)
        return ran
