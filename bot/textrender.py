"""Block Kit as readable terminal text: sections, fields, context, buttons as [Label], dates in a zone."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

_DATE = re.compile(r"<!date\^(\d+)\^([^|>]*)(?:\^[^|>]*)?\|([^>]*)>")
_USER = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_CHANNEL = re.compile(r"<#([CGD][A-Z0-9]+)(?:\|([^>]*))?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]+))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)>")


def format_when(ts: int, tz: str) -> str:
    when = datetime.fromtimestamp(ts, UTC).astimezone(ZoneInfo(tz))
    return when.strftime("%a %d %b %Y %H:%M") + f" {when.tzname()}"


def plain(text: str, *, names: Mapping[str, str], tz: str) -> str:
    """Slack mrkdwn → terminal text: mentions as @name, dates in `tz`, links as `label (url)`."""

    def date(m: re.Match[str]) -> str:
        fmt = m[2]
        ts = int(m[1])
        if "{time}" not in fmt and "{date_short}" in fmt:
            return datetime.fromtimestamp(ts, UTC).astimezone(ZoneInfo(tz)).strftime("%d %b %Y")
        return format_when(ts, tz)

    out = _DATE.sub(date, text)
    out = _USER.sub(lambda m: "@" + names.get(m[1], m[1]), out)
    out = _CHANNEL.sub(lambda m: "#" + (m[2] or names.get(m[1], m[1])), out)
    out = _LINK.sub(lambda m: f"{m[2]} ({m[1]})" if m[2] else m[1], out)
    out = _SPECIAL.sub(lambda m: "@" + m[1], out)
    return out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text(obj: Any, render: Callable[[str], str]) -> str:
    if isinstance(obj, dict):
        return render(str(obj.get("text", ""))) if obj.get("type") == "mrkdwn" else str(obj.get("text", ""))
    return render(str(obj or ""))


def buttons_of(blocks: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(label, action_id, value) of every button in the blocks, in order."""
    found = []
    for block in blocks:
        elements = list(block.get("elements") or [])
        if isinstance(block.get("accessory"), dict):
            elements.append(block["accessory"])
        for e in elements:
            if isinstance(e, dict) and e.get("type") == "button":
                found.append((str(e["text"]["text"]), str(e.get("action_id", "")), str(e.get("value", ""))))
    return found


def render_blocks(blocks: list[dict[str, Any]], *, names: Mapping[str, str], tz: str, width: int = 100) -> str:
    """One message as lines of text."""

    def render(text: str) -> str:
        return plain(text, names=names, tz=tz)

    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(f"== {_text(block.get('text'), render)} ==")
        elif kind == "divider":
            lines.append("-" * 40)
        elif kind == "section":
            if block.get("text"):
                lines.extend(_wrap(_text(block["text"], render), width))
            fields = [_text(f, render) for f in block.get("fields") or []]
            for f in fields:
                lines.extend("  " + line for line in _wrap(f.replace("\n", ": ", 1), width - 2))
            accessory = block.get("accessory")
            if isinstance(accessory, dict) and accessory.get("type") == "button":
                lines.append(f"  [{accessory['text']['text']}]")
        elif kind == "context":
            parts = [_text(e, render) for e in block.get("elements") or [] if isinstance(e, dict) and "text" in e]
            wrapped = _wrap(" · ".join(parts), width - 4)
            lines.extend(("  (" if i == 0 else "   ") + line for i, line in enumerate(wrapped))
            lines[-1] += ")"
        elif kind == "actions":
            labels = [f"[{label}]" for label, _, _ in buttons_of([block])]
            if labels:
                lines.append("  " + "  ".join(labels))
        elif kind == "input":
            lines.append(f"  {block.get('label', {}).get('text', '')}: ____")
    return "\n".join(lines)


def _wrap(text: str, width: int) -> list[str]:
    out: list[str] = []
    for para in text.split("\n"):
        out.extend(textwrap.wrap(para, width=width, replace_whitespace=False) or [""])
    return out
