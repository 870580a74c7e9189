"""Rooms on Microsoft 365 calendars (MSAL + httpx against the Graph emulator): a meeting made in
Outlook inviting room mailboxes (attendees of ``type: resource``) becomes a booking of those
rooms with the client from its organizer; a busy room declines and is not booked; a calendar
that sends rooms as resources invites the room mailbox (attendee + ``locations[]``) and the room
accepts; rooms are listed by ``/places/microsoft.graph.room``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from calbridge.domain.event import make_times
from calbridge.store.booked import booked_locations
from calbridge.store.events import ManualAssignment, create_event
from calbridge.store.models import Event
from calbridge.sync.assistant import AssistantChange, apply_assistant
from calbridge.sync.calendars import find_calendar, link_event

World = Any  # conftest.GraphWorld
BALLROOM, GARDEN = "ballroom@harbour.example", "garden-room@harbour.example"


def with_rooms(world: World) -> None:
    emulator = world.graph.emulator
    for address, name, capacity in ((BALLROOM, "Ballroom", 300), (GARDEN, "Garden Room", 60)):
        if address not in emulator.store.rooms:  # one emulator serves the whole session
            emulator.add_room(world.graph.tenant_id, address, name, capacity)


def resource(address: str) -> dict[str, Any]:
    return {"type": "resource", "emailAddress": {"address": address, "name": address}}


def rooms_of(world: World, name: str) -> list[tuple[str | None, str]]:
    with world.store.session() as s:
        event = s.scalars(select(Event).where(Event.name == name)).one()
        return [(bl.location_id, bl.match) for bl in booked_locations(s, event.id)]


def test_outlook_meeting_inviting_rooms_books_them_and_a_busy_room_declines(
    world: World,
) -> None:
    with_rooms(world)
    world.add_calendar("front")
    world.create(
        "front", "Gala", "2027-04-12T09:00:00", "2027-04-12T12:00:00",
        organizer="ann.lee@acme.example", attendees=[resource(BALLROOM), resource(GARDEN)],
    )  # fmt: skip
    world.create(
        "front", "Clash", "2027-04-12T11:00:00", "2027-04-12T13:00:00",
        organizer="ann.lee@acme.example", attendees=[resource(BALLROOM)],
    )  # fmt: skip
    answers = {
        e["subject"]: [a["status"]["response"] for a in e["attendees"]]
        for e in world.events("front")
    }
    assert answers == {"Gala": ["accepted", "accepted"], "Clash": ["declined"]}
    report = world.sync("front")
    assert report.ok, report.error
    assert rooms_of(world, "Gala") == [("loc-ballroom", "resource"), ("loc-garden", "resource")]
    assert rooms_of(world, "Clash") == [(None, "none")]
    with world.store.session() as s:
        gala = s.scalars(select(Event).where(Event.name == "Gala")).one()
        assert (gala.client_id, gala.client_contact_id) == ("co-acme", "ct-ann")


def test_a_calendar_sending_rooms_invites_the_room_mailbox(world: World) -> None:
    with_rooms(world)
    world.add_calendar("rooms")
    with world.store.session() as s:
        calendar = find_calendar(s, "rooms")
        apply_assistant(s, calendar, AssistantChange(rooms_as_resources=True))
        times = make_times("2027-04-13T09:00", "2027-04-13T10:00", all_day=False, timezone="UTC")
        event = create_event(
            s,
            name="Launch",
            times=times,
            location="Garden Room",
            manual=ManualAssignment("co-acme", None, "u-tom", "u-tom"),
        )
        link_event(s, event, calendar)
    assert world.sync("rooms").pushed_created == 1
    (written,) = world.events("rooms")
    assert written["location"]["displayName"] == "Garden Room"
    assert [(a["type"], a["emailAddress"]["address"], a["status"]["response"])
            for a in written["attendees"]] == [("resource", GARDEN, "accepted")]  # fmt: skip
    assert written["locations"][0]["locationEmailAddress"] == GARDEN
    again = world.sync("rooms")
    assert (again.created, again.updated, again.pushed_updated) == (0, 0, 0)


def test_rooms_are_listed_as_places(world: World) -> None:
    with_rooms(world)
    listed = world.server().get("/places/microsoft.graph.room").json()["value"]
    found = {(p["emailAddress"], p["displayName"], p["capacity"]) for p in listed}
    assert {(BALLROOM, "Ballroom", 300), (GARDEN, "Garden Room", 60)} <= found
