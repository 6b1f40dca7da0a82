"""The slash command listener: ack at once, refuse a replay, parse and run through the command layer, answer."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands import dispatch
from bot.rendering import slack_unescape
from bot.services import Services
from handlers.common import context_for, deliver, replayed, responder


def register(app: AsyncApp, services: Services, *, command: str = "/phasegate") -> None:
    @app.command(command)
    async def on_command(
        ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, request: AsyncBoltRequest
    ) -> None:
        await ack()  # first: the replay guard's write happens after it, so the ack never waits for the database
        if await replayed(services, request.headers):
            return  # accepted once already: nothing is done twice
        ctx = await context_for(
            services,
            team_id=str(body.get("team_id") or ""),
            user_id=str(body.get("user_id") or ""),
            channel_id=body.get("channel_id"),
            command=command,
        )
        reply = await dispatch(ctx, slack_unescape(str(body.get("text") or "")))
        await deliver(ctx, reply, client=client, respond=responder(body, client), trigger_id=body.get("trigger_id"))
