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
audit_app = typer.Typer(no_args_is_help=True, help="The audit trail: who did what, when.")
app.add_typer(audit_app, name="audit")


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


def _upgrade(settings: Settings, *, apart: bool = False) -> None:
    """Apply migrations; `apart`: in a forked child, so a long-running server never loads Alembic."""
    from bot.db.migrate import upgrade, upgrade_in_child

    why: str | None = None
    if apart:
        why = upgrade_in_child(settings.database_url)
    else:
        try:
            upgrade(settings.database_url)
        except Exception as exc:
            why = f"{exc.__class__.__name__}: {exc}"
    if why:  # a database that does not answer is a configuration problem for the user
        typer.echo(f"Could not apply migrations to DATABASE_URL ({why}).", err=True)
        typer.echo("Check DATABASE_URL and that the database server is running.", err=True)
        raise typer.Exit(2)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision")) -> None:
    """Apply migrations up to REVISION (default: head)."""
    settings = _settings()
    from bot.db.migrate import upgrade

    upgrade(settings.database_url, revision)
    typer.echo(f"Database at revision {revision}.")


def _serve(settings: Settings, mode: str, *, reuse_port: bool = False) -> None:
    import asyncio

    from bot.app import create_app, run_forever
    from bot.malloc import limit_arenas

    limit_arenas()  # before the server starts its threads

    if settings.slack_many_workspaces and mode != "http":
        typer.echo(
            "Many workspaces (SLACK_CLIENT_ID and SLACK_CLIENT_SECRET) need --mode http: workspaces install "
            "Phasegate through its public /slack/install page.",
            err=True,
        )
        raise typer.Exit(2)
    if settings.slack_bot_token is None and not settings.slack_many_workspaces:
        typer.echo(
            "SLACK_BOT_TOKEN is not set: Slack modes need the bot token (xoxb-…), or SLACK_CLIENT_ID and "
            "SLACK_CLIENT_SECRET to serve many workspaces.",
            err=True,
        )
        raise typer.Exit(2)
    if mode == "socket" and settings.slack_app_token is None:
        typer.echo("Socket Mode needs SLACK_APP_TOKEN (an app-level xapp-… token with connections:write).", err=True)
        raise typer.Exit(2)
    if mode == "http" and settings.slack_signing_secret is None:
        typer.echo("HTTP mode needs SLACK_SIGNING_SECRET (Basic Information → App Credentials).", err=True)
        raise typer.Exit(2)
    from slack_sdk.errors import SlackApiError

    try:
        asyncio.run(run_forever(create_app(settings), mode, reuse_port=reuse_port))
    except KeyboardInterrupt:
        typer.echo("Stopped.")
    except SlackApiError as exc:  # e.g. a revoked or mistyped token: say which, not a traceback
        error = exc.response.get("error") if exc.response is not None else str(exc)
        typer.echo(
            f"Slack refused to connect ({error}): check SLACK_BOT_TOKEN"
            + (" and SLACK_APP_TOKEN." if mode == "socket" else "."),
            err=True,
        )
        raise typer.Exit(2) from None
    except OSError as exc:  # the port is taken, or the database cannot be reached
        typer.echo(f"Could not start: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(
    mode: str = typer.Option("http", "--mode", help="http (public URL, signed requests) or socket (Socket Mode)"),
    migrate: bool = typer.Option(True, help="Apply migrations before starting"),
    workers: int = typer.Option(1, "--workers", min=1, help="HTTP server processes on one port (PostgreSQL only)"),
    reuse_port: bool = typer.Option(False, "--reuse-port", hidden=True, help="Listen with SO_REUSEPORT (a worker)"),
) -> None:
    """Serve Slack over HTTP (/slack/events, /healthz) or Socket Mode."""
    if mode not in ("http", "socket"):
        typer.echo("--mode must be http or socket.", err=True)
        raise typer.Exit(2)
    settings = _settings()
    _logging(settings)
    if workers > 1:
        from sqlalchemy.engine import make_url

        if mode != "http":
            typer.echo("--workers needs --mode http: Socket Mode keeps one connection per app.", err=True)
            raise typer.Exit(2)
        if make_url(settings.database_url).get_backend_name() not in ("postgresql", "postgres"):
            typer.echo(
                f"--workers {workers} needs PostgreSQL (DATABASE_URL=postgresql://…): the workers elect one "
                "leader through it. With SQLite run one process.",
                err=True,
            )
            raise typer.Exit(2)
    if migrate:
        _upgrade(settings, apart=True)
    if workers > 1:
        from bot.workers import supervise, worker_command

        raise typer.Exit(supervise(workers, worker_command(mode)))
    _serve(settings, mode, reuse_port=reuse_port)


