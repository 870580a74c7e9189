"""admin UI: admin accounts, sessions, and indexes for the bookings list

Revision ID: 0007_web_admin
Revises: 0006_api
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_web_admin"
down_revision = "0006_api"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_table(
        "admin_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("admin_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["admin_id"], ["admin_users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_admin_sessions_admin", "admin_sessions", ["admin_id"])
    op.create_index("ix_events_status_start", "events", ["status", "start_utc"])
    op.create_index("ix_events_client_start", "events", ["client_id", "start_utc"])
    op.create_index(
        "ix_events_review", "events", ["ambiguous", "client_id", "booked_by_id", "status"]
    )


def downgrade() -> None:
    op.drop_index("ix_events_review", table_name="events")
    op.drop_index("ix_events_client_start", table_name="events")
    op.drop_index("ix_events_status_start", table_name="events")
    op.drop_index("ix_admin_sessions_admin", table_name="admin_sessions")
    op.drop_table("admin_sessions")
    op.drop_table("admin_users")
