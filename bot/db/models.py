"""SQLModel tables: everything Phasegate stores, each workspace-owned row carrying its team_id."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, LargeBinary, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(nullable: bool = False, index: bool = False) -> Any:
    column: Column[datetime] = Column(UTCDateTime(), nullable=nullable, index=index)
    if nullable:
        return Field(default=None, sa_column=column)
    return Field(default_factory=utcnow, sa_column=column)


def _json(default: Any) -> Any:
    return Field(default_factory=default, sa_column=Column(JSON, nullable=False))


def new_uuid() -> str:
    return str(uuid.uuid4())


class Workspace(SQLModel, table=True):
    __tablename__ = "workspaces"
    team_id: str = Field(primary_key=True, max_length=32)
    name: str = Field(default="", max_length=200)
    admin_user_ids: list[str] = _json(list)
    created_at: datetime = _ts()
    # Many-workspaces mode (0018_slack_installations): set by app_uninstalled / tokens_revoked, cleared by a new
    # install; `phasegate purge` deletes the workspace's data once this is older than the retention period.
    uninstalled_at: datetime | None = _ts(nullable=True)


class Project(SQLModel, table=True):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("team_id", "name", name="uq_projects_team_name"),)
    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    name: str = Field(max_length=80)
    channel_id: str = Field(max_length=32, index=True)
    repo: str | None = Field(default=None, max_length=200)  # "owner/name"
    lead_user_id: str = Field(max_length=32)
    phase: str = Field(default="discovery", max_length=20)
    iteration: int = Field(default=0)
    # per-project settings
    working_hours: str = Field(default="09:00-17:00", max_length=20)
    timezone: str = Field(default="UTC", max_length=64)
    proposal_deadline_hours: int = Field(default=24)
    min_proposals: int = Field(default=2)
    readiness_policy: str = Field(default="escalate", max_length=10)  # escalate | postpone
    postpone_days: int = Field(default=2)
    max_postpones: int = Field(default=2)
    created_at: datetime = _ts()
    # --- GitHub sync paused (0010_sync_pause): "archived" | "no_access"; cleared by the next `sync` command
    sync_paused_reason: str | None = Field(default=None, max_length=20)
    sync_paused_at: datetime | None = _ts(nullable=True)


class Member(SQLModel, table=True):
    """A person in a workspace: identity, GitHub login, time zone, hours, absence."""

    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("team_id", "user_id", name="uq_members_team_user"),)
    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    user_id: str = Field(max_length=32)
    display_name: str = Field(default="", max_length=200)
    github_login: str | None = Field(default=None, max_length=39)
    timezone: str | None = Field(default=None, max_length=64)
    working_hours: str | None = Field(default=None, max_length=20)
    away_until: date | None = Field(default=None)
    is_admin: bool = Field(default=False)
    updated_at: datetime = _ts()


class ProjectMember(SQLModel, table=True):
    """A person's roles in one project."""

    __tablename__ = "project_members"
    __table_args__ = (UniqueConstraint("project_id", "user_id", name="uq_project_members"),)
    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    project_id: int = Field(foreign_key="projects.id", index=True)
    user_id: str = Field(max_length=32)
    roles: list[str] = _json(list)


class PhaseRecord(SQLModel, table=True):
    __tablename__ = "phase_records"
    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    project_id: int = Field(foreign_key="projects.id", index=True)
    phase: str = Field(max_length=20)
    iteration: int = Field(default=0)
    started_at: datetime = _ts()
    target_date: date | None = Field(default=None)
    ended_at: datetime | None = _ts(nullable=True)
    outcome: str | None = Field(default=None, max_length=10)
    artifacts: dict[str, Any] = _json(dict)  # gate snapshot when the phase ended
    override_reason: str | None = Field(default=None, max_length=2000)
    override_by: str | None = Field(default=None, max_length=32)
    override_at: datetime | None = _ts(nullable=True)
    # The channel announcement of entering this phase (an iterate's is what superseded tasks link to).
    channel_ts: str | None = Field(default=None, max_length=32)
    permalink: str | None = Field(default=None, max_length=500)


