"""Leader election for replicas: the holder of a PostgreSQL advisory lock runs the scheduler and sync worker."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy.engine import make_url

from bot.waits import cancel_and_wait

if TYPE_CHECKING:
    import psycopg  # imported where PostgreSQL is used: a SQLite deployment never loads it

log = logging.getLogger(__name__)

# Any constant works; all replicas must agree. ("phasegate" as a 63-bit number.)
LOCK_KEY = 0x7068617365676174 & 0x7FFF_FFFF_FFFF_FFFF

# How soon PostgreSQL notices that the leader's host vanished (no FIN, no RST): TCP keepalives on the lock session,
# idle + interval x count = 5 + 5 x 3 = 20 s; the next replica's try (every `retry` s) then takes the lock.
# (A process that dies on a living host closes its socket: the lock is free at once.)
SERVER_KEEPALIVE = {"tcp_keepalives_idle": 5, "tcp_keepalives_interval": 5, "tcp_keepalives_count": 3}
CLIENT_KEEPALIVE = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 5, "keepalives_count": 3}

Hook = Callable[[], Awaitable[None]]

# The leader writes its heartbeat row (table leader_heartbeats) every `retry` seconds; a database whose leader beat
# within LEADER_RECENT seconds counts as live for `phasegate shell` (a restart or a failover may be under way).
LEADER_RECENT = 300.0
_PG_BEAT = (
    "INSERT INTO leader_heartbeats (replica, beat_at, started_at) "
    "VALUES (%(r)s, extract(epoch from clock_timestamp()), extract(epoch from clock_timestamp())) "
    "ON CONFLICT (replica) DO UPDATE SET beat_at = excluded.beat_at"
)
_SQLITE_BEAT = (
    "INSERT INTO leader_heartbeats (replica, beat_at, started_at) VALUES (?, ?, ?) "
    "ON CONFLICT (replica) DO UPDATE SET beat_at = excluded.beat_at"
)


def libpq_url(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def lock_key_for(schema: str | None) -> int:
    """The advisory lock key of one deployment: advisory locks are per database, not per schema, so deployments
    that share a database in different schemas (`options=-csearch_path=…`) get keys of their own. The default
    schema keeps LOCK_KEY, so replicas of older versions and newer ones still elect one leader between them."""
    if not schema or schema == "public":
        return LOCK_KEY
    digest = hashlib.blake2b(f"phasegate:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF_FFFF_FFFF


def replica_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Leadership:
    """Runs `on_elected` while this process holds the lock and `on_deposed` when it loses it.

    The lock is a session-level advisory lock on a dedicated connection: if the process dies, PostgreSQL
    drops the session and the lock, and another replica takes over at its next try (`retry` seconds).
    If the lock session stops answering (for `timeout` seconds) the leader steps down; if the leader's host
    vanishes, the server's keepalives end the session (~20 s). With SQLite there is one process, so it leads at once.
    """

    def __init__(
        self,
        database_url: str,
        *,
        on_elected: Hook,
        on_deposed: Hook,
        retry: float = 5.0,
        timeout: float = 10.0,
        key: int | None = None,
    ) -> None:
        self.database_url = database_url
        self.on_elected, self.on_deposed = on_elected, on_deposed
        self.retry, self.timeout = retry, timeout
        self.key = key
        self.name = replica_name()
        self.is_leader = False
        self._task: asyncio.Task[None] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self.elected = asyncio.Event()

    @property
    def shared(self) -> bool:
        return make_url(self.database_url).get_backend_name() in ("postgresql", "postgres")

    async def start(self) -> None:
        if not self.shared:
            await self._become_leader()
            self._task = asyncio.create_task(self._sqlite_heartbeats(), name="phasegate-heartbeat")
            return
        self._task = asyncio.create_task(self._campaign(), name="phasegate-leadership")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)
        await self._step_down()
        await self._disconnect()  # ends the session, so the lock is free for the next replica at once

    async def _become_leader(self) -> None:
        self.is_leader = True
        log.info("this replica (%s) leads: running the scheduler and the GitHub sync worker", self.name)
        await self.on_elected()
        self.elected.set()

    async def _step_down(self) -> None:
        if self.is_leader:
            self.is_leader = False
            self.elected.clear()
            log.warning("this replica (%s) no longer leads: stopping the scheduler and the sync worker", self.name)
            with contextlib.suppress(Exception):
                await self.on_deposed()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        import psycopg
        from psycopg.conninfo import make_conninfo

        conninfo = make_conninfo(
            libpq_url(self.database_url),
            application_name="phasegate-leader",  # shows the lock's session in pg_stat_activity
            connect_timeout=max(int(self.timeout), 2),
            **CLIENT_KEEPALIVE,
        )
        conn = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
        for name, value in SERVER_KEEPALIVE.items():
            await conn.execute(f"SET {name} = {int(value)}")  # ignored on a Unix socket
        if self.key is None:
            cur = await conn.execute("SELECT current_schema()")
            row = await cur.fetchone()
            self.key = lock_key_for(row[0] if row else None)
        return conn

    async def _disconnect(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.timeout):
                    await self._conn.close()
            self._conn = None

    async def _check(self) -> bool:
        """True when this call took the lock; a leader only checks that its session still answers."""
        if self._conn is None or self._conn.closed:
            self._conn = await self._connect()
        if self.is_leader:
            await self._conn.execute("SELECT 1")  # still connected, so still holding the lock
            return False
        cur = await self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
        row = await cur.fetchone()
        return bool(row and row[0])

    async def _campaign(self) -> None:
        import psycopg

        me = asyncio.current_task()
        while self._task is me:  # `stop()` cancels this task and forgets it: either ends the loop
            try:
                # A session that hangs (network gone) must not keep a leader that can no longer prove it leads;
                # closing it (below) also frees a lock taken by a call that timed out.
                async with asyncio.timeout(self.timeout):
                    took = await self._check()
                if took:
                    await self._become_leader()
            except (psycopg.Error, OSError, TimeoutError) as exc:
                log.warning("leadership check failed (%s); retrying", exc or exc.__class__.__name__)
                await self._step_down()
                await self._disconnect()
            except Exception:  # e.g. on_elected failed: let go of the lock so that another replica can lead
                log.exception("could not start leading; letting another replica try")
                await self._step_down()
                await self._disconnect()
            if self.is_leader:
                await self._beat()
            await asyncio.sleep(self.retry)

    async def _beat(self) -> None:
        """The heartbeat row `phasegate shell` checks; failing to write it never costs the lead."""
        import psycopg

        try:
            if self._conn is not None:
                async with asyncio.timeout(self.timeout):
                    await self._conn.execute(_PG_BEAT, {"r": self.name})
        except (psycopg.Error, OSError, TimeoutError) as exc:
            log.debug("could not write the leader heartbeat (%s)", exc)

    def _beat_sqlite(self) -> None:
        path = make_url(self.database_url).database
        if not path or path == ":memory:":
            return
        now = time.time()
        try:
            with contextlib.closing(sqlite3.connect(path, timeout=self.timeout)) as conn, conn:
                conn.execute(_SQLITE_BEAT, (self.name, now, now))
        except sqlite3.Error as exc:
            log.debug("could not write the leader heartbeat (%s)", exc)

    async def _sqlite_heartbeats(self) -> None:
        me = asyncio.current_task()
        while self._task is me:
            await asyncio.to_thread(self._beat_sqlite)
            await asyncio.sleep(self.retry)


@dataclass(frozen=True)
class LeaderSeen:
    """A server that leads this database now (holds the lock) or did `seconds_ago`."""

    replica: str
    seconds_ago: float | None
    holds_lock: bool


def recent_leader(database_url: str, *, within: float = LEADER_RECENT) -> LeaderSeen | None:
    """Who leads (or led within `within` seconds) the deployment on this database; None if nobody did.

    PostgreSQL: the advisory lock held right now (also by a server too old to write heartbeats), else the newest
    heartbeat by the database's clock. SQLite: the newest heartbeat (a missing file has none)."""
    if make_url(database_url).get_backend_name() in ("postgresql", "postgres"):
        return _recent_pg(database_url, within)
    return _recent_sqlite(database_url, within)


