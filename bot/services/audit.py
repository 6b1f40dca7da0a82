"""Reading the audit log: who did what, when — a page at a time, by person and by kind of change."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import col, or_, select

from bot.db.models import AuditEntry
from bot.errors import InvalidInput
from bot.rendering import mentioned_user
from bot.services.base import Actor, ServiceBase

PAGE_SIZE = 15

# kind= in `audit`: the first part of an entry's action (`meeting.schedule` is a `meeting` change).
KINDS: dict[str, str] = {
    "baseline": "baselines recorded",
    "brief": "the brief written or acknowledged",
    "decision": "decisions recorded",
    "evaluation": "evaluations recorded",
    "github": "GitHub sync, shares and installations",
    "join": "join requests and approvals",
    "meeting": "meetings scheduled, moved, postponed, cancelled",
    "member": "people's hours, absence and GitHub logins",
    "outbox": "Slack messages dropped or refused",
    "phase": "phase advances, overrides and target dates",
    "project": "project creation and settings",
    "proposal": "proposals submitted or changed",
    "refused": "attempts refused (not allowed)",
    "role": "roles given or removed",
    "task": "tasks added, closed or reopened",
}


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]  # newest first
    page: int
    pages: int
    total: int
    page_size: int


SYSTEM_ACTOR = "phasegate"  # the actor of what Phasegate did by itself (reminders, syncs, escalations)

# How a person types an audit option where they are: `(option, value)` → e.g. `/phasegate audit kind=meeting` in
# Slack, `phasegate audit export genres --kind meeting` in a terminal. Refusals quote it, so they read as typed.
Spelling = Callable[[str, str], str]


def in_slack(command: str = "/phasegate") -> Spelling:
    return lambda option, value: f"{command} audit {option}={value}"


def parse_kind(raw: str, command: str = "/phasegate", *, spell: Spelling | None = None) -> str:
    """`meeting`, `meetings`, `Meeting.` → `meeting`; anything else is refused with the kinds there are."""
    spell = spell or in_slack(command)
    kind = raw.strip().lower().rstrip(".")
    if kind.endswith("s") and kind[:-1] in KINDS:  # kind=meetings
        kind = kind[:-1]
    if kind not in KINDS:
        raise InvalidInput(
            f"`{raw[:30]}` is not a kind of change. Kinds: {', '.join(sorted(KINDS))} — e.g. `{spell('kind', 'meeting')}`.",
            field="kind",
        )
    return kind


def in_kind(action: str, kind: str) -> bool:
    """An entry's action is of a kind by its first part: `meeting.schedule` is a `meeting` change."""
    return action == kind or action.startswith(f"{kind}.")


def parse_who(
    raw: str, command: str = "/phasegate", *, names: Mapping[str, str] | None = None, spell: Spelling | None = None
) -> str:
    """The person an audit is filtered by: a Slack mention, `phasegate` (Phasegate itself) or, given `names`
    (user id → display name, where no mention can be typed), a name with or without `@`. Returns the user id."""
    spell = spell or in_slack(command)
    text = raw.strip()
    bare = text.lstrip("@").strip()
    if bare.lower() == SYSTEM_ACTOR:
        return SYSTEM_ACTOR
    mentioned = mentioned_user(text)
    if mentioned is not None:
        return mentioned
    if names is None:
        raise InvalidInput(
            f"`{raw[:40]}` is not a Slack user: mention them, e.g. `{spell('who', '@ana')}`.", field="who"
        )
    if bare in names:  # a user id, as the CSV's own rows never show but a Slack profile does
        return bare
    found = sorted(u for u, name in names.items() if name and name.casefold() == bare.casefold())
    if len(found) == 1:
        return found[0]
    if found:
        raise InvalidInput(
            f"{len(found)} people are called `{bare[:40]}` ({', '.join(found)}): say which by user id, "
            f"e.g. `{spell('who', found[0])}`.",
            field="who",
        )
    known = sorted({n for n in names.values() if n}, key=str.casefold)
    listed = ", ".join(known[:12]) + (f" and {len(known) - 12} more" if len(known) > 12 else "")
    raise InvalidInput(
        f"Nobody here is called `{bare[:40]}`"
        + (f" (people: {listed}, or {SYSTEM_ACTOR} for Phasegate itself)" if known else "")
        + f": e.g. `{spell('who', known[0] if known else SYSTEM_ACTOR)}`.",
        field="who",
    )


def parse_page(raw: str, command: str = "/phasegate") -> int:
    text = raw.strip()
    if not (text.isascii() and text.isdecimal()) or len(text) > 6 or int(text) < 1:
        raise InvalidInput(
            f"`{raw[:20]}` is not a page: pages are numbered from 1, e.g. `{command} audit page=2`.", field="page"
        )
    return int(text)


class AuditService(ServiceBase):
    async def entries(self, *, actor: Actor, project_id: int | None = None, limit: int = 50) -> list[AuditEntry]:
        """Newest first, only this workspace's entries (optionally one project's)."""
        async with self.db.session() as s:
            q = select(AuditEntry).where(AuditEntry.team_id == actor.team_id)
            if project_id is not None:
                await self.project_by_id(s, actor, project_id)
                q = q.where(AuditEntry.project_id == project_id)
            rows = await s.execute(q.order_by(col(AuditEntry.id).desc()).limit(limit))
            return list(rows.scalars())

    async def page(
        self,
        *,
        actor: Actor,
        project_id: int,
        page: int = 1,
        who: str | None = None,
        kind: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> AuditPage:
        """One page (newest first) of a project's entries, optionally by one person and of one kind.

        A page past the last is refused with the number of pages there are."""
        async with self.db.session() as s:
            await self.project_by_id(s, actor, project_id)
            where: list[Any] = [AuditEntry.team_id == actor.team_id, AuditEntry.project_id == project_id]
            if who is not None:
                where.append(AuditEntry.actor == who)
            if kind is not None:
                where.append(or_(col(AuditEntry.action) == kind, col(AuditEntry.action).startswith(f"{kind}.")))
            total = int((await s.execute(select(func.count()).select_from(AuditEntry).where(*where))).scalar_one())
            pages = max((total + page_size - 1) // page_size, 1)
            if page > pages:
                raise InvalidInput(
                    f"There {'is only 1 page' if pages == 1 else f'are only {pages} pages'} ({total} "
                    f"entr{'y' if total == 1 else 'ies'}): try `{self.command} audit page={pages}`.",
                    field="page",
                )
            rows = await s.execute(
                select(AuditEntry)
                .where(*where)
                .order_by(col(AuditEntry.id).desc())
                .offset((page - 1) * page_size)
                .limit(page_size)
            )
            return AuditPage(list(rows.scalars()), page, pages, total, page_size)
