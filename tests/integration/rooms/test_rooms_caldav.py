"""Rooms both ways with a real CalDAV server (Radicale): a meeting that invites a room
(``ATTENDEE;CUTYPE=ROOM``) becomes a booking of that room; two rooms, two booked locations; a
declined room is not booked; the location text matches names and aliases; a room's own
calendar implies its room; moving / deleting one appointment moves / cancels that booked
location only; export modes (locations, days, event), filters and title templates on
publish-only calendars; rooms written as resources."""

from __future__ import annotations

from typing import Any

from room_world import RoomWorld
from sqlalchemy import select

from calbridge.domain.event import make_times
from calbridge.ops.bookings import book_location, review_reasons
from calbridge.store.booked import PlaceRequest, booked_locations
from calbridge.store.events import ManualAssignment, create_event, update_event
from calbridge.store.models import Event
from calbridge.sync.assistant import AssistantChange
from calbridge.sync.calendars import link_event

ORGANIZER = "ann.lee@acme.example"  # a contact of Acme in the example directory


def meeting(
    uid: str,
    *rooms: tuple[str, str],
    location: str | None = None,
    start: str = "20270305T090000Z",
    end: str = "20270305T100000Z",
) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//test//rooms//EN",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20270101T000000Z",
        f"DTSTART:{start}",
        f"DTEND:{end}",
        "SUMMARY:Board meeting",
        f"ORGANIZER:mailto:{ORGANIZER}",
    ]
    if location is not None:
        lines.append(f"LOCATION:{location}")
    for address, answer in rooms:
        lines.append(f"ATTENDEE;CUTYPE=ROOM;PARTSTAT={answer}:mailto:{address}")
    lines += ["END:VEVENT", "END:VCALENDAR", ""]
    return "\r\n".join(lines)


def only_booking(world: RoomWorld) -> tuple[Event, list[Any]]:
    with world.store.session() as s:
        (event,) = s.scalars(select(Event)).all()
        s.expunge(event)
        rows = booked_locations(s, event.id)
        for bl in rows:
            s.expunge(bl)
    return event, rows


def objects(world: RoomWorld, calendar: str) -> list[str]:
    client = world.radicale._client_for(world.urls[calendar])
    body = (
        '<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" '
        'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data/></D:prop>'
        '<C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>'
    )
    response = client.request("REPORT", world.urls[calendar], content=body, headers={"Depth": "1"})
    return [part.split("</")[0] for part in response.text.split("calendar-data>")[1::2]]


def test_a_meeting_inviting_a_room_books_that_room_for_the_organizers_client(
    world: RoomWorld,
) -> None:
    world.add_calendar("front")
    world.put("front", "m.ics", meeting("m1", ("BALLROOM@harbour.example", "ACCEPTED")))
    assert world.sync("front").created == 1
    event, rows = only_booking(world)
    assert event.client_id == "co-acme" and event.client_contact_id == "ct-ann"
    assert [(bl.location_id, bl.match) for bl in rows] == [("loc-ballroom", "resource")]
    steps = [(t["step"], t["rule"]) for t in event.trace or []]
    assert ("room", "Room resource among the attendees") in steps


def test_two_rooms_in_one_meeting_are_two_booked_locations_on_one_appointment(
    world: RoomWorld,
) -> None:
    world.add_calendar("front")
    rooms = (("ballroom@harbour.example", "ACCEPTED"), ("garden-room@harbour.example", "ACCEPTED"))
    world.put("front", "m.ics", meeting("m2", *rooms))
    world.sync("front")
    _, rows = only_booking(world)
    assert [bl.location_id for bl in rows] == ["loc-ballroom", "loc-garden"]
    again = world.sync("front")
    assert (again.pushed_created, again.pushed_updated) == (0, 0)
    assert len(objects(world, "front")) == 1


def test_a_declined_room_is_not_booked(world: RoomWorld) -> None:
    world.add_calendar("front")
    world.put(
        "front",
        "m.ics",
        meeting("m3", ("ballroom@harbour.example", "DECLINED"), location="Ballroom"),
    )
    world.sync("front")
    event, rows = only_booking(world)
    assert [(bl.location_id, bl.match) for bl in rows] == [(None, "none")]
    with world.store.session() as s:
        reasons = review_reasons(s, s.get(Event, event.id))  # type: ignore[arg-type]
    assert any(r.startswith("no room") for r in reasons)
    assert any("declined" in t["outcome"] for t in event.trace or [])


