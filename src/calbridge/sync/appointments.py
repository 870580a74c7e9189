"""What a calendar's change to one appointment does to the booking (SPEC §1, issue 15).

An appointment stands for one booked location (export mode ``locations``; the other modes are
publish-only and never pulled). Moving it moves that booked location only; deleting or
cancelling it cancels that booked location, and the booking is cancelled when none is left; a
new location text is matched against the venue's rooms (names and aliases) again. The title,
notes and a tentative/confirmed status belong to the booking. A booking with one booked
location behaves exactly as before rooms existed: the appointment is the booking.

**Re-matching rooms.** The link's snapshot also keeps the room resources the appointment held
(``"rooms"``: the addresses of its room attendees, written only when there are some). When
they change on the calendar — a room added, dropped or swapped — :func:`rematch_rooms` runs
the initial-import rules again (:func:`calbridge.domain.rooms.match_rooms`) and makes the
appointment's booked locations what they would have decided: rooms kept stay, a changed room
changes that booked location, a new one is booked with the appointment's times, a dropped one
is cancelled. Each step is in the booking's trace and the change in its history; nothing else
on the booking changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from calbridge.domain.remote import EventFields
from calbridge.domain.rooms import RoomAttendee, RoomChoice, match_rooms, room_key
from calbridge.store.booked import (
    bl_times,
    booked_locations,
    new_booked,
    place_name,
    set_bl_times,
    summary,
)
from calbridge.store.events import touch
from calbridge.store.locations import StoreRoomLookup
from calbridge.store.models import BookedLocation, Calendar, Event, Link
from calbridge.sync.assistant import appointments, location_groups
from calbridge.sync.bookings import apply_fields, booking_fields, room_trace


def link_fields(session: Session, calendar: Calendar, event: Event, link: Link) -> EventFields:
    """The booking's side of ``link``'s appointment (what the merge compares)."""
    wanted = appointments(session, calendar, event).get(link.part)
    return wanted.fields if wanted is not None else booking_fields(event)


def _group_of(session: Session, event: Event, link: Link) -> tuple[list[BookedLocation], int]:
    """The booked locations ``link``'s appointment stands for, and how many are confirmed."""
    rows = booked_locations(session, event.id)
    live = sum(bl.status == "confirmed" for bl in rows)
    group = location_groups(rows).get(link.part)
    if group is None and link.part == "" and rows:
        group = [rows[0]]
    return group or [], live


def apply_link_fields(
    session: Session, calendar: Calendar, event: Event, link: Link, fields: EventFields
) -> bool:
    """Write what the calendar says about ``link``'s appointment into the booking; bump its
    change counter when anything changed."""
    group, live = _group_of(session, event, link)
    if not group or live <= len(group):  # the appointment is the whole booking
        changed = apply_fields(session, event, fields)
        if fields.status != "cancelled":
            for bl in group:
                set_bl_times(bl, fields.times)
        return changed
    current = link_fields(session, calendar, event, link)
    if current.snapshot() == fields.snapshot():
        return False
    event.name, event.notes = fields.name, fields.notes
    if fields.status == "cancelled":
        for bl in group:
            bl.status = "cancelled"
    else:
        if fields.status != event.status:
            event.status = fields.status
        for bl in group:
            set_bl_times(bl, fields.times)
        if len(group) == 1 and (fields.location or None) != (current.location or None):
            rooms = StoreRoomLookup(session)
            room = rooms.by_name(room_key(fields.location or ""))
            group[0].location_id = room.id if room is not None else None
            group[0].location_text = fields.location
            group[0].match = "text" if room else ("none" if rooms.has_rooms() else "given")
    session.flush()
    event.location = summary(session, event)
    touch(session, event)
    return True


# --- re-matching rooms ---------------------------------------------------------------------


def remote_rooms(
    rooms: Sequence[RoomAttendee], is_room: Callable[[str], bool] | None = None
) -> list[str]:
    """The room resources an appointment invites, as its link's snapshot keeps them: the
    addresses (lower case, sorted, once each) of its room attendees, whatever they answered —
    a room answering (accepting, or declining a meeting we wrote) is no change of rooms. An
    ordinary attendee that may be a room (EWS) counts only when ``is_room`` says it is a
    venue room's address (a guest is never a room we manage)."""
    return sorted(
        {
            r.address.strip().lower()
            for r in rooms
            if r.resource or (is_room is not None and is_room(r.address.strip().lower()))
        }
    )


