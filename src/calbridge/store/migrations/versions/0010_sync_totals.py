"""sync totals: running counts of finished sync runs behind /metrics, shared by every worker

Revision ID: 0010_sync_totals
Revises: 0008_push
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_sync_totals"
down_revision = "0008_push"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_totals",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "result", "bucket"),
    )


def downgrade() -> None:
    op.drop_table("sync_totals")
