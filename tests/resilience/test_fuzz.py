"""Fuzzing at volume: 7,000 slash-command texts and 3,000 modal submissions — always an answer that says what to fix."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.clock import FakeClock
from bot.commands import FORMS, REGISTRY, Context, dispatch, submit_form
from bot.db.session import Database
from bot.services import Actor, Services
from tests.bot.commands.test_fuzz_commands import TEXT
from tests.handlers.harness import validate_blocks

pytestmark = pytest.mark.resilience
COMMANDS, FORMS_SUBMITTED = 7000, 3000
counts = {"commands": 0, "forms": 0, "field_errors": 0}

VALUE = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["", "1", "5", "9", "-1", "nan", "0.5", "acme/x", "<@U0LEAD>", "<!channel>", "2026-03-10",
                     "2026-03-10T10:00Z", "arXiv:2104.01778", "https://example.com/x", "model-decision", "ship"]),
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[tuple[asyncio.Runner, Services]]:
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    shutil.copy(sqlite_template, path)
    with asyncio.Runner() as runner:
        db = Database(f"sqlite:///{path}")
        services = Services.build(db, FakeClock())
        lead = Context(services=services, actor=Actor("T1", "U0LEAD"), channel_id="C1")
        runner.run(dispatch(lead, "init fuzz repo=acme/fuzz"))
        runner.run(dispatch(lead, "meeting schedule kind=model-decision at=2026-01-20T10:00Z attendees=<@U0ML>"))
        yield runner, services
        runner.run(db.dispose())
    print(f"\nfuzzing: {counts['commands']} command texts, {counts['forms']} modal submissions "
          f"({counts['field_errors']} refused with field errors), 0 tracebacks")


def _ctx(services: Services, user: str) -> Context:
    return Context(services=services, actor=Actor("T1", user), channel_id="C1")


@settings(max_examples=COMMANDS, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(name=st.sampled_from(sorted(REGISTRY)), text=TEXT, user=st.sampled_from(["U0LEAD", "U0ML", "U0NEW"]))
def test_command_texts(world: tuple[asyncio.Runner, Services], name: str, text: str, user: str) -> None:
    runner, services = world
    reply = runner.run(dispatch(_ctx(services, user), f"{name} {text}"))
    counts["commands"] += 1
    assert reply.message is not None or reply.form is not None
    if reply.message is not None:
        validate_blocks(reply.message.blocks)
        assert "went wrong on our side" not in str(reply.message.blocks), (name, text)


@settings(max_examples=FORMS_SUBMITTED, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(data=st.data(), form_name=st.sampled_from(sorted(FORMS)), user=st.sampled_from(["U0LEAD", "U0ML"]))
def test_modal_submissions(world: tuple[asyncio.Runner, Services], data: st.DataObject, form_name: str, user: str) -> None:
    runner, services = world
    form = FORMS[form_name]
    values = {f.name: data.draw(VALUE, label=f.name) for f in form.fields}
    reply = runner.run(submit_form(_ctx(services, user), form_name, values, {"channel": "C1"}))
    counts["forms"] += 1
    if reply.field_errors:
        counts["field_errors"] += 1
        known = {f.name for f in form.fields}
        assert set(reply.field_errors) <= known, reply.field_errors  # errors land on fields the modal has
        assert all(msg.strip() for msg in reply.field_errors.values())
        assert not any("went wrong on our side" in m for m in reply.field_errors.values()), (form_name, values)
    else:
        assert reply.message is not None
        validate_blocks(reply.message.blocks)
        assert "went wrong on our side" not in str(reply.message.blocks), (form_name, values)