class Brief(SQLModel, table=True):
    __tablename__ = "briefs"
    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    project_id: int = Field(foreign_key="projects.id", unique=True)
    problem: str = Field(default="", max_length=3000)
    acknowledged_by: str | None = Field(default=None, max_length=32)
    acknowledged_at: datetime | None = _ts(nullable=True)
    updated_by: str = Field(max_length=32)
    updated_at: datetime = _ts()
    # --- 0008_criteria: the brief is a contract (changed after an acknowledgement → needs a new one)
    changed_after_ack: bool = Field(default=False)


class SuccessCriterion(SQLModel, table=True):
    __tablename__ = "success_criteria"
    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    project_id: int = Field(foreign_key="projects.id", index=True)
    metric: str = Field(max_length=200)
    comparator: str = Field(max_length=4)
    target: str = Field(max_length=200)
    real_check: str = Field(max_length=500)
    created_by: str = Field(max_length=32)
    created_at: datetime = _ts()


class Baseline(SQLModel, table=True):
    __tablename__ = "baselines"
    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    project_id: int = Field(foreign_key="projects.id", index=True)
    metric: str = Field(max_length=200)
    value: float
    pipeline_url: str | None = Field(default=None, max_length=2000)
    recorded_by: str = Field(max_length=32)
    recorded_at: datetime = _ts()


class Evaluation(SQLModel, table=True):
    """A Deliver-phase evaluation against the success criteria, with its real-conditions check."""

    __tablename__ = "evaluations"
    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    project_id: int = Field(foreign_key="projects.id", index=True)
    iteration: int = Field(default=0)
    metric: str = Field(max_length=200)
    value: float
    real_check: str = Field(default="", max_length=2000)
    recorded_by: str = Field(max_length=32)
    recorded_at: datetime = _ts()
    # --- 0008_criteria: the real-conditions check's evidence (dashboard, report, recording)
    evidence_url: str | None = Field(default=None, max_length=2000)


class Meeting(SQLModel, table=True):
    __tablename__ = "meetings"
    __table_args__ = (Index("ix_meetings_project_starts", "project_id", "starts_at"),)  # a report's next meetings
    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    project_id: int = Field(foreign_key="projects.id", index=True)
    kind: str = Field(max_length=40)
    phase: str = Field(max_length=20)
    iteration: int = Field(default=0)
    starts_at: datetime = _ts(index=True)
    duration_min: int
    # scheduled | held (readiness not met, lead chose to hold anyway) | decided | cancelled
    status: str = Field(default="scheduled", max_length=12)
    proposal_deadline: datetime | None = _ts(nullable=True)
    postpone_count: int = Field(default=0)
    invite_sequence: int = Field(default=0)
    invite_uid: str = Field(default_factory=new_uuid, max_length=64)
    ready: bool | None = Field(default=None)  # verdict at the deadline; None before it
    verdict: dict[str, Any] = _json(dict)
    hold_anyway_by: str | None = Field(default=None, max_length=32)
    channel_ts: str | None = Field(default=None, max_length=32)  # announcement message, agenda thread
    created_by: str = Field(max_length=32)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class MeetingAttendee(SQLModel, table=True):
    __tablename__ = "meeting_attendees"
    __table_args__ = (UniqueConstraint("meeting_id", "user_id", name="uq_meeting_attendee"),)
    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    user_id: str = Field(max_length=32)
    required: bool = Field(default=True)
    owes_proposal: bool = Field(default=False)


