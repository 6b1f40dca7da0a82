"""Local fake of the Slack Web API (and Socket Mode): aiohttp server with state, call recording, faults and a
control API."""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import itertools
import json
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from aiohttp import WSCloseCode, WSMsgType, web
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

JSON = dict[str, Any]
Handler = Callable[["FakeSlack", JSON], JSON]
H = TypeVar("H", bound=Handler)

METHODS: dict[str, Handler] = {}  # the dispatch table: Slack method name -> handler(fake, params)
MESSAGE_KEYS = ("type", "subtype", "text", "user", "bot_id", "team", "ts", "thread_ts", "blocks",
                "attachments", "files", "upload", "reactions")  # fields of Slack's message object
MAX_VIEW_BYTES = 250_000  # views.open docs: view_too_large "if the provided view is greater than 250kb"
REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}
APP_TOKEN_METHODS = {"apps.connections.open"}  # methods that take the app-level token (xapp-), not xoxb-/xoxp-
SOCKET_TYPES = ("slash_commands", "interactive", "events_api")  # the envelope types Socket Mode delivers


def api(name: str) -> Callable[[H], H]:
    """Register a handler for Slack Web API method `name` in METHODS."""
    def register(fn: H) -> H:
        METHODS[name] = fn
        return fn
    return register


class SlackError(Exception):
    """An `{"ok": false, "error": code, ...extra}` answer."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error, self.extra = error, extra


@dataclass
class Call:
    """One request the fake received: `method` is the API method, `_upload`, `_response`, `_socket` (a Socket
    Mode WebSocket handshake; status 101 when accepted) or `_socket_ack` / `_socket_message` (a text frame the
    client sent over it, http_method "WS"); `status` is the HTTP status answered (0: connection dropped by a
    fault); `response` the JSON body or text answered."""

    method: str
    params: JSON
    headers: dict[str, str]
    http_method: str
    status: int = 200
    response: Any = None

    def to_dict(self) -> JSON:
        return asdict(self)


@dataclass
class Fault:
    status: int = 429
    retry_after: int = 1
    error: str | None = None
    drop: bool = False  # handle the request, then close the connection without answering
    before: bool = False  # with drop: close the connection before the request takes effect


@dataclass
class SocketConnection:
    """One Socket Mode WebSocket the fake accepted from a URL that apps.connections.open gave out."""

    id: str
    opened: float
    ws: web.WebSocketResponse = field(repr=False)
    ready: bool = False  # `hello` sent: envelopes may follow
    refreshing: bool = False  # a `disconnect` was sent: no new envelopes go here
    closed: bool = False

    def to_dict(self) -> JSON:
        return {"id": self.id, "opened": self.opened, "ready": self.ready, "refreshing": self.refreshing,
                "closed": self.closed or self.ws.closed}

    @property
    def open(self) -> bool:
        return self.ready and not (self.closed or self.ws.closed)


@dataclass
class User:
    id: str
    name: str
    real_name: str
    tz: str = "UTC"
    email: str = ""
    status_text: str = ""
    status_emoji: str = ""
    status_expiration: int = 0
    away: bool = False
    is_admin: bool = False
    is_bot: bool = False
    deleted: bool = False


@dataclass
class Channel:
    id: str
    name: str
    members: list[str] = field(default_factory=list)
    is_private: bool = False
    is_im: bool = False
    is_mpim: bool = False
    created: int = 0


def _bool(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _jsonish(value: Any) -> Any:
    """Form bodies carry JSON as text (blocks, view, files, ...); JSON bodies carry real values."""
    return json.loads(value) if isinstance(value, str) else value


def _cursor(prefix: str, item_id: str) -> str:
    return base64.b64encode(f"{prefix}:{item_id}".encode()).decode()


def _block_problems(blocks: Any, limit: int, where: str) -> list[str]:
    """Block Kit checks: at most `limit` objects with a `type`, each passing slack_sdk's validators."""
    if not isinstance(blocks, list):
        return [f"[ERROR] expected an array [json-pointer:{where}]"]
    problems = []
    if len(blocks) > limit:
        problems.append(f"[ERROR] no more than {limit} items allowed [json-pointer:{where}]")
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            problems.append(f"[ERROR] missing required field: type [json-pointer:{where}/{i}]")
            continue
        try:
            parsed = Block.parse(block)  # None for block types slack_sdk does not know: accepted as is
            if parsed is not None:
                parsed.to_dict()  # runs slack_sdk's length/shape validators recursively
        except Exception as e:  # SlackObjectFormationError, or TypeError/KeyError on malformed input
            problems.append(f"[ERROR] {e} [json-pointer:{where}/{i}]")
    return problems


