"""App Home: published when a person opens the tab (and after changes that concern them, via replies)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.services import Services
from handlers.common import refresh_home


def register(app: AsyncApp, services: Services, *, command: str = "/phasegate") -> None:
    @app.event("app_home_opened")
    async def on_home_opened(event: dict[str, Any], body: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home":
            return
        await refresh_home(
            services, team_id=str(body.get("team_id") or ""), user_id=str(event.get("user")), command=command
        )
