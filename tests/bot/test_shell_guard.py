"""The shell never touches a live deployment's jobs: its own file by default, and a led database is refused."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from bot.leader import LeaderSeen, Leadership, libpq_url, lock_key_for, recent_leader
from tests.bot.test_shell import run_cli

SCRIPT = "/phasegate help\n:quit\n"


def lead_briefly(url: str) -> LeaderSeen:
    """A server's Leadership takes the lead (writing its heartbeat), then stops; returns what the shell sees."""

    async def main() -> LeaderSeen:
        async def nothing() -> None:
            return None

        leadership = Leadership(url, on_elected=nothing, on_deposed=nothing, retry=0.05)
        await leadership.start()
        try:
            await asyncio.wait_for(leadership.elected.wait(), 10)
            for _ in range(200):
                seen = await asyncio.to_thread(recent_leader, url)
                if seen is not None and seen.seconds_ago is not None:
                    return seen
                await asyncio.sleep(0.05)
            raise AssertionError("the leader wrote no heartbeat")
        finally:
            await leadership.stop()

    return asyncio.run(main())


def db_arg(url: str) -> str:
    return make_url(url).database or "" if url.startswith("sqlite") else url


def test_the_shell_uses_its_own_file_not_database_url(tmp_path: Path) -> None:
    live = tmp_path / "live.db"
    out = run_cli(["shell"], SCRIPT, tmp_path, DATABASE_URL=f"sqlite:///{live}")
    assert out.returncode == 0, out.stderr[-2000:]
    assert not live.exists()
    assert (tmp_path / "phasegate-shell.db").exists()


def test_a_database_a_server_led_is_refused_unless_forced(tmp_path: Path, database_url: str) -> None:
    assert recent_leader(database_url) is None
    seen = lead_briefly(database_url)
    assert seen.seconds_ago is not None and seen.seconds_ago < 60
    started = time.perf_counter()
    out = run_cli(["shell", "--db", db_arg(database_url)], SCRIPT, tmp_path)
    print(f"\nshell on a database led {seen.seconds_ago:.1f} s ago: exit {out.returncode} in {time.perf_counter() - started:.1f} s")
    assert out.returncode == 3, out.stdout[-2000:] + out.stderr[-2000:]
    assert "A Phasegate server" in out.stderr and "led it" in out.stderr and "--force-local-clock" in out.stderr
    assert "/phasegate help" not in out.stdout  # nothing ran
    forced = run_cli(["shell", "--db", db_arg(database_url), "--force-local-clock"], SCRIPT, tmp_path)
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert "> /phasegate help" in forced.stdout


def test_a_heartbeat_older_than_a_few_minutes_is_no_longer_a_leader(database_url: str) -> None:
    lead_briefly(database_url)
    assert recent_leader(database_url, within=3600) is not None
    time.sleep(0.2)
    assert recent_leader(database_url, within=0.1) is None


def test_a_postgres_lock_holder_leads_right_now_even_without_a_heartbeat(database_url: str) -> None:
    if not database_url.startswith("postgres"):
        return  # SQLite has no lock to see: one process, and its heartbeat says it all
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        row = conn.execute("SELECT current_schema()").fetchone()
        conn.execute("SELECT pg_advisory_lock(%s)", (lock_key_for(row[0] if row else None),))
        seen = recent_leader(database_url)
        assert seen is not None and seen.holds_lock
    assert recent_leader(database_url) is None
