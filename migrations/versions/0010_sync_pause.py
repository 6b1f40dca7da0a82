"""a project's GitHub sync paused on a dead end (archived repository, no access for the App)

Revision ID: 0010_sync_pause
Revises: 0009_phase_targets
Create Date: 2026-12-02 14:50:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.db.models

revision: str = '0010_sync_pause'
down_revision: str | None = "0009_phase_targets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sync_paused_reason', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch_op.add_column(sa.Column('sync_paused_at', bot.db.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_column('sync_paused_at')
        batch_op.drop_column('sync_paused_reason')
