"""The digest of changes made in GitHub (closed, reopened, assigned, renamed, milestones): its entries, stored
with their delivery, and who made them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.db.models import Member
from bot.process import Phase


@dataclass(frozen=True)
class DigestEntry:
    phase: Phase
    task_number: int | None
    title: str
    change: str  # closed | reopened | assigned to X | unassigned | renamed | milestone …
    who: str


def _entry_json(entry: DigestEntry) -> dict[str, Any]:
    return {
        "phase": entry.phase.value,
        "task_number": entry.task_number,
        "title": entry.title,
        "change": entry.change,
        "who": entry.who,
    }


def _entry(data: dict[str, Any]) -> DigestEntry:
    number = data.get("task_number")
    return DigestEntry(
        Phase(str(data["phase"])),
        int(number) if number is not None else None,
        str(data.get("title") or ""),
        str(data.get("change") or ""),
        str(data.get("who") or ""),
    )


def _name(member: Member) -> str:
    return member.display_name or member.github_login or member.user_id


def _person(members: dict[str, Member], login: str | None) -> str:
    if not login:
        return "someone in GitHub"
    member = members.get(login.lower())
    return _name(member) if member else f"{login} (GitHub)"
