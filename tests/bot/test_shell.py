"""`phasegate shell` and `phasegate demo` as a person runs them: subprocesses fed through stdin."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """\
:help
:user lena tz=Europe/Berlin
:user raj tz=Asia/Kolkata
:user mia tz=Europe/Lisbon
:user bo tz=America/New_York
:as lena
/phasegate help propose
/phasegate init
name=genres repo=acme/genres
:user raj role=ml-engineer github=raj-gh
:user mia role=ml-engineer
/phasegate role @bo business-owner
/phasegate github @mia mia-gh
/phasegate settings min_proposals=2 hours=09:00-17:00
/phasegate status
:as bo
/phasegate brief problem="Tag songs <!channel>" criterion="skip rate < 20%; A/B test"
/phasegate brief ack
:as lena
/phasegate advance
/phasegate baseline metric=f1 value=0.61 pipeline=https://ci.example.com/eval
/phasegate advance
/phasegate task add "Label 500 more songs" @raj phase=develop
/phasegate task done 7
/phasegate task reopen 7
/phasegate meeting schedule kind=model-decision at=2026-03-09T10:00 attendees=@raj,@mia
/phasegate meeting schedule kind=brief-review at=2026-03-10T15:00 attendees=@bo
/phasegate meeting move 2 at=2026-03-11T15:00
/phasegate meeting cancel 2
/phasegate meeting list
:as mia
/phasegate away until=2026-03-04
/phasegate away off
:as raj
/phasegate propose meeting=1 title="AST" approach=transformer refs=arXiv:2104.01778 why="strong" benefit=4 cost=5 risk=2
/phasegate propose meeting=1 title="Bad one" approach=cnn refs="my idea" why="" benefit=9 cost=-1 risk=2
:clock 2026-03-06T12:00Z
:inbox mia
:as mia
:press Submit proposal
meeting=1 title="CNN" approach=cnn refs=arXiv:1609.09430 why="cheap" benefit=3 cost=2 risk=1
/phasegate proposals meeting=1
:clock 2026-03-09T09:05Z
:as lena
/phasegate decide meeting=1 proposal=2 rationale="cheapest" tasks="Prototype the CNN @mia"
/phasegate sync dry-run
/phasegate sync
/phasegate evaluate metric=f1 value=0.7 check="demo to 5 listeners"
/phasegate evaluate metric="Skip rate" value=14 check="demo to 5 listeners"
/phasegate audit 3
:home
:clock
/phasegate frobnicate
:quit
"""


def run_cli(args: list[str], stdin: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GITHUB_", "PHASEGATE_", "DATABASE"))}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        input=stdin,
        cwd=tmp_path,
        env={**base, "PYTHONPATH": str(ROOT), "DATABASE_URL": f"sqlite:///{tmp_path / 'shell.db'}", **env},
        capture_output=True,
        text=True,
        timeout=240,
    )


def run_shell_with_github(script: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """The shell syncing for real (GITHUB_TOKEN, GITHUB_API_URL) against a fake GitHub with acme/genres; returns
    the run and the repository's state (issues, comments, …) after it."""
    from tests.fakes.github import FakeGitHub

    fake = FakeGitHub()
    fake.add_repo("acme/genres", collaborators=["raj-gh"], push=True)
    url = fake.run_in_thread()
    try:
        out = run_cli(
            ["shell", "--now", "2026-03-02T08:00Z"],
            script,
            tmp_path,
            GITHUB_TOKEN="test",
            GITHUB_API_URL=url,
            PHASEGATE_GITHUB_WRITES_PER_MINUTE="6000",  # the fake enforces no limit here: pace loosely
            PHASEGATE_GITHUB_WRITES_PER_HOUR="60000",
        )
        state: dict[str, Any] = fake.state()["acme/genres"]
    finally:
        fake.stop_thread()
    return out, state


