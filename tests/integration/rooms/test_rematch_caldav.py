"""Re-matching rooms on a real CalDAV server (Radicale): a room added to, dropped from or
swapped on an appointment that is already a booking changes that booking's booked locations
as the initial-import rules would have decided, with the step in the trace and the change in
the booking's history; nothing else on the booking changes, and nothing is written back."""

from __future__ import annotations

from typing import Any

from room_world import RoomWorld
from sqlalchemy import select
from test_rooms_caldav import meeting, only_booking

from calbridge.ops.bookings import review_reasons
from calbridge.store.models import Event, HistoryEntry

BALLROOM = ("ballroom@harbour.example", "ACCEPTED")
GARDEN = ("garden-room@harbour.example", "ACCEPTED")


def _places(rows: list[Any]) -> list[tuple[str | None, str | None, str]]:
    return [(bl.location_id, bl.status, bl.match) for bl in rows]


def _room_history(world: RoomWorld, event_id: int) -> list[list[str]]:
    with world.store.session() as s:
        entries = s.scalars(
            select(HistoryEntry)
            .where(HistoryEntry.subject_id == str(event_id), HistoryEntry.action == "updated")
            .order_by(HistoryEntry.id)
        ).all()
        changes = [(e.details or {}).get("changes", {}) for e in entries]
        return [c["rooms"] for c in changes if "rooms" in c]


def test_a_room_added_to_the_meeting_is_booked_with_the_appointments_times(
    world: RoomWorld,
) -> None:
    world.add_calendar("front")
    world.put("front", "m.ics", meeting("r1", BALLROOM))
    world.sync("front")
    before, _ = only_booking(world)
    world.put("front", "m.ics", meeting("r1", BALLROOM, GARDEN))
    report = world.sync("front")
    assert report.updated == 1 and (report.pushed_updated, report.pushed_created) == (0, 0)
    event, rows = only_booking(world)
    assert _places(rows) == [
        ("loc-ballroom", "confirmed", "resource"),
        ("loc-garden", "confirmed", "resource"),
    ]
    assert rows[1].start == rows[0].start and rows[1].end == rows[0].end
    assert (event.name, event.client_id, event.client_contact_id, event.start) == (
        before.name,
        before.client_id,
        before.client_contact_id,
        before.start,
    )
    assert event.location == "Ballroom; Garden Room"
    rules = [t["rule"] for t in event.trace or []]
    assert "Rooms changed on the calendar: matched again" in rules
    assert _room_history(world, event.id) == [["Ballroom", "Ballroom; Garden Room"]]
    again = world.sync("front")
    assert (again.updated, again.pushed_updated) == (0, 0)


def test_a_room_swapped_changes_that_booked_location_and_a_dropped_one_is_cancelled(
    world: RoomWorld,
) -> None:
    world.add_calendar("front")
    world.put("front", "m.ics", meeting("r2", BALLROOM, GARDEN))
    world.sync("front")
    _, first = only_booking(world)
    world.put("front", "m.ics", meeting("r2", GARDEN))  # the Ballroom dropped
    world.sync("front")
    event, rows = only_booking(world)
    assert [bl.id for bl in rows] == [bl.id for bl in first]
    assert _places(rows) == [
        ("loc-garden", "confirmed", "resource"),
        ("loc-ballroom", "cancelled", "resource"),
    ] or _places(rows) == [
        ("loc-garden", "confirmed", "resource"),
        ("loc-garden", "cancelled", "resource"),
    ]
    assert event.status == "confirmed" and event.location == "Garden Room"
    world.put("front", "m.ics", meeting("r2", BALLROOM))  # swapped: the Garden for the Ballroom
    world.sync("front")
    event, rows = only_booking(world)
    assert [(bl.location_id, bl.status) for bl in rows if bl.status == "confirmed"] == [
        ("loc-ballroom", "confirmed")
    ]
    assert rows[0].id == first[0].id  # the same booked location, its room changed
    assert _room_history(world, event.id) == [
        ["Ballroom; Garden Room", "Garden Room"],
        ["Garden Room", "Ballroom"],
    ]


def test_all_rooms_dropped_falls_back_to_the_location_text_as_on_import(
    world: RoomWorld,
) -> None:
    world.add_calendar("front")
    world.put("front", "m.ics", meeting("r3", BALLROOM, location="Ballroom"))
    world.sync("front")
    world.put("front", "m.ics", meeting("r3", location="Garden"))  # an alias of the Garden Room
    world.sync("front")
    _, rows = only_booking(world)
    assert [(bl.location_id, bl.match) for bl in rows if bl.status == "confirmed"] == [
        ("loc-garden", "text")
    ]
    world.put("front", "m.ics", meeting("r3", location="Client's office"))
    world.sync("front")
    event, rows = only_booking(world)
    live = [(bl.location_id, bl.location_text) for bl in rows if bl.status == "confirmed"]
    assert live == [(None, "Client's office")]
    with world.store.session() as s:
        reasons = review_reasons(s, s.get(Event, event.id))  # type: ignore[arg-type]
    assert any(r.startswith("no room") for r in reasons)


def test_a_room_that_declines_when_added_is_not_booked(world: RoomWorld) -> None:
    world.add_calendar("front")
    world.put("front", "m.ics", meeting("r4", BALLROOM))
    world.sync("front")
    declined = ("garden-room@harbour.example", "DECLINED")
    world.put("front", "m.ics", meeting("r4", BALLROOM, declined))
    world.sync("front")
    event, rows = only_booking(world)
    assert _places(rows) == [("loc-ballroom", "confirmed", "resource")]
    assert _room_history(world, event.id) == []  # the rules decide what they decided before
