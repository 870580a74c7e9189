"""not_room_texts: location texts an admin marked "not a room" (issue 15, unmatched texts)

Revision ID: 0014_not_room_texts
Revises: 0013_locations
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_not_room_texts"
down_revision = "0013_locations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "not_room_texts",
        sa.Column("key", sa.String(length=1000), nullable=False),
        sa.Column("text", sa.String(length=1000), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("not_room_texts")
