"""Subcommands and buttons of the rituals: meetings, proposals, decisions, escalations."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, date, datetime

from bot.commands.base import (
    MAX_YEAR,
    MENTION_ANY_RE,
    MIN_YEAR,
    Args,
    Context,
    Form,
    FormField,
    OpenForm,
    Reply,
    UsageError,
    action,
    notice,
    parse_date,
    parse_when,
    subcommand,
)
from bot.commands.project import mention_or_id, project_id
from bot.errors import InvalidInput
from bot.process import MEETING_KINDS, Role, parse_phase, parse_role
from bot.rendering import mention, render_message
from bot.services.decisions import TaskSpec
from bot.services.meetings import OPEN_STATUSES, Scheduled, SlotOffer
from bot.services.rituals import Choice

KIND_OPTIONS = tuple((k.key, k.title) for k in MEETING_KINDS.values())
SCALE = tuple((str(i), str(i)) for i in range(1, 6))


# --- parsing helpers ------------------------------------------------------------------------------


def _number(raw: str | None, field: str) -> int | None:
    """A whole number as typed (`12`, `#12`) or from a modal's number input (`12.0`)."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip().lstrip("#")
    match = re.fullmatch(r"(\d{1,9})(?:\.0*)?", text)
    if match is None:
        raise InvalidInput(f"{field}= must be a whole number, not `{raw[:20]}`.", field=field)
    return int(match[1])


def _meeting_id(args: Args, *, positional: bool = False) -> int | None:
    raw = args.positional[0] if positional and args.positional else args.get("meeting")
    return _number(raw, "meeting")


def _people(raw: str | None, field: str) -> list[str]:
    """Mentions typed in a command, or user ids from a modal's user picker."""
    words = [w for w in re.split(r"[\s,]+", (raw or "").strip()) if w]
    return list(dict.fromkeys(mention_or_id(w, field) for w in words))


def _when(raw: str, tz: str) -> datetime:
    """An ISO date-time (naive = the person's zone), or epoch seconds from a modal's date-time picker."""
    if raw.strip().isdecimal():
        return _epoch(raw.strip(), "at")
    return parse_when(raw, tz)


