"""GitHub App with many installations: the install link, which installation covers a repository, and one
token per installation (minted with PyGithub's `GithubIntegration.get_access_token`, refreshed on its own
before expiry, on our clock) behind its own gateway."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from github import Auth, GithubException, GithubIntegration
from github.Consts import DEFAULT_BASE_URL

from bot.clock import Clock
from bot.github.gateway import (
    GhComment,
    GhFile,
    GhIssue,
    GhLabel,
    GhMilestone,
    GhPull,
    NotFoundError,
    PyGithubGateway,
    Read,
)

REFRESH_BEFORE = timedelta(minutes=5)  # mint a new token this long before the old one expires
_REPO_QUALIFIER = re.compile(r"\brepo:([\w.-]+/[\w.-]+)")


class InstallationTokenAuth(Auth.Auth):
    """A PyGithub `Auth` for one installation whose token is minted through `GithubIntegration` and refreshed
    `REFRESH_BEFORE` its `expires_at` as told by `clock` (so tests on a fake clock see honest expiry).
    `invalidate()` drops the token (GitHub answered 401), and the next request mints a new one."""

    def __init__(self, integration: GithubIntegration, installation_id: int, clock: Clock) -> None:
        self.integration = integration
        self.installation_id = installation_id
        self.clock = clock
        self.minted = 0
        self._token: str | None = None
        self._expires_at: datetime | None = None
        self._lock = threading.Lock()

    @property
    def token_type(self) -> str:
        return "token"

    @property
    def token(self) -> str:
        with self._lock:
            now = self.clock.now()
            if self._token is None or self._expires_at is None or now >= self._expires_at - REFRESH_BEFORE:
                granted = self.integration.get_access_token(self.installation_id)
                self._token, self._expires_at = granted.token, granted.expires_at
                self.minted += 1
            return self._token

    def invalidate(self) -> None:
        with self._lock:
            self._token = None

    @property
    def _masked_token(self) -> str:
        return "token (installation token removed)"


class GitHubApp:
    """The App (GITHUB_APP_ID + GITHUB_APP_PRIVATE_KEY): its slug, its install link, the installation that
    covers a repository, and one gateway per installation (each with its own token)."""

    def __init__(
        self,
        app_id: str | int,
        private_key: str,
        clock: Clock,
        *,
        base_url: str = DEFAULT_BASE_URL,
        slug: str | None = None,
        gateway_factory: Callable[..., PyGithubGateway] = PyGithubGateway,
        **gateway_options: Any,
    ) -> None:
        self.app_auth = Auth.AppAuth(app_id, private_key)
        self.integration = GithubIntegration(auth=self.app_auth, base_url=base_url)
        self.clock = clock
        self.base_url = base_url
        self._slug = slug
        self._factory = gateway_factory
        self._options = gateway_options
        self._auths: dict[int, InstallationTokenAuth] = {}
        self._gateways: dict[int, PyGithubGateway] = {}

    async def slug(self) -> str:
        """The App's slug (GITHUB_APP_SLUG, else from `GET /app`)."""
        if self._slug is None:
            app = await asyncio.to_thread(self.integration.get_app)
            self._slug = str(app.slug)
        return self._slug

    async def install_url(self, state: str) -> str:
        """Where a person installs the App; GitHub sends them back to the setup URL with `state`."""
        slug = quote(await self.slug())
        return f"https://github.com/apps/{slug}/installations/new?state={quote(state, safe='')}"

    async def installation_for(self, repo: str) -> tuple[int, str] | None:
        """(installation id, account login) of the installation covering `owner/name`, or None if none does."""
        return await asyncio.to_thread(self._installation_for, repo)

    def _installation_for(self, repo: str) -> tuple[int, str] | None:
        owner, _, name = repo.partition("/")
        try:
            found = self.integration.get_repo_installation(owner, name)
        except GithubException as exc:
            if exc.status == 404:
                return None
            raise
        account = found.raw_data.get("account") or {}
        return found.id, str(account.get("login", owner))

    def auth(self, installation_id: int) -> InstallationTokenAuth:
        if installation_id not in self._auths:
            self._auths[installation_id] = InstallationTokenAuth(self.integration, installation_id, self.clock)
        return self._auths[installation_id]

    def gateway(self, installation_id: int) -> PyGithubGateway:
        """The gateway writing with `installation_id`'s own token (one per installation, kept)."""
        if installation_id not in self._gateways:
            self._gateways[installation_id] = self._factory(
                auth=self.auth(installation_id), base_url=self.base_url, **self._options
            )
        return self._gateways[installation_id]

    @staticmethod
    def identity(installation_id: int) -> str:
        """The pacing / write-lock key of an installation."""
        return f"installation:{installation_id}"


