"""Memory over a simulated day: one Phasegate process, 100 projects, 24 hours of traffic on a compressed clock.

The bot is its own process (`python -m bench.memory_day --serve`): the real app (`create_app`: Bolt, services,
reminder scheduler, outbox sender, GitHub sync worker, leader election) on a SQLite file (PostgreSQL with
`--postgres`), migrated apart as `phasegate serve` does, serving HTTP, talking to the fake Slack and the fake
GitHub in processes of their own. Its clock is compressed: frozen while the projects are set up, then running
`factor` times faster than the wall clock (a simulated hour in `hour_wall` seconds); a small task wakes the
scheduler every 0.1 s of wall time, since its own wake-up is computed in (simulated) seconds. The GitHub poll
interval is divided by the same factor (at least 5 s), so a simulated day polls about as often as a real one.
The process adds two routes of its own: `POST /_bench/clock` (run the clock to a simulated time) and
`GET /_bench/sample` (a full `gc.collect()`, then VmRSS, Python's object count, and with `--tracemalloc` —
tracing from the end of the warm-up on — the memory allocated since and still held, and the lines holding most).

This process drives it as Slack would: signed slash commands (answers to the fake Slack's response URLs),
App Home opens (Events API), from 100 projects with 4 people each — setup with the clock frozen (init, roles,
brief, baseline, advance to Develop, a weekly digest slot on the simulated Monday, so every project's digest
falls in the run), then every simulated hour, per project, `status` or an App Home open (alternately); a quarter
of the projects schedule a model-decision meeting 6 h ahead (proposals due 3 h before it), whose reminder
ladder, readiness verdict (an escalation when proposals are missing) and agenda fire on the scheduler; one
proposal for every meeting, a second for half of them; a decision after the meeting (creating tasks); a third
of the projects list proposals and meetings; `task add` and `sync` on the fifth with a repository in the fake
GitHub (issues written, then polled).

The clock stops at the end of each simulated hour until that hour's traffic is done and RSS has been sampled
(after gc), so a slow machine stretches the wall time, never the simulated one. The run is a warm-up (WARMUP
simulated hours: one whole meeting cycle, so every kind of work has run once and its code is loaded), then 24
simulated hours; the figure is the growth of RSS from the end of the warm-up to the end (goal: at most 10 %)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import re
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bench.common import fresh_pg_schema, report, rss_kib
from tests.handlers.harness import sign
from tests.resilience.procs import (
    SIGNING_SECRET,
    FakeSlackProc,
    Proc,
    Processes,
    _bot_ready,
    _fresh_log,
    bot_env,
    http_json,
    spawn,
)

GOALS = {"growth_pct": ("<=", 10.0)}
TEAM = "T0BENCHDAY"
START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)  # a Monday: every project's weekly digest falls in the day
# Simulated hours before the measured day: one whole meeting cycle (scheduled, proposals, verdict, agenda,
# decision), so every kind of work has run once and its code is loaded before the figure after warm-up is taken.
WARMUP = 8
WAKE_EVERY = 0.1
TRACE_FRAMES = 8  # frames kept per traced allocation (more is much slower)  # wall seconds between scheduler wake-ups in the bot process


# --------------------------------------------------------------------------- the bot process


class CompressedClock:
    """Simulated time: frozen at `start` until `run(factor, until)`, then `factor` simulated seconds per wall
    second up to `until`, where it stops until told to run again (so it never runs ahead of the traffic of the
    simulated hour it is in, however slow the machine); `pause()` freezes it where it stands."""

    def __init__(self, start: datetime, wall: Callable[[], float] = time.time) -> None:
        self.wall = wall
        self._at, self._wall, self.factor, self.until = start, wall(), 0.0, start

    def run(self, factor: float, until: datetime) -> None:
        self._at, self._wall, self.factor, self.until = self.now(), self.wall(), factor, until

    def pause(self) -> None:
        self.run(0.0, self.now())

    def now(self) -> datetime:
        return min(self._at + timedelta(seconds=(self.wall() - self._wall) * self.factor), max(self.until, self._at))


def serve(*, trace: bool, factor: float) -> None:
    """The bot: `phasegate serve --mode http` with the compressed clock and the two /_bench routes."""
    import logging

    from aiohttp import web

    import bot.app
    from bot.app import create_app, run_forever
    from bot.config import load_settings
    from bot.db.migrate import upgrade_in_child
    from bot.malloc import limit_arenas

    limit_arenas()  # as `phasegate serve` does
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    why = upgrade_in_child(settings.database_url)
    if why:
        raise SystemExit(f"migrations failed: {why}")
    clock = CompressedClock(START)
    bot.app.POLL_INTERVAL = max(bot.app.POLL_INTERVAL / factor, 5.0)  # a simulated day polls as a real one
    app = create_app(settings, clock=clock)
    baseline: list[tracemalloc.Snapshot] = []

    waker: list[asyncio.Task[None]] = []

    async def run_clock(request: web.Request) -> web.Response:
        """`{"until": <ISO time>}`: run the clock at `factor` up to then."""
        until = datetime.fromisoformat((await request.json())["until"])
        clock.run(factor, until)
        if not waker:
            waker.append(asyncio.get_running_loop().create_task(_wake(app), name="bench-waker"))
            app.shutdown.insert(0, _cancel(waker[0]))
        return web.json_response({"now": clock.now().isoformat(), "factor": factor})

    async def sample(request: web.Request) -> web.Response:
        """Taken with the simulated clock stopped, so a slow snapshot costs no simulated time."""
        until = clock.until
        clock.pause()
        try:
            return web.json_response(_sample(request.query.get("baseline") == "1"))
        finally:
            clock.run(factor, until)

    def _sample(rebase: bool) -> dict[str, Any]:
        gc.collect()
        out: dict[str, Any] = {
            "rss_kib": rss_kib(os.getpid()),
            "objects": len(gc.get_objects()),
            "now": clock.now().isoformat(),
        }
        if trace and rebase and not tracemalloc.is_tracing():
            tracemalloc.start(
                TRACE_FRAMES
            )  # from the end of the warm-up: what is traced from here on is what it kept since
        if tracemalloc.is_tracing():
            snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            out["traced_kib"] = round(sum(s.size for s in snap.statistics("filename")) / 1024)
            if rebase or not baseline:
                baseline[:] = [snap]
            else:
                top = snap.compare_to(baseline[0], "traceback")[:8]
                out["top_growth"] = [
                    {
                        "kib": round(s.size_diff / 1024, 1),
                        "count": s.count_diff,
                        "where": [f"{f.filename}:{f.lineno}" for f in s.traceback],
                    }
                    for s in top
                ]
        return out

    app.extra_routes += [("POST", "/_bench/clock", run_clock), ("GET", "/_bench/sample", sample)]
    asyncio.run(run_forever(app, "http"))


async def _wake(app: Any) -> None:
    while True:
        await asyncio.sleep(WAKE_EVERY)
        app.core.scheduler.wake()


def _cancel(task: asyncio.Task[None]) -> Any:
    async def stop() -> None:
        task.cancel()

    return stop


# --------------------------------------------------------------------------- the driver (this process)


@dataclass
class Project:
    n: int
    github: bool
    lead: str = ""
    biz: str = ""
    ml: tuple[str, str] = ("", "")
    channel: str = ""
    meetings: dict[int, datetime] = field(default_factory=dict)  # meeting id -> its start (simulated)
    proposals: dict[int, list[int]] = field(default_factory=dict)  # meeting id -> proposal ids

    def __post_init__(self) -> None:
        p = f"{self.n:03d}"
        self.lead, self.biz, self.ml = f"U{p}LEAD", f"U{p}BIZZ", (f"U{p}MLA", f"U{p}MLB")
        self.channel = f"C{p}PROJ"

    @property
    def name(self) -> str:
        return f"proj-{self.n:03d}"

    @property
    def repo(self) -> str:
        return f"acme/{self.name}"


class Driver:
    """Sends what Slack would send; reads answers back from the fake Slack's response URLs."""

    def __init__(self, bot_url: str, slack: FakeSlackProc, http: aiohttp.ClientSession) -> None:
        self.bot_url, self.slack, self.http = bot_url, slack, http
        self.sent = 0
        self.errors = 0
        self.refused: list[str] = []
        self._seq = 0

    async def _post(self, body: str, content_type: str) -> None:
        headers = {"Content-Type": content_type, **sign(body, secret=SIGNING_SECRET)}
        async with self.http.post(f"{self.bot_url}/slack/events", data=body.encode(), headers=headers) as resp:
            await resp.read()
            self.sent += 1
            self.errors += resp.status != 200

    async def _fake(self, method: str, what: str, **body: Any) -> Any:
        url = f"{self.slack.url}/_fake/{what}"
        if method == "GET":
            async with self.http.get(url, params=body) as resp:
                return await resp.json()
        async with self.http.post(url, json=body) as resp:
            return await resp.json()

    async def command(self, p: Project, user: str, text: str, *, answer: bool = False) -> str:
        """A signed `/phasegate <text>` from `user` in the project's channel; with `answer`, its answer's text."""
        got = await self._fake("POST", "response_url", channel=p.channel, user=user)
        url: str = got["response_url"]
        self._seq += 1
        form = {
            "token": "legacy", "team_id": TEAM, "team_domain": "bench", "channel_id": p.channel,
            "channel_name": p.name, "user_id": user, "user_name": user.lower(), "command": "/phasegate",
            "text": text, "api_app_id": "A0BENCH01", "response_url": url, "trigger_id": f"tr{self._seq}",
        }  # fmt: skip
        await self._post(urlencode(form), "application/x-www-form-urlencoded")
        if not answer:
            return ""
        rid = url.rsplit("/", 1)[-1]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = await self._fake("GET", "responses", id=rid)
            if found:
                return json.dumps(found[-1])
            await asyncio.sleep(0.05)
        self.errors += 1
        return ""

    async def home_opened(self, user: str) -> None:
        self._seq += 1
        body = {
            "token": "legacy", "team_id": TEAM, "api_app_id": "A0BENCH01", "type": "event_callback",
            "event_id": f"Ev{self._seq:08d}", "event_time": int(time.time()),
            "event": {"type": "app_home_opened", "user": user, "channel": f"D{user}", "tab": "home"},
        }  # fmt: skip
        await self._post(json.dumps(body), "application/json")

    def refusal(self, what: str, text: str) -> None:
        if len(self.refused) < 5:
            self.refused.append(f"{what}: {text[:300]}")


