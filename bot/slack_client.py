"""The Messenger over Slack's Web API (slack_sdk AsyncWebClient on SLACK_API_URL), 429-aware."""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.messaging import Person
from bot.outbox.errors import DeliveryError, classify
from bot.rendering import Message

log = logging.getLogger(__name__)

# A Slack status that means "not here": the person is excused from proposals, not nagged.
AWAY_EMOJI = {":palm_tree:", ":airplane:", ":face_with_thermometer:", ":beach_with_umbrella:", ":baby:"}
AWAY_WORDS = re.compile(r"\b(vacation|holiday|away|ooo|out of (the )?office|sick|leave|pto)\b", re.IGNORECASE)


def make_client(
    token: str | None, base_url: str, *, rate_limit_retries: int = 3, connection_retries: int = 1
) -> AsyncWebClient:
    """A Web API client that waits out 429s (Retry-After) and retries dropped connections (once by default).
    The outbox's client does neither: the outbox retries on its own backoff, without sleeping in the call."""
    handlers: list[AsyncRetryHandler] = [
        AsyncConnectionErrorRetryHandler(max_retry_count=connection_retries),
        AsyncRateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
    ]
    return AsyncWebClient(token=token, base_url=base_url, retry_handlers=handlers)


class SharedSession:
    """One aiohttp session, a keep-alive connection pool, for the Web API clients of a running bot (and so for
    the clients Bolt makes per request from them, and the answers to response_urls sent through those). Without
    it slack_sdk opens and closes a session per call: a new TCP and TLS connection to Slack for every message.
    `open` in the running loop, `close` at shutdown; a client whose session is closed or absent opens its own."""

    def __init__(self, *clients: AsyncWebClient, timeout: float = 30.0) -> None:
        self.clients, self.timeout = clients, timeout  # slack_sdk's own default timeout, per request
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        for client in self.clients:
            client.session = self.session

    async def close(self) -> None:
        for client in self.clients:
            client.session = None
        if self.session is not None:
            await self.session.close()
            self.session = None


def person_from_user(user: dict[str, Any]) -> Person:
    profile = user.get("profile") or {}
    status = f"{profile.get('status_text', '')}"
    away = profile.get("status_emoji") in AWAY_EMOJI or bool(AWAY_WORDS.search(status))
    return Person(
        user_id=str(user.get("id")),
        name=str(profile.get("display_name") or user.get("real_name") or user.get("name") or user.get("id")),
        timezone=user.get("tz") or None,
        away=away,
        is_admin=bool(user.get("is_admin") or user.get("is_owner")),
    )


class TokenSource(Protocol):
    async def token(self, team_id: str) -> str | None:
        """The workspace's bot token, or None when it has not installed the app (or uninstalled it)."""
        ...


class NotInstalled(SlackApiError):
    """No bot token for the workspace: it never installed the app, or uninstalled it (logged like a refusal)."""

    def __init__(self, team_id: str) -> None:
        super().__init__(  # type: ignore[no-untyped-call]
            f"workspace {team_id} has no installation", {"ok": False, "error": "app_uninstalled"}
        )


