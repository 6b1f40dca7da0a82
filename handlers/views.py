"""Modal submissions: validate through the command layer; errors go back on the fields, input kept."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands import submit_form
from bot.services import Services
from handlers.common import context_for, deliver


def field_value(element: dict[str, Any]) -> str:
    """One input's value as the text syntax would spell it."""
    kind = element.get("type")
    if kind == "multi_users_select":
        return ",".join(f"<@{u}>" for u in element.get("selected_users") or [])
    if kind == "users_select":
        return f"<@{element['selected_user']}>" if element.get("selected_user") else ""
    if kind == "static_select":
        return str((element.get("selected_option") or {}).get("value") or "")
    if kind == "datetimepicker":
        ts = element.get("selected_date_time")
        return datetime.fromtimestamp(int(ts), UTC).isoformat().replace("+00:00", "Z") if ts else ""
    if kind == "datepicker":
        return str(element.get("selected_date") or "")
    return str(element.get("value") or "")


def form_values(state: dict[str, Any]) -> dict[str, str]:
    values: dict[str, str] = {}
    for block_id, actions in (state.get("values") or {}).items():
        for element in actions.values():
            values[block_id] = field_value(element)
    return values


def register(app: AsyncApp, services: Services, *, command: str = "/phasegate") -> None:
    @app.view(re.compile(r"^phasegate_form:"))
    async def on_submit(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        view = body.get("view") or {}
        user = body.get("user") or {}
        team_id = str((body.get("team") or {}).get("id") or user.get("team_id") or "")
        try:
            meta = {str(k): str(v) for k, v in json.loads(view.get("private_metadata") or "{}").items()}
        except (ValueError, AttributeError):
            meta = {}
        # A double-clicked submit arrives twice with the same view id and hash: act once.
        key = f"view:{view.get('id')}:{view.get('hash')}"
        if not await services.deliveries.first_time(source="slack", delivery_id=key):
            await ack()
            return
        # The answer (errors on the fields) goes in the ack itself: no Slack Web API call before it.
        ctx = await context_for(
            services,
            team_id=team_id,
            user_id=str(user.get("id") or ""),
            channel_id=meta.get("channel") or None,
            command=command,
            ask_slack=False,
        )
        form_name = str(view.get("callback_id", "")).split(":", 1)[1]
        reply = await submit_form(ctx, form_name, form_values(view.get("state") or {}), meta)
        if reply.field_errors:
            await ack(response_action="errors", errors=reply.field_errors)
            # The same view may be submitted again after the user fixes it.
            await services.deliveries.forget(source="slack", delivery_id=key)
            return
        await ack()
        await deliver(ctx, reply, client=client)
