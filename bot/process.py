"""The process model from the seed: phases, gates, meeting kinds, proposal rules and ranking (pure)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit


class Phase(StrEnum):
    DISCOVERY = "discovery"
    DEFINE = "define"
    DEVELOP = "develop"
    DELIVER = "deliver"
    DEPLOYMENT = "deployment"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Role(StrEnum):
    LEAD = "lead"
    BUSINESS_OWNER = "business-owner"
    ML_ENGINEER = "ml-engineer"
    DATA_ENGINEER = "data-engineer"
    SOFTWARE_ENGINEER = "software-engineer"


class Outcome(StrEnum):
    SHIP = "ship"
    ITERATE = "iterate"


PHASE_ORDER: tuple[Phase, ...] = tuple(Phase)


@dataclass(frozen=True)
class DefaultTask:
    title: str
    role: Role
    body: str


@dataclass(frozen=True)
class MeetingKind:
    key: str
    title: str
    phase: Phase
    duration_min: int
    attendee_roles: tuple[Role, ...]
    agenda: tuple[str, ...]
    proposals_required: bool
    # Roles whose attendees owe a proposal when proposals are required.
    proposal_roles: tuple[Role, ...] = ()


@dataclass(frozen=True)
class PhaseSpec:
    phase: Phase
    stage: str
    purpose: str
    activities: tuple[str, ...]
    roles: tuple[Role, ...]
    meeting_kinds: tuple[str, ...]
    default_tasks: tuple[DefaultTask, ...]
    gate: str
    pitfalls: tuple[str, ...]


PITFALLS = {
    1: "focusing on one architecture",
    2: "reinventing the wheel",
    3: "too incremental development",
    4: "metrics misaligned with what customers feel",
    5: "faulty evaluation",
}

MEETING_KINDS: dict[str, MeetingKind] = {
    k.key: k
    for k in (
        MeetingKind(
            key="brief-review",
            title="Brief review",
            phase=Phase.DISCOVERY,
            duration_min=45,
            attendee_roles=(Role.LEAD, Role.BUSINESS_OWNER, Role.ML_ENGINEER),
            agenda=(
                "Read the problem statement together",
                "Agree the success criteria: metric, target, and the real-conditions check",
                "What data exists and what it can tell us",
                "Business owner acknowledges the brief",
            ),
            proposals_required=False,
        ),
        MeetingKind(
            key="baseline-review",
            title="Baseline review",
            phase=Phase.DEFINE,
            duration_min=45,
            attendee_roles=(Role.LEAD, Role.ML_ENGINEER, Role.BUSINESS_OWNER),
            agenda=(
                "The baseline result (metric = value)",
                "Walk through the automated end-to-end evaluation pipeline",
                "What the baseline's failures tell us about the solutions we need",
            ),
            proposals_required=False,
        ),
        MeetingKind(
            key="model-decision",
            title="Model decision",
            phase=Phase.DEVELOP,
            duration_min=60,
            attendee_roles=(Role.LEAD, Role.ML_ENGINEER),
            agenda=(
                "Proposals side by side, ranked by benefit over cost, penalised by risk",
                "Discuss: too complex to implement, or too simple to perform?",
                "Decide: one model, its rationale, the runner-ups ranked, and the tasks",
            ),
            proposals_required=True,
            proposal_roles=(Role.ML_ENGINEER,),
        ),
        MeetingKind(
            key="evaluation-review",
            title="Evaluation review",
            phase=Phase.DELIVER,
            duration_min=45,
            attendee_roles=(Role.LEAD, Role.ML_ENGINEER, Role.BUSINESS_OWNER),
            agenda=(
                "Offline evaluation against the success criteria",
                "The real-conditions check: A/B test, demo or focus group",
                "Outcome: ship to Deployment, or iterate back to Develop",
            ),
            proposals_required=False,
        ),
        MeetingKind(
            key="deployment-kickoff",
            title="Deployment kickoff",
            phase=Phase.DEPLOYMENT,
            duration_min=30,
            attendee_roles=(Role.LEAD, Role.DATA_ENGINEER, Role.SOFTWARE_ENGINEER, Role.ML_ENGINEER),
            agenda=(
                "Split the work: clean-up, training pipeline, monitoring, serving layer",
                "One owner per task; they run in parallel",
                "What we monitor in production and who is paged",
            ),
            proposals_required=False,
        ),
    )
}

PHASES: dict[Phase, PhaseSpec] = {
    s.phase: s
    for s in (
        PhaseSpec(
            phase=Phase.DISCOVERY,
            stage="Design",
            purpose="Understand the problem by asking different research questions.",
            activities=("Business understanding", "Data understanding", "Project brief"),
            roles=(Role.BUSINESS_OWNER, Role.ML_ENGINEER),
            meeting_kinds=("brief-review",),
            default_tasks=(
                DefaultTask(
                    "Write the project brief",
                    Role.BUSINESS_OWNER,
                    "Problem statement and success criteria: metric, target, and how it will be "
                    "checked in real conditions.",
                ),
                DefaultTask(
                    "Survey the available data",
                    Role.ML_ENGINEER,
                    "Data understanding: sources, volume, labels, known biases.",
                ),
            ),
            gate="A brief with a problem statement and at least one success criterion (metric, target, "
            "real-conditions check), acknowledged by a business owner.",
            pitfalls=(PITFALLS[4],),
        ),
        PhaseSpec(
            phase=Phase.DEFINE,
            stage="Design",
            purpose="Distil the problem: prepare the data, fit a baseline, automate evaluation.",
            activities=("Data preparation", "Fitting a baseline model", "Automated evaluation pipeline"),
            roles=(Role.ML_ENGINEER, Role.BUSINESS_OWNER),
            meeting_kinds=("baseline-review",),
            default_tasks=(
                DefaultTask("Prepare the data", Role.ML_ENGINEER, "Data preparation and feature extraction."),
                DefaultTask(
                    "Fit a baseline model",
                    Role.ML_ENGINEER,
                    "A simple model whose (possibly poor) result validates the discovery phase.",
                ),
                DefaultTask(
                    "Set up the automated evaluation pipeline",
                    Role.ML_ENGINEER,
                    "End to end: data preparation, feature extraction, model fitting, evaluation — "
                    "one command, no scattered scripts.",
                ),
            ),
            gate="A recorded baseline result (metric = value) and a link to the evaluation pipeline.",
            pitfalls=(PITFALLS[5],),
        ),
        PhaseSpec(
            phase=Phase.DEVELOP,
            stage="Design",
            purpose="Produce alternative solutions and decide on the model to try next.",
            activities=("Reading literature", "Brainstorming", "A model-decision meeting"),
            roles=(Role.LEAD, Role.ML_ENGINEER),
            meeting_kinds=("model-decision",),
            default_tasks=(
                DefaultTask(
                    "Read the literature and prepare a proposal",
                    Role.ML_ENGINEER,
                    "Each proposal cites published work and states benefit, cost and risk.",
                ),
            ),
            gate="A decision recorded at a model-decision meeting whose readiness check passed.",
            pitfalls=(PITFALLS[1], PITFALLS[2], PITFALLS[3]),
        ),
        PhaseSpec(
            phase=Phase.DELIVER,
            stage="Design",
            purpose="Prototype and evaluate the chosen model, then ship or iterate.",
            activities=("Prototyping", "Evaluation", "Tuning the few hyperparameters that matter"),
            roles=(Role.ML_ENGINEER, Role.BUSINESS_OWNER),
            meeting_kinds=("evaluation-review",),
            default_tasks=(
                DefaultTask(
                    "Prototype the chosen model",
                    Role.ML_ENGINEER,
                    "Robust enough to evaluate; cutting corners is fine — this is a prototype.",
                ),
                DefaultTask(
                    "Tune the hyperparameters that matter",
                    Role.ML_ENGINEER,
                    "Learning rate, regularisation, model capacity — by hand is fine at this stage.",
                ),
                DefaultTask(
                    "Run a real-conditions check",
                    Role.BUSINESS_OWNER,
                    "An A/B test, a product demo or a focus group: do not trust offline metrics alone.",
                ),
            ),
            gate="An evaluation result against the success criteria and a real-conditions check; "
            "outcome ship (to Deployment) or iterate (back to Develop).",
            pitfalls=(PITFALLS[4], PITFALLS[5]),
        ),
        PhaseSpec(
            phase=Phase.DEPLOYMENT,
            stage="Deployment",
            purpose="Ship the model: parallel engineering tasks by different roles.",
            activities=("Clean up the code", "Training pipeline", "Monitoring", "Serving layer"),
            roles=(Role.DATA_ENGINEER, Role.SOFTWARE_ENGINEER, Role.ML_ENGINEER),
            meeting_kinds=("deployment-kickoff",),
            default_tasks=(
                DefaultTask("Clean up the code", Role.ML_ENGINEER, "Refactor the prototype into production code."),
                DefaultTask("Configure the training pipeline", Role.DATA_ENGINEER, "Reproducible, scheduled training."),
                DefaultTask("Establish monitoring", Role.ML_ENGINEER, "Model quality and data drift in production."),
                DefaultTask(
                    "Implement the serving layer",
                    Role.SOFTWARE_ENGINEER,
                    "A REST API (or equivalent) serving the model.",
                ),
            ),
            gate="Every Deployment task closed.",
            pitfalls=(),
        ),
    )
}


def parse_phase(text: str) -> Phase | None:
    """Phase from a user's word (case-insensitive, prefix allowed when unambiguous)."""
    word = text.strip().lower()
    if not word:
        return None
    matches = [p for p in Phase if p.value.startswith(word)]
    return matches[0] if len(matches) == 1 else None


