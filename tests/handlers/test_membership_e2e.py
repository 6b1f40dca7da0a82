"""Who may act, over signed HTTP: members only write, joining, co-author consent, admin flag, replays."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlmodel import select

from bot.clock import FakeClock
from bot.db.models import AuditEntry, Baseline, Brief, Evaluation, Proposal, Task
from bot.services import Actor
from tests.handlers.harness import CHANNEL, TEAM, SlackHarness, running_app, sign

LEAD, BO, RAJ, MIA = "U0LEAD0001", "U0BIZZ0001", "U0MLEN0001", "U0MLEN0002"
OUT = "U0OUTS0001"
START = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def slack(database_url: str, clock: FakeClock) -> AsyncIterator[SlackHarness]:
    async with running_app(database_url, clock=clock) as harness:
        harness.fake.add_user(OUT, "olga", tz="Europe/Berlin")
        yield harness


async def say(slack: SlackHarness, text: str, *, user: str = LEAD) -> str:
    return slack.text_of(await slack.answer(await slack.command(text, user=user)))


async def setup(slack: SlackHarness) -> int:
    assert "Created *genres*" in await say(slack, "init genres repo=acme/genres")
    for who in (RAJ, MIA):
        await say(slack, f"role <@{who}|x> ml-engineer")
    await say(slack, f"role <@{BO}|bo> business-owner")
    projects = await slack.app.services.projects.list_all(team_id=TEAM)
    assert projects[0].id is not None
    return projects[0].id


async def rows(slack: SlackHarness, model: Any) -> list[Any]:
    async with slack.app.db.session() as s:
        return list((await s.execute(select(model))).scalars())


async def counts(slack: SlackHarness) -> tuple[int, ...]:
    return tuple([len(await rows(slack, m)) for m in (Task, Brief, Baseline, Evaluation, Proposal)])


WRITES = [
    'task add "Evil task"',
    "task done 1",
    'brief problem="Overwritten by an outsider"',
    "baseline metric=f1 value=0.9 pipeline=https://evil.example",
    "evaluate metric=f1 value=0.99",
]


async def test_a_non_member_may_read_but_not_write_and_is_told_who_grants_access(slack: SlackHarness) -> None:
    await setup(slack)
    await say(slack, 'brief problem="Tag genres for 10k songs"')
    before = await counts(slack)
    tasks_before = [(t.number, t.status) for t in await rows(slack, Task)]
    for text in WRITES:
        answer = await say(slack, text, user=OUT)
        assert "Only members of genres" in answer, (text, answer)
        assert f"<@{LEAD}>" in answer and "/phasegate join genres" in answer
    assert await counts(slack) == before
    assert [(t.number, t.status) for t in await rows(slack, Task)] == tasks_before
    assert (await rows(slack, Brief))[0].problem == "Tag genres for 10k songs"
    # Reads stay open to the workspace.
    assert "genres · Discovery" in await say(slack, "status", user=OUT)
    # A button is refused the same way: an outsider cannot approve their own join request.
    pressed = await slack.press("phasegate:join-approve", f"1:{OUT}", user=OUT)
    text = slack.text_of((await slack.wait_for(lambda: slack.fake.responses(pressed["response_id"])))[-1]["body"])
    assert "Only the project lead" in text
    # Every refused attempt is in the audit log: who, what, when.
    refused = [e for e in await rows(slack, AuditEntry) if e.action == "refused"]
    assert len(refused) == len(WRITES) + 1 and {e.actor for e in refused} == {OUT}
    assert {e.detail["doing"] for e in refused} >= {"add tasks", "record a baseline", "answer join requests"}
    # A member may write.
    await say(slack, 'task add "Label 500 songs"', user=RAJ)
    assert len(await rows(slack, Task)) == len(tasks_before) + 1


async def test_a_join_request_approved_by_the_lead_makes_a_member(slack: SlackHarness) -> None:
    await setup(slack)
    assert "asked" in await say(slack, "join genres", user=OUT)
    # The request goes through the outbox: the sender delivers it just after the command's commit.
    dm = await slack.wait_for(lambda: slack.fake.dm_channel_of(LEAD))
    request = (await slack.wait_for(lambda: slack.fake.messages(dm)))[-1]
    values = [e for b in request["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert {e["action_id"] for e in values} == {"phasegate:join-approve", "phasegate:join-decline"}
    before = len(await rows(slack, Task))
    assert "Only members" in await say(slack, 'task add "Too early"', user=OUT)
    await slack.press("phasegate:join-approve", values[0]["value"], user=LEAD, channel=None)
    await slack.wait_for(lambda: slack.fake.dm_channel_of(OUT))
    await say(slack, 'task add "Now I may"', user=OUT)
    assert len(await rows(slack, Task)) == before + 1
    assert "join.approve" in {e.action for e in await rows(slack, AuditEntry)}
    # The audit names people (as Slack mentions, with the name we know), never a bare id.
    audit = await say(slack, "audit 40")
    assert f"`join.approve` user=*olga* <@{OUT}>" in audit and f"={OUT}" not in audit


PROPOSAL = 'propose meeting=1 title="{t}" approach="{a}" refs=2104.01778 why=good benefit=4 cost=3 risk=2'


async def readiness(slack: SlackHarness, pid: int) -> dict[str, bool]:
    listing = await slack.app.services.proposals.ranked(actor=Actor(TEAM, LEAD), project_id=pid)
    assert listing.readiness is not None
    return {r.key: r.passed for r in listing.readiness.rules}


async def test_a_co_author_counts_only_after_confirming(slack: SlackHarness, clock: FakeClock) -> None:
    pid = await setup(slack)
    at = (START + timedelta(days=4)).strftime("%Y-%m-%dT14:00Z")
    await say(slack, f"meeting schedule kind=model-decision at={at} attendees=<@{RAJ}|r>,<@{MIA}|m>")
    saved = await say(slack, PROPOSAL.format(t="Spectrogram transformer", a="transformer") + f" coauthors=<@{MIA}|m>",
                      user=RAJ)
    assert "Co-author pending" in saved
    await say(slack, PROPOSAL.format(t="Boosting on MFCCs", a="gradient boosting"), user=LEAD)
    rules = await readiness(slack, pid)
    assert rules["all_submitted"] is False  # Mia has not confirmed: she still owes a proposal
    listing = await say(slack, "proposals", user=OUT)  # anyone may read
    assert "co-author pending" in listing
    dm = await slack.wait_for(lambda: slack.fake.dm_channel_of(MIA))  # delivered by the outbox's sender
    ask = (await slack.wait_for(lambda: slack.fake.messages(dm)))[-1]
    buttons = {e["action_id"]: e["value"] for b in ask["blocks"] if b["type"] == "actions" for e in b["elements"]}
    # Someone not named cannot confirm in her place.
    sent = await slack.press(
        "phasegate:coauthor-confirm", buttons["phasegate:coauthor-confirm"], user=OUT, channel=None
    )
    await slack.wait_for(lambda: slack.fake.responses(sent["response_id"]))
    assert (await readiness(slack, pid))["all_submitted"] is False
    sent = await slack.press(
        "phasegate:coauthor-confirm", buttons["phasegate:coauthor-confirm"], user=MIA, channel=None
    )
    await slack.wait_for(lambda: slack.fake.responses(sent["response_id"]))
    rules = await readiness(slack, pid)
    assert all(rules.values()), rules


async def test_two_proposals_by_one_person_are_not_two_proposals(slack: SlackHarness) -> None:
    pid = await setup(slack)
    at = (START + timedelta(days=4)).strftime("%Y-%m-%dT14:00Z")
    await say(slack, f"meeting schedule kind=model-decision at={at} attendees=<@{RAJ}|r>")
    await say(slack, PROPOSAL.format(t="Spectrogram transformer", a="transformer"), user=RAJ)
    await say(slack, PROPOSAL.format(t="Boosting on MFCCs", a="gradient boosting"), user=RAJ)
    rules = await readiness(slack, pid)
    assert rules["min_proposals"] is False and rules["distinct_families"] is False
    # The same proposal sent again updates it instead of adding one.
    await say(slack, PROPOSAL.format(t="Boosting on MFCCs", a="gradient boosting").replace("cost=3", "cost=2"),
              user=RAJ)
    stored = await rows(slack, Proposal)
    assert len(stored) == 2 and sorted(p.cost_days for p in stored) == [2.0, 3.0]
    text = await say(slack, "proposals", user=RAJ)
    assert "from different people" in text and "counts once" in text


async def test_a_demoted_admin_loses_the_override_within_the_cache_time(
    slack: SlackHarness, clock: FakeClock
) -> None:
    await setup(slack)
    slack.fake.add_user(OUT, "olga", tz="Europe/Berlin", is_admin=True)
    before = len(await rows(slack, Task))
    await say(slack, 'task add "Admin task"', user=OUT)  # a workspace admin keeps the override
    tasks = len(await rows(slack, Task))
    assert tasks == before + 1
    slack.fake.add_user(OUT, "olga", tz="Europe/Berlin", is_admin=False)  # demoted in Slack
    clock.advance(timedelta(minutes=6))
    assert "Only members of genres" in await say(slack, 'task add "After demotion"', user=OUT)
    assert len(await rows(slack, Task)) == tasks


async def test_a_replayed_signed_command_creates_nothing(slack: SlackHarness) -> None:
    await setup(slack)
    before = len(await rows(slack, Task))
    form = {
        "team_id": TEAM,
        "channel_id": CHANNEL,
        "user_id": LEAD,
        "command": "/phasegate",
        "text": 'task add "Replayed"',
        "response_url": slack.fake.new_response_url(channel=CHANNEL, user=LEAD),
        "trigger_id": slack.fake.new_trigger_id(LEAD),
    }
    body = urlencode(form)

    headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
    for _ in range(3):
        async with slack.session.post(f"{slack.url}/slack/events", data=body.encode(), headers=headers) as resp:
            assert resp.status == 200
    await slack.wait_for(lambda: slack.fake.responses(form["response_url"].rsplit("/", 1)[-1]))
    await asyncio.sleep(0.3)  # the repeats would have been handled by now
    titles = [t.title for t in await rows(slack, Task)]
    assert len(titles) == before + 1 and titles.count("Replayed") == 1
