"""`phasegate report` and `audit export`: a whole cycle's report against its JSON Schema, markdown, HTML, CSV."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sqlmodel import col, select

from bot.commands import Context
from bot.config import Settings
from bot.db.models import GitHubIssue, Task
from bot.db.session import Database
from bot.demo import SCRIPT, START, run_demo
from bot.messaging import RecordingMessenger
from bot.runtime import open_shell
from bot.services import Services
from bot.services.project_report import (
    AUDIT_CSV_COLUMNS,
    ProjectReport,
    ProjectReportService,
    cli_report,
    criterion_met,
    render_audit_csv,
    render_html,
    render_json,
    render_markdown,
)
from bot.shell import TEAM
from bot.shell import run as run_shell
from tests.bot.commands.test_audit import busy
from tests.bot.commands.test_audit import ctx as audit_ctx
from tests.bot.rituals.helpers import CHANNEL, LEAD, block_text, new_team, run
from tests.conftest import ROOT, actor

SCHEMA = json.loads((ROOT / "docs" / "report.schema.json").read_text())
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def schema_errors(document: Any) -> list[str]:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(document)]


async def whole_cycle(database_url: str) -> tuple[ProjectReport, RecordingMessenger]:
    """The demo's project (Discovery → … → iterate → … → Deployment done), two tasks synced to GitHub."""
    settings = Settings(DATABASE_URL=database_url)
    shell, close = await open_shell(settings, start=START, out=io.StringIO())
    shell.files_dir = None  # charts stay in memory: a PostgreSQL database has no folder to write them beside
    try:
        assert await run_shell(shell, io.StringIO(SCRIPT), interactive=False) == 0
        db = shell.services.db
        async with db.session() as s:  # what a sync leaves behind for two of the decision's tasks
            tasks = list((await s.execute(select(Task).where(col(Task.number).in_([7, 8])))).scalars())
            for n, task in enumerate(sorted(tasks, key=lambda t: t.number), start=41):
                s.add(
                    GitHubIssue(
                        task_id=task.id,
                        team_id=task.team_id,
                        project_id=task.project_id,
                        number=n,
                        html_url=f"https://github.com/acme/genres/issues/{n}",
                        state="closed" if n == 41 else "open",
                    )
                )
        project = (await shell.services.projects.list_all(team_id=TEAM))[0]
        assert project.id is not None
        service = ProjectReportService(db, shell.clock)
        report = await service.build(actor=actor("ULENA", TEAM), project_id=project.id)
        messenger = shell.services.messenger
        assert isinstance(messenger, RecordingMessenger)
        return report, messenger
    finally:
        await close()