def parse_role(text: str) -> Role | None:
    """Role from a user's word; accepts `ml`, `ml engineer`, `business owner`, `bo`, `owner`…"""
    word = re.sub(r"[\s_]+", "-", text.strip().lower())
    aliases = {
        "ml": Role.ML_ENGINEER,
        "bo": Role.BUSINESS_OWNER,
        "owner": Role.BUSINESS_OWNER,
        "business": Role.BUSINESS_OWNER,
        "de": Role.DATA_ENGINEER,
        "data": Role.DATA_ENGINEER,
        "swe": Role.SOFTWARE_ENGINEER,
        "se": Role.SOFTWARE_ENGINEER,
        "software": Role.SOFTWARE_ENGINEER,
    }
    if word in aliases:
        return aliases[word]
    for role in Role:
        if word == role.value:
            return role
    return None


def next_phase(phase: Phase, outcome: Outcome | None = None) -> Phase | None:
    """The phase after `phase`; Deliver needs an outcome (ship → Deployment, iterate → Develop)."""
    if phase is Phase.DELIVER:
        if outcome is None:
            raise ValueError("Deliver ends with an outcome: ship or iterate")
        return Phase.DEPLOYMENT if outcome is Outcome.SHIP else Phase.DEVELOP
    if phase is Phase.DEPLOYMENT:
        return None
    return PHASE_ORDER[PHASE_ORDER.index(phase) + 1]