@app.command()
def run() -> None:
    """Apply migrations and start: Socket Mode with an app token, HTTP with a signing secret, else the local shell."""
    settings = _settings()
    _logging(settings)
    _upgrade(settings)
    if settings.slack_many_workspaces:
        _serve(settings, "http")
    elif settings.slack_bot_token is not None and settings.slack_app_token is not None:
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
        raise typer.Exit(_shell(settings, db=None, now=None))  # its own file: never DATABASE_URL's jobs


SHELL_DB = "phasegate-shell.db"  # the shell's own SQLite file, in the working directory, unless --db says otherwise


def _shell_url(db: str | None) -> str:
    """`--db`: a SQLite file or a database URL; nothing → the shell's own file (never DATABASE_URL)."""
    if not db:
        return f"sqlite:///{SHELL_DB}"
    return db if "://" in db else f"sqlite:///{db}"


def _refuse_led_database(url: str) -> int:
    """Exit status 3 with an explanation when a server leads (or led within minutes) this database, else 0."""
    from bot.leader import LEADER_RECENT, recent_leader

    try:
        seen = recent_leader(url)
    except Exception as exc:  # cannot tell: refuse too, a live deployment's jobs are at stake
        typer.echo(
            f"Could not check whether a Phasegate server uses this database ({exc.__class__.__name__}: {exc}).",
            err=True,
        )
        typer.echo("Check --db, or pass --force-local-clock if you are sure no server runs on it.", err=True)
        return 3
    if seen is None:
        return 0
    when = (
        "leads it right now" if seen.holds_lock or seen.seconds_ago is None else f"led it {seen.seconds_ago:.0f} s ago"
    )
    typer.echo(
        f"A Phasegate server ({seen.replica}) {when}. The shell's movable clock would run that deployment's "
        "reminders, verdicts, agendas and nudges here in the terminal and mark them sent, so Slack would never "
        "get them.",
        err=True,
    )
    typer.echo(
        f"Run `phasegate shell` without --db (it uses its own file, ./{SHELL_DB}), wait until "
        f"the server has been stopped for {LEADER_RECENT / 60:.0f} minutes, or pass --force-local-clock if you "
        "really mean to run this database's jobs from the shell.",
        err=True,
    )
    return 3


def _shell(settings: Settings, *, db: str | None, now: str | None, force_local_clock: bool = False) -> int:
    import asyncio
    from datetime import UTC, datetime

    from bot.runtime import open_shell
    from bot.shell import run as run_shell

    try:
        settings = Settings.model_validate({**settings.model_dump(by_alias=True), "DATABASE_URL": _shell_url(db)})
    except ValueError:
        typer.echo("--db must be a SQLite file or a database URL (sqlite:///… or postgresql://…).", err=True)
        return 2
    if not force_local_clock and (refused := _refuse_led_database(settings.database_url)):
        return refused
    _upgrade(settings)
    start = None
    if now:
        try:
            start = datetime.fromisoformat(now.replace("Z", "+00:00"))
        except ValueError:
            typer.echo("--now must be an ISO date-time, e.g. 2026-03-02T09:00Z", err=True)
            return 2
        start = start if start.tzinfo else start.replace(tzinfo=UTC)

    async def main() -> int:
        shell, close = await open_shell(settings, start=start)
        try:
            return await run_shell(shell, sys.stdin, interactive=sys.stdin.isatty())
        finally:
            await close()

    return asyncio.run(main())


@app.command()
def shell(
    db: str = typer.Option("", "--db", help=f"SQLite file or database URL (default: ./{SHELL_DB}, never DATABASE_URL)"),
    now: str = typer.Option("", "--now", help="Start the simulated clock here (ISO date-time; default: now)"),
    force_local_clock: bool = typer.Option(
        False, "--force-local-clock", help="Use --db even though a server leads it (the shell then runs its jobs)"
    ),
) -> None:
    """The local shell: the same commands as Slack, typed in a terminal, with people and a movable clock."""
    settings = _settings()
    logging.basicConfig(level="WARNING", stream=sys.stderr)
    raise typer.Exit(_shell(settings, db=db or None, now=now or None, force_local_clock=force_local_clock))


