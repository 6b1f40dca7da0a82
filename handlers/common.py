"""What every Slack listener shares: the acting user's context and delivering a command's Reply."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.commands import Context, Reply, render_form
from bot.commands.base import notice
from bot.commands.home import home_view
from bot.rendering import Message
from bot.services import Actor, Services

log = logging.getLogger(__name__)

Respond = Callable[..., Awaitable[Any]]


async def context_for(
    services: Services,
    *,
    team_id: str,
    user_id: str,
    channel_id: str | None,
    command: str,
    ask_slack: bool = True,
) -> Context:
    """The acting person's context; their time zone comes from Phasegate's record, else their Slack profile.

    `ask_slack=False` before an ack (modal submissions): no Web API call, an unknown zone reads as UTC.
    """
    members = await services.projects.members(team_id=team_id, user_ids=[user_id])
    member = members.get(user_id)
    tz = member.timezone if member and member.timezone else None
    if tz is None and ask_slack:
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
            except Exception:  # an unknown zone name from Slack must not block the command
                log.warning("could not store the Slack profile of %s", user_id, exc_info=True)
            tz = person.timezone
    return Context(
        services=services,
        actor=Actor(team_id=team_id, user_id=user_id),
        channel_id=channel_id,
        tz=tz or "UTC",
        command=command,
    )


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
    services.changed()
    if reply.form is not None:
        if trigger_id is None:
            reply.message = reply.message or notice("Type the options instead of using the form.")
        else:
            try:
                await client.views_open(trigger_id=trigger_id, view=render_form(reply.form))
            except SlackApiError as exc:
                log.info("views.open failed: %s", exc.response.get("error"))
                sub_usage = f"`{ctx.command} help {reply.form.form.name}` shows how to type it instead."
                reply.message = notice(
                    f"The form could not be opened ({exc.response.get('error')}): Slack gives a form only a few "
                    f"seconds to open. Try again, or type the options: {sub_usage}"
                )
    if reply.message is not None:
        await answer(ctx, reply.message, respond=respond)
    if reply.public is not None and ctx.channel_id:
        posted = await services.messenger.post(
            team_id=ctx.actor.team_id, channel_id=ctx.channel_id, message=reply.public
        )
        if posted is None:  # e.g. a private channel the bot was not invited to: say so, nothing is lost
            await answer(
                ctx,
                notice(
                    "Done — but I could not post the announcement in this channel. If it is private, "
                    "invite me with `/invite @Phasegate` so the team sees what happens here."
                ),
                respond=respond,
            )
    for user in sorted(reply.refresh_home):
        await refresh_home(services, team_id=ctx.actor.team_id, user_id=user, command=ctx.command)


async def answer(ctx: Context, message: Message, *, respond: Respond | None) -> None:
    """An ephemeral answer to the invoker: via response_url when there is one, else chat.postEphemeral/DM."""
    if respond is not None:
        try:
            await respond(text=message.text, blocks=message.blocks, response_type="ephemeral", replace_original=False)
            return
        except Exception:  # response_url expired or used up: fall through to the Web API
            log.info("respond() failed; answering with chat.postEphemeral", exc_info=True)
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
    await services.messenger.publish_home(team_id=team_id, user_id=user_id, view=view)