# --- success criteria ---------------------------------------------------------------------------

_COMPARATORS = (">=", "<=", "≥", "≤", "==", "=", ">", "<")
_NORMAL_OP = {">=": "≥", "≥": "≥", "<=": "≤", "≤": "≤", "==": "=", "=": "=", ">": ">", "<": "<"}
_NUMBER = r"[-+]?\d+(?:\.\d+)?"
_TARGET_RE = re.compile(rf"^(?P<a>{_NUMBER})\s*(?P<unit>%|ms|s)?$", re.IGNORECASE)
_RANGE_RE = re.compile(
    rf"^(?P<a>{_NUMBER})\s*(?P<ua>%|ms|s)?\s*(?:-|–|to|and)\s*(?P<b>{_NUMBER})\s*(?P<unit>%|ms|s)?$",
    re.IGNORECASE,
)
_CHECK_SPLIT = r"(?:;|\bvia\b|\bchecked by\b|\bcheck(?:ed)?:)"
_CRITERION_RE = re.compile(
    r"^\s*(?P<metric>.+?)\s*(?P<op>>=|<=|≥|≤|==|=|>|<|\bbetween\b)\s*(?P<target>[^;]+?)\s*"
    rf"(?:{_CHECK_SPLIT}\s*(?P<check>.*?))?\s*$",
    re.IGNORECASE,
)
# "latency 5-10 ms; load test" (a range with no comparison word)
_BARE_RANGE_RE = re.compile(
    rf"^\s*(?P<metric>.+?)\s+(?P<target>{_NUMBER}\s*(?:%|ms|s)?\s*(?:-|–)\s*{_NUMBER}\s*(?:%|ms|s)?)\s*"
    rf"(?:{_CHECK_SPLIT}\s*(?P<check>.*?))?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Criterion:
    metric: str
    comparator: str  # <, ≤, >, ≥, = or "in" (a range low-high)
    target: str  # the number(s) with their unit, e.g. "10%", "5-10 ms"
    real_check: str

    def __str__(self) -> str:
        return f"{self.metric} {self.comparison}; checked by {self.real_check}"

    @property
    def comparison(self) -> str:
        """The target as a person reads it: "< 10%", "between 5 and 10 ms"."""
        if self.comparator == "in":
            r = parse_target_range(self.target)
            if r:
                return f"between {r[0]:g} and {r[1]:g}{_unit_suffix(r[2])}"
        return f"{_NORMAL_OP.get(self.comparator, self.comparator)} {self.target}"

    def met_by(self, value: float) -> bool | None:
        """Whether `value` meets the target (None: the target is not a number)."""
        op = _NORMAL_OP.get(self.comparator, self.comparator)
        if op == "in":
            r = parse_target_range(self.target)
            return None if r is None else r[0] <= value <= r[1]
        t = parse_target(self.target)
        if t is None:
            return None
        n = t[0]
        return {"<": value < n, "≤": value <= n, ">": value > n, "≥": value >= n, "=": math.isclose(value, n)}.get(op)

    def unit(self) -> str:
        r = parse_target_range(self.target) if self.comparator == "in" else parse_target(self.target)
        return str(r[-1]) if r else ""

    def matches(self, metric: str) -> bool:
        return " ".join(self.metric.lower().split()) == " ".join(metric.lower().split())


def _unit_suffix(unit: str) -> str:
    return "%" if unit == "%" else (f" {unit}" if unit else "")


def format_value(value: float, unit: str) -> str:
    return f"{value:g}{_unit_suffix(unit)}"


def parse_target(text: str) -> tuple[float, str] | None:
    m = _TARGET_RE.match(text.strip())
    return (float(m["a"]), (m["unit"] or "").lower()) if m else None


def parse_target_range(text: str) -> tuple[float, float, str] | None:
    m = _RANGE_RE.match(text.strip())
    if not m:
        return None
    a, b = sorted((float(m["a"]), float(m["b"])))
    return a, b, (m["unit"] or m["ua"] or "").lower()


CRITERION_USAGE = (
    '"<metric> <comparison> <target>; <real-conditions check>", e.g. "skip rate < 20%; A/B test on 5% of users" '
    '(comparisons: <, <=, >, >=, =, or a range like "latency 50-120 ms" / "between 5 and 10")'
)


def parse_criterion(text: str) -> tuple[Criterion | None, str | None]:
    """Parse a success criterion; on failure return a message naming what is missing."""
    if not text or not text.strip():
        return None, f"The success criterion is empty. Write it as {CRITERION_USAGE}."
    m = _CRITERION_RE.match(text)
    bare = None if m else _BARE_RANGE_RE.match(text)
    if not m and not bare:
        return None, (
            "The success criterion needs a metric, a comparison and a target "
            f"(one of {' '.join(_COMPARATORS[:6])}). Write it as {CRITERION_USAGE}."
        )
    if m:
        metric, op, target = m["metric"].strip(), m["op"].lower(), m["target"].strip()
        check = (m["check"] or "").strip()
    else:
        assert bare is not None
        metric, op, target, check = bare["metric"].strip(), "between", bare["target"].strip(), (bare["check"] or "")
        check = check.strip()
    missing = [name for name, v in (("metric", metric), ("target", target)) if not v]
    if not check:
        missing.append("real-conditions check (after a ';', e.g. '; A/B test')")
    if missing:
        return None, f"The success criterion is missing: {', '.join(missing)}. Write it as {CRITERION_USAGE}."
    if op == "between" or (op in _NORMAL_OP and parse_target(target) is None and parse_target_range(target)):
        rng = parse_target_range(target)
        if rng is None:
            return None, f"`{target[:40]}` is not a range of numbers. Write it as {CRITERION_USAGE}."
        unit = _unit_suffix(rng[2]).strip()
        return Criterion(
            metric, "in", f"{rng[0]:g}-{rng[1]:g}{(' ' if unit != '%' and unit else '') + unit}", check
        ), None
    if parse_target(target) is None:
        return None, (
            f"The target `{target[:40]}` is not a number (a plain number, a % or ms). Write it as {CRITERION_USAGE}."
        )
    return Criterion(metric=metric, comparator=_NORMAL_OP[op], target=target, real_check=check), None


@dataclass(frozen=True)
class CriterionResult:
    """A success criterion and the latest evaluated value for its metric this iteration (if any)."""

    criterion: Criterion
    value: float | None = None

    @property
    def met(self) -> bool | None:
        return None if self.value is None else self.criterion.met_by(self.value)

    def describe(self) -> str:
        c = self.criterion
        if self.value is None:
            return f"{c.metric} — not yet evaluated (target {c.comparison})"
        got = format_value(self.value, c.unit())
        return f"{c.metric} {got} — target {c.comparison}" + (" ✅" if self.met else " ❌ missed")


# --- literature references ----------------------------------------------------------------------

_DOI_RE = re.compile(r"^(?:doi:\s*|https?://(?:dx\.)?doi\.org/)?(10\.\d{4,9}/\S+)$", re.IGNORECASE)
_ARXIV_RE = re.compile(
    r"^(?:arxiv:\s*|https?://arxiv\.org/(?:abs|pdf)/)?(\d{4}\.\d{4,5})(v\d+)?(?:\.pdf)?$", re.IGNORECASE
)


@dataclass(frozen=True)
class Reference:
    kind: str  # "arxiv" | "doi" | "url"
    value: str  # as shown to people
    key: str  # normalised, for spotting the same work cited twice

    @property
    def url(self) -> str:
        if self.kind == "arxiv":
            return f"https://arxiv.org/abs/{self.value.removeprefix('arXiv:')}"
        if self.kind == "doi":
            return f"https://doi.org/{self.value}"
        return self.value


def parse_reference(text: str) -> Reference | None:
    """An http(s) URL, a DOI `10.NNNN/…` or an arXiv id `NNNN.NNNNN[vN]` / `arXiv:…`; else None."""
    raw = (text or "").strip().strip("<>")
    if not raw or any(c.isspace() for c in raw) or len(raw) > 2000:
        return None
    if m := _ARXIV_RE.match(raw):
        yymm, number = m[1].split(".")
        # arXiv ids had 4 digits after the dot until 2014 and 5 from 2015 (1501) on.
        if (len(number) == 5) != (yymm >= "1501") or not 1 <= int(yymm[2:]) <= 12:
            return None
        return Reference("arxiv", f"arXiv:{m[1]}{m[2] or ''}", f"arxiv:{m[1]}")
    if m := _DOI_RE.match(raw):
        doi = m[1].rstrip(".,;")
        return Reference("doi", doi, f"doi:{doi.lower()}")
    try:
        parts = urlsplit(raw)
    except ValueError:
        return None
    if parts.scheme.lower() in ("http", "https") and parts.hostname and "." in parts.hostname:
        path = parts.path.rstrip("/")
        key = f"url:{parts.hostname.lower().removeprefix('www.')}{path}" + (f"?{parts.query}" if parts.query else "")
        return Reference("url", raw, key)
    return None


def split_references(text: str) -> list[str]:
    """Split typed references on commas, semicolons or new lines (spaces too, when every piece is a reference)."""
    parts: list[str] = []
    for piece in (p.strip() for p in re.split(r"[,;\n]+", text or "")):
        words = piece.split()
        if len(words) > 1 and all(parse_reference(w) for w in words):
            parts.extend(words)
        elif piece:
            parts.append(piece)
    return parts


# --- proposals ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


@dataclass(frozen=True)
class ValidProposal:
    title: str
    approach: str
    references: tuple[Reference, ...]
    why: str
    benefit: int
    cost_days: float
    risk: int
    compute: str = ""


PROPOSAL_FIELDS = ("title", "approach", "refs", "why", "benefit", "cost", "risk")
MAX_TITLE = 150
MAX_TEXT = 2000


def _int_in_range(raw: object, lo: int, hi: int) -> int | None:
    try:
        value = float(str(raw).strip())
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value) or value != int(value) or not lo <= value <= hi:
        return None
    return int(value)


