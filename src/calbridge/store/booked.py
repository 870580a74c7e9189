"""Booked locations: the rooms (or free-text places) a booking holds, each with its own times.

Contract:

* Every booking has at least one booked location; the first one (lowest id) is created with
  the booking and has the booking's times unless given others. A booking created before rooms
  existed has one, with its free-text location and no room (migration ``0013_locations``).
* ``Event.location`` is the summary of its confirmed booked locations (each one's text, or its
  room's name), so everything that reads a booking's one location keeps working.
* Changing a booking's times moves the booked locations that had the old times; the others keep
  their own. Cancelling the last confirmed booked location cancels the booking.
* **Double bookings**: two confirmed booked locations of confirmed bookings overlapping in one
  room are reported (:func:`double_bookings`) and put the booking in the review queue; they are
  never refused silently nor accepted silently.

Writes go through these functions so the booking's change counter moves (the calendars follow).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.elements import ColumnElement

from calbridge.domain.event import EventTimes
from calbridge.domain.rooms import room_key
from calbridge.domain.shown_times import times_json
from calbridge.errors import BadEvent, NotFound
from calbridge.store.models import BookedLocation, Event, Location


def bl_times(bl: BookedLocation) -> EventTimes:
    if bl.all_day:
        return EventTimes(date.fromisoformat(bl.start), date.fromisoformat(bl.end), True, None)
    return EventTimes(
        datetime.fromisoformat(bl.start), datetime.fromisoformat(bl.end), False, bl.timezone
    )


def set_bl_times(bl: BookedLocation, times: EventTimes) -> None:
    bl.start, bl.end = times.iso()
    bl.all_day, bl.timezone = times.all_day, times.timezone
    bl.start_utc, bl.end_utc = times.utc_range()


ROOMS_KEY = "calbridge.rooms"


def room_of(session: Session, location_id: str) -> Location | None:
    """A venue room by id, from the session's copy of the rooms: a venue has tens of rooms, so
    they are read once per session (one query) instead of once per booked location shown or
    pushed (the identity map forgets objects nobody holds). A room added in this session is
    read on its first miss."""
    rooms: dict[str, Location] | None = session.info.get(ROOMS_KEY)
    if rooms is None:
        rooms = {loc.id: loc for loc in session.scalars(select(Location))}
        session.info[ROOMS_KEY] = rooms
    found = rooms.get(location_id)
    if found is None:
        found = session.get(Location, location_id)
        if found is not None:
            rooms[location_id] = found
    return found


def booked_locations(session: Session, event_id: int) -> list[BookedLocation]:
    """A booking's booked locations, first one first."""
    return list(
        session.scalars(
            select(BookedLocation)
            .where(BookedLocation.event_id == event_id)
            .order_by(BookedLocation.position, BookedLocation.id)
        )
    )


def new_booked(
    event: Event,
    times: EventTimes,
    *,
    location_id: str | None,
    text: str | None,
    match: str = "given",
    position: int = 0,
) -> BookedLocation:
    bl = BookedLocation(
        event_id=event.id,
        location_id=location_id,
        location_text=text,
        status="cancelled" if event.status == "cancelled" else "confirmed",
        match=match,
        position=position,
    )
    set_bl_times(bl, times)
    return bl


def resolve_place(session: Session, value: str | None) -> tuple[str | None, str | None]:
    """What a person typed as ``--location``: a location id, or a room's name or alias
    (case- and space-insensitive) → (that room's id, None); anything else is free text."""
    if value is None or not value.strip():
        return None, value or None
    loc = session.get(Location, value.strip())
    if loc is not None:
        return loc.id, None
    from calbridge.store.locations import known_rooms

    found = known_rooms(session)[0].get(room_key(value))
    return (found, None) if found is not None else (None, value)


@dataclass(frozen=True)
class PlaceRequest:
    """A place a person books: a location id, a room's name or alias, or free text; with its
    own times (None: the booking's)."""

    value: str | None
    times: EventTimes | None = None


