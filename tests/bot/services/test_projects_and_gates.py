"""Projects, artifacts, tasks and gates on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date

import pytest

from bot.db.models import Baseline, Decision, Meeting, Proposal
from bot.errors import GateNotMet, InvalidInput, NotAllowed, NotFound
from bot.messaging import RecordingMessenger
from bot.process import Outcome, Phase, Role
from bot.services import Services
from tests.conftest import actor

LEAD = actor("ULEAD")
BO = actor("UBO")
ML = actor("UML")
OTHER_TEAM = actor("ULEAD", team="TB000002")


async def new_project(services: Services, name: str = "genres") -> int:
    project = await services.projects.create(actor=LEAD, name=name, channel_id="C1", repo="acme/genres")
    assert project.id is not None
    await services.projects.set_role(actor=LEAD, project_id=project.id, user_id="UBO", role=Role.BUSINESS_OWNER)
    await services.projects.set_role(actor=LEAD, project_id=project.id, user_id="UML", role=Role.ML_ENGINEER)
    return project.id


async def meet_discovery(services: Services, pid: int) -> None:
    await services.artifacts.set_brief(
        actor=BO, project_id=pid, problem="Tag songs by genre", criterion="skip rate < 20%; A/B test on 5%"
    )
    await services.artifacts.acknowledge_brief(actor=BO, project_id=pid)


async def test_a_new_project_starts_in_discovery_with_its_default_tasks(services: Services) -> None:
    pid = await new_project(services)
    project = await services.projects.resolve(actor=ML, channel_id="C1")
    assert project.id == pid and project.phase == "discovery" and project.lead_user_id == "ULEAD"
    tasks = await services.tasks.list(actor=ML, project_id=pid)
    assert [(t.number, t.title, t.role) for t in tasks] == [
        (1, "Write the project brief", "business-owner"),
        (2, "Survey the available data", "ml-engineer"),
    ]


async def test_project_names_are_unique_per_workspace_and_checked(services: Services) -> None:
    await new_project(services)
    with pytest.raises(InvalidInput, match="already exists"):
        await services.projects.create(actor=LEAD, name="genres", channel_id="C2")
    other = await services.projects.create(actor=OTHER_TEAM, name="genres", channel_id="C9")
    assert other.team_id == "TB000002"
    with pytest.raises(InvalidInput, match="owner/name"):
        await services.projects.create(actor=LEAD, name="x", channel_id="C3", repo="not a repo")
    with pytest.raises(InvalidInput, match="project name"):
        await services.projects.create(actor=LEAD, name="<!channel>", channel_id="C3")


async def test_the_gate_refuses_and_names_what_is_missing(services: Services) -> None:
    pid = await new_project(services)
    await services.artifacts.set_brief(actor=BO, project_id=pid, problem="Tag songs by genre")
    with pytest.raises(GateNotMet) as exc:
        await services.gates.advance(actor=LEAD, project_id=pid)
    assert exc.value.missing == [
        "At least one success criterion (metric, target, real-conditions check) — "
        'Add one: /phasegate brief criterion="skip rate < 20%; A/B test"',
        "Brief acknowledged by a business owner — A business owner runs /phasegate brief ack",
    ]
    project = await services.projects.resolve(actor=LEAD, channel_id="C1")
    assert project.phase == "discovery"


async def test_advancing_when_the_gate_is_met_starts_the_next_phase(services: Services) -> None:
    pid = await new_project(services)
    await meet_discovery(services, pid)
    result = await services.gates.advance(actor=LEAD, project_id=pid)
    assert (result.from_phase, result.to_phase, result.override_reason) == (Phase.DISCOVERY, Phase.DEFINE, None)
    assert "Set up the automated evaluation pipeline" in [t.title for t in result.new_tasks]
    history = await services.gates.history(actor=LEAD, project_id=pid)
    assert [(h.phase, h.ended_at is not None) for h in history] == [("discovery", True), ("define", False)]


async def test_a_changed_brief_needs_a_fresh_acknowledgement(services: Services) -> None:
    pid = await new_project(services)
    await meet_discovery(services, pid)
    await services.artifacts.set_brief(actor=LEAD, project_id=pid, problem="Tag songs by mood")
    gate = await services.gates.evaluate(actor=LEAD, project_id=pid)
    assert [i.label for i in gate.missing] == ["Brief changed, not re-acknowledged"]
    with pytest.raises(NotAllowed, match="business owner"):
        await services.artifacts.acknowledge_brief(actor=ML, project_id=pid)
    # The change was posted in the channel (before → after) and sent to the business owner.
    assert isinstance(services.messenger, RecordingMessenger)
    sent = services.messenger.texts("C1") + services.messenger.texts("UBO")
    assert sum("Tag songs by genre → Tag songs by mood" in m for m in sent) == 2, sent
    await services.artifacts.acknowledge_brief(actor=BO, project_id=pid)
    assert (await services.gates.evaluate(actor=LEAD, project_id=pid)).met


async def test_override_by_a_non_lead_is_refused(services: Services) -> None:
    pid = await new_project(services)
    with pytest.raises(NotAllowed, match="Only the project lead"):
        await services.gates.advance(actor=ML, project_id=pid, override_reason="we are in a hurry")
    assert (await services.projects.resolve(actor=ML, channel_id="C1")).phase == "discovery"


async def test_override_by_the_lead_is_kept_with_its_reason(services: Services, clock: object) -> None:
    pid = await new_project(services)
    with pytest.raises(InvalidInput, match="reason"):
        await services.gates.advance(actor=LEAD, project_id=pid, override_reason="  ")
    result = await services.gates.advance(actor=LEAD, project_id=pid, override_reason="brief agreed by email")
    assert result.to_phase is Phase.DEFINE and result.override_reason == "brief agreed by email"
    discovery = (await services.gates.history(actor=LEAD, project_id=pid))[0]
    assert (discovery.override_reason, discovery.override_by) == ("brief agreed by email", "ULEAD")
    assert {"item": "Problem statement", "met": False} in discovery.artifacts["gate"]
    entries = await services.audit.entries(actor=LEAD, project_id=pid)
    assert entries[0].action == "phase.override" and entries[0].detail["reason"] == "brief agreed by email"


async def test_a_project_of_workspace_b_is_invisible_from_workspace_a(services: Services) -> None:
    theirs = await services.projects.create(actor=OTHER_TEAM, name="secret", channel_id="C1")
    assert theirs.id is not None
    with pytest.raises(NotFound):
        await services.projects.resolve(actor=LEAD, channel_id="C1")
    with pytest.raises(NotFound):
        await services.projects.resolve(actor=LEAD, channel_id=None, name="secret")
    with pytest.raises(NotFound):
        await services.tasks.list(actor=LEAD, project_id=theirs.id)
    with pytest.raises(NotFound):
        await services.gates.advance(actor=LEAD, project_id=theirs.id, override_reason="x")
    with pytest.raises(NotFound):
        await services.artifacts.set_brief(actor=LEAD, project_id=theirs.id, problem="steal")
    assert await services.projects.list_for_user(actor=LEAD) == []
    assert await services.audit.entries(actor=LEAD) == []


async def test_every_change_leaves_an_audit_entry(services: Services) -> None:
    pid = await new_project(services)
    await meet_discovery(services, pid)
    await services.projects.link_github(actor=ML, user_id="UML", login="ml-dev")
    await services.projects.set_away(actor=ML, until=date(2026, 3, 10))
    task = await services.tasks.add(actor=ML, project_id=pid, title="Label 500 songs", assignee="UML")
    await services.tasks.set_status(actor=ML, project_id=pid, number=task.number, status="closed")
    await services.gates.advance(actor=LEAD, project_id=pid)
    await services.artifacts.record_baseline(
        actor=ML, project_id=pid, metric="f1", value="0.61", pipeline="https://github.com/acme/genres/actions"
    )
    await services.projects.configure(actor=LEAD, project_id=pid, min_proposals=3, readiness_policy="postpone")
    actions = [e.action for e in reversed(await services.audit.entries(actor=LEAD))]
    assert actions == [
        "project.create",
        "role.add",
        "role.add",
        "brief.update",
        "brief.ack",
        "member.github",
        "member.away",
        "task.add",
        "task.closed",
        "phase.advance",
        "baseline.record",
        "project.configure",
    ]


async def test_only_leads_assign_roles_and_link_others(services: Services) -> None:
    pid = await new_project(services)
    with pytest.raises(NotAllowed):
        await services.projects.set_role(actor=ML, project_id=pid, user_id="UML", role=Role.LEAD)
    with pytest.raises(NotAllowed, match="own GitHub login"):
        await services.projects.link_github(actor=ML, user_id="UBO", login="bo")
    m = await services.projects.link_github(actor=LEAD, user_id="UBO", login="bo-gh", project_id=pid)
    assert m.github_login == "bo-gh"
    with pytest.raises(InvalidInput, match="GitHub login"):
        await services.projects.link_github(actor=ML, user_id="UML", login="bad login!")
    roles = await services.projects.set_role(actor=LEAD, project_id=pid, user_id="UML", role=Role.LEAD)
    assert "lead" in roles["UML"] and "lead" not in roles["ULEAD"]
    assert (await services.projects.resolve(actor=ML, channel_id="C1")).lead_user_id == "UML"


async def test_whole_cycle_with_an_iterate_loop(services: Services, clock: object) -> None:
    pid = await new_project(services)
    await meet_discovery(services, pid)
    await services.gates.advance(actor=LEAD, project_id=pid)
    with pytest.raises(InvalidInput, match="not a link"):
        await services.artifacts.record_baseline(actor=ML, project_id=pid, metric="f1", value="0.6", pipeline="ci")
    with pytest.raises(InvalidInput, match="not a number"):
        await services.artifacts.record_baseline(actor=ML, project_id=pid, metric="f1", value="high", pipeline=None)
    await services.artifacts.record_baseline(
        actor=ML, project_id=pid, metric="f1", value="0.61", pipeline="https://ci.example.com/eval"
    )
    await services.gates.advance(actor=LEAD, project_id=pid)
    # Develop: a decision at a meeting whose readiness passed (the rituals service records these).
    async with services.db.session() as s:
        project = await services.projects.resolve(actor=LEAD, channel_id="C1")
        meeting = Meeting(
            team_id=LEAD.team_id,
            project_id=pid,
            kind="model-decision",
            phase="develop",
            starts_at=services.clock.now(),
            duration_min=60,
            created_by="ULEAD",
        )
        s.add(meeting)
        await s.flush()
        assert meeting.id is not None
        p = Proposal(
            team_id=LEAD.team_id,
            project_id=pid,
            meeting_id=meeting.id,
            author_user_id="UML",
            title="AST",
            approach="transformer",
            references=["arXiv:2104.01778"],
            why="w",
            benefit=4,
            cost_days=5,
            risk=2,
        )
        s.add(p)
        await s.flush()
        assert p.id is not None
        s.add(
            Decision(
                team_id=LEAD.team_id,
                project_id=pid,
                meeting_id=meeting.id,
                proposal_id=p.id,
                rationale="best score",
                ready=True,
                decided_by="ULEAD",
            )
        )
        assert project.iteration == 0
    await services.gates.advance(actor=LEAD, project_id=pid)
    with pytest.raises(InvalidInput, match="outcome"):
        await services.gates.advance(actor=LEAD, project_id=pid)
    with pytest.raises(InvalidInput, match=r'not a metric of the brief.*"skip rate < 20%"'):
        await services.artifacts.record_evaluation(actor=ML, project_id=pid, metric="f1", value="0.7", check="x")
    await services.artifacts.record_evaluation(
        actor=ML, project_id=pid, metric="Skip Rate", value="25", check="demo: meh"
    )
    with pytest.raises(GateNotMet, match="skip rate 25% — target < 20%") as refused:
        await services.gates.advance(actor=LEAD, project_id=pid, outcome=Outcome.SHIP)
    assert "override" in str(refused.value)
    result = await services.gates.advance(actor=LEAD, project_id=pid, outcome=Outcome.ITERATE)
    assert result.to_phase is Phase.DEVELOP
    assert result.failed == ("skip rate 25% — target < 20% ❌ missed",)
    project = await services.projects.resolve(actor=LEAD, channel_id="C1")
    assert (project.phase, project.iteration) == ("develop", 1)
    # The old decision belongs to iteration 0: Develop's gate is open again.
    gate = await services.gates.evaluate(actor=LEAD, project_id=pid)
    assert not gate.met
    await services.gates.advance(actor=LEAD, project_id=pid, override_reason="re-using the runner-up")
    gate = await services.gates.evaluate(actor=LEAD, project_id=pid)
    assert next(i.label for i in gate.missing) == "skip rate — not yet evaluated (target < 20%)"
    await services.artifacts.record_evaluation(
        actor=ML, project_id=pid, metric="skip rate", value="15", check="A/B: +4%", evidence="https://dash.example/ab"
    )
    gate = await services.gates.evaluate(actor=LEAD, project_id=pid)
    assert gate.met and "evidence: https://dash.example/ab" in gate.items[-1].label
    result = await services.gates.advance(actor=LEAD, project_id=pid, outcome=Outcome.SHIP)
    assert result.to_phase is Phase.DEPLOYMENT and len(result.new_tasks) == 4
    with pytest.raises(GateNotMet):
        await services.gates.advance(actor=LEAD, project_id=pid)
    for t in result.new_tasks:
        await services.tasks.set_status(actor=ML, project_id=pid, number=t.number, status="closed")
    done = await services.gates.advance(actor=LEAD, project_id=pid)
    assert done.to_phase is None
    with pytest.raises(InvalidInput, match="finished Deployment"):
        await services.gates.advance(actor=LEAD, project_id=pid)


async def test_baselines_keep_aware_utc_times(services: Services, clock: object) -> None:
    pid = await new_project(services)
    row = await services.artifacts.record_baseline(actor=ML, project_id=pid, metric="f1", value="0.5", pipeline=None)
    async with services.db.session() as s:
        again = await s.get(Baseline, row.id)
        assert again is not None and again.recorded_at == services.clock.now()
        assert again.recorded_at.utcoffset() is not None


async def in_deliver(services: Services) -> int:
    pid = await new_project(services)
    await meet_discovery(services, pid)
    await services.artifacts.set_brief(
        actor=BO, project_id=pid, criterion="p95 latency <= 120 ms; load test on production traffic"
    )
    await services.artifacts.acknowledge_brief(actor=BO, project_id=pid)
    await services.gates.advance(actor=LEAD, project_id=pid)
    await services.artifacts.record_baseline(
        actor=ML, project_id=pid, metric="f1", value="0.61", pipeline="https://ci.example.com/eval"
    )
    await services.gates.advance(actor=LEAD, project_id=pid)
    await services.gates.advance(actor=LEAD, project_id=pid, override_reason="decided in a test")
    return pid


async def test_a_missed_criterion_blocks_ship_until_the_lead_overrides_with_a_reason(services: Services) -> None:
    pid = await in_deliver(services)
    await services.artifacts.record_evaluation(actor=ML, project_id=pid, metric="skip rate", value="14", check="")
    await services.artifacts.record_evaluation(actor=ML, project_id=pid, metric="P95 latency", value="150", check=None)
    gate = await services.gates.evaluate(actor=LEAD, project_id=pid)
    labels = [i.label for i in gate.missing]
    assert labels == [
        "p95 latency 150 ms — target ≤ 120 ms ❌ missed",
        "Real-conditions check (A/B test, demo or focus group)",
    ]
    with pytest.raises(GateNotMet, match="p95 latency 150 ms — target ≤ 120 ms"):
        await services.gates.advance(actor=LEAD, project_id=pid, outcome=Outcome.SHIP)
    with pytest.raises(NotAllowed):
        await services.gates.advance(actor=ML, project_id=pid, outcome=Outcome.SHIP, override_reason="ship it")
    result = await services.gates.advance(
        actor=LEAD, project_id=pid, outcome=Outcome.SHIP, override_reason="latency fixed by the CDN next week"
    )
    assert result.to_phase is Phase.DEPLOYMENT and result.override_reason == "latency fixed by the CDN next week"
    records = await services.gates.history(actor=LEAD, project_id=pid)
    deliver = next(r for r in records if r.phase == "deliver")
    assert deliver.override_reason == "latency fixed by the CDN next week" and deliver.override_by == "ULEAD"


async def test_criteria_are_parsed_and_unparseable_ones_refused_with_an_example(services: Services) -> None:
    pid = await new_project(services)
    with pytest.raises(InvalidInput, match=r'not a number.*e\.g\. "skip rate < 20%'):
        await services.artifacts.set_brief(actor=BO, project_id=pid, criterion="quality > good; user interviews")
    with pytest.raises(InvalidInput, match="real-conditions check"):
        await services.artifacts.set_brief(actor=BO, project_id=pid, criterion="skip rate < 20%")
    _, criteria = await services.artifacts.set_brief(
        actor=BO, project_id=pid, criterion="latency between 50 and 120 ms; load test"
    )
    assert [(c.metric, c.comparator, c.target) for c in criteria] == [("latency", "in", "50-120 ms")]
    _, criteria = await services.artifacts.set_brief(actor=BO, project_id=pid, criterion="ctr 5-10%; A/B test")
    assert [(c.metric, c.comparator, c.target) for c in criteria][-1] == ("ctr", "in", "5-10%")
