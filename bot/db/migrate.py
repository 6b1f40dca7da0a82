"""Apply and inspect Alembic migrations programmatically (`phasegate db upgrade`, tests)."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlmodel import SQLModel

from bot.db import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from bot.db.session import sync_url
from bot.paths import MIGRATIONS

IGNORED_TABLES = frozenset({"apscheduler_jobs"})


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sync_url(database_url).replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "heads") -> None:
    """Bring the schema up to `revision` (the only way the schema is created or changed)."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    return not (type_ == "table" and name in IGNORED_TABLES)


def pending_changes(database_url: str) -> list[object]:
    """What autogenerate would change between the database and the models (empty when in step)."""
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include_object})
            return list(compare_metadata(ctx, SQLModel.metadata))
    finally:
        engine.dispose()