def _positive_days(raw: object) -> float | None:
    text = str(raw).strip().lower().removesuffix("days").removesuffix("day").removesuffix("d").strip()
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value) or value <= 0 or value > 3650:
        return None
    return value


def validate_proposal(raw: Mapping[str, object]) -> tuple[ValidProposal | None, list[FieldError]]:
    """Check a proposal's fields (strings as typed); every problem is named with how to fix it."""
    errors: list[FieldError] = []

    def text(name: str, label: str, limit: int) -> str:
        value = str(raw.get(name) or "").strip()
        if not value:
            errors.append(FieldError(name, f"{label} is missing."))
        elif len(value) > limit:
            errors.append(FieldError(name, f"{label} is too long ({len(value)} characters; at most {limit})."))
        return value

    title = text("title", "Title", MAX_TITLE)
    approach = text("approach", "Approach / architecture family", 200)
    why = text("why", "Why it fits the problem", MAX_TEXT)

    refs_raw = raw.get("refs")
    items = list(refs_raw) if isinstance(refs_raw, (list, tuple)) else split_references(str(refs_raw or ""))
    refs: list[Reference] = []
    bad: list[str] = []
    for item in (str(i) for i in items):
        ref = parse_reference(item)
        (refs.append(ref) if ref else bad.append(item))
    if bad:
        shown = ", ".join(b[:60] for b in bad[:3])
        errors.append(
            FieldError(
                "refs",
                f"Not a literature reference: {shown}. Use a URL (https://…), a DOI (10.1234/…) "
                "or an arXiv id (2101.00001 or arXiv:2101.00001).",
            )
        )
    elif not refs:
        errors.append(FieldError("refs", "At least one literature reference is required: a URL, a DOI or an arXiv id."))

    benefit = _int_in_range(raw.get("benefit"), 1, 5)
    if benefit is None:
        errors.append(FieldError("benefit", "Expected benefit must be a whole number from 1 (small) to 5 (large)."))
    cost = _positive_days(raw.get("cost"))
    if cost is None:
        errors.append(FieldError("cost", "Estimated cost must be a number of days of effort greater than 0, e.g. 5."))
    risk = _int_in_range(raw.get("risk"), 1, 5)
    if risk is None:
        errors.append(FieldError("risk", "Risk / complexity must be a whole number from 1 (low) to 5 (high)."))

    if errors or benefit is None or cost is None or risk is None:
        return None, errors
    compute = str(raw.get("compute") or "").strip()[:200]
    return (
        ValidProposal(title, approach, tuple(dict.fromkeys(refs)), why, benefit, cost, risk, compute),
        [],
    )


