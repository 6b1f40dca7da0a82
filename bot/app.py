"""Composition root: create_app(settings) builds services, gateways, scheduler and the Bolt AsyncApp."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.signature import SignatureVerifier

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.db.session import Database
from bot.leader import Leadership
from bot.messaging import Messenger
from bot.outbox import OutboxSender
from bot.scheduler import ReminderScheduler
from bot.services import Actor, Services
from bot.slack_client import SharedSession, SlackMessenger, make_client
from bot.slack_oauth import (
    BOT_SCOPES,
    INSTALL_PATH,
    REDIRECT_PATH,
    ROTATE_BEFORE,
    CachedAuthorize,
    DbInstallationStore,
    DbOAuthStateStore,
    Installations,
    WorkspaceTokens,
)
from bot.sync.service import SyncService
from bot.sync.worker import SyncWorker
from bot.token_cipher import TokenCipher
from handlers import actions, commands, events, home, views, workspaces
from handlers.common import is_slash_command
from handlers.oversized import MAX_BODY, oversized, refuse_oversized

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    from bot.services.github_connect import GitHubConnectService

log = logging.getLogger(__name__)

Route = tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]


HEALTH_TIMEOUT = 2.0  # seconds; well inside Docker's healthcheck timeout (5 s)
POLL_INTERVAL = 300.0  # seconds between GitHub polls when no webhook secret (so no public URL) is set
SAFETY_POLL_INTERVAL = 1800.0  # with webhooks: a conditional poll every 30 min catches what no webhook told us
# A shutdown step that takes longer is left behind (and logged), so a stop never hangs: the sync worker's own
# grace is 10 s and the leader lock's session closes within its 10-s timeout.
SHUTDOWN_STEP_TIMEOUT = 30.0


@dataclass
class Core:
    """The services with their scheduler and GitHub sync: shared by the Slack app, the shell and the demo."""

    services: Services
    scheduler: ReminderScheduler
    sync: SyncService


def build_core(
    settings: Settings, *, db: Database, clock: Clock, messenger: Messenger, sync_clock: Clock | None = None
) -> Core:
    """Services, the reminder scheduler (bound for its jobs) and the GitHub sync service (preview without creds)."""
    services = Services.build(db, clock, messenger)
    sync = SyncService.from_settings(db, sync_clock or clock, messenger, settings)
    services.sync = sync
    services.github_connect = connect = github_connect(settings, db=db, clock=clock, gateway=sync.gateway)
    if connect is not None:  # a project names only repositories an installation linked to its workspace covers

        async def repo_check(actor: Actor, repo: str) -> str | None:
            return (await connect.installation_for_project(actor, repo))[1]

        services.projects.repo_check = repo_check
    services.projects.allowed_repos = sync.allowed_repos
    sync.outbox = services.outbox
    services.preview_mode = sync.preview_mode
    # Every process plans jobs; only the leader runs them (see Leadership), so the scheduler starts paused.
    scheduler = ReminderScheduler(database_url=settings.database_url, clock=clock, realtime=False)
    scheduler.bind(services)
    return Core(services, scheduler, sync)


def github_connect(settings: Settings, *, db: Database, clock: Clock, gateway: object) -> GitHubConnectService | None:
    """With a GitHub App of many installations: the `github connect` service, its links signed with
    GITHUB_APP_STATE_SECRET (bound to the workspace and the person, single use, expiring)."""
    secret = settings.github_app_state_secret
    if secret is None or not settings.github_app_many_installations:
        return None  # (PyGithub, which the service builds on, is then never imported)
    from bot.github.installations import InstallationRoutingGateway
    from bot.github.setup_state import SetupStateSigner
    from bot.services.github_connect import GitHubConnectService

    if not isinstance(gateway, InstallationRoutingGateway):
        return None
    signer = SetupStateSigner(secret.get_secret_value().encode(), clock)
    return GitHubConnectService(db, clock, gateway.app, signer)


@dataclass
class PhasegateApp:
    """Everything one running bot owns; `start_background()`/`close()` bracket its life."""

    settings: Settings
    db: Database
    core: Core
    bolt: AsyncApp
    extra_routes: list[Route] = field(default_factory=list)
    background: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    leadership: Leadership | None = None
    authorize: CachedAuthorize | None = None  # many workspaces: Bolt's authorize, its auth.test cache included
    draining: bool = False  # set on SIGTERM/SIGINT: new requests are answered 503

    @property
    def services(self) -> Services:
        return self.core.services

    async def slack_events(self, request: web.Request) -> web.Response:
        if self.draining:
            return web.json_response({"error": "shutting down"}, status=503)
        if oversized(request):  # a huge slash command: "too long" without Bolt parsing megabytes of form
            secret = self.settings.slack_signing_secret
            refused = await refuse_oversized(
                request,
                signing_secret=secret.get_secret_value() if secret else None,
                first_time=lambda signature: self.services.deliveries.first_signature(signature=signature),
                command=self.settings.phasegate_slash_command,
            )
            if refused is not None:
                return refused
        bolt_request = await to_bolt_request(request)
        if await self._replayed(request, bolt_request.raw_body):
            return web.Response(status=200)  # accepted once already: nothing is done twice
        bolt_response = await self.bolt.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def slack_oauth(self, request: web.Request) -> web.StreamResponse:
        """GET /slack/install (the "Add to Slack" page, setting the state cookie) and /slack/oauth_redirect
        (state and cookie checked, oauth.v2.access, the installation saved): Bolt's OAuth flow."""
        if self.draining:
            return web.json_response({"error": "shutting down"}, status=503)
        flow = self.bolt.oauth_flow
        if flow is None:
            return web.Response(status=404)
        bolt_request = await to_bolt_request(request)
        if request.path == flow.install_path:
            bolt_response = await flow.handle_installation(bolt_request)
        else:
            bolt_response = await flow.handle_callback(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def github_setup(self, request: web.Request) -> web.Response:
        """GET /github/setup: GitHub's redirect after someone installed the App from a `github connect` link."""
        connect = self.services.github_connect
        if self.draining or connect is None:
            return web.Response(status=503 if self.draining else 404)
        q = request.query
        result = await connect.setup(q.get("installation_id", ""), q.get("setup_action", ""), q.get("state", ""))
        title = "Phasegate is connected to GitHub" if result.ok else "Phasegate could not connect GitHub"
        page = (
            f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
            f"<body><h1>{html.escape(title)}</h1><p>{html.escape(result.message)}</p></body></html>"
        )
        return web.Response(text=page, content_type="text/html", status=200 if result.ok else 400)

    async def _replayed(self, request: web.Request, body: str) -> bool:
        """A validly signed slash command or interaction whose signature was already accepted (a replay).

        Events API deliveries (JSON) are left to their event-id dedupe, so Slack's retries stay answered once.
        Slash commands are left to their listener, which records the signature right after the ack (so the ack
        never waits for the database) and runs nothing for a replay.
        Unsigned or badly signed requests are left to Bolt, which answers 401.
        """
        signature = request.headers.get("X-Slack-Signature", "")
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        secret = self.settings.slack_signing_secret
        if not signature or not timestamp or secret is None or body.lstrip().startswith("{"):
            return False
        if is_slash_command(body):  # checked after the ack, before the command runs (handlers/commands.py)
            return False
        if not SignatureVerifier(secret.get_secret_value()).is_valid(body, timestamp, signature):
            return False
        return not await self.services.deliveries.first_signature(signature=signature)

    async def healthz(self, request: web.Request) -> web.Response:
        """200 when the database answers; 503 with `database: busy` (all pooled connections in use: requests wait)
        or `database: down` otherwise, within ~2 s: the check has its own connection, not one from the pool."""
        leader = bool(self.leadership and self.leadership.is_leader)
        if self.draining:
            return web.json_response({"ok": False, "shutting_down": True, "leader": leader}, status=503)
        health = await self.db.health(within=HEALTH_TIMEOUT)
        return web.json_response(
            {"ok": health == "up", "database": health, "leader": leader}, status=200 if health == "up" else 503
        )

    def web_app(self, *, slack: bool = True) -> web.Application:
        """The HTTP surface: /slack/events (HTTP mode only), /healthz, and GitHub's webhook when configured."""
        app = web.Application(client_max_size=MAX_BODY)  # bodies over EARLY_LIMIT never reach Bolt's parser
        if slack:
            app.router.add_post("/slack/events", self.slack_events)
        app.router.add_get("/healthz", self.healthz)
        for method, path, handler in self.extra_routes:
            app.router.add_route(method, path, handler)
        return app

    async def start_background(self) -> None:
        for start in self.background:
            await start()

    async def close(self) -> None:
        for stop in reversed(self.shutdown):
            try:
                async with asyncio.timeout(SHUTDOWN_STEP_TIMEOUT):
                    await stop()
            except TimeoutError:
                log.error("shutdown step %s took over %.0f s: left behind", stop.__qualname__, SHUTDOWN_STEP_TIMEOUT)
            except Exception:
                log.exception("error while shutting down")
        await self.db.dispose()


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    messenger: Messenger | None = None,
    db: Database | None = None,
) -> PhasegateApp:
    """Build the bot from settings. Tests pass a fake clock and may pass their own messenger.

    With SLACK_CLIENT_ID + SLACK_CLIENT_SECRET (no SLACK_BOT_TOKEN) it serves many workspaces: Bolt's OAuth flow
    on /slack/install and /slack/oauth_redirect, installations and states in the database, every Web API call
    made with the token of the workspace it is for."""
    clock = clock or SystemClock()
    many = settings.slack_many_workspaces
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else "xoxb-not-configured"
    client = make_client(None if many else token, settings.slack_api_url)
    # The outbox sender retries by itself (Retry-After included), so its client does not wait out 429s inline.
    strict_client = make_client(
        None if many else token, settings.slack_api_url, rate_limit_retries=0, connection_retries=0
    )
    database = db or Database(settings.database_url)
    signing_secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    oauth: AsyncOAuthSettings | None = None
    store: DbInstallationStore | None = None
    tokens: WorkspaceTokens | None = None
    authorize: CachedAuthorize | None = None
    if many:
        assert settings.slack_client_id is not None and settings.slack_client_secret is not None
        secret = settings.slack_client_secret.get_secret_value()
        key = settings.secret_key.get_secret_value() if settings.secret_key else None
        store = DbInstallationStore(database, clock, TokenCipher(key))
        states = DbOAuthStateStore(database, clock)
        tokens = WorkspaceTokens(store, clock, client_id=settings.slack_client_id, client_secret=secret, client=client)
        oauth = AsyncOAuthSettings(
            client_id=settings.slack_client_id,
            client_secret=secret,
            scopes=list(BOT_SCOPES),
            install_path=INSTALL_PATH,
            redirect_uri_path=REDIRECT_PATH,
            installation_store=store,
            installation_store_bot_only=True,
            state_store=states,
            state_expiration_seconds=states.expiration_seconds,
            token_rotation_expiration_minutes=int(ROTATE_BEFORE.total_seconds() // 60),
        )
        # Bolt's authorize for these settings, with its auth.test cache on (given to AsyncApp(authorize=...)).
        authorize = CachedAuthorize(store, client_id=settings.slack_client_id, client_secret=secret, client=client)
    slack = SlackMessenger(client, strict_client=strict_client, tokens=tokens)
    core = build_core(settings, db=database, clock=clock, messenger=messenger or slack)
    services = core.services
    if store is not None:  # an install, uninstall or revoke: the workspace's people are looked up afresh
        store.listeners.append(services.known_people.forget_team)
    assert services.outbox is not None
    services.outbox.inline = False  # delivered by the leader's sender, woken on every commit
    sender = OutboxSender(services.outbox)
    bolt = AsyncApp(
        client=client,
        signing_secret=signing_secret,
        # HTTP requests must be signed (Bolt answers 401 otherwise), even when an app token is also set;
        # Bolt itself skips the check for Socket Mode requests, which are not signed.
        request_verification_enabled=True,
        raise_error_for_unhandled_request=False,
        oauth_settings=oauth,
        installation_store=store,
        authorize=authorize,  # type: ignore[arg-type]  # an AsyncAuthorize: Bolt's isinstance branch keeps it
    )
    command = settings.phasegate_slash_command
    services.use(command=command)
    installations = Installations(database, clock, store) if many else None
    workspaces.register(bolt, installations, command=command)
    for module in (commands, actions, views, events, home):
        module.register(bolt, services, command=command)
    app = PhasegateApp(settings=settings, db=database, core=core, bolt=bolt, authorize=authorize)
    if services.github_connect is not None:
        app.extra_routes.append(("GET", "/github/setup", app.github_setup))
    if many:
        app.extra_routes.append(("GET", INSTALL_PATH, app.slack_oauth))
        app.extra_routes.append(("GET", REDIRECT_PATH, app.slack_oauth))
    if settings.github_webhook_secret is not None:
        from bot.sync.inbound import make_webhook_handler

        handler = make_webhook_handler(
            core.sync, secret=settings.github_webhook_secret.get_secret_value(), accepting=lambda: not app.draining
        )
        app.extra_routes.append(("POST", "/github/webhook", handler))
    # Deliveries stored by another replica wake no one here: the leader looks every few seconds.
    worker = SyncWorker(
        core.sync, interval=5.0, poll_interval=SAFETY_POLL_INTERVAL if settings.github_webhook_secret else POLL_INTERVAL
    )

    async def elected() -> None:
        core.scheduler.resume()
        await worker.start()
        await sender.start()

    async def deposed() -> None:
        core.scheduler.pause()
        await worker.stop()
        await sender.stop()

    leadership = Leadership(settings.database_url, on_elected=elected, on_deposed=deposed)
    app.leadership = leadership

    async def start() -> None:
        core.scheduler.start()
        await leadership.start()

    async def stop() -> None:
        await leadership.stop()
        await sender.stop()
        if core.scheduler.running:
            core.scheduler.shutdown()
        await core.sync.aclose()

    session = SharedSession(client, strict_client)
    app.background.extend((session.open, start))
    app.shutdown.extend((session.close, stop))  # run in reverse: the sender stops before the session closes
    return app


async def serve_http(
    app: PhasegateApp, *, host: str, port: int, slack: bool = True, reuse_port: bool = False
) -> web.AppRunner:
    """Start the HTTP server (returns the runner; the caller waits and cleans up). `reuse_port`: SO_REUSEPORT,
    so several processes listen on one port (`phasegate serve --workers N`)."""
    runner = web.AppRunner(app.web_app(slack=slack), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
    await site.start()
    await app.start_background()
    log.info("Phasegate listening on http://%s:%s (/slack/events, /healthz)", host, port)
    return runner


async def serve_socket_mode(app: PhasegateApp, *, host: str, port: int) -> tuple[web.AppRunner, AsyncSocketModeHandler]:
    """Socket Mode: serve /healthz locally (for Docker's healthcheck; no /slack/events), then connect Bolt's
    aiohttp AsyncSocketModeHandler (apps.connections.open with SLACK_APP_TOKEN on SLACK_API_URL, then the
    WebSocket). Returns the runner and the handler; the caller closes the handler, then cleans up the runner."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    assert app.settings.slack_app_token is not None
    handler = AsyncSocketModeHandler(app.bolt, app.settings.slack_app_token.get_secret_value())
    runner = await serve_http(app, host=host, port=port, slack=False)
    await handler.connect_async()  # type: ignore[no-untyped-call]
    log.info("Phasegate connected over Socket Mode")
    return runner, handler


async def run_forever(app: PhasegateApp, mode: str, *, reuse_port: bool = False) -> None:
    """Serve in HTTP or Socket Mode until SIGTERM or SIGINT, then shut down gracefully: answer new requests 503,
    let requests under way finish, let the worker finish its pass, release the leader lock, log, return."""
    import signal

    settings = app.settings
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    handler: AsyncSocketModeHandler | None = None
    if mode == "socket":
        runner, handler = await serve_socket_mode(app, host=settings.phasegate_host, port=settings.phasegate_port)
    else:
        runner = await serve_http(
            app, host=settings.phasegate_host, port=settings.phasegate_port, reuse_port=reuse_port
        )
    try:
        await stop.wait()
        log.info("Phasegate shutting down: no new requests; finishing the work under way")
        app.draining = True
    finally:
        if handler is not None:
            await handler.close_async()  # type: ignore[no-untyped-call]
        await runner.cleanup()  # stops listening, waits for requests in flight
        await app.close()  # the worker finishes its pass; the leader lock is released
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    log.info("Phasegate stopped cleanly")
