"""venue rooms: locations, booked locations, calendars as assistants, appointments per part

Every existing booking gets one booked location with its own times and its free-text location
(no room), so nothing changes for it; existing links are that booked location's appointment
(``part`` "").

Revision ID: 0013_locations
Revises: 0012_login_failures
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_locations"
down_revision = "0012_login_failures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "locations",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("resource_address", sa.String(length=254), nullable=True),
        sa.Column("resource_display", sa.String(length=254), nullable=True),
        sa.Column("aliases", sa.JSON(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_locations_resource_address", "locations", ["resource_address"])
    op.create_table(
        "booked_locations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("location_id", sa.String(length=200), nullable=True),
        sa.Column("location_text", sa.String(length=1000), nullable=True),
        sa.Column("start", sa.String(length=40), nullable=False),
        sa.Column("end", sa.String(length=40), nullable=False),
        sa.Column("all_day", sa.Boolean(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("start_utc", sa.DateTime(), nullable=False),
        sa.Column("end_utc", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("match", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_booked_locations_event", "booked_locations", ["event_id"])
    op.create_index("ix_booked_locations_room", "booked_locations", ["location_id", "start_utc"])
    op.execute(
        'INSERT INTO booked_locations (event_id, location_id, location_text, start, "end", '
        "all_day, timezone, start_utc, end_utc, status, match, position) "
        'SELECT id, NULL, location, start, "end", all_day, timezone, start_utc, end_utc, '
        "CASE WHEN status = 'cancelled' THEN 'cancelled' ELSE 'confirmed' END, 'given', 0 "
        "FROM events ORDER BY id"
    )
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "export_mode", sa.String(length=16), nullable=False, server_default="locations"
            )
        )
        batch_op.add_column(
            sa.Column("rooms_as_resources", sa.Boolean(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("filters", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("title_template", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("room_location_id", sa.String(length=200), nullable=True))
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("part", sa.String(length=40), nullable=False, server_default="")
        )
        batch_op.drop_constraint("uq_link_calendar_event", type_="unique")
        batch_op.create_unique_constraint(
            "uq_link_calendar_event_part", ["calendar_id", "event_id", "part"]
        )
    with op.batch_alter_table("former_links", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("part", sa.String(length=40), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("former_links", schema=None) as batch_op:
        batch_op.drop_column("part")
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.drop_constraint("uq_link_calendar_event_part", type_="unique")
        batch_op.create_unique_constraint("uq_link_calendar_event", ["calendar_id", "event_id"])
        batch_op.drop_column("part")
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        for column in (
            "room_location_id",
            "title_template",
            "filters",
            "rooms_as_resources",
            "export_mode",
        ):
            batch_op.drop_column(column)
    op.drop_index("ix_booked_locations_room", table_name="booked_locations")
    op.drop_index("ix_booked_locations_event", table_name="booked_locations")
    op.drop_table("booked_locations")
    op.drop_index("ix_locations_resource_address", table_name="locations")
    op.drop_table("locations")