def test_location_text_matches_names_and_aliases_and_the_rooms_own_calendar(
    world: RoomWorld,
) -> None:
    world.add_calendar("front")
    world.put("front", "a.ics", meeting("a", location="  the GARDEN "))
    world.put("front", "b.ics", meeting("b", location="garden"))
    world.sync("front")
    world.add_calendar("board-room", AssistantChange(room="loc-board"))
    world.put("board-room", "c.ics", meeting("c", location="somewhere"))
    world.sync("board-room")
    with world.store.session() as s:
        from calbridge.store.models import BookedLocation

        found = {
            (bl.location_text, bl.location_id, bl.match) for bl in s.scalars(select(BookedLocation))
        }
    assert found == {
        ("  the GARDEN ", None, "none"),  # "the garden" is neither a name nor an alias
        ("garden", "loc-garden", "text"),
        (None, "loc-board", "calendar_room"),
    }


def _three_locations(world: RoomWorld) -> int:
    """A booking with three booked locations over two days: Ballroom and Garden on day one
    (different hours), the Boardroom on day two."""
    with world.store.session() as s:
        times = make_times("2027-03-05T09:00", "2027-03-05T12:00", all_day=False, timezone="UTC")
        event = create_event(
            s,
            name="Conference",
            times=times,
            location="loc-ballroom",
            manual=ManualAssignment("co-acme", None, "u-tom", "u-tom"),
        )
        for room, start, end in (
            ("loc-garden", "2027-03-05T13:00", "2027-03-05T17:00"),
            ("loc-board", "2027-03-06T09:00", "2027-03-06T11:00"),
        ):
            own = make_times(start, end, all_day=False, timezone="UTC")
            book_location(s, event.id, PlaceRequest(room, own), actor="test")
        return event.id


def test_export_modes_locations_days_and_event(world: RoomWorld) -> None:
    event_id = _three_locations(world)
    world.add_calendar("rooms")
    world.add_calendar(
        "days",
        AssistantChange(export_mode="days", title_template="{event_name} – {client}"),
        direction="push",
    )
    world.add_calendar("whole", AssistantChange(export_mode="event"), direction="push")
    with world.store.session() as s:
        event = s.get(Event, event_id)
        assert event is not None
        from calbridge.sync.calendars import find_calendar

        for name in ("rooms", "days", "whole"):
            link_event(s, event, find_calendar(s, name))
    assert world.sync("rooms").pushed_created == 3
    assert world.sync("days").pushed_created == 2
    assert world.sync("whole").pushed_created == 1
    days = objects(world, "days")
    assert all("SUMMARY:Conference – Acme Corp" in o for o in days)
    assert any("DTSTART:20270305T090000Z" in o and "DTEND:20270305T170000Z" in o for o in days)
    whole = objects(world, "whole")[0]
    assert "DTSTART:20270305T090000Z" in whole and "DTEND:20270306T110000Z" in whole
    rooms = objects(world, "rooms")
    assert sorted(o.split("LOCATION:")[1].split("\r\n")[0] for o in rooms) == [
        "Ballroom",
        "Boardroom",
        "Garden Room",
    ]
    for name in ("rooms", "days", "whole"):
        again = world.sync(name)
        assert (again.pushed_created, again.pushed_updated, again.pushed_deleted) == (0, 0, 0)


def test_moving_or_deleting_one_appointment_changes_that_booked_location_only(
    world: RoomWorld,
) -> None:
    event_id = _three_locations(world)
    world.add_calendar("rooms")
    with world.store.session() as s:
        event = s.get(Event, event_id)
        assert event is not None
        from calbridge.sync.calendars import find_calendar

        link_event(s, event, find_calendar(s, "rooms"))
    world.sync("rooms")
    client = world.radicale._client_for(world.urls["rooms"])
    listing = {o.split("LOCATION:")[1].split("\r\n")[0]: o for o in objects(world, "rooms")}
    garden = listing["Garden Room"]
    uid = garden.split("UID:")[1].split("\r\n")[0]
    moved = garden.replace("DTSTART:20270305T130000Z", "DTSTART:20270305T140000Z")
    href = next(h for h in _hrefs(world, "rooms") if uid in (world.radicale.get_ics(h) or ""))
    world.radicale.put_ics(href, moved)
    world.sync("rooms")
    with world.store.session() as s:
        rows = {bl.location_id: bl for bl in booked_locations(s, event_id)}
        assert rows["loc-garden"].start == "2027-03-05T14:00:00"
        assert rows["loc-ballroom"].start == "2027-03-05T09:00:00"
    board = listing["Boardroom"]
    uid = board.split("UID:")[1].split("\r\n")[0]
    href = next(h for h in _hrefs(world, "rooms") if uid in (world.radicale.get_ics(h) or ""))
    world.radicale.delete(href)
    world.sync("rooms")
    with world.store.session() as s:
        event = s.get(Event, event_id)
        assert event is not None and event.status == "confirmed"
        statuses = {bl.location_id: bl.status for bl in booked_locations(s, event_id)}
    assert statuses == {
        "loc-ballroom": "confirmed",
        "loc-garden": "confirmed",
        "loc-board": "cancelled",
    }
    assert client is not None


