"""GitHub App with many installations: the install link, which installation covers a repository, and one
token per installation (minted with PyGithub's `GithubIntegration.get_access_token`, refreshed on its own
before expiry, on our clock) behind its own gateway."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from github import Auth, GithubException, GithubIntegration
from github.Consts import DEFAULT_BASE_URL

from bot.clock import Clock
from bot.github.gateway import PyGithubGateway

REFRESH_BEFORE = timedelta(minutes=5)  # mint a new token this long before the old one expires


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
