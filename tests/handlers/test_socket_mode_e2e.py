"""Socket Mode end to end: the real app connects to the fake Slack over a WebSocket exactly as
`phasegate serve --mode socket` does (bot.app.serve_socket_mode: Bolt's aiohttp AsyncSocketModeHandler), and
answers the envelopes the fake pushes. No Slack, no public URL, no signing secret."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from bot.app import PhasegateApp, create_app, serve_socket_mode
from bot.config import load_settings
from tests.fakes.slack import FakeSlack
from tests.handlers.harness import CHANNEL, TEAM, as_slack_sends, running_app, validate_blocks, validate_view

LEAD, BO = "U0LEAD0001", "U0BIZZ0001"
APP_TOKEN = "xapp-1-A0APP0001-1-0123456789abcdef"


@dataclass
class SocketRun:
    app: PhasegateApp
    fake: FakeSlack
    health_url: str


@pytest.fixture
async def socket_run(database_url: str) -> AsyncIterator[SocketRun]:
    fake = FakeSlack(team_id=TEAM)
    api_url = await fake.start()
    fake.add_user(LEAD, "lena", tz="Europe/Berlin")
    fake.add_user(BO, "bo", tz="America/New_York")
    fake.add_channel(CHANNEL, "proj-genres", members=[LEAD, BO])
    settings = load_settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-test-token",
        SLACK_APP_TOKEN=APP_TOKEN,
        SLACK_SIGNING_SECRET=None,
        SLACK_API_URL=api_url,
    )
    app = create_app(settings)
    # slack_sdk retries a failed connect forever: bound it so a broken connection fails the test instead.
    runner, handler = await asyncio.wait_for(serve_socket_mode(app, host="127.0.0.1", port=0), 10)
    try:
        yield SocketRun(app, fake, f"http://127.0.0.1:{runner.addresses[0][1]}")
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]
        await runner.cleanup()
        await app.close()
        await fake.stop()


async def wait_for(predicate: Callable[[], Any], within: float = 5.0) -> Any:
    """Poll until the (asynchronous, after-ack) effect is visible; fail loudly otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not (result := predicate()):
        if loop.time() > deadline:
            raise AssertionError("timed out waiting for the bot")
        await asyncio.sleep(0.01)
    return result


def text_of(message: dict[str, Any]) -> str:
    parts = [str(message.get("text") or "")]
    for block in message.get("blocks") or []:
        if isinstance(block.get("text"), dict):
            parts.append(str(block["text"].get("text", "")))
        parts.extend(str(f.get("text", "")) for f in block.get("fields") or [])
        for element in block.get("elements") or []:
            text = element.get("text") if isinstance(element, dict) else None
            parts.append(str(text.get("text", "") if isinstance(text, dict) else text or ""))
    return "\n".join(parts)


async def command(run: SocketRun, text: str, *, user: str = LEAD) -> dict[str, Any]:
    """Push a slash command envelope (the form fields Slack would POST in HTTP mode); wait for its ack."""
    response_url = run.fake.new_response_url(channel=CHANNEL, user=user)
    payload = {
        "token": "legacy",
        "team_id": TEAM,
        "team_domain": "phasegate-test",
        "channel_id": CHANNEL,
        "channel_name": "proj-genres",
        "user_id": user,
        "user_name": user.lower(),
        "command": "/phasegate",
        "text": as_slack_sends(text),
        "api_app_id": "A0APP0001",
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": run.fake.new_trigger_id(user),
    }
    envelope_id = await run.fake.socket_send("slash_commands", payload)
    ack = (await wait_for(lambda: run.fake.socket_acks(envelope_id)))[-1]
    return {"envelope_id": envelope_id, "ack": ack, "response_id": response_url.rsplit("/", 1)[-1]}


async def answer(run: SocketRun, sent: dict[str, Any]) -> dict[str, Any]:
    """The ephemeral answer posted to the envelope's response_url, its blocks validated."""
    body: dict[str, Any] = (await wait_for(lambda: run.fake.responses(sent["response_id"])))[-1]["body"]
    validate_blocks(body.get("blocks") or [])
    return body