async def test_the_json_report_of_a_whole_cycle_validates_against_its_schema(database_url: str) -> None:
    report, _ = await whole_cycle(database_url)
    document = json.loads(render_json(report))
    assert schema_errors(document) == []
    assert document["project"]["phase"] == "deployment" and document["project"]["iteration"] == 1
    assert [p["phase"] for p in document["phases"]] == [
        "discovery",
        "define",
        "develop",
        "deliver",
        "develop",
        "deliver",
        "deployment",
    ]
    assert [p["outcome"] for p in document["phases"] if p["phase"] == "deliver"] == ["iterate", "ship"]
    # Both decisions, each with its ranked proposals; the chosen one is marked and the ranking is by score
    # after the runner-up carried over from the first iteration.
    first, second = document["decisions"]
    assert [p["title"] for p in first["proposals"]] == ["CNN on log-mel spectrograms", "Audio spectrogram transformer"]
    assert [p["chosen"] for p in first["proposals"]] == [True, False]
    assert [p["score"] for p in first["proposals"]] == [1.0, 0.2]
    assert first["proposals"][0]["references"][0] == {
        "kind": "arxiv",
        "value": "arXiv:1609.09430",
        "url": "https://arxiv.org/abs/1609.09430",
    }
    assert first["rationale"].startswith("Best benefit for its cost and risk")
    assert second["proposals"][0]["carried"] and second["proposals"][0]["title"] == "Audio spectrogram transformer"
    chosen = next(p for p in second["proposals"] if p["chosen"])
    assert (chosen["title"], chosen["cost_days"], chosen["benefit"], chosen["risk"]) == (
        "Fine-tune the spectrogram transformer",
        6,
        5,
        3,
    )
    assert {a["name"] for p in second["proposals"] for a in p["authors"]} == {"raj", "mia"}
    # Brief, criterion and both evaluations, with who acknowledged and recorded them by name.
    assert document["brief"]["acknowledged_by"]["name"] == "bo"
    assert document["criteria"][0]["target"] == "20%" and document["criteria"][0]["metric"] == "playlist skip rate"
    assert [(e["iteration"], e["value"], e["recorded_by"]["name"]) for e in document["evaluations"]] == [
        (0, 24.0, "mia"),
        (1, 17.0, "mia"),
    ]
    # Tasks with their GitHub issues.
    by_number = {t["number"]: t for t in document["tasks"]}
    assert by_number[7]["issue"] == {"number": 41, "url": "https://github.com/acme/genres/issues/41", "state": "closed"}
    assert by_number[8]["assignee"]["name"] == "raj" and by_number[8]["issue"]["number"] == 42
    assert by_number[1]["issue"] is None
    assert by_number[7]["decision_meeting_id"] == first["meeting_id"]
    assert all(by_number[n]["status"] == "closed" for n in (18, 19, 20, 21))
    # The whole audit trail, oldest first, with names.
    actions = [a["action"] for a in document["audit"]]
    assert actions[0] == "project.create" and actions.count("task.closed") == 4
    assert {a["who"]["name"] for a in document["audit"]} >= {"lena", "bo", "raj", "mia", "dan", "sol"}
    role_adds = [a["detail"] for a in document["audit"] if a["action"] == "role.add"]
    assert {"user": "bo", "role": "business-owner"} in role_adds  # a user id in the detail became a name


async def test_the_markdown_report_is_one_page_a_lead_can_send(database_url: str) -> None:
    report, messenger = await whole_cycle(database_url)
    text = render_markdown(report)
    assert text.startswith("# genres — project report\n")
    for heading in ("## Brief", "### Success criteria", "## Phases", "## Decisions", "## Tasks", "## Audit trail"):
        assert f"\n{heading}\n" in text
    assert "| 1 | **CNN on log-mel spectrograms** (chosen) | mia | 1 | 3 | 3/5 | 1/5 |" in text
    assert "[#41](https://github.com/acme/genres/issues/41) (closed)" in text
    assert "Acknowledged by bo" in text
    assert set(re.findall(r"\bU[A-Z0-9]{2,}\b", text)) <= {"UTC"}, "a raw Slack user id in the report"
    # The demo ends with `/phasegate report`: the same markdown was shared in the channel as a file.
    upload = [d for d in messenger.deliveries if d.kind == "upload" and (d.filename or "").endswith(".md")]
    assert len(upload) == 1 and upload[0].filename == "genres-report-2026-03-23.md"
    assert upload[0].content is not None and b"## Decisions" in upload[0].content


async def test_an_override_shows_who_overrode_the_gate_and_why(services: Services) -> None:
    pid = await new_team(services)
    await services.projects.update_profile(team_id=LEAD.team_id, user_id="ULEAD", display_name="lena")
    await services.gates.advance(actor=LEAD, project_id=pid, override_reason="brief agreed | offline")
    report = await ProjectReportService(services.db, services.clock).build(actor=LEAD, project_id=pid)
    discovery = report.phases[0]
    assert discovery.override is not None
    assert (discovery.override.by and discovery.override.by.name, discovery.override.reason) == (
        "lena",
        "brief agreed | offline",
    )
    assert schema_errors(json.loads(render_json(report))) == []
    text = render_markdown(report)
    assert "by lena: brief agreed \\| offline" in text  # a pipe cannot break the table
    assert "| Discovery | 0 | 2026-03-02 10:00 CET |" in text  # times in the project's zone (Berlin)
    assert "by lena: brief agreed | offline" in render_html(report)


