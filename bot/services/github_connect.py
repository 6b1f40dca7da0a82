"""`github connect` with a GitHub App of many installations: the install link, GitHub's setup redirect linking
an installation to the workspace, and whether a project may name a repository (an installation linked to its
workspace must cover it). Answers are what to say; nothing here posts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel import col, select

from bot.clock import Clock
from bot.db.models import GitHubInstallation
from bot.db.session import Database
from bot.github.setup_state import SetupStateError, SetupStateSigner
from bot.services.base import Actor, ServiceBase

if TYPE_CHECKING:  # PyGithub loads only where an App of many installations is configured
    from bot.github.installations import GitHubApp


@dataclass(frozen=True)
class SetupResult:
    """What the setup page says: `ok` with the workspace linked, or why not."""

    ok: bool
    message: str
    team_id: str | None = None
    installation_id: int | None = None


class GitHubConnectService(ServiceBase):
    def __init__(self, db: Database, clock: Clock, app: GitHubApp, signer: SetupStateSigner) -> None:
        super().__init__(db, clock)
        self.app = app
        self.signer = signer

    async def connect(self, actor: Actor) -> str:
        """The answer to `github connect`: a link to install the App, good for this person and workspace."""
        url = await self.app.install_url(self.signer.issue(actor.team_id, actor.user_id))
        return (
            f"Install the GitHub App on the accounts that own your repositories: <{url}|install Phasegate on GitHub>. "
            f"The link is yours, works once and expires in {int(self.signer.ttl.total_seconds() // 60)} minutes."
        )

    async def setup(self, installation_id: str, setup_action: str, state: str) -> SetupResult:
        """GitHub's setup redirect: link `installation_id` to the workspace that `state` was made for."""
        if not installation_id.isdecimal():
            return SetupResult(False, "GitHub did not say which installation was made; install the App again.")
        try:
            async with self.db.session() as s:
                parsed = await self.signer.consume(s, state)
        except SetupStateError as exc:
            return SetupResult(False, f"{exc} Ask for a new one with `{self.command} github connect` in Slack.")
        installation = int(installation_id)
        async with self.db.session() as s:
            await self.ensure_workspace(s, parsed.team_id)
            found = (
                await s.execute(
                    select(GitHubInstallation).where(
                        GitHubInstallation.team_id == parsed.team_id,
                        GitHubInstallation.installation_id == installation,
                    )
                )
            ).scalar_one_or_none()
            if found is None:
                s.add(
                    GitHubInstallation(
                        team_id=parsed.team_id,
                        installation_id=installation,
                        linked_by=parsed.user_id,
                        linked_at=self.clock.now(),
                    )
                )
            await self.audit(
                s,
                actor=Actor(team_id=parsed.team_id, user_id=parsed.user_id),
                action="github.installation_linked",
                installation_id=installation,
                setup_action=setup_action or None,
            )
        return SetupResult(True, "GitHub is connected. You can close this page.", parsed.team_id, installation)

    async def linked(self, team_id: str) -> list[int]:
        async with self.db.session() as s:
            rows = await s.execute(
                select(GitHubInstallation.installation_id)
                .where(GitHubInstallation.team_id == team_id)
                .order_by(col(GitHubInstallation.installation_id))
            )
            return [int(r) for r in rows.scalars()]

    async def installation_for_project(self, actor: Actor, repo: str) -> tuple[int | None, str | None]:
        """(installation id, None) if an installation linked to the workspace covers `repo`; else (None, the
        refusal saying which installation to add, with the install link)."""
        covering = await self.app.installation_for(repo)
        owner = repo.partition("/")[0]
        if covering is not None and covering[0] in await self.linked(actor.team_id):
            return covering[0], None
        url = await self.app.install_url(self.signer.issue(actor.team_id, actor.user_id))
        if covering is None:
            why = f"The Phasegate GitHub App is not installed on `{owner}` (or cannot see `{repo}`)."
        else:
            why = f"`{owner}`'s installation of the Phasegate GitHub App is not connected to this workspace."
        return None, f"{why} Install it on `{owner}` here: <{url}|add the installation>, then name `{repo}` again."
