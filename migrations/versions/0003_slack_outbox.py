"""slack outbox: messages written with the change that causes them, delivered (and retried) by the sender

Revision ID: 0003_slack_outbox
Revises: 0002_github
Create Date: 2026-12-02 14:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.db.models

revision: str = '0003_slack_outbox'
down_revision: str | None = "0002_github"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    s = sqlmodel.sql.sqltypes.AutoString
    ts = bot.db.models.UTCDateTime
    op.create_table('slack_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('team_id', s(length=32), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('kind', s(length=16), nullable=False),
    sa.Column('target', s(length=64), nullable=False),
    sa.Column('text', s(), nullable=False),
    sa.Column('blocks', sa.JSON(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=True),
    sa.Column('filename', s(length=200), nullable=True),
    sa.Column('title', s(length=200), nullable=True),
    sa.Column('thread_ts', s(length=32), nullable=True),
    sa.Column('thread_of_meeting', sa.Integer(), nullable=True),
    sa.Column('update_ts', s(length=32), nullable=True),
    sa.Column('dedupe_key', s(length=200), nullable=False),
    sa.Column('notify_user_id', s(length=32), nullable=True),
    sa.Column('created_at', ts(timezone=True), nullable=False),
    sa.Column('not_after', ts(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', ts(timezone=True), nullable=False),
    sa.Column('status', s(length=16), nullable=False),
    sa.Column('last_error', s(length=200), nullable=True),
    sa.Column('sent_ts', s(length=32), nullable=True),
    sa.Column('done_at', ts(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ),
    sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('team_id', 'dedupe_key', name='uq_outbox_dedupe')
    )
    op.create_index('ix_slack_outbox_due', 'slack_outbox', ['status', 'next_attempt_at'], unique=False)
    op.create_index('ix_slack_outbox_team_id', 'slack_outbox', ['team_id'], unique=False)
    op.create_index('ix_slack_outbox_project_id', 'slack_outbox', ['project_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_slack_outbox_project_id', table_name='slack_outbox')
    op.drop_index('ix_slack_outbox_team_id', table_name='slack_outbox')
    op.drop_index('ix_slack_outbox_due', table_name='slack_outbox')
    op.drop_table('slack_outbox')