async def test_report_in_slack_shares_the_markdown_file_in_the_project_channel(services: Services) -> None:
    pid = await new_team(services)
    assert pid
    ctx = Context(services=services, actor=LEAD, channel_id=CHANNEL)
    reply = await run(ctx, "report")
    assert reply.message is not None and "genres-report-2026-03-02.md" in reply.message.text
    messenger = services.messenger
    assert isinstance(messenger, RecordingMessenger)
    (upload,) = messenger.to(CHANNEL, "upload")
    assert upload.content is not None and upload.content.decode().startswith("# genres — project report")
    refused = await run(ctx, "report format=pdf")
    assert refused.message is not None and "is not an option of report" in refused.message.text
    assert len(messenger.to(CHANNEL, "upload")) == 1


async def test_audit_export_is_csv_with_names(services: Services) -> None:
    pid = await new_team(services, people={"URAJ": {"name": "raj <r&d>"}, "UEVE": {"name": "eve"}})
    await services.projects.update_profile(team_id=LEAD.team_id, user_id="ULEAD", display_name="lena")
    report = await ProjectReportService(services.db, services.clock).build(actor=LEAD, project_id=pid)
    rows = list(csv.reader(io.StringIO(render_audit_csv(report))))
    assert tuple(rows[0]) == AUDIT_CSV_COLUMNS
    assert [r[3] for r in rows[1:3]] == ["project.create", "project.configure"]
    assert all(r[2] == "lena" for r in rows[1:]), rows
    role = next(r for r in rows if r[3] == "role.add")
    assert "user=raj <r&d>" in role[4] and "URAJ" not in role[4]
    assert rows[1][0] == "2026-03-02T09:00:00Z" and rows[1][1] == "genres"
    await services.projects.update_profile(team_id=LEAD.team_id, user_id="ULEAD", display_name="=cmd|' /C calc'!A0")
    report = await ProjectReportService(services.db, services.clock).build(actor=LEAD, project_id=pid)
    rows = list(csv.reader(io.StringIO(render_audit_csv(report))))
    assert rows[1][2] == "'=cmd|' /C calc'!A0"  # a name starting with = is not run as a formula


async def test_the_cli_reads_the_database_and_refuses_what_it_cannot_do(db: Database, services: Services) -> None:
    await new_team(services)
    assert (await cli_report(db.url, "genres", fmt="md")).startswith("# genres — project report")
    assert schema_errors(json.loads(await cli_report(db.url, "TA000001/genres", fmt="json"))) == []
    assert (await cli_report(db.url, "genres", fmt="md", audit_csv=True)).startswith("at_utc,project,who")
    from bot.errors import PhasegateError

    with pytest.raises(PhasegateError, match="no project named nope"):
        await cli_report(db.url, "nope", fmt="md")
    with pytest.raises(PhasegateError, match="use --format md, json or html"):
        await cli_report(db.url, "genres", fmt="pdf")


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))[1:]


