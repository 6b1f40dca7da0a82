"""Which workspaces are served: one (SLACK_BOT_TOKEN: a request from any other team_id is refused), or every
workspace that installed the app (many-workspaces mode: app_uninstalled and tokens_revoked stop one)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext
from slack_bolt.response import BoltResponse

from bot.slack_oauth import Installations

log = logging.getLogger(__name__)


def other_workspace_refusal(command: str) -> str:
    return (
        "This Phasegate serves one Slack workspace, and this is not it. Ask whoever runs it to set it up for "
        f"many workspaces (SLACK_CLIENT_ID and SLACK_CLIENT_SECRET), then add it to this workspace; `{command}` "
        "works here after that."
    )


def register(app: AsyncApp, installations: Installations | None, *, command: str = "/phasegate") -> None:
    if installations is None:
        app.middleware(_single_workspace(command))
        return
    app.event("app_uninstalled")(_uninstalled(installations))
    app.event("tokens_revoked")(_tokens_revoked(installations))


def _single_workspace(
    command: str,
) -> Callable[[dict[str, Any], AsyncBoltContext, Callable[[], Awaitable[BoltResponse]]], Awaitable[BoltResponse]]:
    async def only_our_workspace(
        body: dict[str, Any], context: AsyncBoltContext, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        """SLACK_BOT_TOKEN's workspace only: a request signed for this app but from another team_id (e.g. a
        second workspace that installed the app) is refused, since its data would land in this workspace."""
        ours = context.authorize_result.team_id if context.authorize_result is not None else None
        theirs = context.team_id
        if ours and theirs and ours != theirs and not context.is_enterprise_install:
            log.warning("refused a request from workspace %s: this deployment serves %s", theirs, ours)
            if body.get("command"):
                text = other_workspace_refusal(command)
                return BoltResponse(
                    status=200,
                    body=json.dumps({"response_type": "ephemeral", "text": text}),
                    headers={"content-type": "application/json"},
                )
            return BoltResponse(status=200, body="")
        return await next()

    return only_our_workspace


def _uninstalled(installations: Installations) -> Callable[..., Awaitable[None]]:
    async def on_app_uninstalled(body: dict[str, Any], context: AsyncBoltContext) -> None:
        team = context.team_id or str(body.get("team_id") or "")
        if team:
            await installations.uninstalled(team, enterprise_id=context.enterprise_id)

    return on_app_uninstalled


def _tokens_revoked(installations: Installations) -> Callable[..., Awaitable[None]]:
    async def on_tokens_revoked(body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
        """Only the bot token matters: user tokens are never kept."""
        team = context.team_id or str(body.get("team_id") or "")
        if team and (event.get("tokens") or {}).get("bot"):
            await installations.uninstalled(team, enterprise_id=context.enterprise_id)

    return on_tokens_revoked
