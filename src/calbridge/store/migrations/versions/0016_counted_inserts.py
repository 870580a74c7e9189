"""counted inserts: no per-row revision trigger on the bookings, their links and rooms

Migration 0015 raised the store's revision with a trigger on every insert into every watched
table. A CalDAV import inserts a booking, a link and a booked location per event: those three
triggers doubled the time SQLite spent on the two larger inserts (an AFTER trigger runs a
sub-program per row and materialises the new row for it). Inserts into these three tables are
now seen by their row counts, which ``calbridge.sync.quick.REVISION_QUERY`` reads with the
revision: an insert raises a count, and the only way back to the same count is a delete, whose
trigger (kept, as are the update triggers) raises the revision.

Revision ID: 0016_counted_inserts
Revises: 0015_quiet_marks
"""

from __future__ import annotations

from alembic import op

revision = "0016_counted_inserts"
down_revision = "0015_quiet_marks"
branch_labels = None
depends_on = None

COUNTED_TABLES = ("events", "links", "booked_locations")  # frozen as of this migration
BUMP = "UPDATE counters SET value = value + 1 WHERE name = 'revision'"


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in COUNTED_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS revision_{table}_insert")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in COUNTED_TABLES:
        op.execute(
            f"CREATE TRIGGER revision_{table}_insert AFTER INSERT ON {table} BEGIN {BUMP}; END"
        )
