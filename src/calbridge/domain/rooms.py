"""Which venue room an event is in, as a pure function (SPEC §1, issue 15 "Syncing back").

An event arriving from a calendar is matched to a location in this order, each step recorded in
the assignment trace:

1. a room resource among its attendees, by the resource's address (a room that *declined* —
   the room mailbox said it is busy — is not booked);
2. the calendar's own room (a room's resource calendar linked directly);
3. its location text against the venue's location names and aliases, compared case- and
   space-insensitively (``"the  BALLROOM "`` is ``"The Ballroom"``);
4. otherwise no room: the booking keeps the free text and is flagged for review — unless an
   admin marked that text "not a room" (``Zoom``, ``Teams meeting``: ``calbridge locations
   ignore``), then it is kept unflagged (``not_room``).

Several accepted room attendees give several booked locations (one per room). The lookups are
behind :class:`RoomLookup` so the rules run without a database (the store implements it with
one indexed query per step).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

Match = Literal["resource", "calendar_room", "text", "none", "given", "not_room"]

#: how an attendee answered; a room that declined is not booked
DECLINED = "declined"


@dataclass(frozen=True)
class Room:
    """A venue location as the rules see it."""

    id: str
    name: str


@dataclass(frozen=True)
class RoomAttendee:
    """A resource among an appointment's attendees (CalDAV ``ATTENDEE;CUTYPE=ROOM``, Google
    ``resource: true``, Graph ``type: resource``). ``response``: accepted, declined,
    tentative or needs-action (lower case)."""

    address: str
    name: str | None = None
    response: str = "accepted"
    #: False for an ordinary attendee that may be a room mailbox (EWS: Outlook puts a room in
    #: Required or Optional): it counts only when it is a venue room, silently otherwise
    resource: bool = True


@dataclass(frozen=True)
class RoomChoice:
    """One booked location the rules chose: a room (``room`` set) or free text."""

    room: Room | None
    match: Match
    text: str | None


@dataclass(frozen=True)
class RoomDecision:
    """The booked locations for an arriving event, and the trace of how they were found."""

    choices: tuple[RoomChoice, ...]
    trace: tuple[tuple[str, str], ...]  # (rule, outcome)

    @property
    def flagged(self) -> bool:
        """No room was found although the venue has rooms: an admin should look."""
        return any(c.match == "none" for c in self.choices)


class RoomLookup(Protocol):
    def by_address(self, address: str) -> Room | None: ...

    def by_id(self, location_id: str) -> Room | None: ...

    def by_name(self, key: str) -> Room | None: ...

    def has_rooms(self) -> bool: ...

    def is_not_room(self, key: str) -> bool:
        """Whether an admin marked this location text (its :func:`room_key`) "not a room"."""
        ...


def room_key(text: str) -> str:
    """Names and aliases compare case-insensitively with runs of spaces as one space."""
    return " ".join(text.split()).casefold()


def match_rooms(
    attendees: Sequence[RoomAttendee],
    calendar_room: str | None,
    location_text: str | None,
    lookup: RoomLookup,
) -> RoomDecision:
    """SPEC's order: resource attendees, the calendar's own room, the location text, none."""
    trace: list[tuple[str, str]] = []
    choices: list[RoomChoice] = []
    seen: set[str] = set()
    declined: set[str] = set()
    for attendee in attendees:
        room = lookup.by_address(attendee.address.strip().lower())
        who = attendee.name or attendee.address
        if room is None:
            if attendee.resource:
                trace.append(("Room resource among the attendees", f"{who[:200]}: no venue room"))
            continue
        if attendee.response == DECLINED:
            declined.add(room.id)
            trace.append(("Room resource among the attendees", f"{room.name} declined: not booked"))
            continue
        if room.id not in seen:
            seen.add(room.id)
            choices.append(RoomChoice(room, "resource", room.name))
            trace.append(("Room resource among the attendees", f"{room.name} ({room.id})"))
    if choices:
        return RoomDecision(tuple(choices), tuple(trace))
    if calendar_room is not None:
        room = lookup.by_id(calendar_room)
        if room is not None:
            trace.append(("The calendar's own room", f"{room.name} ({room.id})"))
            return RoomDecision((RoomChoice(room, "calendar_room", room.name),), tuple(trace))
    if location_text and location_text.strip():
        room = lookup.by_name(room_key(location_text))
        if room is not None and room.id in declined:
            trace.append(
                (
                    "Location text against names and aliases",
                    f"'{location_text[:200]}' names {room.name}, which declined: not booked",
                )
            )
        elif room is not None:
            trace.append(
                ("Location text against names and aliases", f"'{location_text[:200]}': {room.name}")
            )
            return RoomDecision((RoomChoice(room, "text", location_text),), tuple(trace))
    if not lookup.has_rooms():
        return RoomDecision((RoomChoice(None, "given", location_text),), tuple(trace))
    if location_text and lookup.is_not_room(room_key(location_text)):
        trace.append(
            (
                "Location text marked not a room",
                f"'{location_text[:200]}' is not a room (calbridge locations ignore): not flagged",
            )
        )
        return RoomDecision((RoomChoice(None, "not_room", location_text),), tuple(trace))
    said = f"'{location_text[:200]}' is no venue room" if location_text else "no location given"
    trace.append(("Otherwise no room (flagged for review)", said))
    return RoomDecision((RoomChoice(None, "none", location_text),), tuple(trace))


A = TypeVar("A")


def merge_room_attendees(
    existing: Sequence[A],
    wanted: Sequence[RoomAttendee],
    managed: Iterable[str],
    address_of: Callable[[A], str | None],
    make: Callable[[RoomAttendee], A],
) -> list[A]:
    """An appointment's attendees after we send it ``wanted`` rooms: every attendee we did
    not put there stays (guests added on the calendar, resources that are no venue room); of
    the rooms we manage — ``managed``, the ones it held at the last sync, and the wanted ones
    — a wanted room keeps its entry (and its answer), a room no longer wanted goes, a wanted
    room not there yet is added (``make``). Addresses compare trimmed and case-insensitively."""
    want = {r.address.strip().lower(): r for r in wanted}
    ours = {a.strip().lower() for a in managed} | set(want)
    out: list[A] = []
    present: set[str] = set()
    for attendee in existing:
        address = (address_of(attendee) or "").strip().lower()
        if address in want:
            if address not in present:
                present.add(address)
                out.append(attendee)
        elif address not in ours:
            out.append(attendee)
    out.extend(make(r) for key, r in want.items() if key not in present)
    return out
