"""`/phasegate sync [dry-run]`: show the GitHub plan, or queue the sync and let the worker apply it."""

from __future__ import annotations

from bot.commands.base import Args, Context, Reply, UsageError, notice, subcommand
from bot.commands.project import project_id
from bot.rendering import Message


@subcommand(
    "sync",
    usage="sync [dry-run]",
    summary="Bring GitHub in step now (milestones, labels, issues); dry-run only shows the plan.",
    examples=("sync dry-run", "sync"),
)
async def sync(ctx: Context, args: Args) -> Reply:
    pid = await project_id(ctx, args)
    words = [w.lower().lstrip("-") for w in args.positional]
    if any(w not in ("dry-run", "dryrun", "preview", "plan") for w in words):
        raise UsageError(f"`{args.positional[0][:40]}` is not an option of sync: use `sync` or `sync dry-run`.")
    service = ctx.services.sync
    if service is None:
        return Reply(message=notice("GitHub sync is not available in this process."))
    from bot.sync.plan import render_plan_message

    if words or service.preview_mode:
        plan = await service.plan(actor=ctx.actor, project_id=pid)
        return Reply(message=render_plan_message(plan))
    plan = await service.request(actor=ctx.actor, project_id=pid)
    message: Message = render_plan_message(plan)
    head = notice(
        f"Sync queued: {len(plan.steps)} change(s) are being applied to GitHub, paced under its limits. "
        f"`{ctx.command} status` shows progress and anything failing."
    )
    return Reply(message=Message(text=head.text, blocks=head.blocks + message.blocks[1:]))
