"""Ack and answer latency of signed `/phasegate status` requests: Phasegate's real app against a bare Bolt app.

Open loop (the fair comparison): both apps get the same offered rates (Poisson arrivals), whatever their
speed; per rate, ack and answer percentiles (answer = the reply reaching our response_url; the bare app
answers there too, through Bolt's `respond`), errors, and the highest rate each sustains with answer
p99 < 1 s. Closed loop (second table): N clients each sending its next command once answered — what an app
does flat out."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from bench.common import percentile, report, rss_kib
from bench.serve import CHANNEL, SECRET, TEAM, USER

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def signed(body: str) -> dict[str, str]:
    ts = str(int(time.time()))
    sig = hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={sig}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def start(
    which: str, *, port: int | None = None, extra: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], int, str]:
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.serve", which, "--port", str(port), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        proc.kill()
        raise RuntimeError(f"{which} server did not start: {line!r}")
    return proc, port, line.split()[2].removesuffix("/api/")


async def load(port: int, *, concurrency: int, seconds: float, answers: bool, warmup: float = 1.0) -> dict[str, Any]:
    """Closed loop like people typing: each of `concurrency` clients sends its next command once the previous
    one is answered (its ephemeral reply arrives at our response_url; for bare Bolt, the ack is the answer).
    The first `warmup` seconds (connections, Bolt's one-time auth.test) are not measured."""
    url = f"http://127.0.0.1:{port}/slack/events"
    acks: list[float] = []
    replies: list[float] = []
    errors = 0
    waiting: dict[str, asyncio.Future[float]] = {}

    async def response_url(request: web.Request) -> web.Response:
        await request.read()
        fut = waiting.pop(request.match_info["rid"], None)
        if fut is not None and not fut.done():
            fut.set_result(time.perf_counter())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/r/{rid}", response_url)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    rport = free_port()
    await web.TCPSite(runner, "127.0.0.1", rport).start()
    measure_from = time.perf_counter() + warmup
    stop_at = measure_from + seconds

    async def worker(session: aiohttp.ClientSession, n: int) -> None:
        nonlocal errors
        i = 0
        loop = asyncio.get_running_loop()
        while time.perf_counter() < stop_at:
            i += 1
            rid = f"{n}x{i}"
            answered: asyncio.Future[float] = loop.create_future()
            waiting[rid] = answered
            body = urlencode(
                {
                    "team_id": TEAM,
                    "channel_id": CHANNEL,
                    "user_id": USER,
                    "command": "/phasegate",
                    "text": "status",
                    "response_url": f"http://127.0.0.1:{rport}/r/{rid}",
                    "trigger_id": f"t{rid}",
                }
            )
            t0 = time.perf_counter()
            async with session.post(url, data=body.encode(), headers=signed(body)) as resp:
                await resp.read()
                status = resp.status
            t_ack = time.perf_counter()
            t_reply = t_ack
            if answers:
                try:
                    t_reply = await asyncio.wait_for(answered, 10)
                except TimeoutError:
                    errors += 1
                    continue
            waiting.pop(rid, None)
            if t0 < measure_from:
                continue
            errors += status != 200
            acks.append((t_ack - t0) * 1000)
            replies.append((t_reply - t0) * 1000)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session, n) for n in range(concurrency)))
    await runner.cleanup()
    return {
        "commands": len(acks),
        "errors": errors,
        "per_s": round(len(acks) / seconds, 1),
        "ack_p50_ms": percentile(acks, 0.50),
        "ack_p99_ms": percentile(acks, 0.99),
        "ack_max_ms": max(acks) if acks else float("nan"),
        "answer_p50_ms": percentile(replies, 0.50),
        "answer_p99_ms": percentile(replies, 0.99),
    }


class _ResponseUrl:
    """Our response_url endpoint: notes when each command's reply arrived."""

    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.port = 0
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/r/{rid}", self.reply)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def reply(self, request: web.Request) -> web.Response:
        await request.read()
        fut = self.waiting.pop(request.match_info["rid"], None)
        if fut is not None and not fut.done():
            fut.set_result(time.perf_counter())
        return web.Response(text="ok")

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def _command(rid: str, rport: int) -> str:
    return urlencode(
        {
            "team_id": TEAM,
            "channel_id": CHANNEL,
            "user_id": USER,
            "command": "/phasegate",
            "text": "status",
            "response_url": f"http://127.0.0.1:{rport}/r/{rid}",
            "trigger_id": f"t{rid}",
        }
    )


