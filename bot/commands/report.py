"""`/phasegate report`: the project on one page, shared in its channel as a markdown file."""

from __future__ import annotations

from bot.commands.base import Args, Context, Reply, UsageError, notice, subcommand
from bot.commands.project import project_id
from bot.services.project_report import ProjectReportService, render_markdown


@subcommand(
    "report",
    usage="report [project=<name>]",
    summary="The project on one page (brief, phases, decisions, tasks, audit trail), shared as a markdown file.",
    examples=("report",),
)
async def report(ctx: Context, args: Args) -> Reply:
    pid = await project_id(ctx, args)
    if args.positional or args.options:
        bad = args.positional[0] if args.positional else next(iter(args.options))
        raise UsageError(f"`{bad[:40]}` is not an option of report: type `{ctx.command} report` alone.")
    service = ProjectReportService(ctx.services.db, ctx.services.clock)
    built = await service.build(actor=ctx.actor, project_id=pid)
    filename = f"{built.project.name}-report-{built.generated_at:%Y-%m-%d}.md"
    await ctx.services.messenger.upload(
        team_id=ctx.actor.team_id,
        channel_id=built.project.channel_id,
        filename=filename,
        content=render_markdown(built).encode("utf-8"),
        title=f"{built.project.name}: project report",
        comment=f"Project report for {built.project.name} ({built.project.phase_label} phase).",
    )
    return Reply(
        message=notice(
            f"The report for {built.project.name} is shared in its channel as {filename}. "
            "For JSON or a single HTML page, run `phasegate report` on the server."
        )
    )
