"""Resident memory of a real `phasegate serve` process (what an operator sizes a container by), idle and after
a burst of commands, on the configurations people run: SQLite without GitHub credentials (preview), SQLite with
a GitHub token (PyGithub loaded), PostgreSQL with a GitHub token.

Each server is its own process (`python -m bot.cli serve`), migrated by its own start-up (in a forked child, so
Alembic is never in the server's memory) and talking to a fake Slack in another process; the figure is VmRSS
once `/healthz` answers ok and the process has settled, then again after `commands` signed `/phasegate status`."""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bench.common import fresh_pg_schema, report, rss_kib
from tests.handlers.harness import sign
from tests.resilience.procs import SIGNING_SECRET, Processes, bot_env

GOALS = {"rss_idle_mib": ("<=", 120.0), "rss_after_commands_mib": ("<=", 150.0)}
TEAM, CHANNEL, USER = "T0BENCH001", "C0BENCH001", "U0BENCH001"


async def commands(url: str, n: int, senders: Sequence[tuple[str, str, str]] = ((TEAM, CHANNEL, USER),)) -> int:
    """`n` signed `/phasegate status`, from each (team, channel, user) of `senders` in turn (by default one with no
    project in the channel: the answer says how to start one); HTTP errors counted."""
    errors = 0
    async with aiohttp.ClientSession() as http:
        for i in range(n):
            team, channel, user = senders[i % len(senders)]
            body = urlencode(
                {
                    "command": "/phasegate",
                    "text": "status",
                    "team_id": team,
                    "channel_id": channel,
                    "user_id": user,
                    "response_url": f"http://127.0.0.1:9/response/{i}",
                    "trigger_id": f"t{i}",
                }
            )
            headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, secret=SIGNING_SECRET)}
            async with http.post(f"{url}/slack/events", data=body, headers=headers) as resp:
                errors += resp.status != 200
    return errors


def measure(
    procs: Processes,
    name: str,
    env: dict[str, str],
    *,
    n: int,
    settle: float,
    senders: Sequence[tuple[str, str, str]] = ((TEAM, CHANNEL, USER),),
) -> dict[str, Any]:
    """A fresh server: VmRSS once settled, then after `n` commands from `senders` in turn (and settled again)."""
    bot = procs.bot(env)
    try:
        time.sleep(settle)
        idle = rss_kib(bot.pid) / 1024
        errors = asyncio.run(commands(bot.url, n, senders))
        time.sleep(settle)
        after = rss_kib(bot.pid) / 1024
    finally:
        bot.stop()
    return {
        "config": name,
        "rss_idle_mib": round(idle, 1),
        "commands": n,
        "rss_after_commands_mib": round(after, 1),
        "errors": errors,
    }


def main(*, quick: bool = False) -> dict[str, Any]:
    n, settle = (5, 0.2) if quick else (300, 2.0)
    tmp = Path(tempfile.mkdtemp(prefix="phasegate-memory-"))
    rows = []
    with Processes(tmp) as procs:
        slack = procs.fake_slack(team_id=TEAM)

        def env(url: str, **extra: str) -> dict[str, str]:
            config = bot_env(
                database_url=url, slack_api_url=slack.api_url, github_api_url=None, PHASEGATE_LOG_LEVEL="WARNING"
            )
            config.update(extra)  # last, as bot_env applies its own extra settings
            return config

        token = {"GITHUB_TOKEN": "ghp_bench", "GITHUB_API_URL": "http://127.0.0.1:9"}  # never reached while idle
        configs = [
            ("sqlite, no GitHub (preview)", env(f"sqlite:///{tmp}/preview.db")),
            ("sqlite, GITHUB_TOKEN", env(f"sqlite:///{tmp}/token.db", **token)),
        ]
        pg = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_POSTGRES_URL")
        if pg:
            configs.append(("postgresql, GITHUB_TOKEN", env(fresh_pg_schema(pg, "phasegate_bench_memory"), **token)))
        for name, config in configs[:1] if quick else configs:
            rows.append(measure(procs, name, config, n=n, settle=settle))
    return report("memory", rows, {"settle_s": settle}, goals=GOALS, keys=["config"])


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    main(quick=ap.parse_args().quick)