class SlackMessenger:
    """Sends what the core asks for to Slack. Direct callers (interactive replies) get failures logged; the
    outbox uses `strict()`, whose calls raise a DeliveryError (transient or permanent) instead.

    With `tokens` (many-workspaces mode) every call is made with the bot token of the workspace it is for;
    without, `client`'s one token (SLACK_BOT_TOKEN) serves the one workspace."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        raise_errors: bool = False,
        strict_client: AsyncWebClient | None = None,
        tokens: TokenSource | None = None,
    ) -> None:
        self.client = client
        self.strict_client = strict_client
        self.raise_errors = raise_errors
        self.tokens = tokens
        self._dm_channels: dict[tuple[str, str], str] = {}
        self._clients: dict[str, AsyncWebClient] = {}
        self._strict: SlackMessenger | None = None

    def strict(self) -> SlackMessenger:
        """The same client, raising DeliveryError on every refusal (for the outbox sender)."""
        if self.raise_errors:
            return self
        if self._strict is None:
            self._strict = SlackMessenger(self.strict_client or self.client, raise_errors=True, tokens=self.tokens)
            self._strict._dm_channels = self._dm_channels
        return self._strict

    async def _for(self, team_id: str) -> AsyncWebClient:
        """The client holding `team_id`'s bot token (the one client in single-workspace mode)."""
        if self.tokens is None:
            return self.client
        token = await self.tokens.token(team_id)
        if token is None:
            if self.raise_errors:
                raise DeliveryError("app_uninstalled", permanent=True)
            raise NotInstalled(team_id)
        client = self._clients.get(token)
        if client is None:
            if len(self._clients) > 1000:  # rotated tokens pile up: start over now and then
                self._clients.clear()
            retry = self.client.retry_handlers
            client = AsyncWebClient(
                token=token, base_url=self.client.base_url, retry_handlers=retry, session=self.client.session
            )
            self._clients[token] = client
        return client

    def _refused(self, exc: SlackApiError) -> None:
        if self.raise_errors:
            raise classify(exc) from exc

    async def post(
        self, *, team_id: str, channel_id: str, message: Message, thread_ts: str | None = None
    ) -> str | None:
        try:
            resp = await (await self._for(team_id)).chat_postMessage(
                channel=channel_id, text=message.text, blocks=message.blocks or None, thread_ts=thread_ts
            )
        except SlackApiError as exc:
            self._refused(exc)
            log.warning("chat.postMessage to %s failed: %s", channel_id, exc.response.get("error"))
            return None
        return str(resp.get("ts")) if resp.get("ts") else None

    async def permalink(self, *, team_id: str, channel_id: str, ts: str) -> str | None:
        """`chat.getPermalink`: the link to one posted message (a decision's thread), or None when Slack refuses."""
        try:
            resp = await self.client.chat_getPermalink(channel=channel_id, message_ts=ts)
        except SlackApiError as exc:
            log.warning("chat.getPermalink of %s failed: %s", ts, exc.response.get("error"))
            return None
        link = resp.get("permalink")
        return str(link) if isinstance(link, str) and link.startswith("https://") else None

    async def update(self, *, team_id: str, channel_id: str, ts: str, message: Message) -> None:
        try:
            await (await self._for(team_id)).chat_update(
                channel=channel_id, ts=ts, text=message.text, blocks=message.blocks or None
            )
        except SlackApiError as exc:
            self._refused(exc)
            log.warning("chat.update of %s failed: %s", ts, exc.response.get("error"))

    async def dm(self, *, team_id: str, user_id: str, message: Message) -> str | None:
        channel = self._dm_channels.get((team_id, user_id))
        try:
            if channel is None:
                opened = await (await self._for(team_id)).conversations_open(users=user_id)
                channel = str((opened.get("channel") or {}).get("id"))
                self._dm_channels[(team_id, user_id)] = channel
        except SlackApiError as exc:
            self._refused(exc)
            log.warning("conversations.open with %s failed: %s", user_id, exc.response.get("error"))
            return None
        return await self.post(team_id=team_id, channel_id=channel, message=message)

    async def ephemeral(self, *, team_id: str, channel_id: str, user_id: str, message: Message) -> None:
        try:
            await (await self._for(team_id)).chat_postEphemeral(
                channel=channel_id, user=user_id, text=message.text, blocks=message.blocks or None
            )
        except SlackApiError as exc:  # e.g. not in channel: fall back to a DM so nothing is lost
            log.info("chat.postEphemeral in %s failed (%s); sending a DM", channel_id, exc.response.get("error"))
            await self.dm(team_id=team_id, user_id=user_id, message=message)

    async def upload(
        self,
        *,
        team_id: str,
        channel_id: str,
        filename: str,
        content: bytes,
        title: str,
        comment: str = "",
        thread_ts: str | None = None,
    ) -> None:
        try:
            kwargs: dict[str, Any] = {"initial_comment": comment} if comment else {}
            if thread_ts:
                kwargs["thread_ts"] = thread_ts
            await (await self._for(team_id)).files_upload_v2(
                channel=channel_id, content=content, filename=filename, title=title, **kwargs
            )
        except SlackApiError as exc:
            self._refused(exc)
            log.warning("file upload %s to %s failed: %s", filename, channel_id, exc.response.get("error"))

    async def person(self, *, team_id: str, user_id: str) -> Person | None:
        try:
            resp = await (await self._for(team_id)).users_info(user=user_id)
        except SlackApiError as exc:
            log.info("users.info %s failed: %s", user_id, exc.response.get("error"))
            return None
        user = resp.get("user")
        return person_from_user(user) if isinstance(user, dict) else None

    async def publish_home(self, *, team_id: str, user_id: str, view: dict[str, Any]) -> None:
        try:
            await (await self._for(team_id)).views_publish(user_id=user_id, view=view)
        except SlackApiError as exc:
            log.warning("views.publish for %s failed: %s", user_id, exc.response.get("error"))
