"""Events API listeners, with dedupe of Slack's retried deliveries by event_id."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncSay
from slack_bolt.response import BoltResponse

from bot.commands.base import notice
from bot.services import Services

log = logging.getLogger(__name__)


def register(app: AsyncApp, services: Services, *, command: str = "/phasegate") -> None:
    @app.middleware
    async def drop_repeated_events(
        body: dict[str, Any], next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse | None:
        # Slack retries an event it thinks we missed (X-Slack-Retry-Num); act on each event_id once.
        if body.get("type") == "event_callback" and body.get("event_id"):
            if not await services.deliveries.first_time(source="slack", delivery_id=f"event:{body['event_id']}"):
                log.info("dropping repeated event %s", body["event_id"])
                return BoltResponse(status=200, body="")
        return await next()

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: AsyncSay) -> None:
        message = notice(
            f"I work through `{command}`: `{command} status` shows where this project stands, "
            f"`{command} help` lists everything I do."
        )
        await say(text=message.text, blocks=message.blocks, thread_ts=event.get("thread_ts") or event.get("ts"))