def _mention(user: str) -> str:
    return f"<@{user}|{user.lower()}>"


async def setup(d: Driver, projects: list[Project]) -> None:
    """Each project through the real commands: Discovery → Define → Develop, roles, settings, a digest slot."""
    for p in projects:
        members = [p.lead, p.biz, *p.ml]
        for user in members:
            await d._fake("POST", "users", id=user, name=user.lower(), tz="UTC")
        await d._fake("POST", "channels", id=p.channel, name=p.name, members=members)

    async def one(p: Project) -> None:
        repo = f" repo={p.repo}" if p.github else ""
        digest = f"mon {p.n % 24:02d}:{(p.n * 7) % 60:02d}"
        steps = [
            (p.lead, f"init {p.name}{repo}", "Created"),
            (p.lead, f"role {_mention(p.biz)} business-owner", ""),
            (p.lead, f"role {_mention(p.ml[0])} ml-engineer", ""),
            (p.lead, f"role {_mention(p.ml[1])} ml-engineer", ""),
            (p.lead, f'settings deadline=3 digest="{digest}"', ""),
            (
                p.biz,
                'brief problem="Listeners skip mislabelled songs." criterion="skip rate < 20%; A/B test on 5%"',
                "",
            ),
            (p.biz, "brief ack", ""),
            (p.lead, "advance", "told"),
            (p.ml[0], "baseline metric=macro-F1 value=0.61 pipeline=https://ci.example.com/eval", ""),
            (p.lead, "advance", "told"),
        ]
        for user, text, expect in steps:  # one after the other: each answer before the next command
            answer = await d.command(p, user, text, answer=True)
            if expect not in answer or not answer:
                d.refusal(text.split(" ", 1)[0], answer)

    await _bounded([one(p) for p in projects], 8)


