"""iterations leave a clean record: superseded Deliver tasks, decision and phase permalinks

Revision ID: 0020_iterations
Revises: 0019_weekly_digest
Create Date: 2026-12-03 06:20:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.db.models

revision: str = '0020_iterations'
down_revision: str | None = "0019_weekly_digest"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('permalink', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
    with op.batch_alter_table('phase_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel_ts', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column('permalink', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('superseded_at', bot.db.models.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('superseded_by_record', sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column('superseded_note', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True)
        )
    with op.batch_alter_table('github_issues', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('superseded_comment', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table('github_issues', schema=None) as batch_op:
        batch_op.drop_column('superseded_comment')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('superseded_note')
        batch_op.drop_column('superseded_by_record')
        batch_op.drop_column('superseded_at')
    with op.batch_alter_table('phase_records', schema=None) as batch_op:
        batch_op.drop_column('permalink')
        batch_op.drop_column('channel_ts')
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.drop_column('permalink')
