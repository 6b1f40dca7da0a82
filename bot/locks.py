"""Cross-process locks around GitHub writes, one per identity key (a token or an App installation): serve's
worker, `phasegate sync` and every other writer for that identity take it; different identities do not wait on
each other. The default key is the single-identity lock of before."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from bot.leader import libpq_url

if TYPE_CHECKING:
    import psycopg  # imported by `_pg` only: a SQLite deployment never loads it


class SyncLock:
    """PostgreSQL: a session advisory lock (its own key per schema, not the leader's). SQLite: an exclusive
    `flock` on `<database file>.sync-lock`. In-memory SQLite is one process, so only the asyncio lock applies.
    `hold(key)` takes the lock of identity `key` (its own advisory key / `.sync-lock.<key>` file); `hold()` is the
    default identity's lock, unchanged."""

    def __init__(self, database_url: str, *, poll: float = 0.05) -> None:
        self.database_url = database_url
        self.poll = poll
        self._locals: dict[str, asyncio.Lock] = {}
        url = make_url(database_url)
        self.postgres = url.get_backend_name() in ("postgresql", "postgres")
        database = url.database or ""
        self.path = None if self.postgres or database in ("", ":memory:") else f"{database}.sync-lock"

    @contextlib.asynccontextmanager
    async def hold(self, key: str = "") -> AsyncIterator[None]:
        """Wait for identity `key`'s lock (cancel-safe), hold it for the block."""
        local = self._locals.setdefault(key, asyncio.Lock())
        async with local:
            if self.postgres:
                async with self._pg(key):
                    yield
            elif self.path is not None:
                async with self._file(self.file_for(key)):
                    yield
            else:
                yield

    def file_for(self, key: str) -> str:
        """The lock file of identity `key` (the default identity keeps `<database file>.sync-lock`)."""
        assert self.path is not None
        if not key:
            return self.path
        return f"{self.path}.{hashlib.blake2b(key.encode(), digest_size=8).hexdigest()}"

    @contextlib.asynccontextmanager
    async def _pg(self, key: str = "") -> AsyncIterator[None]:
        import psycopg

        conn: psycopg.AsyncConnection[Any] = await psycopg.AsyncConnection.connect(
            libpq_url(self.database_url), autocommit=True, application_name="phasegate-sync-lock"
        )
        try:
            cur = await conn.execute("SELECT current_schema()")
            row = await cur.fetchone()
            name = f"phasegate-sync:{row[0] if row else ''}" + (f":{key}" if key else "")
            digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
            lock_key = int.from_bytes(digest, "big") & 0x7FFF_FFFF_FFFF_FFFF
            while True:
                cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key,))
                got = await cur.fetchone()
                if got and got[0]:
                    break
                await asyncio.sleep(self.poll)
            yield  # closing the session below releases the lock
        finally:
            with contextlib.suppress(Exception):
                await conn.close()

    @contextlib.asynccontextmanager
    async def _file(self, path: str) -> AsyncIterator[None]:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(self.poll)
            yield
        finally:
            os.close(fd)  # releases the flock
