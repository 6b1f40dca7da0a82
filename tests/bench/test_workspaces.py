"""The property bench/workspaces.py measures, asserted at a small size: a command costs the same SQL statements
whether its workspace is the only one or one of many (no query over all workspaces or installations)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.common import fresh_pg_schema
from bench.workspaces import statements

PG = os.environ.get("TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """A function giving a new empty database per call (SQLite files, or schemas of their own on PostgreSQL)."""
    made: list[str] = []

    def fresh(name: str) -> str:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / name}.db"
        assert PG is not None
        schema = f"phasegate_test_ws_{name}_{os.getpid()}"
        made.append(schema)
        return fresh_pg_schema(PG, schema)

    if request.param == "postgresql" and not PG:
        pytest.skip("TEST_POSTGRES_URL is not set")
    yield fresh
    if made:
        import psycopg
        from sqlalchemy.engine import make_url

        assert PG is not None
        libpq = make_url(PG).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(libpq, autocommit=True) as conn:
            for schema in made:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def test_status_app_home_and_a_write_cost_the_same_statements_with_1_or_6_workspaces(
    fresh_url: Callable[[str], str],
) -> None:
    one = await statements(fresh_url("one"), 1, 2)
    many = await statements(fresh_url("many"), 6, 2)
    assert set(one) == {"status", "app home", "task add"}
    assert one == many