def _recent_pg(database_url: str, within: float) -> LeaderSeen | None:
    import psycopg

    with psycopg.connect(libpq_url(database_url), connect_timeout=5, autocommit=True) as conn:
        row = conn.execute("SELECT current_schema()").fetchone()
        key = lock_key_for(row[0] if row else None)
        held = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND ((classid::bigint << 32) | objid::bigint) = %s",
            (key,),
        ).fetchone()
        holds = bool(held and held[0])
        try:
            beat = conn.execute(
                "SELECT replica, extract(epoch from clock_timestamp())::float8 - beat_at FROM leader_heartbeats "
                "ORDER BY beat_at DESC LIMIT 1"
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            beat = None
    if beat is not None and (holds or float(beat[1]) <= within):
        return LeaderSeen(str(beat[0]), max(float(beat[1]), 0.0), holds)
    return LeaderSeen("unknown replica", None, True) if holds else None


def _recent_sqlite(database_url: str, within: float) -> LeaderSeen | None:
    path = make_url(database_url).database
    if not path or path == ":memory:" or not os.path.exists(path):
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=5)) as conn:
            beat = conn.execute(
                "SELECT replica, beat_at FROM leader_heartbeats ORDER BY beat_at DESC LIMIT 1"
            ).fetchone()
    except sqlite3.OperationalError:  # no such table: a database no server of this version has led
        return None
    if beat is None or time.time() - float(beat[1]) > within:
        return None
    return LeaderSeen(str(beat[0]), max(time.time() - float(beat[1]), 0.0), False)
