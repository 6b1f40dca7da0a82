"""Typed delivery errors: transient (retry with backoff) or permanent (record and tell the lead)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_sdk.errors import SlackApiError

# Slack error codes that retrying can fix.
TRANSIENT_CODES = {"fatal_error", "internal_error", "ratelimited", "service_unavailable", "request_timeout"}
# Slack error codes that only a person can fix, and what to tell them.
FIXES = {
    "channel_not_found": "the channel was deleted or the bot cannot see it: invite the bot or pick another channel",
    "not_in_channel": "invite the bot to the channel (`/invite @Phasegate`)",
    "is_archived": "the channel is archived: unarchive it or move the project to another channel",
    "account_inactive": "the person's account is deactivated: remove them from the project",
    "user_not_found": "the person is not in this workspace: remove them from the project",
    "invalid_auth": "the bot's token is invalid: reinstall the app",
    "not_authed": "the bot's token is missing: reinstall the app",
    "token_revoked": "the bot's token was revoked: reinstall the app",
    "missing_scope": "the app lacks a permission: reinstall it with the scopes in the README",
    "cannot_dm_bot": "that user is a bot and cannot get direct messages",
    "app_uninstalled": "the workspace uninstalled Phasegate: add it to Slack again",
    "msg_too_long": "the message is too long for Slack",
    "restricted_action": "a workspace setting stops the bot from posting there",
}


class DeliveryError(Exception):
    """Slack did not accept a message; `permanent` says whether retrying can help."""

    def __init__(self, code: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(code)
        self.code, self.permanent, self.retry_after = code, permanent, retry_after

    @property
    def fix(self) -> str:
        return FIXES.get(self.code, "check the bot's access in Slack")


def classify(exc: BaseException) -> DeliveryError:
    """Map what the Slack client raised to a DeliveryError (unknown errors are permanent: never retried blind)."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, SlackApiError):
        response: Any = exc.response
        status = int(getattr(response, "status_code", 200) or 200)
        data = getattr(response, "data", response)  # a 5xx answers plain text, not JSON
        error = data.get("error") if isinstance(data, dict) else None
        code = str(error or f"http_{status}")
        headers = getattr(response, "headers", None) or {}
        retry_after: float | None = None
        raw = headers.get("Retry-After") or headers.get("retry-after")
        if raw is not None:
            try:
                retry_after = float(raw[0] if isinstance(raw, list) else raw)
            except (TypeError, ValueError):
                retry_after = None
        if status == 429 or status >= 500 or code in TRANSIENT_CODES or code.startswith("http_5"):
            return DeliveryError("ratelimited" if status == 429 else code, permanent=False, retry_after=retry_after)
        return DeliveryError(code, permanent=True)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, ConnectionError, OSError)):
        return DeliveryError(type(exc).__name__, permanent=False)
    try:
        import aiohttp

        if isinstance(exc, aiohttp.ClientError):
            return DeliveryError(type(exc).__name__, permanent=False)
    except ImportError:  # pragma: no cover
        pass
    logging.getLogger(__name__).error("unexpected error while delivering a message", exc_info=exc)
    return DeliveryError(type(exc).__name__, permanent=True)