def _hrefs(world: RoomWorld, calendar: str) -> list[str]:
    import re

    client = world.radicale._client_for(world.urls[calendar])
    response = client.request("PROPFIND", world.urls[calendar], headers={"Depth": "1"})
    base = world.urls[calendar].split("/", 3)[:3]
    paths = re.findall(r"<(?:\w+:)?href>([^<]+\.ics)</", response.text)
    return ["/".join(base) + p for p in paths]


def test_filters_carry_matching_bookings_and_remove_those_that_stop_matching(
    world: RoomWorld,
) -> None:
    with world.store.session() as s:
        times = make_times("2027-03-08T09:00", "2027-03-08T10:00", all_day=False, timezone="UTC")
        manual = ManualAssignment("co-acme", None, "u-tom", "u-tom")
        ballroom = create_event(
            s, name="In the ballroom", times=times, location="Ballroom", manual=manual
        )
        create_event(s, name="In the garden", times=times, location="Garden", manual=manual)
        ballroom_id = ballroom.id
    world.add_calendar(
        "ballroom-feed",
        AssistantChange(
            filters={"locations": ["loc-ballroom"]}, title_template="{location}: {event_name}"
        ),
        direction="push",
    )
    first = world.sync("ballroom-feed")
    assert first.pushed_created == 1
    (only,) = objects(world, "ballroom-feed")
    assert "SUMMARY:Ballroom: In the ballroom" in only
    with world.store.session() as s:
        event = s.get(Event, ballroom_id)
        assert event is not None
        update_event(s, event, {"location": "Boardroom"})
    report = world.sync("ballroom-feed")
    assert report.removed == 1 and report.pushed_deleted == 1
    assert any("no longer matches the calendar's filters" in n for n in report.notes)
    assert objects(world, "ballroom-feed") == []
    with world.store.session() as s:
        event = s.get(Event, ballroom_id)
        assert event is not None and event.status == "confirmed"  # removed, not cancelled
        update_event(s, event, {"location": "Ballroom"})
    back = world.sync("ballroom-feed")
    assert back.pushed_created == 1 and len(objects(world, "ballroom-feed")) == 1


def test_rooms_are_written_as_resource_attendees(world: RoomWorld) -> None:
    world.add_calendar("rooms", AssistantChange(rooms_as_resources=True))
    with world.store.session() as s:
        times = make_times("2027-03-09T09:00", "2027-03-09T10:00", all_day=False, timezone="UTC")
        event = create_event(
            s,
            name="Launch",
            times=times,
            location="Ballroom",
            manual=ManualAssignment("co-acme", None, "u-tom", "u-tom"),
        )
        from calbridge.sync.calendars import find_calendar

        link_event(s, event, find_calendar(s, "rooms"))
    world.sync("rooms")
    (written,) = objects(world, "rooms")
    unfolded = written.replace("\r\n ", "")
    assert "CUTYPE=ROOM" in unfolded and "mailto:ballroom@harbour.example" in unfolded
    again = world.sync("rooms")
    assert (again.created, again.pushed_updated) == (0, 0)


def test_a_double_booking_from_two_calendars_is_flagged(world: RoomWorld) -> None:
    world.add_calendar("front")
    world.add_calendar("back")
    world.put("front", "a.ics", meeting("d1", ("ballroom@harbour.example", "ACCEPTED")))
    world.put("back", "b.ics", meeting("d2", location="Grand Ballroom"))
    world.sync("front")
    world.sync("back")
    with world.store.session() as s:
        events = list(s.scalars(select(Event).order_by(Event.id)))
        reasons = [review_reasons(s, e) for e in events]
    assert all(any(r.startswith("double booking: room 'Ballroom'") for r in rs) for rs in reasons)
