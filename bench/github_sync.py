"""GitHub request economy (first sync and unchanged re-sync) and pacing under the secondary limits."""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from github import Auth

from bench.common import report
from bot.clock import FakeClock
from bot.db.migrate import upgrade
from bot.db.session import Database
from bot.github.gateway import PyGithubGateway
from bot.messaging import RecordingMessenger
from bot.process import PHASE_ORDER
from bot.services import Actor, Services
from bot.services.tasks import new_task
from bot.sync.desired import LABELS
from bot.sync.service import SyncService
from tests.fakes.github import FakeGitHub

REPO = "acme/bench"
LEAD = Actor("T0BENCH001", "U0LEAD0001")


async def _setup(tasks: int, *, secondary: bool) -> tuple[Database, FakeClock, FakeGitHub, SyncService, int]:
    url = f"sqlite:///{tempfile.mkdtemp()}/gh.db"
    upgrade(url)
    clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    db = Database(url)
    services = Services.build(db, clock)
    fake = FakeGitHub(clock=lambda: clock.now().timestamp())
    await fake.start()
    fake.add_repo(REPO, collaborators=["lead-gh"])
    if secondary:
        fake.enforce_secondary(per_minute=80, per_hour=500)

    async def sleep(seconds: float) -> None:  # a compressed clock: waiting moves time, not the benchmark
        clock.advance(timedelta(seconds=max(seconds, 0.0)))
        await asyncio.sleep(0)

    assert fake._own_url is not None
    gateway = PyGithubGateway(auth=Auth.Token("bench"), base_url=fake._own_url)
    sync = SyncService(db, clock, gateway, RecordingMessenger(), sleep=sleep)
    project = await services.projects.create(actor=LEAD, name="bench", channel_id="C0BENCH001", repo=REPO)
    assert project.id is not None
    async with db.session() as s:
        row = await services.tasks.project_by_id(s, LEAD, project.id)
        for i in range(tasks - 2):  # Discovery's two default tasks are already there
            await new_task(s, project=row, actor=LEAD, now=clock.now(), title=f"Task {i}",
                           phase=PHASE_ORDER[i % 5])
    return db, clock, fake, sync, project.id


async def economy(tasks: int) -> list[dict[str, Any]]:
    db, _clock, fake, sync, pid = await _setup(tasks, secondary=False)
    rows = []
    try:
        minimum_writes = len(PHASE_ORDER) + tasks + len(LABELS)
        for label in ("first sync", "unchanged re-sync"):
            fake.reset_stats()
            await sync.run(actor=LEAD, project_id=pid)
            st = fake.stats
            rows.append({
                "tasks": tasks, "run": label, "requests": st.requests, "writes": st.writes,
                "min_writes": minimum_writes if label == "first sync" else 0,
                "counted_against_limit": st.counted, "answered_304": st.not_modified,
            })
    finally:
        await sync.aclose()
        await fake.stop()
        await db.dispose()
    return rows


def pacing_minimum(writes: int, per_minute: int = 80, per_hour: int = 500) -> float:
    """Seconds the first-to-last write must span under both sliding-window limits."""
    spacing = 60.0 / per_minute
    hours, rest = divmod(writes - 1, per_hour)
    return hours * 3600.0 + rest * spacing


async def pacing(tasks: int) -> dict[str, Any]:
    db, clock, fake, sync, pid = await _setup(tasks, secondary=True)
    try:
        start, wall = clock.now(), time.perf_counter()
        await sync.run(actor=LEAD, project_id=pid, max_wait=10 * 3600)
        elapsed = (clock.now() - start).total_seconds()
        st = fake.stats
        minimum = pacing_minimum(st.writes)
        return {
            "issues": tasks, "writes": st.writes, "refusals": st.secondary_refusals,
            "simulated_elapsed_s": round(elapsed, 1), "pacing_minimum_s": round(minimum, 1),
            "elapsed_over_minimum": round(elapsed / minimum, 3) if minimum else None,
            "wall_s": round(time.perf_counter() - wall, 1),
        }
    finally:
        await sync.aclose()
        await fake.stop()
        await db.dispose()


def main(*, quick: bool = False) -> dict[str, Any]:
    sizes = (10, 30) if quick else (10, 100, 500)
    rows: list[dict[str, Any]] = []
    for n in sizes:
        rows.extend(asyncio.run(economy(n)))
    out = report("github_requests", rows)
    pace = asyncio.run(pacing(40 if quick else 500))
    report("github_pacing", [pace], {"limits": "80/min, 500/h (fake GitHub on a compressed clock)"})
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    main(quick=ap.parse_args().quick)
