"""Slack tokens may be stored sealed (PHASEGATE_SECRET_KEY): bot and refresh token columns become TEXT

Revision ID: 0022_sealed_slack_tokens
Revises: 0020_iterations
Create Date: 2026-12-03 11:20:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0022_sealed_slack_tokens'
down_revision: str | None = "0020_iterations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('slack_installations', schema=None) as batch_op:
        batch_op.alter_column(
            'bot_token', existing_type=sqlmodel.sql.sqltypes.AutoString(length=255), type_=sa.Text(),
            existing_nullable=False,
        )
        batch_op.alter_column(
            'bot_refresh_token', existing_type=sqlmodel.sql.sqltypes.AutoString(length=255), type_=sa.Text(),
            existing_nullable=True,
        )


def downgrade() -> None:
    # A sealed token does not fit 255 characters: downgrade only a database that stores them as given.
    with op.batch_alter_table('slack_installations', schema=None) as batch_op:
        batch_op.alter_column(
            'bot_refresh_token', existing_type=sa.Text(), type_=sqlmodel.sql.sqltypes.AutoString(length=255),
            existing_nullable=True,
        )
        batch_op.alter_column(
            'bot_token', existing_type=sa.Text(), type_=sqlmodel.sql.sqltypes.AutoString(length=255),
            existing_nullable=False,
        )
