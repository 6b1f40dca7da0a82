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


@app.command()
def run() -> None:
    """Apply migrations and start: Slack when SLACK_BOT_TOKEN is set, else the local shell."""
    settings = _settings()
    _logging(settings)
    _upgrade(settings)
    if settings.slack_bot_token is None:
        typer.echo(
            "No SLACK_BOT_TOKEN is set, so Phasegate would start its local shell here — the shell is not "
            "built yet (it comes with the local-shell issue). Set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET "
            "(or SLACK_APP_TOKEN for Socket Mode) to run against Slack once the Slack interface lands."
        )
        return
    typer.echo(
        "SLACK_BOT_TOKEN is set, but the Slack transports are not built yet (they come with the Slack "
        "interface issue). Unset it to use the local shell when that lands."
    )
    raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
