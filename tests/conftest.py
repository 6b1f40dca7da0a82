"""Shared fixtures: a migrated database on SQLite (always) and PostgreSQL (when TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from bot.clock import FakeClock
from bot.db.migrate import upgrade
from bot.db.session import Database
from bot.services import Actor, Services

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("PHASEGATE_REQUIRE_POSTGRES") == "1"
ROOT = Path(__file__).resolve().parents[1]

_pg_passed = 0


async def finishes(stop: Coroutine[Any, Any, None], *, within: float) -> bool:
    """Whether `stop` returns within `within` seconds. It is not cancelled on the way (as `asyncio.wait_for` would
    cancel it), since a cancel could end by itself the loop whose stopping is under test."""
    task = asyncio.create_task(stop)
    done, _ = await asyncio.wait({task}, timeout=within)
    if not done:
        task.cancel()
    return bool(done)

_resilience_figures: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    global _pg_passed
    if report.when == "call" and report.passed and "postgres" in report.keywords:
        _pg_passed += 1
    if report.when != "setup" and report.passed and "resilience" in report.keywords:
        name = report.nodeid.split("::", 1)[-1]
        for line in report.capstdout.strip().splitlines():
            entry = f"{name}: {line.strip()}"
            if line.strip() and entry not in _resilience_figures:
                _resilience_figures.append(entry)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The resilience suite's figures (faults injected, tasks, duplicates…) in the test output, even with -q."""
    if _resilience_figures:
        terminalreporter.section("resilience figures")
        for line in _resilience_figures:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    (ROOT / ".pytest-postgres-count").write_text(f"{_pg_passed}\n")


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def pg_schema_url(base: str, schema: str) -> str:
    """The same server with `search_path` set to a schema of its own (isolates a test's tables)."""
    return (
        make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    )


def make_pg_schema(base: str) -> tuple[str, str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(base), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return schema, pg_schema_url(base, schema)


def drop_pg_schema(base: str, schema: str) -> None:
    with psycopg.connect(_libpq(base), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "phasegate.db"
    upgrade(f"sqlite:///{path}")
    return path


def new_pg_schema() -> tuple[str, str, str]:
    """(server URL, schema, schema URL) on TEST_POSTGRES_URL; skips without a server — fails instead in CI
    (PHASEGATE_REQUIRE_POSTGRES=1), so PostgreSQL tests can never silently not run there."""
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("PHASEGATE_REQUIRE_POSTGRES=1 but TEST_POSTGRES_URL is not set")
        pytest.skip("TEST_POSTGRES_URL is not set")
    try:
        schema, url = make_pg_schema(POSTGRES_URL)
    except psycopg.OperationalError as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL at TEST_POSTGRES_URL does not answer: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    return POSTGRES_URL, schema, url


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """One migrated schema per test session; each test truncates it."""
    server, schema, url = new_pg_schema()
    upgrade(url)
    yield url
    drop_pg_schema(server, schema)


def _truncate_pg(url: str) -> None:
    schema = make_url(url).query["options"]
    assert isinstance(schema, str)
    name = schema.removeprefix("-csearch_path=")
    with psycopg.connect(_libpq(POSTGRES_URL or url), autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> 'alembic_version'", (name,)
            )
        ]
        if tables:
            conn.execute("TRUNCATE " + ", ".join(f'"{name}"."{t}"' for t in tables) + " RESTART IDENTITY CASCADE")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "phasegate.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_template")
    _truncate_pg(url)
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


@pytest.fixture
def clock() -> FakeClock:
    from datetime import UTC, datetime

    return FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))  # a Monday


@pytest.fixture
def services(db: Database, clock: FakeClock) -> Services:
    return Services.build(db, clock)


@pytest.fixture
def team_a() -> str:
    return "TA000001"


def actor(user: str, team: str = "TA000001") -> Actor:
    return Actor(team_id=team, user_id=user)


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
