"""A server for the ack benchmark: Phasegate's real app, or a bare Bolt app that only acks (with a fake Slack)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack import FakeSlack

SECRET = "bench-signing-secret"
TEAM, CHANNEL, USER = "T0BENCH001", "C0BENCH001", "U0BENCH001"


async def phasegate(port: int, fake_url: str, *, seed: bool = True, reuse_port: bool = False) -> web.AppRunner:
    from bot.app import create_app, serve_http
    from bot.config import load_settings
    from bot.db.migrate import upgrade
    from bot.services import Actor

    url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    upgrade(url)
    settings = load_settings(
        DATABASE_URL=url, SLACK_BOT_TOKEN="xoxb-bench", SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=fake_url
    )
    app = create_app(settings)
    if not seed:  # another worker on the same database seeded it
        return await serve_http(app, host="127.0.0.1", port=port, reuse_port=reuse_port)
    actor = Actor(TEAM, USER)
    project = await app.services.projects.create(actor=actor, name="bench", channel_id=CHANNEL, repo="acme/bench")
    assert project.id is not None
    for i in range(20):
        await app.services.tasks.add(actor=actor, project_id=project.id, title=f"Task {i}")
    await app.services.projects.update_profile(team_id=TEAM, user_id=USER, display_name="bench", timezone="UTC")
    return await serve_http(app, host="127.0.0.1", port=port, reuse_port=reuse_port)


async def bare(port: int, fake_url: str) -> web.AppRunner:
    bolt = AsyncApp(client=AsyncWebClient(token="xoxb-bench", base_url=fake_url), signing_secret=SECRET)

    @bolt.command("/phasegate")
    async def ack_and_answer(ack: AsyncAck, respond: AsyncRespond) -> None:
        await ack()
        await respond("ok")  # the same answer path as Phasegate's: a reply to the response_url

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    app = web.Application()
    app.router.add_post("/slack/events", events)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("which", choices=["phasegate", "bare"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--no-seed", action="store_true", help="the database already has the bench project")
    ap.add_argument("--reuse-port", action="store_true", help="SO_REUSEPORT: several workers on one port")
    a = ap.parse_args()
    if a.which == "phasegate":
        from bot.malloc import limit_arenas

        limit_arenas()  # as `phasegate serve` does
    fake = FakeSlack(team_id=TEAM)
    fake.add_user(USER, "bench", tz="UTC")
    fake.add_channel(CHANNEL, "bench", members=[USER])
    fake_url = await fake.start()
    if a.which == "phasegate":
        runner = await phasegate(a.port, fake_url, seed=not a.no_seed, reuse_port=a.reuse_port)
    else:
        runner = await bare(a.port, fake_url)
    print(f"READY {os.getpid()} {fake_url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
