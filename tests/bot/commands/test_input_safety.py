"""Bad input never freezes or crashes: linear tokenizer, a length limit, control characters, sane dates."""

from __future__ import annotations

import shlex
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import select

from bot.commands import Context, dispatch
from bot.commands.base import _SMART_QUOTES, MAX_COMMAND_TEXT, UsageError, clean_text, submit_form, tokenize
from bot.db.models import Brief, Task
from bot.rendering import Message
from bot.services import Actor, Services

LEAD = Actor("T1", "U0LEAD")


def old_tokenize(text: str) -> list[str] | None:
    """The tokenizer before: shlex (None where it refused the text)."""
    try:
        return shlex.split(text.translate(_SMART_QUOTES), posix=True)
    except ValueError:
        return None


def new_tokenize(text: str) -> list[str] | None:
    try:
        return tokenize(text)
    except UsageError:
        return None


SHELLISH = st.text(alphabet=st.sampled_from(list("ab =\"'\\“”‘’\t\n\r#é€@<>|") + ["\u00a0", "\x00"]), max_size=60)


@settings(max_examples=3000, deadline=None)
@given(text=st.one_of(SHELLISH, st.text(max_size=80)))
def test_tokenize_matches_shlex_on_normal_input(text: str) -> None:
    assert new_tokenize(text) == old_tokenize(text)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('task add "Label 500 songs" @raj phase=define', ["task", "add", "Label 500 songs", "@raj", "phase=define"]),
        ("brief problem=“Tag songs” criterion=‘a < b’", ["brief", "problem=Tag songs", "criterion=a < b"]),
        ('a "" b', ["a", "", "b"]),
        (r'x "say \"hi\" \n"', ["x", 'say "hi" \\n']),
        (r"a\ b", ["a b"]),
    ],
)
def test_tokenize_examples(text: str, words: list[str]) -> None:
    assert tokenize(text) == words


@pytest.mark.parametrize("text", ['init "broken', "x 'y", "trailing \\"])
def test_unclosed_quotes_are_explained(text: str) -> None:
    with pytest.raises(UsageError, match="A quote is not closed"):
        tokenize(text)


def test_tokenize_is_linear() -> None:
    """One 8,000-character word and 200,000 characters of words: both well under a second (shlex was quadratic)."""
    timings = {}
    for label, text in (("one word", "x" * MAX_COMMAND_TEXT), ("quoted", f'"{"y " * 100_000}"'), ("words", "ab " * 66_000)):
        started = time.perf_counter()
        words = tokenize(text)
        timings[label] = time.perf_counter() - started
        assert words
    print(f"\ntokenize timings: {', '.join(f'{k} {v * 1000:.1f} ms' for k, v in timings.items())}")
    assert max(timings.values()) < 2.0


def text_of(message: Message | None) -> str:
    assert message is not None
    return " ".join(str(b) for b in message.blocks)


async def test_a_megabyte_of_command_text_is_answered_too_long_quickly(services: Services) -> None:
    ctx = Context(services=services, actor=LEAD, channel_id="C1")
    text = 'task add "' + "x" * (1024 * 1024) + '"'
    started = time.perf_counter()
    reply = await dispatch(ctx, text)
    elapsed = time.perf_counter() - started
    shown = text_of(reply.message)
    print(f"\n1 MB of command text answered in {elapsed * 1000:.1f} ms")
    assert "too long" in shown and "8,000" in shown and "went wrong" not in shown
    assert elapsed < 2.0


async def test_control_characters_never_reach_the_database(services: Services) -> None:
    ctx = Context(services=services, actor=LEAD, channel_id="C1")
    await dispatch(ctx, "init genres repo=acme/genres")
    reply = await dispatch(ctx, 'task add "Label\x00 songs\x1b[31m \x7fnow\ud800" body="a\x00b"')
    assert "went wrong" not in text_of(reply.message)
    form = await submit_form(ctx, "brief", {"problem": "Tag\x00 songs\x08 by genre\nfast", "criterion": ""}, {})
    assert not form.field_errors, form.field_errors
    async with services.db.session() as s:
        task = (await s.execute(select(Task).where(Task.origin == "manual"))).scalar_one()
        brief = (await s.execute(select(Brief))).scalar_one()
    assert task.title == "Label songs[31m now"
    assert task.body == "ab"
    assert brief.problem == "Tag songs by genre\nfast"


def test_clean_text_keeps_tabs_newlines_and_unicode() -> None:
    assert clean_text("a\tb\nc\r\nd é 🎵 \u00a0") == "a\tb\nc\r\nd é 🎵 \u00a0"
    assert clean_text("\x00\x01\x1f\x7f\x85\x9f\udfff") == ""


@pytest.mark.parametrize(
    "text",
    [
        "meeting schedule kind=model-decision window=0001-01-01..0001-01-02",
        "meeting schedule kind=model-decision window=2026-03-10..9999-12-31",
        "meeting schedule kind=model-decision at=0001-01-01T00:00+14:00",
        "meeting schedule kind=model-decision at=9999-12-31T23:30-12:00",
        "meeting schedule kind=model-decision at=1",
    ],
)
async def test_dates_outside_a_sane_range_are_refused_with_a_message(services: Services, text: str) -> None:
    ctx = Context(services=services, actor=LEAD, channel_id="C1")
    await dispatch(ctx, "init genres repo=acme/genres")
    shown = text_of((await dispatch(ctx, text)).message)
    assert "went wrong" not in shown
    assert "between 2000 and 2100" in shown