def with_rooms(snapshot: dict[str, Any], rooms: Sequence[str]) -> dict[str, Any]:
    """``snapshot`` with the appointment's rooms (the key is left out when there are none, so
    links without rooms keep the snapshots they had)."""
    out = {k: v for k, v in snapshot.items() if k != "rooms"}
    if rooms:
        out["rooms"] = list(rooms)
    return out


def snapshot_rooms(snapshot: dict[str, Any] | None) -> list[str]:
    return list((snapshot or {}).get("rooms") or [])


def rematch_rooms(
    session: Session,
    calendar: Calendar,
    event: Event,
    link: Link,
    rooms: Sequence[RoomAttendee],
    location: str | None,
    rooms_changed: bool = True,
) -> dict[str, list[Any]] | None:
    """The appointment's room resources changed on the calendar (or, ``rooms_changed``
    False, the location text of an appointment of one booked location): make its booked
    locations what the initial-import rules decide now. Returns the history's change
    (``{"rooms": [old, new]}``) or None when the booked locations already were that."""
    group, _ = _group_of(session, event, link)
    group = [bl for bl in group if bl.status == "confirmed"]
    if not group or event.status == "cancelled" or (not rooms_changed and len(group) > 1):
        return None
    lookup = StoreRoomLookup(session)
    decision = match_rooms(rooms, calendar.room_location_id, location, lookup)
    wanted = list(decision.choices)
    held = [bl.location_id for bl in group]
    kept = [c for c in wanted if c.room is not None and c.room.id in held]
    kept.sort(key=lambda c: held.index(c.room.id if c.room else ""))
    final = kept + [c for c in wanted if c not in kept]
    before = [place_name(session, bl) or "" for bl in group]
    if [_holds(bl) for bl in group] == [_held(c) for c in final]:
        for bl, choice in zip(group, final, strict=True):  # the same places: how found now
            bl.location_id, bl.location_text = _columns(choice)
            bl.match = choice.match
        event.location = summary(session, event)
        return None
    for bl, choice in zip(group, final, strict=False):
        if _holds(bl) != _held(choice):
            bl.location_id, bl.location_text = _columns(choice)
            bl.match = choice.match
    for bl in group[len(final) :]:
        bl.status = "cancelled"
    if len(final) > len(group):
        position = max(bl.position for bl in booked_locations(session, event.id)) + 1
        for n, choice in enumerate(final[len(group) :]):
            room_id, text = _columns(choice)
            added = new_booked(
                event, bl_times(group[0]), location_id=room_id, text=text, match=choice.match
            )
            added.position = position + n
            session.add(added)
    session.flush()
    after = [c.room.name if c.room is not None else (c.text or "") for c in final]
    step = {
        "step": "room",
        "rule": "Rooms changed on the calendar: matched again",
        "outcome": f"{'; '.join(before)[:300]} → {'; '.join(after)[:300]}",
    }
    event.trace = [*(event.trace or []), step, *room_trace(decision)]
    event.location = summary(session, event)
    touch(session, event)
    return {"rooms": ["; ".join(before), "; ".join(after)]}


def _held(choice: RoomChoice) -> tuple[str | None, str | None, str]:
    """(room id, free text, how found) a booked location holds for ``choice``."""
    if choice.room is not None:
        return choice.room.id, None, "room"
    return None, choice.text, _found(choice.match)


def _holds(bl: BookedLocation) -> tuple[str | None, str | None, str]:
    if bl.location_id is not None:  # a room, however it was found (or given by a person)
        return bl.location_id, None, "room"
    return None, bl.location_text, _found(bl.match)


def _found(match: str) -> str:
    """Free text is flagged (``none``) or not; how a room was found is no change of place."""
    return match if match in ("none", "given", "not_room") else "room"


def _columns(choice: RoomChoice) -> tuple[str | None, str | None]:
    """(location_id, location_text) of a booked location made for ``choice`` (as on arrival:
    a room found by its text keeps the text)."""
    room_id = choice.room.id if choice.room is not None else None
    return room_id, choice.text if choice.match in ("text", "none", "given", "not_room") else None
