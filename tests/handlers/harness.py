"""End-to-end harness: the real app over HTTP on loopback, signed Slack requests, the fake Slack Web API."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.app import PhasegateApp, create_app, serve_http
from bot.clock import Clock
from bot.config import load_settings
from tests.fakes.slack import FakeSlack

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TEAM = "T0TEAM0001"
CHANNEL = "C0PROJ0001"


_SLACK_MADE = re.compile(r"(<(?:@[UW][A-Z0-9]+|#[CG][A-Z0-9]+)\|[^>]*>)")


def as_slack_sends(text: str) -> str:
    """Slash-command text as Slack delivers it: `& < >` typed by the person escaped, its own mentions kept."""
    parts = _SLACK_MADE.split(text)
    return "".join(
        p if _SLACK_MADE.fullmatch(p) else p.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        for p in parts
    )


def sign(body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 request signature headers for a raw body."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def validate_blocks(blocks: list[dict[str, Any]]) -> None:
    """Every block must parse and validate with slack_sdk's models (Block Kit limits included)."""
    assert isinstance(blocks, list)
    assert len(blocks) <= 50
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None, block
        parsed.validate_json()


def validate_view(view: dict[str, Any]) -> None:
    View(**view).validate_json()
    assert len(view.get("blocks", [])) <= 100


class SlackHarness:
    """Drives the running app like Slack would, and reads what the fake Slack received."""

    def __init__(self, app: PhasegateApp, fake: FakeSlack, url: str, session: aiohttp.ClientSession) -> None:
        self.app, self.fake, self.url, self.session = app, fake, url, session

    async def post(self, body: str, content_type: str, headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
        hdrs = {"Content-Type": content_type, **sign(body), **(headers or {})}
        async with self.session.post(f"{self.url}/slack/events", data=body.encode(), headers=hdrs) as resp:
            await resp.read()
            return resp

    async def command(self, text: str, *, user: str = "U0LEAD0001", channel: str = CHANNEL) -> dict[str, Any]:
        """Send a signed slash command; returns ids to find its answers (response_url id, trigger id)."""
        response_url = self.fake.new_response_url(channel=channel, user=user)
        trigger = self.fake.new_trigger_id(user)
        form = {
            "token": "legacy",
            "team_id": TEAM,
            "team_domain": "phasegate-test",
            "channel_id": channel,
            "channel_name": "proj",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/phasegate",
            "text": as_slack_sends(text),
            "api_app_id": "A0APP0001",
            "response_url": response_url,
            "trigger_id": trigger,
        }
        resp = await self.post(urlencode(form), "application/x-www-form-urlencoded")
        assert resp.status == 200
        return {"response_url": response_url, "response_id": response_url.rsplit("/", 1)[-1], "trigger": trigger}

    async def interactive(self, payload: dict[str, Any]) -> aiohttp.ClientResponse:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post(body, "application/x-www-form-urlencoded")

    async def press(
        self, action_id: str, value: str, *, user: str = "U0LEAD0001", channel: str | None = CHANNEL
    ) -> dict[str, Any]:
        response_url = self.fake.new_response_url(channel=channel, user=user)
        trigger = self.fake.new_trigger_id(user)
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": TEAM, "domain": "phasegate-test"},
            "user": {"id": user, "team_id": TEAM},
            "api_app_id": "A0APP0001",
            "trigger_id": trigger,
            "response_url": response_url,
            "actions": [{"type": "button", "action_id": action_id, "value": value, "block_id": "b", "action_ts": "1"}],
            "container": {"type": "message", "channel_id": channel} if channel else {"type": "view"},
        }
        if channel:
            payload["channel"] = {"id": channel}
        resp = await self.interactive(payload)
        assert resp.status == 200
        return {"response_id": response_url.rsplit("/", 1)[-1], "trigger": trigger}

    async def submit(
        self, view: dict[str, Any], values: dict[str, dict[str, Any]], *, user: str = "U0LEAD0001"
    ) -> dict[str, Any]:
        """Submit a modal the fake recorded as opened, with element states by block_id."""
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM, "domain": "phasegate-test"},
            "user": {"id": user, "team_id": TEAM},
            "api_app_id": "A0APP0001",
            "trigger_id": self.fake.new_trigger_id(user),
            "view": {
                **view,
                "id": view.get("id", "V0001"),
                "hash": view.get("hash", "1.abc"),
                "state": {"values": {bid: {"v": element} for bid, element in values.items()}},
            },
        }
        body = urlencode({"payload": json.dumps(payload)})
        hdrs = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
        async with self.session.post(f"{self.url}/slack/events", data=body.encode(), headers=hdrs) as resp:
            text = await resp.text()
            return {"status": resp.status, "body": json.loads(text) if text.startswith("{") else text}

    async def event(self, event: dict[str, Any], *, event_id: str, retry: int | None = None) -> int:
        body = json.dumps(
            {
                "token": "legacy",
                "team_id": TEAM,
                "api_app_id": "A0APP0001",
                "type": "event_callback",
                "event_id": event_id,
                "event_time": int(time.time()),
                "event": event,
            }
        )
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else {}
        resp = await self.post(body, "application/json", headers)
        return resp.status

    async def wait_for(self, predicate: Callable[[], Any], within: float = 5.0) -> Any:
        """Poll until the (asynchronous, after-ack) effect is visible; fail loudly otherwise."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            result = predicate()
            if result:
                return result
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("timed out waiting for the bot's answer")
            await asyncio.sleep(0.01)

    async def answer(self, sent: dict[str, Any]) -> dict[str, Any]:
        """The ephemeral answer posted to a command's response_url."""
        responses = await self.wait_for(lambda: self.fake.responses(sent["response_id"]))
        body = responses[-1]["body"] if "body" in responses[-1] else responses[-1]
        validate_blocks(body.get("blocks") or [])
        return dict(body)

    def text_of(self, message: dict[str, Any]) -> str:
        parts = [str(message.get("text") or "")]
        for block in message.get("blocks") or []:
            text = block.get("text")
            if isinstance(text, dict):
                parts.append(str(text.get("text", "")))
            for f in block.get("fields") or []:
                parts.append(str(f.get("text", "")))
            for e in block.get("elements") or []:
                if isinstance(e, dict) and "text" in e:
                    t = e["text"]
                    parts.append(str(t.get("text", "") if isinstance(t, dict) else t))
        return "\n".join(parts)


