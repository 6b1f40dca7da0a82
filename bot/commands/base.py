"""The transport-neutral command layer: parse `/phasegate` text, forms (modals), replies, the registry."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from bot.errors import InvalidInput, PhasegateError
from bot.rendering import Message, mentioned_user, ours, render_message, strip_mention_tokens
from bot.services import Actor, Services

log = logging.getLogger(__name__)

MENTION_ANY_RE = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})


class UsageError(InvalidInput):
    """The text does not follow the subcommand's syntax; the reply shows the usage."""


@dataclass
class Args:
    """A subcommand's input: positional words and key=value options (from text or from a modal)."""

    positional: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    from_form: bool = False

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.options.get(key, default)

    def require(self, key: str, hint: str) -> str:
        value = self.options.get(key)
        if value is None or not value.strip():
            raise InvalidInput(f"`{key}=` is missing: {hint}", field=key)
        return value.strip()

    @property
    def empty(self) -> bool:
        return not self.positional and not self.options


MAX_COMMAND_TEXT = 8000  # characters; Slack itself caps slash-command text well below a megabyte
_WHITESPACE = frozenset(" \t\r\n")
_UNCLOSED = 'A quote is not closed. Put text with spaces in matching quotes: title="My idea".'
# C0 controls except tab and newlines, DEL, C1 controls and lone surrogates: never meant, and PostgreSQL, GitHub
# and Slack refuse some of them (a NUL byte cannot be stored in a PostgreSQL text column at all).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
MIN_YEAR, MAX_YEAR = 2000, 2100  # dates people mean for meetings and plans; anything else is a typo


def clean_text(text: str) -> str:
    """User text without control characters (NUL, escape sequences, lone surrogates); tabs and newlines stay."""
    return _CONTROL_RE.sub("", text)


def tokenize(text: str) -> list[str]:
    """Shell-style words (as `shlex.split`, in one linear pass); Slack's curly quotes count as quotes;
    an unclosed quote is explained."""
    words: list[str] = []
    chars: list[str] = []
    in_word = False  # inside a word (possibly an empty one, made of quotes: "")
    quote = ""  # the open quote character, if any
    chars_append = chars.append
    it = iter(text.translate(_SMART_QUOTES))
    for ch in it:
        if quote == "'":
            if ch == "'":
                quote = ""
            else:
                chars_append(ch)
        elif quote == '"':
            if ch == '"':
                quote = ""
            elif ch == "\\":
                nxt = next(it, None)
                if nxt is None:
                    raise UsageError(_UNCLOSED)
                if nxt not in ('"', "\\"):
                    chars_append(ch)  # inside double quotes only \" and \\ are escapes
                chars_append(nxt)
            else:
                chars_append(ch)
        elif ch in _WHITESPACE:
            if in_word:
                words.append("".join(chars))
                chars.clear()
                in_word = False
        elif ch == "\\":
            nxt = next(it, None)
            if nxt is None:
                raise UsageError(_UNCLOSED)
            chars_append(nxt)
            in_word = True
        elif ch in "'\"":
            quote = ch
            in_word = True
        else:
            chars_append(ch)
            in_word = True
    if quote:
        raise UsageError(_UNCLOSED)
    if in_word:
        words.append("".join(chars))
    return words


def split_args(words: Sequence[str]) -> Args:
    args = Args()
    for word in words:
        key, eq, value = word.partition("=")
        if eq and re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_-]*", key):
            args.options[key.lower().replace("-", "_")] = value
        else:
            args.positional.append(word)
    return args


def user_id(word: str) -> str | None:
    """`<@U123|name>` or `<@U123>` → `U123` (as Slack sends mentions in command text)."""
    return mentioned_user(word)


def user_ids(text: str, *, field_name: str) -> list[str]:
    """Every mention in a comma/space separated list; anything else is refused by name."""
    ids: list[str] = []
    for part in (p for p in re.split(r"[\s,]+", text.strip()) if p):
        uid = user_id(part)
        if uid is None:
            raise InvalidInput(
                f"`{part[:40]}` is not a Slack user. Mention people with @, e.g. {field_name}=@ana,@raj.",
                field=field_name,
            )
        ids.append(uid)
    return list(dict.fromkeys(ids))


def parse_when(text: str, tz: str) -> datetime:
    """An ISO date-time; without an offset it is read in the acting person's time zone."""
    raw = text.strip().replace(" ", "T", 1) if "T" not in text and " " in text.strip() else text.strip()
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"`{text[:40]}` is not a date and time. Use ISO format, e.g. at=2026-03-12T15:00 "
            "(your time zone) or at=2026-03-12T14:00Z.",
            field="at",
        ) from None
    _in_range(when.date(), text, "at")
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(tz))
    return when.astimezone(UTC)


def _in_range(day: date, text: str, field_name: str) -> None:
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise InvalidInput(
            f"`{text.strip()[:40]}` is not a year we can plan for. Use a date between {MIN_YEAR} and {MAX_YEAR}, "
            f"e.g. {field_name}=2026-03-20.",
            field=field_name,
        )


