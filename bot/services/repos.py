"""Repository ownership: the first project to sync a repo holds it; its lead may share it; an allowlist limits all."""

from __future__ import annotations

from fnmatch import fnmatchcase

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from bot.clock import Clock
from bot.db.models import Project, RepoClaim, RepoShare, Workspace
from bot.errors import NotAllowed


def parse_allowlist(raw: str | None) -> tuple[str, ...]:
    """`PHASEGATE_GITHUB_REPOS`: comma-separated `owner/repo` or `owner/*`, compared case-insensitively."""
    return tuple(p.strip().lower() for p in (raw or "").split(",") if p.strip())


def check_allowed(repo: str, allowed: tuple[str, ...]) -> None:
    """Refuse a repository outside the deployment's allowlist (an empty list allows every repository)."""
    if allowed and not any(fnmatchcase(repo.lower(), pattern) for pattern in allowed):
        raise NotAllowed(
            f"This Phasegate may only sync {', '.join(allowed)}; `{repo}` is not among them. "
            "Name one of those, or ask whoever runs Phasegate to add it to PHASEGATE_GITHUB_REPOS."
        )


async def _holder(s: AsyncSession, repo: str) -> tuple[RepoClaim, Project] | None:
    claim = (await s.execute(select(RepoClaim).where(RepoClaim.repo == repo.lower()))).scalars().first()
    if claim is None:
        return None
    project = await s.get(Project, claim.project_id)
    assert project is not None
    return claim, project


async def check_claim(s: AsyncSession, project: Project, repo: str) -> None:
    """Refuse `repo` for `project` when another project holds it and has not shared it with this one."""
    held = await _holder(s, repo)
    if held is None or held[1].id == project.id:
        return
    shared = (
        (await s.execute(select(RepoShare).where(RepoShare.repo == repo.lower(), RepoShare.project_id == project.id)))
        .scalars()
        .first()
    )
    if shared is not None:
        return
    holder = held[1]
    workspace = await s.get(Workspace, holder.team_id)
    where = "this workspace" if holder.team_id == project.team_id else f"workspace {_workspace_name(workspace)}"
    raise NotAllowed(
        f"`{repo}` belongs to project {holder.name} in {where}, which syncs it first. Use another repository, "
        f"or ask {holder.name}'s lead to run `share repo={repo} with={project.name}`."
    )


def _workspace_name(workspace: Workspace | None) -> str:
    if workspace is None:
        return "another workspace"
    name = getattr(workspace, "name", None)
    return f"{name} ({workspace.team_id})" if name else workspace.team_id


async def claim(s: AsyncSession, project: Project, repo: str, clock: Clock) -> None:
    """At sync: refuse a repo held by another project (unshared); otherwise claim it if nobody holds it."""
    await check_claim(s, project, repo)
    if await _holder(s, repo) is not None:
        return
    assert project.id is not None
    try:
        async with s.begin_nested():
            s.add(RepoClaim(repo=repo.lower(), project_id=project.id, team_id=project.team_id, claimed_at=clock.now()))
    except IntegrityError:  # another project claimed it at the same moment
        await check_claim(s, project, repo)
