"""weekly digest: per-project day and time (in the lead's zone), or off; outbox replies in another row's thread

Revision ID: 0019_weekly_digest
Revises: 0018_slack_installations
Create Date: 2026-12-03 06:10:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from bot.db.models import UTCDateTime

revision: str = '0019_weekly_digest'
down_revision: str | None = "0018_slack_installations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        'digest_settings',
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('team_id', S(length=32), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('weekday', sa.Integer(), nullable=False),
        sa.Column('minute', sa.Integer(), nullable=False),
        sa.Column('updated_by', S(length=32), nullable=False),
        sa.Column('updated_at', UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id']),
        sa.ForeignKeyConstraint(['team_id'], ['workspaces.team_id']),
        sa.PrimaryKeyConstraint('project_id'),
    )
    op.create_index(op.f('ix_digest_settings_team_id'), 'digest_settings', ['team_id'], unique=False)
    with op.batch_alter_table('slack_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('thread_of_key', S(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('slack_outbox', schema=None) as batch_op:
        batch_op.drop_column('thread_of_key')
    op.drop_index(op.f('ix_digest_settings_team_id'), table_name='digest_settings')
    op.drop_table('digest_settings')
