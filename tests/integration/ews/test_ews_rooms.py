"""Rooms on Exchange over EWS (real exchangelib against the emulator, whose room mailboxes
accept meetings and decline when busy): a meeting booked by inviting a room becomes a booking of
that room with the client from its organizer (a room in ``Resources`` or typed among the
required attendees); two rooms, two booked locations; a declined room is not booked; three
booked locations over two days are 3 / 2 / 1 items on locations / days / event calendars;
filters carry and remove bookings; a double booking is flagged; a calendar sending rooms as
resources invites the room mailbox, and a room change keeps a guest added in Outlook."""

from __future__ import annotations

import logging
import warnings
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from calbridge.domain.event import make_times
from calbridge.domain.remote import Window
from calbridge.ops.bookings import book_location, review_reasons
from calbridge.store.booked import PlaceRequest, booked_locations
from calbridge.store.events import ManualAssignment, create_event, update_event
from calbridge.store.models import Event
from calbridge.sync.assistant import AssistantChange, apply_assistant
from calbridge.sync.calendars import find_calendar, link_event
from calbridge_emulators.ews.rooms import Attendee
from calbridge_emulators.ews.store import Organizer

World = Any  # conftest.EwsWorld
BALLROOM, GARDEN = "ballroom@harbour.example", "garden-room@harbour.example"
WINDOW = Window(datetime(2027, 1, 1), datetime(2028, 1, 1))
ANN = Organizer("Ann Lee", "ann.lee@acme.example")  # a contact of Acme


def rooms(world: World) -> None:
    world.org.add_room(BALLROOM, "Ballroom", 300)
    world.org.add_room(GARDEN, "Garden Room", 60)


def places(world: World, name: str) -> list[tuple[str | None, str]]:
    with world.store.session() as s:
        event = s.scalars(select(Event).where(Event.name == name)).one()
        return [(bl.location_id, bl.match) for bl in booked_locations(s, event.id)]


def mailbox(world: World, smtp: str) -> str:
    world.org.add_mailbox(smtp)
    world.org.accounts["svc-calbridge"].impersonates.add(smtp)
    return smtp


def test_outlook_meetings_inviting_rooms_book_them_and_a_busy_room_declines(
    world: World,
) -> None:
    rooms(world)
    world.add_calendar("front")
    world.create(
        "Gala", "2027-06-01T09:00:00", "2027-06-01T12:00:00", organizer=ANN,
        resources=[Attendee(BALLROOM, "Ballroom"), Attendee(GARDEN, "Garden Room")],
    )  # fmt: skip
    world.create(
        "Typed", "2027-06-02T09:00:00", "2027-06-02T10:00:00", organizer=ANN,
        required=[Attendee("guest@elsewhere.example"), Attendee(BALLROOM, "Ballroom")],
    )  # fmt: skip
    world.create(
        "Clash", "2027-06-01T11:00:00", "2027-06-01T13:00:00", organizer=ANN,
        resources=[Attendee(BALLROOM, "Ballroom")], location="Ballroom",
    )  # fmt: skip
    assert world.item("Clash").resources[0].response == "Decline"
    assert world.item("Gala").resources[0].last_response is not None
    report = world.sync("front")
    assert report.ok, report.error
    assert places(world, "Gala") == [("loc-ballroom", "resource"), ("loc-garden", "resource")]
    assert places(world, "Typed") == [("loc-ballroom", "resource")]
    assert places(world, "Clash") == [(None, "none")]  # declined: not booked, flagged
    gala = world.booking("Gala")
    assert (gala.client_id, gala.client_contact_id) == ("co-acme", "ct-ann")
    again = world.sync("front")
    assert (again.created, again.updated, again.pushed_created, again.pushed_updated) == (0,) * 4


def test_a_room_added_in_outlook_rematches_and_a_double_booking_is_flagged(world: World) -> None:
    rooms(world)
    world.add_calendar("front")
    item_id = world.create(
        "Retreat", "2027-06-03T09:00:00", "2027-06-03T12:00:00", organizer=ANN,
        resources=[Attendee(GARDEN, "Garden Room")],
    )  # fmt: skip
    world.sync("front")
    with world.store.session() as s:  # the Ballroom booked in the booking system meanwhile
        times = make_times("2027-06-03T10:00", "2027-06-03T11:00", all_day=False, timezone="UTC")
        create_event(
            s, name="Board", times=times, location="loc-ballroom",
            manual=ManualAssignment("co-acme", None, "u-tom", "u-tom"),
        )  # fmt: skip
    world.org.external_update(
        world.mailbox,
        item_id,
        resources=[Attendee(GARDEN, "Garden Room", "Accept"), Attendee(BALLROOM, "Ballroom")],
    )
    assert world.sync("front").updated == 1
    assert places(world, "Retreat") == [("loc-garden", "resource"), ("loc-ballroom", "resource")]
    with world.store.session() as s:
        retreat = s.scalars(select(Event).where(Event.name == "Retreat")).one()
        reasons = review_reasons(s, retreat)
    assert any(r.startswith("double booking: room 'Ballroom'") for r in reasons)


def _three_locations(world: World) -> int:
    with world.store.session() as s:
        times = make_times("2027-06-05T09:00", "2027-06-05T12:00", all_day=False, timezone="UTC")
        event = create_event(
            s, name="Conference", times=times, location="loc-ballroom",
            manual=ManualAssignment("co-acme", None, "u-tom", "u-tom"),
        )  # fmt: skip
        for room, start, end in (
            ("loc-garden", "2027-06-05T13:00", "2027-06-05T17:00"),
            ("loc-board", "2027-06-06T09:00", "2027-06-06T11:00"),
        ):
            own = make_times(start, end, all_day=False, timezone="UTC")
            book_location(s, event.id, PlaceRequest(room, own), actor="test")
        return event.id


