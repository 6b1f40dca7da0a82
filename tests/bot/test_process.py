"""The process core checked against the seed: phases, gates, proposals, readiness, ranking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.process import (
    MEETING_KINDS,
    PHASE_ORDER,
    PHASES,
    GateFacts,
    Outcome,
    Phase,
    ProposalFacts,
    Role,
    duplicate_references,
    evaluate_gate,
    format_days,
    format_working_hours,
    next_phase,
    parse_criterion,
    parse_days,
    parse_phase,
    parse_reference,
    parse_role,
    parse_working_hours,
    rank_proposals,
    readiness,
    score,
    validate_proposal,
)

# --- the seed's process -------------------------------------------------------------------------


def test_design_is_a_double_diamond_then_deployment() -> None:
    assert [p.value for p in PHASE_ORDER] == ["discovery", "define", "develop", "deliver", "deployment"]
    assert {PHASES[p].stage for p in PHASE_ORDER[:4]} == {"Design"}
    assert PHASES[Phase.DEPLOYMENT].stage == "Deployment"


def test_activities_follow_the_seed() -> None:
    assert PHASES[Phase.DISCOVERY].activities == ("Business understanding", "Data understanding", "Project brief")
    assert "Fitting a baseline model" in PHASES[Phase.DEFINE].activities
    assert PHASES[Phase.DEVELOP].activities[:2] == ("Reading literature", "Brainstorming")
    assert PHASES[Phase.DELIVER].activities[:2] == ("Prototyping", "Evaluation")


def test_deliver_ends_in_ship_or_iterate() -> None:
    assert next_phase(Phase.DISCOVERY) is Phase.DEFINE
    assert next_phase(Phase.DEFINE) is Phase.DEVELOP
    assert next_phase(Phase.DEVELOP) is Phase.DELIVER
    assert next_phase(Phase.DELIVER, Outcome.SHIP) is Phase.DEPLOYMENT
    assert next_phase(Phase.DELIVER, Outcome.ITERATE) is Phase.DEVELOP
    assert next_phase(Phase.DEPLOYMENT) is None
    with pytest.raises(ValueError):
        next_phase(Phase.DELIVER)


def test_deployment_tasks_run_in_parallel_by_different_roles() -> None:
    tasks = PHASES[Phase.DEPLOYMENT].default_tasks
    assert [t.title for t in tasks] == [
        "Clean up the code",
        "Configure the training pipeline",
        "Establish monitoring",
        "Implement the serving layer",
    ]
    assert tasks[1].role is Role.DATA_ENGINEER and tasks[3].role is Role.SOFTWARE_ENGINEER


def test_define_creates_the_evaluation_pipeline_task() -> None:
    titles = [t.title for t in PHASES[Phase.DEFINE].default_tasks]
    assert "Set up the automated evaluation pipeline" in titles


def test_only_the_model_decision_requires_proposals() -> None:
    required = {k for k, m in MEETING_KINDS.items() if m.proposals_required}
    assert required == {"model-decision"}
    assert MEETING_KINDS["model-decision"].phase is Phase.DEVELOP
    assert MEETING_KINDS["model-decision"].proposal_roles == (Role.ML_ENGINEER,)
    assert "Decide" in MEETING_KINDS["model-decision"].agenda[-1]
    assert {PHASES[p].meeting_kinds[0] for p in Phase} == set(MEETING_KINDS)


def test_each_gate_names_the_pitfall_it_prevents() -> None:
    assert "metrics misaligned" in PHASES[Phase.DISCOVERY].pitfalls[0]
    assert "faulty evaluation" in PHASES[Phase.DEFINE].pitfalls[0]
    assert len(PHASES[Phase.DEVELOP].pitfalls) == 3


# --- gates --------------------------------------------------------------------------------------


def test_discovery_gate_names_each_missing_item() -> None:
    gate = evaluate_gate(Phase.DISCOVERY, GateFacts())
    assert not gate.met
    assert [i.label for i in gate.missing] == [
        "Problem statement",
        "At least one success criterion (metric, target, real-conditions check)",
        "Brief acknowledged by a business owner",
    ]
    assert all("/phasegate" in i.todo for i in gate.missing)
    crit, _ = parse_criterion("skip rate < 20%; A/B test")
    assert crit is not None
    met = evaluate_gate(
        Phase.DISCOVERY,
        GateFacts(brief_problem="Tag songs by genre", criteria=(crit,), brief_acknowledged_by_business_owner=True),
    )
    assert met.met and not met.missing


def test_define_gate_needs_baseline_and_pipeline() -> None:
    gate = evaluate_gate(Phase.DEFINE, GateFacts(baseline="f1 = 0.61"))
    assert [i.label for i in gate.missing] == ["Evaluation pipeline linked"]
    assert evaluate_gate(Phase.DEFINE, GateFacts(baseline="f1 = 0.61", pipeline_url="https://ci/x")).met


def test_develop_gate_needs_a_ready_decision() -> None:
    gate = evaluate_gate(Phase.DEVELOP, GateFacts(any_decision=True, ready_decision=False))
    assert not gate.met and "override" in gate.missing[0].todo
    assert evaluate_gate(Phase.DEVELOP, GateFacts(any_decision=True, ready_decision=True)).met


def test_deliver_gate_needs_evaluation_and_real_check() -> None:
    assert len(evaluate_gate(Phase.DELIVER, GateFacts(evaluation="f1 = 0.8")).missing) == 1
    assert evaluate_gate(Phase.DELIVER, GateFacts(evaluation="f1 = 0.8", real_check="A/B test +3%")).met


def test_deployment_gate_needs_every_task_closed() -> None:
    assert not evaluate_gate(Phase.DEPLOYMENT, GateFacts(deployment_tasks_total=4, deployment_tasks_open=1)).met
    assert not evaluate_gate(Phase.DEPLOYMENT, GateFacts()).met
    gate = evaluate_gate(Phase.DEPLOYMENT, GateFacts(deployment_tasks_total=4, deployment_tasks_open=0))
    assert gate.met and "(4/4)" in gate.items[0].label


# --- criteria, references, proposals ------------------------------------------------------------


def test_criterion_parsing() -> None:
    crit, err = parse_criterion("top-1 accuracy >= 0.85; focus group of 20 listeners")
    assert err is None and crit is not None
    assert (crit.metric, crit.comparator, crit.target, crit.real_check) == (
        "top-1 accuracy",
        "≥",  # normalised: >= and ≥ are the same comparison
        "0.85",
        "focus group of 20 listeners",
    )
    _, err = parse_criterion("accuracy >= 0.9")
    assert err is not None and "real-conditions check" in err
    _, err = parse_criterion("make users happy")
    assert err is not None and "metric" in err
    assert crit.met_by(0.85) is True and crit.met_by(0.84) is False
    rng, _ = parse_criterion("p95 latency between 50 and 120 ms; load test")
    assert rng is not None and rng.comparison == "between 50 and 120 ms"
    assert rng.met_by(120) is True and rng.met_by(121) is False and rng.met_by(49) is False


@pytest.mark.parametrize(
    ("text", "kind", "key"),
    [
        ("https://arxiv.org/abs/1706.03762", "arxiv", "arxiv:1706.03762"),
        ("1706.03762v5", "arxiv", "arxiv:1706.03762"),
        ("arXiv:2010.11929", "arxiv", "arxiv:2010.11929"),
        ("10.1109/CVPR.2016.90", "doi", "doi:10.1109/cvpr.2016.90"),
        ("https://doi.org/10.1109/CVPR.2016.90", "doi", "doi:10.1109/cvpr.2016.90"),
        ("https://paperswithcode.com/paper/deep-residual", "url", "url:paperswithcode.com/paper/deep-residual"),
    ],
)
def test_reference_formats(text: str, kind: str, key: str) -> None:
    ref = parse_reference(text)
    assert ref is not None and (ref.kind, ref.key) == (kind, key)


@pytest.mark.parametrize("text", ["", "attention is all you need", "ftp://x.org/a", "1706.0376", "10.12/x", "http://x"])
def test_not_references(text: str) -> None:
    assert parse_reference(text) is None


@given(st.text(max_size=300))
def test_reference_parsing_never_raises(text: str) -> None:
    ref = parse_reference(text)
    assert ref is None or ref.kind in ("url", "doi", "arxiv")


GOOD = {
    "title": "Audio spectrogram transformer",
    "approach": "transformer",
    "refs": "arXiv:2104.01778, https://github.com/YuanGongND/ast",
    "why": "Strong on AudioSet; our clips are short",
    "benefit": "4",
    "cost": "8",
    "risk": "3",
}


def test_a_complete_proposal_is_valid() -> None:
    valid, errors = validate_proposal(GOOD)
    assert errors == [] and valid is not None
    assert [r.kind for r in valid.references] == ["arxiv", "url"]
    assert (valid.benefit, valid.cost_days, valid.risk) == (4, 8.0, 3)


@pytest.mark.parametrize("field", ["title", "approach", "refs", "why", "benefit", "cost", "risk"])
def test_each_missing_field_is_named(field: str) -> None:
    valid, errors = validate_proposal({**GOOD, field: ""})
    assert valid is None
    assert [e.field for e in errors] == [field]


def test_bad_values_are_explained() -> None:
    _, errors = validate_proposal({**GOOD, "refs": "my own idea", "benefit": "9", "risk": "1.5", "cost": "-2"})
    by_field = {e.field: e.message for e in errors}
    assert "my own idea" in by_field["refs"] and "arXiv" in by_field["refs"]
    assert "1 (small) to 5" in by_field["benefit"]
    assert "greater than 0" in by_field["cost"]
    assert "whole number" in by_field["risk"]


@given(st.dictionaries(st.sampled_from([*GOOD, "compute", "other"]), st.one_of(st.text(max_size=80), st.none())))
def test_validation_answers_any_input(raw: dict[str, str | None]) -> None:
    valid, errors = validate_proposal(raw)
    assert (valid is None) == bool(errors)
    assert all(e.message for e in errors)


# --- readiness and ranking ----------------------------------------------------------------------


def prop(
    pid: int, authors: set[str], approach: str, refs: tuple[str, ...] = ("arxiv:1",), **kw: object
) -> ProposalFacts:
    base: dict[str, object] = {"benefit": 3, "cost_days": 5.0, "risk": 2}
    base.update(kw)
    return ProposalFacts(pid, f"P{pid}", frozenset(authors), approach, refs, **base)  # type: ignore[arg-type]


READY = [prop(1, {"U1"}, "CNN", ("arxiv:1",)), prop(2, {"U2"}, "Transformer", ("doi:2",))]


def test_ready_when_all_five_rules_pass() -> None:
    r = readiness(required=["U1", "U2"], away=[], proposals=READY, min_proposals=2)
    assert r.ready and not r.failed and r.owed_by == ()


@pytest.mark.parametrize(
    ("rule", "kwargs"),
    [
        ("all_submitted", {"required": ["U1", "U2", "U3"]}),
        ("min_proposals", {"min_proposals": 3}),
        ("distinct_families", {"proposals": [READY[0], prop(2, {"U2"}, "cnn", ("doi:2",))]}),
        ("cite_literature", {"proposals": [READY[0], prop(2, {"U2"}, "Transformer", ())]}),
        ("cost_and_benefit", {"proposals": [READY[0], prop(2, {"U2"}, "Transformer", ("doi:2",), cost_days=None)]}),
    ],
)
def test_each_readiness_rule_failing_alone(rule: str, kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"required": ["U1", "U2"], "away": [], "proposals": READY, "min_proposals": 2}
    args.update(kwargs)
    r = readiness(**args)  # type: ignore[arg-type]
    assert not r.ready
    assert [x.key for x in r.failed] == [rule]


def test_coauthors_count_and_away_people_are_excused() -> None:
    proposals = [prop(1, {"U1", "U2"}, "CNN"), prop(2, {"U3"}, "GBDT", ("doi:9",))]
    r = readiness(required=["U1", "U2", "U3", "U4"], away=["U4"], proposals=proposals, min_proposals=2)
    assert r.ready and r.owed_by == () and r.excused == ("U4",)


def test_the_same_reference_cited_twice_is_flagged() -> None:
    proposals = [prop(1, {"U1"}, "CNN", ("arxiv:1", "doi:x")), prop(2, {"U2"}, "ViT", ("doi:x",))]
    assert duplicate_references(proposals) == {"doi:x": [1, 2]}
    assert readiness(required=[], away=[], proposals=proposals, min_proposals=1).duplicates == {"doi:x": [1, 2]}


def test_ranking_is_benefit_over_cost_penalised_by_risk() -> None:
    cheap = prop(1, {"U1"}, "GBDT", benefit=3, cost_days=2.0, risk=1)  # 1.5
    big = prop(2, {"U2"}, "Transformer", benefit=5, cost_days=10.0, risk=4)  # 0.2
    mid = prop(3, {"U3"}, "CNN", benefit=4, cost_days=4.0, risk=2)  # 0.8
    assert [p.id for p in rank_proposals([big, mid, cheap])] == [1, 3, 2]
    assert score(cheap) == pytest.approx(1.5)


def test_ranking_ties_are_stable_and_runner_ups_lead() -> None:
    a, b, c = (prop(i, {f"U{i}"}, f"F{i}") for i in (1, 2, 3))
    assert [p.id for p in rank_proposals([b, a, c])] == [2, 1, 3]
    assert [p.id for p in rank_proposals([a, b, c], first=[3, 2])] == [3, 2, 1]


# --- words people type --------------------------------------------------------------------------


def test_parse_phase_role_and_hours() -> None:
    assert (
        parse_phase("Dev") is Phase.DEVELOP and parse_phase("de") is None and parse_phase("deploy") is Phase.DEPLOYMENT
    )
    assert parse_role("ML") is Role.ML_ENGINEER and parse_role("business owner") is Role.BUSINESS_OWNER
    assert parse_role("chef") is None
    assert parse_working_hours("09:00-17:30") == (540, 1050)
    assert parse_working_hours("9-25") is None and parse_working_hours("09:00-09:00") is None
    assert parse_working_hours("9-5") is None  # not 09:00 to 05:00 the next day: 9 to 5 is written 09:00-17:00
    # An overnight range ends the next day.
    assert parse_working_hours("18:00-09:00") == (1080, 1980) and parse_working_hours("22:00-24:00") == (1320, 1440)
    assert format_working_hours(1080, 1980, "–") == "18:00–09:00" and format_working_hours(0, 1440) == "00:00-24:00"
    assert parse_days("sun-thu") == frozenset({6, 0, 1, 2, 3}) and parse_days("Mon,wed,FRI") == frozenset({0, 2, 4})
    assert parse_days("mon-fri,sun") == frozenset({0, 1, 2, 3, 4, 6}) and parse_days("funday") is None and parse_days("") is None
    assert format_days({6, 0, 1, 2, 3}) == "Sun–Thu" and format_days({0, 2, 4}) == "Mon, Wed, Fri"
    assert format_days(range(7)) == "every day" and format_days({5, 6}) == "Sat, Sun"
