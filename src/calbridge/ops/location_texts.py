"""Location texts that match no venue room, grouped for an admin (issue 15, "unmatched texts").

Bookings arriving from calendars with a location text that names no room ("Zoom", "Teams
meeting", "Client's office") are flagged *no room*. One by one they would flood the review
queue, so the queue groups them: one row per distinct text (compared as room names are:
case- and space-insensitively, :func:`calbridge.domain.rooms.room_key`) with how many bookings
wait on it. An admin settles a whole row at once:

* :func:`alias_text` — the text is another name of a room: it becomes one of that room's
  aliases, and every waiting booked location with that text is matched to the room now (match
  ``text``, the text kept; the booking touched so its calendars follow). Later arrivals match
  it by the usual rule. An alias added here lives in the store: ``calbridge directory export``
  writes it to the directory file (a later ``directory import`` of an older file replaces the
  room's aliases with the file's).
* :func:`ignore_text` — the text is "not a room": stored (``not_room_texts``), the waiting
  booked locations become ``not_room`` (not flagged), and so do later arrivals with that text.
  :func:`unignore_text` undoes it (they are flagged again).

The CLI (``calbridge locations unmatched|alias|ignore|unignore|ignored``), the API
(``/api/locations/unmatched``, ``/api/locations/{id}/aliases``, ``/api/locations/ignored``) and
the admin UI's review page call these functions; each write leaves one history row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from calbridge.domain.rooms import room_key
from calbridge.errors import ValidationFailed
from calbridge.ops.history import now_utc, record
from calbridge.store.events import touch
from calbridge.store.locations import get_location, known_rooms
from calbridge.store.models import BookedLocation, Event, Location, NotRoomText

MAX_TEXT = 200  # an alias or an ignored text; longer ones are no room names


@dataclass(frozen=True)
class UnmatchedText:
    """One row of the grouped review: a location text (as most bookings spell it), how many
    bookings wait on it and a few of them."""

    key: str
    text: str
    bookings: int
    examples: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "text": self.text,
            "bookings": self.bookings,
            "examples": list(self.examples),
        }


def _waiting(session: Session) -> list[tuple[int, int, str | None]]:
    """(booked location id, booking id, text) of every flagged *no room* place of a booking
    that is not cancelled."""
    query = (
        select(BookedLocation.id, BookedLocation.event_id, BookedLocation.location_text)
        .join(Event, Event.id == BookedLocation.event_id)
        .where(
            BookedLocation.match == "none",
            BookedLocation.status == "confirmed",
            Event.status != "cancelled",
        )
        .order_by(BookedLocation.event_id)
    )
    return [(bl, ev, text) for bl, ev, text in session.execute(query)]


def unmatched_texts(session: Session) -> list[UnmatchedText]:
    """The texts waiting, most bookings first (then by text); bookings with no location text
    at all are one row with the empty key."""
    groups: dict[str, dict[str, Any]] = {}
    for _, event_id, text in _waiting(session):
        key = room_key(text or "")
        group = groups.setdefault(key, {"events": [], "spellings": {}})
        if not group["events"] or group["events"][-1] != event_id:
            group["events"].append(event_id)
        spelled = (text or "").strip()
        group["spellings"][spelled] = group["spellings"].get(spelled, 0) + 1
    out = []
    for key, group in groups.items():
        spellings: dict[str, int] = group["spellings"]
        text = min(spellings, key=lambda t: (-spellings[t], t))  # the most used spelling
        events: list[int] = sorted(set(group["events"]))
        out.append(UnmatchedText(key, text, len(events), tuple(events[:5])))
    return sorted(out, key=lambda u: (-u.bookings, u.key))


def _checked(text: str) -> tuple[str, str]:
    cleaned = " ".join(text.split())
    if not cleaned:
        raise ValidationFailed("give the location text (it is empty)")
    if len(cleaned) > MAX_TEXT:
        raise ValidationFailed(
            f"the location text is {len(cleaned)} characters long; a room name or alias has at "
            f"most {MAX_TEXT}"
        )
    return cleaned, room_key(cleaned)


def alias_text(session: Session, text: str, location_id: str, *, actor: str) -> list[int]:
    """Add ``text`` as an alias of the room ``location_id`` and match the bookings waiting on
    it to that room; returns those bookings' ids (the front end tells their calendars)."""
    cleaned, key = _checked(text)
    room = get_location(session, location_id)
    holder = known_rooms(session)[0].get(key)
    if holder is not None and holder != room.id:
        other = session.get(Location, holder)
        raise ValidationFailed(
            f"'{cleaned}' already names location '{holder}' ({other.name if other else holder});"
            " a text can be the name or alias of one room only"
        )
    if holder is None:
        room.aliases = [*(room.aliases or []), cleaned]
    ignored = session.get(NotRoomText, key)
    if ignored is not None:
        session.delete(ignored)
    matched: set[int] = set()
    for bl_id, event_id, bl_text in _waiting(session):
        if room_key(bl_text or "") != key:
            continue
        bl = session.get(BookedLocation, bl_id)
        assert bl is not None
        bl.location_id, bl.match = room.id, "text"
        matched.add(event_id)
    _also_not_room(session, key, room.id, matched)
    _touch(session, matched, {"room": [cleaned, room.name]}, actor)
    record(
        session,
        actor=actor,
        subject="location",
        subject_id=room.id,
        action="alias_added",
        details={"alias": cleaned, "bookings": len(matched)},
    )
    return sorted(matched)


