"""Google Workspace room resources, as the emulator models them.

A room is a *resource calendar* with its own email address (Workspace gives them ids like
``c_…@resource.calendar.google.com``; the emulator takes the address it is given). Inviting a
room (an attendee with ``resource: true`` and that email) makes the room answer at once, as a
Workspace room set to auto-accept does: ``accepted`` when the room is free, ``declined`` when
another event holds it (accepted) at an overlapping time. The rooms are listed as the Admin SDK
Directory API lists them (``resources/calendars``: ``resourceEmail``, ``resourceName``,
``capacity``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .model import StoredEvent


@dataclass
class Room:
    email: str
    name: str
    capacity: int | None = None

    def as_resource(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "admin#directory#resources#calendars#CalendarResource",
            "resourceId": self.email.split("@")[0],
            "resourceName": self.name,
            "resourceEmail": self.email,
            "resourceType": "Conference room",
        }
        if self.capacity is not None:
            out["capacity"] = self.capacity
        return out


def _rooms_of(ev: StoredEvent) -> list[dict[str, Any]]:
    return [
        a
        for a in ev.data.get("attendees") or []
        if isinstance(a, dict) and a.get("resource") and isinstance(a.get("email"), str)
    ]


def answer_rooms(rooms: dict[str, Room], calendars: Any, ev: StoredEvent) -> None:
    """Each invited room accepts ``ev`` when it is free then, else declines."""
    for attendee in _rooms_of(ev):
        email = str(attendee["email"]).lower()
        if email not in rooms:
            continue
        busy = ev.data.get("status") != "cancelled" and any(
            _holds(other, email, ev)
            for cal in calendars.values()
            for other in cal.events.values()
            if other is not ev
        )
        attendee["responseStatus"] = "declined" if busy else "accepted"


def _holds(other: StoredEvent, email: str, ev: StoredEvent) -> bool:
    if other.data.get("status") == "cancelled":
        return False
    if not (other.start_ts < ev.end_ts and ev.start_ts < other.end_ts):
        return False
    return any(
        str(a["email"]).lower() == email and a.get("responseStatus") == "accepted"
        for a in _rooms_of(other)
    )
