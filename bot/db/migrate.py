"""Apply and inspect Alembic migrations programmatically (`phasegate db upgrade`, tests).

Alembic (with Mako and Pygments) is imported by the functions that use it, not by this module: a server applies
its migrations in a forked child (`upgrade_in_child`) and never loads them, ~15 MB less resident memory."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING

from bot.paths import MIGRATIONS

if TYPE_CHECKING:
    from alembic.config import Config

IGNORED_TABLES = frozenset({"apscheduler_jobs"})


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    from bot.db.session import sync_url

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sync_url(database_url).replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "heads") -> None:
    """Bring the schema up to `revision` (the only way the schema is created or changed)."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def upgrade_in_child(database_url: str) -> str | None:
    """`upgrade` in a forked child process (where `fork` exists; else in this one): None when it worked, else why
    not ("ErrorClass: message"). The caller keeps its memory free of Alembic for the rest of its life."""
    if not hasattr(os, "fork"):
        try:
            upgrade(database_url)
        except Exception as exc:
            return f"{exc.__class__.__name__}: {exc}"
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: migrate, report a failure through the pipe, leave without the parent's exit handlers
        os.close(read_end)
        code = 1
        try:
            upgrade(database_url)
            code = 0
        except BaseException as exc:
            logging.getLogger(__name__).debug("applying migrations failed", exc_info=True)
            os.write(write_end, f"{exc.__class__.__name__}: {exc}".encode(errors="replace")[:4000])
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        why = pipe.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return None if code == 0 else why or f"the migration process ended with exit status {code}"


def downgrade(database_url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(database_url), revision)


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    return not (type_ == "table" and name in IGNORED_TABLES)


def pending_changes(database_url: str) -> list[object]:
    """What autogenerate would change between the database and the models (empty when in step)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine
    from sqlmodel import SQLModel

    from bot.db import models  # noqa: F401  (registers the tables on SQLModel.metadata)
    from bot.db.session import sync_url

    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include_object})
            return list(compare_metadata(ctx, SQLModel.metadata))
    finally:
        engine.dispose()