class Proposal(SQLModel, table=True):
    __tablename__ = "proposals"
    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    project_id: int = Field(foreign_key="projects.id", index=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    author_user_id: str = Field(max_length=32)
    coauthors: list[str] = _json(list)
    title: str = Field(max_length=150)
    approach: str = Field(max_length=200)
    references: list[str] = _json(list)
    why: str = Field(max_length=3000)
    benefit: int
    cost_days: float
    compute: str = Field(default="", max_length=200)
    risk: int
    submitted_at: datetime = _ts()
    late: bool = Field(default=False)
    # --- membership (0006): co-authors who confirmed from their DM; only they count for readiness ---
    confirmed_coauthors: list[str] = _json(list)


class Decision(SQLModel, table=True):
    __tablename__ = "decisions"
    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    project_id: int = Field(foreign_key="projects.id", index=True)
    meeting_id: int = Field(foreign_key="meetings.id", unique=True)
    proposal_id: int = Field(foreign_key="proposals.id")
    rationale: str = Field(max_length=3000)
    runner_up_ids: list[int] = _json(list)  # ranked
    ready: bool = Field(default=False)  # the meeting's readiness check had passed
    decided_by: str = Field(max_length=32)
    decided_at: datetime = _ts()
    channel_ts: str | None = Field(default=None, max_length=32)
    permalink: str | None = Field(default=None, max_length=500)  # chat.getPermalink of the record: issue bodies link it


class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_project_number", "project_id", "number", unique=True),
        # A report's first open tasks of each phase of a project, by number
        Index("ix_tasks_open_order", "project_id", "status", "phase", "number"),
        # A report's counts per phase from the index alone
        Index("ix_tasks_phase_counts", "project_id", "phase", "status", "superseded_at"),
    )
    id: str = Field(default_factory=new_uuid, primary_key=True, max_length=36)
    number: int = Field(default=0)  # short per-project number people type
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    project_id: int = Field(foreign_key="projects.id", index=True)
    phase: str = Field(max_length=20)
    iteration: int = Field(default=0)
    title: str = Field(max_length=256)
    body: str = Field(default="", max_length=5000)
    assignee_user_id: str | None = Field(default=None, max_length=32)
    role: str | None = Field(default=None, max_length=20)
    status: str = Field(default="open", max_length=10)  # open | closed
    origin: str = Field(default="manual", max_length=10)  # default | decision | manual | github
    decision_id: int | None = Field(default=None, foreign_key="decisions.id")
    created_by: str = Field(default="", max_length=32)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()
    # Closed because Deliver iterated back to Develop (GitHub: closed as not planned, with a comment).
    superseded_at: datetime | None = _ts(nullable=True)
    superseded_by_record: int | None = Field(default=None)  # the phase record of the Develop it went back to
    superseded_note: str | None = Field(default=None, max_length=1000)


class GitHubMilestone(SQLModel, table=True):
    __tablename__ = "github_milestones"
    __table_args__ = (UniqueConstraint("project_id", "phase", name="uq_github_milestone_phase"),)
    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    project_id: int = Field(foreign_key="projects.id", index=True)
    phase: str = Field(max_length=20)
    number: int | None = Field(default=None)
    title: str = Field(max_length=255)
    state: str = Field(default="open", max_length=10)
    etag: str | None = Field(default=None, max_length=200)
    synced_hash: str | None = Field(default=None, max_length=64)
    synced_at: datetime | None = _ts(nullable=True)


class GitHubIssue(SQLModel, table=True):
    __tablename__ = "github_issues"
    __table_args__ = (Index("ix_github_issues_failing", "project_id", "failures"),)  # a report's failing tasks
    task_id: str = Field(foreign_key="tasks.id", primary_key=True, max_length=36)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    project_id: int = Field(foreign_key="projects.id", index=True)
    number: int | None = Field(default=None)
    html_url: str | None = Field(default=None, max_length=500)
    state: str = Field(default="open", max_length=10)
    etag: str | None = Field(default=None, max_length=200)
    synced_hash: str | None = Field(default=None, max_length=64)  # hash of what we last wrote
    synced_at: datetime | None = _ts(nullable=True)
    # What GitHub last had (we wrote it or read it): the base of the three-way merge with changes made in GitHub.
    title: str | None = Field(default=None, max_length=256)
    assignees: list[str] = _json(list)
    failures: int = Field(default=0)
    last_error: str | None = Field(default=None, max_length=1000)
    superseded_comment: str | None = Field(default=None, max_length=10)  # None | sending | done


class OutboxItem(SQLModel, table=True):
    """Persistent queue of GitHub work; an item leaves only when done."""

    __tablename__ = "sync_outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_project_status", "project_id", "status"),  # a report's pending and failing counts
    )
    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    project_id: int = Field(foreign_key="projects.id", index=True)
    kind: str = Field(max_length=30)  # labels | milestone | issue | close_milestone | poll
    ref: str = Field(default="", max_length=64)  # task id or phase
    dedupe_key: str = Field(max_length=120, unique=True)  # one pending item per thing
    status: str = Field(default="pending", max_length=10)  # pending | done | failing
    attempts: int = Field(default=0)
    next_attempt_at: datetime = _ts()
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = _ts()
    updated_at: datetime = _ts()