async def test_audit_export_filters_by_person_and_kind_as_the_slack_audit_does(db: Database, services: Services) -> None:
    await busy(services)  # 20 task additions by ana, 5 by raj, two meetings scheduled by the lead
    await services.projects.update_profile(team_id=LEAD.team_id, user_id="ULEAD", display_name="lena")

    async def export(**filters: str) -> list[list[str]]:
        return csv_rows(await cli_report(db.url, "genres", fmt="md", audit_csv=True, **filters))

    async def slack_total(options: str) -> int:
        text = block_text((await run(audit_ctx(services), f"audit {options}")).message)
        found = re.search(r"\((\d+) entr(?:y|ies)\)", text)
        assert found is not None, text
        return int(found[1])

    raj = await export(who="raj")
    assert len(raj) == 5 and {r[2] for r in raj} == {"raj"} and {r[3] for r in raj} == {"task.add"}
    assert await export(who="@Raj") == raj and await export(who="URAJ") == raj  # with @, any case, or the id
    ana_tasks = await export(who="ana", kind="tasks")
    assert len(ana_tasks) == 20 == await slack_total("who=<@UANA> kind=task")
    meetings = await export(kind="meeting")
    assert [r[3] for r in meetings] == ["meeting.schedule"] * 2 and {r[2] for r in meetings} == {"lena"}
    assert len(meetings) == await slack_total("kind=meeting")
    assert len(await export(who="lena")) == await slack_total("who=<@ULEAD>")
    assert await export(who="raj", kind="meeting") == []
    everything = await export()
    assert len(everything) == await slack_total("") and len(everything) > 27


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (
            {"kind": "gossip"},
            "`gossip` is not a kind of change. Kinds: baseline, brief, decision, evaluation, github, join, meeting, "
            "member, outbox, phase, project, proposal, refused, role, task — e.g. "
            "`phasegate audit export genres --kind meeting`.",
        ),
        (
            {"who": "zed"},
            "Nobody here is called `zed` (people: ana, lena, raj, or phasegate for Phasegate itself): "
            "e.g. `phasegate audit export genres --who ana`.",
        ),
        (
            {"who": "Ana"},  # two people of one name
            "2 people are called `Ana` (UANA, UANA2): say which by user id, e.g. "
            "`phasegate audit export genres --who UANA`.",
        ),
    ],
)
async def test_a_bad_audit_export_filter_is_refused_in_the_words_people_type(
    db: Database, services: Services, filters: dict[str, str], expected: str
) -> None:
    await busy(services)
    await services.projects.update_profile(team_id=LEAD.team_id, user_id="ULEAD", display_name="lena")
    if filters.get("who") == "Ana":
        await services.projects.update_profile(team_id=LEAD.team_id, user_id="UANA2", display_name="ana")
    from bot.errors import PhasegateError

    with pytest.raises(PhasegateError) as refused:
        await cli_report(db.url, "genres", fmt="md", audit_csv=True, **filters)
    assert refused.value.message == expected


def test_criteria_are_judged_only_when_the_target_is_a_number() -> None:
    assert criterion_met("<", "20%", 0.17) is True
    assert criterion_met("<", "20%", 24) is False
    assert criterion_met(">=", "0.7", 0.68) is False
    assert criterion_met(">", "better than last year", 3) is None


def test_only_web_links_become_links_in_the_html_report() -> None:
    from bot.services.project_report import _href

    assert _href("javascript:alert(1)") == "#" and _href(None) == "#"
    assert _href("https://github.com/acme/genres/issues/4") == "https://github.com/acme/genres/issues/4"


# --- HTML in a real browser ---------------------------------------------------------------------


def browser_console(html: str, tmp_path: Path) -> tuple[str, list[str]]:
    """Open the page in headless Chromium: (the rendered DOM, the console messages)."""
    assert CHROMIUM is not None
    page = tmp_path / "report.html"
    page.write_text(html, encoding="utf-8")
    done = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_browser_check_sees_a_page_that_throws(tmp_path: Path) -> None:
    _, console = browser_console("<!DOCTYPE html><p>x</p><script>throw new Error('kaput')</script>", tmp_path)
    assert any("kaput" in line for line in console)