def seen_by(transcript: str) -> dict[str, list[str]]:
    """Messages grouped by who saw them: `[DM to @x]`, `[only @x sees this…]`, `[#project]`."""
    seen: dict[str, list[str]] = {}
    head: str | None = None
    body: list[str] = []
    for line in transcript.splitlines() + [""]:
        m = re.match(r"^\[(DM to @\w+|only @\w+ sees this|#project(?: thread)?)", line)
        time_mark = re.match(r"^-- .+ --$", line) is not None
        if m or line.startswith("> ") or time_mark or line == "":
            if head:
                seen.setdefault(head, []).append("\n".join(body))
            head, body = (m[1] if m else None), []
            continue
        if head:
            body.append(line.strip())
    return seen


def test_every_subcommand_and_meta_command_through_the_shell(tmp_path: Path) -> None:
    out = run_cli(["shell", "--now", "2026-03-02T08:00Z"], SCRIPT, tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    seen = seen_by(text)
    assert "> /phasegate init" in text  # each line is echoed before its output
    assert ":user <name> [tz=<IANA zone>]" in text  # :help
    lena, raj, mia = (seen.get(f"only @{n} sees this", []) for n in ("lena", "raj", "mia"))
    assert any("Created *genres*" in m for m in lena)  # the init form, filled from the next line
    assert any("@bo is now business-owner" in m for m in lena)
    assert any("@mia is `mia-gh` on GitHub" in m for m in lena)
    assert any("genres · Discovery" in m and "✗ Problem statement" in m for m in lena)
    assert any("Tag songs <!channel>" in m for m in seen["only @bo sees this"])  # escaped in Slack, plain here
    assert any("Task #7 added to Develop for @raj" in m for m in lena)
    assert any("Task #7 closed" in m for m in lena) and any("Task #7 reopened" in m for m in lena)
    assert any("Model decision #1" in m for m in seen["#project"])
    assert any("postponed" in m.lower() or "moved" in m.lower() for m in seen["#project"])
    assert any("cancelled" in m.lower() for m in seen["#project"])
    assert any("away until 2026-03-04" in m for m in mia) and any("no longer marked away" in m for m in mia)
    assert any("Saved proposal #1" in m for m in raj)
    refusal = next(m for m in raj if "Bad one" in m or "Not a literature reference" in m or "1 (small) to 5" in m)
    assert "my idea" in refusal
    # The ladder: Mia owes a proposal and is reminded by DM (Raj, who submitted, is not).
    assert any("Your proposal for *Model decision #1*" in m for m in seen["DM to @mia"])
    assert "DM to @raj" not in seen
    inbox = text.split("Inbox of @mia:", 1)[1].split("\n> ", 1)[0]
    assert "You are away until 2026-03-04" in inbox and "[DM to @mia]" in inbox
    assert "(@mia pressed [Submit proposal])" in text
    assert any("Saved proposal #2" in m for m in mia)
    assert any("1. #" in m for m in mia)  # proposals, ranked
    assert any("Model decision #1 is ready" in m for m in seen["#project"])
    assert any("agenda" in m.lower() for m in seen.get("#project thread", []))
    assert any("Decision" in m and "CNN" in m for m in seen["#project"])
    assert any("GitHub sync plan · genres" in m and "Preview mode" in m for m in lena)
    assert any("`f1` is not a metric of the brief's success criteria" in m and "skip rate < 20%" in m for m in lena)
    assert any("Evaluation recorded: skip rate = 14" in m for m in lena)
    assert any("Audit log" in m for m in lena)
    assert "[App Home of @lena]" in text
    assert re.search(r"It is \w{3} 09 Mar 2026", text)
    assert any("There is no subcommand `frobnicate`" in m for m in lena)


def test_an_unknown_meta_command_stops_a_script_with_an_error(tmp_path: Path) -> None:
    out = run_cli(["shell"], ":user ana\n:frobnicate\n/phasegate help\n", tmp_path)
    assert out.returncode == 2
    assert "Unknown shell command :frobnicate" in out.stdout
    assert "/phasegate help" not in out.stdout.split(":frobnicate", 1)[1].split("\n", 2)[-1]


def test_run_without_a_slack_token_opens_the_shell(tmp_path: Path) -> None:
    out = run_cli(["run"], "/phasegate help\n:quit\n", tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "/phasegate init <name> repo=<owner/repo>" in out.stdout


def test_the_demo_walks_a_project_from_discovery_to_deployment(tmp_path: Path) -> None:
    out = run_cli(["demo"], "", tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    assert "Model decision #1 is not ready" in text  # the readiness check escalates…
    assert "[Postpone 2 working days]  [Hold anyway]  [Cancel meeting]" in text  # …to the lead
    assert "[DM to @mia]" in text and "Your proposal for *Model decision #1*" in text  # the late engineer
    assert "2 proposal(s), ranked" in text and "runner-up of the last decision" in text  # ranked agenda
    assert "Decision · Model decision #1" in text and "Decision · Model decision #2" in text
    assert "GitHub sync plan · genres" in text and "Milestones to create" in text  # per-phase plan
    assert "genres · Develop" in text or "Deliver → Develop" in text  # the iterate loop
    assert "Deployment → complete" in text
    # Deliver: the missed criterion blocks ship with its numbers; iterate names it; the second evaluation passes.
    assert "playlist skip rate 24% — target < 20% ❌ missed" in text
    assert "Criteria not met:* playlist skip rate 24%" in text or "Criteria not met: playlist skip rate 24%" in text
    assert "playlist skip rate 17% — target < 20% ✅" in text
    # The iterate closes the first iteration's Deliver tasks as superseded; status counts them apart.
    flat = " ".join(text.split())
    assert "*Closed as superseded* (their GitHub issues: closed as not planned, with a comment): Deliver tasks #7, #8" in flat
    assert "*Deliver*: 0/5 tasks closed · 5 superseded" in text
    # The weekly digest on Mondays at 09:00 in Lena's zone, with its phase timeline; the agenda's proposals chart.
    assert "Weekly digest for genres" in text
    for chart in ("genres-timeline-2026-03-09.png", "phasegate-meeting-1-proposals.png"):
        assert f"file {chart} shared (written to " in text
        written = text.split(f"file {chart} shared (written to ", 1)[1].split(")", 1)[0]
        assert Path(written).read_bytes().startswith(b"\x89PNG")


METHOD_SCRIPT = """\
:user lena tz=Europe/Berlin
:user raj tz=Europe/Berlin
:user mia tz=Europe/Berlin
:user bo tz=Europe/Berlin
:as lena
/phasegate init genres repo=acme/genres
:user raj role=ml-engineer
:user mia role=data-engineer
/phasegate role @bo business-owner
/phasegate settings deadline=999
:as bo
/phasegate brief problem="Tag songs by genre" criterion="editor override rate < 10%; A/B test"
/phasegate brief ack
/phasegate brief criterion="editor override rate < 8%; A/B test"
:as lena
/phasegate advance
:as bo
/phasegate brief ack
:as lena
/phasegate advance
/phasegate baseline metric=f1 value=0.61 pipeline=https://ci.example.com/eval
/phasegate advance
/phasegate meeting schedule kind=model-decision at=2026-03-12T10:00 attendees=@raj
:as raj
/phasegate propose meeting=1 title="AST" approach=transformer refs=arXiv:2104.01778 why="strong" benefit=4 cost=5 risk=2
:as lena
/phasegate decide meeting=1 proposal=1 rationale="best"
/phasegate meeting move 1 at=2026-03-02T11:00
:press Hold anyway
:clock 2026-03-02T10:00Z
/phasegate decide meeting=1 proposal=1 rationale="best" tasks="role=data-engineer Build cache @mia"
/phasegate advance override="decided at the moved meeting"
/phasegate evaluate metric=macro-F1 value=0.7
/phasegate evaluate metric="Editor override rate" value=14 check="A/B test on 5% of editors"
/phasegate advance outcome=ship
/phasegate advance outcome=ship override="editors asked for it now; fix in the next iteration"
/phasegate status
:quit
"""


def test_the_method_without_loopholes_through_the_shell(tmp_path: Path) -> None:
    out = run_cli(["shell", "--now", "2026-03-02T08:00Z"], METHOD_SCRIPT, tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    seen = seen_by(text)
    lena = seen.get("only @lena sees this", [])
    # The settings refusal uses the word people type.
    assert any("deadline=999 (hours before the meeting) is out of range" in m for m in lena), lena
    assert "proposal_deadline_hours" not in text
    # A criterion changed after the acknowledgement: told in the channel and to the business owner; re-ack needed.
    assert any("editor override rate < 10%" in m and "→" in m for m in seen["#project"])
    assert any("needs a new acknowledgement" in m for m in seen["DM to @bo"])
    assert any("Brief changed, not re-acknowledged" in m for m in lena)
    # decide before the meeting: refused with its start (in Lena's zone).
    assert any("starts Thu 12 Mar 2026 10:00 (Europe/Berlin)" in m for m in lena), lena
    # role= never in a title.
    after = text.split('tasks="role=data-engineer Build cache @mia"', 1)[1]
    assert "Build cache" in after and "role=data-engineer" not in after
    # An unknown metric is refused, naming the criteria; a missed criterion blocks ship with its numbers.
    assert any("`macro-F1` is not a metric" in m and "editor override rate < 8%" in m for m in lena)
    assert any("editor override rate 14% — target < 8%" in m and "outcome=ship override" in m for m in lena)
    # The unready meeting is held only because the lead pressed "Hold anyway".
    assert any("@lena will hold" in m and "anyway" in m for m in seen["#project"])
    assert "nobody answered the escalation" not in text
    # The lead's override ships, its reason on record.
    assert any("Deliver → Deployment" in m and "editors asked for it now" in m for m in seen["#project"])


HOURS_SCRIPT = """\
:user lena tz=Europe/Berlin
:user ana tz=America/Los_Angeles
:user raj tz=Asia/Kolkata
:as lena
/phasegate init genres repo=acme/genres
:user ana role=ml-engineer
:user raj role=ml-engineer
/phasegate settings hours=18:00-09:00
/phasegate settings hours=09:00-17:00
/phasegate meeting schedule kind=model-decision window=2026-03-10..2026-03-11 attendees=@ana,@raj
:as raj
/phasegate hours @ana 06:00-14:00
/phasegate hours 13:00-21:00 days=sun-thu
/phasegate hours
:as lena
/phasegate hours @ana 06:00-14:00
/phasegate meeting schedule kind=model-decision window=2026-03-12..2026-03-13 attendees=@ana,@raj
:press Book
:clock 2026-03-09T12:00Z
:clock 2026-03-09T14:30Z
:quit
"""


def test_each_persons_own_hours_through_the_shell(tmp_path: Path) -> None:
    out = run_cli(["shell", "--now", "2026-03-02T08:00Z"], HOURS_SCRIPT, tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    seen = seen_by(text)
    # Messages as one line each (the shell wraps long lines).
    lena, raj = ([" ".join(m.split()) for m in seen.get(f"only @{n} sees this", [])] for n in ("lena", "raj"))
    # An overnight project default is accepted.
    assert any(
        "*Default working hours* (`hours`; each person sets their own with `/phasegate hours`): 18:00-09:00" in m
        for m in lena
    ), lena
    # Los Angeles and Kolkata never overlap in 09–17: the answer says who, and offers the three least bad slots.
    nofit = next(m for m in lena if "No time between 2026-03-10 and 2026-03-11" in m)
    assert "Widen the window" not in nofit
    assert "@ana (Los Angeles, 09:00–17:00) and @raj (Kolkata, 09:00–17:00) never overlap." in nofit
    assert "@lena (Berlin, 09:00–17:00) and @ana (Los Angeles, 09:00–17:00) never overlap." in nofit
    assert nofit.count("[Book]") == 3
    assert "@ana 5 h 30 min outside their 09:00–17:00 (Tue 03:30–04:30 in Los Angeles)" in nofit
    # A member cannot set someone else's hours; the refusal names who can. Their own: yes, with days.
    assert any("Only the project lead (@lena) or a workspace admin can set the working hours of @ana" in m for m in raj)
    assert any("Your working hours: 13:00–21:00, Sun–Thu, in your own time zone" in m for m in raj)
    assert any("@ana's working hours: 06:00–14:00, Mon–Fri" in m for m in lena)
    # With their own hours the three now share a slot (13:00 UTC: 06:00 in LA, 18:30 in Kolkata)…
    assert any(
        "the earliest times inside everyone's working hours" in m and "Thu 12 Mar 2026 14:00 CET" in m for m in lena
    )
    # …and Raj's 48-hour reminder comes in his own hours (18:30 there, 13:00 UTC), not at 16:00 IST (10:30 UTC).
    before, after = text.split("> :clock 2026-03-09T14:30Z", 1)
    assert "[DM to @raj]" not in before.split("> :clock 2026-03-09T12:00Z", 1)[1]
    assert "-- Mon 09 Mar 2026 14:00 CET --" in after and "[DM to @raj]" in after


ITERATE_SCRIPT = """\
:user lena tz=Europe/Berlin
:user raj tz=Europe/Berlin
:user mia tz=Europe/Berlin
:user ana tz=Europe/Berlin
:user bo tz=Europe/Berlin
:user dan tz=Europe/Berlin
:as lena
/phasegate init genres repo=acme/genres
:user raj role=ml-engineer
:user mia role=ml-engineer
:user ana role=ml-engineer
:user dan role=data-engineer
/phasegate role @bo business-owner
/phasegate settings deadline_hours=999
:as bo
/phasegate brief problem="Tag songs by genre" criterion="skip rate < 20%; A/B test"
/phasegate brief ack
:as lena
/phasegate advance
/phasegate baseline metric=f1 value=0.61 pipeline=https://ci.example.com/eval
/phasegate advance
/phasegate meeting schedule kind=model-decision at=2026-03-04T10:00 attendees=@raj,@mia,@ana
:as ana
/phasegate away until=2026-03-06
:as raj
/phasegate propose meeting=1 title="AST" approach=transformer refs=arXiv:2104.01778 why="strong" benefit=4 cost=5 risk=2
/phasegate propose meeting=1 title="Tiny CNN" approach=cnn refs=arXiv:1609.09430 why="small" benefit=2 cost=10 risk=4
:as mia
/phasegate propose meeting=1 title="Boosting" approach="gradient boosting" refs=https://arxiv.org/abs/2002.06705 why="cheap" benefit=3 cost=1 risk=1
/phasegate meeting list
:clock 2026-03-04T09:05Z
:as lena
/phasegate decide meeting=1 proposal=1 rationale="strongest" tasks="Build cache role=data-engineer phase=deliver; @raj Prototype AST; Label songs role=data-engineer"
:as dan
:home
:as lena
/phasegate advance
/phasegate evaluate metric="skip rate" value=24 check="A/B test on 5%"
/phasegate advance outcome=ship
/phasegate advance outcome=iterate keep=everything
/phasegate advance outcome=iterate
/phasegate status
/phasegate sync dry-run
/phasegate meeting schedule kind=model-decision at=2026-03-09T10:00 attendees=@raj,@mia
:as raj
/phasegate propose meeting=2 title="AST v2" approach=transformer refs=arXiv:2104.01778 why="again" benefit=5 cost=2 risk=1
:as mia
/phasegate propose meeting=2 title="Linear probe" approach=linear refs=arXiv:1609.09430 why="cheapest" benefit=1 cost=5 risk=1
:clock 2026-03-09T09:05Z
:as lena
/phasegate decide meeting=2 proposal=5 rationale="cheapest to try"
:quit
"""


def test_iterations_leave_a_clean_record_through_the_shell(tmp_path: Path) -> None:
    out = run_cli(["shell", "--now", "2026-03-02T08:00Z"], ITERATE_SCRIPT, tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    text = out.stdout
    seen = seen_by(text)
    lena = [" ".join(m.split()) for m in seen.get("only @lena sees this", [])]
    channel = [" ".join(m.split()) for m in seen["#project"]]
    # deadline_hours= is understood as deadline=, and the refusal uses the words people type.
    assert any("deadline=999 (hours before the meeting) is out of range" in m for m in lena), lena
    # meeting list agrees with the verdict: Ana, away, is excused, not listed as owing.
    listed = next(m for m in seen["only @mia sees this"] if "Proposals due" in m)
    listed = " ".join(listed.split())
    assert "excused (away): @ana" in listed and "still owed by" not in listed, listed
    assert any("Excused (away):" in m and "@ana" in m for m in channel)
    # Task lines: @person, role= and phase= wherever they appear; the title keeps only the words.
    record = next(m for m in channel if "Decision · Model decision #1" in m or "Chosen:* #1" in m)
    assert "Build cache" in record and "Prototype AST" in record and "role=" not in record and "phase=" not in record
    # Runner-ups in score order: #3 (3.00) before #2 (0.08).
    assert record.index("#3 Boosting") < record.index("#2 Tiny CNN")
    # A role's task shows on the Home tab of the person holding that role.
    home = text.split("[App Home of @dan]", 1)[1].split("\n> ", 1)[0]
    assert "Build cache" in home and "Label songs" in home and "Prototype AST" not in home
    # A missed criterion blocks ship with its numbers; iterate names it and closes the Deliver tasks as superseded.
    assert any("skip rate 24% — target < 20%" in m and "outcome=ship override" in m for m in lena)
    assert any("keep=everything is not understood" in m and "keep=tasks" in m for m in lena)
    iterate = next(m for m in channel if "Deliver → Develop" in m)
    assert "Criteria not met:* skip rate 24% — target < 20%" in iterate
    assert "Closed as superseded" in iterate and "Iteration 2" in iterate
    status = next(m for m in lena if "genres · Develop" in m and "iteration 2" in m)
    assert "superseded" in status
    plan = next(m for m in lena if "GitHub sync plan · genres" in m)
    assert "as not planned (superseded)" in plan and "Build cache" in plan
    # After the iterate the record ranks every runner-up by score (carried ones included): 3.00, 2.50, 0.08.
    second = next(m for m in channel if "Chosen:* #5" in m)
    assert second.index("#3 Boosting") < second.index("#4 AST v2") < second.index("#2 Tiny CNN"), second


ESCALATION_SCRIPT = """\
:user lena tz=Europe/Berlin
:user raj tz=Europe/Berlin
:user mia tz=Europe/Berlin
:as lena
/phasegate init genres repo=acme/genres
:user raj role=ml-engineer
:user mia role=ml-engineer
/phasegate plan discovery due=2026-03-03
/phasegate sync dry-run
/phasegate meeting schedule kind=model-decision at=2026-03-05T10:00 attendees=@raj,@mia
:as raj
/phasegate propose meeting=1 title="AST" approach=transformer refs=arXiv:2104.01778 why="strong" benefit=4 cost=5 risk=2
:clock 2026-03-20T12:00Z
:as lena
/phasegate status
:quit
"""


def test_an_unanswered_escalation_and_a_planned_date_through_the_shell(tmp_path: Path) -> None:
    out = run_cli(["shell", "--now", "2026-03-02T08:00Z"], ESCALATION_SCRIPT, tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    seen = seen_by(out.stdout)
    lena = [" ".join(m.split()) for m in seen.get("only @lena sees this", [])]
    channel = [" ".join(m.split()) for m in seen["#project"]]
    # plan sets the milestone's due date (shown in the sync plan) and status says when the phase is overdue.
    assert any("Discovery is due 2026-03-03; its GitHub milestone gets that due date" in m for m in lena)
    assert any("genres · Discovery _(due 2026-03-03)_" in m for m in lena), lena
    assert any("Discovery is overdue* by 17 days (target 2026-03-03)" in m for m in lena)
    # Nobody answers the escalation: the meeting is postponed once at its start, then cancelled, in the channel.
    postponed = [m for m in channel if "Model decision #1 — postponed" in m and "nobody answered the escalation" in m]
    assert len(postponed) == 1
    assert any("Model decision #1 was cancelled" in m and "nobody answered the escalation" in m for m in channel)
    assert not any("will hold" in m for m in channel)  # never held without the lead's "Hold anyway"


SUPERSEDE_SCRIPT = """\
:user lena tz=Europe/Berlin
:user raj tz=Europe/Berlin
:as lena
/phasegate init genres repo=acme/genres
:user raj role=ml-engineer github=raj-gh
/phasegate advance override="skip"
/phasegate advance override="skip"
/phasegate advance override="skip"
/phasegate task add "Prototype the CNN" @raj
/phasegate task add "Write the model card" @raj
/phasegate task done 11
/phasegate sync
/phasegate advance outcome=iterate
/phasegate sync
/phasegate sync
/phasegate status
/phasegate task list all phase=deliver
:quit
"""


def test_superseded_deliver_tasks_close_their_issues_through_the_shell(tmp_path: Path) -> None:
    """The shell syncing for real (GITHUB_TOKEN, GITHUB_API_URL) against the fake GitHub."""
    out, state = run_shell_with_github(SUPERSEDE_SCRIPT, tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    issues = {i["title"]: i for i in state["issues"]}
    comments: dict[int, list[str]] = {}
    for c in state["comments"]:
        comments.setdefault(int(c["issue_url"].rsplit("/", 1)[1]), []).append(c["body"])
    prototype, card = issues["Prototype the CNN"], issues["Write the model card"]
    assert (prototype["state"], prototype["state_reason"]) == ("closed", "not_planned")
    assert [b.split("\n", 1)[0] for b in comments[prototype["number"]]] == [
        "**Superseded.** genres went back from Deliver to Develop (iteration 2) on 2026-03-02: criteria not met: "
        "Evaluation result against the success criteria; Real-conditions check (A/B test, demo or focus group)."
    ]
    assert "[The decision to iterate, in Slack](https://slack.example/archives/" in comments[prototype["number"]][0]
    assert (card["state"], card["state_reason"]) == ("closed", "completed") and card["number"] not in comments
    closed_as_superseded = [i for i in state["issues"] if i["state_reason"] == "not_planned"]
    assert len(closed_as_superseded) == 4  # Deliver's three defaults and the open hand-added task, once each
    assert all(len(comments[i["number"]]) == 1 for i in closed_as_superseded)
    flat = " ".join(out.stdout.split())
    assert "*Deliver*: 1/1 tasks closed · 4 superseded" in flat
    assert re.search(r"~#10 Prototype the CNN~ · @raj · issue \(\S+/issues/\d+\) · Deliver · superseded", flat)


DECISION_LINK_SCRIPT = """\
:user lena tz=Europe/Berlin
:user raj tz=Europe/Berlin
:user mia tz=Europe/Berlin
:as lena
/phasegate init genres repo=acme/genres
:user raj role=ml-engineer github=raj-gh
:user mia role=ml-engineer
/phasegate advance override="skip"
/phasegate advance override="skip"
/phasegate meeting schedule kind=model-decision at=2026-03-04T10:00 attendees=@raj,@mia
:as raj
/phasegate propose meeting=1 title="CNN" approach=cnn refs=arXiv:1609.09430 why="cheap" benefit=3 cost=3 risk=1
:as mia
/phasegate propose meeting=1 title="Boosting" approach="gradient boosting" refs=https://arxiv.org/abs/2002.06705 why="cheaper" benefit=2 cost=1 risk=1
:as lena
:clock 2026-03-04T09:05Z
/phasegate decide meeting=1 proposal=1 rationale="cheapest" tasks="Prototype the CNN @raj"
/phasegate sync
:quit
"""


def test_a_decided_tasks_issue_links_the_decisions_thread_through_the_shell(tmp_path: Path) -> None:
    """The decision record's permalink (chat.getPermalink in Slack; the shell's stand-in here) is in the issue."""
    out, state = run_shell_with_github(DECISION_LINK_SCRIPT, tmp_path)
    issues = {i["title"]: i for i in state["issues"]}
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    body = issues["Prototype the CNN"]["body"]
    assert re.search(r"\[Discussed in Slack\]\(https://slack\.example/archives/\w+/p\d+\)", body), body
    assert "app_redirect" not in body
    # Other tasks have no decision: they still link to the channel.
    assert "app_redirect" in issues["Write the project brief"]["body"]


def test_a_configured_slash_command_is_the_one_every_hint_names(tmp_path: Path) -> None:
    """PHASEGATE_SLASH_COMMAND=/pg (where /phasegate is taken): the whole session — answers, refusals, channel
    posts, DMs, reminders, App Home — names /pg, never /phasegate."""
    script = SCRIPT.replace("/phasegate ", "/pg ")
    out = run_cli(["shell", "--now", "2026-03-02T08:00Z"], script, tmp_path, PHASEGATE_SLASH_COMMAND="/pg")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "> /pg init" in out.stdout and "Created *genres*" in out.stdout
    leaks = [line for line in out.stdout.splitlines() if re.search(r"(?<![\w/.-])/phasegate\b", line)]
    assert not leaks, "\n".join(leaks[:20])