async def _bounded(coros: list[Any], limit: int) -> None:
    gate = asyncio.Semaphore(limit)

    async def run(c: Any) -> None:
        async with gate:
            await c

    await asyncio.gather(*(run(c) for c in coros))


def hour_actions(d: Driver, projects: list[Project], hour: int, now: datetime, rng: random.Random) -> list[Any]:
    """What people do in simulated hour `hour` (starting at `now`): a list of coroutine functions."""
    acts: list[Any] = []
    for p in projects:
        if (hour + p.n) % 2 == 0:  # every other hour `status`, the hours between an App Home open
            acts.append(lambda p=p: d.command(p, p.lead, "status"))
        else:
            acts.append(lambda p=p: d.home_opened(rng.choice([p.lead, p.biz, *p.ml])))
        if hour % 4 == p.n % 4:  # a model-decision meeting 6 h ahead, proposals due 3 h before it
            at = (now + timedelta(hours=6, minutes=p.n % 60)).strftime("%Y-%m-%dT%H:%M")
            attendees = ",".join(_mention(u) for u in p.ml)

            async def schedule(p: Project = p, at: str = at, attendees: str = attendees) -> None:
                text = await d.command(
                    p, p.lead, f"meeting schedule kind=model-decision at={at} attendees={attendees}", answer=True
                )
                found = re.search(r"Scheduled [^#\"]*#(\d+)", text)
                if found:
                    p.meetings[int(found[1])] = datetime.fromisoformat(at).replace(tzinfo=UTC)
                else:
                    d.refusal("meeting schedule", text)

            acts.append(schedule)
        for mid, starts in list(p.meetings.items()):
            ahead = starts - now
            for k, author in enumerate(p.ml):
                # A's proposal 5 h ahead; B's 4 h ahead for half the meetings (the others go unready: escalation)
                if timedelta(hours=5 - k) > ahead >= timedelta(hours=4 - k) and (k == 0 or mid % 2 == 0):

                    async def propose(p: Project = p, mid: int = mid, author: str = author, k: int = k) -> None:
                        family = ("cnn", "transformer")[k]
                        text = await d.command(
                            p, author,
                            f'propose meeting={mid} title="Approach {family} {mid}" approach={family} '
                            f'refs=arXiv:1609.0943{k},https://arxiv.org/abs/2104.0177{k} why="Fits short clips" '
                            f"benefit={3 + k} cost={2 + 3 * k} risk={1 + k}",
                            answer=True,
                        )  # fmt: skip
                        found = re.search(r"Proposal #(\d+)", text)
                        if found:
                            p.proposals.setdefault(mid, []).append(int(found[1]))
                        else:
                            d.refusal("propose", text)

                    acts.append(propose)
            if timedelta(hours=-1) >= ahead > timedelta(hours=-2) and p.proposals.get(mid):
                chosen = p.proposals[mid][0]

                async def decide(p: Project = p, mid: int = mid, chosen: int = chosen) -> None:
                    text = await d.command(
                        p, p.lead,
                        f'decide meeting={mid} proposal={chosen} rationale="Best value for its cost" '
                        f'tasks="Prototype it {_mention(p.ml[0])}; Feature cache {_mention(p.ml[1])}"',
                        answer=True,
                    )  # fmt: skip
                    if "ecision" not in text:
                        d.refusal("decide", text)

                acts.append(decide)
                del p.meetings[mid]
        if p.github and hour % 2 == p.n % 2:
            acts.append(lambda p=p, h=hour: d.command(p, p.lead, f'task add "Hour {h} follow-up" {_mention(p.biz)}'))
        if p.github and hour % 6 == p.n % 6:
            acts.append(lambda p=p: d.command(p, p.lead, "sync"))
        if hour % 3 == p.n % 3:
            acts.append(lambda p=p: d.command(p, rng.choice(p.ml), "proposals"))
            acts.append(lambda p=p: d.command(p, p.lead, "meeting list"))
    rng.shuffle(acts)
    return acts


