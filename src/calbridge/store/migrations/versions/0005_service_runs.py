"""service run state: calendar state columns, sync_runs history, worker heartbeats

Revision ID: 0005_service_runs
Revises: 0004_sync_locks
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_service_runs"
down_revision = "0004_sync_locks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("state", sa.String(length=32), nullable=False, server_default="ok")
        )
        batch_op.add_column(
            sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("last_success_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("error_hint", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("next_run_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("poll_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("idle_polls", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("auth_failed_secret", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("full_requested", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("calendar_name", sa.String(length=200), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=True),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["calendar_id"], ["calendars.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sync_runs_calendar_started", "sync_runs", ["calendar_id", "started_at"])
    op.create_index("ix_sync_runs_started", "sync_runs", ["started_at"])
    op.create_table(
        "service_workers",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("service_workers")
    op.drop_index("ix_sync_runs_started", table_name="sync_runs")
    op.drop_index("ix_sync_runs_calendar_started", table_name="sync_runs")
    op.drop_table("sync_runs")
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        for column in (
            "full_requested",
            "auth_failed_secret",
            "idle_polls",
            "poll_seconds",
            "next_run_at",
            "error_hint",
            "last_success_at",
            "paused",
            "state",
        ):
            batch_op.drop_column(column)
