"""One real `phasegate serve` (SLACK_CLIENT_ID/SECRET, no SLACK_BOT_TOKEN) and the fake Slack, both separate
processes: two workspaces add Phasegate through /slack/install → /slack/oauth_redirect, each one's commands are
answered and its reminders posted with its own token; one uninstalls, and only the other's reminders still come."""

from __future__ import annotations

import asyncio
import http.cookies
import json
import re
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.clock import SystemClock
from bot.db.migrate import upgrade
from bot.db.session import Database
from bot.scheduler import ReminderScheduler
from bot.services import Actor, Services
from bot.timeplan import PlannedJob
from tests.handlers.harness import sign
from tests.resilience.procs import SIGNING_SECRET, FakeSlackProc, Proc, Processes, bot_env, http_json, wait_until

pytestmark = pytest.mark.resilience

CLIENT_ID, CLIENT_SECRET = "4242.4242", "many-workspaces-client-secret"
A = Actor("T0WSAAAA01", "U0WSAAAA01")
B = Actor("T0WSBBBB01", "U0WSBBBB01")
CHANNEL = {A.team_id: "C0WSAAAA01", B.team_id: "C0WSBBBB01"}
AGENDA = re.compile(r"#(\d+) starts now: agenda")


def get(url: str, cookie: str | None = None) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read().decode(), dict(resp.headers.items())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers.items())


def install(bot: Proc, slack: FakeSlackProc, actor: Actor) -> None:
    """The browser: the install page (state in the link, the same state in a cookie), Slack's redirect back."""
    status, page, headers = get(f"{bot.url}/slack/install")
    assert status == 200 and "Add to Slack" in page
    found = re.search(r"state=([^&\"']+)", page)
    assert found is not None
    cookies = http.cookies.SimpleCookie(headers.get("Set-Cookie", ""))
    cookie = f"slack-app-oauth-state={cookies['slack-app-oauth-state'].value}"
    code = http_json("POST", f"{slack.url}/_fake/oauth_code", {"team_id": actor.team_id})["code"]
    query = urlencode({"code": code, "state": found[1]})
    status, page, _ = get(f"{bot.url}/slack/oauth_redirect?{query}", cookie)
    assert status == 200, page
    # The same redirect again (a reload, or someone who copied the URL): the state is used up.
    code = http_json("POST", f"{slack.url}/_fake/oauth_code", {"team_id": actor.team_id})["code"]
    status, _, _ = get(f"{bot.url}/slack/oauth_redirect?{urlencode({'code': code, 'state': found[1]})}", cookie)
    assert status >= 400