class ProcessedDelivery(SQLModel, table=True):
    """Slack event ids and GitHub delivery GUIDs already handled (dedupe)."""

    __tablename__ = "processed_deliveries"
    __table_args__ = (UniqueConstraint("source", "delivery_id", name="uq_processed_delivery"),)
    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=10)  # slack | github
    delivery_id: str = Field(max_length=100)
    received_at: datetime = _ts(index=True)


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_log"
    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    project_id: int | None = Field(default=None, foreign_key="projects.id", index=True)
    actor: str = Field(max_length=32)
    action: str = Field(max_length=60)
    detail: dict[str, Any] = _json(dict)
    at: datetime = _ts(index=True)


class SentMessage(SQLModel, table=True):
    """A reminder or notice already sent, so a restart or a retry never sends it twice."""

    __tablename__ = "sent_messages"
    __table_args__ = (UniqueConstraint("team_id", "key", name="uq_sent_message"),)
    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    key: str = Field(max_length=200)  # e.g. meeting:12:dm48:U123:seq0
    sent_at: datetime = _ts()


# --- leader heartbeats (issue 10: the shell refuses a database a server leads) -----------------------------------


class LeaderHeartbeat(SQLModel, table=True):
    """The replica that leads writes its row every few seconds (epoch seconds, from the database's clock on
    PostgreSQL), so `phasegate shell --db …` can tell a database that a live deployment runs on."""

    __tablename__ = "leader_heartbeats"
    replica: str = Field(primary_key=True, max_length=200)  # host:pid
    beat_at: float = Field(index=True)
    started_at: float


# --------------------------------------------------------------------------- webhook inbox (migration 0004)


class WebhookDelivery(SQLModel, table=True):
    """A verified GitHub webhook, stored before it is answered 202; the leader applies it (applied_at) and
    reports its changes in one digest (digest, digested_at). Pruned after a retention period."""

    __tablename__ = "webhook_deliveries"
    id: int | None = Field(default=None, primary_key=True)
    guid: str = Field(max_length=100, unique=True)
    event: str = Field(max_length=40)
    action: str = Field(default="", max_length=40)
    body: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime = _ts(index=True)
    applied_at: datetime | None = _ts(nullable=True, index=True)
    digest: list[dict[str, Any]] = _json(list)
    digested_at: datetime | None = _ts(nullable=True)


class GitHubIssueVersion(SQLModel, table=True):
    """The `updated_at` of the latest `issues` event applied per issue, so an older (replayed) one is ignored."""

    __tablename__ = "github_issue_versions"
    repo: str = Field(primary_key=True, max_length=200)
    number: int = Field(primary_key=True)
    updated_at: datetime = _ts()


# ---------------------------------------------------------------- repository claims (wt-ownership, 0007_repo_claims)


class RepoClaim(SQLModel, table=True):
    """The project that first synced a repository holds it; others need the holder's `share`."""

    __tablename__ = "repo_claims"
    id: int | None = Field(default=None, primary_key=True)
    repo: str = Field(max_length=140, unique=True)  # lower-cased owner/name
    project_id: int = Field(foreign_key="projects.id", index=True)
    team_id: str = Field(max_length=32)
    claimed_at: datetime = _ts()


class RepoShare(SQLModel, table=True):
    """A holding project's lead let another project sync the same repository."""

    __tablename__ = "repo_shares"
    __table_args__ = (UniqueConstraint("repo", "project_id", name="uq_repo_share"),)
    id: int | None = Field(default=None, primary_key=True)
    repo: str = Field(max_length=140, index=True)
    project_id: int = Field(foreign_key="projects.id", index=True)
    shared_by: str = Field(max_length=32)
    shared_at: datetime = _ts()


# --- outbox (issue 10: durable Slack delivery) --------------------------------------------------------------


