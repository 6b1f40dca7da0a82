"""Any text thrown at any subcommand gets an ephemeral answer (or its form) — never a traceback."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from bot.clock import FakeClock
from bot.commands import REGISTRY, Context, dispatch, render_form
from bot.db.models import ProjectMember
from bot.db.session import Database
from bot.process import Role
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


# --- who may act: random actors, random writes; nobody not allowed changes anything ------------------

ACTORS = {
    "lead": Actor("T1", "U0LEAD"),
    "member": Actor("T1", "U0MEMB"),
    "outsider": Actor("T1", "U0OUTS"),
    "admin": Actor("T1", "U0ADMIN"),
    "other workspace": Actor("T2", "U0ADMIN"),  # an admin, but of another workspace
}
# (text, who may: "member" = members, admins and the lead; "lead" = the lead and admins)
WRITES = [
    ('task add "Fuzzed task"', "member"),
    ("task done 1", "member"),
    ("task reopen 1", "member"),
    ('brief problem="Changed by someone"', "member"),
    ('brief criterion="f1 >= 0.8; A/B test"', "member"),
    ("baseline metric=f1 value=0.5 pipeline=https://ci.example/run", "member"),
    ('evaluate metric=f1 value=0.9 check="A/B test: better"', "member"),
    ("role <@U0OUTS|o> ml-engineer", "lead"),
    ("role <@U0MEMB|m> lead", "lead"),
    ("settings min_proposals=4", "lead"),
    ("meeting schedule kind=brief-review at=2026-01-12T10:00", "lead"),
    ('advance override="because"', "lead"),
]


@pytest.fixture
def team(tmp_path: Path, sqlite_template: Path) -> Iterator[tuple[asyncio.Runner, Services]]:
    from bot.messaging import Person, RecordingMessenger

    path = tmp_path / "actors.db"
    shutil.copy(sqlite_template, path)
    with asyncio.Runner() as runner:
        db = Database(f"sqlite:///{path}")
        messenger = RecordingMessenger()
        messenger.people["U0ADMIN"] = Person("U0ADMIN", "adm", is_admin=True)
        services = Services.build(db, FakeClock(), messenger)
        yield runner, services
        runner.run(db.dispose())


async def _state(services: Services) -> str:
    from bot.db.models import Baseline, Brief, Evaluation, Meeting, Project, SuccessCriterion, Task

    async with services.db.session() as s:
        parts: list[object] = []
        for model in (Task, Brief, SuccessCriterion, Baseline, Evaluation, Meeting, ProjectMember, Project):
            for row in (await s.execute(select(model))).scalars():
                data = row.model_dump()
                parts.append((model.__name__, sorted((k, str(v)) for k, v in data.items() if k != "updated_at")))
        return repr(sorted(map(repr, parts)))


def _allowed(who: str, need: str) -> bool:
    if who in ("lead", "admin"):
        return True
    return who == "member" and need == "member"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.sampled_from(sorted(ACTORS)), st.sampled_from(WRITES)), min_size=1, max_size=6))
def test_random_actors_change_nothing_they_may_not(
    team: tuple[asyncio.Runner, Services], steps: list[tuple[str, tuple[str, str]]]
) -> None:
    runner, services = team

    async def scenario() -> None:
        lead = Context(services=services, actor=ACTORS["lead"], channel_id="C1")
        if not await services.projects.list_all(team_id="T1"):
            await dispatch(lead, "init fuzzed repo=acme/fuzz")
        projects = await services.projects.list_all(team_id="T1")
        pid = projects[0].id
        assert pid is not None
        # Reset who is who: U0LEAD leads, U0MEMB is a member, U0OUTS is not.
        await services.projects.set_role(actor=ACTORS["admin"], project_id=pid, user_id="U0LEAD", role=Role.LEAD)
        await services.projects.set_role(
            actor=ACTORS["lead"], project_id=pid, user_id="U0MEMB", role=Role.ML_ENGINEER
        )
        async with services.db.session() as s:
            for row in (await s.execute(select(ProjectMember).where(ProjectMember.user_id == "U0OUTS"))).scalars():
                await s.delete(row)
        for who, (text, need) in steps:
            before = await _state(services)
            channel = "C1" if ACTORS[who].team_id == "T1" else "C2"
            reply = await dispatch(Context(services=services, actor=ACTORS[who], channel_id=channel), text)
            assert reply.message is not None or reply.form is not None
            if not _allowed(who, need):
                assert await _state(services) == before, (who, text)
                if reply.message is not None:
                    shown = " ".join(str(b) for b in reply.message.blocks)
                    assert "went wrong on our side" not in shown
            if who == "lead" and text.startswith("role <@U0MEMB|m> lead"):
                # the lead handed over: put it back so the roles above stay true for the next step
                await services.projects.set_role(
                    actor=ACTORS["admin"], project_id=pid, user_id="U0LEAD", role=Role.LEAD
                )
            if who == "admin" and text.startswith("role <@U0MEMB|m> lead"):
                await services.projects.set_role(
                    actor=ACTORS["admin"], project_id=pid, user_id="U0LEAD", role=Role.LEAD
                )
            if text.startswith("role <@U0OUTS|o>"):
                async with services.db.session() as s:
                    for row in (
                        await s.execute(select(ProjectMember).where(ProjectMember.user_id == "U0OUTS"))
                    ).scalars():
                        await s.delete(row)
        refused = [e for e in await services.audit.entries(actor=ACTORS["lead"], limit=500) if e.action == "refused"]
        assert all(e.actor in ("U0OUTS", "U0MEMB") for e in refused)

    runner.run(scenario())
