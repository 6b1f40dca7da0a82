"""Many workspaces on one deployment: 200 workspaces × 5 projects cost each command what 1 workspace does.

SQL statements: one many-workspaces app (SLACK_CLIENT_ID/SECRET, Bolt's OAuth flow and authorize) served over HTTP
in this process, its background (leader, scheduler, sync, outbox sender) not started so only the request's own
statements are counted; every workspace added through /slack/install → /slack/oauth_redirect against the fake
Slack, then 5 projects each. For `status`, App Home (app_home_opened → views.publish) and one write
(`task add`), sent as signed HTTP requests from one workspace, the statements until the answer is out and nothing
more runs (authorize's installation lookup included), at 1 workspace and at 200. Goal: equal.

Memory: a real `phasegate serve` in many-workspaces mode (its own process, as bench/memory.py measures), the
workspaces installed over OAuth and their projects in the database, restarted, then VmRSS idle and after the same
number of `/phasegate status` from 1 workspace, or from the 200 in turn. Goal: within 5 %.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench import memory
from bench.common import Statements, fresh_pg_schema, report
from bot.app import create_app
from bot.clock import SystemClock
from bot.config import load_settings
from bot.db.migrate import upgrade
from bot.db.session import Database
from bot.services import Actor, Services
from tests.fakes.slack import FakeSlack
from tests.handlers.harness import SIGNING_SECRET, SlackHarness
from tests.handlers.test_workspaces_e2e import CLIENT_ID, CLIENT_SECRET, command, event, install
from tests.resilience import test_many_workspaces as over_http
from tests.resilience.procs import Processes, bot_env, http_json

GOALS = {"extra_statements": ("==", 0.0), "rss_after_commands_ratio": ("<=", 1.05)}
Workspace = tuple[str, str, str]  # team, channel, user


def workspace(i: int) -> Workspace:
    return f"T{i:09d}", f"C{i:09d}", f"U{i:09d}"


async def seed_projects(url: str, workspaces: list[Workspace], projects: int) -> None:
    """`projects` per workspace, the first in the workspace's channel (the one its commands are sent from)."""
    db = Database(url)
    try:
        services = Services.build(db, SystemClock())
        for team, channel, user in workspaces:
            for p in range(projects):
                await services.projects.create(
                    actor=Actor(team, user),
                    name=f"p{p}-{team[-4:].lower()}",
                    channel_id=channel if p == 0 else f"{channel}P{p}",
                )
    finally:
        await db.dispose()


# --------------------------------------------------------------------------- SQL statements per command


