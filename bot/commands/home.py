"""App Home: a person's projects, gate checklists, meetings they owe proposals for, their open tasks."""

from __future__ import annotations

from typing import Any

from bot.commands.base import Context
from bot.process import PHASES, Phase
from bot.rendering import render_view


async def home_view(ctx: Context) -> dict[str, Any]:
    """The Home tab for the acting person (within Slack's 100-block limit)."""
    projects = await ctx.services.reports.home(actor=ctx.actor)
    return render_view(
        "blocks/home.json.j2",
        projects=projects,
        specs={p.value: PHASES[p] for p in Phase},
        command=ctx.command,
        user=ctx.actor.user_id,
        preview=ctx.services.preview_mode,
    )
