"""Decision records with the running app over signed HTTP: `settings decision_records=on`, a `decide`, one pull
request in the fake GitHub with the record's file; `sync` afterwards opens no second one and writes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from bot.db.models import OutboxItem
from bot.services import Actor
from tests.bot.rituals.helpers import GOOD
from tests.fakes.github import FakeGitHub
from tests.handlers.harness import TEAM, SlackHarness, running_app

REPO = "acme/genres"
LEAD, RAJ, MIA = "U0LEAD0001", "U0MLEN0001", "U0MLEN0002"
START = datetime(2026, 3, 2, 9, tzinfo=UTC)
WRITES = ("POST /repos/{owner}/{repo}/pulls", "POST /repos/{owner}/{repo}/git/refs",
          "PUT /repos/{owner}/{repo}/contents/{path}", "PATCH /repos/{owner}/{repo}/pulls/{number}")


class RunningClock:
    """Real time from a chosen start (the GitHub pacer waits for the clock to move); `set` jumps it."""

    def __init__(self, start: datetime) -> None:
        self.offset = start - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def set(self, when: datetime) -> None:
        self.offset = when - datetime.now(UTC)


@pytest.fixture
def clock() -> RunningClock:
    return RunningClock(START)


@pytest.fixture
async def github(clock: RunningClock) -> AsyncIterator[FakeGitHub]:
    fake = FakeGitHub(clock=lambda: clock.now().timestamp())
    await fake.start()
    fake.add_repo(REPO, collaborators=["lena-gh"])
    yield fake
    await fake.stop()


@pytest.fixture
async def slack(database_url: str, clock: RunningClock, github: FakeGitHub) -> AsyncIterator[SlackHarness]:
    assert github._own_url is not None
    async with running_app(
        database_url,
        clock=clock,
        GITHUB_TOKEN="github_pat_test",
        GITHUB_API_URL=github._own_url,
        PHASEGATE_GITHUB_WRITES_PER_MINUTE="6000",
        PHASEGATE_GITHUB_WRITES_PER_HOUR="100000",
    ) as harness:
        yield harness


async def drained(slack: SlackHarness, within: float = 30.0) -> None:
    """Wait until the app's GitHub queue is empty (the sync worker applies it after the command's answer)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        async with slack.app.db.session() as s:
            left = (await s.execute(select(OutboxItem).where(OutboxItem.status != "done"))).scalars().all()
        if not left:
            return
        assert asyncio.get_running_loop().time() < deadline, [(i.kind, i.ref, i.last_error) for i in left]
        await asyncio.sleep(0.05)


async def say(slack: SlackHarness, text: str, *, user: str = LEAD) -> str:
    return slack.text_of(await slack.answer(await slack.command(text, user=user)))


async def test_a_decision_taken_over_http_is_proposed_as_one_pull_request_and_a_later_sync_adds_none(
    slack: SlackHarness, github: FakeGitHub, clock: RunningClock
) -> None:
    assert "Created *genres*" in await say(slack, "init genres repo=acme/genres")
    for who in (RAJ, MIA):
        await say(slack, f"role <@{who}|x> ml-engineer")
    settings = await say(slack, "settings decision_records=on path=docs/decisions")
    assert "docs/decisions" in settings, settings
    services = slack.app.services
    [project] = await services.projects.list_all(team_id=TEAM)
    assert project.id is not None
    scheduled = await services.meetings.schedule(
        actor=Actor(TEAM, LEAD), project_id=project.id, kind="model-decision",
        starts_at=START + timedelta(days=2), attendees=[LEAD, RAJ, MIA],  # proposals due a day before
    )
    mid = scheduled.meeting.id
    chosen = None
    for user, key in ((RAJ, "transformer"), (MIA, "cnn")):
        submitted = await services.proposals.submit(actor=Actor(TEAM, user), project_id=None, meeting_id=mid,
                                                    fields=GOOD[key])
        chosen = chosen or submitted.proposal.id
    clock.set(START + timedelta(days=2, minutes=30))  # the meeting is on, its readiness check passed
    decided = await say(slack, f'decide meeting={mid} proposal={chosen} rationale="best benefit for its cost"')
    assert "Decision recorded for Model decision" in decided, decided

    [pull] = await slack.wait_for(lambda: github.pulls(REPO), within=20)
    assert pull.head.startswith("phasegate/decision-genres-") and pull.base == "main"
    assert pull.title == "Decision record 0001: Audio spectrogram transformer"
    text = github.file_on(REPO, pull.head, "docs/decisions/0001-audio-spectrogram-transformer.md") or ""
    assert "best benefit for its cost" in text and "CNN on mel spectrograms" in text  # the runner-up too
    assert "<!-- phasegate:decision-record=" in pull.body
    await drained(slack)
    before = [github.stats.by_route[r] for r in WRITES]
    assert before[:3] == [1, 1, 1]

    synced = await say(slack, "sync")  # a person retries: the record, unchanged since it was proposed, is left as is
    assert "Sync queued" in synced, synced
    await drained(slack)
    assert len(github.milestones(REPO)) == 5  # the sync ran (it made the later phases' milestones)…
    assert len(github.pulls(REPO)) == 1
    assert [github.stats.by_route[r] for r in WRITES] == before  # …and made no second pull request or commit