def parse_date(text: str, field_name: str) -> date:
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"`{text[:40]}` is not a date. Use YYYY-MM-DD, e.g. {field_name}=2026-03-20.", field=field_name
        ) from None
    _in_range(day, text, field_name)
    return day


# --- forms (modals) -----------------------------------------------------------------------------

FieldKind = Literal["text", "multiline", "number", "select", "users", "user", "datetime", "date"]


@dataclass(frozen=True)
class FormField:
    name: str  # the option name the subcommand reads (and the modal's block_id)
    label: str
    kind: FieldKind = "text"
    optional: bool = False
    hint: str = ""
    placeholder: str = ""
    options: tuple[tuple[str, str], ...] = ()  # (value, label) for selects
    max_length: int = 3000


@dataclass(frozen=True)
class Form:
    """A modal: which subcommand its submission runs, and its fields."""

    name: str  # also the modal's callback_id suffix
    title: str  # ≤ 24 chars
    submit: str
    fields: tuple[FormField, ...]
    intro: str = ""


# --- replies ------------------------------------------------------------------------------------


@dataclass
class OpenForm:
    form: Form
    prefill: dict[str, str] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)  # carried through the modal (e.g. meeting id)


@dataclass
class Reply:
    """What a command produced: a message for the invoker, a form to open, a channel post, homes to refresh."""

    message: Message | None = None
    form: OpenForm | None = None
    public: Message | None = None  # a channel post not tied to a change (queued through the outbox on delivery)
    announcements: list[int] = field(default_factory=list)  # outbox rows of channel posts queued with the change
    refresh_home: set[str] = field(default_factory=set)
    field_errors: dict[str, str] = field(default_factory=dict)  # for modal submissions
    changed: bool = True  # False: the command only read (`status`), so nothing can need syncing to GitHub


@dataclass
class Context:
    services: Services
    actor: Actor
    channel_id: str | None
    # The acting person's zone, for reading and showing times; None: read from their stored profile when a command
    # first needs it (`zone`), so a command that shows no local time does not read it at all.
    tz: str | None = "UTC"
    command: str = "/phasegate"

    def now(self) -> datetime:
        return self.services.clock.now()

    async def zone(self) -> str:
        """The acting person's zone: as given, else from their stored profile (UTC when it has none)."""
        if self.tz is None:
            people = await self.services.projects.members(team_id=self.actor.team_id, user_ids=[self.actor.user_id])
            person = people.get(self.actor.user_id)
            self.tz = person.timezone if person is not None and person.timezone else "UTC"
        return self.tz


Handler = Callable[[Context, Args], Awaitable[Reply]]
Prefill = Callable[[Context], Awaitable[dict[str, str]]]


@dataclass(frozen=True)
class Subcommand:
    name: str
    usage: str
    summary: str
    handler: Handler
    form: Form | None = None  # opened when the subcommand is given no input
    examples: tuple[str, ...] = ()
    prefill: Prefill | None = None  # what the form can already fill in (e.g. the one open meeting)


REGISTRY: dict[str, Subcommand] = {}
FORMS: dict[str, Form] = {}


def subcommand(
    name: str,
    *,
    usage: str,
    summary: str,
    form: Form | None = None,
    examples: Sequence[str] = (),
    prefill: Prefill | None = None,
) -> Callable[[Handler], Handler]:
    """Register a subcommand (and its form)."""

    def register(fn: Handler) -> Handler:
        REGISTRY[name] = Subcommand(name, usage, summary, fn, form, tuple(examples), prefill)
        if form is not None:
            FORMS[form.name] = form
        return fn

    return register


def reply_text(template: str, *, text: str, **context: Any) -> Reply:
    return Reply(message=render_message(template, text=text, **context))


def notice(text: str, *, title: str = "", detail: Sequence[str] = (), usage: str = "") -> Message:
    """A short answer (success or refusal) from the generic notice template; user text in it is escaped."""
    return render_message(
        "blocks/notice.json.j2", text=ours(text), title=title, body=text, detail=list(detail), usage=usage
    )


def error_reply(exc: PhasegateError, *, command: str, sub: Subcommand | None) -> Reply:
    detail = list(getattr(exc, "missing", []) or [])
    usage = f"{command} {sub.usage}" if sub and isinstance(exc, InvalidInput) else ""
    return Reply(message=notice(exc.message, title="", detail=detail, usage=usage), field_errors=dict(exc.fields))


def resolve_name(text: str) -> tuple[str, list[str]]:
    """`meeting schedule …` → ("meeting schedule", rest): two-word subcommands win over one-word ones."""
    words = tokenize(text)
    if len(words) >= 2 and f"{words[0].lower()} {words[1].lower()}" in REGISTRY:
        return f"{words[0].lower()} {words[1].lower()}", words[2:]
    if words:
        return words[0].lower(), words[1:]
    return "help", []


