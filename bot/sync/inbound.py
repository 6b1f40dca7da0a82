"""`POST /github/webhook`: verify the HMAC signature, drop redeliveries, queue the event, answer at once."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.Response]]


@dataclass(frozen=True)
class WebhookEvent:
    """One verified delivery: `X-GitHub-Event`, `X-GitHub-Delivery` and the JSON payload."""

    delivery_id: str
    event: str
    payload: dict[str, Any]


class WebhookReceiver(Protocol):
    """Where verified deliveries go (SyncService implements it)."""

    async def store(self, *, guid: str, event: str, action: str, body: str) -> bool:
        """Persist the delivery (the leader applies it later); False when this GUID is already stored."""
        ...


def malformed(event: str, payload: dict[str, Any]) -> str | None:
    """Why a signed payload cannot be applied (None when it can): what GitHub always sends is missing."""
    if not isinstance(payload.get("repository"), dict):
        return "the payload has no repository object"
    key = "issue" if event == "issues" else "milestone"
    item = payload.get(key)
    if not isinstance(item, dict):
        return f"the payload has no {key} object"
    if not isinstance(item.get("number"), int):
        return f"the {key} has no number"
    if event == "issues":
        from bot.github.gateway import parse_issue

        try:
            parse_issue(item)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return f"the issue cannot be read ({exc.__class__.__name__})"
    return None


def signature(secret: str | bytes, body: bytes) -> str:
    """`X-Hub-Signature-256` for `body`: "sha256=" + hex HMAC-SHA256."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """Constant-time check of `X-Hub-Signature-256` against the raw body."""
    if not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(signature(secret, body).encode(), header.strip().encode())


def make_webhook_handler(
    receiver: WebhookReceiver, *, secret: str, accepting: Callable[[], bool] = lambda: True
) -> Handler:
    """The aiohttp handler for `POST /github/webhook`: 401 on a bad signature (nothing changes), 400 for a signed
    but malformed payload, 200 for a redelivery or an event we ignore, 202 once the delivery is stored (not
    before: a crash after the 202 loses nothing), 503 while shutting down. GitHub wants an answer within 10 s."""
    if not secret:
        raise ValueError("a webhook secret is required (GITHUB_WEBHOOK_SECRET)")

    async def handle(request: web.Request) -> web.Response:
        if not accepting():
            return web.json_response({"error": "shutting down; deliver again later"}, status=503)
        body = await request.read()
        if not verify_signature(secret, body, request.headers.get("X-Hub-Signature-256")):
            log.warning("GitHub webhook with a missing or wrong signature refused")
            return web.json_response({"error": "bad signature"}, status=401)
        event = request.headers.get("X-GitHub-Event", "")
        delivery = request.headers.get("X-GitHub-Delivery", "")
        if not delivery or not event:
            return web.json_response({"error": "missing X-GitHub-Event or X-GitHub-Delivery"}, status=400)
        if event not in ("issues", "milestone"):
            return web.json_response({"ok": True, "ignored": event})  # ping, issue_comment, …
        try:
            payload = json.loads(body)
        except ValueError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        if not isinstance(payload, dict):
            return web.json_response({"error": "body is not a JSON object"}, status=400)
        problem = malformed(event, payload)
        if problem is not None:
            log.warning("GitHub %s delivery %s refused: %s", event, delivery[:100], problem)
            return web.json_response({"error": problem}, status=400)
        action = payload.get("action")
        stored = await receiver.store(
            guid=delivery, event=event, action=action if isinstance(action, str) else "", body=body.decode()
        )
        if not stored:
            return web.json_response({"ok": True, "duplicate": True})
        return web.json_response({"ok": True, "stored": True}, status=202)

    return handle
