"""`phasegate purge`: the data of a workspace uninstalled longer than the retention period is deleted, nothing
else (not a workspace uninstalled recently, not one still installed)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func
from sqlmodel import select

from bot.clock import FakeClock
from bot.db.models import AuditEntry, Meeting, Project, RepoShare, Workspace
from bot.db.session import Database
from bot.services import Actor, Services
from bot.slack_oauth import Installations, purge

A, B, C = Actor("T0PURGE0A", "U0A"), Actor("T0PURGE0B", "U0B"), Actor("T0PURGE0C", "U0C")


async def count(db: Database, model: type, team: str) -> int:
    async with db.session() as s:
        q = select(func.count()).select_from(model).where(model.team_id == team)  # type: ignore[attr-defined]
        return int((await s.execute(q)).scalar_one())


async def test_purge_deletes_only_workspaces_uninstalled_longer_than_the_retention(
    database_url: str, clock: FakeClock
) -> None:
    db = Database(database_url)
    try:
        services = Services.build(db, clock)
        for actor in (A, B, C):
            project = await services.projects.create(actor=actor, name="p", channel_id=f"C{actor.team_id}")
            assert project.id is not None
            await services.meetings.schedule(
                actor=actor, project_id=project.id, kind="brief-review",
                starts_at=clock.now() + timedelta(days=2), attendees=[actor.user_id],
            )
        async with db.session() as s:
            pa = (await s.execute(select(Project).where(Project.team_id == A.team_id))).scalar_one()
            s.add(RepoShare(repo="acme/x", project_id=pa.id or 0, shared_by="U0A"))
        installs = Installations(db, clock)
        await installs.uninstalled(A.team_id)
        clock.advance(timedelta(days=20))
        await installs.uninstalled(B.team_id)
        clock.advance(timedelta(days=11))  # A: 31 days ago, B: 11 days ago, C: still installed

        assert await purge(db, clock, retention=timedelta(days=30), dry_run=True) == [A.team_id]
        assert await count(db, Project, A.team_id) == 1  # a dry run deletes nothing
        assert await purge(db, clock, retention=timedelta(days=30)) == [A.team_id]
        for model in (Project, Meeting, AuditEntry, Workspace):
            assert await count(db, model, A.team_id) == 0, model
            assert await count(db, model, B.team_id) > 0 and await count(db, model, C.team_id) > 0, model
        async with db.session() as s:
            assert (await s.execute(select(RepoShare))).scalars().all() == []
        assert await purge(db, clock, retention=timedelta(days=30)) == []  # again: nothing left to do
    finally:
        await db.dispose()


async def test_phasegate_sync_skips_the_projects_of_an_uninstalled_workspace(
    database_url: str, clock: FakeClock
) -> None:
    from bot.config import load_settings
    from bot.sync.service import cli_sync

    db = Database(database_url)
    try:
        services = Services.build(db, clock)
        for actor in (A, B):
            await services.projects.create(actor=actor, name=f"p{actor.user_id[-1].lower()}", channel_id="C1")
        await Installations(db, clock).uninstalled(A.team_id)
    finally:
        await db.dispose()
    text = await cli_sync(load_settings(DATABASE_URL=database_url), None, False)
    assert "pa: skipped, its workspace removed Phasegate from Slack." in text
    assert "pb: skipped" not in text


async def test_purge_also_deletes_the_scheduler_jobs_of_the_purged_workspace(database_url: str, clock: FakeClock) -> None:
    from bot.scheduler import ReminderScheduler, digest_job_id, job_id
    from bot.timeplan import PlannedJob

    db = Database(database_url)
    scheduler = ReminderScheduler(database_url=database_url, clock=clock)
    scheduler.start()
    try:
        services = Services.build(db, clock)
        kept: list[str] = []
        for actor in (A, B):
            project = await services.projects.create(actor=actor, name="p", channel_id=f"C{actor.team_id}")
            assert project.id is not None
            scheduled = await services.meetings.schedule(
                actor=actor, project_id=project.id, kind="brief-review",
                starts_at=clock.now() + timedelta(days=2), attendees=[actor.user_id],
            )
            mid = scheduled.meeting.id
            at = clock.now() + timedelta(days=2)
            await scheduler.replace_meeting_jobs(mid, 0, [PlannedJob(s, at, timedelta(minutes=10)) for s in ("t24", "start")])
            await scheduler.replace_digest_job(project.id, clock.now() + timedelta(days=7))
            if actor is B:
                kept = sorted([job_id(mid, "t24"), job_id(mid, "start"), digest_job_id(project.id)])
        await Installations(db, clock).uninstalled(A.team_id)
        clock.advance(timedelta(days=31))
        assert len(scheduler.planned()) == 6
        assert await purge(db, clock, retention=timedelta(days=30)) == [A.team_id]
        assert sorted(jid for jid, _ in scheduler.planned()) == kept  # B's reminders and digest are untouched
    finally:
        scheduler.shutdown()
        scheduler.store.engine.dispose()
        await db.dispose()