def _epoch(raw: object, field: str) -> datetime:
    try:
        when = datetime.fromtimestamp(int(str(raw)), UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidInput(f"`{str(raw)[:20]}` is not a time.", field=field) from None
    if not MIN_YEAR <= when.year <= MAX_YEAR:
        raise InvalidInput(f"Pick a time between {MIN_YEAR} and {MAX_YEAR}.", field=field)
    return when


def _window(args: Args) -> tuple[date, date] | None:
    raw = args.get("window")
    if raw:
        first, sep, last = raw.partition("..")
        start = parse_date(first, "window")
        return start, parse_date(last, "window") if sep else start
    first_raw, last_raw = args.get("window_from"), args.get("window_to")
    if not first_raw and not last_raw:
        return None
    start = parse_date(first_raw or last_raw or "", "window_from")
    return start, parse_date(last_raw, "window_to") if last_raw else start


_PHASE_RE = re.compile(r"\bphase=(\S+)", re.IGNORECASE)
_ROLE_RE = re.compile(r"\brole=(\S+)", re.IGNORECASE)
_NAME_RE = re.compile(r"(?<![<\w])@([\w.\-]+)")


def parse_tasks(text: str | None) -> list[TaskSpec]:
    """`title @user [phase=develop]; title @user` (or one per line) → task specs."""
    specs: list[TaskSpec] = []
    for piece in (p.strip() for p in re.split(r"[;\n]+", text or "")):
        if not piece:
            continue
        phase = None
        if m := _PHASE_RE.search(piece):
            phase = parse_phase(m[1])
            if phase is None:
                raise InvalidInput(f"`{m[1][:20]}` is not a phase (task: {piece[:60]}).", field="tasks")
            piece = _PHASE_RE.sub(" ", piece)
        role = None
        if m := _ROLE_RE.search(piece):
            role = parse_role(m[1])
            if role is None:
                raise InvalidInput(
                    f"`{m[1][:20]}` is not a role (task: {piece[:60]}); roles: "
                    + ", ".join(r.value for r in Role)
                    + ".",
                    field="tasks",
                )
            piece = _ROLE_RE.sub(" ", piece)
        ids = MENTION_ANY_RE.findall(piece)
        piece = MENTION_ANY_RE.sub(" ", piece)
        names = _NAME_RE.findall(piece)
        piece = _NAME_RE.sub(" ", piece)
        if len(ids) + len(names) > 1:
            raise InvalidInput("A task has one assignee; write one task per person.", field="tasks")
        specs.append(
            TaskSpec(
                title=" ".join(piece.split()),
                assignee=ids[0] if ids else None,
                assignee_name=names[0] if names else None,
                phase=phase,
                role=role,
            )
        )
    return specs


# --- meetings -------------------------------------------------------------------------------------

MEETING_FORM = Form(
    name="meeting_schedule",
    title="Schedule a meeting",
    submit="Schedule",
    intro="Give a fixed time, or a window of days to get the three earliest times inside everyone's working hours.",
    fields=(
        FormField("kind", "Kind", kind="select", options=KIND_OPTIONS),
        FormField("at", "At", kind="datetime", optional=True, hint="A fixed time (in your time zone)."),
        FormField("window_from", "Or find a slot from", kind="date", optional=True),
        FormField("window_to", "…until", kind="date", optional=True),
        FormField("duration", "Duration (minutes)", kind="number", optional=True, hint="Empty: the kind's default."),
        FormField("attendees", "Attendees", kind="users", optional=True, hint="Empty: everyone with the kind's roles."),
    ),
)


def _slot_value(offer: SlotOffer, slot: datetime) -> str:
    draft = {
        "p": offer.project_id,
        "k": offer.kind.key,
        "a": offer.attendees,
        "d": offer.duration_min,
        "t": int(slot.timestamp()),
    }
    return json.dumps(draft, separators=(",", ":"))


@subcommand(
    "meeting schedule",
    usage="meeting schedule kind=<kind> (at=<ISO datetime> | window=<date>..<date>) [duration=<min>] [attendees=@a,@b]",
    summary="Schedule a ritual at a time, or get the earliest slots inside everyone's hours (lead).",
    form=MEETING_FORM,
    examples=(
        "meeting schedule kind=model-decision at=2026-03-12T15:00 attendees=@ana,@raj",
        "meeting schedule kind=model-decision window=2026-03-10..2026-03-13",
    ),
)
async def meeting_schedule(ctx: Context, args: Args) -> Reply:
    pid = await project_id(ctx, args)
    kind = args.require("kind", f"one of {', '.join(MEETING_KINDS)}")
    attendees = _people(args.get("attendees"), "attendees") or None
    duration = _number(args.get("duration"), "duration")
    at, window = args.get("at"), _window(args)
    if at and window:
        raise InvalidInput("Give either at= (a fixed time) or window= (to find a slot), not both.", field="at")
    if window:
        offer = await ctx.services.meetings.find_slots(
            actor=ctx.actor,
            project_id=pid,
            kind=kind,
            first_day=window[0],
            last_day=window[1],
            zone=await ctx.zone(),
            attendees=attendees,
            duration_min=duration,
        )
        return Reply(
            message=render_message(
                "blocks/slots_offer.json.j2",
                text=f"{len(offer.slots)} slot(s) for {offer.kind.title}",
                offer=offer,
                values=[_slot_value(offer, s) for s in offer.slots],
                bad_values=[_slot_value(offer, s) for s, _ in offer.least_bad],
                command=ctx.command,
            )
        )
    if not at:
        raise UsageError("Give at=<date and time> or window=<first day>..<last day>.", field="at")
    result = await ctx.services.meetings.schedule(
        actor=ctx.actor,
        project_id=pid,
        kind=kind,
        starts_at=_when(at, await ctx.zone()),
        attendees=attendees,
        duration_min=duration,
    )
    return _scheduled_reply(ctx, result, "Scheduled")


def _scheduled_reply(ctx: Context, result: Scheduled, verb: str) -> Reply:
    m = result.meeting
    return Reply(
        message=render_message(
            "blocks/meeting_scheduled.json.j2",
            text=f"{verb} {m.title} #{m.id}",
            r=result,
            verb=verb,
            command=ctx.command,
        ),
        announcements=[result.announcement] if result.announcement else [],
        refresh_home={ctx.actor.user_id, *m.attendees},
    )


@action("phasegate:slot")
async def book_slot(ctx: Context, value: str) -> Reply:
    """A slot button: schedule the drafted meeting at that time."""
    try:
        draft = json.loads(value)
        pid, kind, people, duration, starts_at = (
            int(draft["p"]),
            str(draft["k"]),
            [str(u) for u in draft["a"]],
            int(draft["d"]),
            _epoch(draft["t"], "at"),
        )
    except (ValueError, KeyError, TypeError, InvalidInput):
        raise InvalidInput("This slot button is damaged; run `meeting schedule` again.") from None
    result = await ctx.services.meetings.schedule(
        actor=ctx.actor,
        project_id=pid,
        kind=kind,
        starts_at=starts_at,
        attendees=people,
        duration_min=duration,
    )
    return _scheduled_reply(ctx, result, "Booked")


@subcommand("meeting list", usage="meeting list", summary="Meetings coming up or waiting for a decision.")
async def meeting_list(ctx: Context, args: Args) -> Reply:
    pid = await project_id(ctx, args)
    meetings = await ctx.services.meetings.upcoming(actor=ctx.actor, project_id=pid)
    return Reply(
        message=render_message(
            "blocks/meeting_list.json.j2", text=f"{len(meetings)} meeting(s)", meetings=meetings, command=ctx.command
        )
    )


@subcommand(
    "meeting move",
    usage="meeting move <id> at=<ISO datetime>",
    summary="Move a meeting: new invite, new deadline, reminders re-planned (lead).",
)
async def meeting_move(ctx: Context, args: Args) -> Reply:
    mid = _meeting_id(args, positional=True)
    if mid is None:
        raise UsageError("Which meeting? `meeting move 12 at=2026-03-12T15:00`.", field="meeting")
    at = args.require("at", "the new time, e.g. at=2026-03-12T15:00")
    result = await ctx.services.meetings.move(actor=ctx.actor, meeting_id=mid, starts_at=_when(at, await ctx.zone()))
    return _scheduled_reply(ctx, result, "Moved")


@subcommand(
    "meeting cancel", usage="meeting cancel <id>", summary="Cancel a meeting; calendars get a cancellation (lead)."
)
async def meeting_cancel(ctx: Context, args: Args) -> Reply:
    mid = _meeting_id(args, positional=True)
    if mid is None:
        raise UsageError("Which meeting? `meeting cancel 12`.", field="meeting")
    view = await ctx.services.meetings.cancel(actor=ctx.actor, meeting_id=mid)
    return Reply(
        message=notice(f"Cancelled {view.title} #{view.id}: the channel is told and calendars get a cancellation."),
        refresh_home={ctx.actor.user_id, *view.attendees},
    )


# --- proposals ------------------------------------------------------------------------------------

PROPOSE_FORM = Form(
    name="propose",
    title="Submit a proposal",
    submit="Submit",
    intro="A literature-backed proposal for a model-decision meeting. Nothing you type is lost if a field needs fixing.",
    fields=(
        FormField("meeting", "Meeting #", optional=True, hint="Empty: the project's one meeting open for proposals."),
        FormField("title", "Title", max_length=150),
        FormField("approach", "Approach / architecture family", placeholder="e.g. transformer", max_length=200),
        FormField(
            "refs",
            "Literature references",
            kind="multiline",
            hint="URLs, DOIs (10.1234/…) or arXiv ids (2104.01778), one per line.",
            max_length=2000,
        ),
        FormField("why", "Why it fits the problem", kind="multiline", max_length=2000),
        FormField("benefit", "Expected benefit (1 small – 5 large)", kind="select", options=SCALE),
        FormField("cost", "Estimated cost (days of effort)", kind="number"),
        FormField("risk", "Risk / complexity (1 low – 5 high)", kind="select", options=SCALE),
        FormField("compute", "Compute needed", optional=True, placeholder="e.g. 2 GPU-days", max_length=200),
        FormField("coauthors", "Co-authors", kind="users", optional=True, hint="It counts for each co-author."),
    ),
)

PROPOSAL_FIELDS = ("title", "approach", "refs", "why", "benefit", "cost", "risk", "compute")


async def _one_open_meeting(ctx: Context) -> dict[str, str]:
    """The propose/decide forms start with the project's one meeting that takes proposals, when there is one."""
    pid = await project_id(ctx, Args())
    meetings = [
        m for m in await ctx.services.meetings.upcoming(actor=ctx.actor, project_id=pid) if m.kind.proposals_required
    ]
    return {"meeting": str(meetings[0].id)} if len(meetings) == 1 else {}


@subcommand(
    "propose",
    usage='propose meeting=<id> title="…" approach="…" refs=<ref>,<ref> why="…" benefit=<1-5> cost=<days> '
    'risk=<1-5> [compute="…"] [coauthors=@a,@b]',
    summary="Submit a literature proposal for a model-decision meeting (any project member or attendee).",
    form=PROPOSE_FORM,
    prefill=_one_open_meeting,
    examples=(
        'propose meeting=12 title="Audio spectrogram transformer" approach=transformer refs=2104.01778 '
        'why="Strong on AudioSet" benefit=4 cost=5 risk=2',
    ),
)
async def propose(ctx: Context, args: Args) -> Reply:
    mid = _meeting_id(args)
    pid = await project_id(ctx, args) if mid is None else None
    result = await ctx.services.proposals.submit(
        actor=ctx.actor,
        project_id=pid,
        meeting_id=mid,
        fields={k: args.get(k) or "" for k in PROPOSAL_FIELDS},
        coauthors=_people(args.get("coauthors"), "coauthors"),
    )
    return Reply(
        message=render_message(
            "blocks/proposal_saved.json.j2",
            text=f"Proposal #{result.proposal.id} saved",
            p=result.proposal,
            m=result.meeting,
        ),
        refresh_home=set(result.proposal.authors),
    )


@action("phasegate:propose")
async def propose_button(ctx: Context, value: str) -> Reply:
    """ "Submit proposal" (reminders, announcement, App Home): the proposal form for that meeting."""
    mid = _number(value, "meeting")
    if mid is None:
        raise InvalidInput("This button names no meeting.")
    meeting = await ctx.services.meetings.get(actor=ctx.actor, meeting_id=mid)
    if meeting.status not in OPEN_STATUSES:
        return Reply(message=notice(f"{meeting.title} #{mid} is {meeting.status}: it takes no more proposals."))
    return Reply(form=OpenForm(PROPOSE_FORM, prefill={"meeting": str(mid)}))


@subcommand(
    "proposals",
    usage="proposals [meeting=<id>]",
    summary="A meeting's proposals, ranked, with its readiness so far.",
)
async def proposals(ctx: Context, args: Args) -> Reply:
    mid = _meeting_id(args)
    pid = await project_id(ctx, args) if mid is None else None
    result = await ctx.services.proposals.ranked(actor=ctx.actor, project_id=pid, meeting_id=mid)
    return Reply(
        message=render_message(
            "blocks/proposals_list.json.j2",
            text=f"{len(result.candidates.ranked)} proposal(s) for #{result.meeting.id}",
            m=result.meeting,
            c=result.candidates,
            r=result.readiness,
            command=ctx.command,
        )
    )


# --- decisions ------------------------------------------------------------------------------------

DECIDE_FORM = Form(
    name="decide",
    title="Record a decision",
    submit="Record",
    intro="The chosen proposal, why, and the tasks it creates (Deliver unless a task says phase=…).",
    fields=(
        FormField("meeting", "Meeting #", optional=True, hint="Empty: the one meeting waiting for a decision."),
        FormField("proposal", "Chosen proposal #"),
        FormField("rationale", "Rationale", kind="multiline", max_length=3000),
        FormField(
            "tasks",
            "Tasks",
            kind="multiline",
            optional=True,
            hint="One per line: title @display-name [phase=develop]",
            max_length=3000,
        ),
    ),
)


@subcommand(
    "decide",
    usage='decide meeting=<id> proposal=<id> rationale="…" tasks="title @user; title @user phase=develop"',
    summary="Record a decision: chosen proposal, rationale, runner-ups ranked, tasks (lead).",
    form=DECIDE_FORM,
    prefill=_one_open_meeting,
    examples=(
        'decide meeting=12 proposal=31 rationale="Best score, low risk" tasks="Prototype AST @raj; Tune LR @ana"',
    ),
)
async def decide(ctx: Context, args: Args) -> Reply:
    mid = _meeting_id(args)
    pid = await project_id(ctx, args) if mid is None else None
    proposal = _number(args.require("proposal", "which proposal was chosen, e.g. proposal=31"), "proposal")
    assert proposal is not None
    record = await ctx.services.decisions.decide(
        actor=ctx.actor,
        project_id=pid,
        meeting_id=mid,
        proposal_id=proposal,
        rationale=args.get("rationale") or "",
        tasks=parse_tasks(args.get("tasks")),
    )
    tasks = "".join(
        f"\n• #{t.number} {t.title}" + (f" → {mention(t.assignee_user_id)}" if t.assignee_user_id else "")
        for t in record.tasks
    )
    gate = (
        "The meeting was ready: this decision meets Develop's gate."
        if record.decision.ready
        else "The meeting was not ready: Develop's gate needs an override."
    )
    return Reply(
        message=notice(
            f"Decision recorded for {record.meeting.title} #{record.meeting.id}: #{record.chosen.id} "
            f"{record.chosen.title}. {gate} The channel has the record."
            + (f"\nTasks ({len(record.tasks)}):{tasks}" if tasks else "")
        ),
        refresh_home={ctx.actor.user_id, *(t.assignee_user_id for t in record.tasks if t.assignee_user_id)},
    )


@action("phasegate:decide")
async def decide_button(ctx: Context, value: str) -> Reply:
    """ "Record decision" (the daily nudge): the decision form with the meeting's proposals to pick from."""
    mid = _number(value, "meeting")
    if mid is None:
        raise InvalidInput("This button names no meeting.")
    meeting, ranked = await ctx.services.decisions.choices(actor=ctx.actor, meeting_id=mid)
    if not ranked:
        return Reply(message=notice(f"{meeting.title} #{mid} has no proposals to choose from."))
    options = tuple((str(p.id), f"#{p.id} {p.title}"[:75]) for p in ranked)
    fields = tuple(
        dataclasses.replace(f, kind="select", options=options, hint="Ranked; the first is the top score.")
        if f.name == "proposal"
        else f
        for f in DECIDE_FORM.fields
    )
    return Reply(form=OpenForm(dataclasses.replace(DECIDE_FORM, fields=fields), prefill={"meeting": str(mid)}))


# --- escalations ----------------------------------------------------------------------------------


async def _escalation(ctx: Context, value: str, choice: Choice) -> Reply:
    mid = _number(value, "meeting")
    if mid is None:
        raise InvalidInput("This button names no meeting.")
    view = await ctx.services.rituals.escalation(actor=ctx.actor, meeting_id=mid, choice=choice)
    said = {
        "postpone": "postponed: a new invite and new reminders went out",
        "hold": "will be held anyway; the channel is told",
        "cancel": "is cancelled; calendars get a cancellation",
    }[choice]
    return Reply(message=notice(f"{view.title} #{view.id} {said}."), refresh_home={ctx.actor.user_id, *view.attendees})


@action("phasegate:escalation_postpone")
async def escalation_postpone(ctx: Context, value: str) -> Reply:
    return await _escalation(ctx, value, "postpone")


@action("phasegate:escalation_hold")
async def escalation_hold(ctx: Context, value: str) -> Reply:
    return await _escalation(ctx, value, "hold")


@action("phasegate:escalation_cancel")
async def escalation_cancel(ctx: Context, value: str) -> Reply:
    return await _escalation(ctx, value, "cancel")
