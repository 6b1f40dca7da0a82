"""`hours`: each person's own working hours and days (a lead may set a member's); `hours reset` to the default."""

from __future__ import annotations

from bot.commands.base import Args, Context, Reply, UsageError, notice, subcommand, user_id
from bot.commands.project import project_id
from bot.errors import InvalidInput, NotFound
from bot.process import parse_days
from bot.rendering import mention
from bot.services.hours import HoursView

RESET_WORDS = ("reset", "off", "default")


async def _project(ctx: Context, args: Args, *, needed: bool) -> int | None:
    """The project in question; for your own hours none is needed (its default is shown when there is one)."""
    if needed or "project" in args.options:
        return await project_id(ctx, args)
    try:
        return await project_id(ctx, args)
    except (NotFound, InvalidInput):
        return None


def _said(ctx: Context, view: HoursView) -> str:
    whose = "Your" if view.user_id == ctx.actor.user_id else f"{mention(view.user_id)}'s"
    if view.own:
        return (
            f"{whose} working hours: {view.text}, in {'your' if whose == 'Your' else 'their'} own time zone. "
            f"Reminders, slot finding and warnings follow them; `{ctx.command} hours reset` returns to the "
            f"project's default ({view.default}, Mon–Fri)."
        )
    source = f"the default of {view.project}" if view.project else "the default"
    return (
        f"{whose} working hours: {view.text} ({source}). Set your own with "
        f"`{ctx.command} hours 07:00-15:00 days=sun-thu` (overnight works too: 18:00-09:00)."
    )


@subcommand(
    "hours",
    usage="hours [@user] [<from>-<to>] [days=<days>] | hours [@user] reset",
    summary="Show or set your own working hours and days (a lead may set a member's); reset to the project's.",
    examples=("hours 07:00-15:00 days=sun-thu", "hours @raj 13:00-21:00", "hours 18:00-09:00", "hours reset"),
)
async def hours(ctx: Context, args: Args) -> Reply:
    words = list(args.positional)
    who = ctx.actor.user_id
    if words and (uid := user_id(words[0])) is not None:
        who, words = uid, words[1:]
    days = args.get("days")
    if len(words) > 1 and days is None and parse_days(words[-1]) is not None:  # `hours 07:00-15:00 sun-thu`
        days, words = words[-1], words[:-1]
    unknown = sorted(set(args.options) - {"hours", "days", "project"})
    reset = bool(words) and words[0].lower() in RESET_WORDS
    if unknown or (words and "hours" in args.options) or (reset and (len(words) > 1 or "days" in args.options)):
        raise UsageError(
            f"Write `{ctx.command} hours 07:00-15:00 days=sun-thu`, `{ctx.command} hours @person 13:00-21:00` "
            f"or `{ctx.command} hours reset`."
        )
    pid = await _project(ctx, args, needed=who != ctx.actor.user_id)
    given = args.get("hours") or (" ".join(words) if words and not reset else None)  # `9:00 - 17:00` too
    service = ctx.services.hours
    if reset:
        view = await service.reset(actor=ctx.actor, user_id=who, project_id=pid)
        return Reply(message=notice(_said(ctx, view)), refresh_home={who})
    if given is None and days is None:
        view = await service.view(actor=ctx.actor, user_id=who, project_id=pid)
        return Reply(message=notice(_said(ctx, view)))
    if given is None:  # only the days change
        given = (await service.view(actor=ctx.actor, user_id=who, project_id=pid)).hours
    view = await service.set(actor=ctx.actor, user_id=who, hours=given, days=days, project_id=pid)
    return Reply(message=notice(_said(ctx, view)), refresh_home={who})
