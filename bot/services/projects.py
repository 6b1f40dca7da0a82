"""Projects and people: create a project, resolve it from a channel, roles, GitHub logins, absences."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import date
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy import Row, func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, or_, select

from bot.db.models import Member, PhaseRecord, Project, ProjectMember, RepoClaim, RepoShare
from bot.errors import InvalidInput, NotAllowed, NotFound
from bot.process import Phase, Role, format_working_hours, parse_working_hours
from bot.rendering import Message, mention
from bot.services.base import MEMBER_ROLE, Actor, Announce, ServiceBase
from bot.services.repos import check_allowed, check_claim
from bot.services.tasks import add_default_tasks

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
REPO_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
LOGIN_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")


def check_repo(repo: str) -> str:
    repo = repo.strip().removeprefix("https://github.com/").rstrip("/").removesuffix(".git")
    if not REPO_RE.match(repo) or repo.endswith(("/.", "/..")):
        raise InvalidInput(
            f"`{repo[:100]}` is not a GitHub repository. Write it as owner/name, e.g. repo=acme/vision.",
            field="repo",
        )
    return repo


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"`{name[:64]}` is not a time zone. Use an IANA name such as Europe/Berlin or Asia/Kolkata.",
            field="timezone",
        ) from None
    return name


# The statements a command's project lookup runs, built once (`cache`) with parameters: per command only the values
# change, so SQLAlchemy neither rebuilds nor recompiles them.
_TEAM = sa.bindparam("team", type_=sa.String())


@cache
def _by_name(columns: tuple[Any, ...]) -> Any:
    return select(Project, *columns).where(col(Project.team_id) == _TEAM, col(Project.name) == sa.bindparam("name"))


@cache
def _in_channel(columns: tuple[Any, ...]) -> Any:
    return (
        select(Project, *columns)
        .where(col(Project.team_id) == _TEAM, col(Project.channel_id) == sa.bindparam("channel"))
        .order_by(col(Project.id))
    )


@cache
def _projects_of(columns: tuple[Any, ...]) -> Any:
    user = sa.bindparam("user", type_=sa.String())
    member_of = select(ProjectMember.project_id).where(
        col(ProjectMember.team_id) == _TEAM, col(ProjectMember.user_id) == user
    )
    return (
        select(Project, *columns)
        .where(col(Project.team_id) == _TEAM, or_(col(Project.lead_user_id) == user, col(Project.id).in_(member_of)))
        .order_by(col(Project.id))
    )


async def resolve_project(s: AsyncSession, *, actor: Actor, channel_id: str | None, name: str | None = None) -> Project:
    """The project a command is about, in the caller's session: by name, else the channel's, else the user's only
    project."""
    project, _ = await resolve_project_row(s, actor=actor, channel_id=channel_id, name=name)
    return project


async def resolve_project_row(
    s: AsyncSession, *, actor: Actor, channel_id: str | None, name: str | None = None, columns: tuple[Any, ...] = ()
) -> tuple[Project, Row[Any]]:
    """As `resolve_project`, reading `columns` (labelled, correlated to the `projects` row) in the same statement:
    the project and its row (the project first, then those columns)."""
    if name:
        row = (await s.execute(_by_name(columns), {"team": actor.team_id, "name": name})).first()
        if row is None:
            raise NotFound(f"There is no project named `{name}`. `/phasegate status` lists yours.")
        return row[0], row
    if channel_id:
        here = {"team": actor.team_id, "channel": channel_id}
        in_channel = (await s.execute(_in_channel(columns), here)).all()
        if len(in_channel) == 1:
            return in_channel[0][0], in_channel[0]
        if len(in_channel) > 1:
            names = ", ".join(f"`{r[0].name}`" for r in in_channel)
            raise InvalidInput(f"This channel hosts several projects ({names}): add project=<name> to say which.")
    mine = (await s.execute(_projects_of(columns), {"team": actor.team_id, "user": actor.user_id})).all()
    if len(mine) == 1:
        return mine[0][0], mine[0]
    if not mine:
        raise NotFound(
            "No project here yet. Start one with `/phasegate init <name> repo=<owner/repo>` in the project's channel."
        )
    raise InvalidInput(
        "You are in several projects: run this in a project's channel or add project=<name> "
        f"(yours: {', '.join(r[0].name for r in mine)})."
    )


async def projects_of(s: AsyncSession, actor: Actor) -> list[Project]:
    """Projects the user leads or has a role in."""
    return list((await s.execute(_projects_of(()), {"team": actor.team_id, "user": actor.user_id})).scalars())


class ProjectService(ServiceBase):
    allowed_repos: tuple[str, ...] = ()  # PHASEGATE_GITHUB_REPOS (set by the composition)
    # A GitHub App of many installations: why `repo` may not be named by this workspace (no linked installation
    # covers it; the answer carries the install link), or None. Set by the composition.
    repo_check: Callable[[Actor, str], Awaitable[str | None]] | None = None

    async def _check_covered(self, actor: Actor, repo: str) -> None:
        if self.repo_check is not None and (why := await self.repo_check(actor, repo)) is not None:
            raise InvalidInput(why, field="repo")

    async def create(
        self,
        *,
        actor: Actor,
        name: str,
        channel_id: str,
        repo: str | None = None,
        lead_user_id: str | None = None,
        announce: Announce[Project] | None = None,
    ) -> Project:
        """Create a project in Discovery, with its lead, phase record and Discovery's default tasks; `announce`:
        the channel post, queued with the project."""
        name = name.strip()
        if not NAME_RE.match(name):
            raise InvalidInput(
                f"`{name[:80]}` is not a usable project name: use 1–80 letters, digits, `.`, `_` or `-`, "
                "starting with a letter or digit (e.g. `genre-classifier`).",
                field="name",
            )
        repo = check_repo(repo) if repo else None
        if repo:
            check_allowed(repo, self.allowed_repos)
            await self._check_covered(actor, repo)
        lead = lead_user_id or actor.user_id
        now = self.clock.now()
        try:
            async with self.db.session() as s:
                await self.ensure_workspace(s, actor.team_id)
                await self.member(s, actor.team_id, lead)
                project = Project(
                    team_id=actor.team_id,
                    name=name,
                    channel_id=channel_id,
                    repo=repo,
                    lead_user_id=lead,
                    phase=Phase.DISCOVERY.value,
                    created_at=now,
                )
                s.add(project)
                await s.flush()
                assert project.id is not None
                if repo:
                    await check_claim(s, project, repo)
                s.add(ProjectMember(team_id=actor.team_id, project_id=project.id, user_id=lead, roles=[Role.LEAD]))
                s.add(PhaseRecord(team_id=actor.team_id, project_id=project.id, phase=Phase.DISCOVERY, started_at=now))
                await add_default_tasks(s, project=project, phase=Phase.DISCOVERY, actor=actor, now=now)
                await self.audit(s, actor=actor, action="project.create", project_id=project.id, name=name, repo=repo)
                if announce is not None:
                    announce.row = await self.say(
                        s,
                        team_id=actor.team_id,
                        kind="post",
                        target=channel_id,
                        message=announce.render(project),
                        topic=f"project:{project.id}:created",
                        project_id=project.id,
                        notify_user_id=lead,
                    )
        except IntegrityError:
            raise InvalidInput(
                f"A project named `{name}` already exists in this workspace. Pick another name.", field="name"
            ) from None
        await self.said()
        return project

    async def get(self, *, actor: Actor, project_id: int) -> Project:
        """One project of the actor's workspace."""
        async with self.db.session() as s:
            return await self.project_by_id(s, actor, project_id)

    async def resolve(self, *, actor: Actor, channel_id: str | None, name: str | None = None) -> Project:
        """The project a command is about: by name, else the channel's, else the user's only project."""
        async with self.db.session() as s:
            return await resolve_project(s, actor=actor, channel_id=channel_id, name=name)

    async def _projects_of(self, s: AsyncSession, actor: Actor) -> list[Project]:
        return await projects_of(s, actor)

    async def list_for_user(self, *, actor: Actor) -> list[Project]:
        """Projects the user leads or has a role in."""
        async with self.db.session() as s:
            return await self._projects_of(s, actor)

    async def list_all(self, *, team_id: str) -> list[Project]:
        async with self.db.session() as s:
            rows = await s.execute(select(Project).where(Project.team_id == team_id).order_by(col(Project.id)))
            return list(rows.scalars())

    async def set_role(
        self, *, actor: Actor, project_id: int, user_id: str, role: Role, remove: bool = False
    ) -> dict[str, set[str]]:
        """Give (or take) a role in the project. `lead` moves the lead. Lead or admin only."""
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            await self.require_lead(s, actor, project, "assign roles")
            await self.member(s, actor.team_id, user_id)
            row = (
                await s.execute(
                    select(ProjectMember).where(
                        ProjectMember.project_id == project_id, ProjectMember.user_id == user_id
                    )
                )
            ).scalar_one_or_none()
            if row is None:
                row = ProjectMember(team_id=actor.team_id, project_id=project_id, user_id=user_id, roles=[])
                s.add(row)
            roles = set(row.roles)
            if role is Role.LEAD:
                if remove:
                    raise InvalidInput("A project always has a lead: give the lead role to someone else instead.")
                old = project.lead_user_id
                project.lead_user_id = user_id
                s.add(project)
                old_row = (
                    await s.execute(
                        select(ProjectMember).where(
                            ProjectMember.project_id == project_id, ProjectMember.user_id == old
                        )
                    )
                ).scalar_one_or_none()
                if old_row is not None and old != user_id:
                    old_row.roles = [r for r in old_row.roles if r != Role.LEAD.value]
                    s.add(old_row)
            roles.discard(role.value) if remove else roles.add(role.value)
            row.roles = sorted(roles)
            s.add(row)
            await self.audit(
                s,
                actor=actor,
                action="role.remove" if remove else "role.add",
                project_id=project_id,
                user=user_id,
                role=role.value,
            )
            await s.flush()
            rows = (await s.execute(select(ProjectMember).where(ProjectMember.project_id == project_id))).scalars()
            return {r.user_id: set(r.roles) for r in rows}

    async def request_join(self, *, actor: Actor, name: str, ask: Callable[[Project], Message]) -> Project:
        """`join <project>`: find the project the person asks to join (audited; the lead gets `ask`, with buttons,
        as a DM queued with the request)."""
        async with self.db.session() as s:
            matches = (
                (
                    await s.execute(
                        select(Project).where(
                            Project.team_id == actor.team_id, func.lower(Project.name) == name.lower()
                        )
                    )
                )
                .scalars()
                .all()
            )
            # Names are unique as typed, so `genres` and `Genres` may both exist: the exact spelling wins.
            exact = [p for p in matches if p.name == name]
            if not exact and len(matches) > 1:
                raise InvalidInput(
                    f"Several projects are named like `{name[:80]}`: "
                    + ", ".join(f"`{p.name}`" for p in matches)
                    + ". Type the name exactly as written."
                )
            if not matches:
                raise NotFound(f"There is no project named `{name[:80]}`. `{self.command} status` lists yours.")
            project = (exact or list(matches))[0]
            if await self.is_member(s, actor, project):
                raise InvalidInput(f"You are already a member of {project.name}.")
            await self.audit(s, actor=actor, action="join.request", project_id=project.id)
            await self.say(
                s,
                team_id=actor.team_id,
                kind="dm",
                target=project.lead_user_id,
                message=ask(project),
                topic=f"join:{project.id}:{actor.user_id}",
                project_id=project.id,
            )
        await self.said()
        return project

    async def answer_join(
        self, *, actor: Actor, project_id: int, user_id: str, approve: bool, tell: Callable[[Project], Message]
    ) -> Project:
        """The lead (or an admin) approves a join request (the person becomes a member) or declines it; the person
        gets `tell` as a DM queued with the answer."""
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            await self.require_lead(s, actor, project, "answer join requests")
            if approve:
                await self.member(s, actor.team_id, user_id)
                row = (
                    await s.execute(
                        select(ProjectMember).where(
                            ProjectMember.project_id == project_id, ProjectMember.user_id == user_id
                        )
                    )
                ).scalar_one_or_none()
                if row is None:
                    row = ProjectMember(team_id=actor.team_id, project_id=project_id, user_id=user_id, roles=[])
                if not row.roles:
                    row.roles = [MEMBER_ROLE]
                s.add(row)
            await self.audit(
                s,
                actor=actor,
                action="join.approve" if approve else "join.decline",
                project_id=project_id,
                user=user_id,
            )
            await self.say(
                s,
                team_id=actor.team_id,
                kind="dm",
                target=user_id,
                message=tell(project),
                topic=f"join:{project_id}:{user_id}:answer",
                project_id=project_id,
            )
        await self.said()
        return project

    async def link_github(self, *, actor: Actor, user_id: str, login: str, project_id: int | None = None) -> Member:
        """Map a Slack user to a GitHub login: yourself, or anyone if you lead the project or are an admin."""
        login = login.strip().removeprefix("@")
        if not LOGIN_RE.match(login):
            raise InvalidInput(
                f"`{login[:40]}` is not a GitHub login: 1–39 letters, digits or single hyphens.", field="login"
            )
        async with self.db.session() as s:
            if user_id != actor.user_id:
                allowed = await self.is_admin(s, actor)
                if not allowed and project_id is not None:
                    project = await self.project_by_id(s, actor, project_id)
                    allowed = project.lead_user_id == actor.user_id
                if not allowed:
                    raise NotAllowed(
                        "You can link your own GitHub login; linking someone else's is for the project lead "
                        f"or an admin. Ask {mention(user_id)} to run `/phasegate github @me {login}`."
                    )
            m = await self.member(s, actor.team_id, user_id)
            m.github_login = login
            m.updated_at = self.clock.now()
            s.add(m)
            await self.audit(s, actor=actor, action="member.github", project_id=project_id, user=user_id, login=login)
            return m

    async def set_away(self, *, actor: Actor, until: date | None) -> Member:
        """Declare an absence until a date (inclusive), or clear it with None. Away people are not nagged."""
        today = self.clock.now().date()
        if until is not None and until < today:
            raise InvalidInput(
                f"{until.isoformat()} is in the past. Give a date from today on, e.g. until={today.isoformat()}.",
                field="until",
            )
        async with self.db.session() as s:
            m = await self.member(s, actor.team_id, actor.user_id)
            m.away_until = until
            m.updated_at = self.clock.now()
            s.add(m)
            await self.audit(s, actor=actor, action="member.away", until=until.isoformat() if until else None)
            return m

    async def update_profile(
        self,
        *,
        team_id: str,
        user_id: str,
        display_name: str | None = None,
        timezone: str | None = None,
        working_hours: str | None = None,
        is_admin: bool | None = None,
    ) -> Member:
        """Refresh what we know of a person from Slack (or the shell's `:user`)."""
        if timezone is not None:
            check_timezone(timezone)
        if working_hours is not None and parse_working_hours(working_hours) is None:
            raise InvalidInput(f"`{working_hours}` is not working hours: write them as 09:00-17:00.", field="hours")
        async with self.db.session() as s:
            m = await self.member(s, team_id, user_id)
            if display_name is not None:
                m.display_name = display_name[:200]
            if timezone is not None:
                m.timezone = timezone
            if working_hours is not None:
                m.working_hours = working_hours
            if is_admin is not None:
                m.is_admin = is_admin
            m.updated_at = self.clock.now()
            s.add(m)
            return m

    async def members(self, *, team_id: str, user_ids: list[str]) -> dict[str, Member]:
        async with self.db.session() as s:
            rows = await s.execute(select(Member).where(Member.team_id == team_id, col(Member.user_id).in_(user_ids)))
            return {m.user_id: m for m in rows.scalars()}

    async def configure(
        self,
        *,
        actor: Actor,
        project_id: int,
        working_hours: str | None = None,
        timezone: str | None = None,
        proposal_deadline_hours: int | None = None,
        min_proposals: int | None = None,
        readiness_policy: str | None = None,
        postpone_days: int | None = None,
        max_postpones: int | None = None,
        repo: str | None = None,
    ) -> Project:
        """Change per-project settings (lead or admin)."""
        if working_hours is not None:
            parsed = parse_working_hours(working_hours)
            if parsed is None:
                raise InvalidInput(
                    f"`{working_hours[:40]}` is not working hours: write them as 09:00-17:00 (overnight: 18:00-09:00).",
                    field="hours",
                )
            working_hours = format_working_hours(*parsed)  # as stored and shown: 18:00-09:00
        if timezone is not None:
            check_timezone(timezone)
        checks = (
            # the words people type in `settings …=`, never the internal field names
            ("deadline", proposal_deadline_hours, 1, 24 * 14),
            ("min_proposals", min_proposals, 1, 20),
            ("postpone_days", postpone_days, 1, 30),
            ("max_postpones", max_postpones, 0, 10),
        )
        for label, value, lo, hi in checks:
            if value is not None and not lo <= value <= hi:
                unit = " (hours before the meeting)" if label == "deadline" else ""
                raise InvalidInput(f"{label}={value}{unit} is out of range: give {label}=<{lo}–{hi}>.", field=label)
        if readiness_policy is not None and readiness_policy not in ("escalate", "postpone"):
            raise InvalidInput("policy must be `escalate` or `postpone`.", field="policy")
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            await self.require_lead(s, actor, project, "change project settings")
            if repo:
                check_allowed(check_repo(repo), self.allowed_repos)
                await self._check_covered(actor, check_repo(repo))
                await check_claim(s, project, check_repo(repo))
            changes = {
                "working_hours": working_hours,
                "timezone": timezone,
                "proposal_deadline_hours": proposal_deadline_hours,
                "min_proposals": min_proposals,
                "readiness_policy": readiness_policy,
                "postpone_days": postpone_days,
                "max_postpones": max_postpones,
                "repo": check_repo(repo) if repo else None,
            }
            for key, new in changes.items():
                if new is not None:
                    setattr(project, key, new)
            s.add(project)
            await self.audit(s, actor=actor, action="project.configure", project_id=project_id, **changes)
            return project

    async def share_repo(self, *, actor: Actor, project_id: int, repo: str, with_project: str) -> Project:
        """The holding project's lead lets another project (this or another workspace) sync its repository."""
        repo = check_repo(repo)
        async with self.db.session() as s:
            project = await self.project_by_id(s, actor, project_id)
            held = (await s.execute(select(RepoClaim).where(RepoClaim.repo == repo.lower()))).scalars().first()
            if held is None or held.project_id != project.id:
                raise NotAllowed(
                    f"Project {project.name} does not hold `{repo}`, so it cannot share it. Only the lead of the "
                    "project that first synced a repository can share it."
                )
            if project.lead_user_id != actor.user_id:
                raise NotAllowed(
                    f"Only {mention(project.lead_user_id)}, the lead of {project.name}, can share `{repo}`."
                )
            named = (await s.execute(select(Project).where(Project.name == with_project.strip()))).scalars().all()
            here = [p for p in named if p.team_id == actor.team_id and p.id != project.id]
            others = [p for p in named if p.team_id != actor.team_id]
            targets = here or others
            if not targets:
                raise NotFound(
                    f"There is no project named `{with_project[:80]}` to share `{repo}` with. Check its name."
                )
            if len(targets) > 1:
                raise InvalidInput(
                    f"{len(targets)} projects in other workspaces are named `{with_project}`; ask that project's "
                    "lead to rename it so the name is unique, then share again.",
                    field="with",
                )
            target = targets[0]
            assert target.id is not None
            exists = (
                (
                    await s.execute(
                        select(RepoShare).where(RepoShare.repo == repo.lower(), RepoShare.project_id == target.id)
                    )
                )
                .scalars()
                .first()
            )
            if exists is None:
                s.add(
                    RepoShare(
                        repo=repo.lower(), project_id=target.id, shared_by=actor.user_id, shared_at=self.clock.now()
                    )
                )
            await self.audit(
                s,
                actor=actor,
                action="github.share",
                project_id=project.id,
                repo=repo,
                with_project=target.name,
                with_team=target.team_id,
            )
            return target