@dataclass(frozen=True)
class ProposalFacts:
    """What readiness and ranking need to know about one submitted proposal."""

    id: int
    title: str
    authors: frozenset[str]
    approach: str
    reference_keys: tuple[str, ...]
    benefit: int | None
    cost_days: float | None
    risk: int | None
    late: bool = False
    author: str = ""  # who submitted it (authors adds the co-authors who confirmed)
    pending: frozenset[str] = frozenset()  # named co-authors who have not confirmed: they do not count yet


def score(p: ProposalFacts) -> float:
    """Benefit over cost (days, floored at half a day), penalised by risk: risk 1 keeps it all, 5 keeps a fifth."""
    if p.benefit is None or p.cost_days is None or p.risk is None:
        return 0.0
    return p.benefit / max(p.cost_days, 0.5) * (6 - p.risk) / 5


def rank_proposals(proposals: Iterable[ProposalFacts], *, first: Sequence[int] = ()) -> list[ProposalFacts]:
    """Highest score first; ties keep submission order. Ids in `first` (runner-ups of an iterate) lead."""
    items = list(proposals)
    order = {pid: i for i, pid in enumerate(first)}
    indexed = list(enumerate(items))
    indexed.sort(key=lambda ip: (0 if ip[1].id in order else 1, order.get(ip[1].id, 0), -score(ip[1]), ip[0]))
    return [p for _, p in indexed]


