"""Rooms on Google calendars (real google-api-python-client against the emulator): a meeting
inviting Workspace room resources (``resource: true``) becomes a booking of those rooms, the
client from its creator; a room busy at that time declines and is not booked; a calendar that
sends rooms as resources invites the room and the room accepts; the rooms are listed as the
Admin SDK lists them."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
from google.auth.transport.requests import Request
from google_world import GoogleWorld, timed
from sqlalchemy import select

from calbridge.domain.event import make_times
from calbridge.store.booked import booked_locations
from calbridge.store.events import ManualAssignment, create_event
from calbridge.store.models import Event
from calbridge.sync.assistant import AssistantChange, apply_assistant
from calbridge.sync.calendars import find_calendar, link_event

BALLROOM, GARDEN = "ballroom@harbour.example", "garden-room@harbour.example"


def rooms_of(world: GoogleWorld, name: str) -> list[tuple[str | None, str]]:
    with world.store.session() as s:
        event = s.scalars(select(Event).where(Event.name == name)).one()
        return [(bl.location_id, bl.match) for bl in booked_locations(s, event.id)]


def invite(world: GoogleWorld, calendar: str, summary: str, start: datetime, *rooms: str) -> dict:
    body = {
        "summary": summary,
        **timed(start, start + timedelta(hours=2)),
        "attendees": [{"email": room, "resource": True} for room in rooms],
    }
    created: dict = (
        world.person(calendar)
        .events()
        .insert(calendarId=world.calendars[calendar], body=body)
        .execute()
    )
    return created


def test_inviting_rooms_books_them_and_a_busy_room_declines(world: GoogleWorld) -> None:
    world.gcal.add_room(BALLROOM, "Ballroom", 300)
    world.gcal.add_room(GARDEN, "Garden Room", 60)
    world.add_calendar("front", user="ann.lee@acme.example")
    start = datetime(2027, 3, 10, 9)
    first = invite(world, "front", "Gala", start, BALLROOM, GARDEN)
    assert [a["responseStatus"] for a in first["attendees"]] == ["accepted", "accepted"]
    second = invite(world, "front", "Clash", start + timedelta(hours=1), BALLROOM)
    assert second["attendees"][0]["responseStatus"] == "declined"  # the room is busy
    report = world.sync("front")
    assert report.ok, report.error
    assert rooms_of(world, "Gala") == [("loc-ballroom", "resource"), ("loc-garden", "resource")]
    assert rooms_of(world, "Clash") == [(None, "none")]  # declined: not booked, flagged
    with world.store.session() as s:
        gala = s.scalars(select(Event).where(Event.name == "Gala")).one()
        assert (gala.client_id, gala.client_contact_id) == ("co-acme", "ct-ann")
    again = world.sync("front")
    assert (again.created, again.pushed_created, again.pushed_updated) == (0, 0, 0)


def test_a_calendar_sending_rooms_as_resources_invites_the_room(world: GoogleWorld) -> None:
    world.gcal.add_room(BALLROOM, "Ballroom", 300)
    world.add_calendar("rooms")
    with world.store.session() as s:
        calendar = find_calendar(s, "rooms")
        apply_assistant(s, calendar, AssistantChange(rooms_as_resources=True))
        times = make_times("2027-03-11T09:00", "2027-03-11T10:00", all_day=False, timezone="UTC")
        event = create_event(
            s,
            name="Launch",
            times=times,
            location="Ballroom",
            manual=ManualAssignment("co-acme", None, "u-tom", "u-tom"),
        )
        link_event(s, event, calendar)
    assert world.sync("rooms").pushed_created == 1
    items = (
        world.person("rooms").events().list(calendarId=world.calendars["rooms"]).execute()["items"]
    )
    (written,) = items
    assert written["location"] == "Ballroom"
    assert written["attendees"] == [
        {
            "email": BALLROOM,
            "resource": True,
            "displayName": "Ballroom",
            "responseStatus": "accepted",
        }
    ]
    again = world.sync("rooms")
    assert (again.created, again.updated, again.pushed_updated) == (0, 0, 0)


def test_rooms_are_listed_like_the_admin_sdk_lists_them(world: GoogleWorld) -> None:
    world.gcal.add_room(BALLROOM, "Ballroom", 300)
    world.gcal.add_user("admin@harbour.example")
    credentials = world.gcal.service_account_credentials(subject="admin@harbour.example")
    credentials.refresh(Request())
    url = f"{world.gcal.base_url}/admin/directory/v1/customer/my_customer/resources/calendars"
    listed = httpx.get(url, headers={"Authorization": f"Bearer {credentials.token}"}).json()
    assert [(r["resourceEmail"], r["resourceName"], r["capacity"]) for r in listed["items"]] == [
        (BALLROOM, "Ballroom", 300)
    ]
    assert httpx.get(url).status_code == 401
