"""What a sync does to a booking is in the booking's history, with the calendar as the actor:
created from it (with the booker), moved on it (old and new times), deleted on it (why)."""

from __future__ import annotations

from datetime import timedelta

from calbridge.demo.seed import vevent
from calbridge.ops.history import history_of
from calbridge.store.models import Event
from worlds import NOW

START = NOW + timedelta(days=10, hours=9)


def test_a_booking_made_moved_and_deleted_in_a_calendar_has_each_step_in_its_history(
    world,
) -> None:  # type: ignore[no-untyped-def]
    world.add_calendar("front")
    world.put("front", "e1.ics", vevent("h-1", "Board dinner", START, START + timedelta(hours=2),
                                        organizer="ann@acme-events.example"))  # fmt: skip
    assert world.sync("front").created == 1
    later = START + timedelta(days=1)
    world.put("front", "e1.ics", vevent("h-1", "Board dinner", later, later + timedelta(hours=2),
                                        organizer="ann@acme-events.example"))  # fmt: skip
    assert world.sync("front").updated == 1
    world.radicale.delete(world.urls["front"] + "e1.ics")
    assert world.sync("front").cancelled == 1

    with world.store.session() as session:
        (event,) = session.query(Event).all()
        steps = history_of(session, "booking", event.id)
    assert [(s.actor, s.action) for s in steps] == [
        ("calendar:front", "created"),
        ("calendar:front", "updated"),
        ("calendar:front", "cancelled"),
    ]
    created, moved, deleted = (s.details for s in steps)
    assert (created["calendar"], created["booker"]) == ("front", "ann@acme-events.example")
    assert created["event"].endswith("/e1.ics")  # the event's href on the server
    old, new = moved["changes"]["when"]
    assert old.startswith(START.isoformat()[:16]) and new.startswith(later.isoformat()[:16])
    assert set(moved["changes"]) == {"when"}
    assert deleted["why"] == "the calendar event was deleted"
