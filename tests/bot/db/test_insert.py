"""A workspace and a person seen for the first time by many requests at once: every request succeeds, one row each."""

from __future__ import annotations

import asyncio

from sqlmodel import func, select

from bot.db.models import Member, Workspace
from bot.services import Services


async def test_concurrent_first_requests_create_one_workspace_and_one_row_per_person(services: Services) -> None:
    team = "TNEW00001"
    people = [f"U{n:08d}" for n in range(8)]
    calls = [
        services.projects.update_profile(team_id=team, user_id=user, display_name=f"{user.lower()} {i}")
        for user in people
        for i in range(3)
    ]
    stored = await asyncio.gather(*calls)  # before the fix, all but one raised IntegrityError on the unique key
    assert {m.user_id for m in stored} == set(people)
    async with services.projects.db.session() as s:
        workspaces = await s.execute(select(func.count()).select_from(Workspace).where(Workspace.team_id == team))
        assert workspaces.scalar_one() == 1
        rows = (await s.execute(select(Member).where(Member.team_id == team))).scalars().all()
    assert sorted(m.user_id for m in rows) == people
    assert all(m.display_name.startswith(m.user_id.lower()) for m in rows)  # each person's own update landed
