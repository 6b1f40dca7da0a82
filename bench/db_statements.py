"""SQL statements per `status`, `proposals` and App Home at 10 and 1,000 tasks (equal counts: no N+1)."""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from typing import Any

from bench.common import Statements, fresh_pg_schema, report
from bot.clock import SystemClock
from bot.commands import Context, dispatch
from bot.commands.home import home_view
from bot.db.migrate import upgrade
from bot.db.session import Database
from bot.services import Actor, Services

CHANNEL, LEAD = "C0BENCH001", "U0LEAD0001"


async def measure(url: str, tasks: int) -> list[dict[str, Any]]:
    db = Database(url)
    services = Services.build(db, SystemClock())
    with Statements(db.engine.sync_engine) as counted:
        team = f"T{uuid.uuid4().hex[:9].upper()}"  # a workspace of its own per size
        ctx = Context(services=services, actor=Actor(team, LEAD), channel_id=CHANNEL)
        name = f"b{uuid.uuid4().hex[:8]}"
        await dispatch(ctx, f"init {name} repo=acme/bench")
        project = await services.projects.resolve(actor=ctx.actor, channel_id=None, name=name)
        assert project.id is not None
        for i in range(tasks - 2):  # the project starts with Discovery's two default tasks
            await services.tasks.add(actor=ctx.actor, project_id=project.id, title=f"Task {i}", assignee=LEAD)
        rows = []
        for label, run in (
            ("status", lambda: dispatch(ctx, f"status project={name}")),
            ("proposals", lambda: dispatch(ctx, f"proposals project={name}")),
            ("app home", lambda: home_view(ctx)),
        ):
            await run()  # warm caches
            counted.count = 0
            t0, c0 = time.perf_counter(), time.process_time()
            await run()
            cpu = (time.process_time() - c0) * 1000
            rows.append(
                {
                    "view": label,
                    "tasks": tasks,
                    "statements": counted.count,
                    "ms": round((time.perf_counter() - t0) * 1000, 1),
                    "cpu_ms": round(cpu, 1),
                }
            )
    await db.dispose()
    return rows


def main(*, quick: bool = False) -> dict[str, Any]:
    sizes = (10, 100) if quick else (10, 1000)
    rows: list[dict[str, Any]] = []
    backends = {"sqlite": f"sqlite:///{tempfile.mkdtemp()}/bench.db"}
    if os.environ.get("TEST_POSTGRES_URL"):
        backends["postgresql"] = fresh_pg_schema(os.environ["TEST_POSTGRES_URL"])
    for backend, url in backends.items():
        upgrade(url)
        for n in sizes:
            for row in asyncio.run(measure(url, n)):
                rows.append({"db": backend, **row})
    equal = all(
        len({r["statements"] for r in rows if r["db"] == b and r["view"] == v}) == 1
        for b in backends
        for v in ("status", "proposals", "app home")
    )
    return report(
        "db_statements",
        rows,
        {"equal_counts_across_sizes": equal},
        goals={"statements": ("<=", 6.0), "cpu_ms": ("<=", 3.0)},
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    main(quick=ap.parse_args().quick)
