"""Membership: `join <project>` (the lead approves from a DM) and co-authors confirming their proposals."""

from __future__ import annotations

from bot.commands.base import Args, Context, Reply, UsageError, action, notice, subcommand
from bot.errors import InvalidInput
from bot.rendering import Message, mention, mrkdwn


def _join_request(project_id: int, name: str, user_id: str) -> Message:
    value = f"{project_id}:{user_id}"
    return Message(
        text=f"{mention(user_id)} asks to join {name}",
        blocks=[
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"{mention(user_id)} asks to join *{mrkdwn(name, 80)}*. Approve to make them a member "
                    "(they can then add tasks, write the brief, record results and propose).",
                },
            },
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "phasegate:join-approve",
                        "text": {"type": "plain_text", "text": "Approve"},
                        "style": "primary",
                        "value": value,
                    },
                    {
                        "type": "button",
                        "action_id": "phasegate:join-decline",
                        "text": {"type": "plain_text", "text": "Decline"},
                        "value": value,
                    },
                ],
            },
        ],
    )


@subcommand(
    "join",
    usage="join <project>",
    summary="Ask a project's lead to make you a member (they approve from a message I send them).",
    examples=("join genres",),
)
async def join(ctx: Context, args: Args) -> Reply:
    name = " ".join(args.positional).strip() or (args.get("project") or "").strip()
    if not name:
        raise UsageError(f"Say which project: `{ctx.command} join <project>`.")
    project = await ctx.services.projects.request_join(
        actor=ctx.actor, name=name, ask=lambda p: _join_request(p.id or 0, p.name, ctx.actor.user_id)
    )
    return Reply(message=notice(f"I asked {mention(project.lead_user_id)}, the lead of {project.name}, to let you in."))


def _join_value(value: str) -> tuple[int, str]:
    pid, _, user = value.partition(":")
    if not pid.isdecimal() or not user:
        raise InvalidInput("This button names no join request.")
    return int(pid), user


async def _answer_join(ctx: Context, value: str, approve: bool) -> Reply:
    pid, user = _join_value(value)
    project = await ctx.services.projects.answer_join(
        actor=ctx.actor,
        project_id=pid,
        user_id=user,
        approve=approve,
        tell=lambda p: notice(
            f"{mention(ctx.actor.user_id)} {'approved' if approve else 'declined'} your request to join {p.name}."
        ),
    )
    verdict = "is now a member of" if approve else "was not added to"
    return Reply(message=notice(f"{mention(user)} {verdict} {project.name}."), refresh_home={user})


@action("phasegate:join-approve")
async def join_approve(ctx: Context, value: str) -> Reply:
    return await _answer_join(ctx, value, True)


@action("phasegate:join-decline")
async def join_decline(ctx: Context, value: str) -> Reply:
    return await _answer_join(ctx, value, False)


async def _consent(ctx: Context, value: str, confirm: bool) -> Reply:
    if not value.isdecimal():
        raise InvalidInput("This button names no proposal.")
    view = await ctx.services.proposals.consent(actor=ctx.actor, proposal_id=int(value), confirm=confirm)
    if confirm:
        text = f"Thanks — proposal #{view.id} now counts as yours too."
    else:
        text = f"You are no longer named on proposal #{view.id}."
    return Reply(message=notice(text), refresh_home={ctx.actor.user_id})


@action("phasegate:coauthor-confirm")
async def coauthor_confirm(ctx: Context, value: str) -> Reply:
    return await _consent(ctx, value, True)


@action("phasegate:coauthor-decline")
async def coauthor_decline(ctx: Context, value: str) -> Reply:
    return await _consent(ctx, value, False)