def test_the_demo_ends_with_the_report_written_and_its_path_printed(tmp_path: Path) -> None:
    # `phasegate demo` as a lead runs it (the console script is `bot.cli:app`), then the same database through
    # the command line, as a lead would run it on the server.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GITHUB_", "PHASEGATE_", "DATABASE"))}
    env |= {"PYTHONPATH": str(ROOT), "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
        )

    demo = cli("demo", "--db", str(tmp_path / "demo.db"))
    assert demo.returncode == 0, demo.stderr[-2000:]
    last = demo.stdout.rstrip().splitlines()[-2:]  # the very end of the demo
    assert last == [f"Report written to {tmp_path / 'genres-report.md'}", f"Report written to {tmp_path / 'genres-report.html'}"]
    assert Path(last[0].removeprefix("Report written to ")).read_text().startswith("# genres — project report")
    assert Path(last[1].removeprefix("Report written to ")).read_text().startswith("<!DOCTYPE html>")
    assert "Deployment → complete" in demo.stdout.split("Report written to")[0]
    readme = (ROOT / "README.md").read_text()
    snippet = readme.split("From the demo's report (trimmed):\n\n```markdown\n", 1)[1].split("```", 1)[0]
    report = (tmp_path / "genres-report.md").read_text()
    # The README's excerpt is the demo's report as it is now, line for line and in order (only trimmed).
    lines = [line for line in snippet.splitlines() if line]
    assert len(lines) >= 5 and "| rank | proposal |" in snippet
    at = 0
    for line in lines:
        found = report.find(line + "\n", at)
        assert found >= 0, f"the README's report excerpt has a line the demo's report does not: {line!r}"
        at = found + len(line)
    done = cli("report", "genres", "--format", "json", "--out", "genres.json")
    assert done.returncode == 0 and done.stdout.strip() == "Wrote genres.json", done.stderr[-2000:]
    assert schema_errors(json.loads((tmp_path / "genres.json").read_text())) == []
    exported = cli("audit", "export", "genres")
    assert exported.returncode == 0 and exported.stdout.startswith("at_utc,project,who,action,detail\n")
    assert ",genres,lena,project.create," in exported.stdout and "ULENA" not in exported.stdout
    phases = cli("audit", "export", "genres", "--who", "lena", "--kind", "phase")
    assert phases.returncode == 0, phases.stderr[-2000:]
    rows = csv_rows(phases.stdout)
    assert rows and all(r[2] == "lena" and r[3].startswith("phase.") for r in rows), rows
    assert len(rows) < len(csv_rows(exported.stdout))
    nobody = cli("audit", "export", "genres", "--who", "mallory")
    assert nobody.returncode == 2 and nobody.stdout == ""
    assert "Nobody here is called `mallory`" in nobody.stderr and "--who " in nobody.stderr
    missing = cli("report", "nope")
    assert missing.returncode == 2 and "There is no project named nope." in missing.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_html_report_opens_in_headless_chromium_without_console_errors(tmp_path: Path) -> None:
    assert run_demo(Settings(), out=io.StringIO(), db=str(tmp_path / "demo.db")) == 0
    html = (tmp_path / "genres-report.html").read_text()
    # One self-contained file: no scripts, stylesheets, images or fonts fetched from anywhere; charts inline.
    assert not re.search(r"<(script|link|iframe|object)\b|@import|url\(", html, re.IGNORECASE)
    images = re.findall(r"<img\b[^>]*>", html)
    assert len(images) == 3  # the phase timeline and each of the two decisions' proposals
    assert all(re.search(r'src="data:image/png;base64,[A-Za-z0-9+/=]+"', i) and 'alt="' in i for i in images)
    dom, console = browser_console(html, tmp_path)
    assert console == []
    assert 'alt="Phase timeline of genres' in dom and 'alt="Chart of 2 proposals for Model decision #1' in dom
    for section in ("brief", "phases", "decisions", "tasks", "audit"):
        assert f'<section id="{section}">' in dom
    assert "<title>genres — project report</title>" in dom
    assert dom.count('class="chosen"') == 2  # each decision's chosen proposal is highlighted
    assert 'href="https://arxiv.org/abs/1609.09430"' in dom and "Fine-tune AST on our catalogue" in dom


async def test_user_text_cannot_inject_markup_into_the_html_report(services: Services) -> None:
    pid = await new_team(services)
    await services.artifacts.set_brief(actor=LEAD, project_id=pid, problem="<script>alert(1)</script> & <b>bold</b>")
    report = await ProjectReportService(services.db, services.clock).build(actor=LEAD, project_id=pid)
    html = render_html(report)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;" in html
