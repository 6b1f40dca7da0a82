"""Button listeners (reminders, escalations, Home): ack, run the action by id, answer."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands import run_action
from bot.services import Services
from handlers.common import context_for, deliver, responder


def register(app: AsyncApp, services: Services, *, command: str = "/phasegate") -> None:
    @app.action(re.compile(r"^phasegate:"))
    async def on_action(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        action = (body.get("actions") or [{}])[0]
        user = body.get("user") or {}
        team = body.get("team") or {}
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        ctx = await context_for(
            services,
            team_id=str(team.get("id") or user.get("team_id") or ""),
            user_id=str(user.get("id") or ""),
            channel_id=channel,
            command=command,
        )
        reply = await run_action(ctx, str(action.get("action_id")), str(action.get("value") or ""))
        await deliver(ctx, reply, client=client, respond=responder(body, client), trigger_id=body.get("trigger_id"))
