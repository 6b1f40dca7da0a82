"""repo claims: a repository belongs to the first project that syncs it, shared only by its lead

Revision ID: 0007_repo_claims
Revises: 0006_membership
Create Date: 2026-12-02 14:25:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from bot.db.models import UTCDateTime

revision: str = '0007_repo_claims'
down_revision: str | None = "0006_membership"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'repo_claims',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('repo', sqlmodel.sql.sqltypes.AutoString(length=140), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('team_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('claimed_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('repo'),
    )
    op.create_index('ix_repo_claims_project_id', 'repo_claims', ['project_id'])
    op.create_table(
        'repo_shares',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('repo', sqlmodel.sql.sqltypes.AutoString(length=140), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('shared_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('shared_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('repo', 'project_id', name='uq_repo_share'),
    )
    op.create_index('ix_repo_shares_repo', 'repo_shares', ['repo'])
    op.create_index('ix_repo_shares_project_id', 'repo_shares', ['project_id'])


def downgrade() -> None:
    op.drop_index('ix_repo_shares_project_id', table_name='repo_shares')
    op.drop_index('ix_repo_shares_repo', table_name='repo_shares')
    op.drop_table('repo_shares')
    op.drop_index('ix_repo_claims_project_id', table_name='repo_claims')
    op.drop_table('repo_claims')
