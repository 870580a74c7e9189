"""What a calendar's change to one appointment does to the booking (SPEC §1, issue 15).

An appointment stands for one booked location (export mode ``locations``; the other modes are
publish-only and never pulled). Moving it moves that booked location only; deleting or
cancelling it cancels that booked location, and the booking is cancelled when none is left; a
new location text is matched against the venue's rooms (names and aliases) again. The title,
notes and a tentative/confirmed status belong to the booking. A booking with one booked
location behaves exactly as before rooms existed: the appointment is the booking.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from calbridge.domain.remote import EventFields
from calbridge.domain.rooms import room_key
from calbridge.store.booked import booked_locations, set_bl_times, summary
from calbridge.store.events import touch
from calbridge.store.locations import StoreRoomLookup
from calbridge.store.models import BookedLocation, Calendar, Event, Link
from calbridge.sync.assistant import appointments, location_groups
from calbridge.sync.bookings import apply_fields, booking_fields


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
