"""Insert a row unless one with the same key is there: `INSERT … ON CONFLICT DO NOTHING` on SQLite and PostgreSQL.

Two requests seeing a person (or a workspace) for the first time at once both try to create its row; with a plain
INSERT the second fails on the unique key. With this, the second waits for the first and then inserts nothing.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel


async def insert_missing(s: AsyncSession, row: SQLModel, key: list[str]) -> None:
    """Insert `row` (its values, the model's defaults included) unless a row with the same `key` columns exists or
    is being inserted concurrently. `row` itself is not added to the session: read the stored row back."""
    table = type(row).__table__  # type: ignore[attr-defined]
    values = {c.name: getattr(row, c.name) for c in table.columns if getattr(row, c.name) is not None}
    if s.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        await s.execute(pg_insert(table).values(**values).on_conflict_do_nothing(index_elements=key))
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        await s.execute(sqlite_insert(table).values(**values).on_conflict_do_nothing(index_elements=key))