async def sample(http: aiohttp.ClientSession, bot_url: str, **query: str) -> dict[str, Any]:
    async with http.get(f"{bot_url}/_bench/sample", params=query, timeout=aiohttp.ClientTimeout(total=120)) as r:
        data: dict[str, Any] = await r.json()
        return data


async def drive(
    bot: Proc,
    slack: FakeSlackProc,
    *,
    projects: int,
    github: int,
    warmup: int,
    hours: int,
    hour_wall: float,
    concurrency: int,
) -> dict[str, Any]:
    rng = random.Random(15)
    plan = [Project(n, github=n < github) for n in range(projects)]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        d = Driver(bot.url, slack, http)
        t_setup = time.perf_counter()
        await setup(d, plan)
        setup_s = time.perf_counter() - t_setup
        factor = 0.0
        hourly: list[dict[str, Any]] = []
        overrun = 0.0
        wall = 0.0
        for hour in range(warmup + hours):
            wall_start = time.time()  # the simulated clock stood still at the hour while the last sample was taken
            until = (START + timedelta(hours=hour + 1)).isoformat()
            factor = float(http_json("POST", f"{bot.url}/_bench/clock", {"until": until})["factor"])
            acts = hour_actions(d, plan, hour, START + timedelta(hours=hour), rng)
            gate = asyncio.Semaphore(concurrency)
            tasks = []
            for i, act in enumerate(acts):
                due = wall_start + hour_wall * 0.9 * i / max(len(acts), 1)  # spread over the hour (open loop)
                await asyncio.sleep(max(due - time.time(), 0))

                async def run(act: Any = act, gate: asyncio.Semaphore = gate) -> None:
                    async with gate:
                        await act()

                tasks.append(asyncio.create_task(run()))
            await asyncio.gather(*tasks)
            end = wall_start + hour_wall
            overrun = max(overrun, time.time() - end)
            await asyncio.sleep(max(end - time.time(), 0))
            wall += time.time() - wall_start
            s = await sample(http, bot.url, **({"baseline": "1"} if hour == warmup - 1 else {}))
            row = {
                "hour": hour,
                "rss_mib": round(s["rss_kib"] / 1024, 1),
                "objects": s["objects"],
                "actions": len(acts),
            }
            if "traced_kib" in s:
                row["traced_mib"] = round(s["traced_kib"] / 1024, 1)
            hourly.append({**row, "top_growth": s.get("top_growth")})
            print(
                f"  hour {hour:2d}{' (warm-up)' if hour < warmup else ''}  simulated {s['now'][:16]}  "
                f"rss {row['rss_mib']} MiB  objects {s['objects']}  {len(acts)} actions  sent {d.sent}",
                flush=True,
            )
            if "traced_kib" in s:
                print(f"    traced since the warm-up: {s['traced_kib']} KiB; most:")
            for g in (s.get("top_growth") or [])[:4]:
                print(f"      {g['kib']:+.1f} KiB  {g['count']:+d} blocks")
                for where in reversed(g["where"]):
                    print(f"          {where}")
    posts = slack.messages()
    kinds = Counter(" ".join(str(m.get("text") or "").split()[:2]) for m in posts)
    return {
        "hourly": hourly,
        "setup_s": round(setup_s, 1),
        "day_wall_s": round(wall, 1),
        "factor": factor,
        "requests": d.sent,
        "errors": d.errors,
        "refused": d.refused,
        "slack_messages": len(posts),
        "slack_messages_by_kind": dict(kinds.most_common(12)),
        "hour_overrun_max_s": round(max(overrun, 0.0), 1),
    }