def test_export_modes_make_three_two_and_one_items(world: World) -> None:
    event_id = _three_locations(world)
    world.add_calendar("rooms")
    world.add_calendar("days", mailbox=mailbox(world, "days@harbour.example"), direction="push")
    world.add_calendar("whole", mailbox=mailbox(world, "whole@harbour.example"), direction="push")
    with world.store.session() as s:
        apply_assistant(s, find_calendar(s, "days"), AssistantChange(export_mode="days"))
        apply_assistant(s, find_calendar(s, "whole"), AssistantChange(export_mode="event"))
        event = s.get(Event, event_id)
        assert event is not None
        for name in ("rooms", "days", "whole"):
            link_event(s, event, find_calendar(s, name))
    assert world.sync("rooms").pushed_created == 3
    assert world.sync("days").pushed_created == 2
    assert world.sync("whole").pushed_created == 1
    held = {
        box: sorted(
            (i.start.isoformat(), i.location) for i in world.org.mailbox(box).items.values()
        )
        for box in (world.mailbox, "days@harbour.example", "whole@harbour.example")
    }
    assert [loc for _, loc in held[world.mailbox]] == ["Ballroom", "Garden Room", "Boardroom"]
    assert len(held["days@harbour.example"]) == 2 and len(held["whole@harbour.example"]) == 1
    for name in ("rooms", "days", "whole"):
        again = world.sync(name)
        assert (again.pushed_created, again.pushed_updated, again.pushed_deleted) == (0, 0, 0)


def test_filters_carry_a_booking_and_remove_it_when_it_stops_matching(world: World) -> None:
    world.add_calendar("ballroom-feed", direction="push")
    with world.store.session() as s:
        calendar = find_calendar(s, "ballroom-feed")
        apply_assistant(s, calendar, AssistantChange(filters={"locations": ["loc-ballroom"]}))
        times = make_times("2027-06-08T09:00", "2027-06-08T10:00", all_day=False, timezone="UTC")
        manual = ManualAssignment("co-acme", None, "u-tom", "u-tom")
        create_event(s, name="In the ballroom", times=times, location="Ballroom", manual=manual)
        create_event(s, name="In the garden", times=times, location="Garden", manual=manual)
    assert world.sync("ballroom-feed").pushed_created == 1
    assert [i.subject for i in world.items()] == ["In the ballroom"]
    with world.store.session() as s:
        event = s.scalars(select(Event).where(Event.name == "In the ballroom")).one()
        update_event(s, event, {"location": "Boardroom"})
    report = world.sync("ballroom-feed")
    assert report.removed == 1 and world.items() == []
    assert world.booking("In the ballroom").status == "confirmed"


def test_rooms_sent_as_resources_and_a_guest_added_in_outlook_stays(world: World) -> None:
    rooms(world)
    world.add_calendar("rooms")
    with world.store.session() as s:
        calendar = find_calendar(s, "rooms")
        apply_assistant(s, calendar, AssistantChange(rooms_as_resources=True))
        times = make_times("2027-06-09T09:00", "2027-06-09T10:00", all_day=False, timezone="UTC")
        event = create_event(
            s, name="Launch", times=times, location="Ballroom",
            manual=ManualAssignment("co-acme", None, "u-tom", "u-tom"),
        )  # fmt: skip
        link_event(s, event, calendar)
        event_id = event.id
    assert world.sync("rooms").pushed_created == 1
    (item,) = world.items()
    assert [(a.address, a.response) for a in item.resources] == [(BALLROOM, "Accept")]
    assert item.location == "Ballroom"
    world.org.external_update(
        world.mailbox, item.id, required=[Attendee("guest@elsewhere.example", "Guest")]
    )
    pulled = world.sync("rooms")
    assert (pulled.updated, pulled.pushed_updated) == (0, 0)
    with world.store.session() as s:
        booking = s.get(Event, event_id)
        assert booking is not None
        update_event(s, booking, {"location": "Garden Room"})
    assert world.sync("rooms").pushed_updated == 1
    (item,) = world.items()
    assert [(a.address, a.response) for a in item.resources] == [(GARDEN, "Accept")]
    assert [a.address for a in item.required] == ["guest@elsewhere.example"]
    again = world.sync("rooms")
    assert (again.updated, again.pushed_updated) == (0, 0)


def test_exchangelib_parses_the_attendees_without_fallback(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Attendees as the emulator writes them (t:Attendee: Mailbox, ResponseType,
    LastResponseTime, in schema order) parse in exchangelib with no warning, values intact."""
    rooms(world)
    world.add_calendar("front")
    world.create(
        "Gala", "2027-06-10T09:00:00", "2027-06-10T12:00:00", organizer=ANN,
        required=[Attendee("guest@elsewhere.example", "Guest")],
        resources=[Attendee(BALLROOM, "Ballroom")],
    )  # fmt: skip
    caplog.set_level(logging.DEBUG, logger="exchangelib")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (page,) = list(world.provider("front").list_changes(None, WINDOW))
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    (item,) = page.items
    assert [(r.address, r.response, r.resource) for r in item.rooms] == [
        (BALLROOM, "accepted", True),
        ("guest@elsewhere.example", "needs-action", False),
    ]
