"""criteria decide shipping: evaluation evidence link, brief changed after acknowledgement

Revision ID: 0008_criteria
Revises: 0007_repo_claims
Create Date: 2026-12-02 14:15:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0008_criteria'
down_revision: str | None = "0007_repo_claims"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('evidence_url', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True))
    with op.batch_alter_table('briefs', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('changed_after_ack', sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table('briefs', schema=None) as batch_op:
        batch_op.drop_column('changed_after_ack')
    with op.batch_alter_table('evaluations', schema=None) as batch_op:
        batch_op.drop_column('evidence_url')