class InstallationRoutingGateway:
    """A `GitHubGateway` for the many-installations mode: each call goes to the gateway of the installation
    covering its repository (looked up once per repository with `GET /repos/{o}/{r}/installation`), so every
    read and write for a repository carries that installation's own token. A repository that no installation
    covers raises `NotFoundError` (the project refusal, with the install link, is GitHubConnectService's)."""

    def __init__(self, app: GitHubApp) -> None:
        self.app = app
        self._routes: dict[str, int] = {}

    async def installation(self, repo: str) -> int:
        key = repo.lower()
        if key not in self._routes:
            found = await self.app.installation_for(repo)
            if found is None:
                raise NotFoundError(f"no installation of the GitHub App covers {repo}", status=404)
            self._routes[key] = found[0]
        return self._routes[key]

    async def _for(self, repo: str) -> PyGithubGateway:
        return self.app.gateway(await self.installation(repo))

    async def list_milestones(self, repo: str) -> Read[list[GhMilestone]]:
        return await (await self._for(repo)).list_milestones(repo)

    async def create_milestone(
        self, repo: str, *, title: str, description: str, due_on: date | None, state: str
    ) -> GhMilestone:
        gw = await self._for(repo)
        return await gw.create_milestone(repo, title=title, description=description, due_on=due_on, state=state)

    async def update_milestone(
        self, repo: str, number: int, *, title: str, description: str, due_on: date | None, state: str
    ) -> GhMilestone:
        gw = await self._for(repo)
        return await gw.update_milestone(repo, number, title=title, description=description, due_on=due_on, state=state)

    async def list_labels(self, repo: str) -> Read[list[GhLabel]]:
        return await (await self._for(repo)).list_labels(repo)

    async def create_label(self, repo: str, *, name: str, color: str, description: str) -> GhLabel:
        return await (await self._for(repo)).create_label(repo, name=name, color=color, description=description)

    async def list_issues(
        self, repo: str, *, milestone: int | None = None, since: datetime | None = None, sort: str = "created"
    ) -> Read[list[GhIssue]]:
        return await (await self._for(repo)).list_issues(repo, milestone=milestone, since=since, sort=sort)

    async def search_issues(self, query: str) -> list[GhIssue]:
        match = _REPO_QUALIFIER.search(query)
        if match is None:
            raise NotFoundError("a search needs a repo: qualifier to know which installation to use", status=404)
        return await (await self._for(match.group(1))).search_issues(query)

    async def create_issue(
        self,
        repo: str,
        *,
        title: str,
        body: str,
        milestone: int | None,
        labels: Sequence[str],
        assignees: Sequence[str],
    ) -> GhIssue:
        gw = await self._for(repo)
        return await gw.create_issue(
            repo, title=title, body=body, milestone=milestone, labels=labels, assignees=assignees
        )

    async def update_issue(
        self,
        repo: str,
        number: int,
        *,
        title: str | None = None,
        body: str | None = None,
        state: str | None = None,
        milestone: int | None = None,
        labels: Sequence[str] | None = None,
        assignees: Sequence[str] | None = None,
        state_reason: str | None = None,
    ) -> GhIssue:
        gw = await self._for(repo)
        return await gw.update_issue(
            repo,
            number,
            title=title,
            body=body,
            state=state,
            milestone=milestone,
            labels=labels,
            assignees=assignees,
            state_reason=state_reason,
        )

    async def list_comments(self, repo: str, number: int) -> list[GhComment]:
        return await (await self._for(repo)).list_comments(repo, number)

    async def create_comment(self, repo: str, number: int, *, body: str) -> GhComment:
        return await (await self._for(repo)).create_comment(repo, number, body=body)

    async def is_assignable(self, repo: str, login: str) -> bool:
        return await (await self._for(repo)).is_assignable(repo, login)

    async def default_branch(self, repo: str) -> str:
        return await (await self._for(repo)).default_branch(repo)

    async def branch_sha(self, repo: str, branch: str) -> str | None:
        return await (await self._for(repo)).branch_sha(repo, branch)

    async def create_branch(self, repo: str, branch: str, sha: str) -> None:
        await (await self._for(repo)).create_branch(repo, branch, sha)

    async def get_file(self, repo: str, path: str, *, ref: str) -> GhFile | None:
        return await (await self._for(repo)).get_file(repo, path, ref=ref)

    async def put_file(self, repo: str, path: str, *, branch: str, message: str, text: str, sha: str | None) -> str:
        gw = await self._for(repo)
        return await gw.put_file(repo, path, branch=branch, message=message, text=text, sha=sha)

    async def list_pulls(self, repo: str, *, head: str) -> list[GhPull]:
        return await (await self._for(repo)).list_pulls(repo, head=head)

    async def create_pull(self, repo: str, *, title: str, body: str, head: str, base: str) -> GhPull:
        return await (await self._for(repo)).create_pull(repo, title=title, body=body, head=head, base=base)

    async def update_pull(self, repo: str, number: int, *, title: str, body: str) -> GhPull:
        return await (await self._for(repo)).update_pull(repo, number, title=title, body=body)

    async def close(self) -> None:
        for gateway in self.app._gateways.values():
            await gateway.close()