def measure(
    procs: Processes, name: str, url: str, *, projects: int, warmup: int, hours: int, hour_wall: float, trace: bool
) -> dict[str, Any]:
    github_n = max(projects // 5, 1)
    gh = procs.fake_github(repos={f"acme/proj-{n:03d}": ["lead-gh"] for n in range(github_n)})
    slack = procs.fake_slack(team_id=TEAM)
    env = bot_env(
        database_url=url, slack_api_url=slack.api_url, github_api_url=f"{gh.url}/", PHASEGATE_LOG_LEVEL="WARNING"
    )
    factor = 3600.0 / hour_wall
    args = [sys.executable, "-m", "bench.memory_day", "--serve", "--factor", str(factor)]
    if trace:
        args.append("--tracemalloc")
    bot = spawn("phasegate (simulated day)", args, env, _fresh_log(procs.log_dir, "phasegate-day"),
                ready=_bot_ready, timeout=60, cls=Proc)  # fmt: skip
    procs.started.append(bot)
    try:
        run = asyncio.run(
            drive(
                bot,
                slack,
                projects=projects,
                github=github_n,
                warmup=warmup,
                hours=hours,
                hour_wall=hour_wall,
                concurrency=8,
            )
        )
        issues = sum(len(r["issues"]) for r in gh.state().values())
    finally:
        bot.stop()
        gh.stop()
        slack.stop()
    hourly = run.pop("hourly")
    first, warm, last = hourly[0]["rss_mib"], hourly[warmup - 1]["rss_mib"], hourly[-1]["rss_mib"]
    peak = max(h["rss_mib"] for h in hourly)
    row = {
        "config": name,
        "projects": projects,
        "sim_hours": hours,
        "warmup_hours": warmup,
        "rss_after_hour1_mib": first,
        "rss_after_warmup_mib": warm,
        "rss_end_mib": last,
        "rss_peak_mib": peak,
        "growth_pct": round((last - warm) / warm * 100, 1),
        "requests": run["requests"],
        "errors": run["errors"],
        "github_issues": issues,
        "slack_messages": run["slack_messages"],
        "day_wall_s": run["day_wall_s"],
    }
    return {"row": row, "hourly": hourly, **{k: v for k, v in run.items() if k not in row}}


def main(
    *,
    quick: bool = False,
    postgres: bool | None = None,
    sqlite: bool = True,
    trace: bool = False,
    projects: int | None = None,
    hours: int | None = None,
) -> dict[str, Any]:
    sizes = (4, 1, 2, 2.0) if quick else (100, WARMUP, 24, 8.0)
    projects, warmup, hours, hour_wall = projects or sizes[0], sizes[1], hours or sizes[2], sizes[3]
    tmp = Path(tempfile.mkdtemp(prefix="phasegate-memory-day-"))
    configs = [("sqlite", f"sqlite:///{tmp}/day.db")] if sqlite else []
    pg = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("TEST_POSTGRES_URL")
    if pg and (postgres if postgres is not None else not quick):
        configs.append(("postgresql", fresh_pg_schema(pg, "phasegate_bench_memory_day")))
    rows, details = [], {}
    with Processes(tmp) as procs:
        for name, url in configs:
            got = measure(
                procs, name, url, projects=projects, warmup=warmup, hours=hours, hour_wall=hour_wall, trace=trace
            )
            rows.append(got.pop("row"))
            details[name] = got
    extra = {
        "hour_wall_s": hour_wall,
        "rss_per_hour_mib": {name: [h["rss_mib"] for h in got["hourly"]] for name, got in details.items()},
        "setup_s": {name: got["setup_s"] for name, got in details.items()},
        "hour_overrun_max_s": {name: got["hour_overrun_max_s"] for name, got in details.items()},
        "slack_messages_by_kind": {name: got["slack_messages_by_kind"] for name, got in details.items()},
    }
    result = report("memory_day", rows, extra, goals=GOALS, keys=["config", "projects", "sim_hours"])
    for name, got in details.items():
        for what in got["refused"]:
            print(f"  {name}: unexpected answer to {what}")
        growth = got["hourly"][-1].get("top_growth")
        if growth:
            print(f"  {name}: tracemalloc, most growth since the warm-up hour:")
            for g in growth:
                print(
                    f"    {g['kib']:+.1f} KiB  {g['count']:+d} blocks  {' / '.join(x.strip() for x in g['where'][-2:])}"
                )
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="4 projects, 2 simulated hours of 2 s each")
    ap.add_argument(
        "--postgres",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also on PostgreSQL (BENCH_POSTGRES_URL or TEST_POSTGRES_URL); default: yes unless --quick",
    )
    ap.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    ap.add_argument(
        "--tracemalloc",
        action="store_true",
        help="trace allocations after the warm-up (slower; RSS then includes the traces)",
    )
    ap.add_argument("--projects", type=int, help="instead of 100")
    ap.add_argument("--hours", type=int, help="measured simulated hours after the warm-up, instead of 24")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the bot process
    ap.add_argument("--factor", type=float, default=360.0, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        serve(trace=a.tracemalloc, factor=a.factor)
    else:
        main(
            quick=a.quick,
            postgres=a.postgres,
            sqlite=not a.no_sqlite,
            trace=a.tracemalloc,
            projects=a.projects,
            hours=a.hours,
        )