def book_place(
    session: Session, event: Event, place: PlaceRequest, *, position: int | None = None
) -> BookedLocation:
    """Add a booked location to ``event`` (the caller touches the booking)."""
    location_id, text = resolve_place(session, place.value)
    if location_id is not None:
        loc = session.get(Location, location_id)
        if loc is not None and not loc.active:
            raise BadEvent(
                f"location '{loc.id}' ({loc.name}) is not active; activate it in the directory "
                'file (`"active": true`) or book another room'
            )
    if position is None:
        position = max((bl.position for bl in booked_locations(session, event.id)), default=-1) + 1
    from calbridge.store.events import event_times

    times = place.times or event_times(event)
    if times.all_day != event.all_day:
        raise BadEvent(
            f"booking {event.id} is {'all-day' if event.all_day else 'timed'}; give its "
            "locations times of the same kind"
        )
    bl = new_booked(event, times, location_id=location_id, text=text, position=position)
    session.add(bl)
    session.flush()
    return bl


def place_name(session: Session, bl: BookedLocation) -> str | None:
    if bl.location_text:
        return bl.location_text
    if bl.location_id is not None:
        loc = room_of(session, bl.location_id)
        return loc.name if loc is not None else bl.location_id
    return None


def summary(session: Session, event: Event) -> str | None:
    """``Event.location``: the confirmed booked locations' places, in order, once each."""
    places: list[str] = []
    for bl in booked_locations(session, event.id):
        name = place_name(session, bl)
        if bl.status == "confirmed" and name and name not in places:
            places.append(name)
    return "; ".join(places) or None


def follow_event(
    session: Session,
    event: Event,
    old: EventTimes | None,
    new: EventTimes | None,
    location: tuple[bool, str | None] = (False, None),
    *,
    strict: bool = True,
) -> None:
    """Keep the booked locations in step with a change of the booking itself (``old`` →
    ``new`` times; ``location`` = (changed, new text)) made by a person or by a calendar.
    A new location for a booking holding several is refused (``strict``, a person) or applied
    to its first one (a calendar: the appointment of the first booked location)."""
    rows = booked_locations(session, event.id)
    if not rows:
        if event.id is not None:  # a booking stored without one (bulk-loaded)
            times = new or old or _times(event)
            session.add(new_booked(event, times, location_id=None, text=event.location))
        return
    if old is not None and new is not None and old != new:
        for bl in rows:
            if bl_times(bl) == old:
                set_bl_times(bl, new)
    changed, text = location
    if changed:
        live = [bl for bl in rows if bl.status == "confirmed"] or rows[:1]
        if len(live) > 1 and strict:
            raise BadEvent(
                f"booking {event.id} holds {len(live)} locations; change one with `calbridge "
                f"events book-location` / `events unbook-location` instead of --location"
            )
        live[0].location_id, live[0].location_text = resolve_place(session, text)
        live[0].match = "given"
    if event.status == "cancelled":
        for bl in rows:
            bl.status = "cancelled"
    elif all(bl.status == "cancelled" for bl in rows):  # a booking restored: its places too
        for bl in rows:
            bl.status = "confirmed"
    session.flush()
    event.location = summary(session, event)


def _times(event: Event) -> EventTimes:
    from calbridge.store.events import event_times

    return event_times(event)


@dataclass(frozen=True)
class DoubleBooking:
    """Two confirmed bookings of one room at the same time."""

    room_id: str
    room_name: str
    booked_location_id: int
    event_id: int
    other_booked_location_id: int
    other_event_id: int
    other_event_name: str

    def message(self) -> str:
        return (
            f"double booking: room '{self.room_name}' ({self.room_id}) is also booked by "
            f"booking {self.other_event_id} ({self.other_event_name[:100]}) at the same time; "
            f"move or unbook one (`calbridge events unbook-location {self.event_id} "
            f"--booked {self.booked_location_id}`)"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "room": {"id": self.room_id, "name": self.room_name},
            "event": self.event_id,
            "booked_location": self.booked_location_id,
            "other_event": {"id": self.other_event_id, "name": self.other_event_name},
            "other_booked_location": self.other_booked_location_id,
            "message": self.message(),
        }


def _overlap(a: Any, b: Any) -> ColumnElement[bool]:
    return and_(
        a.location_id == b.location_id,
        a.id != b.id,
        a.event_id != b.event_id,
        a.status == "confirmed",
        b.status == "confirmed",
        a.start_utc < b.end_utc,
        b.start_utc < a.end_utc,
    )


