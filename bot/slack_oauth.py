"""Many-workspaces mode: Slack's OAuth flow with the installations and states in Phasegate's own database.

`DbInstallationStore` and `DbOAuthStateStore` implement slack_sdk's AsyncInstallationStore / AsyncOAuthStateStore
over our SQLAlchemy async session (tables from 0018_slack_installations), so Bolt's OAuth flow
(`/slack/install` → `/slack/oauth_redirect`, oauth.v2.access on SLACK_API_URL) and its authorization of every
request read and write them; `CachedAuthorize` is Bolt's own authorize with its auth.test cache on, so a workspace's
token costs one auth.test per process, not one per request. `WorkspaceTokens` gives the outbox and SlackMessenger the bot token of one workspace,
refreshing a rotating token before it expires. `Installations.uninstalled` is what app_uninstalled and
tokens_revoked do: delete the tokens, stop the workspace's reminders, outgoing messages and GitHub sync.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_sdk.errors import SlackTokenRotationError
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.clock import Clock
from bot.config import ConfigError
from bot.db.models import Meeting, OutboxMessage, Project, SlackInstallation, SlackOAuthState, Workspace
from bot.db.session import Database
from bot.token_cipher import TokenCipher

log = logging.getLogger(__name__)

# The bot scopes Phasegate asks for (the manifest's oauth_config.scopes.bot and the /slack/install request).
BOT_SCOPES = (
    "commands",
    "chat:write",
    "chat:write.public",
    "im:write",
    "users:read",
    "files:write",
    "app_mentions:read",
    "channels:read",
)
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
STATE_TTL = timedelta(minutes=10)  # an "Add to Slack" click must come back within this
ROTATE_BEFORE = timedelta(minutes=10)  # refresh a rotating bot token this long before it expires
PURGE_CHUNK = 200  # job ids per DELETE when purging a workspace's scheduler rows
UNINSTALLED = "uninstalled"  # Project.sync_paused_reason while the workspace has no installation


def _epoch(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(value), tz=UTC)


def _row_to_installation(row: SlackInstallation, cipher: TokenCipher) -> Installation:
    return Installation(
        app_id=row.app_id or None,
        enterprise_id=row.enterprise_id or None,
        team_id=row.team_id or None,
        team_name=row.team_name or None,
        bot_token=cipher.open(row.bot_token),
        bot_id=row.bot_id or None,
        bot_user_id=row.bot_user_id or None,
        bot_scopes=row.bot_scopes,
        bot_refresh_token=cipher.open(row.bot_refresh_token) if row.bot_refresh_token else None,
        bot_token_expires_at=_epoch(row.bot_token_expires_at),
        user_id=row.installer_user_id,
        is_enterprise_install=row.is_enterprise_install,
        token_type=row.token_type or None,
        installed_at=row.installed_at.timestamp(),
    )


def _row_to_bot(row: SlackInstallation, cipher: TokenCipher) -> Bot:
    return Bot(
        app_id=row.app_id or None,
        enterprise_id=row.enterprise_id or None,
        team_id=row.team_id or None,
        team_name=row.team_name or None,
        bot_token=cipher.open(row.bot_token),
        bot_id=row.bot_id,
        bot_user_id=row.bot_user_id,
        bot_scopes=row.bot_scopes,
        bot_refresh_token=cipher.open(row.bot_refresh_token) if row.bot_refresh_token else None,
        bot_token_expires_at=_epoch(row.bot_token_expires_at),
        is_enterprise_install=row.is_enterprise_install,
        installed_at=row.installed_at.timestamp(),
    )


class DbInstallationStore(AsyncInstallationStore):
    """Bot installations, one row per workspace (an install or a token refresh replaces it). User tokens are
    not kept: Phasegate only acts as its bot. With a `cipher` that seals (PHASEGATE_SECRET_KEY), the bot and
    refresh tokens are stored encrypted."""

    def __init__(self, db: Database, clock: Clock, cipher: TokenCipher | None = None) -> None:
        self.db, self.clock = db, clock
        self.cipher = cipher or TokenCipher()
        self._logger = log
        self.listeners: list[Callable[[str], None]] = []  # told the team id whenever its tokens change or go

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    def changed(self, team_id: str) -> None:
        """A workspace's tokens were saved (install, refresh) or deleted (uninstall): tell the caches."""
        for listener in self.listeners:
            listener(team_id)

    async def async_save(self, installation: Installation) -> None:
        if not installation.bot_token:
            return  # a user-only install: nothing the bot can use
        await self._save(
            enterprise_id=installation.enterprise_id or "",
            team_id=installation.team_id or "",
            team_name=installation.team_name or "",
            app_id=installation.app_id or "",
            is_enterprise_install=bool(installation.is_enterprise_install),
            installer_user_id=installation.user_id or "",
            bot_id=installation.bot_id or "",
            bot_user_id=installation.bot_user_id or "",
            bot_token=installation.bot_token,
            bot_scopes=",".join(installation.bot_scopes or []),
            bot_refresh_token=installation.bot_refresh_token,
            bot_token_expires_at=_aware(installation.bot_token_expires_at),
            token_type=installation.token_type or "bot",
        )

    async def async_save_bot(self, bot: Bot) -> None:
        await self._save(
            enterprise_id=bot.enterprise_id or "",
            team_id=bot.team_id or "",
            team_name=bot.team_name or "",
            app_id=bot.app_id or "",
            is_enterprise_install=bool(bot.is_enterprise_install),
            bot_id=bot.bot_id or "",
            bot_user_id=bot.bot_user_id or "",
            bot_token=bot.bot_token or "",
            bot_scopes=",".join(bot.bot_scopes or []),
            bot_refresh_token=bot.bot_refresh_token,
            bot_token_expires_at=_aware(bot.bot_token_expires_at),
        )

    async def _save(self, *, enterprise_id: str, team_id: str, **fields: Any) -> None:
        now = self.clock.now()
        fields["bot_token"] = self.cipher.seal(fields["bot_token"])
        if fields.get("bot_refresh_token"):
            fields["bot_refresh_token"] = self.cipher.seal(fields["bot_refresh_token"])
        async with self.db.session() as s:
            row = (
                await s.execute(
                    select(SlackInstallation).where(
                        SlackInstallation.enterprise_id == enterprise_id, SlackInstallation.team_id == team_id
                    )
                )
            ).scalar_one_or_none()
            reinstall = row is None or "installer_user_id" in fields
            if row is None:
                row = SlackInstallation(enterprise_id=enterprise_id, team_id=team_id, bot_token="")
            for name, value in fields.items():
                setattr(row, name, value)
            if reinstall:
                row.installed_at = now
            s.add(row)
            if team_id and "installer_user_id" in fields:  # an install (not a refresh): the workspace is back
                ws = await s.get(Workspace, team_id)
                if ws is None:
                    s.add(Workspace(team_id=team_id, name=str(fields.get("team_name") or ""), created_at=now))
                elif ws.uninstalled_at is not None:
                    ws.uninstalled_at = None
                    s.add(ws)
                    await s.execute(
                        update(Project)
                        .where(col(Project.team_id) == team_id, col(Project.sync_paused_reason) == UNINSTALLED)
                        .values(sync_paused_reason=None, sync_paused_at=None)
                    )
        self.changed(team_id)

    async def _row(self, enterprise_id: str | None, team_id: str | None) -> SlackInstallation | None:
        async with self.db.session() as s:
            return (
                await s.execute(
                    select(SlackInstallation).where(
                        SlackInstallation.enterprise_id == (enterprise_id or ""),
                        SlackInstallation.team_id == (team_id or ""),
                    )
                )
            ).scalar_one_or_none()

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        row = await self._row(enterprise_id, None if is_enterprise_install else team_id)
        try:
            return _row_to_bot(row, self.cipher) if row is not None else None
        except ConfigError as exc:  # Bolt would only log it at INFO and answer nothing
            log.error("workspace %s: %s", team_id, exc)
            raise

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        row = await self._row(enterprise_id, None if is_enterprise_install else team_id)
        if row is None or (user_id is not None and user_id != row.installer_user_id):
            return None  # no user tokens are kept: only the installer's installation exists
        return _row_to_installation(row, self.cipher)

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        if user_id is None:
            await self.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        async with self.db.session() as s:
            await s.execute(
                delete(SlackInstallation).where(
                    col(SlackInstallation.enterprise_id) == (enterprise_id or ""),
                    col(SlackInstallation.team_id) == (team_id or ""),
                )
            )
        self.changed(team_id or "")


