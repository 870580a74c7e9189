"""quiet marks: the store's revision counter (SQLite triggers) and ``calendars.quiet_mark``

A calendar's quiet mark says "this calendar's last sync ended with nothing left to do, at store
revision R"; while the revision is still R, a sync of it has nothing to push and the no-change
path (``calbridge.sync.quick``) may finish it with one request. The revision is a row of
``counters`` raised by triggers on every write to a table a sync reads (SQLite only: the quick
path is SQLite's; PostgreSQL gets the column and the counter row, and never a mark).

The tables and calendar columns are listed here, frozen as of this migration; a test checks
that every table and calendar column of the newest schema is classified in
``calbridge.sync.quick`` and that the watched ones have their triggers.

Revision ID: 0015_quiet_marks
Revises: 0014_not_room_texts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_quiet_marks"
down_revision = "0014_not_room_texts"
branch_labels = None
depends_on = None

WATCHED_TABLES = (
    "companies",
    "contacts",
    "contact_emails",
    "users",
    "user_emails",
    "locations",
    "not_room_texts",
    "system_settings",
    "events",
    "booked_locations",
    "links",
    "former_links",
    "held_cancellations",
    "booking_reviews",
)
CALENDAR_SETTINGS = (
    "name",
    "kind",
    "settings",
    "secret",
    "owner_user_id",
    "policy",
    "direction",
    "horizon_days",
    "key_prefix",
    "paused",
    "full_requested",
    "export_mode",
    "rooms_as_resources",
    "filters",
    "title_template",
    "room_location_id",
)
BUMP = "UPDATE counters SET value = value + 1 WHERE name = 'revision'"


def upgrade() -> None:
    op.add_column("calendars", sa.Column("quiet_mark", sa.String(length=200), nullable=True))
    op.execute("INSERT INTO counters (name, value) VALUES ('revision', 0)")
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in WATCHED_TABLES:
        for when in ("INSERT", "UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER revision_{table}_{when.lower()} AFTER {when} ON {table} "
                f"BEGIN {BUMP}; END"
            )
    for when in ("INSERT", "DELETE"):
        op.execute(
            f"CREATE TRIGGER revision_calendars_{when.lower()} AFTER {when} ON calendars "
            f"BEGIN {BUMP}; END"
        )
    op.execute(
        f"CREATE TRIGGER revision_calendars_update AFTER UPDATE OF {', '.join(CALENDAR_SETTINGS)} "
        f"ON calendars BEGIN {BUMP}; END"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in (*WATCHED_TABLES, "calendars"):
            for when in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS revision_{table}_{when}")
    op.execute("DELETE FROM counters WHERE name = 'revision'")
    op.drop_column("calendars", "quiet_mark")