class OutboxMessage(SQLModel, table=True):
    """A message Phasegate sends on its own, written with the change that causes it, delivered by the sender."""

    __tablename__ = "slack_outbox"
    __table_args__ = (
        UniqueConstraint("team_id", "dedupe_key", name="uq_outbox_dedupe"),
        Index("ix_slack_outbox_due", "status", "next_attempt_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    project_id: int | None = Field(default=None, foreign_key="projects.id", index=True)
    kind: str = Field(max_length=16)  # post | dm | upload | update
    target: str = Field(max_length=64)  # channel id (post, upload, update) or user id (dm)
    text: str = Field(default="")
    blocks: list[Any] = _json(list)
    content: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    filename: str | None = Field(default=None, max_length=200)
    title: str | None = Field(default=None, max_length=200)
    thread_ts: str | None = Field(default=None, max_length=32)
    thread_of_meeting: int | None = Field(default=None)  # reply in this meeting's announcement thread (at send time)
    update_ts: str | None = Field(default=None, max_length=32)  # the message an `update` replaces
    # reply in the thread of the earlier outbox row with this dedupe key, once it is sent (0019: the digest's chart)
    thread_of_key: str | None = Field(default=None, max_length=200)
    # "meeting:<id>" / "decision:<id>": once sent, the ts is stored as that row's channel_ts (threads, updates)
    ts_for: str | None = Field(default=None, max_length=40)
    dedupe_key: str = Field(max_length=200)
    notify_user_id: str | None = Field(default=None, max_length=32)  # told once when this cannot be delivered
    created_at: datetime = _ts()
    not_after: datetime | None = _ts(nullable=True)  # stale afterwards: dropped with an audit entry
    attempts: int = Field(default=0)
    next_attempt_at: datetime = _ts()
    status: str = Field(default="pending", max_length=16)  # pending | sent | failed | dropped
    last_error: str | None = Field(default=None, max_length=200)
    sent_ts: str | None = Field(default=None, max_length=32)
    done_at: datetime | None = _ts(nullable=True)


# ---------------------------------------------------------------- phase target dates (wt-find, 0009_phase_targets)


class PhaseTarget(SQLModel, table=True):
    """The lead's target date for a phase (`plan <phase> due=<date>`): the milestone's due date, overdue in status."""

    __tablename__ = "phase_targets"
    __table_args__ = (UniqueConstraint("project_id", "phase", name="uq_phase_target"),)
    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    project_id: int = Field(foreign_key="projects.id", index=True)
    phase: str = Field(max_length=20)
    due: date
    set_by: str = Field(default="", max_length=32)
    set_at: datetime = _ts()


# --- person hours (wt-hours, 0012_person_hours) --------------------------------------------------


class PersonHours(SQLModel, table=True):
    """A person's own working hours and days (`hours 07:00-15:00 days=sun-thu`), over the project's default.

    Per workspace user; `hours` may be overnight (`18:00-09:00`); `days` are the days a shift starts
    (`mon,tue,wed,thu,sun`), None for Mon–Fri.
    """

    __tablename__ = "person_hours"
    __table_args__ = (UniqueConstraint("team_id", "user_id", name="uq_person_hours"),)
    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    user_id: str = Field(max_length=32)
    hours: str = Field(max_length=20)
    days: str | None = Field(default=None, max_length=40)
    set_by: str = Field(default="", max_length=32)
    set_at: datetime = _ts()


# --- decision records (issue 14 item 5, 0015_decision_records) ------------------------------------------------


class DecisionRecordSettings(SQLModel, table=True):
    """A project's opt-in to decision records in its repository (`settings decision_records=on path=…`)."""

    __tablename__ = "decision_record_settings"
    project_id: int = Field(foreign_key="projects.id", primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    enabled: bool = Field(default=False)
    path: str = Field(default="docs/decisions", max_length=200)
    updated_by: str = Field(default="", max_length=32)
    updated_at: datetime = _ts()


class DecisionRecordFile(SQLModel, table=True):
    """A decision's markdown record, proposed as a pull request on a branch of its own, exactly once.

    The row is written before the first write to GitHub; from then on a retry finds the branch and the pull
    request (by head branch and the body's marker) instead of making new ones."""

    __tablename__ = "decision_record_files"
    __table_args__ = (UniqueConstraint("project_id", "number", name="uq_decision_record_number"),)
    decision_id: int = Field(foreign_key="decisions.id", primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    project_id: int = Field(foreign_key="projects.id", index=True)
    number: int  # per project: 1, 2, … (the file's 0001- prefix and the branch's suffix)
    repo: str = Field(max_length=200)
    branch: str = Field(max_length=200)
    path: str = Field(max_length=300)
    base: str | None = Field(default=None, max_length=200)  # the repository's default branch, once read
    pr_number: int | None = Field(default=None)
    pr_url: str | None = Field(default=None, max_length=500)
    pr_state: str | None = Field(default=None, max_length=10)  # open | closed | merged
    superseded_by: int | None = Field(default=None)  # the decision whose record replaces this one
    synced_hash: str | None = Field(default=None, max_length=64)
    synced_at: datetime | None = _ts(nullable=True)
    last_error: str | None = Field(default=None, max_length=1000)
    created_at: datetime = _ts()


# --- github installations --- (wt-ghapp, 0017_github_installations)


class GitHubInstallation(SQLModel, table=True):
    """A GitHub App installation linked to a workspace through the setup redirect (`github connect`)."""

    __tablename__ = "github_installations"
    __table_args__ = (UniqueConstraint("team_id", "installation_id", name="uq_github_installation"),)
    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    installation_id: int = Field(index=True)
    account_login: str = Field(default="", max_length=100)  # the user or organization it is installed on
    linked_by: str = Field(default="", max_length=32)
    linked_at: datetime = _ts()


class GitHubSetupNonce(SQLModel, table=True):
    """A used `github connect` state: its nonce, so that one link links at most one installation."""

    __tablename__ = "github_setup_nonces"
    nonce: str = Field(primary_key=True, max_length=64)
    team_id: str = Field(max_length=32)
    used_at: datetime = _ts()


class SlackInstallation(SQLModel, table=True):
    """A workspace's installation of the Slack app through /slack/install (many-workspaces mode): its bot token,
    and with token rotation its refresh token and expiry. One row per workspace (the latest install)."""

    __tablename__ = "slack_installations"
    __table_args__ = (UniqueConstraint("enterprise_id", "team_id", name="uq_slack_installation"),)
    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: str = Field(default="", max_length=32)
    team_id: str = Field(default="", index=True, max_length=32)
    team_name: str = Field(default="", max_length=200)
    app_id: str = Field(default="", max_length=32)
    is_enterprise_install: bool = Field(default=False)
    installer_user_id: str = Field(default="", max_length=32)
    bot_id: str = Field(default="", max_length=32)
    bot_user_id: str = Field(default="", max_length=32)
    # Text: a token sealed with PHASEGATE_SECRET_KEY (bot/token_cipher.py) is longer than the token (0022)
    bot_token: str = Field(sa_column=Column(Text, nullable=False))
    bot_scopes: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    bot_refresh_token: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    bot_token_expires_at: datetime | None = _ts(nullable=True)
    token_type: str = Field(default="bot", max_length=20)
    installed_at: datetime = _ts()


class SlackOAuthState(SQLModel, table=True):
    """An `Add to Slack` state issued by /slack/install; consumed (deleted) by the one redirect that uses it."""

    __tablename__ = "slack_oauth_states"
    state: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = _ts()


# --- weekly digest (issue 14 item 1, 0019_weekly_digest) ------------------------------------------------------


class DigestSettings(SQLModel, table=True):
    """A project's weekly digest (`settings digest="mon 09:00"`, in the lead's time zone; `digest=off`)."""

    __tablename__ = "digest_settings"
    project_id: int = Field(foreign_key="projects.id", primary_key=True)
    team_id: str = Field(foreign_key="workspaces.team_id", index=True, max_length=32)
    enabled: bool = Field(default=False)
    weekday: int = Field(default=0)  # Mon = 0
    minute: int = Field(default=9 * 60)  # minutes after local midnight
    updated_by: str = Field(default="", max_length=32)
    updated_at: datetime = _ts()