@asynccontextmanager
async def app_over_http(url: str) -> AsyncIterator[SlackHarness]:
    """The many-workspaces app on a local port and the fake Slack, in this process; no background started."""
    fake = FakeSlack(team_id="T000000000")
    fake.oauth_client = (CLIENT_ID, CLIENT_SECRET)
    api_url = await fake.start(port=0)
    settings = load_settings(
        DATABASE_URL=url,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=api_url,
        SLACK_CLIENT_ID=CLIENT_ID,
        SLACK_CLIENT_SECRET=CLIENT_SECRET,
        PHASEGATE_LOG_LEVEL="WARNING",
    )
    app = create_app(settings)
    runner = web.AppRunner(app.web_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
            yield SlackHarness(app, fake, f"http://127.0.0.1:{port}", session)
    finally:
        await runner.cleanup()
        await app.close()
        await fake.stop()


async def _quiet(counted: Statements, *, still: float = 0.15, within: float = 10.0) -> None:
    """Wait until no statement has run for `still` seconds (Bolt runs listeners after the ack)."""
    deadline = time.monotonic() + within
    last, since = counted.count, time.monotonic()
    while time.monotonic() - since < still and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        if counted.count != last:
            last, since = counted.count, time.monotonic()


async def statements(url: str, n: int, projects: int) -> dict[str, int]:
    """Statements per view for a command from one workspace, with `n` workspaces × `projects` installed."""
    upgrade(url)
    everyone = [workspace(i) for i in range(n)]
    async with app_over_http(url) as h:
        for team, channel, user in everyone:
            h.fake.add_user(user, user.lower())
            h.fake.add_channel(channel, f"proj-{team.lower()}", members=[user])
            await install(h, team, user)
        await seed_projects(url, everyone, projects)
        team, channel, user = everyone[n // 2]  # one in the middle: neither the first row nor the last

        async def status() -> None:
            rid = await command(h, team, user, channel, "status")
            await h.wait_for(lambda: h.fake.responses(rid))

        async def home() -> None:
            before = len(h.fake.calls_to("views.publish"))
            await event(h, team, {"type": "app_home_opened", "user": user, "tab": "home"}, f"Ev{time.monotonic_ns()}")
            await h.wait_for(lambda: len(h.fake.calls_to("views.publish")) > before)

        async def write() -> None:
            rid = await command(h, team, user, channel, 'task add "Write the bench notes"')
            await h.wait_for(lambda: h.fake.responses(rid))

        views: dict[str, Callable[[], Awaitable[None]]] = {"status": status, "app home": home, "task add": write}
        counts = {}
        with Statements(h.app.db.engine.sync_engine) as counted:
            for label, run in views.items():
                for _ in range(2):  # warm: a workspace's first request checks its token (auth.test), fills caches
                    await run()
                    await _quiet(counted)
                counted.count = 0
                await run()
                await _quiet(counted)
                counts[label] = counted.count
    return counts


# --------------------------------------------------------------------------- memory of a real serve


def serve_rss(procs: Processes, tmp: Path, n: int, projects: int, commands: int, settle: float) -> dict[str, Any]:
    """A many-workspaces serve of `n` workspaces (installed over OAuth, then restarted): VmRSS idle and after
    `commands` status commands from the `n` workspaces in turn."""
    url = f"sqlite:///{tmp}/ws{n}.db"
    upgrade(url)
    everyone = [workspace(i) for i in range(n)]
    asyncio.run(seed_projects(url, everyone, projects))
    slack = procs.fake_slack(team_id="T000000000")
    http_json("POST", f"{slack.url}/_fake/oauth", {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    env = bot_env(
        database_url=url,
        slack_api_url=slack.api_url,
        github_api_url=None,
        PHASEGATE_LOG_LEVEL="WARNING",
        SLACK_CLIENT_ID=CLIENT_ID,
        SLACK_CLIENT_SECRET=CLIENT_SECRET,
    )
    del env["SLACK_BOT_TOKEN"]
    installer = procs.bot(env)
    try:
        for team, channel, user in everyone:
            http_json("POST", f"{slack.url}/_fake/users", {"id": user, "name": user.lower()})
            http_json("POST", f"{slack.url}/_fake/channels", {"id": channel, "name": team.lower(), "members": [user]})
            over_http.install(installer, slack, Actor(team, user))
    finally:
        installer.stop()
    row = memory.measure(procs, f"{n} workspace(s) × {projects}", env, n=commands, settle=settle, senders=everyone)
    slack.stop()
    return row


def main(*, quick: bool = False) -> dict[str, Any]:
    many, projects = (3, 2) if quick else (200, 5)
    commands, settle = (6, 0.2) if quick else (400, 2.0)
    backends: dict[str, Callable[[int], str]] = {"sqlite": lambda n: f"sqlite:///{tempfile.mkdtemp()}/ws{n}.db"}
    if os.environ.get("TEST_POSTGRES_URL") and not quick:
        pg = os.environ["TEST_POSTGRES_URL"]
        backends["postgresql"] = lambda n: fresh_pg_schema(pg, f"phasegate_bench_ws{n}")
    rows: list[dict[str, Any]] = []
    for backend, fresh in backends.items():
        one = asyncio.run(statements(fresh(1), 1, projects))
        at_many = asyncio.run(statements(fresh(many), many, projects))
        for view in one:
            rows.append(
                {
                    "db": backend,
                    "view": view,
                    "one_workspace": one[view],
                    "many_workspaces": at_many[view],
                    "extra_statements": at_many[view] - one[view],
                }
            )
    tmp = Path(tempfile.mkdtemp(prefix="phasegate-workspaces-"))
    with Processes(tmp) as procs:
        alone = serve_rss(procs, tmp, 1, projects, commands, settle)
        crowd = serve_rss(procs, tmp, many, projects, commands, settle)
    extra = {
        "workspaces": many,
        "projects_each": projects,
        "commands": commands,
        "rss_idle_mib_one": alone["rss_idle_mib"],
        "rss_idle_mib_many": crowd["rss_idle_mib"],
        "rss_after_commands_mib_one": alone["rss_after_commands_mib"],
        "rss_after_commands_mib_many": crowd["rss_after_commands_mib"],
        "rss_after_commands_ratio": round(crowd["rss_after_commands_mib"] / alone["rss_after_commands_mib"], 3),
        "http_errors": alone["errors"] + crowd["errors"],
    }
    return report("workspaces", rows, extra, goals=GOALS, keys=["db", "view"])


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    main(quick=ap.parse_args().quick)
