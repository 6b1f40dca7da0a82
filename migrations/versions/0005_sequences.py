"""leader heartbeats: the leading replica's last sign of life, so the shell refuses a live deployment's database

Revision ID: 0005_sequences
Revises: 0004_webhook_inbox
Create Date: 2026-12-02 13:50:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0005_sequences'
down_revision: str | None = "0004_webhook_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('leader_heartbeats',
    sa.Column('replica', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('beat_at', sa.Float(), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('replica')
    )
    with op.batch_alter_table('leader_heartbeats', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_leader_heartbeats_beat_at'), ['beat_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('leader_heartbeats', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_leader_heartbeats_beat_at'))
    op.drop_table('leader_heartbeats')