def _also_not_room(session: Session, key: str, room_id: str, matched: set[int]) -> None:
    """Places kept as "not a room" with that text are that room now too."""
    query = (
        select(BookedLocation)
        .join(Event, Event.id == BookedLocation.event_id)
        .where(
            BookedLocation.match == "not_room",
            BookedLocation.status == "confirmed",
            Event.status != "cancelled",
        )
    )
    for bl in session.scalars(query):
        if room_key(bl.location_text or "") == key:
            bl.location_id, bl.match = room_id, "text"
            matched.add(bl.event_id)


def ignore_text(session: Session, text: str, *, actor: str) -> int:
    """Mark ``text`` "not a room": the bookings waiting on it are no longer flagged, nor are
    later ones; returns how many bookings it took out of the review."""
    cleaned, key = _checked(text)
    holder = known_rooms(session)[0].get(key)
    if holder is not None:
        raise ValidationFailed(
            f"'{cleaned}' is a name or alias of location '{holder}'; it cannot be marked not a "
            "room (remove the alias in the directory file first)"
        )
    if session.get(NotRoomText, key) is None:
        session.add(NotRoomText(key=key, text=cleaned, at=now_utc(), actor=actor[:200]))
    cleared: set[int] = set()
    for bl_id, event_id, bl_text in _waiting(session):
        if room_key(bl_text or "") == key:
            bl = session.get(BookedLocation, bl_id)
            assert bl is not None
            bl.match = "not_room"
            cleared.add(event_id)
    record(
        session,
        actor=actor,
        subject="location_text",
        subject_id=key,
        action="marked_not_a_room",
        details={"text": cleaned, "bookings": len(cleared)},
    )
    return len(cleared)


def unignore_text(session: Session, text: str, *, actor: str) -> int:
    """Undo :func:`ignore_text`: the text's bookings are flagged *no room* again; returns how
    many."""
    cleaned, key = _checked(text)
    row = session.get(NotRoomText, key)
    if row is None:
        raise ValidationFailed(
            f"'{cleaned}' is not marked not a room; `calbridge locations ignored` lists those"
        )
    session.delete(row)
    flagged: set[int] = set()
    query = select(BookedLocation).where(BookedLocation.match == "not_room")
    for bl in session.scalars(query):
        if room_key(bl.location_text or "") == key:
            bl.match = "none"
            flagged.add(bl.event_id)
    record(
        session,
        actor=actor,
        subject="location_text",
        subject_id=key,
        action="unmarked_not_a_room",
        details={"text": cleaned, "bookings": len(flagged)},
    )
    return len(flagged)


def ignored_texts(session: Session) -> list[dict[str, Any]]:
    """The texts marked not a room, with who marked them and when."""
    rows = session.scalars(select(NotRoomText).order_by(NotRoomText.key))
    return [{"text": r.text, "at": r.at.isoformat(), "actor": r.actor} for r in rows]


def _touch(session: Session, event_ids: set[int], changes: dict[str, Any], actor: str) -> None:
    """The matched bookings changed: their calendars follow, their history says so."""
    for event_id in sorted(event_ids):
        event = session.get(Event, event_id)
        if event is None:
            continue
        touch(session, event)
        record(
            session,
            actor=actor,
            subject="booking",
            subject_id=event_id,
            action="updated",
            details={"changes": changes},
        )