class CachedAuthorize(AsyncInstallationStoreAuthorize):
    """Bolt's authorize for an installation store (what App(oauth_settings=...) builds), with Bolt's own
    auth.test cache enabled (`cache_enabled=True`, keyed by bot token). The store is still read on every request,
    so a deleted (uninstalled, revoked) installation is never authorized from the cache; `forget` drops a
    workspace's entries when the store says its tokens changed, so a refreshed token's old entry goes too."""

    def __init__(self, store: DbInstallationStore, *, client_id: str, client_secret: str, client: AsyncWebClient):
        super().__init__(
            logger=log,
            installation_store=store,
            client_id=client_id,
            client_secret=client_secret,
            token_rotation_expiration_minutes=int(ROTATE_BEFORE.total_seconds() // 60),
            bot_only=True,
            cache_enabled=True,
            client=client,
        )
        store.listeners.append(self.forget)

    def forget(self, team_id: str) -> None:
        for token, result in list(self.authorize_result_cache.items()):
            if result.team_id == team_id:
                del self.authorize_result_cache[token]


class DbOAuthStateStore(AsyncOAuthStateStore):
    """OAuth states in the database, so any replica can finish an install another one started. A state is
    consumed by deleting it: the first redirect with it wins, a reused, expired or unknown one is refused."""

    def __init__(self, db: Database, clock: Clock, *, ttl: timedelta = STATE_TTL) -> None:
        self.db, self.clock, self.ttl = db, clock, ttl
        self.expiration_seconds = int(ttl.total_seconds())  # Bolt sets the state cookie's Max-Age from this

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(32)
        now = self.clock.now()
        async with self.db.session() as s:
            await s.execute(delete(SlackOAuthState).where(col(SlackOAuthState.expires_at) < now))
            s.add(SlackOAuthState(state=state, expires_at=now + self.ttl))
        return state

    async def async_consume(self, state: str) -> bool:
        if not state or len(state) > 64:
            return False
        async with self.db.session() as s:
            result = await s.execute(
                delete(SlackOAuthState).where(
                    col(SlackOAuthState.state) == state, col(SlackOAuthState.expires_at) >= self.clock.now()
                )
            )
            return bool(getattr(result, "rowcount", 0) == 1)


class WorkspaceTokens:
    """The bot token of each workspace for the Web API calls Phasegate starts itself (the outbox, profile
    lookups, Home tabs). A rotating token is refreshed (oauth.v2.access, grant_type=refresh_token) when it is
    within ROTATE_BEFORE of expiring, and the new one saved."""

    def __init__(
        self,
        store: DbInstallationStore,
        clock: Clock,
        *,
        client_id: str,
        client_secret: str,
        client: AsyncWebClient,
    ) -> None:
        self.store, self.clock = store, clock
        self.rotator = AsyncTokenRotator(client_id=client_id, client_secret=client_secret, client=client)

    async def token(self, team_id: str) -> str | None:
        """The workspace's bot token, or None when it has no installation (never installed, or uninstalled)."""
        bot = await self.store.async_find_bot(enterprise_id=None, team_id=team_id)
        if bot is None:
            return None
        if bot.bot_refresh_token and bot.bot_token_expires_at is not None:
            try:
                refreshed = await self.rotator.perform_bot_token_rotation(
                    bot=bot, minutes_before_expiration=int(ROTATE_BEFORE.total_seconds() // 60)
                )
            except SlackTokenRotationError:
                # Most likely another replica refreshed it a moment ago (its refresh token is spent): use what
                # that one saved. Refreshes start ROTATE_BEFORE early, so the old token still works meanwhile.
                log.warning("refreshing the bot token of %s failed; using the stored one", team_id, exc_info=True)
                again = await self.store.async_find_bot(enterprise_id=None, team_id=team_id)
                return again.bot_token if again is not None else None
            if refreshed is not None:
                await self.store.async_save_bot(refreshed)
                bot = refreshed
        return bot.bot_token


class Installations:
    """What an uninstall does, and what `phasegate purge` deletes."""

    def __init__(self, db: Database, clock: Clock, store: DbInstallationStore | None = None) -> None:
        self.db, self.clock = db, clock
        self.store = store or DbInstallationStore(db, clock)

    async def uninstalled(self, team_id: str, *, enterprise_id: str | None = None) -> None:
        """app_uninstalled, or the bot token revoked: delete the workspace's tokens; its reminders and GitHub
        sync stop (projects paused as uninstalled) and its queued Slack messages are dropped. Its data is kept
        until `phasegate purge` runs after the retention period."""
        now = self.clock.now()
        async with self.db.session() as s:  # one transaction: tokens gone and the workspace stopped together
            await s.execute(
                delete(SlackInstallation).where(
                    col(SlackInstallation.enterprise_id) == (enterprise_id or ""),
                    col(SlackInstallation.team_id) == team_id,
                )
            )
            ws = await s.get(Workspace, team_id)
            if ws is None:
                self.store.changed(team_id)
                return
            if ws.uninstalled_at is None:
                ws.uninstalled_at = now
                s.add(ws)
            await s.execute(
                update(Project)
                .where(col(Project.team_id) == team_id, col(Project.sync_paused_reason).is_(None))
                .values(sync_paused_reason=UNINSTALLED, sync_paused_at=now)
            )
            await s.execute(
                update(OutboxMessage)
                .where(col(OutboxMessage.team_id) == team_id, col(OutboxMessage.status) == "pending")
                .values(status="dropped", last_error="app_uninstalled", done_at=now)
            )
        self.store.changed(team_id)
        log.info("workspace %s uninstalled Phasegate: tokens deleted, reminders and sync stopped", team_id)

    async def is_uninstalled(self, team_id: str) -> bool:
        async with self.db.session() as s:
            ws = await s.get(Workspace, team_id)
            return ws is not None and ws.uninstalled_at is not None


async def purge(db: Database, clock: Clock, *, retention: timedelta, dry_run: bool = False) -> list[str]:
    """Delete every row of the workspaces that uninstalled Phasegate more than `retention` ago (all tables with
    a team_id, and rows that only point at their projects); returns their team ids. Nothing else is touched."""
    from sqlalchemy import Table
    from sqlmodel import SQLModel

    cutoff = clock.now() - retention
    async with db.session() as s:
        teams = list(
            (
                await s.execute(
                    select(Workspace.team_id).where(
                        col(Workspace.uninstalled_at).is_not(None), col(Workspace.uninstalled_at) <= cutoff
                    )
                )
            ).scalars()
        )
        if not teams or dry_run:
            return teams
        projects = select(Project.id).where(col(Project.team_id).in_(teams))
        meetings = select(Meeting.id).where(col(Meeting.team_id).in_(teams))
        await _purge_jobs(s, list((await s.execute(meetings)).scalars()), list((await s.execute(projects)).scalars()))
        for table in reversed(SQLModel.metadata.sorted_tables):
            assert isinstance(table, Table)
            if "team_id" in table.c:
                await s.execute(table.delete().where(table.c.team_id.in_(teams)))
                continue
            for fk in table.foreign_keys:
                if fk.target_fullname == "projects.id":
                    await s.execute(table.delete().where(fk.parent.in_(projects)))
    log.info("purged %d uninstalled workspace(s): %s", len(teams), ", ".join(teams))
    return teams


async def _purge_jobs(s: AsyncSession, meeting_ids: list[int], project_ids: list[int]) -> None:
    """The scheduler's rows for purged meetings (reminders, `meeting:<id>:<step>`) and projects (weekly digests,
    `digest:<id>`), so none is left in the job store for data that is gone."""
    from sqlalchemy import Column, MetaData, Table, Unicode, inspect, or_

    from bot.scheduler import JOBS_TABLE, digest_job_id, job_id

    conn = await s.connection()
    if not await conn.run_sync(lambda sync: inspect(sync).has_table(JOBS_TABLE)):
        return  # no server has started its scheduler on this database yet
    jobs = Table(JOBS_TABLE, MetaData(), Column("id", Unicode(191), primary_key=True))
    digests = [digest_job_id(p) for p in project_ids]
    prefixes = [job_id(m, "") for m in meeting_ids]  # "meeting:<id>:" — every step of that meeting
    for i in range(0, max(len(digests), len(prefixes)), PURGE_CHUNK):
        some = [jobs.c.id.like(f"{prefix}%") for prefix in prefixes[i : i + PURGE_CHUNK]]
        if digests[i : i + PURGE_CHUNK]:
            some.append(jobs.c.id.in_(digests[i : i + PURGE_CHUNK]))
        if some:
            await s.execute(jobs.delete().where(or_(*some)))
