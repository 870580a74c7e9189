"""Venue rooms in the booking core: the directory's locations (validation, upsert, round trip),
booked locations with their own times, booking and unbooking, double bookings flagged in the
review queue, and bookings made before rooms existed keeping one free-text booked location."""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from calbridge.errors import BadEvent, NotFound, ValidationFailed
from calbridge.ops.bookings import (
    NewBooking,
    book_location,
    create_booking,
    review_reasons,
    unbook_location,
    update_booking,
)
from calbridge.ops.directory import import_directory
from calbridge.store.booked import PlaceRequest, booked_locations, double_bookings
from calbridge.store.db import Store
from calbridge.store.directory import export_directory
from calbridge.store.events import event_json, typed_event_times

DAY = date.today() + timedelta(days=60)


def at(hour: int, day: int = 0) -> str:
    return f"{DAY + timedelta(days=day)}T{hour:02d}:00:00"


@pytest.fixture
def venue(store: Store, example_directory_text: str) -> Store:
    with store.session() as s:
        import_directory(s, example_directory_text, actor="test")
    return store


def book(store: Store, name: str, *places: tuple[str, int, int] | str, **kw: Any) -> int:
    with store.session() as s:
        requests = []
        for place in places:
            if isinstance(place, str):
                requests.append(PlaceRequest(place))
            else:
                room, start, end = place
                times = typed_event_times(s, at(start), at(end), all_day=False, timezone=None)
                requests.append(PlaceRequest(room, times))
        new = NewBooking(
            name, kw.get("start", at(9)), kw.get("end", at(17)), places=tuple(requests)
        )
        event = create_booking(s, new, actor="test", booker="ann.lee@acme.example")
        return event.id


def shown(store: Store, event_id: int) -> dict[str, Any]:
    with store.session() as s:
        from calbridge.store.events import get_event

        return event_json(s, get_event(s, event_id))


def test_locations_import_and_export_round_trip(
    venue: Store, example_directory: dict[str, Any]
) -> None:
    with venue.session() as s:
        exported = export_directory(s)
    assert exported == example_directory
    assert exported["locations"][0]["resource_address"] == "ballroom@harbour.example"


def test_location_problems_are_listed_with_their_json_path_and_nothing_is_written(
    venue: Store,
) -> None:
    bad = {
        "locations": [
            {"id": "loc-a", "name": "Atrium", "resource_address": "not an address"},
            {"id": "loc-b", "name": "  grand   BALLROOM ", "capacity": 0},
            {"id": "loc-c", "name": "Cellar", "resource_address": "BALLROOM@harbour.example"},
            {"id": "loc-a", "name": "Annex"},
        ]
    }
    with venue.session() as s, pytest.raises(ValidationFailed) as info:
        import_directory(s, json.dumps(bad), actor="test")
    problems = info.value.problems
    assert any(p.startswith("$.locations[1].capacity") for p in problems)
    with venue.session() as s, pytest.raises(ValidationFailed) as info:
        import_directory(
            s, json.dumps({"locations": [bad["locations"][i] for i in (0, 2, 3)]}), actor="t"
        )
    problems = info.value.problems
    assert "$.locations[0].resource_address: malformed address 'not an address'" in problems
    assert (
        "$.locations[1].resource_address: 'BALLROOM@harbour.example' is already the address "
        "of location 'loc-ballroom'" in problems
    )
    assert "$.locations[2].id: duplicate id 'loc-a'" in problems
    with venue.session() as s:
        clash = {"locations": [{"id": "loc-b", "name": "  grand   BALLROOM "}]}
        with pytest.raises(ValidationFailed) as info:
            import_directory(s, json.dumps(clash), actor="t")
    assert info.value.problems == [
        "$.locations[0].name: '  grand   BALLROOM ' already names location 'loc-ballroom' "
        "(names and aliases compare case- and space-insensitively)"
    ]
    with venue.session() as s:
        assert s.execute(text("SELECT count(*) FROM locations")).scalar_one() == 3


def test_a_location_is_updated_in_place_by_id(
    venue: Store, example_directory: dict[str, Any]
) -> None:
    changed = copy.deepcopy(example_directory)
    changed["locations"][2]["capacity"] = 20
    changed["locations"][2]["active"] = False
    with venue.session() as s:
        report = import_directory(s, json.dumps(changed), actor="test")
    assert report.updated["locations"] == 1 and report.created["locations"] == 0
    with venue.session() as s:
        assert export_directory(s) == changed


def test_booking_has_one_booked_location_per_room_with_its_own_times(venue: Store) -> None:
    event_id = book(venue, "Gala", "loc-ballroom", ("garden", 8, 10), "Terrace")
    data = shown(venue, event_id)
    rooms = [(b["location"] and b["location"]["id"], b["text"]) for b in data["booked_locations"]]
    assert rooms == [("loc-ballroom", None), ("loc-garden", None), (None, "Terrace")]
    assert data["booked_locations"][0]["start"].startswith(at(9))
    assert data["booked_locations"][1]["start"].startswith(at(8))
    assert data["location"] == "Ballroom; Garden Room; Terrace"


