"""The property bench/workspaces.py measures, asserted at a small size: a command costs the same SQL statements
whether its workspace is the only one or one of many (no query over all workspaces or installations)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.workspaces import statements
from tests.conftest import drop_pg_schema, new_pg_schema


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """A function giving a new empty database per call (SQLite files, or schemas of their own on PostgreSQL:
    skipped without TEST_POSTGRES_URL, a failure in CI, as every PostgreSQL test)."""
    made: list[tuple[str, str]] = []

    def fresh(name: str) -> str:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / name}.db"
        server, schema, url = new_pg_schema()
        made.append((server, schema))
        return url

    if request.param == "postgresql":
        server, schema, _ = new_pg_schema()  # skips (or fails in CI) before any work when there is no server
        drop_pg_schema(server, schema)
    yield fresh
    for server, schema in made:
        drop_pg_schema(server, schema)


async def test_status_app_home_and_a_write_cost_the_same_statements_with_1_or_6_workspaces(
    fresh_url: Callable[[str], str],
) -> None:
    one = await statements(fresh_url("one"), 1, 2)
    many = await statements(fresh_url("many"), 6, 2)
    assert set(one) == {"status", "app home", "task add"}
    assert one == many
