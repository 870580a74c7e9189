"""Which room an arriving event is in (domain/rooms.py), without a database: the order of the
rules, declined rooms, names and aliases compared case- and space-insensitively."""

from __future__ import annotations

from calbridge.domain.rooms import Room, RoomAttendee, match_rooms, room_key

BALLROOM, GARDEN = Room("loc-ballroom", "Ballroom"), Room("loc-garden", "Garden Room")


ADDRESSES = {"ballroom@venue.example": BALLROOM, "garden@venue.example": GARDEN}
NAMES = {"ballroom": BALLROOM, "grand ballroom": BALLROOM, "garden room": GARDEN}


NOT_ROOMS = {"zoom", "teams meeting"}


class Rooms:
    def __init__(self, empty: bool = False) -> None:
        self.empty = empty

    def by_address(self, address: str) -> Room | None:
        return None if self.empty else ADDRESSES.get(address)

    def by_id(self, location_id: str) -> Room | None:
        return next((r for r in (BALLROOM, GARDEN) if r.id == location_id), None)

    def by_name(self, key: str) -> Room | None:
        return None if self.empty else NAMES.get(key)

    def has_rooms(self) -> bool:
        return not self.empty

    def is_not_room(self, key: str) -> bool:
        return key in NOT_ROOMS


def test_room_names_compare_case_and_space_insensitively() -> None:
    assert room_key("  Grand \t BALLROOM ") == room_key("grand ballroom") == "grand ballroom"


def test_a_resource_attendee_wins_over_the_calendar_room_and_the_text() -> None:
    decision = match_rooms(
        [RoomAttendee("Garden@venue.example ")], "loc-ballroom", "Ballroom", Rooms()
    )
    assert [(c.room, c.match) for c in decision.choices] == [(GARDEN, "resource")]
    assert decision.trace[0][0] == "Room resource among the attendees"


def test_two_invited_rooms_are_two_booked_locations() -> None:
    attendees = [RoomAttendee("ballroom@venue.example"), RoomAttendee("garden@venue.example")]
    decision = match_rooms(attendees, None, None, Rooms())
    assert [c.room for c in decision.choices] == [BALLROOM, GARDEN]


def test_a_declined_room_is_not_booked_even_by_its_name_in_the_text() -> None:
    decision = match_rooms(
        [RoomAttendee("ballroom@venue.example", response="declined")], None, "Ballroom", Rooms()
    )
    assert [(c.room, c.match) for c in decision.choices] == [(None, "none")]
    assert decision.flagged
    assert any("declined" in outcome for _, outcome in decision.trace)


def test_the_calendars_own_room_comes_before_the_text() -> None:
    decision = match_rooms([], "loc-garden", "Ballroom", Rooms())
    assert [(c.room, c.match) for c in decision.choices] == [(GARDEN, "calendar_room")]


def test_location_text_matches_an_alias() -> None:
    decision = match_rooms([], None, " GRAND  ballroom", Rooms())
    assert [(c.room, c.match, c.text) for c in decision.choices] == [
        (BALLROOM, "text", " GRAND  ballroom")
    ]


def test_no_room_is_flagged_only_when_the_venue_has_rooms() -> None:
    assert match_rooms([], None, "Terrace", Rooms()).flagged
    quiet = match_rooms([], None, "Terrace", Rooms(empty=True))
    assert not quiet.flagged and quiet.trace == ()
    assert [(c.room, c.text) for c in quiet.choices] == [(None, "Terrace")]


def test_a_text_marked_not_a_room_is_kept_unflagged() -> None:
    decision = match_rooms([], None, "  ZOOM ", Rooms())
    assert [(c.room, c.match, c.text) for c in decision.choices] == [(None, "not_room", "  ZOOM ")]
    assert not decision.flagged
    assert match_rooms([], None, "Client's office", Rooms()).flagged


def test_merging_room_attendees_keeps_guests_and_changes_only_managed_rooms() -> None:
    from calbridge.domain.rooms import merge_room_attendees

    existing = [
        {"email": "Ballroom@venue.example", "answer": "accepted"},
        {"email": "guest@else.example"},
        {"email": "projector@venue.example"},  # a resource we never sent
    ]
    merged = merge_room_attendees(
        existing,
        [RoomAttendee("garden@venue.example", "Garden")],
        ["ballroom@venue.example"],
        lambda a: a["email"],
        lambda r: {"email": r.address},
    )
    assert merged == [
        {"email": "guest@else.example"},
        {"email": "projector@venue.example"},
        {"email": "garden@venue.example"},
    ]
    kept = merge_room_attendees(
        existing, [RoomAttendee("ballroom@venue.example")], [], lambda a: a["email"], dict
    )
    assert kept == existing  # a room already there keeps its entry and its answer