def duplicate_references(proposals: Iterable[ProposalFacts]) -> dict[str, list[int]]:
    """References cited by two or more proposals: normalised key → proposal ids."""
    cited: dict[str, list[int]] = {}
    for p in proposals:
        for key in dict.fromkeys(p.reference_keys):
            cited.setdefault(key, []).append(p.id)
    return {k: ids for k, ids in cited.items() if len(ids) > 1}


def approach_family(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


@dataclass(frozen=True)
class RuleResult:
    key: str
    label: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Readiness:
    ready: bool
    rules: tuple[RuleResult, ...]
    owed_by: tuple[str, ...]
    excused: tuple[str, ...]
    duplicates: Mapping[str, list[int]] = field(default_factory=dict)

    @property
    def failed(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.rules if not r.passed)


def readiness(
    *,
    required: Iterable[str],
    away: Iterable[str],
    proposals: Sequence[ProposalFacts],
    min_proposals: int,
) -> Readiness:
    """The five readiness rules of a proposal meeting, each reported, plus references cited twice."""
    away_set = set(away)
    required_set = list(dict.fromkeys(required))
    authored = set().union(*(p.authors for p in proposals)) if proposals else set()
    owed = tuple(u for u in required_set if u not in authored and u not in away_set)
    excused = tuple(u for u in required_set if u not in authored and u in away_set)
    # Distinct minds: count people, not rows (a person's second proposal adds nothing; co-authors count once
    # they confirmed), and families only when they come from at least two different people.
    people = {p.author or min(p.authors, default=str(p.id)) for p in proposals}
    family_people: dict[str, set[str]] = {}
    for p in proposals:
        if approach_family(p.approach):
            family_people.setdefault(approach_family(p.approach), set()).update(p.authors or {p.author})
    families = set(family_people)
    family_minds = set().union(*family_people.values()) if family_people else set()
    families_ok = len(families) >= 2 and len(family_minds) >= 2
    pending = sorted(set().union(*(p.pending for p in proposals))) if proposals else []
    pending_note = f"; {len(pending)} co-author(s) not confirmed yet do not count" if pending else ""
    uncited = [p for p in proposals if not p.reference_keys]
    no_cost = [p for p in proposals if p.benefit is None or p.cost_days is None]
    rules = (
        RuleResult(
            "all_submitted",
            "Every required attendee has submitted",
            not owed,
            "everyone has submitted" if not owed else f"{len(owed)} still owe a proposal",
        ),
        RuleResult(
            "min_proposals",
            f"At least {min_proposals} proposals from different people",
            len(people) >= min_proposals,
            f"{len(proposals)} submitted by {len(people)} {'person' if len(people) == 1 else 'people'} "
            "(a person's second proposal counts once)" + pending_note,
        ),
        RuleResult(
            "distinct_families",
            "At least two distinct approach families, from different people",
            families_ok,
            f"{len(families)} famil{'y' if len(families) == 1 else 'ies'}: {', '.join(sorted(families)) or 'none'}"
            + ("" if families_ok or len(families) < 2 else " — all from one person"),
        ),
        RuleResult(
            "cite_literature",
            "Every proposal cites literature",
            not uncited,
            "all cite literature" if not uncited else "without references: " + ", ".join(f"#{p.id}" for p in uncited),
        ),
        RuleResult(
            "cost_and_benefit",
            "Every proposal states cost and benefit",
            not no_cost,
            "all state cost and benefit"
            if not no_cost
            else "missing cost or benefit: " + ", ".join(f"#{p.id}" for p in no_cost),
        ),
    )
    return Readiness(
        ready=all(r.passed for r in rules),
        rules=rules,
        owed_by=owed,
        excused=excused,
        duplicates=duplicate_references(proposals),
    )


# --- gates --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateFacts:
    """What the database knows that gates look at (gathered by the gates service)."""

    brief_problem: str = ""
    criteria: tuple[Criterion, ...] = ()
    brief_acknowledged_by_business_owner: bool = False
    baseline: str | None = None  # "metric = value"
    pipeline_url: str | None = None
    ready_decision: bool = False
    any_decision: bool = False
    evaluation: str | None = None
    real_check: str | None = None
    criterion_results: tuple[CriterionResult, ...] = ()  # Deliver: each criterion with its latest value
    brief_changed: bool = False  # the acknowledged brief was changed and not re-acknowledged
    deployment_tasks_total: int = 0
    deployment_tasks_open: int = 0


@dataclass(frozen=True)
class GateItem:
    label: str
    met: bool
    todo: str  # what a person does to meet it


@dataclass(frozen=True)
class GateResult:
    phase: Phase
    items: tuple[GateItem, ...]

    @property
    def met(self) -> bool:
        return all(i.met for i in self.items)

    @property
    def missing(self) -> tuple[GateItem, ...]:
        return tuple(i for i in self.items if not i.met)


def evaluate_gate(phase: Phase, facts: GateFacts) -> GateResult:
    """What is met and what is missing to leave `phase`, in words a person can act on."""
    items: list[GateItem]
    if phase is Phase.DISCOVERY:
        items = [
            GateItem("Problem statement", bool(facts.brief_problem.strip()), 'Write it: /phasegate brief problem="…"'),
            GateItem(
                "At least one success criterion (metric, target, real-conditions check)",
                bool(facts.criteria),
                'Add one: /phasegate brief criterion="skip rate < 20%; A/B test"',
            ),
            GateItem(
                "Brief changed, not re-acknowledged"
                if facts.brief_changed
                else "Brief acknowledged by a business owner",
                facts.brief_acknowledged_by_business_owner and not facts.brief_changed,
                "A business owner runs /phasegate brief ack",
            ),
        ]
    elif phase is Phase.DEFINE:
        items = [
            GateItem(
                "Baseline result recorded" + (f" ({facts.baseline})" if facts.baseline else ""),
                facts.baseline is not None,
                "Record it: /phasegate baseline metric=<name> value=<number> pipeline=<url>",
            ),
            GateItem(
                "Evaluation pipeline linked",
                bool(facts.pipeline_url),
                "Link it: /phasegate baseline … pipeline=<url of the pipeline>",
            ),
        ]
    elif phase is Phase.DEVELOP:
        items = [
            GateItem(
                "Decision recorded at a model-decision meeting whose readiness check passed",
                facts.ready_decision,
                (
                    "The decision was taken at a meeting that was not ready: the lead may override with a reason"
                    if facts.any_decision
                    else "Schedule a model-decision meeting, collect proposals, then /phasegate decide"
                ),
            )
        ]
    elif phase is Phase.DELIVER:
        results = facts.criterion_results or tuple(CriterionResult(c) for c in facts.criteria)
        items = [
            GateItem(
                r.describe(),
                r.met is True,
                (
                    f'Record it: /phasegate evaluate metric="{r.criterion.metric}" value=<number>'
                    if r.value is None
                    else "Improve it and evaluate again, or `advance outcome=iterate`"
                ),
            )
            for r in results
        ]
        if not results:
            items.append(
                GateItem(
                    "Evaluation result against the success criteria",
                    facts.evaluation is not None,
                    'Record it: /phasegate evaluate metric=<name> value=<number> check="…"',
                )
            )
        items.append(
            GateItem(
                "Real-conditions check (A/B test, demo or focus group)"
                + (f": {facts.real_check[:200]}" if facts.real_check else ""),
                bool(facts.real_check),
                'Record it with the evaluation: check="A/B test on 5% of users: +3% retention" evidence=<link>',
            )
        )
        if facts.brief_changed:
            items.append(
                GateItem(
                    "Brief changed, not re-acknowledged",
                    False,
                    "A business owner runs /phasegate brief ack",
                )
            )
    else:
        items = [
            GateItem(
                f"Every Deployment task closed ({facts.deployment_tasks_total - facts.deployment_tasks_open}"
                f"/{facts.deployment_tasks_total})",
                facts.deployment_tasks_total > 0 and facts.deployment_tasks_open == 0,
                "Close the remaining Deployment tasks (in GitHub or with /phasegate task done <id>)",
            )
        ]
    return GateResult(phase, tuple(items))


# --- working hours ------------------------------------------------------------------------------

_HOURS_RE = re.compile(r"^\s*(\d{1,2}):?(\d{2})?\s*[-–]\s*(\d{1,2}):?(\d{2})?\s*$")


MAX_OVERNIGHT_MIN = 16 * 60


def parse_working_hours(text: str) -> tuple[int, int] | None:
    """`09:00-17:00` → (540, 1020) minutes after midnight; None when malformed or empty.

    An overnight range ends the next day: `18:00-09:00` → (1080, 1980), at most 16 hours long (so `9-5`
    is refused rather than read as 09:00 to 05:00). Start and end must differ.
    """
    m = _HOURS_RE.match(text or "")
    if not m:
        return None
    start = int(m[1]) * 60 + int(m[2] or 0)
    end = int(m[3]) * 60 + int(m[4] or 0)
    if not (0 <= start < 24 * 60 and 0 <= end <= 24 * 60) or int(m[2] or 0) >= 60 or int(m[4] or 0) >= 60:
        return None
    if end <= start:
        end += 24 * 60
        if end - start > MAX_OVERNIGHT_MIN:
            return None
    return start, end


def format_working_hours(start: int, end: int, sep: str = "-") -> str:
    def hhmm(minute: int) -> str:
        minute %= 24 * 60
        return f"{minute // 60:02d}:{minute % 60:02d}"

    return f"{hhmm(start)}{sep}{hhmm(end) if end != 24 * 60 else '24:00'}"


DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAYS = frozenset(range(5))
_DAY_RE = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun)[a-z]*$")


