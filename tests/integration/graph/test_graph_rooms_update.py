"""Rooms on an existing Microsoft 365 event (MSAL + httpx against the Graph emulator): a room
mailbox added in Outlook re-matches the booking's booked locations; a room change pushed from
the booking changes only the room attendees and ``locations`` we manage — a guest added in
Outlook stays."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from test_graph_rooms import BALLROOM, GARDEN, resource, rooms_of, with_rooms

from calbridge.domain.event import make_times
from calbridge.store.events import ManualAssignment, create_event, update_event
from calbridge.store.models import Event
from calbridge.sync.assistant import AssistantChange, apply_assistant
from calbridge.sync.calendars import find_calendar, link_event

World = Any  # conftest.GraphWorld
GUEST = {"type": "required", "emailAddress": {"address": "guest@elsewhere.example", "name": "G"}}


def _patch(world: World, calendar: str, event_id: str, body: dict[str, Any]) -> None:
    path = f"/users/{world.mailbox}/calendars/{world.calendars[calendar]}/events/{event_id}"
    response = world.server().patch(path, json=body)
    assert response.status_code == 200, response.text


def test_a_room_mailbox_added_in_outlook_is_booked(world: World) -> None:
    with_rooms(world)
    world.add_calendar("front")
    world.create(
        "front", "Retreat", "2027-05-03T09:00:00", "2027-05-03T12:00:00",
        organizer="ann.lee@acme.example", attendees=[resource(BALLROOM)],
    )  # fmt: skip
    world.sync("front")
    assert rooms_of(world, "Retreat") == [("loc-ballroom", "resource")]
    (event,) = world.events("front")
    _patch(world, "front", event["id"], {"attendees": [resource(BALLROOM), resource(GARDEN)]})
    assert world.sync("front").updated == 1
    assert rooms_of(world, "Retreat") == [("loc-ballroom", "resource"), ("loc-garden", "resource")]


def test_a_room_change_from_the_booking_keeps_a_guest_added_in_outlook(world: World) -> None:
    with_rooms(world)
    world.add_calendar("rooms")
    with world.store.session() as s:
        calendar = find_calendar(s, "rooms")
        apply_assistant(s, calendar, AssistantChange(rooms_as_resources=True))
        times = make_times("2027-05-04T09:00", "2027-05-04T10:00", all_day=False, timezone="UTC")
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
    (written,) = world.events("rooms")
    _patch(world, "rooms", written["id"], {"attendees": [*written["attendees"], GUEST]})
    pulled = world.sync("rooms")
    assert (pulled.updated, pulled.pushed_updated) == (0, 0)
    with world.store.session() as s:
        booking = s.get(Event, event_id)
        assert booking is not None
        update_event(s, booking, {"location": "Garden Room"})
    assert world.sync("rooms").pushed_updated == 1
    (after,) = world.events("rooms")
    assert sorted(a["emailAddress"]["address"] for a in after["attendees"]) == [
        GARDEN,
        "guest@elsewhere.example",
    ]
    assert [p["locationEmailAddress"] for p in after["locations"]] == [GARDEN]
    with world.store.session() as s:
        assert s.scalars(select(Event.location).where(Event.id == event_id)).one() == "Garden Room"