def double_bookings(
    session: Session, event_id: int | None = None, *, event_ids: list[int] | None = None
) -> list[DoubleBooking]:
    """Every double booking (of one booking, of a page of bookings, or of the whole venue)."""
    a, b = aliased(BookedLocation), aliased(BookedLocation)
    ea, eb = aliased(Event), aliased(Event)
    query = (
        select(a.location_id, Location.name, a.id, a.event_id, b.id, b.event_id, eb.name)
        .join(b, _overlap(a, b))
        .join(ea, ea.id == a.event_id)
        .join(eb, eb.id == b.event_id)
        .join(Location, Location.id == a.location_id)
        .where(ea.status == "confirmed", eb.status == "confirmed", a.location_id.is_not(None))
        .order_by(a.start_utc, a.id, b.id)
    )
    if event_id is not None:
        query = query.where(a.event_id == event_id)
    if event_ids is not None:
        query = query.where(a.event_id.in_(event_ids))
    return [
        DoubleBooking(str(room), name, bl, ev, other, other_ev, other_name)
        for room, name, bl, ev, other, other_ev, other_name in session.execute(query)
    ]


def double_booked_clause() -> ColumnElement[bool]:
    """SQL: this ``Event`` holds a room another confirmed booking holds at the same time."""
    a, b = aliased(BookedLocation), aliased(BookedLocation)
    eb = aliased(Event)
    return (
        exists()
        .where(a.event_id == Event.id, a.location_id.is_not(None), Event.status == "confirmed")
        .where(exists().where(_overlap(a, b), eb.id == b.event_id, eb.status == "confirmed"))
    )


def unmatched_room_clause() -> ColumnElement[bool]:
    """SQL: this ``Event`` came from a calendar and a location of it matched no venue room."""
    bl = aliased(BookedLocation)
    return exists().where(bl.event_id == Event.id, bl.match == "none", bl.status == "confirmed")


def booked_json(session: Session, bl: BookedLocation) -> dict[str, Any]:
    loc = room_of(session, bl.location_id) if bl.location_id else None
    return {
        "id": bl.id,
        "location": None
        if bl.location_id is None
        else {"id": bl.location_id, "name": loc.name if loc else bl.location_id},
        "text": bl.location_text,
        **times_json(bl_times(bl)),
        "status": bl.status,
        "match": bl.match,
    }


def get_booked(session: Session, event: Event, booked_id: int) -> BookedLocation:
    bl = session.get(BookedLocation, booked_id)
    if bl is None or bl.event_id != event.id:
        raise NotFound(
            f"booking {event.id} has no booked location {booked_id}; `calbridge events show "
            f"{event.id}` lists them"
        )
    return bl


class BookedPrefetch:
    """The booked locations and double bookings of a page of bookings, read in a few queries
    (500 bookings a query) instead of two per booking — for listings (``events list``, the
    API's ``GET /api/bookings``) and the push."""

    def __init__(self, session: Session, event_ids: list[int], *, doubles: bool = True) -> None:
        self.rows: dict[int, list[BookedLocation]] = {i: [] for i in event_ids}
        self.doubles: dict[int, list[DoubleBooking]] | None = (
            {i: [] for i in event_ids} if doubles else None
        )
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start : start + 500]
            query = (
                select(BookedLocation)
                .where(BookedLocation.event_id.in_(chunk))
                .order_by(BookedLocation.event_id, BookedLocation.position, BookedLocation.id)
            )
            for bl in session.scalars(query):
                self.rows[bl.event_id].append(bl)
            if self.doubles is not None:
                for double in double_bookings(session, event_ids=chunk):
                    self.doubles[double.event_id].append(double)

    def booked(self, session: Session, event_id: int) -> list[BookedLocation]:
        found = self.rows.get(event_id)
        return found if found is not None else booked_locations(session, event_id)

    def doubles_of(self, session: Session, event_id: int) -> list[DoubleBooking]:
        found = None if self.doubles is None else self.doubles.get(event_id)
        return found if found is not None else double_bookings(session, event_id)


def rooms_json(
    session: Session, event_id: int, pre: BookedPrefetch | None = None
) -> dict[str, list[dict[str, Any]]]:
    """A booking's booked locations and double bookings as ``events show --json`` and the API
    show them; ``pre``: what a listing read for its whole page (no queries per booking)."""
    booked = pre.booked(session, event_id) if pre else booked_locations(session, event_id)
    doubles = pre.doubles_of(session, event_id) if pre else double_bookings(session, event_id)
    return {
        "booked_locations": [booked_json(session, bl) for bl in booked],
        "double_bookings": [d.as_dict() for d in doubles],
    }
