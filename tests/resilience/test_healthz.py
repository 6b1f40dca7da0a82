"""`/healthz` tells a full connection pool ("busy") from a database that is gone ("down"), quickly."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import QueuePool

from bot.db.session import Database
from tests.handlers.harness import SlackHarness, running_app

pytestmark = pytest.mark.resilience


async def healthz(slack: SlackHarness) -> tuple[int, dict[str, Any], float]:
    started = time.perf_counter()
    async with slack.session.get(f"{slack.url}/healthz") as resp:
        body = await resp.json()
        return resp.status, body, time.perf_counter() - started


def up(answer: tuple[int, dict[str, Any], float]) -> bool:
    return answer[0] == 200 and answer[1]["ok"] is True and answer[1]["database"] == "up"


async def test_a_full_pool_is_busy_not_down(database_url: str) -> None:
    async with running_app(database_url) as slack:
        assert up(await healthz(slack))
        pool = slack.app.db.engine.pool
        assert isinstance(pool, QueuePool)
        held: list[AsyncConnection] = []
        try:
            while not slack.app.db.pool_exhausted:
                held.append(await slack.app.db.engine.connect())
            status, body, elapsed = await healthz(slack)
        finally:
            for conn in held:
                await conn.close()
        print(f"\nhealthz with {len(held)} pooled connections held ({slack.app.db.backend}): {status} {body} in {elapsed:.2f} s")
        assert status == 503 and body["database"] == "busy" and body["ok"] is False
        assert elapsed < 2.5
        assert up(await healthz(slack))


@pytest.fixture
def live_sqlite(tmp_path: Path, sqlite_template: Path) -> Path:
    return Path(shutil.copy(sqlite_template, tmp_path / "live.db"))


async def test_a_vanished_sqlite_file_is_down(tmp_path: Path, live_sqlite: Path) -> None:
    path = live_sqlite
    async with running_app(f"sqlite:///{path}") as slack:
        assert (await healthz(slack))[0] == 200
        path.rename(tmp_path / "moved.db")
        status, body, elapsed = await healthz(slack)
        print(f"\nhealthz after the SQLite file vanished: {status} {body} in {elapsed:.2f} s")
        assert status == 503 and body["database"] == "down"


@pytest.mark.parametrize("listener", ["refuses", "never answers"])
async def test_an_unreachable_postgres_is_down_within_the_timeout(listener: str) -> None:
    """Nobody listening, or a server that accepts and then says nothing (a hung host): "down" within ~1 s."""
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    if listener == "refuses":
        silent.close()
        await silent.wait_closed()
    db = Database(f"postgresql://phasegate@127.0.0.1:{port}/phasegate")
    started = time.perf_counter()
    health = await db.health(within=1.0)
    elapsed = time.perf_counter() - started
    await db.dispose()
    silent.close()
    print(f"\nhealth of a PostgreSQL that {listener}: {health} in {elapsed:.2f} s")
    assert health == "down" and elapsed < 2.0