def test_moving_a_booking_moves_the_locations_that_had_its_times(venue: Store) -> None:
    event_id = book(venue, "Gala", "loc-ballroom", ("loc-garden", 8, 10))
    with venue.session() as s:
        update_booking(s, event_id, {"start": at(10, 1), "end": at(18, 1)}, actor="t", typed=True)
    starts = [b["start"][:19] for b in shown(venue, event_id)["booked_locations"]]
    assert starts == [at(10, 1), at(8)]


def test_an_inactive_room_cannot_be_booked(venue: Store, example_directory: dict[str, Any]) -> None:
    changed = copy.deepcopy(example_directory)
    changed["locations"][2]["active"] = False
    with venue.session() as s:
        import_directory(s, json.dumps(changed), actor="test")
    with pytest.raises(BadEvent, match="location 'loc-board' \\(Boardroom\\) is not active"):
        book(venue, "Board", "loc-board")


def test_double_booking_of_a_room_is_flagged_in_the_review_queue(venue: Store) -> None:
    first = book(venue, "Gala", "loc-ballroom")
    second = book(venue, "Wedding", ("grand ballroom", 16, 20))
    elsewhere = book(venue, "Talk", ("loc-ballroom", 6, 7))
    with venue.session() as s:
        found = double_bookings(s)
        assert {(d.event_id, d.other_event_id) for d in found} == {(first, second), (second, first)}
        from calbridge.ops.bookings import BookingFilters, get_booking, list_bookings

        reasons = review_reasons(s, get_booking(s, second))
        assert any("double booking: room 'Ballroom'" in r and "Gala" in r for r in reasons)
        queue = {e.id for e in list_bookings(s, BookingFilters(needs_review=True)).items}
    assert {first, second} <= queue
    assert shown(venue, elsewhere)["double_bookings"] == []
    with venue.session() as s:
        unbook_location(s, second, actor="t", location="Ballroom")
    with venue.session() as s:
        assert double_bookings(s) == []
    assert shown(venue, second)["status"] == "cancelled"  # its only location: cancelled


def test_unbooking_one_location_keeps_the_booking(venue: Store) -> None:
    event_id = book(venue, "Gala", "loc-ballroom", "loc-garden")
    with venue.session() as s:
        unbook_location(s, event_id, actor="t", location="loc-garden")
    data = shown(venue, event_id)
    assert data["status"] == "confirmed" and data["location"] == "Ballroom"
    assert [b["status"] for b in data["booked_locations"]] == ["confirmed", "cancelled"]
    with venue.session() as s, pytest.raises(NotFound, match="holds no location 'Cellar'"):
        unbook_location(s, event_id, actor="t", location="Cellar")


def test_booking_one_more_location_later(venue: Store) -> None:
    event_id = book(venue, "Gala", "loc-ballroom")
    with venue.session() as s:
        times = typed_event_times(s, at(8, 1), at(12, 1), all_day=False, timezone=None)
        book_location(s, event_id, PlaceRequest("Garden", times), actor="t")
        assert len(booked_locations(s, event_id)) == 2
    assert shown(venue, event_id)["location"] == "Ballroom; Garden Room"


def test_a_booking_without_rooms_keeps_its_free_text_location(venue: Store) -> None:
    with venue.session() as s:
        new = NewBooking("Picnic", at(9), at(12), location="By the lake")
        event = create_booking(s, new, actor="t", booker="ann.lee@acme.example")
        event_id = event.id
    data = shown(venue, event_id)
    assert data["location"] == "By the lake"
    assert [(b["location"], b["text"]) for b in data["booked_locations"]] == [(None, "By the lake")]
    with venue.session() as s:
        update_booking(s, event_id, {"location": "Boardroom"}, actor="t")
    data = shown(venue, event_id)
    assert data["booked_locations"][0]["location"] == {"id": "loc-board", "name": "Boardroom"}
    assert data["location"] == "Boardroom"


def test_bookings_made_before_rooms_get_one_free_text_booked_location(db_url: str) -> None:
    """Migration 0009: an existing booking (and its calendar link) keeps working unchanged."""
    from alembic import command

    from calbridge.store import db

    engine = db.create_store_engine(db_url)
    config = db._alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0008_push")
        connection.execute(
            text(
                'INSERT INTO events (name, start, "end", all_day, timezone, start_utc, end_utc, '
                "location, status, ambiguous, created_at, updated_at, change_seq) VALUES "
                "('Old', '2027-03-05T09:00:00', '2027-03-05T10:00:00', false, 'Europe/Berlin', "
                "'2027-03-05 08:00:00', '2027-03-05 09:00:00', 'Room 4', 'confirmed', false, "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)"
            )
        )
    engine.dispose()
    store = db.open_store(db_url)
    try:
        with store.session() as s:
            (bl,) = booked_locations(s, 1)
            assert (bl.location_id, bl.location_text, bl.status) == (None, "Room 4", "confirmed")
            assert (bl.start, bl.end, bl.timezone) == (
                "2027-03-05T09:00:00",
                "2027-03-05T10:00:00",
                "Europe/Berlin",
            )
    finally:
        store.dispose()
