"""The schema comes from Alembic only, and it matches the models on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from bot.db.migrate import downgrade, pending_changes, upgrade
from bot.db.session import sync_url
from tests.conftest import drop_pg_schema, new_pg_schema


def _tables(url: str) -> set[str]:
    engine = create_engine(sync_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _check_roundtrip(url: str) -> None:
    upgrade(url)
    assert pending_changes(url) == []
    tables = _tables(url)
    assert {"projects", "meetings", "proposals", "tasks", "sync_outbox", "audit_log", "alembic_version"} <= tables
    downgrade(url, "base")
    assert _tables(url) == {"alembic_version"}
    upgrade(url)
    assert pending_changes(url) == []


def test_upgrade_head_matches_models_on_sqlite(tmp_path: Path) -> None:
    _check_roundtrip(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_upgrade_head_matches_models_on_postgres() -> None:
    server, schema, url = new_pg_schema()
    try:
        _check_roundtrip(url)
    finally:
        drop_pg_schema(server, schema)


def test_the_scheduler_table_is_left_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE apscheduler_jobs (id VARCHAR(191) PRIMARY KEY, next_run_time FLOAT)")
    engine.dispose()
    assert pending_changes(url) == []


@pytest.mark.postgres
def test_replicas_migrating_at_once_leave_one_correct_schema() -> None:
    import subprocess
    import sys

    server, schema, url = new_pg_schema()
    try:
        code = f"from bot.db.migrate import upgrade; upgrade({url!r})"
        root = Path(__file__).resolve().parents[3]
        procs = [subprocess.Popen([sys.executable, "-c", code], cwd=root) for _ in range(3)]
        assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
        assert pending_changes(url) == []
    finally:
        drop_pg_schema(server, schema)