class FakeSlack:
    """Fake slack.com/api: `await start()` in-process, or `python -m tests.fakes.slack --port N`."""

    def __init__(self, *, team_id: str = "T0001", team_name: str = "Phasegate Test",
                 team_domain: str = "phasegate-test", bot_user_id: str = "U0BOT0001",
                 bot_id: str = "B0BOT0001", bot_name: str = "phasegate", app_id: str = "A0APP0001",
                 clock: Callable[[], float] = time.time, trigger_ttl: float = 3.0,
                 response_url_ttl: float = 1800.0, response_url_uses: int = 5,
                 public_url: str | None = None) -> None:
        self.team_id, self.team_name, self.team_domain = team_id, team_name, team_domain
        self.bot_user_id, self.bot_id, self.bot_name, self.app_id = bot_user_id, bot_id, bot_name, app_id
        self.clock, self.trigger_ttl = clock, trigger_ttl
        self.response_url_ttl, self.response_url_uses = response_url_ttl, response_url_uses
        self.valid_tokens: set[str] | None = None  # None: any xoxb-/xoxp- token is valid
        self.delay = 0.0  # seconds before every Web API answer (a slow Slack)
        self.public_url = public_url  # base for upload/response URLs; default: the address start() bound
        self.api_url = ""
        self._bound = "http://127.0.0.1"
        self._runner: web.AppRunner | None = None
        self._sockets: list[SocketConnection] = []
        self._socket_tasks: set[asyncio.Task[None]] = set()
        self.reset()

    # ---- state & seeding -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget all state (users, channels, messages, views, files, calls, faults, envelopes and acks); keep
        the settings and open Socket Mode connections."""
        self.calls: list[Call] = []
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self._messages: list[JSON] = []
        self._ephemerals: list[JSON] = []
        self._view_events: list[JSON] = []
        self._views: dict[str, JSON] = {}
        self._home: dict[str, JSON] = {}
        self._files: dict[str, JSON] = {}
        self._triggers: dict[str, JSON] = {}
        self._response_urls: dict[str, JSON] = {}
        self._responses: list[JSON] = []
        self._faults: dict[str, deque[Fault]] = {}
        self._socket_urls: dict[str, JSON] = {}  # apps.connections.open tickets: id -> {created, used}
        self._envelopes: list[JSON] = []
        self._acks: list[JSON] = []
        # OAuth (many-workspaces mode): codes issued for an "Add to Slack" click, the bot tokens and refresh
        # tokens oauth.v2.access handed out (token -> workspace), and the tokens revoked by an uninstall.
        self.oauth_client: tuple[str, str] | None = None  # (client_id, client_secret) to require; None: any
        self.token_rotation = False  # oauth.v2.access answers expiring tokens with refresh tokens
        self.token_ttl = 43200  # seconds an access token lives with rotation
        self._oauth_codes: dict[str, JSON] = {}
        self._token = ""  # the token of the call being answered
        self.bot_tokens: dict[str, JSON] = {}  # access token -> {team_id, team_name, expires_at}
        self._refresh_tokens: dict[str, JSON] = {}  # refresh token -> its grant
        self.revoked_tokens: set[str] = set()
        self._sockets = [s for s in self._sockets if s.open]  # live connections survive a reset
        self._seq = itertools.count(1)
        self._last_us = 0
        self.add_user(self.bot_user_id, self.bot_name, real_name=self.bot_name, is_bot=True)

    def add_user(self, user_id: str, name: str, tz: str = "UTC", status_text: str = "", away: bool = False,
                 is_admin: bool = False, *, real_name: str | None = None, email: str | None = None,
                 status_emoji: str = "", status_expiration: int = 0, is_bot: bool = False,
                 deleted: bool = False) -> User:
        ZoneInfo(tz)  # fail early on an unknown zone
        email = email if email is not None else f"{name}@example.com"
        user = User(user_id, name, real_name or name.title(), tz, email, status_text, status_emoji,
                    status_expiration, away, is_admin, is_bot, deleted)
        self.users[user_id] = user
        return user

    def add_channel(self, channel_id: str, name: str, members: list[str] | None = None, *,
                    is_private: bool = False) -> Channel:
        channel = Channel(channel_id, name, list(members or []), is_private, created=int(self.clock()))
        self.channels[channel_id] = channel
        return channel

    def add_fault(self, method: str, status: int = 429, retry_after: int = 1, count: int = 1,
                  error: str | None = None, drop: bool = False, before: bool = False) -> None:
        """Make the next `count` calls to `method` (or `_upload` / `_response`) fail: HTTP 429 with
        Retry-After, another HTTP status (5xx: plain text body), `{"ok": false, "error": error}`, or a
        dropped connection (drop=True: the request takes effect, the client gets no answer; with before=True
        the connection is reset before it takes effect)."""
        fault = Fault(status, retry_after, error, drop, before)
        self._faults.setdefault(method, deque()).extend(fault for _ in range(count))

    def new_oauth_code(self, team_id: str, team_name: str = "", user_id: str = "U0INSTALL") -> str:
        """The `code` Slack puts on the redirect after a person in `team_id` clicks Allow."""
        code = f"{next(self._seq)}.{secrets.token_hex(12)}"
        self._oauth_codes[code] = {"team_id": team_id, "team_name": team_name or team_id, "user_id": user_id}
        return code

    def revoke_team(self, team_id: str) -> None:
        """The workspace uninstalled the app: its tokens stop working (invalid_auth/token_revoked)."""
        for token, grant in list(self.bot_tokens.items()):
            if grant["team_id"] == team_id:
                self.revoked_tokens.add(token)
        for refresh, grant in list(self._refresh_tokens.items()):
            if grant["team_id"] == team_id:
                del self._refresh_tokens[refresh]

    def team_of(self, token: str) -> str | None:
        grant = self.bot_tokens.get(token)
        return str(grant["team_id"]) if grant else None

    def new_trigger_id(self, user_id: str | None = None) -> str:
        trigger_id = f"{next(self._seq)}.{int(self.clock())}.{secrets.token_hex(16)}"
        self._triggers[trigger_id] = {"created": self.clock(), "used": False, "user_id": user_id}
        return trigger_id

    def new_response_url(self, channel: str | None = None, user: str | None = None) -> str:
        rid = f"{next(self._seq)}{secrets.token_hex(8)}"
        self._response_urls[rid] = {"created": self.clock(), "uses": 0, "channel": channel, "user": user}
        return f"{self._base()}/_response/{rid}"

    # ---- queries ---------------------------------------------------------------------------------------
    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def messages(self, channel: str | None = None, include_deleted: bool = False) -> list[JSON]:
        return [m for m in self._messages
                if (channel is None or m["channel"] == channel) and (include_deleted or not m.get("deleted"))]

    def ephemerals(self, user: str | None = None, channel: str | None = None) -> list[JSON]:
        return [e for e in self._ephemerals
                if (user is None or e["user"] == user) and (channel is None or e["channel"] == channel)]

    def views(self, method: str | None = None) -> list[JSON]:
        """Every views.* event: {method, view_id, view (as sent), trigger_id, user_id, external_id}."""
        return [v for v in self._view_events if method is None or v["method"] == method]

    def views_opened(self) -> list[JSON]:
        return [v for v in self._view_events if v["method"] in ("views.open", "views.push")]

    def view(self, view_id: str) -> JSON | None:
        """The current state of a view (as Slack would return it)."""
        return self._views.get(view_id)

    def home_view(self, user_id: str) -> JSON | None:
        return self._home.get(user_id)

    def files(self) -> list[JSON]:
        return list(self._files.values())

    def dm_channel_of(self, user_id: str) -> str | None:
        return next((c.id for c in self.channels.values() if c.is_im and user_id in c.members), None)

    def responses(self, id: str | None = None) -> list[JSON]:
        """Accepted posts to response URLs: {id, body, channel, user}."""
        return [r for r in self._responses if id is None or r["id"] == id]

    def socket_connections(self, open_only: bool = False) -> list[JSON]:
        """Socket Mode WebSockets accepted so far, oldest first: {id, opened, ready, refreshing, closed}."""
        return [s.to_dict() for s in self._sockets if s.open or not open_only]

    def socket_envelopes(self, envelope_id: str | None = None) -> list[JSON]:
        """Envelopes sent by socket_send: the message as sent plus {connection, sent}."""
        return [e for e in self._envelopes if envelope_id is None or e["envelope_id"] == envelope_id]

    def socket_acks(self, envelope_id: str | None = None) -> list[JSON]:
        """Acknowledgements the client sent: {envelope_id, payload (None when it sent none), connection, known
        (an envelope this fake sent)}."""
        return [a for a in self._acks if envelope_id is None or a["envelope_id"] == envelope_id]

    # ---- Socket Mode: push envelopes to the connected client -------------------------------------------
    async def socket_send(self, payload_type: str, payload: JSON, *, accepts_response_payload: bool | None = None,
                          retry_attempt: int = 0, retry_reason: str = "", within: float = 5.0) -> str:
        """Send `payload` (the body Slack would POST in HTTP mode: a slash command's fields, an interactive
        payload, an event_callback) in an envelope of `payload_type` to the newest open connection, waiting up
        to `within` s for one (e.g. while the client reconnects). Returns the envelope_id to find its ack.

        accepts_response_payload defaults to true for slash commands (as in slack_sdk's recorded envelopes),
        view submissions and options requests (⚠ assumed: their ack carries the answer), false for other
        interactions and for events (also as recorded); pass it to override."""
        if payload_type not in SOCKET_TYPES:
            raise ValueError(f"payload_type must be one of {', '.join(SOCKET_TYPES)}")
        conn = await self._socket_target(within)
        if accepts_response_payload is None:
            accepts_response_payload = payload_type == "slash_commands" or (
                payload_type == "interactive" and payload.get("type") in ("view_submission", "block_suggestion"))
        message: JSON = {"envelope_id": str(uuid.uuid4()), "payload": payload, "type": payload_type,
                         "accepts_response_payload": accepts_response_payload}
        if payload_type == "events_api":
            message.update(retry_attempt=retry_attempt, retry_reason=retry_reason)
        self._envelopes.append({**message, "connection": conn.id, "sent": self.clock()})
        await conn.ws.send_json(message)
        return str(message["envelope_id"])

    async def socket_disconnect(self, reason: str = "refresh_requested", *, close_after: float | None = None) -> int:
        """Send `{"type": "disconnect", "reason": ...}` to every open connection (Slack does this before it
        refreshes one: the client should call apps.connections.open again and reconnect). No new envelopes go
        to those connections; with `close_after` the fake also closes them that many seconds later, if the
        client has not. Returns how many connections were told."""
        targets = [s for s in self._sockets if s.open]
        for conn in targets:
            conn.refreshing = True
            await conn.ws.send_json({"type": "disconnect", "reason": reason, "debug_info": {"host": "fake-slack"}})
            if close_after is not None:
                task = asyncio.create_task(self._close_socket_later(conn, close_after))
                self._socket_tasks.add(task)
                task.add_done_callback(self._socket_tasks.discard)
        return len(targets)

    async def socket_drop(self, code: int = WSCloseCode.GOING_AWAY) -> int:
        """Close every open connection from the server side without warning; returns how many."""
        targets = [s for s in self._sockets if not (s.closed or s.ws.closed)]
        for conn in targets:
            await conn.ws.close(code=code, message=b"fake slack closed the connection")
        return len(targets)

    async def _close_socket_later(self, conn: SocketConnection, delay: float) -> None:
        await asyncio.sleep(delay)
        if not conn.ws.closed:
            await conn.ws.close(code=WSCloseCode.GOING_AWAY)

    async def _socket_target(self, within: float) -> SocketConnection:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            ready = [s for s in self._sockets if s.open and not s.refreshing]
            if ready:
                return ready[-1]
            if loop.time() >= deadline:
                raise RuntimeError("no Socket Mode client is connected to the fake")
            await asyncio.sleep(0.01)

    # ---- server ----------------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._serve_api)
        app.router.add_post("/_upload/{file_id}", self._serve_upload)
        app.router.add_post("/_response/{rid}", self._serve_response_url)
        app.router.add_get("/_socket/{sid}", self._serve_socket)
        app.router.add_get("/_fake/{what}", self._control_get)
        app.router.add_post("/_fake/{what}", self._control_post)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound = self._runner.addresses[0][1]
        self._bound = f"http://{host}:{bound}"
        self.api_url = f"{self._bound}/api/"
        return self.api_url

    async def stop(self) -> None:
        for task in list(self._socket_tasks):
            task.cancel()
        await self.socket_drop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _base(self) -> str:
        return (self.public_url or self._bound).rstrip("/")

    def _ws_base(self) -> str:
        return "ws" + self._base().removeprefix("http")  # http -> ws, https -> wss

    def _record(self, request: web.Request, method: str, params: JSON) -> tuple[Call, Fault | None]:
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "content-type")}
        call = Call(method, params, headers, request.method)
        self.calls.append(call)
        queue = self._faults.get(method)
        return call, (queue.popleft() if queue else None)

    def _finish(self, request: web.Request, call: Call, fault: Fault | None, status: int, body: Any,
                headers: dict[str, str] | None = None) -> web.StreamResponse:
        """Answer `body` (dict -> JSON, str -> text), unless a fault says otherwise."""
        if fault is not None and not fault.drop:
            headers = None
            if fault.error:
                status, body = 200, {"ok": False, "error": fault.error}
            elif fault.status == 429:
                status, body = 429, {"ok": False, "error": "ratelimited"}
                headers = {"Retry-After": str(fault.retry_after)}
            else:
                status, body = fault.status, REASONS.get(fault.status, "error")
        call.status, call.response = status, body
        if fault is not None and fault.drop:
            call.status = 0
            assert request.transport is not None
            request.transport.abort()  # the client sees the connection close with no response
            return web.Response()
        if isinstance(body, dict):
            return web.json_response(body, status=status, headers=headers)
        return web.Response(text=str(body), status=status, headers=headers)

    async def _serve_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if self.delay:
            await asyncio.sleep(self.delay)
        params: JSON = dict(request.query)
        is_json = request.content_type == "application/json"
        problem = None
        if request.method == "POST" and request.body_exists:
            if is_json:
                try:
                    body = await request.json()
                except ValueError:
                    body, problem = {}, "invalid_json"
                if not isinstance(body, dict):
                    body, problem = {}, "json_not_object"
                params.update(body)
            else:
                form = await request.post()
                params.update({k: v for k, v in form.items() if isinstance(v, str)})
        call, fault = self._record(request, method, params)
        if fault is not None and (not fault.drop or fault.before):
            return self._finish(request, call, fault, 0, None)
        try:
            if problem:
                raise SlackError(problem)
            # Slack ignores a `token` inside a JSON body: JSON callers must send the Authorization header
            if method == "oauth.v2.access":  # client credentials (Basic auth or form), not a token
                body = {"ok": True, **self._oauth_access(request.headers.get("Authorization", ""), dict(params))}
                return self._finish(request, call, fault, 200, body)
            bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            token = bearer or (None if is_json else params.pop("token", None))
            body = {"ok": True, **self._dispatch(method, token, dict(params))}
        except SlackError as e:
            body = {"ok": False, "error": e.error, **e.extra}
        return self._finish(request, call, fault, 200, body)

    def _dispatch(self, method: str, token: str | None, params: JSON) -> JSON:
        handler = METHODS.get(method)
        if handler is None:
            raise SlackError("unknown_method", req_method=method)
        if not token:
            raise SlackError("not_authed")
        kinds = ("xapp-",) if method in APP_TOKEN_METHODS else ("xoxb-", "xoxp-")
        if token.startswith(("xoxb-", "xoxp-", "xapp-")) and not token.startswith(kinds):
            raise SlackError("not_allowed_token_type")  # e.g. a bot token for apps.connections.open
        valid = self.valid_tokens is None and token.startswith(kinds)
        if not (valid or (self.valid_tokens is not None and token in self.valid_tokens)):
            raise SlackError("invalid_auth")
        if token in self.revoked_tokens:
            raise SlackError("token_revoked")
        grant = self.bot_tokens.get(token)
        if grant is not None and grant.get("expires_at") is not None and self.clock() >= grant["expires_at"]:
            raise SlackError("token_expired")
        self._token = token
        try:
            return handler(self, params)
        except ValueError:  # a number that is not one, e.g. limit=abc
            raise SlackError("invalid_arguments") from None

    async def _serve_upload(self, request: web.Request) -> web.StreamResponse:
        file_id = request.match_info["file_id"]
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = next((v for v in form.values() if isinstance(v, web.FileField)), None)
            data = part.file.read() if part else next((str(v).encode() for v in form.values()), b"")
        else:
            data = await request.read()
        call, fault = self._record(request, "_upload", {"file_id": file_id, "size": len(data)})
        record = self._files.get(file_id)
        if record is None:
            return self._finish(request, call, fault, 404, "file_not_found")
        if fault is None or fault.drop:
            record.update(content=data, size=len(data), uploaded=True)
        return self._finish(request, call, fault, 200, f"OK - {len(data)}")

    async def _serve_response_url(self, request: web.Request) -> web.StreamResponse:
        # Slack documents "up to 5 times within 30 minutes" but not the reply after that; what developers
        # report is HTTP 404 with body `used_url` (too many uses) or `expired_url` (too old). Unverified.
        rid = request.match_info["rid"]
        try:
            body = await request.json()
        except ValueError:
            body = None
        call, fault = self._record(request, "_response", {"id": rid, "body": body})
        entry = self._response_urls.get(rid)
        if entry is None:
            return self._finish(request, call, fault, 404, "no_service")
        if self.clock() - entry["created"] > self.response_url_ttl:
            return self._finish(request, call, fault, 404, "expired_url")
        if entry["uses"] >= self.response_url_uses:
            return self._finish(request, call, fault, 404, "used_url")
        if not isinstance(body, dict):
            return self._finish(request, call, fault, 400, "invalid_payload")
        has_content = any(body.get(k) for k in ("text", "blocks", "attachments"))
        if not has_content and not _bool(body.get("delete_original")):
            return self._finish(request, call, fault, 400, "no_text")
        if fault is None or fault.drop:
            entry["uses"] += 1
            self._responses.append({"id": rid, "body": body, "channel": entry["channel"],
                                    "user": entry["user"]})
        return self._finish(request, call, fault, 200, "ok")

    async def _serve_socket(self, request: web.Request) -> web.StreamResponse:
        """The Socket Mode WebSocket: `hello` on connect, then envelopes from socket_send; records the acks.
        Each URL from apps.connections.open admits one connection (⚠ Slack's exact rule is undocumented;
        unknown or reused URLs get HTTP 401 `invalid_ticket`, also a guess)."""
        sid = request.match_info["sid"]
        call, fault = self._record(request, "_socket", {"id": sid})
        ws = web.WebSocketResponse()  # autoping: the client's pings get pongs with the same data
        if not ws.can_prepare(request).ok:
            return self._finish(request, call, fault, 400, "websocket_upgrade_required")
        ticket = self._socket_urls.get(sid)
        if ticket is None or ticket["used"]:
            return self._finish(request, call, fault, 401, "invalid_ticket")
        if fault is not None:  # refuse the handshake (status), or use up the URL and drop the connection
            ticket["used"] = fault.drop
            return self._finish(request, call, fault, 101, "")
        ticket["used"] = True
        await ws.prepare(request)
        call.status = 101
        conn = SocketConnection(sid, self.clock(), ws)
        self._sockets.append(conn)
        try:
            await ws.send_json({"type": "hello", "num_connections": len([s for s in self._sockets if s.open]) + 1,
                                "debug_info": {"host": "fake-slack", "build_number": 1,
                                               "approximate_connection_time": 18060},
                                "connection_info": {"app_id": self.app_id}})
            conn.ready = True
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._socket_received(conn, msg.data)
        finally:
            conn.closed = True
        return ws

    def _socket_received(self, conn: SocketConnection, raw: str) -> None:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("envelope_id"), str):
            ack = {"envelope_id": data["envelope_id"], "payload": data.get("payload"), "connection": conn.id,
                   "known": any(e["envelope_id"] == data["envelope_id"] for e in self._envelopes)}
            self._acks.append(ack)
            self.calls.append(Call("_socket_ack", {k: ack[k] for k in ("envelope_id", "payload", "connection")},
                                   {}, "WS"))
        else:  # Slack expects nothing else from the client
            self.calls.append(Call("_socket_message", {"data": raw, "connection": conn.id}, {}, "WS"))

    async def _control_get(self, request: web.Request) -> web.Response:
        q = request.query
        getters: dict[str, Callable[[], Any]] = {
            "calls": lambda: [c.to_dict() for c in self.calls],
            "messages": lambda: self.messages(q.get("channel")),
            "ephemerals": lambda: self.ephemerals(q.get("user"), q.get("channel")),
            "views": lambda: self.views(q.get("method")),
            "responses": lambda: self.responses(q.get("id")),
            "files": lambda: [{k: v for k, v in f.items() if k != "content"} for f in self.files()],
            "socket_connections": lambda: self.socket_connections(q.get("open") == "1"),
            "socket_envelopes": lambda: self.socket_envelopes(q.get("envelope_id")),
            "socket_acks": lambda: self.socket_acks(q.get("envelope_id")),
        }
        if request.match_info["what"] not in getters:
            raise web.HTTPNotFound()
        return web.json_response(getters[request.match_info["what"]]())

    async def _control_post(self, request: web.Request) -> web.Response:
        body: JSON = await request.json() if request.body_exists else {}
        what = request.match_info["what"]
        if what == "reset":
            self.reset()
        elif what == "faults":
            self.add_fault(**body)
        elif what == "users":
            user_id, name = body.pop("id", None) or body.pop("user_id"), body.pop("name")
            return web.json_response(asdict(self.add_user(user_id, name, **body)))
        elif what == "channels":
            return web.json_response(asdict(self.add_channel(body.pop("id"), body.pop("name"), **body)))
        elif what == "oauth_code":
            return web.json_response({"code": self.new_oauth_code(body["team_id"], body.get("team_name", ""))})
        elif what == "revoke_team":
            self.revoke_team(body["team_id"])
        elif what == "oauth":
            if body.get("client_id"):
                self.oauth_client = (body["client_id"], body["client_secret"])
            if "token_rotation" in body:
                self.token_rotation = bool(body["token_rotation"])
            if "token_ttl" in body:
                self.token_ttl = int(body["token_ttl"])
        elif what == "trigger":
            return web.json_response({"trigger_id": self.new_trigger_id(body.get("user_id"))})
        elif what == "response_url":
            url = self.new_response_url(body.get("channel"), body.get("user"))
            return web.json_response({"response_url": url})
        elif what == "socket":
            envelope_id = await self.socket_send(body.pop("type"), body.pop("payload"), **body)
            return web.json_response({"envelope_id": envelope_id})
        elif what == "socket_disconnect":
            return web.json_response({"ok": True, "connections": await self.socket_disconnect(**body)})
        else:
            raise web.HTTPNotFound()
        return web.json_response({"ok": True})

    # ---- OAuth -----------------------------------------------------------------------------------------
    def _oauth_access(self, authorization: str, p: JSON) -> JSON:
        """oauth.v2.access: exchange a code (or, with rotation, a refresh token) for a bot token."""
        client_id, client_secret = p.get("client_id"), p.get("client_secret")
        if authorization.startswith("Basic "):
            try:
                client_id, _, client_secret = base64.b64decode(authorization[6:]).decode().partition(":")
            except ValueError:
                raise SlackError("invalid_client_id") from None
        if not client_id:
            raise SlackError("invalid_client_id")
        if self.oauth_client is not None and (client_id, client_secret) != self.oauth_client:
            raise SlackError("bad_client_secret" if client_id == self.oauth_client[0] else "invalid_client_id")
        if p.get("grant_type") == "refresh_token":
            grant = self._refresh_tokens.pop(str(p.get("refresh_token") or ""), None)
            if grant is None:
                raise SlackError("invalid_refresh_token")
        else:
            grant = self._oauth_codes.pop(str(p.get("code") or ""), None)  # a code works once
            if grant is None:
                raise SlackError("invalid_code")
        team_id = str(grant["team_id"])
        token = f"xoxb-{team_id}-{next(self._seq)}-{secrets.token_hex(8)}"
        answer: JSON = {
            "access_token": token, "token_type": "bot", "scope": "commands,chat:write",
            "bot_user_id": self.bot_user_id, "app_id": self.app_id,
            "team": {"id": team_id, "name": grant["team_name"]}, "enterprise": None,
            "is_enterprise_install": False, "authed_user": {"id": grant["user_id"]},
        }
        expires_at = None
        if self.token_rotation:
            refresh = f"xoxe-1-{secrets.token_hex(12)}"
            self._refresh_tokens[refresh] = grant
            expires_at = self.clock() + self.token_ttl
            answer.update(refresh_token=refresh, expires_in=self.token_ttl)
        self.bot_tokens[token] = {"team_id": team_id, "team_name": grant["team_name"], "expires_at": expires_at}
        return answer

    # ---- helpers for handlers --------------------------------------------------------------------------
    def _next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._seq):09d}"

    def _ts(self) -> str:
        """A unique, increasing Slack timestamp ("1700000000.000100") from the clock."""
        self._last_us = max(int(self.clock() * 1_000_000), self._last_us + 1)
        return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"

    def _user(self, user_id: Any) -> User:
        if not isinstance(user_id, str) or user_id not in self.users:
            raise SlackError("user_not_found")
        return self.users[user_id]

    def _channel(self, channel: Any) -> Channel:
        """A channel by ID or name; a user ID means the DM with that user, as chat.postMessage allows."""
        if isinstance(channel, str):
            if channel in self.channels:
                return self.channels[channel]
            if channel in self.users:
                return self._open_dm([channel])[0]
            by_name = [c for c in self.channels.values() if c.name == channel.lstrip("#")]
            if by_name:
                return by_name[0]
        raise SlackError("channel_not_found")

    def _message(self, channel: Channel, ts: Any) -> JSON:
        for m in self._messages:
            if m["channel"] == channel.id and m["ts"] == str(ts) and not m.get("deleted"):
                return m
        raise SlackError("message_not_found")

    def _open_dm(self, user_ids: list[str]) -> tuple[Channel, bool]:
        key = ",".join(sorted(set(user_ids)))
        prefix = "D" if len(set(user_ids)) == 1 else "C"  # mpims have C ids nowadays (G before 2021)
        cid = prefix + hashlib.sha1(key.encode()).hexdigest()[:10].upper()
        if cid in self.channels:
            return self.channels[cid], True
        name = f"mpdm-{'--'.join(self.users[u].name for u in user_ids)}-1" if prefix == "C" else user_ids[0]
        channel = Channel(cid, name, [*user_ids, self.bot_user_id], is_private=True, is_im=prefix == "D",
                          is_mpim=prefix == "C", created=int(self.clock()))
        self.channels[cid] = channel
        return channel, False

    def _content(self, p: JSON, require: bool = True) -> JSON:
        """text / blocks / attachments of a message, checked as Slack does."""
        out: JSON = {}
        if "blocks" in p:
            try:
                blocks = _jsonish(p["blocks"])
            except ValueError:
                raise SlackError("invalid_blocks_format") from None
            if not isinstance(blocks, list):
                raise SlackError("invalid_blocks_format")
            problems = _block_problems(blocks, 50, "/blocks")
            if problems:
                raise SlackError("invalid_blocks", response_metadata={"messages": problems})
            out["blocks"] = blocks
        if "attachments" in p:
            try:
                attachments = _jsonish(p["attachments"])
            except ValueError:
                raise SlackError("invalid_attachments") from None
            if not isinstance(attachments, list) or not all(isinstance(a, dict) for a in attachments):
                raise SlackError("invalid_attachments")
            if len(attachments) > 100:
                raise SlackError("too_many_attachments")
            out["attachments"] = [{**a, "id": i} for i, a in enumerate(attachments, 1)]
        if "text" in p:
            out["text"] = str(p["text"])
            if len(out["text"]) > 40_000:
                raise SlackError("msg_too_long")
        if require and not (out.get("text") or out.get("blocks") or out.get("attachments")):
            raise SlackError("no_text")
        return out

    def _post(self, channel: Channel, content: JSON, thread_ts: Any = None, **extra: Any) -> JSON:
        message: JSON = {"type": "message", "channel": channel.id, "ts": self._ts(), "text": "",
                         "user": self.bot_user_id, "bot_id": self.bot_id, "team": self.team_id,
                         **content, **extra}
        if thread_ts:
            message["thread_ts"] = str(thread_ts)
        self._messages.append(message)
        return message

    def _view(self, p: JSON, expected_type: str) -> JSON:
        """The `view` argument, checked like Slack (invalid_arguments with messages, view_too_large)."""
        try:
            view = _jsonish(p.get("view"))
        except ValueError:
            view = None
        if not isinstance(view, dict):
            raise SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] invalid `view`"]})
        if len(json.dumps(view).encode()) > MAX_VIEW_BYTES:
            raise SlackError("view_too_large")
        problems = _block_problems(view.get("blocks"), 100, "/view/blocks")
        if view.get("type") != expected_type:
            problems.append(f"[ERROR] must be `{expected_type}` [json-pointer:/view/type]")
        if expected_type == "modal" and not view.get("title"):
            problems.append("[ERROR] missing required field: title [json-pointer:/view/title]")
        try:
            # slack_sdk's checks of title/submit/close/private_metadata/callback_id; blocks were checked above
            View(**{**view, "blocks": [{"type": "divider"}]}).validate_json()
        except Exception as e:
            problems.append(f"[ERROR] {e} [json-pointer:/view]")
        if problems:
            raise SlackError("invalid_arguments", response_metadata={"messages": problems})
        return view

    def _exchange_trigger(self, p: JSON) -> JSON:
        trigger = self._triggers.get(str(p.get("trigger_id") or p.get("interactivity_pointer")))
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        if trigger["used"]:
            raise SlackError("exchanged_trigger_id")
        if self.clock() - trigger["created"] > self.trigger_ttl:
            raise SlackError("expired_trigger_id")
        return trigger

    def _store_view(self, method: str, view: JSON, p: JSON, view_id: str | None = None,
                    user_id: str | None = None, root: str | None = None, previous: str | None = None) -> JSON:
        view_id = view_id or self._next_id("V")
        old = self._views.get(view_id, {})
        external_id = view.get("external_id") or p.get("external_id") or old.get("external_id", "")
        taken = {v["external_id"] for k, v in self._views.items() if k != view_id}
        if external_id and external_id in taken:
            raise SlackError("duplicate_external_id")
        stored: JSON = {
            "id": view_id, "team_id": self.team_id, "type": view["type"], "blocks": view.get("blocks", []),
            "private_metadata": "", "callback_id": "", "state": {"values": {}}, "clear_on_close": False,
            "notify_on_close": False, "previous_view_id": previous or old.get("previous_view_id"),
            "root_view_id": root or old.get("root_view_id") or view_id,
            "app_id": self.app_id, "app_installed_team_id": self.team_id, "bot_id": self.bot_id,
            **{k: v for k, v in view.items() if k != "blocks"},
            "external_id": external_id, "hash": f"{int(self.clock())}.{secrets.token_hex(4)}",
        }
        self._views[view_id] = stored
        self._view_events.append({"method": method, "view_id": view_id, "view": view, "user_id": user_id,
                                  "trigger_id": p.get("trigger_id"), "external_id": external_id})
        return stored

    def _user_obj(self, u: User) -> JSON:
        zone = ZoneInfo(u.tz)
        now = datetime.fromtimestamp(self.clock(), UTC).astimezone(zone)
        offset = now.utcoffset()
        profile: JSON = {
            "title": "", "phone": "", "skype": "", "fields": None,
            "real_name": u.real_name, "real_name_normalized": u.real_name,
            "display_name": u.name, "display_name_normalized": u.name,
            "status_text": u.status_text, "status_emoji": u.status_emoji,
            "status_expiration": u.status_expiration,
            "avatar_hash": "g" + hashlib.md5(u.id.encode()).hexdigest()[:11], "email": u.email,
            "first_name": u.real_name.split(" ")[0], "last_name": " ".join(u.real_name.split(" ")[1:]),
            "team": self.team_id,
        }
        if u.is_bot:
            profile.update(bot_id=self.bot_id, api_app_id=self.app_id, always_active=True)
            profile.pop("email")
        return {
            "id": u.id, "team_id": self.team_id, "name": u.name, "deleted": u.deleted, "color": "9f69e7",
            "real_name": u.real_name, "tz": u.tz, "tz_label": now.tzname() or u.tz,
            "tz_offset": int(offset.total_seconds()) if offset else 0, "profile": profile,
            "is_admin": u.is_admin, "is_owner": False, "is_primary_owner": False, "is_restricted": False,
            "is_ultra_restricted": False, "is_bot": u.is_bot, "is_app_user": False,
            "updated": int(self.clock()),
        }

    def _channel_obj(self, c: Channel, num_members: bool = False) -> JSON:
        if c.is_im:
            user = next(m for m in c.members if m != self.bot_user_id)
            return {"id": c.id, "created": c.created, "is_im": True, "is_org_shared": False, "user": user,
                    "priority": 0, "is_open": True, "is_archived": False,
                    "is_user_deleted": self.users[user].deleted, "last_read": "0000000000.000000",
                    "unread_count": 0, "unread_count_display": 0}
        empty = {"value": "", "creator": "", "last_set": 0}
        obj: JSON = {
            "id": c.id, "name": c.name, "name_normalized": c.name, "created": c.created,
            "is_channel": not (c.is_private or c.is_mpim), "is_group": c.is_private, "is_im": False,
            "is_mpim": c.is_mpim, "is_private": c.is_private or c.is_mpim, "is_archived": False,
            "is_general": False, "unlinked": 0, "is_shared": False, "is_org_shared": False,
            "is_pending_ext_shared": False, "pending_shared": [], "is_ext_shared": False,
            "parent_conversation": None, "creator": c.members[0] if c.members else "",
            "shared_team_ids": [self.team_id],
            "pending_connected_team_ids": [], "is_member": self.bot_user_id in c.members, "topic": empty,
            "purpose": dict(empty), "previous_names": [],
        }
        if num_members:
            obj["num_members"] = len(c.members)
        return obj

    def _page(self, prefix: str, ids: list[str], p: JSON) -> tuple[list[str], JSON]:
        """Cursor pagination like Slack's: next_cursor is base64("<prefix>:<next id>"), "" at the end."""
        start = 0
        if p.get("cursor"):
            try:
                start = ids.index(base64.b64decode(str(p["cursor"])).decode().split(":", 1)[1])
            except (ValueError, IndexError):
                raise SlackError("invalid_cursor") from None
        limit = int(p.get("limit") or 0) or len(ids) or 1
        page = ids[start:start + limit]
        rest = ids[start + limit:start + limit + 1]
        return page, {"next_cursor": _cursor(prefix, rest[0]) if rest else ""}

    # ---- the Web API methods (one entry each in METHODS) -----------------------------------------------
    @api("apps.connections.open")
    def _apps_connections_open(self, p: JSON) -> JSON:
        # Slack answers wss://wss-primary.slack.com/link/?ticket=…&app_id=…; here a one-use ws:// URL
        sid = f"{next(self._seq)}{secrets.token_hex(8)}"
        self._socket_urls[sid] = {"created": self.clock(), "used": False}
        return {"url": f"{self._ws_base()}/_socket/{sid}"}

    @api("auth.test")
    def _auth_test(self, p: JSON) -> JSON:
        grant = self.bot_tokens.get(getattr(self, "_token", ""))
        team_id = str(grant["team_id"]) if grant else self.team_id
        team = str(grant["team_name"]) if grant else self.team_name
        return {"url": f"https://{self.team_domain}.slack.com/", "team": team,
                "user": self.bot_name, "team_id": team_id, "user_id": self.bot_user_id,
                "bot_id": self.bot_id, "is_enterprise_install": False}

    @api("chat.postMessage")
    def _chat_post_message(self, p: JSON) -> JSON:
        channel = self._channel(p.get("channel"))
        message = self._post(channel, self._content(p), p.get("thread_ts"))
        return {"channel": channel.id, "ts": message["ts"],
                "message": {k: message[k] for k in MESSAGE_KEYS if k in message}}

    @api("chat.postEphemeral")
    def _chat_post_ephemeral(self, p: JSON) -> JSON:
        channel = self._channel(p.get("channel"))
        if p.get("user") not in channel.members:
            raise SlackError("user_not_in_channel")
        ephemeral = {"channel": channel.id, "user": p["user"], "message_ts": self._ts(),
                     "thread_ts": p.get("thread_ts"), "text": "", **self._content(p)}
        self._ephemerals.append(ephemeral)
        return {"message_ts": ephemeral["message_ts"]}

    @api("chat.update")
    def _chat_update(self, p: JSON) -> JSON:
        channel = self._channel(p.get("channel"))
        message = self._message(channel, p.get("ts"))
        content = self._content(p, require=False)
        if not (content or message.get("text") or message.get("blocks")):
            raise SlackError("no_text")
        message.update(content, edited={"user": self.bot_user_id, "ts": self._ts()})
        keys = ("type", "text", "user", "bot_id", "blocks", "attachments")
        shown = {k: message[k] for k in keys if k in message}
        return {"channel": channel.id, "ts": message["ts"], "text": message["text"], "message": shown}

    @api("chat.delete")
    def _chat_delete(self, p: JSON) -> JSON:
        channel = self._channel(p.get("channel"))
        self._message(channel, p.get("ts"))["deleted"] = True
        return {"channel": channel.id, "ts": str(p["ts"])}

    @api("chat.getPermalink")
    def _chat_get_permalink(self, p: JSON) -> JSON:
        channel = self._channel(p.get("channel"))
        message = self._message(channel, p.get("message_ts"))
        link = f"https://{self.team_domain}.slack.com/archives/{channel.id}/p{message['ts'].replace('.', '')}"
        if message.get("thread_ts") and message["thread_ts"] != message["ts"]:
            link += f"?thread_ts={message['thread_ts']}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}

    @api("conversations.open")
    def _conversations_open(self, p: JSON) -> JSON:
        if p.get("channel"):
            channel = self.channels.get(str(p["channel"]))
            if channel is None or not (channel.is_im or channel.is_mpim):
                raise SlackError("channel_not_found")
            already = True
        else:
            users = [u.strip() for u in str(p.get("users") or "").split(",") if u.strip()]
            if not users:
                raise SlackError("users_list_not_supplied")
            if len(users) > 8:
                raise SlackError("too_many_users")
            if any(self._user(u).deleted for u in users):
                raise SlackError("user_disabled")
            channel, already = self._open_dm(users)
        shown = self._channel_obj(channel) if _bool(p.get("return_im")) else {"id": channel.id}
        return {"no_op": already, "already_open": already, "channel": shown}

    @api("conversations.info")
    def _conversations_info(self, p: JSON) -> JSON:
        channel = self.channels.get(str(p.get("channel")))
        if channel is None:
            raise SlackError("channel_not_found")
        return {"channel": self._channel_obj(channel, _bool(p.get("include_num_members")))}

    @api("conversations.members")
    def _conversations_members(self, p: JSON) -> JSON:
        channel = self.channels.get(str(p.get("channel")))
        if channel is None:
            raise SlackError("channel_not_found")
        members, meta = self._page("user", channel.members, p)
        return {"members": members, "response_metadata": meta}

    @api("users.info")
    def _users_info(self, p: JSON) -> JSON:
        return {"user": self._user_obj(self._user(p.get("user")))}

    @api("users.list")
    def _users_list(self, p: JSON) -> JSON:
        ids, meta = self._page("user", list(self.users), p)
        return {"members": [self._user_obj(self.users[i]) for i in ids], "cache_ts": int(self.clock()),
                "response_metadata": meta}

    @api("users.lookupByEmail")
    def _users_lookup_by_email(self, p: JSON) -> JSON:
        email = str(p.get("email", "")).lower()
        user = next((u for u in self.users.values() if u.email.lower() == email and not u.is_bot), None)
        if user is None:
            raise SlackError("users_not_found")
        return {"user": self._user_obj(user)}

    @api("users.getPresence")
    def _users_get_presence(self, p: JSON) -> JSON:
        user = self._user(p.get("user") or self.bot_user_id)
        return {"presence": "away" if user.away or user.deleted else "active"}

    @api("views.open")
    def _views_open(self, p: JSON) -> JSON:
        trigger = self._exchange_trigger(p)
        view = self._view(p, "modal")
        stored = self._store_view("views.open", view, p, user_id=trigger["user_id"])
        trigger["used"] = True  # only a successful call exchanges the trigger
        return {"view": stored}

    @api("views.push")
    def _views_push(self, p: JSON) -> JSON:
        trigger = self._exchange_trigger(p)
        view = self._view(p, "modal")
        parent = next((e for e in reversed(self._view_events) if e["method"] in ("views.open", "views.push")
                       and e["user_id"] == trigger["user_id"]), None)
        root = self._views[parent["view_id"]]["root_view_id"] if parent else None
        stored = self._store_view("views.push", view, p, user_id=trigger["user_id"], root=root,
                                  previous=parent["view_id"] if parent else None)
        trigger["used"] = True
        return {"view": stored}

    @api("views.update")
    def _views_update(self, p: JSON) -> JSON:
        if p.get("view_id"):
            view_id = str(p["view_id"]) if str(p["view_id"]) in self._views else None
        else:
            view_id = next((k for k, v in self._views.items()
                            if v["external_id"] and v["external_id"] == p.get("external_id")), None)
        if view_id is None:
            raise SlackError("not_found")
        old = self._views[view_id]
        if p.get("hash") and p["hash"] != old["hash"]:
            raise SlackError("hash_conflict")
        view = self._view(p, old["type"])
        user_id = next((e["user_id"] for e in self._view_events if e["view_id"] == view_id), None)
        return {"view": self._store_view("views.update", view, p, view_id, user_id)}

    @api("views.publish")
    def _views_publish(self, p: JSON) -> JSON:
        user = self._user(p.get("user_id"))
        current = self._home.get(user.id)
        if p.get("hash") and current is not None and p["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        view = self._view(p, "home")
        stored = self._store_view("views.publish", view, p, current["id"] if current else None, user.id)
        self._home[user.id] = stored
        return {"view": stored}

    @api("files.getUploadURLExternal")
    def _files_get_upload_url(self, p: JSON) -> JSON:
        if not p.get("filename") or "length" not in p:
            raise SlackError("invalid_arguments")
        if int(p["length"]) <= 0:
            raise SlackError("missing_argument")
        if len(str(p.get("alt_txt") or "")) > 1000:
            raise SlackError("alt_txt_too_large")
        file_id = self._next_id("F")
        self._files[file_id] = {"id": file_id, "name": str(p["filename"]), "title": str(p["filename"]),
                                "length": int(p["length"]), "alt_txt": p.get("alt_txt"), "uploaded": False,
                                "completed": False, "content": b"", "size": 0, "channels": [],
                                "initial_comment": None, "thread_ts": None}
        return {"upload_url": f"{self._base()}/_upload/{file_id}", "file_id": file_id}

    @api("files.completeUploadExternal")
    def _files_complete_upload(self, p: JSON) -> JSON:
        try:
            wanted = _jsonish(p.get("files"))
        except ValueError:
            raise SlackError("invalid_arguments") from None
        if not isinstance(wanted, list) or not wanted:
            raise SlackError("invalid_arguments")
        records = [self._files.get(str(f.get("id"))) if isinstance(f, dict) else None for f in wanted]
        if any(r is None or not r["uploaded"] for r in records):
            raise SlackError("file_not_found")
        channel_ids = [c for c in [p.get("channel_id"), *str(p.get("channels") or "").split(",")] if c]
        channels = [self._channel(c) for c in channel_ids]
        if len(channels) > 100:
            raise SlackError("channels_limit_exceeded")
        done: list[JSON] = []
        for f, r in zip(wanted, records, strict=True):
            assert r is not None
            r.update(title=f.get("title") or r["title"], completed=True, channels=[c.id for c in channels],
                     initial_comment=p.get("initial_comment"), thread_ts=p.get("thread_ts"))
            done.append({"id": r["id"], "created": int(self.clock()), "timestamp": int(self.clock()),
                         "name": r["name"], "title": r["title"], "user": self.bot_user_id, "size": r["size"],
                         "mode": "hosted", "is_external": False, "is_public": bool(channels),
                         "url_private": f"https://files.slack.com/files-pri/{self.team_id}-{r['id']}/{r['name']}",
                         "permalink": f"https://{self.team_domain}.slack.com/files/{self.bot_user_id}/{r['id']}/{r['name']}"})
        for channel in channels:
            self._post(channel, {"text": str(p.get("initial_comment") or ""), "files": done, "upload": True},
                       p.get("thread_ts"), subtype="file_share")
        return {"files": done}

    @api("reactions.add")
    def _reactions_add(self, p: JSON) -> JSON:
        name = str(p.get("name") or "").strip(":")
        if not name or " " in name:
            raise SlackError("invalid_name")
        message = self._message(self._channel(p.get("channel")), p.get("timestamp"))
        reactions: list[JSON] = message.setdefault("reactions", [])
        reaction = next((r for r in reactions if r["name"] == name), None)
        if reaction is None:
            reactions.append({"name": name, "users": [self.bot_user_id], "count": 1})
        elif self.bot_user_id in reaction["users"]:
            raise SlackError("already_reacted")
        else:
            reaction["users"].append(self.bot_user_id)
            reaction["count"] += 1
        return {}


async def _serve(host: str, port: int, team_id: str) -> None:
    fake = FakeSlack(team_id=team_id)
    url = await fake.start(host, port)
    print(f"fake slack listening on {url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Serve the fake Slack Web API until killed.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8091)
    ap.add_argument("--team-id", default="T0001")
    a = ap.parse_args(argv)
    try:
        asyncio.run(_serve(a.host, a.port, a.team_id))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