@app.command()
def manifest(
    socket: bool = typer.Option(False, "--socket", help="Socket Mode (no public URL)"),
    url: str = typer.Option("", "--url", help="Public base URL for HTTP mode, e.g. https://phasegate.example.com"),
    many_workspaces: bool = typer.Option(
        False, "--many-workspaces", help="For SLACK_CLIENT_ID/SECRET: the OAuth redirect URL and uninstall events"
    ),
    token_rotation: bool = typer.Option(
        False, "--token-rotation", help="Many workspaces: expiring bot tokens with refresh tokens (cannot be undone)"
    ),
) -> None:
    """Print the Slack app manifest (v1) to paste at api.slack.com/apps → Create New App → From a manifest."""
    from bot.rendering import render_text
    from bot.slack_oauth import BOT_SCOPES

    settings = _settings()
    oauth = many_workspaces or settings.slack_many_workspaces
    if not socket and not url.startswith("https://"):
        typer.echo("HTTP mode needs the public HTTPS base URL: --url https://… (or use --socket).", err=True)
        raise typer.Exit(2)
    if oauth and socket:
        typer.echo(
            "Many workspaces install through the public /slack/install page: use --url https://…, not --socket.",
            err=True,
        )
        raise typer.Exit(2)
    if token_rotation and not oauth:
        typer.echo(
            "--token-rotation needs --many-workspaces: one workspace's SLACK_BOT_TOKEN does not rotate.", err=True
        )
        raise typer.Exit(2)
    typer.echo(
        render_text(
            "slack/manifest.yml.j2",
            command=settings.phasegate_slash_command,
            url=url.rstrip("/") if not socket else "",
            socket=socket,
            oauth=oauth,
            rotation=token_rotation,
            scopes=BOT_SCOPES,
        ),
        nl=False,
    )


@app.command()
def demo(
    db: str = typer.Option("", "--db", help="Keep the demo's SQLite file here (default: a temporary file)"),
) -> None:
    """Walk one project from Discovery to Deployment in the local shell, with an accelerated clock."""
    from bot.demo import run_demo

    settings = _settings()
    raise typer.Exit(run_demo(settings, db=db or None))


@app.command()
def sync(
    project: str = typer.Argument("", help="Project name (default: every project)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only print what would change"),
) -> None:
    """Bring GitHub in step now (or print the plan with --dry-run, or without credentials)."""
    import asyncio

    from bot.sync.service import cli_sync

    settings = _settings()
    logging.basicConfig(level="WARNING", stream=sys.stderr)
    _upgrade(settings)
    typer.echo(asyncio.run(cli_sync(settings, project or None, dry_run)))


def _write_report(
    project: str, fmt: str, out: str, *, audit_csv: bool, who: str | None = None, kind: str | None = None
) -> None:
    import asyncio
    from pathlib import Path

    from bot.errors import PhasegateError
    from bot.services.project_report import cli_report

    settings = _settings()
    logging.basicConfig(level="WARNING", stream=sys.stderr)
    _upgrade(settings)
    try:
        text = asyncio.run(cli_report(settings.database_url, project, fmt=fmt, audit_csv=audit_csv, who=who, kind=kind))
    except PhasegateError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(2) from None
    if out:
        Path(out).write_text(text, encoding="utf-8")
        typer.echo(f"Wrote {out}")
    else:
        typer.echo(text, nl=False)


@app.command()
def report(
    project: str = typer.Argument(..., help="Project name (TEAM/name when several workspaces use it)"),
    fmt: str = typer.Option("md", "--format", help="md, json (docs/report.schema.json) or html (one file)"),
    out: str = typer.Option("", "--out", help="Write to this file instead of printing"),
) -> None:
    """The project on one page: brief, criteria, phases, decisions, tasks with their issues, the audit trail."""
    _write_report(project, fmt, out, audit_csv=False)


@audit_app.command("export")
def audit_export(
    project: str = typer.Argument(..., help="Project name (TEAM/name when several workspaces use it)"),
    out: str = typer.Option("", "--out", help="Write the CSV to this file instead of printing"),
    who: str = typer.Option("", "--who", help="Only what this person did: their name, or phasegate for Phasegate"),
    kind: str = typer.Option("", "--kind", help="Only changes of this kind (meeting, task, decision, phase, …)"),
) -> None:
    """The project's audit trail as CSV (UTC times, people by name), like `audit who=… kind=…` in Slack."""
    _write_report(project, "csv", out, audit_csv=True, who=who or None, kind=kind or None)


@app.command()
def purge(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list the workspaces whose data would be deleted"),
) -> None:
    """Delete the data of workspaces that uninstalled Phasegate more than PHASEGATE_RETENTION_DAYS ago."""
    import asyncio
    from datetime import timedelta

    from bot.clock import SystemClock
    from bot.db.session import Database
    from bot.slack_oauth import purge as purge_workspaces

    settings = _settings()
    logging.basicConfig(level="WARNING", stream=sys.stderr)
    _upgrade(settings)

    async def main() -> list[str]:
        db = Database(settings.database_url)
        try:
            return await purge_workspaces(
                db, SystemClock(), retention=timedelta(days=settings.retention_days), dry_run=dry_run
            )
        finally:
            await db.dispose()

    teams = asyncio.run(main())
    days = settings.retention_days
    if not teams:
        typer.echo(f"No workspace uninstalled Phasegate more than {days} days ago: nothing to delete.")
    elif dry_run:
        typer.echo(
            f"Would delete the data of {len(teams)} workspace(s) uninstalled over {days} days ago: " + ", ".join(teams)
        )
    else:
        typer.echo(
            f"Deleted the data of {len(teams)} workspace(s) uninstalled over {days} days ago: " + ", ".join(teams)
        )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
