"""The bot's GitHub sync (PyGithub gateway) through the oracle's validating proxy, against the fake GitHub.

Run from /work/main; the script starts the fake itself (port 8090, writing the proxy's address into URLs):

    /work/shared/oracle/oracle.py --github-upstream http://127.0.0.1:8090 --github-port 8100 \
        --slack-upstream http://127.0.0.1:8091 -- .venv/bin/python -m tests.bot.sync.oracle_sync_flow

It runs a dry run, a full sync, an unchanged re-sync (all 304), changes on both sides, a webhook-less poll,
a milestone adopted by title, a crash between GitHub's create and our database write, an iterate, and
decision records (branch, file and pull request made once although the create's answer is lost; a retried
sync writes nothing; a superseding decision's record updates the first one). It exits non-zero when the
bot's result is wrong; the oracle adds exit 3 for any request or response that GitHub's published
description does not allow.

`FAKE_GITHUB_URL` moves the fake (default http://127.0.0.1:8090) so that runs side by side do not collide.
A response the oracle refuses reaches the bot as Prism's 500, which the sync retries with backoff: each
sync here waits at most a minute and then names what is still queued and why, instead of waiting out
`sync.run`'s half hour.

GitHub's description lists no 304 on the list endpoints we read conditionally, so run it against the copy
with 304 added there (tests/fakes/oracle_github_spec.py says why; nothing else differs):

    .venv/bin/python -m tests.fakes.oracle_github_spec /tmp/github_bot_subset_304.json
    /work/shared/oracle/oracle.py --github-spec /tmp/github_bot_subset_304.json \
        --github-upstream http://127.0.0.1:8090 --github-port 8100 -- .venv/bin/python -m tests.bot.sync.oracle_sync_flow

`--no-conditional` sends no If-None-Match: GitHub answers conditional list reads with 304 (that is what
makes an unchanged re-sync free), but its published description lists no 304 for the list endpoints
(labels, issues, milestones), so the oracle reports each such 304. Without conditional requests the
traffic is otherwise identical and must show no violation at all.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import requests
from github import Auth
from sqlmodel import select

from bot.clock import SystemClock
from bot.db.migrate import upgrade
from bot.db.models import GitHubIssue, Member, OutboxItem, PhaseRecord
from bot.db.session import Database
from bot.github.gateway import GhPull, PyGithubGateway, Transient
from bot.messaging import RecordingMessenger
from bot.process import Outcome, Phase
from bot.services import Actor, Services
from bot.services.tasks import new_task
from bot.sync.desired import task_id_in
from bot.sync.plan import render_plan_text
from bot.sync.service import SyncService
from tests.bot.sync.test_exactly_once import DiesAfterCreate, Killed
from tests.bot.sync.test_records import decide, enable

REPO = "acme/genres"
FAKE = os.environ.get("FAKE_GITHUB_URL", "http://127.0.0.1:8090")
LEAD = Actor("T0RACLE01", "ULEAD")


def stats() -> dict[str, Any]:
    data: dict[str, Any] = requests.get(f"{FAKE}/_fake/stats", timeout=5).json()
    return data


def state() -> dict[str, Any]:
    data: dict[str, Any] = requests.get(f"{FAKE}/_fake/state", timeout=5).json()[REPO]
    return data


def pulls() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = requests.get(
        f"{FAKE}/repos/{REPO}/pulls", params={"state": "all"}, headers={"Authorization": "token t"}, timeout=5
    ).json()
    return data


def file_on(branch: str, path: str) -> str | None:
    reply = requests.get(
        f"{FAKE}/repos/{REPO}/contents/{path}", params={"ref": branch}, headers={"Authorization": "token t"}, timeout=5
    )
    return base64.b64decode(reply.json()["content"]).decode() if reply.status_code == 200 else None


def start_fake() -> subprocess.Popen[bytes] | None:
    try:
        requests.get(f"{FAKE}/_fake/stats", timeout=1)
        return None  # already running
    except requests.RequestException:
        pass
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.github",
            "--port",
            FAKE.rsplit(":", 1)[1],
            "--public-url",
            os.environ["ORACLE_GITHUB_URL"],
        ],
    )
    for _ in range(100):
        try:
            requests.get(f"{FAKE}/_fake/stats", timeout=1)
            return proc
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit("the fake GitHub did not start")


def human_post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    requests.post(url, json=body, headers=headers, timeout=5).raise_for_status()


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"oracle sync flow: FAILED: {what}")
    print(f"  ok: {what}", file=sys.stderr)


CONDITIONAL = "--no-conditional" not in sys.argv


class LosesPullAnswer(PyGithubGateway):
    """GitHub opens the pull request, then its answer is lost (a timeout, a reset connection): once."""

    lost = 0

    async def create_pull(self, repo: str, *, title: str, body: str, head: str, base: str) -> GhPull:
        pull = await super().create_pull(repo, title=title, body=body, head=head, base=base)
        if LosesPullAnswer.lost == 0:
            LosesPullAnswer.lost += 1
            raise Transient(f"POST /repos/{repo}/pulls: ReadTimeout (the pull request was made)")
        return pull


def gateway(cls: type[PyGithubGateway] = PyGithubGateway) -> PyGithubGateway:
    return cls(auth=Auth.Token("oracle-token"), base_url=os.environ["ORACLE_GITHUB_URL"], conditional=CONDITIONAL)


def service(db: Database, gw: PyGithubGateway) -> SyncService:
    # The standalone fake runs on real time and enforces no secondary limit here: pace loosely.
    return SyncService(db, SystemClock(), gw, RecordingMessenger(), writes_per_minute=6000, writes_per_hour=60000)


async def run(sync: SyncService, pid: int, what: str, *, expect_retry: bool = False) -> None:
    """A sync that must finish: a request the oracle refuses (a 500 in its place) is retried with backoff,
    so the wait is bounded and whatever is still queued is named instead of waiting half an hour."""
    report = await sync.run(actor=LEAD, project_id=pid, max_wait=60.0 if expect_retry else 20.0)
    if report.pending or report.failing:
        async with sync.db.session() as s:
            left = (
                await s.execute(select(OutboxItem).where(OutboxItem.project_id == pid, OutboxItem.status != "done"))
            ).scalars()
            for item in left:
                print(f"  still queued: {item.kind} {item.ref}: {item.last_error}", file=sys.stderr)
    check(report.pending == report.failing == 0, f"{what}: nothing left queued ({report.counts})")


async def flow(db: Database) -> None:
    services = Services.build(db, SystemClock())
    project = await services.projects.create(actor=LEAD, name="genres", channel_id="C1", repo=REPO)
    pid = project.id
    assert pid is not None
    async with db.session() as s:
        s.add(Member(team_id=LEAD.team_id, user_id="UANA", display_name="Ana", github_login="ana-gh"))
        s.add(Member(team_id=LEAD.team_id, user_id="UBOB", display_name="Bob", github_login="bob-gh"))
        record = (await s.execute(select(PhaseRecord).where(PhaseRecord.project_id == pid))).scalars().first()
        assert record is not None
        p = await services.tasks.project_by_id(s, LEAD, pid)
        for i in range(12):
            await new_task(
                s,
                project=p,
                actor=LEAD,
                now=services.clock.now(),
                title=f"Task {i}",
                phase=list(Phase)[i % 5],
                role="ml-engineer",
                assignee=("UANA", "UBOB", None)[i % 3],
            )
    async with db.session() as s:
        rec = await s.get(PhaseRecord, record.id)
        assert rec is not None
        rec.target_date = date(2026, 4, 30)

    # A person already made a milestone with one of our titles (closed, even): it has no marker of ours, so it is
    # left alone and ours is made as "genres · Define (Phasegate)".
    human_post(
        f"{os.environ['ORACLE_GITHUB_URL']}/repos/{REPO}/milestones",
        {"title": "genres · Define", "state": "closed"},
        headers={"Authorization": "token human"},
    )

    print("dry run", file=sys.stderr)
    sync = service(db, gateway())
    before = stats()["writes"]
    plan = await sync.plan(actor=LEAD, project_id=pid)
    print(render_plan_text(plan, limit=3), file=sys.stderr)
    check(stats()["writes"] == before, "a dry run writes nothing")
    check(len(plan.of("issue", "create")) == 14 and len(plan.of("milestone", "create")) == 5, "the plan")

    print("crash between GitHub's create and our write, then restart", file=sys.stderr)
    crashing = service(db, gateway(DiesAfterCreate))
    try:
        await crashing.run(actor=LEAD, project_id=pid)
        check(False, "the crash happened")
    except Killed:
        pass  # the process 'died' right after GitHub created the issue
    await crashing.aclose()

    print("full sync", file=sys.stderr)
    before = stats()
    report = await sync.run(actor=LEAD, project_id=pid)
    after = stats()
    print(f"  {report}", file=sys.stderr)
    st = state()
    check(len(st["milestones"]) == 6, "5 milestones of ours beside the person's")
    check(len(st["issues"]) == 14, "one issue per task, the crashed one adopted")
    check(
        after["by_route"].get("GET /search/issues", 0) > before["by_route"].get("GET /search/issues", 0),
        "the crashed create was looked up by its marker",
    )
    check(all(i["milestone"] for i in st["issues"]), "every issue in a milestone")
    assigned = {i["title"]: [a["login"] for a in i["assignees"]] for i in st["issues"]}
    check(assigned["Task 0"] == ["ana-gh"] and assigned["Task 1"] == [], "assignable assigned, others not")

    print("unchanged re-sync", file=sys.stderr)
    before = stats()
    await sync.run(actor=LEAD, project_id=pid)
    after = stats()
    check(after["writes"] == before["writes"], "re-sync: 0 writes")
    if CONDITIONAL:
        check(
            after["counted"] == before["counted"],
            f"re-sync: 0 counted ({after['not_modified'] - before['not_modified']} reads answered 304)",
        )

    print("changes on both sides, and a poll", file=sys.stderr)
    number = st["issues"][-1]["number"]
    human_post(f"{FAKE}/_fake/issues/{REPO}/{number}", {"state": "closed", "by": "ana-gh"})
    closed_in_github = task_id_in(st["issues"][-1]["body"])
    tasks = await services.tasks.list(actor=LEAD, project_id=pid)
    await services.tasks.set_status(actor=LEAD, project_id=pid, number=tasks[0].number, status="closed")
    changed = await sync.poll(project_id=pid)
    check(changed == 1, "the poll applied the issue closed in GitHub")
    await sync.run(actor=LEAD, project_id=pid)
    by_number = {i["number"]: i for i in state()["issues"]}
    async with db.session() as s:
        row = await s.get(GitHubIssue, tasks[0].id)
        assert row is not None and row.number is not None
    check(by_number[row.number]["state"] == "closed", "the task closed in Slack closed its issue")
    await services.gates.advance(actor=LEAD, project_id=pid, override_reason="oracle flow")
    await sync.run(actor=LEAD, project_id=pid)
    milestones = {m["title"]: m for m in state()["milestones"]}
    check(milestones["genres · Discovery"]["state"] == "closed", "the ended phase's milestone is closed")
    check(milestones["genres · Discovery"]["due_on"].startswith("2026-04-30"), "due date kept its day")
    check(await sync.poll(project_id=pid) == 0, "a poll with nothing new changes nothing")
    tasks = await services.tasks.list(actor=LEAD, project_id=pid)
    status = {t.id: t.status for t in tasks}
    check(status[closed_in_github or ""] == "closed" and status[tasks[0].id] == "closed", "both sides' changes kept")

    print("iterate: Deliver's open tasks closed as not planned, each with one comment", file=sys.stderr)
    for _ in range(2):  # Define → Develop → Deliver
        await services.gates.advance(actor=LEAD, project_id=pid, override_reason="oracle flow")
    await sync.run(actor=LEAD, project_id=pid)
    result = await services.gates.advance(actor=LEAD, project_id=pid, outcome=Outcome.ITERATE)
    await sync.run(actor=LEAD, project_id=pid)
    await sync.run(actor=LEAD, project_id=pid)
    st = state()
    superseded = [i for i in st["issues"] if i["state_reason"] == "not_planned"]
    check(len(superseded) == len(result.superseded) > 0, f"{len(superseded)} issues closed as not planned")
    per_issue = [
        sum(c["issue_url"].endswith(f"/issues/{i['number']}") for c in st["comments"]) for i in superseded
    ]
    check(per_issue == [1] * len(superseded), "one superseded comment per issue")

    print("decision records: one pull request per decision, made once, updated when superseded", file=sys.stderr)
    await enable(db, pid, lead=LEAD)
    await decide(services, pid, iteration=1, lead=LEAD)
    # GitHub opens the pull request but its answer is lost: the retry finds it by head and marker. (Lost on our
    # side: a connection the fake drops would be reported by the oracle as a failed request.)
    losing = service(db, gateway(LosesPullAnswer))
    await run(losing, pid, "the record's sync, its create answer lost", expect_retry=True)
    await losing.aclose()
    check(LosesPullAnswer.lost == 1, "the pull request's answer was lost once")
    [first] = pulls()
    check(first["head"]["ref"] == "phasegate/decision-genres-1", "exactly one pull request, on its own branch")
    path = "docs/decisions/0001-cnn-on-log-mel-spectrograms.md"
    check("## Decision" in (file_on(first["head"]["ref"], path) or ""), "the record's file on the branch")
    before = stats()
    await run(sync, pid, "a retried sync")
    check(len(pulls()) == 1, "a retried sync makes no second pull request")
    check(stats()["writes"] == before["writes"], "a retried sync writes nothing")
    await decide(services, pid, iteration=2, title="Audio spectrogram transformer v2", lead=LEAD)
    await run(sync, pid, "the superseding record's sync")
    first, second = sorted(pulls(), key=lambda p: int(p["number"]))
    check(first["title"].startswith("Decision record 0001 (superseded by 0002)"), "the first record's title")
    check(second["html_url"] in first["body"], "the first record's pull request links the second")
    check("Superseded" in (file_on(first["head"]["ref"], path) or ""), "the first record's file says superseded")
    before = stats()
    await run(sync, pid, "a retried sync after the supersede")
    check(len(pulls()) == 2 and stats()["writes"] == before["writes"], "still two pull requests, no write")
    await sync.aclose()


def main() -> None:
    proc = start_fake()
    try:
        requests.post(f"{FAKE}/_fake/reset", timeout=5).raise_for_status()
        requests.post(
            f"{FAKE}/_fake/repos", json={"full_name": REPO, "collaborators": ["ana-gh", "lead-gh"]}, timeout=5
        ).raise_for_status()
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'oracle.db'}"
            upgrade(url)
            db = Database(url)

            async def go() -> None:
                try:
                    await flow(db)
                finally:
                    await db.dispose()

            asyncio.run(go())
        final = stats()
        print(
            f"oracle sync flow: all checks passed; fake stats: requests={final['requests']} "
            f"writes={final['writes']} counted={final['counted']} not_modified={final['not_modified']}",
            file=sys.stderr,
        )
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
