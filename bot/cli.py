"""The `phasegate` command line; the only place that reads Settings from the environment."""

from __future__ import annotations

import logging
import sys

import typer

from bot.config import ConfigError, Settings, load_settings

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="Phasegate: ML design rituals in Slack, in step with GitHub."
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema (Alembic migrations).")
app.add_typer(db_app, name="db")


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def _logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def _upgrade(settings: Settings) -> None:
    from bot.db.migrate import upgrade

    try:
        upgrade(settings.database_url)
    except Exception as exc:  # a database that does not answer is a configuration problem for the user
        typer.echo(f"Could not apply migrations to DATABASE_URL ({exc.__class__.__name__}: {exc}).", err=True)
        typer.echo("Check DATABASE_URL and that the database server is running.", err=True)
        raise typer.Exit(2) from None


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    settings = _settings()
    from bot.db.migrate import upgrade

    upgrade(settings.database_url, revision)
    typer.echo(f"Database at revision {revision}.")


def _serve(settings: Settings, mode: str) -> None:
    import asyncio

    from bot.app import create_app, run_forever

    if settings.slack_bot_token is None:
        typer.echo("SLACK_BOT_TOKEN is not set: Slack modes need the bot token (xoxb-…).", err=True)
        raise typer.Exit(2)
    if mode == "socket" and settings.slack_app_token is None:
        typer.echo("Socket Mode needs SLACK_APP_TOKEN (an app-level xapp-… token with connections:write).", err=True)
        raise typer.Exit(2)
    if mode == "http" and settings.slack_signing_secret is None:
        typer.echo("HTTP mode needs SLACK_SIGNING_SECRET (Basic Information → App Credentials).", err=True)
        raise typer.Exit(2)
    try:
        asyncio.run(run_forever(create_app(settings), mode))
    except KeyboardInterrupt:
        typer.echo("Stopped.")


@app.command()
def serve(
    mode: str = typer.Option("http", "--mode", help="http (public URL, signed requests) or socket (Socket Mode)"),
    migrate: bool = typer.Option(True, help="Apply migrations before starting"),
) -> None:
    """Serve Slack over HTTP (/slack/events, /healthz) or Socket Mode."""
    if mode not in ("http", "socket"):
        typer.echo("--mode must be http or socket.", err=True)
        raise typer.Exit(2)
    settings = _settings()
    _logging(settings)
    if migrate:
        _upgrade(settings)
    _serve(settings, mode)


@app.command()
def run() -> None:
    """Apply migrations and start: Socket Mode with an app token, HTTP with a signing secret, else the local shell."""
    settings = _settings()
    _logging(settings)
    _upgrade(settings)
    if settings.slack_bot_token is not None and settings.slack_app_token is not None:
        _serve(settings, "socket")
    elif settings.slack_bot_token is not None and settings.slack_signing_secret is not None:
        _serve(settings, "http")
    elif settings.slack_bot_token is not None:
        typer.echo(
            "SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET "
            "(HTTP mode) is: set one of them.",
            err=True,
        )
        raise typer.Exit(2)
    else:
        typer.echo(
            "No SLACK_BOT_TOKEN is set, so Phasegate would start its local shell here — the shell is not "
            "built yet (it comes with the local-shell issue). Set SLACK_BOT_TOKEN with SLACK_SIGNING_SECRET "
            "(or SLACK_APP_TOKEN for Socket Mode) to run against Slack."
        )


@app.command()
def manifest(
    socket: bool = typer.Option(False, "--socket", help="Socket Mode (no public URL)"),
    url: str = typer.Option("", "--url", help="Public base URL for HTTP mode, e.g. https://phasegate.example.com"),
) -> None:
    """Print the Slack app manifest (v1) to paste at api.slack.com/apps → Create New App → From a manifest."""
    from bot.rendering import render_text

    if not socket and not url.startswith("https://"):
        typer.echo("HTTP mode needs the public HTTPS base URL: --url https://… (or use --socket).", err=True)
        raise typer.Exit(2)
    command = _settings().phasegate_slash_command
    typer.echo(
        render_text("slack/manifest.yml.j2", command=command, url=url.rstrip("/") if not socket else "", socket=socket),
        nl=False,
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
