"""An oversized slash command answered "too long" before Bolt parses it (issue 10: bad input never freezes).

Slack caps slash-command text far below `EARLY_LIMIT`, so a bigger form body is a pasted blob or an attack.
Bolt would parse the whole form (parse_qs of megabytes) and the command layer would unescape it before
refusing it; here only the signature is checked over the raw bytes, the few small fields needed for the
answer are cut out, and the answer goes to the response_url after the 200."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import unquote_plus

from aiohttp import web
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.commands.base import too_long

log = logging.getLogger(__name__)

EARLY_LIMIT = 64 * 1024  # bytes of form body: above this a slash command is refused unread
MAX_BODY = 10 * 1024 * 1024  # aiohttp's cap: 1 MB of typed `&<>` is ~9 MB once Slack-escaped and form-encoded
FIELDS = ("command", "response_url", "ssl_check")

_tasks: set[asyncio.Task[None]] = set()


def oversized(request: web.Request) -> bool:
    """A form-encoded request too big to be a real slash command (checked further by `refuse_oversized`)."""
    return (request.content_length or 0) > EARLY_LIMIT and request.content_type == "application/x-www-form-urlencoded"


def small_fields(body: bytes) -> dict[str, str]:
    """The named fields of a form body, without decoding the large ones."""
    found: dict[str, str] = {}
    for part in body.split(b"&"):
        name, _, value = part.partition(b"=")
        key = name.decode("ascii", "replace")
        if key in FIELDS and len(value) < 2048:
            found[key] = unquote_plus(value.decode("ascii", "replace"))
        elif key == "text":
            found["text_bytes"] = str(len(value))
    return found


async def refuse_oversized(
    request: web.Request,
    *,
    signing_secret: str | None,
    first_time: Callable[[str], Awaitable[bool]],
    command: str,
) -> web.Response | None:
    """For a slash command: verify, answer 200 at once, then post "too long" to the response_url (401 when not
    signed by Slack). None for anything else (a big interaction payload): Bolt handles it (the body stays read)."""
    body = await request.read()
    fields = small_fields(body)
    if "command" not in fields:
        return None
    signature = request.headers.get("X-Slack-Signature", "")
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    if not signing_secret or not SignatureVerifier(signing_secret).is_valid(body, timestamp, signature):
        return web.json_response({"error": "invalid request"}, status=401)
    if not await first_time(signature):
        return web.Response(status=200)  # a replay: answered once already
    url = fields.get("response_url", "")
    if not url.startswith(("https://", "http://")):
        log.info("an oversized slash command (%d bytes) without a response_url: not answered", len(body))
        return web.Response(status=200)
    message = too_long(None, command=fields.get("command") or command)
    task = asyncio.get_running_loop().create_task(_answer(url, message.text, message.blocks))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    log.info("refused an oversized slash command (%d bytes) before parsing it", len(body))
    return web.Response(status=200)


async def _answer(url: str, text: str, blocks: list[dict[str, object]]) -> None:
    try:
        await AsyncWebhookClient(url).send(text=text, blocks=blocks, response_type="ephemeral")
    except Exception:  # the response_url expired or is unreachable: nothing else to tell
        log.warning("could not answer an oversized slash command", exc_info=True)
