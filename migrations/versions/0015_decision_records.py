"""decision records in the repository: per-project opt-in, and each record's branch, file and pull request

Revision ID: 0015_decision_records
Revises: 0012_person_hours
Create Date: 2026-12-02 21:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from bot.db.models import UTCDateTime

revision: str = '0015_decision_records'
down_revision: str | None = "0012_person_hours"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        'decision_record_settings',
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('team_id', S(length=32), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('path', S(length=200), nullable=False),
        sa.Column('updated_by', S(length=32), nullable=False),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id']),
        sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id']),
        sa.PrimaryKeyConstraint('project_id'),
    )
    op.create_index(
        op.f('ix_decision_record_settings_team_id'), 'decision_record_settings', ['team_id'], unique=False
    )
    op.create_table(
        'decision_record_files',
        sa.Column('decision_id', sa.Integer(), nullable=False),
        sa.Column('team_id', S(length=32), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('repo', S(length=200), nullable=False),
        sa.Column('branch', S(length=200), nullable=False),
        sa.Column('path', S(length=300), nullable=False),
        sa.Column('base', S(length=200), nullable=True),
        sa.Column('pr_number', sa.Integer(), nullable=True),
        sa.Column('pr_url', S(length=500), nullable=True),
        sa.Column('pr_state', S(length=10), nullable=True),
        sa.Column('superseded_by', sa.Integer(), nullable=True),
        sa.Column('synced_hash', S(length=64), nullable=True),
        sa.Column('synced_at', UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_error', S(length=1000), nullable=True),
        sa.Column('created_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['decision_id'], ['decisions.id']),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id']),
        sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id']),
        sa.PrimaryKeyConstraint('decision_id'),
        sa.UniqueConstraint('project_id', 'number', name='uq_decision_record_number'),
    )
    op.create_index(op.f('ix_decision_record_files_team_id'), 'decision_record_files', ['team_id'], unique=False)
    op.create_index(
        op.f('ix_decision_record_files_project_id'), 'decision_record_files', ['project_id'], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_decision_record_files_project_id'), table_name='decision_record_files')
    op.drop_index(op.f('ix_decision_record_files_team_id'), table_name='decision_record_files')
    op.drop_table('decision_record_files')
    op.drop_index(op.f('ix_decision_record_settings_team_id'), table_name='decision_record_settings')
    op.drop_table('decision_record_settings')
