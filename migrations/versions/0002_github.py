"""github sync: last-known issue title and assignees (three-way merge with changes made in GitHub)

Revision ID: 0002_github
Revises: 0001
Create Date: 2026-11-26 16:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = '0002_github'
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('github_issues', schema=None) as batch_op:
        batch_op.add_column(sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=256), nullable=True))
        batch_op.add_column(sa.Column('assignees', sa.JSON(), nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table('github_issues', schema=None) as batch_op:
        batch_op.drop_column('assignees')
        batch_op.drop_column('title')