async def open_loop(
    port: int, *, rate: float, seconds: float, give_up_s: float = 10.0, seed: int = 15
) -> dict[str, Any]:
    """Send commands at `rate` per second on average (exponential gaps: Poisson arrivals) for `seconds`, never
    waiting for earlier ones; a command not acked or answered within `give_up_s` counts as an error."""
    url = f"http://127.0.0.1:{port}/slack/events"
    replies = _ResponseUrl()
    await replies.start()
    acks: list[float] = []
    answers: list[float] = []
    errors = 0
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()

    async def one(session: aiohttp.ClientSession, rid: str) -> None:
        nonlocal errors
        answered: asyncio.Future[float] = loop.create_future()
        replies.waiting[rid] = answered
        body = _command(rid, replies.port)
        t0 = time.perf_counter()
        try:
            async with session.post(url, data=body.encode(), headers=signed(body)) as resp:
                await resp.read()
                ok = resp.status == 200
            t_ack = time.perf_counter()
            t_answer = await asyncio.wait_for(answered, max(give_up_s - (t_ack - t0), 0.001))
        except (TimeoutError, aiohttp.ClientError):
            errors += 1
            replies.waiting.pop(rid, None)
            return
        errors += not ok
        acks.append((t_ack - t0) * 1000)
        answers.append((t_answer - t0) * 1000)

    # warm-up outside the measurement (connections, Bolt's one-time auth.test)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=give_up_s)) as session:
        await asyncio.gather(*(one(session, f"w{i}") for i in range(3)))
        acks.clear()
        answers.clear()
        errors = 0
        tasks = []
        start = time.perf_counter()
        at = start
        n = 0
        while True:
            at += rng.expovariate(rate)
            if at - start > seconds:
                break
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            n += 1
            tasks.append(asyncio.create_task(one(session, f"o{n}")))
        sent_s = time.perf_counter() - start
        await asyncio.gather(*tasks)
    await replies.stop()
    return {
        "offered_per_s": rate,
        "sent": n,
        "sent_per_s": round(n / sent_s, 1),
        "errors": errors,
        "ack_p50_ms": percentile(acks, 0.50),
        "ack_p99_ms": percentile(acks, 0.99),
        "answer_p50_ms": percentile(answers, 0.50),
        "answer_p99_ms": percentile(answers, 0.99),
    }


def sustained(rows: list[dict[str, Any]]) -> float:
    """The highest offered rate answered with p99 < 1 s, no errors (0 if none)."""
    ok = [r["offered_per_s"] for r in rows if r["errors"] == 0 and r["answer_p99_ms"] < 1000]
    return max(ok, default=0.0)


OPEN_GOALS = {"answer_p99_ms@50": ("<=", 150.0), "ack_p99_ratio@50": ("<=", 1.2)}
# Memory goals are checked on a real `phasegate serve` (bench/memory.py). This server also holds the fake Slack and
# ran Alembic in-process, so its figures are noted here (bench_server_*) without a goal.


def run(
    *, rates: tuple[float, ...], seconds: float, closed_seconds: float, concurrency: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each app started once: its idle RSS, the closed loop, then the open-loop rates (RSS noted after 50/s and
    after the highest rate).
    Writes ack_latency_open.json and ack_latency.json (closed loop); returns both results."""
    open_rows: list[dict[str, Any]] = []
    closed_rows: list[dict[str, Any]] = []
    memory: dict[str, float] = {}
    for which in ("phasegate", "bare"):
        proc, port, _fake = start(which)
        try:
            time.sleep(0.5)
            if which == "phasegate":
                memory["bench_server_rss_idle_mib"] = round(rss_kib(proc.pid) / 1024, 1)
            # The closed loop first: an app left overloaded by the highest open-loop rate would spoil it.
            closed = asyncio.run(load(port, concurrency=concurrency, seconds=closed_seconds, answers=True))
            closed_rows.append({"app": which, **closed})
            for rate in rates:
                open_rows.append({"app": which, **asyncio.run(open_loop(port, rate=rate, seconds=seconds))})
                if which == "phasegate" and rate <= 50:
                    memory["bench_server_rss_after_50_per_s_mib"] = round(rss_kib(proc.pid) / 1024, 1)  # up to 50/s: sized load
            if which == "phasegate":
                memory["bench_server_rss_after_overload_mib"] = round(rss_kib(proc.pid) / 1024, 1)  # after the highest rate
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    at = {(r["app"], r["offered_per_s"]): r for r in open_rows}
    extra: dict[str, Any] = {
        "seconds_per_rate": seconds,
        "sustained_per_s_phasegate": sustained([r for r in open_rows if r["app"] == "phasegate"]),
        "sustained_per_s_bare": sustained([r for r in open_rows if r["app"] == "bare"]),
        **memory,
    }
    if ("phasegate", 50) in at and ("bare", 50) in at:
        extra["answer_p99_ms@50"] = at[("phasegate", 50)]["answer_p99_ms"]
        extra["ack_p99_ratio@50"] = round(at[("phasegate", 50)]["ack_p99_ms"] / at[("bare", 50)]["ack_p99_ms"], 2)
    opened = report("ack_latency_open", open_rows, extra, goals=OPEN_GOALS)
    ratio = (
        closed_rows[0]["ack_p99_ms"] / closed_rows[1]["ack_p99_ms"] if closed_rows[1]["ack_p99_ms"] else float("nan")
    )
    closed_result = report(
        "ack_latency",
        closed_rows,
        {
            "concurrency": concurrency,
            "seconds_each": closed_seconds,
            "ack_p99_ratio_phasegate_over_bare_bolt": round(ratio, 2),
        },
    )
    return opened, closed_result


def main(*, quick: bool = False) -> dict[str, Any]:
    """Both tables; returns the open-loop one (the closed-loop one is written as ack_latency.json)."""
    if quick:
        return run(rates=(10.0,), seconds=1.0, closed_seconds=0.5, concurrency=5)[0]
    return run(rates=(10.0, 50.0, 200.0), seconds=10.0, closed_seconds=15.0, concurrency=50)[0]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    main(quick=ap.parse_args().quick)
