"""Composition root: create_app(settings) builds services, gateways, scheduler and the Bolt AsyncApp."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.db.session import Database
from bot.messaging import Messenger
from bot.services import Services
from bot.slack_client import SlackMessenger, make_client
from handlers import actions, commands, events, home, views

log = logging.getLogger(__name__)

Route = tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]


@dataclass
class PhasegateApp:
    """Everything one running bot owns; `start_background()`/`close()` bracket its life."""

    settings: Settings
    db: Database
    services: Services
    bolt: AsyncApp
    extra_routes: list[Route] = field(default_factory=list)
    background: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def slack_events(self, request: web.Request) -> web.Response:
        bolt_response = await self.bolt.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def healthz(self, request: web.Request) -> web.Response:
        if await self.db.ping():
            return web.json_response({"ok": True, "database": "up"})
        return web.json_response({"ok": False, "database": "down"}, status=503)

    def web_app(self, *, slack: bool = True) -> web.Application:
        """The HTTP surface: /slack/events (HTTP mode only), /healthz, and GitHub's webhook when configured."""
        app = web.Application(client_max_size=1024 * 1024)
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
                await stop()
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
    """Build the bot from settings. Tests pass a fake clock; the shell passes its own messenger."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else "xoxb-not-configured"
    client = make_client(token, settings.slack_api_url)
    database = db or Database(settings.database_url)
    services = Services.build(database, clock or SystemClock(), messenger or SlackMessenger(client))
    services.preview_mode = not settings.github_configured
    bolt = AsyncApp(
        client=client,
        signing_secret=settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else "",
        # Socket Mode requests are not signed; HTTP ones always are (Bolt answers 401 otherwise).
        request_verification_enabled=settings.slack_app_token is None,
        raise_error_for_unhandled_request=False,
    )
    command = settings.phasegate_slash_command
    for module in (commands, actions, views, events, home):
        module.register(bolt, services, command=command)
    return PhasegateApp(settings=settings, db=database, services=services, bolt=bolt)


async def serve_http(app: PhasegateApp, *, host: str, port: int, slack: bool = True) -> web.AppRunner:
    """Start the HTTP server (returns the runner; the caller waits and cleans up)."""
    runner = web.AppRunner(app.web_app(slack=slack), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    await app.start_background()
    log.info("Phasegate listening on http://%s:%s (/slack/events, /healthz)", host, port)
    return runner


async def run_forever(app: PhasegateApp, mode: str) -> None:
    """Serve in HTTP or Socket Mode until interrupted."""
    settings = app.settings
    stop = asyncio.Event()
    if mode == "socket":
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        assert settings.slack_app_token is not None
        handler = AsyncSocketModeHandler(app.bolt, settings.slack_app_token.get_secret_value())
        # The health endpoint still answers locally (for Docker's healthcheck).
        runner = await serve_http(app, host=settings.phasegate_host, port=settings.phasegate_port, slack=False)
        await handler.connect_async()  # type: ignore[no-untyped-call]
        log.info("Phasegate connected over Socket Mode")
        try:
            await stop.wait()
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]
            await runner.cleanup()
            await app.close()
        return
    runner = await serve_http(app, host=settings.phasegate_host, port=settings.phasegate_port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await app.close()
