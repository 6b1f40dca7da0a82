"""How the core reaches people: the Messenger protocol (Slack, the shell, tests implement it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.rendering import Message


@dataclass(frozen=True)
class Person:
    """What the chat service knows of a person (Slack profile)."""

    user_id: str
    name: str
    timezone: str | None = None
    away: bool = False  # Slack presence/status says away (e.g. a vacation status)
    is_admin: bool = False


class Messenger(Protocol):
    async def post(
        self, *, team_id: str, channel_id: str, message: Message, thread_ts: str | None = None
    ) -> str | None:
        """Post to a channel (or a thread); returns the message ts when known."""
        ...

    async def update(self, *, team_id: str, channel_id: str, ts: str, message: Message) -> None:
        """Replace a posted message."""
        ...

    async def dm(self, *, team_id: str, user_id: str, message: Message) -> str | None:
        """Send a direct message to one person."""
        ...

    async def ephemeral(self, *, team_id: str, channel_id: str, user_id: str, message: Message) -> None:
        """Show a message to one person in a channel."""
        ...

    async def upload(
        self,
        *,
        team_id: str,
        channel_id: str,
        filename: str,
        content: bytes,
        title: str,
        comment: str = "",
        thread_ts: str | None = None,
    ) -> None:
        """Share a file (e.g. an .ics invite) in a channel."""
        ...

    async def person(self, *, team_id: str, user_id: str) -> Person | None:
        """Profile facts (time zone, away), or None when unknown."""
        ...

    async def publish_home(self, *, team_id: str, user_id: str, view: dict[str, Any]) -> None:
        """Publish a person's App Home view."""
        ...


@dataclass
class Delivery:
    kind: str  # post | update | dm | ephemeral | upload | home
    team_id: str
    target: str  # channel id or user id
    message: Message | None = None
    user_id: str | None = None
    thread_ts: str | None = None
    filename: str | None = None
    content: bytes | None = None
    view: dict[str, Any] | None = None
    ts: str | None = None


@dataclass
class RecordingMessenger:
    """Keeps everything it is asked to send (tests and the local shell build on it)."""

    deliveries: list[Delivery] = field(default_factory=list)
    people: dict[str, Person] = field(default_factory=dict)
    _counter: int = 0

    def _ts(self) -> str:
        self._counter += 1
        return f"1700000000.{self._counter:06d}"

    def record(self, delivery: Delivery) -> None:
        """Every delivery passes here (the local shell also prints it)."""
        self.deliveries.append(delivery)

    async def post(
        self, *, team_id: str, channel_id: str, message: Message, thread_ts: str | None = None
    ) -> str | None:
        ts = self._ts()
        self.record(Delivery("post", team_id, channel_id, message, thread_ts=thread_ts, ts=ts))
        return ts

    async def update(self, *, team_id: str, channel_id: str, ts: str, message: Message) -> None:
        self.record(Delivery("update", team_id, channel_id, message, ts=ts))

    async def permalink(self, *, team_id: str, channel_id: str, ts: str) -> str | None:
        """What chat.getPermalink would answer for a message posted here."""
        return f"https://slack.example/archives/{channel_id}/p{ts.replace('.', '')}"

    async def dm(self, *, team_id: str, user_id: str, message: Message) -> str | None:
        ts = self._ts()
        self.record(Delivery("dm", team_id, user_id, message, user_id=user_id, ts=ts))
        return ts

    async def ephemeral(self, *, team_id: str, channel_id: str, user_id: str, message: Message) -> None:
        self.record(Delivery("ephemeral", team_id, channel_id, message, user_id=user_id))

    async def upload(
        self,
        *,
        team_id: str,
        channel_id: str,
        filename: str,
        content: bytes,
        title: str,
        comment: str = "",
        thread_ts: str | None = None,
    ) -> None:
        message = Message(text=comment or title)
        self.record(
            Delivery("upload", team_id, channel_id, message, filename=filename, content=content, thread_ts=thread_ts)
        )

    async def person(self, *, team_id: str, user_id: str) -> Person | None:
        return self.people.get(user_id)

    async def publish_home(self, *, team_id: str, user_id: str, view: dict[str, Any]) -> None:
        self.record(Delivery("home", team_id, user_id, user_id=user_id, view=view))

    def to(self, target: str, kind: str | None = None) -> list[Delivery]:
        return [d for d in self.deliveries if d.target == target and (kind is None or d.kind == kind)]

    def texts(self, target: str, kind: str | None = None) -> list[str]:
        return [d.message.text for d in self.to(target, kind) if d.message]