def post_signed(bot: Proc, body: str, content_type: str) -> int:
    headers = {"Content-Type": content_type, **sign(body, secret=SIGNING_SECRET)}
    request = urllib.request.Request(f"{bot.url}/slack/events", data=body.encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        return int(resp.status)


def command(bot: Proc, slack: FakeSlackProc, actor: Actor, text: str) -> str:
    response_url = http_json("POST", f"{slack.url}/_fake/response_url", {"user": actor.user_id})["response_url"]
    form = {
        "token": "legacy", "team_id": actor.team_id, "team_domain": "ws", "channel_id": CHANNEL[actor.team_id],
        "channel_name": "proj", "user_id": actor.user_id, "user_name": "someone", "command": "/phasegate",
        "text": text, "api_app_id": "A0APP0001", "response_url": response_url,
        "trigger_id": http_json("POST", f"{slack.url}/_fake/trigger", {"user_id": actor.user_id})["trigger_id"],
    }
    assert post_signed(bot, urlencode(form), "application/x-www-form-urlencoded") == 200
    return str(response_url).rsplit("/", 1)[-1]


def agendas(slack: FakeSlackProc) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = http_json("GET", f"{slack.url}/_fake/calls", timeout=30)
    return [
        c for c in calls
        if c["method"] == "chat.postMessage" and c["status"] == 200 and c["response"].get("ok")
        and AGENDA.search(str(c["params"].get("text", "")))
    ]


def meeting_of(call: dict[str, Any]) -> int:
    found = AGENDA.search(str(call["params"]["text"]))
    assert found is not None
    return int(found[1])


async def seed(url: str) -> dict[str, list[int]]:
    """Per workspace one project and two brief reviews (their own reminder jobs are planned by the test)."""
    db = Database(url)
    try:
        services = Services.build(db, SystemClock())
        meetings: dict[str, list[int]] = {}
        for actor in (A, B):
            project = await services.projects.create(
                actor=actor, name=f"proj-{actor.team_id[-6:].lower()}", channel_id=CHANNEL[actor.team_id]
            )
            assert project.id is not None
            meetings[actor.team_id] = []
            for day in (1, 2):
                scheduled = await services.meetings.schedule(
                    actor=actor, project_id=project.id, kind="brief-review",
                    starts_at=services.clock.now() + timedelta(days=day), attendees=[actor.user_id],
                )
                meetings[actor.team_id].append(scheduled.meeting.id)
        return meetings
    finally:
        await db.dispose()


async def test_two_workspaces_over_oauth_each_with_its_own_token_and_an_uninstall_stops_only_its_reminders(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'many.db'}"
    upgrade(url)
    meetings = await seed(url)
    t0 = datetime.now(UTC)
    first, second = t0 + timedelta(seconds=25), t0 + timedelta(seconds=45)
    planner = ReminderScheduler(database_url=url, clock=SystemClock(), realtime=False)
    planner.start()
    try:
        for team in (A.team_id, B.team_id):
            for mid, at in zip(meetings[team], (first, second), strict=True):
                await planner.replace_meeting_jobs(mid, 0, [PlannedJob("start", at, timedelta(minutes=10))])
    finally:
        planner.shutdown()
        planner.store.engine.dispose()

    with Processes(tmp_path) as procs:
        slack = procs.fake_slack(team_id=A.team_id)
        http_json("POST", f"{slack.url}/_fake/oauth", {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
        for actor in (A, B):
            http_json("POST", f"{slack.url}/_fake/users", {"id": actor.user_id, "name": actor.user_id.lower()})
            http_json("POST", f"{slack.url}/_fake/channels", {"id": CHANNEL[actor.team_id], "name": actor.team_id})
        env = bot_env(
            database_url=url, slack_api_url=slack.api_url, github_api_url=None,
            SLACK_CLIENT_ID=CLIENT_ID, SLACK_CLIENT_SECRET=CLIENT_SECRET,
        )
        del env["SLACK_BOT_TOKEN"]
        bot = await asyncio.to_thread(procs.bot, env)
        for actor in (A, B):
            await asyncio.to_thread(install, bot, slack, actor)
        calls = http_json("GET", f"{slack.url}/_fake/calls")
        assert len([c for c in calls if c["method"] == "oauth.v2.access"]) == 2
        token: dict[str, str] = {}
        for c in calls:
            if c["method"] == "oauth.v2.access" and c["response"].get("ok"):
                token[c["response"]["team"]["id"]] = c["response"]["access_token"]
        assert set(token) == {A.team_id, B.team_id} and token[A.team_id] != token[B.team_id]

        # Each workspace's command is answered (Bolt authorizes it with that workspace's token).
        asked = {actor.team_id: await asyncio.to_thread(command, bot, slack, actor, "help") for actor in (A, B)}
        for rid in asked.values():
            await asyncio.to_thread(
                wait_until, lambda rid=rid: http_json("GET", f"{slack.url}/_fake/responses?id={rid}"),
                timeout=20, what="the command's answer",
            )

        # The first reminders: one per workspace, each posted with its own workspace's token.
        await asyncio.to_thread(
            wait_until, lambda: len(agendas(slack)) >= 2, timeout=60, interval=0.25, what="the first reminders"
        )
        assert sorted(meeting_of(c) for c in agendas(slack)) == sorted([meetings[A.team_id][0], meetings[B.team_id][0]])

        # A uninstalls: Slack revokes its tokens and tells the bot.
        http_json("POST", f"{slack.url}/_fake/revoke_team", {"team_id": A.team_id})
        event = json.dumps({
            "token": "legacy", "team_id": A.team_id, "api_app_id": "A0APP0001", "type": "event_callback",
            "event_id": "Ev0UNINSTALLA", "event_time": int(t0.timestamp()),
            "event": {"type": "app_uninstalled", "event_ts": "1.0"},
        })
        assert await asyncio.to_thread(post_signed, bot, event, "application/json") == 200
        await asyncio.to_thread(bot.wait_for_log, "uninstalled Phasegate", timeout=20)

        # B's second reminder still arrives; A's never does.
        await asyncio.to_thread(
            wait_until, lambda: len(agendas(slack)) >= 3, timeout=60, interval=0.25, what="B's second reminder"
        )
        await asyncio.sleep(3)  # A's was due at the same moment: give it every chance to (wrongly) go out
        sent = agendas(slack)
        assert sorted(meeting_of(c) for c in sent) == sorted(
            [meetings[A.team_id][0], meetings[B.team_id][0], meetings[B.team_id][1]]
        )
        assert meetings[A.team_id][1] not in [meeting_of(c) for c in sent]
        # Every Web API call that names a workspace's channel or user carried that workspace's token.
        calls = http_json("GET", f"{slack.url}/_fake/calls")
        for team, actor in ((A.team_id, A), (B.team_id, B)):
            for c in calls:
                p = c["params"]
                if p.get("channel") == CHANNEL[team] or p.get("user") == actor.user_id:
                    assert c["headers"].get("Authorization") == f"Bearer {token[team]}", c
        refused = [c for c in calls if isinstance(c["response"], dict) and c["response"].get("ok") is False]
        assert refused == [], refused  # nothing was even tried with A's revoked token
        print(f"\n2 workspaces over OAuth: {len(sent)} reminders, each with its own token; "
              "after A's uninstall 0 of A's, B's still sent")
