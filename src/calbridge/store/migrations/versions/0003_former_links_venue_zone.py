"""former links (re-linking adopts) and the venue's time zone

Revision ID: 0003_former_links_venue_zone
Revises: 0002
Create Date: 2026-12-01 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_former_links_venue_zone"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "former_links",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("identity", sa.String(length=1100), nullable=False),
        sa.Column("key_prefix", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("remote_id", sa.String(length=1024), nullable=True),
        sa.Column("recurrence_id", sa.String(length=32), nullable=False),
        sa.Column("uid", sa.String(length=1024), nullable=True),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("etag", sa.String(length=512), nullable=True),
        sa.Column("snapshot", sa.JSON(), nullable=True),
        sa.Column("synced_seq", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("is_series", sa.Boolean(), nullable=False),
        sa.Column("removed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("former_links", schema=None) as batch_op:
        batch_op.create_index("ix_former_links_identity", ["identity"], unique=False)
    with op.batch_alter_table("system_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("venue_timezone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("system_settings", schema=None) as batch_op:
        batch_op.drop_column("venue_timezone")
    with op.batch_alter_table("former_links", schema=None) as batch_op:
        batch_op.drop_index("ix_former_links_identity")
    op.drop_table("former_links")
