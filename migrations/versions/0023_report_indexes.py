"""Indexes for the status and App Home reports: a project's first open tasks, its counts per phase, its failing
issues, its GitHub sync backlog and its next meetings are read from indexes, so a report costs about the same at
10 and at 1,000 tasks

Revision ID: 0023_report_indexes
Revises: 0022_sealed_slack_tokens
Create Date: 2026-12-03 14:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0023_report_indexes"
down_revision: str | None = "0022_sealed_slack_tokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_tasks_open_order", "tasks", ["project_id", "status", "phase", "number"])
    op.create_index("ix_tasks_phase_counts", "tasks", ["project_id", "phase", "status", "superseded_at"])
    op.create_index("ix_github_issues_failing", "github_issues", ["project_id", "failures"])
    op.create_index("ix_outbox_project_status", "sync_outbox", ["project_id", "status"])
    op.create_index("ix_meetings_project_starts", "meetings", ["project_id", "starts_at"])


def downgrade() -> None:
    op.drop_index("ix_meetings_project_starts", table_name="meetings")
    op.drop_index("ix_outbox_project_status", table_name="sync_outbox")
    op.drop_index("ix_github_issues_failing", table_name="github_issues")
    op.drop_index("ix_tasks_phase_counts", table_name="tasks")
    op.drop_index("ix_tasks_open_order", table_name="tasks")
