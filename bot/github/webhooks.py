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
    """Where verified events go (SyncService implements it)."""

    async def seen(self, delivery_id: str) -> bool:
        """True when this delivery GUID has already been applied (a redelivery)."""
        ...

    def submit(self, event: WebhookEvent) -> None:
        """Queue the event; it is applied after the answer has gone out."""
        ...


def signature(secret: str | bytes, body: bytes) -> str:
    """`X-Hub-Signature-256` for `body`: "sha256=" + hex HMAC-SHA256."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """Constant-time check of `X-Hub-Signature-256` against the raw body."""
    if not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(signature(secret, body).encode(), header.strip().encode())


def make_webhook_handler(receiver: WebhookReceiver, *, secret: str) -> Handler:
    """The aiohttp handler for `POST /github/webhook`: 401 on a bad signature (nothing changes), 200 for a
    redelivery or an event we ignore, 202 once the event is queued. GitHub wants an answer within 10 s."""
    if not secret:
        raise ValueError("a webhook secret is required (GITHUB_WEBHOOK_SECRET)")

    async def handle(request: web.Request) -> web.Response:
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
        if await receiver.seen(delivery):
            return web.json_response({"ok": True, "duplicate": True})
        receiver.submit(WebhookEvent(delivery, event, payload))
        return web.json_response({"ok": True, "queued": True}, status=202)

    return handle
