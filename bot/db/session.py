"""Database engines and the unit of work; chooses the async driver from DATABASE_URL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal
from urllib.parse import quote

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import QueuePool

Health = Literal["up", "busy", "down"]


def _base(url: str) -> tuple[str, str]:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgres", "postgresql"):
        return "postgresql", parsed.render_as_string(hide_password=False)
    if backend == "sqlite":
        return "sqlite", parsed.render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL scheme: {backend}")


def async_url(url: str) -> str:
    """`sqlite:///x.db` → `sqlite+aiosqlite:///x.db`; `postgresql://…` → `postgresql+psycopg://…`."""
    backend, _ = _base(url)
    driver = "aiosqlite" if backend == "sqlite" else "psycopg"
    return make_url(url).set(drivername=f"{backend}+{driver}").render_as_string(hide_password=False)


def sync_url(url: str) -> str:
    """The same database for synchronous users (Alembic, APScheduler's job store)."""
    backend, _ = _base(url)
    driver = "pysqlite" if backend == "sqlite" else "psycopg"
    return make_url(url).set(drivername=f"{backend}+{driver}").render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


# Connections per process: (kept open, opened on top under load). SQLite's are SQLAlchemy's defaults, stated.
POOLS = {"postgresql": (10, 10), "sqlite": (5, 10)}


class Database:
    """Owns the async engine; `async with db.session() as s:` is one unit of work (commit on success)."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.backend, _ = _base(url)
        kwargs: dict[str, Any] = {"echo": echo}
        self.pool_limit: int | None = None  # pooled connections, overflow included (None: not a pool of ours)
        if self.backend == "postgresql":
            kwargs["pool_pre_ping"] = True
        if self.backend == "postgresql" or make_url(url).database not in (None, "", ":memory:"):  # in memory: no pool
            size, overflow = POOLS[self.backend]
            kwargs.update(pool_size=size, max_overflow=overflow)
            self.pool_limit = size + overflow
        self.engine: AsyncEngine = create_async_engine(async_url(url), **kwargs)
        if self.backend == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_turn = asyncio.Lock()

    def writer(self) -> contextlib.AbstractAsyncContextManager[object]:
        """Around a short write on the hot path: on SQLite (one writer at a time), this process's writers take turns
        on an asyncio lock, woken the moment the last one commits, instead of polling in SQLite's busy handler
        (which sleeps up to 100 ms between tries). PostgreSQL: no lock."""
        return self._write_turn if self.backend == "sqlite" else contextlib.nullcontext()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as s:
            try:
                yield s
                await s.commit()
            except BaseException:
                await s.rollback()
                raise

    async def ping(self) -> bool:
        """True when the database answers."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    @property
    def pool_exhausted(self) -> bool:
        """Every pooled connection (overflow included) is checked out: the next session waits for one."""
        pool = self.engine.pool
        if self.pool_limit is None or not isinstance(pool, QueuePool):
            return False
        return pool.checkedout() >= self.pool_limit

    async def health(self, *, within: float = 2.0) -> Health:
        """`up`, `busy` (the database answers, but all pooled connections are in use) or `down`, within `within`
        seconds: the check uses a connection of its own, so a full pool never makes it wait (or look down)."""
        try:
            async with asyncio.timeout(within):
                await self._probe(within)
        except Exception:  # refused, timed out, unreadable file, bad credentials: the database is not there for us
            return "down"
        return "busy" if self.pool_exhausted else "up"

    async def _probe(self, within: float) -> None:
        parsed = make_url(self.url)
        if self.backend == "postgresql":
            import psycopg

            libpq = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
            pg = await psycopg.AsyncConnection.connect(libpq, connect_timeout=max(int(within), 1), autocommit=True)
            try:
                await pg.execute("SELECT 1")
            finally:
                await pg.close()
            return
        import aiosqlite

        path = parsed.database or ""
        if path in ("", ":memory:"):
            return
        # mode=rw: a missing file is "down", not silently created
        async with aiosqlite.connect(f"file:{quote(path)}?mode=rw", uri=True, timeout=within) as conn:
            await conn.execute("SELECT count(*) FROM sqlite_master")

    async def dispose(self) -> None:
        await self.engine.dispose()
