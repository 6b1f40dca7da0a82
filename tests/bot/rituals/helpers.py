"""Shared setup for the ritual tests: a team across time zones, a timeline of deliveries, Block Kit checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypedDict

from icalendar import Calendar, Component
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.clock import FakeClock
from bot.commands import Context, Reply, dispatch, render_form, run_action, submit_form
from bot.messaging import Delivery, Person, RecordingMessenger
from bot.process import Role
from bot.rendering import Message
from bot.scheduler import ReminderScheduler
from bot.services import Services
from tests.conftest import actor

LEAD = actor("ULEAD")
CHANNEL = "C1"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def valid_blocks(blocks: list[dict[str, Any]]) -> None:
    """Every block parses and passes slack_sdk's Block Kit limits."""
    assert blocks, "a message without blocks"
    assert len(blocks) <= 50
    for raw in blocks:
        block = Block.parse(raw)
        assert block is not None, f"unknown block: {raw}"
        block.validate_json()


def valid_message(message: Message | None) -> Message:
    assert message is not None
    valid_blocks(message.blocks)
    return message


def valid_view(view: dict[str, Any]) -> None:
    View(**view).validate_json()


def view_blocks(view: Mapping[str, object]) -> list[dict[str, Any]]:
    """The blocks of a rendered modal or Home view."""
    blocks = view["blocks"]
    assert isinstance(blocks, list)
    return blocks


def ical(content: bytes | None) -> Component:
    """An uploaded .ics file, parsed (an upload always has content)."""
    assert content is not None
    return Calendar.from_ical(content)


async def run(ctx: Context, text: str) -> Reply:
    """`/phasegate <text>`; whatever it renders must be valid Block Kit."""
    return checked(await dispatch(ctx, text))


async def press(ctx: Context, action_id: str, value: str) -> Reply:
    """A button press; whatever it renders must be valid Block Kit."""
    return checked(await run_action(ctx, action_id, value))


async def submit(ctx: Context, form: str, values: dict[str, str]) -> Reply:
    """A modal submission; whatever it renders must be valid Block Kit."""
    return checked(await submit_form(ctx, form, values, {}))


def checked(reply: Reply) -> Reply:
    if reply.message is not None:
        valid_message(reply.message)
    if reply.form is not None:
        valid_view(render_form(reply.form))
    return reply


def block_text(message: Message | None) -> str:
    """All the text a reader sees in a message (sections, fields, context, buttons), joined."""
    assert message is not None
    out: list[str] = [message.text]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.blocks)
    return "\n".join(out)


def buttons(message: Message | None) -> list[tuple[str, str]]:
    """(action_id, value) of every button in a message."""
    assert message is not None
    found: list[tuple[str, str]] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "button":
                found.append((str(node["action_id"]), str(node.get("value", ""))))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.blocks)
    return found


@dataclass
class Timeline:
    """Who got what, and when (the fake clock's time when the job ran)."""

    messenger: RecordingMessenger
    clock: FakeClock
    seen: int = 0
    entries: list[tuple[datetime, Delivery]] = field(default_factory=list)

    def take(self) -> list[tuple[datetime, Delivery]]:
        new = [(self.clock.now(), d) for d in self.messenger.deliveries[self.seen :]]
        self.seen = len(self.messenger.deliveries)
        for _, d in new:
            if d.message is not None and d.kind in ("post", "dm", "update"):
                valid_message(d.message)
        self.entries.extend(new)
        return new

    async def run_until(self, scheduler: ReminderScheduler, until: datetime) -> list[tuple[datetime, Delivery]]:
        """Step the clock from job to job up to `until`, running each at its own time."""
        self.take()
        start = len(self.entries)
        while (upcoming := scheduler.next_run_time()) is not None and upcoming <= until:
            self.clock.set(max(upcoming, self.clock.now()))
            await scheduler.run_due(self.clock.now())
            self.take()
        self.clock.set(until)
        return self.entries[start:]


def summary(entries: list[tuple[datetime, Delivery]]) -> list[tuple[str, str, str]]:
    """(time, kind, target) with the time as `Tue 10:30` UTC."""
    return [(when.strftime("%a %H:%M"), d.kind, d.target) for when, d in entries]


class Member(TypedDict, total=False):
    """How `new_team` sets up one person; every key may be left out."""

    role: str  # a Role value; an ML engineer when left out
    tz: str  # our profile's time zone
    hours: str  # our profile's working hours, `HH:MM-HH:MM`
    name: str  # display name; the lower-cased user id when left out
    away_until: date  # a declared absence
    slack: Person  # what Slack's profile says (the recording messenger's directory)


async def new_team(services: Services, *, people: Mapping[str, Member] | None = None) -> int:
    """Project `genres` in C1 led by ULEAD (Europe/Berlin); everyone in `people` an ML engineer unless said."""
    project = await services.projects.create(actor=LEAD, name="genres", channel_id=CHANNEL, repo="acme/genres")
    assert project.id is not None
    await services.projects.configure(actor=LEAD, project_id=project.id, timezone="Europe/Berlin")
    await services.projects.update_profile(team_id=LEAD.team_id, user_id="ULEAD", timezone="Europe/Berlin")
    for uid, spec in (people or {}).items():
        role = Role(spec.get("role", Role.ML_ENGINEER))
        await services.projects.set_role(actor=LEAD, project_id=project.id, user_id=uid, role=role)
        await services.projects.update_profile(
            team_id=LEAD.team_id,
            user_id=uid,
            timezone=spec.get("tz"),
            working_hours=spec.get("hours"),
            display_name=spec.get("name", uid.lower()),
        )
        if spec.get("away_until"):
            await services.projects.set_away(actor=actor(uid), until=spec["away_until"])
        if spec.get("slack"):
            assert isinstance(services.messenger, RecordingMessenger)
            services.messenger.people[uid] = spec["slack"]
    return project.id


def slack_person(uid: str, *, tz: str | None = None, away: bool = False) -> Person:
    return Person(user_id=uid, name=uid.lower(), timezone=tz, away=away)


GOOD = {
    "transformer": {
        "title": "Audio spectrogram transformer",
        "approach": "transformer",
        "refs": "2104.01778",
        "why": "Strong on AudioSet",
        "benefit": "4",
        "cost": "5",
        "risk": "2",
    },
    "boosting": {
        "title": "Gradient boosting on MFCCs",
        "approach": "gradient boosting",
        "refs": "https://doi.org/10.1145/2939672.2939785",
        "why": "Cheap, robust baseline-plus",
        "benefit": "2",
        "cost": "1",
        "risk": "1",
    },
    "cnn": {
        "title": "CNN on mel spectrograms",
        "approach": "cnn",
        "refs": "1609.04243",
        "why": "Well understood",
        "benefit": "3",
        "cost": "3",
        "risk": "2",
    },
}


def today(clock: FakeClock) -> date:
    return clock.now().date()
