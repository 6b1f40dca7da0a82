"""Ack latency: 50 concurrent signed `/phasegate status` requests against the real app and a bare Bolt app."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
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


def start(which: str) -> tuple[subprocess.Popen[str], int, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.serve", which, "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
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


def run(seconds: float = 30.0, concurrency: int = 50) -> dict[str, Any]:
    rows = []
    memory: dict[str, int] = {}
    for which in ("phasegate", "bare"):
        proc, port, _fake = start(which)
        try:
            time.sleep(0.5)
            if which == "phasegate":
                memory["rss_idle_kib"] = rss_kib(proc.pid)
            result = asyncio.run(load(port, concurrency=concurrency, seconds=seconds, answers=which == "phasegate"))
            if which == "phasegate":
                memory["rss_after_ack_bench_kib"] = rss_kib(proc.pid)
            rows.append({"app": which, **result})
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    ratio = rows[0]["ack_p99_ms"] / rows[1]["ack_p99_ms"] if rows[1]["ack_p99_ms"] else float("nan")
    return report(
        "ack_latency",
        rows,
        {
            "concurrency": concurrency,
            "seconds_each": seconds,
            "ack_p99_ratio_phasegate_over_bare_bolt": round(ratio, 2),
            **memory,
        },
    )


def main(*, quick: bool = False) -> dict[str, Any]:
    return run(seconds=1.0 if quick else 30.0, concurrency=10 if quick else 50)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--concurrency", type=int, default=50)
    a = ap.parse_args()
    run(a.seconds, a.concurrency)
