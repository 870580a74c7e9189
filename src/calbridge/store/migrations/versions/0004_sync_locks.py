"""sync locks (one row per calendar being synced, SQLite) and links looked up by UID

Revision ID: 0004_sync_locks
Revises: 0003_former_links_venue_zone
Create Date: 2026-12-01 14:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_sync_locks"
down_revision = "0003_former_links_venue_zone"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_locks",
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["calendar_id"], ["calendars.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("calendar_id"),
    )
    with op.batch_alter_table("links") as batch:
        batch.create_index("ix_links_calendar_uid", ["calendar_id", "uid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("links") as batch:
        batch.drop_index("ix_links_calendar_uid")
    op.drop_table("sync_locks")
