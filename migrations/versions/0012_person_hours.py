"""each person's own working hours and days: `hours 07:00-15:00 days=sun-thu`

Revision ID: 0012_person_hours
Revises: 0011_outbox_uploads
Create Date: 2026-12-02 21:15:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from bot.db.models import UTCDateTime

revision: str = '0012_person_hours'
down_revision: str | None = "0011_outbox_uploads"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'person_hours',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('team_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('user_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('hours', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('days', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column('set_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('set_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('team_id', 'user_id', name='uq_person_hours'),
    )
    op.create_index(op.f('ix_person_hours_team_id'), 'person_hours', ['team_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_person_hours_team_id'), table_name='person_hours')
    op.drop_table('person_hours')
