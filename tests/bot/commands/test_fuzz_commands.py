"""Any text thrown at any subcommand gets an ephemeral answer (or its form) — never a traceback."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.clock import FakeClock
from bot.commands import REGISTRY, Context, dispatch, render_form
from bot.db.session import Database
from bot.services import Actor, Services
from tests.handlers.harness import validate_blocks, validate_view

WORDS = st.sampled_from(
    [
        "x",
        "=",
        '"',
        "'",
        "“",
        "<@U123|ana>",
        "<@U999>",
        "<!channel>",
        "@ana",
        "repo=acme/x",
        "repo=",
        "meeting=1",
        "proposal=1",
        "at=2026-03-10T10:00",
        "window=2026-03-09..2026-03-13",
        "value=0.5",
        "value=nan",
        "benefit=9",
        "cost=-1",
        "risk=3",
        "refs=arXiv:1706.03762",
        "phase=deliver",
        "role=ml",
        "outcome=ship",
        "override=",
        "until=2020-01-01",
        "1",
        "#2",
        "dry-run",
        "ack",
        "…",
        "\n",
    ]
)
TEXT = st.one_of(st.text(max_size=120), st.lists(st.one_of(WORDS, st.text(max_size=12)), max_size=8).map(" ".join))


@pytest.fixture
def runner_and_services(tmp_path: Path, sqlite_template: Path) -> Iterator[tuple[asyncio.Runner, Services]]:
    path = tmp_path / "fuzz.db"
    shutil.copy(sqlite_template, path)
    with asyncio.Runner() as runner:
        db = Database(f"sqlite:///{path}")
        services = Services.build(db, FakeClock())
        ctx = Context(services=services, actor=Actor("T1", "U0LEAD"), channel_id="C1")
        runner.run(dispatch(ctx, "init fuzzed repo=acme/fuzz"))
        yield runner, services
        runner.run(db.dispose())


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(REGISTRY)), text=TEXT, user=st.sampled_from(["U0LEAD", "U0OTHER"]))
def test_any_text_gets_an_answer(
    runner_and_services: tuple[asyncio.Runner, Services], name: str, text: str, user: str
) -> None:
    runner, services = runner_and_services
    ctx = Context(services=services, actor=Actor("T1", user), channel_id="C1")
    reply = runner.run(dispatch(ctx, f"{name} {text}"))
    assert reply.message is not None or reply.form is not None
    if reply.message is not None:
        validate_blocks(reply.message.blocks)
        shown = " ".join(str(b) for b in reply.message.blocks)
        assert "went wrong on our side" not in shown, (name, text)
    if reply.form is not None:
        validate_view(render_form(reply.form))
