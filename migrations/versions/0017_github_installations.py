"""GitHub App installations linked to workspaces, and used setup states

Revision ID: 0017_github_installations
Revises: 0015_decision_records
Create Date: 2026-12-02 22:20:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.db.models

revision: str = '0017_github_installations'
down_revision: str | None = "0015_decision_records"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'github_installations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('team_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('installation_id', sa.Integer(), nullable=False),
        sa.Column('account_login', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column('linked_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('linked_at', bot.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('team_id', 'installation_id', name='uq_github_installation'),
    )
    with op.batch_alter_table('github_installations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_github_installations_team_id'), ['team_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_github_installations_installation_id'), ['installation_id'], unique=False)
    op.create_table(
        'github_setup_nonces',
        sa.Column('nonce', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('team_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('used_at', bot.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('nonce'),
    )


def downgrade() -> None:
    op.drop_table('github_setup_nonces')
    with op.batch_alter_table('github_installations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_github_installations_installation_id'))
        batch_op.drop_index(batch_op.f('ix_github_installations_team_id'))
    op.drop_table('github_installations')
