"""Room mailboxes in the emulated Exchange organisation (issue 15), as Exchange's resource
booking assistant treats them.

A room is a mailbox with a capacity (``Organisation.add_room``). A meeting invites it as an
attendee — in ``Resources`` (the Scheduling Assistant's *Rooms*), or in ``RequiredAttendees`` /
``OptionalAttendees`` (where Outlook users often type a room). When an item is saved with a
room that has not answered yet, the room answers at once, as an auto-accepting room mailbox
does: ``Accept`` when it is free, ``Decline`` when another meeting it accepted overlaps (in any
mailbox; the same meeting seen from another mailbox, by UID, is no clash). Each answer has its
``LastResponseTime``. Answers stay until the room is removed from the meeting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Item, Organisation

#: t:ResponseTypeType values (types.xsd)
RESPONSES = ("Unknown", "Organizer", "Tentative", "Accept", "Decline", "NoResponseReceived")
UNANSWERED = ("Unknown", "NoResponseReceived")


@dataclass
class Attendee:
    """A t:AttendeeType: its mailbox, its answer and when it answered."""

    address: str
    name: str = ""
    response: str = "Unknown"
    last_response: datetime | None = None


@dataclass(frozen=True)
class Room:
    address: str
    name: str
    capacity: int | None = None


def attendees_of(item: Item) -> list[Attendee]:
    return [*item.required, *item.optional, *item.resources]


def answer_rooms(org: Organisation, item: Item) -> None:
    """Rooms invited to ``item`` that have not answered yet accept or decline now."""
    for attendee in attendees_of(item):
        room = org.rooms.get(attendee.address.strip().lower())
        if room is None or attendee.response not in UNANSWERED:
            continue
        busy = any(_holds(other, room.address, item) for other in _all_items(org))
        attendee.response = "Decline" if busy else "Accept"
        attendee.last_response = datetime.now(UTC).replace(microsecond=0)


def _all_items(org: Organisation) -> list[Item]:
    return [i for box in org.mailboxes.values() for i in box.items.values()]


def _holds(other: Item, address: str, item: Item) -> bool:
    """Whether ``other`` (another meeting) has ``address`` accepted at ``item``'s time."""
    if other is item or (item.uid and other.uid == item.uid) or other.is_cancelled:
        return False
    if not (other.start < item.end and item.start < other.end):
        return False
    return any(
        a.address.strip().lower() == address and a.response == "Accept" for a in attendees_of(other)
    )


def merged(old: list[Attendee], new: list[Attendee]) -> list[Attendee]:
    """A new attendee list as a client sent it: an attendee already there keeps its answer
    (clients send ``ResponseType`` back, Exchange keeps its own)."""
    known = {a.address.strip().lower(): a for a in old}
    out = []
    for attendee in new:
        before = known.get(attendee.address.strip().lower())
        if before is not None:
            attendee.response, attendee.last_response = before.response, before.last_response
        out.append(attendee)
    return out
