"""slack_outbox: a sent announcement's ts recorded on the meeting or decision it announces

Revision ID: 0011_outbox_uploads
Revises: 0010_sync_pause
Create Date: 2026-12-02 21:20:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0011_outbox_uploads'
down_revision: str | None = "0010_sync_pause"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('slack_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ts_for', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('slack_outbox', schema=None) as batch_op:
        batch_op.drop_column('ts_for')
