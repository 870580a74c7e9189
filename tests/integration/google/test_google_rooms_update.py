"""Rooms on an existing Google event (real google-api-python-client against the emulator): a
room added to or swapped on a meeting in Google re-matches that booking's booked locations; a
room change pushed from the booking changes only the room resources we manage — a guest added
in Google stays on the event."""

from __future__ import annotations

from datetime import datetime

from google_world import GoogleWorld
from sqlalchemy import select
from test_google_rooms import BALLROOM, GARDEN, invite, rooms_of

from calbridge.domain.event import make_times
from calbridge.store.booked import booked_locations
from calbridge.store.events import ManualAssignment, create_event, update_event
from calbridge.store.models import Event
from calbridge.sync.assistant import AssistantChange, apply_assistant
from calbridge.sync.calendars import find_calendar, link_event

GUEST = "guest@elsewhere.example"


def _event(world: GoogleWorld, calendar: str) -> dict:
    (only,) = (
        world.person(calendar)
        .events()
        .list(calendarId=world.calendars[calendar])
        .execute()["items"]
    )
    return dict(only)


def _set_attendees(world: GoogleWorld, calendar: str, event_id: str, attendees: list) -> None:
    world.person(calendar).events().patch(
        calendarId=world.calendars[calendar], eventId=event_id, body={"attendees": attendees}
    ).execute()


def test_a_room_added_then_swapped_in_google_rematches_the_booking(world: GoogleWorld) -> None:
    world.gcal.add_room(BALLROOM, "Ballroom", 300)
    world.gcal.add_room(GARDEN, "Garden Room", 60)
    world.add_calendar("front", user="ann.lee@acme.example")
    created = invite(world, "front", "Offsite", datetime(2027, 4, 1, 9), BALLROOM)
    world.sync("front")
    assert rooms_of(world, "Offsite") == [("loc-ballroom", "resource")]
    both = [{"email": BALLROOM, "resource": True}, {"email": GARDEN, "resource": True}]
    _set_attendees(world, "front", created["id"], both)
    report = world.sync("front")
    assert report.updated == 1
    assert rooms_of(world, "Offsite") == [("loc-ballroom", "resource"), ("loc-garden", "resource")]
    _set_attendees(world, "front", created["id"], [{"email": GARDEN, "resource": True}])
    world.sync("front")
    with world.store.session() as s:
        event = s.scalars(select(Event).where(Event.name == "Offsite")).one()
        live = [bl.location_id for bl in booked_locations(s, event.id) if bl.status == "confirmed"]
        assert live == ["loc-garden"]
        assert event.status == "confirmed" and event.client_id == "co-acme"
        rules = [t["rule"] for t in event.trace or []]
    assert rules.count("Rooms changed on the calendar: matched again") == 2


def test_a_room_change_from_the_booking_keeps_a_guest_added_in_google(world: GoogleWorld) -> None:
    world.gcal.add_room(BALLROOM, "Ballroom", 300)
    world.gcal.add_room(GARDEN, "Garden Room", 60)
    world.add_calendar("rooms")
    with world.store.session() as s:
        calendar = find_calendar(s, "rooms")
        apply_assistant(s, calendar, AssistantChange(rooms_as_resources=True))
        times = make_times("2027-04-02T09:00", "2027-04-02T10:00", all_day=False, timezone="UTC")
        event = create_event(
            s,
            name="Launch",
            times=times,
            location="Ballroom",
            manual=ManualAssignment("co-acme", None, "u-tom", "u-tom"),
        )
        link_event(s, event, calendar)
        event_id = event.id
    world.sync("rooms")
    written = _event(world, "rooms")
    _set_attendees(world, "rooms", written["id"], [*written["attendees"], {"email": GUEST}])
    pulled = world.sync("rooms")
    assert (pulled.updated, pulled.pushed_updated) == (0, 0)  # a guest is no change of rooms
    with world.store.session() as s:
        event = s.get(Event, event_id)
        assert event is not None
        update_event(s, event, {"location": "Garden Room"})
    assert world.sync("rooms").pushed_updated == 1
    after = _event(world, "rooms")
    assert after["location"] == "Garden Room"
    assert sorted(a["email"] for a in after["attendees"]) == [GARDEN, GUEST]
    again = world.sync("rooms")
    assert (again.updated, again.pushed_updated) == (0, 0)