def oracle_fake_slack_port() -> int:
    """The port the fake Slack takes under the oracle: what `--slack-upstream` names (8091 unless
    ORACLE_FAKE_SLACK_PORT says otherwise, so several checkouts can run the oracle at once)."""
    return int(os.environ.get("ORACLE_FAKE_SLACK_PORT") or 8091)


@asynccontextmanager
async def running_app(
    database_url: str, *, clock: Clock | None = None, fake_options: dict[str, Any] | None = None, **env: str
) -> AsyncIterator[SlackHarness]:
    fake = FakeSlack(team_id=TEAM, **(fake_options or {}))
    # Under ../shared/oracle/oracle.py the bot talks to Prism, which forwards to the fake on ORACLE_FAKE_SLACK_PORT.
    oracle_url = os.environ.get("ORACLE_SLACK_URL")
    api_url = await fake.start(port=oracle_fake_slack_port() if oracle_url else 0)
    api_url = oracle_url or api_url
    for uid, name, tz in (
        ("U0LEAD0001", "lena", "Europe/Berlin"),
        ("U0BIZZ0001", "bo", "America/New_York"),
        ("U0MLEN0001", "raj", "Asia/Kolkata"),
        ("U0MLEN0002", "mia", "America/Los_Angeles"),
    ):
        fake.add_user(uid, name, tz=tz)
    fake.add_channel(CHANNEL, "proj-genres", members=["U0LEAD0001", "U0BIZZ0001", "U0MLEN0001", "U0MLEN0002"])
    settings = load_settings(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-test-token",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=api_url,
        **env,
    )
    app = create_app(settings, clock=clock)
    runner = await serve_http(app, host="127.0.0.1", port=0)
    port = runner.addresses[0][1]
    async with aiohttp.ClientSession() as session:
        try:
            yield SlackHarness(app, fake, f"http://127.0.0.1:{port}", session)
        finally:
            await runner.cleanup()
            await app.close()
            await fake.stop()
