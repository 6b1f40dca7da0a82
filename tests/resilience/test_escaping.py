"""Hostile user text (Slack control sequences, `&<>`, GitHub @-mentions) is shown harmlessly in Slack and GitHub."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import pytest
from sqlmodel import col, select

from bot.commands import Context, Reply
from bot.db.models import Meeting, Proposal, Task
from bot.messaging import RecordingMessenger
from bot.rendering import Message
from bot.scheduler import ReminderScheduler
from bot.services import Services
from bot.sync.desired import marker, task_id_in
from bot.sync.service import SyncService
from tests.bot.github import conftest as github_fixtures
from tests.bot.github.conftest import REPO
from tests.bot.rituals import conftest as ritual_fixtures
from tests.bot.rituals.helpers import CHANNEL, GOOD, Member, Timeline, new_team, run, utc
from tests.bot.sync.test_exactly_once import markers
from tests.bot.sync.test_service import MENTION
from tests.conftest import actor
from tests.fakes.github import FakeGitHub

pytestmark = pytest.mark.resilience
# Reused fixtures: the fake GitHub on the fake clock and a SyncService on it (tests/bot/github/conftest.py);
# a started scheduler, its timeline and the services' recording messenger (tests/bot/rituals/conftest.py).
github, fake_sleep, sync = github_fixtures.github, github_fixtures.fake_sleep, github_fixtures.sync
scheduler, timeline, messenger = ritual_fixtures.scheduler, ritual_fixtures.timeline, ritual_fixtures.messenger

TEAM: dict[str, Member] = {
    "UANA": {"tz": "Europe/Berlin", "name": "ana"},
    "URAJ": {"tz": "Europe/Berlin", "name": "raj"},
}
# What people typed. U123ABC is nobody on the team: only a pasted control sequence could mention them.
HOSTILE = "<!channel> &<> <@U123ABC> cc @org/team and @someone"
# The same text as Slack must receive it: `&`, `<`, `>` escaped exactly once, nothing else touched.
ESCAPED = "&lt;!channel&gt; &amp;&lt;&gt; &lt;@U123ABC&gt; cc @org/team and @someone"
RAW = ("<!channel>", "<@U123ABC", "<!here>", "<!everyone>")
DOUBLE = ("&amp;amp;", "&amp;lt;", "&amp;gt;")
FAKE_MARKER = "<!-- phasegate:task=00000000-0000-0000-0000-000000000000 -->"


@dataclass
class Seen:
    """Every Slack message the bot produced, by where it went."""

    answers: dict[str, list[Message]] = field(default_factory=dict)  # ephemeral replies, by command
    posts: list[Message] = field(default_factory=list)  # channel posts and DMs (scheduler, services, commands)

    def answer(self, name: str, reply: Reply) -> Reply:
        self.answers.setdefault(name, []).extend(m for m in (reply.message,) if m is not None)
        if reply.public is not None:
            self.posts.append(reply.public)
        return reply


def raw(message: Message) -> str:
    """Everything Slack would render or notify with: the fallback text and every block."""
    return message.text + "\n" + json.dumps(message.blocks, ensure_ascii=False)


def problems(message: Message) -> list[str]:
    """Raw control sequences from user text, or text escaped twice."""
    text = raw(message)
    return [f"raw {s!r}" for s in RAW if s in text] + [f"double-escaped {s!r}" for s in DOUBLE if s in text]


def ctx(services: Services, user: str = "ULEAD") -> Context:
    return Context(services=services, actor=actor(user), channel_id=CHANNEL, tz="Europe/Berlin")


async def hostile_project(
    services: Services, sync: SyncService, scheduler: ReminderScheduler, timeline: Timeline, seen: Seen
) -> int:
    """A project driven through `/phasegate …` where every free-text field carries HOSTILE."""
    pid = await new_team(services, people=TEAM)
    services.sync, services.preview_mode = sync, False
    lead = ctx(services)
    for reason in ("brief agreed offline", "baseline from the old system"):  # to Develop
        seen.answer("advance", await run(lead, f'advance override="{reason}"'))
    seen.answer(
        "meeting schedule",
        await run(lead, "meeting schedule kind=model-decision at=2026-03-06T15:00 attendees=<@UANA>,<@URAJ>"),
    )
    async with services.db.session() as s:
        meeting = (await s.execute(select(Meeting.id))).scalar_one()
    seen.answer(
        "propose",
        await run(
            ctx(services, "UANA"),
            f'propose meeting={meeting} title="{HOSTILE}" approach="transformer &<>" refs=2104.01778 '
            f'why="Beats CNNs; {HOSTILE}" benefit=5 cost=2 risk=1',
        ),
    )
    for key in ("boosting", "cnn"):
        await services.proposals.submit(actor=actor("URAJ"), project_id=None, meeting_id=meeting, fields=GOOD[key])
    await timeline.run_until(scheduler, utc(2026, 3, 6, 14, 30))  # readiness verdict, then the agenda
    async with services.db.session() as s:
        chosen = (await s.execute(select(Proposal.id).where(col(Proposal.author_user_id) == "UANA"))).scalar_one()
    seen.answer(
        "decide",
        await run(
            lead,
            f'decide meeting={meeting} proposal={chosen} rationale="Best for the cost; {HOSTILE}" '
            'tasks="Prototype it &<> <!channel> <@URAJ>; Tune it phase=develop"',
        ),
    )
    seen.answer(
        "task add",
        await run(
            lead,
            f'task add "Label songs {HOSTILE}" phase=deliver body="Use the <b>2024</b> catalogue; '
            f'{HOSTILE} {FAKE_MARKER}"',
        ),
    )
    return pid


def slack_messages(seen: Seen, messenger: RecordingMessenger) -> dict[str, Message]:
    """Every message the bot produced, named by what it was: answers to commands, posts, DMs, updates."""
    found: dict[str, Message] = {}
    for name, answers in seen.answers.items():
        for n, message in enumerate(answers):
            found[f"answer to `{name}` #{n + 1}"] = message
    for n, message in enumerate(seen.posts):
        found[f"public post #{n + 1}: {message.text[:40]}"] = message
    for n, d in enumerate(messenger.deliveries):
        if d.message is not None:
            found[f"{d.kind} to {d.target} #{n + 1}: {d.message.text[:40]}"] = d.message
        if d.view is not None:
            found[f"{d.kind} to {d.target} #{n + 1}"] = Message(text="", blocks=[d.view])
    return found


NOTICES = ("answer to `decide`", "answer to `task add`")  # see test_notices_quote_user_text_harmlessly
# github_safe(HOSTILE): `<` `>` as entities (no HTML, no hidden comment), a zero-width joiner after every `@`.
GH_SAFE = "&lt;!channel&gt; &&lt;&gt; &lt;@\u200dU123ABC&gt; cc @\u200dorg/team and @\u200dsomeone"


async def test_hostile_text_is_escaped_once_in_slack_and_pings_nobody_in_github(
    services: Services,
    sync: SyncService,
    scheduler: ReminderScheduler,
    timeline: Timeline,
    messenger: RecordingMessenger,
    github: FakeGitHub,
) -> None:
    seen = Seen()
    await hostile_project(services, sync, scheduler, timeline, seen)
    lead = ctx(services)
    seen.answer("sync", await run(lead, "sync"))
    drained = await sync.run_due(limit=None)  # what the worker does once kicked
    seen.answer("status", await run(lead, "status"))

    messages = slack_messages(seen, messenger)
    bad = {name: problems(m) for name, m in messages.items() if problems(m) and not name.startswith(NOTICES)}
    async with services.db.session() as s:
        tasks = {t.id: t for t in (await s.execute(select(Task))).scalars()}
    issues = github.issues(REPO)
    mentions = [m.group(0) for i in issues for m in MENTION.finditer(i["body"])]
    print(
        f"\nescaping: {len(messages)} Slack messages checked, {len(bad)} with raw control sequences or double "
        f"escapes; GitHub: {drained.counts['issue.created']} issues created for {len(tasks)} tasks, "
        f"{len(mentions)} @-mentions in their bodies"
    )
    assert bad == {}

    def one(prefix: str) -> str:
        [text] = [raw(m) for name, m in messages.items() if name.startswith(prefix)]
        return text

    posts = {m.text: raw(m) for name, m in messages.items() if name.startswith("post to C1")}
    agenda = next(v for k, v in posts.items() if k.endswith("starts now: agenda"))
    assert f"#1 {ESCAPED}*" in agenda and f"*Why:* Beats CNNs; {ESCAPED}" in agenda
    record = next(v for k, v in posts.items() if k.startswith("Decision at"))
    assert record.startswith(f"Decision at Model decision #1: {ESCAPED}\n")  # the notification text too
    assert f"*Chosen:* #1 *{ESCAPED}*" in record and f"*Rationale:* Best for the cost; {ESCAPED}" in record
    assert "#7 Prototype it &amp;&lt;&gt; &lt;!channel&gt; · <@URAJ>" in record  # a real assignee stays a mention
    assert f"Saved proposal #1 *{ESCAPED}*" in one("answer to `propose`")
    assert f"#9 Label songs {ESCAPED}" in one("answer to `sync`")
    assert f"#9 Label songs {ESCAPED} · <https://github.com/acme/genres/issues/" in one("answer to `status`")

    assert markers(github) == Counter(tasks.keys())  # one issue per task
    assert mentions == []  # GitHub would link and notify @org/team and @someone
    bodies = {task_id_in(i["body"]): i["body"] for i in issues}
    for task in tasks.values():
        body = bodies[task.id]
        assert body.count("<!-- phasegate:task=") == 1 and body.rstrip().endswith(marker(task.id))
        assert "&amp;" not in body and "<!channel>" not in body and "<@U123ABC>" not in body
    by_title = {t.title: bodies[t.id] for t in tasks.values()}
    for title in ("Prototype it &<> <!channel>", "Tune it"):
        body = by_title[title]
        assert f"### Decision\nBest for the cost; {GH_SAFE}\n" in body
        assert f"**Chosen proposal:** {GH_SAFE} — transformer &&lt;&gt;\n> Beats CNNs; {GH_SAFE}\n" in body
    body = by_title[f"Label songs {HOSTILE}"]
    assert body.startswith(f"Use the &lt;b&gt;2024&lt;/b&gt; catalogue; {GH_SAFE} &lt;!-- phasegate:task=0000")


async def test_notices_quote_user_text_harmlessly(
    services: Services, sync: SyncService, scheduler: ReminderScheduler, timeline: Timeline
) -> None:
    seen = Seen()
    await hostile_project(services, sync, scheduler, timeline, seen)
    notices = {name: [problems(m) for m in seen.answers[name]] for name in ("decide", "task add")}
    print(f"\nnotices quoting user text: {notices}")
    assert notices == {"decide": [[]], "task add": [[]]}
