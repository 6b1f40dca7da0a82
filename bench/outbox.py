"""Slack outbox: messages/s delivered and lateness (due -> Slack accepted) with 0 % and 20 % of Slack calls failing."""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sqlmodel import select

from bench.common import percentile, report
from bot.clock import SystemClock
from bot.db.migrate import upgrade
from bot.db.models import OutboxMessage, Workspace
from bot.db.session import Database
from bot.outbox import Outbox, OutboxSender
from bot.rendering import Message
from bot.slack_client import SlackMessenger, make_client
from tests.fakes.slack import FakeSlack

TEAM, CHANNEL = "T0BENCH001", "C0BENCH001"
PEOPLE = [f"U0BENCH{n:03d}" for n in range(20)]


async def measure(messages: int, fault_rate: float, seed: int = 1) -> dict[str, Any]:
    fake = FakeSlack(team_id=TEAM)
    await fake.start()
    for uid in PEOPLE:
        fake.add_user(uid, uid.lower())
    fake.add_channel(CHANNEL, "bench", members=[*PEOPLE, fake.bot_user_id])
    rng = random.Random(seed)
    injected: Counter[str] = Counter()
    real_record = fake._record

    def faulty(request, method, params):  # type: ignore[no-untyped-def]
        if method in ("chat.postMessage", "conversations.open") and rng.random() < fault_rate:
            kind = rng.choice(["500", "429", "reset"])
            injected[kind] += 1
            if kind == "500":
                fake.add_fault(method, status=500)
            elif kind == "429":
                fake.add_fault(method, status=429, retry_after=1)
            else:
                fake.add_fault(method, drop=True, before=True)
        return real_record(request, method, params)

    fake._record = faulty  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        await asyncio.to_thread(upgrade, url)
        db = Database(url)
        clock = SystemClock()
        async with db.session() as s:
            s.add(Workspace(team_id=TEAM, created_at=clock.now()))
        messenger = SlackMessenger(make_client("xoxb-bench", fake.api_url, rate_limit_retries=0))
        outbox = Outbox(db, clock, messenger, inline=False)
        sender = OutboxSender(outbox, interval=1.0)
        await sender.start()
        t0 = time.perf_counter()
        async with db.session() as s:  # everything falls due at once (e.g. after an outage or a restart)
            for i in range(messages):
                dm = i % 2 == 1
                await outbox.enqueue(
                    s, team_id=TEAM, kind="dm" if dm else "post", target=PEOPLE[i % 20] if dm else CHANNEL,
                    message=Message(text=f"bench {i}"), key=f"b:{i}",
                )
        await outbox.committed()
        while True:
            async with db.session() as s:
                rows = list((await s.execute(select(OutboxMessage))).scalars())
            if all(r.status != "pending" for r in rows):
                break
            await asyncio.sleep(0.2)
        elapsed = time.perf_counter() - t0
        await sender.stop()
        await db.dispose()
    await fake.stop()
    texts = Counter(str(m.get("text")) for m in fake.messages())
    lateness = [((r.done_at or datetime.now(UTC)) - r.created_at).total_seconds() for r in rows]
    return {
        "messages": messages,
        "fault_rate": fault_rate,
        "faults_injected": sum(injected.values()),
        "delivered": sum(1 for r in rows if r.status == "sent"),
        "lost": sum(1 for i in range(messages) if texts[f"bench {i}"] == 0),
        "duplicates": sum(c - 1 for c in texts.values() if c > 1),
        "msgs_per_s": round(messages / elapsed, 1),
        "lateness_p50_s": round(percentile(lateness, 0.5), 3),
        "lateness_p99_s": round(percentile(lateness, 0.99), 3),
        "lateness_max_s": round(max(lateness), 3),
    }


def main(quick: bool = False) -> dict[str, Any]:
    n = 40 if quick else int(os.environ.get("BENCH_OUTBOX_MESSAGES", "1000"))
    rows = [asyncio.run(measure(n, rate)) for rate in (0.0, 0.2)]
    return report(
        "outbox",
        rows,
        {"note": "SQLite, fake Slack on localhost, real clock; 20 %: 500 / 429 Retry-After 1 s / connection reset "
         "before the request took effect, in equal parts; backoff 2 s doubling, ±25 % jitter"},
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    main(quick=ap.parse_args().quick)