def too_long_text(length: int | None, *, command: str) -> str:
    """The refusal of an over-long command (`length` None: refused before it was read, in the HTTP layer)."""
    size = f"{length:,} characters" if length is not None else f"far more than {MAX_COMMAND_TEXT:,} characters"
    return (
        f"That command is too long ({size}; the limit is {MAX_COMMAND_TEXT:,}). "
        f"Put long text in the form instead: run `{command} <subcommand>` with nothing after it."
    )


def too_long(length: int | None, *, command: str) -> Message:
    return notice(too_long_text(length, command=command))


async def dispatch(ctx: Context, text: str) -> Reply:
    """Run one `/phasegate` text. Always returns a reply: never raises, never silence."""
    sub: Subcommand | None = None
    try:
        if len(text or "") > MAX_COMMAND_TEXT:  # checked first: nothing below reads a megabyte of text
            raise UsageError(too_long_text(len(text), command=ctx.command))
        name, words = resolve_name(strip_mention_tokens(clean_text(text or "")))
        sub = REGISTRY.get(name)
        if sub is None:
            group = [s for s in REGISTRY if s.startswith(name + " ")]
            if group:
                raise UsageError(
                    f"`{name}` needs one of: {', '.join(s.split(' ', 1)[1] for s in sorted(group))}.",
                )
            raise UsageError(f"There is no subcommand `{name[:40]}`. `{ctx.command} help` lists them all.")
        args = split_args(words)
        if args.empty and sub.form is not None:
            prefill: dict[str, str] = {}
            if sub.prefill is not None:
                try:
                    prefill = await sub.prefill(ctx)
                except PhasegateError:  # nothing to suggest: the form opens empty
                    prefill = {}
            return Reply(form=OpenForm(sub.form, prefill=prefill, meta={"channel": ctx.channel_id or ""}))
        return await sub.handler(ctx, args)
    except PhasegateError as exc:
        return error_reply(exc, command=ctx.command, sub=sub)
    except Exception:
        log.exception("command failed: %r (team=%s user=%s)", (text or "")[:200], ctx.actor.team_id, ctx.actor.user_id)
        return Reply(
            message=notice(
                "Sorry — something went wrong on our side and nothing was changed. "
                "Please try again; if it keeps failing, tell your workspace admin."
            )
        )


async def submit_form(ctx: Context, form_name: str, values: Mapping[str, str], meta: Mapping[str, str]) -> Reply:
    """A modal's submission runs the same subcommand as the text would (one implementation)."""
    form = FORMS.get(form_name)
    sub = next((s for s in REGISTRY.values() if s.form is not None and s.form.name == form_name), None)
    if form is None or sub is None:
        return Reply(message=notice("This form is no longer available. Run the command again."))
    missing = {
        f.name: f"{f.label} is required."
        for f in form.fields
        if not f.optional and not str(values.get(f.name) or "").strip()
    }
    if missing:
        return Reply(field_errors=missing, message=notice("Some required fields are empty."))
    options = {k: strip_mention_tokens(clean_text(str(v))) for k, v in values.items() if v is not None and str(v) != ""}
    options.update({k: v for k, v in meta.items() if k != "channel" and v})
    reply = await _guarded(ctx, sub, Args(options=dict(options), from_form=True))
    if reply.field_errors:
        known = {f.name for f in form.fields}
        errors = {k: v for k, v in reply.field_errors.items() if k in known}
        if not errors:  # an error about something not on the form: show it on the first field
            errors = {form.fields[0].name: next(iter(reply.field_errors.values()))}
        reply.field_errors = errors
    return reply


async def _guarded(ctx: Context, sub: Subcommand, args: Args) -> Reply:
    try:
        return await sub.handler(ctx, args)
    except PhasegateError as exc:
        reply = error_reply(exc, command=ctx.command, sub=sub)
        if not reply.field_errors:
            reply.field_errors = {"_": exc.message}
        return reply
    except Exception:
        log.exception("form %s failed (team=%s user=%s)", sub.name, ctx.actor.team_id, ctx.actor.user_id)
        return Reply(
            field_errors={"_": "Something went wrong on our side; nothing was changed. Please try again."},
            message=notice("Sorry — something went wrong on our side and nothing was changed."),
        )


ActionHandler = Callable[[Context, str], Awaitable[Reply]]
ACTIONS: dict[str, ActionHandler] = {}


def action(action_id: str) -> Callable[[ActionHandler], ActionHandler]:
    """Register a button handler; the button's value carries ids only."""

    def register(fn: ActionHandler) -> ActionHandler:
        ACTIONS[action_id] = fn
        return fn

    return register


async def run_action(ctx: Context, action_id: str, value: str) -> Reply:
    handler = ACTIONS.get(action_id)
    if handler is None:
        return Reply(message=notice("This button is no longer active."))
    try:
        return await handler(ctx, value)
    except PhasegateError as exc:
        return error_reply(exc, command=ctx.command, sub=None)
    except Exception:
        log.exception("action %s failed (team=%s user=%s)", action_id, ctx.actor.team_id, ctx.actor.user_id)
        return Reply(message=notice("Sorry — something went wrong on our side and nothing was changed."))
