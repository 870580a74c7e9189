"""login failures: the admin UI's sign-in throttle counted in the store, shared by processes

Revision ID: 0012_login_failures
Revises: 0011_review_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_login_failures"
down_revision = "0011_review_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=320), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_failures_key_at", "login_failures", ["key", "at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_key_at", table_name="login_failures")
    op.drop_table("login_failures")