def _day(word: str) -> int | None:
    m = _DAY_RE.match(word.strip().lower())
    return DAY_NAMES.index(m[1]) if m else None


def parse_days(text: str) -> frozenset[int] | None:
    """`sun-thu` (a range may wrap the week), `mon,wed,fri`, `mon-fri,sun` → weekday numbers (Mon = 0); None if bad."""
    days: set[int] = set()
    for part in (text or "").split(","):
        first, dash, last = part.partition("-")
        a = _day(first)
        b = _day(last) if dash else a
        if a is None or b is None:
            return None
        days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    return frozenset(days) or None


def format_days(days: Iterable[int]) -> str:
    """Weekday numbers → `Mon–Fri`, `Sun–Thu`, `Mon, Wed, Fri` (runs of three or more as ranges)."""
    chosen = set(days)
    if len(chosen) == 7:
        return "every day"
    # Start a run right after a day off, so a run that wraps the week (Sun–Thu) stays in one piece.
    start = next((d for d in range(7) if d in chosen and (d - 1) % 7 not in chosen), 0)
    runs: list[list[int]] = []
    for i in range(7):
        d = (start + i) % 7
        if d not in chosen:
            continue
        if runs and (runs[-1][-1] + 1) % 7 == d:
            runs[-1].append(d)
        else:
            runs.append([d])
    names = [DAY_NAMES[d].title() for d in range(7)]
    parts = [f"{names[r[0]]}–{names[r[-1]]}" if len(r) >= 3 else ", ".join(names[d] for d in r) for r in runs]
    return ", ".join(parts)
