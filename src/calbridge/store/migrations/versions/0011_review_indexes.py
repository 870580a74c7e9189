"""review indexes: one index per column of the review queue's OR, and the client contact

Revision ID: 0011_review_indexes
Revises: 0010_sync_totals
"""

from __future__ import annotations

from alembic import op

revision = "0011_review_indexes"
down_revision = "0010_sync_totals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_booked_by", "events", ["booked_by_id"])
    op.create_index("ix_events_client_contact", "events", ["client_contact_id"])


def downgrade() -> None:
    op.drop_index("ix_events_client_contact", table_name="events")
    op.drop_index("ix_events_booked_by", table_name="events")
