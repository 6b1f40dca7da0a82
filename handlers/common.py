"""What every Slack listener shares: the acting user's context and delivering a command's Reply."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs
from uuid import uuid4

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.commands import Context, Reply, render_form
from bot.commands.base import notice
from bot.commands.home import home_view
from bot.outbox import DeliveryError
from bot.rendering import Message, swap_command, with_command
from bot.services import Actor, Services

log = logging.getLogger(__name__)

Respond = Callable[..., Awaitable[Any]]


class ResponseUrlRefused(Exception):
    """Slack did not take an answer posted to a response_url (HTTP 404 `used_url` or `expired_url`, …)."""


def responder(body: Mapping[str, Any], client: AsyncWebClient) -> Respond | None:
    """Answers to the request's response_url (None when it has none), over the Web API client's session: the bot's
    shared keep-alive pool when it is serving (Bolt's own respond() opens a connection per answer). Raises
    ResponseUrlRefused when Slack does not take the answer (Bolt's returns the 404 and the answer is lost), so
    `answer` falls back to chat.postEphemeral."""
    url = body.get("response_url")
    if not url:
        return None

    async def respond(
        *, text: str, blocks: Sequence[dict[str, Any]] | None, response_type: str, replace_original: bool
    ) -> None:
        sent = await AsyncWebhookClient(str(url), session=client.session).send(
            text=text, blocks=blocks, response_type=response_type, replace_original=replace_original
        )
        if sent.status_code != 200:
            raise ResponseUrlRefused(f"HTTP {sent.status_code} {sent.body[:200]}")

    return respond


def is_slash_command(body: str) -> bool:
    """A slash command's form body (`command=/…`), not an interaction's (`payload=…`) nor an event's (JSON)."""
    fields = parse_qs(body, keep_blank_values=True)
    return "command" in fields and "payload" not in fields


async def replayed(services: Services, headers: Mapping[str, Sequence[str]]) -> bool:
    """A signed request whose signature was accepted before (a replay): its command must not run again.

    Bolt has checked the signature by the time a listener runs; without one (Socket Mode) there is nothing to
    replay over HTTP."""
    signature = next(iter(headers.get("x-slack-signature") or ()), "")
    if not signature:
        return False
    return not await services.deliveries.first_signature(signature=signature)


async def context_for(
    services: Services,
    *,
    team_id: str,
    user_id: str,
    channel_id: str | None,
    command: str,
    ask_slack: bool = True,
) -> Context:
    """The acting person's context; their time zone comes from Phasegate's record, else their Slack profile (asked
    once: a person whose profile is stored is not looked up again).

    A person this process has seen with a stored profile (`Services.known_people`) is not read here at all: the
    command's own session is then the only one, and a command that needs the zone reads it (`Context.zone`).
    `ask_slack=False` before an ack (modal submissions): no Web API call, an unknown zone reads as UTC.
    """
    actor = Actor(team_id=team_id, user_id=user_id)
    if (team_id, user_id) in services.known_people:
        return Context(services=services, actor=actor, channel_id=channel_id, tz=None, command=command)
    members = await services.projects.members(team_id=team_id, user_ids=[user_id])
    member = members.get(user_id)
    tz = member.timezone if member and member.timezone else None
    # Known: the profile was stored from Slack before (its name, even when Slack had no zone for the person), so
    # users.info is not asked again on every command.
    known = member is not None and bool(member.timezone or member.display_name)
    if not known and ask_slack:
        person = await services.messenger.person(team_id=team_id, user_id=user_id)
        if person is not None:
            try:
                await services.projects.update_profile(
                    team_id=team_id,
                    user_id=user_id,
                    display_name=person.name,
                    timezone=person.timezone,
                    is_admin=person.is_admin,
                )
                known = True
            except Exception:  # an unknown zone name from Slack must not block the command
                log.warning("could not store the Slack profile of %s", user_id, exc_info=True)
            tz = person.timezone
    if known:
        services.known_people.add((team_id, user_id))
    return Context(services=services, actor=actor, channel_id=channel_id, tz=tz or "UTC", command=command)


async def deliver(
    ctx: Context,
    reply: Reply,
    *,
    client: AsyncWebClient,
    respond: Respond | None = None,
    trigger_id: str | None = None,
) -> None:
    """Send a Reply: open its form, answer the invoker, post the public part, refresh Home tabs."""
    services = ctx.services
    if reply.changed:
        services.changed()
    if reply.form is not None:
        if trigger_id is None:
            reply.message = reply.message or notice("Type the options instead of using the form.")
        else:
            try:
                await client.views_open(trigger_id=trigger_id, view=swap_command(render_form(reply.form), ctx.command))
            except SlackApiError as exc:
                log.info("views.open failed: %s", exc.response.get("error"))
                sub_usage = f"`{ctx.command} help {reply.form.form.name}` shows how to type it instead."
                reply.message = notice(
                    f"The form could not be opened ({exc.response.get('error')}): Slack gives a form only a few "
                    f"seconds to open. Try again, or type the options: {sub_usage}"
                )
    announcements = list(reply.announcements)
    if reply.public is not None and ctx.channel_id and services.outbox is not None:
        async with services.db.session() as s:
            row = await services.outbox.enqueue(
                s,
                team_id=ctx.actor.team_id,
                kind="post",
                target=ctx.channel_id,
                message=reply.public,
                key=f"reply:{uuid4().hex}",
            )
        announcements.append(row.id or 0)
        await services.outbox.committed()
    refused = await refused_announcement(services, announcements)
    if refused is not None:  # e.g. a private channel the bot was not invited to: say so, nothing else is lost
        reply.message = with_notice(reply.message, refused)
    if reply.message is not None:
        await answer(ctx, reply.message, respond=respond)
    for user in sorted(reply.refresh_home):
        await refresh_home(services, team_id=ctx.actor.team_id, user_id=user, command=ctx.command)


CHANNEL_ACCESS = {"not_in_channel", "channel_not_found"}


async def refused_announcement(services: Services, row_ids: list[int]) -> str | None:
    """What to tell the invoker when Slack refused a channel post queued with their change (None: posted, or
    still being retried — then the outbox keeps trying and the lead hears of a refusal by DM)."""
    if not row_ids or services.outbox is None:
        return None
    for status, error in (await services.outbox.settle(row_ids)).values():
        if status != "failed" or not error:
            continue
        if error in CHANNEL_ACCESS:
            return (
                "Done — but I could not post the announcement in this channel. If it is private, "
                "invite me with `/invite @Phasegate` so the team sees what happens here."
            )
        return f"Done — but Slack refused the announcement in this channel ({error}): {DeliveryError(error, permanent=True).fix}."
    return None


def with_notice(message: Message | None, text: str) -> Message:
    """The invoker's answer with one more paragraph (the answer alone when there was none)."""
    section = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if message is None:
        return notice(text)
    return Message(text=f"{message.text}\n{text}", blocks=[*(message.blocks or []), section] if message.blocks else [])


async def answer(ctx: Context, message: Message, *, respond: Respond | None) -> None:
    """An ephemeral answer to the invoker: via response_url when there is one, else chat.postEphemeral/DM."""
    message = with_command(message, ctx.command)
    if respond is not None:
        try:
            await respond(text=message.text, blocks=message.blocks, response_type="ephemeral", replace_original=False)
            return
        except Exception as exc:  # response_url expired or used up, or Slack unreachable: try the Web API
            log.info("the response_url did not take the answer (%s); answering with chat.postEphemeral", exc)
    messenger = ctx.services.messenger
    if ctx.channel_id:
        await messenger.ephemeral(
            team_id=ctx.actor.team_id, channel_id=ctx.channel_id, user_id=ctx.actor.user_id, message=message
        )
    else:
        await messenger.dm(team_id=ctx.actor.team_id, user_id=ctx.actor.user_id, message=message)


async def refresh_home(services: Services, *, team_id: str, user_id: str, command: str) -> None:
    """Re-publish one person's App Home."""
    ctx = Context(services=services, actor=Actor(team_id, user_id), channel_id=None, command=command)
    try:
        view = await home_view(ctx)
    except Exception:
        log.exception("could not build the Home tab of %s", user_id)
        return
    await services.messenger.publish_home(team_id=team_id, user_id=user_id, view=swap_command(view, command))
