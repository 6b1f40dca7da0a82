"""phase target dates: `plan <phase> due=<date>`

Revision ID: 0009_phase_targets
Revises: 0008_criteria
Create Date: 2026-12-02 14:45:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from bot.db.models import UTCDateTime

revision: str = '0009_phase_targets'
down_revision: str | None = "0008_criteria"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'phase_targets',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('team_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('phase', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('due', sa.Date(), nullable=False),
        sa.Column('set_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('set_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id']),
        sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('project_id', 'phase', name='uq_phase_target'),
    )
    op.create_index(op.f('ix_phase_targets_team_id'), 'phase_targets', ['team_id'], unique=False)
    op.create_index(op.f('ix_phase_targets_project_id'), 'phase_targets', ['project_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_phase_targets_project_id'), table_name='phase_targets')
    op.drop_index(op.f('ix_phase_targets_team_id'), table_name='phase_targets')
    op.drop_table('phase_targets')
