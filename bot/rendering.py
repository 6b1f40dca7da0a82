"""One Jinja2 environment over templates/: Block Kit JSON, GitHub issue bodies, calendar invites."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from bot.paths import TEMPLATES

# Block Kit limits (https://api.slack.com/reference/block-kit)
SECTION_TEXT = 3000
HEADER_TEXT = 150
BUTTON_TEXT = 75
CONTEXT_TEXT = 2000
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100


def slack_escape(value: object) -> str:
    """Escape user text for mrkdwn: only `&`, `<`, `>` (so `<!channel>` pings nobody)."""
    text = "" if value is None else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_unescape(text: str) -> str:
    """Text as the person typed it: Slack sends `&`, `<` and `>` typed in a slash command as entities."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def truncate(value: object, limit: int) -> str:
    """Cut to `limit` characters, ending with "…" when cut."""
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def mrkdwn(value: object, limit: int = SECTION_TEXT) -> str:
    """Escape, then truncate — for user text placed in a section."""
    return truncate(slack_escape(value), limit)


# Our own mentions travel through sentences as private-use tokens, so that after escaping only they
# become live `<@U…>` mentions — never a `<@U…>` or `<!channel>` typed by a user.
_MENTION_OPEN, _MENTION_CLOSE = "\ue000", "\ue001"
_OUR_MENTION = re.compile("\ue000([UW][A-Z0-9]+)\ue001")


def mention(user_id: str) -> str:
    """A mention of a person in one of our sentences (rendered by `ours` as `<@U…>`)."""
    return f"{_MENTION_OPEN}{user_id}{_MENTION_CLOSE}"


MENTION_RE = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")


def mentioned_user(word: str) -> str | None:
    """`<@U123|name>` or `<@U123>` → `U123` (as Slack sends mentions in command text)."""
    m = MENTION_RE.match(word.strip())
    return m[1] if m else None


def strip_mention_tokens(text: str) -> str:
    """Remove the private-use characters from user input, so nobody can forge one of our mentions."""
    return text.replace(_MENTION_OPEN, "").replace(_MENTION_CLOSE, "")


def ours(value: object, limit: int = SECTION_TEXT) -> str:
    """Our own sentences, which may quote user input: all escaped; only `mention()`s become live mentions."""
    return truncate(_OUR_MENTION.sub(r"<@\1>", slack_escape(value)), limit)


def bullets(items: object, limit: int = SECTION_TEXT) -> str:
    """User-supplied lines as an escaped bullet list that fits a section."""
    lines = [f"• {slack_escape(item)}" for item in (items if isinstance(items, (list, tuple)) else [items])]
    return truncate("\n".join(lines), limit)


def json_str(value: object) -> str:
    """A JSON string literal (with quotes) — the only safe way to put text inside a JSON template."""
    return json.dumps("" if value is None else str(value), ensure_ascii=False)


def slack_date(when: datetime, fmt: str = "{date_short_pretty} {time}") -> str:
    """Slack's `<!date^…>`: each reader sees the time in their own zone; the fallback is UTC."""
    ts = int(when.timestamp())
    fallback = when.strftime("%a %d %b %Y %H:%M UTC")
    return f"<!date^{ts}^{fmt}|{fallback}>"


def github_safe(value: object) -> str:
    """User text in a GitHub issue body: no @-mentions, no HTML comments (our marker), no raw HTML."""
    text = "" if value is None else str(value)
    text = text.replace("<!--", "&lt;!--").replace("-->", "--&gt;")
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    # A zero-width joiner after @ keeps the text readable and pings nobody (users, @org/team).
    return text.replace("@", "@\u200d")


def user_list(value: object) -> list[str]:
    """`<@U1>,<@U2|ana>` or `U1 U2` → ["U1", "U2"] (for pre-filling user pickers)."""
    return re.findall(r"(?<![A-Z0-9])([UW][A-Z0-9]{2,})", str(value or ""))


def epoch(value: object) -> int:
    """An ISO date-time (or datetime) → Unix seconds, for Slack's date-time picker."""
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return int(when.timestamp())


def new_environment() -> Environment:
    """A Jinja2 Environment over templates/ with the house settings and no filters (each user adds its own)."""
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # compiled once: templates ship with the code (a new version is a restart)
    )


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = new_environment()
    env.filters.update(
        slack_escape=slack_escape,
        truncate_to=truncate,
        mrkdwn=mrkdwn,
        bullets=bullets,
        ours=ours,
        user_list=user_list,
        epoch=epoch,
        json_str=json_str,
        slack_date=slack_date,
        github_safe=github_safe,
    )
    return env


def render_text(name: str, **context: Any) -> str:
    """Render a text template (GitHub bodies, .ics, manifest)."""
    return environment().get_template(name).render(**context)


@dataclass
class Message:
    """A Slack message: fallback text plus Block Kit blocks."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


DEFAULT_COMMAND = "/phasegate"
_COMMAND_WORD = re.compile(r"(?<![\w/])/phasegate\b")


def swap_command(value: Any, command: str) -> Any:
    """`value` (text, or Block Kit JSON) with every `/phasegate` hint naming the configured slash command."""
    if isinstance(value, str):
        return _COMMAND_WORD.sub(command, value)
    if isinstance(value, list):
        return [swap_command(v, command) for v in value]
    if isinstance(value, dict):
        return {k: swap_command(v, command) for k, v in value.items()}
    return value


def with_command(message: Message, command: str) -> Message:
    """The message as this workspace types it: Phasegate's texts say `/phasegate …`; where the slash command is
    configured otherwise (PHASEGATE_SLASH_COMMAND), every hint says that instead. Each transport calls this once,
    where it hands a message over (the outbox, an answer, a Home tab, a form)."""
    if command == DEFAULT_COMMAND:
        return message
    return Message(text=swap_command(message.text, command), blocks=swap_command(message.blocks, command))


def render_blocks(name: str, **context: Any) -> list[dict[str, Any]]:
    """Render a `blocks/*.json.j2` template to a list of Block Kit blocks (validated JSON)."""
    raw = environment().get_template(name).render(**context)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:  # a template bug, not user input: user text goes through json_str
        raise ValueError(f"template {name} rendered invalid JSON: {exc}") from exc
    blocks = data["blocks"] if isinstance(data, dict) else data
    if not isinstance(blocks, list):
        raise ValueError(f"template {name} must render a list of blocks")
    return blocks


def render_message(name: str, *, text: str, **context: Any) -> Message:
    """A message from a template, capped at Slack's 50 blocks (the last says how many were left out)."""
    blocks = render_blocks(name, **context)
    if len(blocks) > MESSAGE_BLOCKS:
        left = len(blocks) - (MESSAGE_BLOCKS - 1)
        blocks = blocks[: MESSAGE_BLOCKS - 1] + [
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"…and {left} more blocks not shown"}]}
        ]
    return Message(text=truncate(text, 3000), blocks=blocks)


def render_view(name: str, **context: Any) -> dict[str, Any]:
    """A modal or Home view from a template (a JSON object), capped at 100 blocks."""
    raw = environment().get_template(name).render(**context)
    view: dict[str, Any] = json.loads(raw)
    if len(view.get("blocks", [])) > VIEW_BLOCKS:
        view["blocks"] = view["blocks"][: VIEW_BLOCKS - 1] + [
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "…more not shown"}]}
        ]
    return view
