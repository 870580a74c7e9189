"""push and safety rails: cancellations held by the mass-cancellation guard, alerts sent

Revision ID: 0008_push
Revises: 0007_web_admin
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_push"
down_revision = "0007_web_admin"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "held_cancellations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("held_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["calendar_id"], ["calendars.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["link_id"], ["links.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_held_cancellations_calendar", "held_cancellations", ["calendar_id"])
    op.create_table(
        "calendar_alerts",
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("notified_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["calendar_id"], ["calendars.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("calendar_id"),
    )


def downgrade() -> None:
    op.drop_table("calendar_alerts")
    op.drop_index("ix_held_cancellations_calendar", table_name="held_cancellations")
    op.drop_table("held_cancellations")