async def test_socket_mode_end_to_end(socket_run: SocketRun) -> None:
    run, fake = socket_run, socket_run.fake
    opened = fake.calls_to("apps.connections.open")
    assert len(opened) == 1 and opened[0].headers["Authorization"] == f"Bearer {APP_TOKEN}"
    assert [c["ready"] for c in fake.socket_connections(open_only=True)] == [True]
    # Locally only /healthz is served (Docker's healthcheck); Slack's requests come over the socket.
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{run.health_url}/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["database"] == "up"
        async with http.post(f"{run.health_url}/slack/events", data=b"{}") as resp:
            assert resp.status == 404

    # A slash command: acked at once (empty: the answer goes to response_url), then the work is done.
    sent = await command(run, "init genres repo=acme/genres")
    assert sent["ack"]["payload"] is None and sent["ack"]["known"]
    body = await answer(run, sent)
    assert body["response_type"] == "ephemeral" and "Created *genres*" in text_of(body)
    projects = await run.app.services.projects.list_all(team_id=TEAM)
    assert [p.name for p in projects] == ["genres"]
    posted = await wait_for(lambda: fake.messages(CHANNEL))
    validate_blocks(posted[-1]["blocks"])
    assert "New project: genres" in text_of(posted[-1])

    # An Events API envelope: app_home_opened publishes that person's Home tab.
    event = {
        "token": "legacy",
        "team_id": TEAM,
        "api_app_id": "A0APP0001",
        "type": "event_callback",
        "event_id": "Ev0SOCKET01",
        "event_time": int(time.time()),
        "event": {"type": "app_home_opened", "user": BO, "channel": "D0BO000001", "tab": "home"},
    }
    envelope_id = await fake.socket_send("events_api", event)
    home = await wait_for(lambda: fake.home_view(BO))
    validate_view(home)
    assert [v["user_id"] for v in fake.views("views.publish")].count(BO) == 1
    # Bolt acks once the listener has called ack() (it polls): the ack may come after the effect.
    assert (await wait_for(lambda: fake.socket_acks(envelope_id)))[0]["payload"] is None

    # An interactive envelope: a button the bot no longer knows gets a polite answer.
    response_url = fake.new_response_url(channel=CHANNEL, user=LEAD)
    press = {
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "phasegate-test"},
        "user": {"id": LEAD, "team_id": TEAM},
        "api_app_id": "A0APP0001",
        "trigger_id": fake.new_trigger_id(LEAD),
        "response_url": response_url,
        "container": {"type": "message", "channel_id": CHANNEL},
        "channel": {"id": CHANNEL},
        "actions": [
            {"type": "button", "action_id": "phasegate:no-such-button", "value": "1", "block_id": "b", "action_ts": "1"}
        ],
    }
    envelope_id = await fake.socket_send("interactive", press)
    pressed = {"response_id": response_url.rsplit("/", 1)[-1]}
    assert "no longer active" in text_of(await answer(run, pressed))
    assert (await wait_for(lambda: fake.socket_acks(envelope_id)))[0]["payload"] is None

    # Slack refreshes the connection: the client asks for a new URL, reconnects, and keeps working.
    first = fake.socket_connections()[0]["id"]
    assert await fake.socket_disconnect(reason="refresh_requested") == 1
    await wait_for(lambda: [c["id"] for c in fake.socket_connections(open_only=True)] not in ([], [first]))
    await wait_for(lambda: fake.socket_connections()[0]["closed"])
    assert len(fake.calls_to("apps.connections.open")) == 2
    sent = await command(run, "status")
    assert sent["ack"]["connection"] == fake.socket_connections(open_only=True)[0]["id"] != first
    assert "genres · Discovery" in text_of(await answer(run, sent))

    # Every envelope was acked exactly once, on the connection it was sent to; the client sent nothing else.
    assert sorted(a["envelope_id"] for a in fake.socket_acks()) == sorted(
        e["envelope_id"] for e in fake.socket_envelopes()
    )
    assert all(a["connection"] == fake.socket_envelopes(a["envelope_id"])[0]["connection"] for a in fake.socket_acks())
    assert fake.calls_to("_socket_message") == []


async def test_an_app_token_does_not_switch_off_signature_checks_in_http_mode(database_url: str) -> None:
    """Regression: create_app used to disable Bolt's request verification whenever SLACK_APP_TOKEN was set, so
    `phasegate serve --mode http` with both tokens accepted unsigned requests."""
    async with running_app(database_url, SLACK_APP_TOKEN=APP_TOKEN) as slack:
        form = urlencode(
            {
                "team_id": TEAM,
                "user_id": LEAD,
                "channel_id": CHANNEL,
                "command": "/phasegate",
                "text": "init sneaky",
                "response_url": slack.fake.new_response_url(),
                "trigger_id": "x",
            }
        )
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        async with slack.session.post(f"{slack.url}/slack/events", data=form.encode(), headers=headers) as resp:
            assert resp.status == 401
        assert await slack.app.services.projects.list_all(team_id=TEAM) == []
        assert (await slack.answer(await slack.command("help")))["response_type"] == "ephemeral"
