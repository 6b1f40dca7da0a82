"""Slack installations and OAuth states (many-workspaces mode); workspaces.uninstalled_at

Revision ID: 0018_slack_installations
Revises: 0017_github_installations
Create Date: 2026-12-03 06:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.db.models

revision: str = '0018_slack_installations'
down_revision: str | None = "0017_github_installations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'slack_installations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('enterprise_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('team_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('team_name', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('app_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('is_enterprise_install', sa.Boolean(), nullable=False),
        sa.Column('installer_user_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('bot_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('bot_user_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('bot_token', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column('bot_scopes', sa.Text(), nullable=False),
        sa.Column('bot_refresh_token', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column('bot_token_expires_at', bot.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('token_type', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('installed_at', bot.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('enterprise_id', 'team_id', name='uq_slack_installation'),
    )
    with op.batch_alter_table('slack_installations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slack_installations_team_id'), ['team_id'], unique=False)
    op.create_table(
        'slack_oauth_states',
        sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('expires_at', bot.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('state'),
    )
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('uninstalled_at', bot.db.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('workspaces', schema=None) as batch_op:
        batch_op.drop_column('uninstalled_at')
    op.drop_table('slack_oauth_states')
    with op.batch_alter_table('slack_installations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slack_installations_team_id'))
    op.drop_table('slack_installations')
