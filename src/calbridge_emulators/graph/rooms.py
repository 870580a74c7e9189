"""Exchange room mailboxes, as the Graph emulator models them.

A room is a mailbox (a user of the tenant, with its own calendar) registered as a room: listed
by ``GET /places/microsoft.graph.room`` (``emailAddress``, ``displayName``, ``capacity``) and
answering invitations at once, as a room mailbox with automatic processing does — an attendee of
``type: resource`` with the room's address gets ``status.response`` ``accepted`` when the room
is free then, ``declined`` when another event holds it (accepted) at an overlapping time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .store import Item, Store


@dataclass
class Room:
    address: str
    name: str
    capacity: int | None
    user_id: str

    def as_place(self) -> dict[str, Any]:
        return {
            "id": self.user_id,
            "emailAddress": self.address,
            "displayName": self.name,
            "capacity": self.capacity,
            "bookingType": "standard",
        }


def _resources(item: Item) -> list[dict[str, Any]]:
    return [
        a
        for a in item.props.get("attendees") or []
        if isinstance(a, dict) and a.get("type") == "resource"
    ]


def _address(attendee: dict[str, Any]) -> str:
    return str((attendee.get("emailAddress") or {}).get("address") or "").lower()


def answer_rooms(store: Store, rooms: dict[str, Room], item: Item, now: str) -> None:
    """Each invited room accepts ``item`` when free at its time, else declines."""
    for attendee in _resources(item):
        address = _address(attendee)
        if address not in rooms:
            continue
        busy = not item.props.get("isCancelled") and any(
            _holds(other, address, item)
            for user in store.users.values()
            for cal in user.calendars.values()
            for other in cal.items.values()
            if other is not item
        )
        attendee["status"] = {"response": "declined" if busy else "accepted", "time": now}


def _holds(other: Item, address: str, item: Item) -> bool:
    if other.props.get("isCancelled") or not (other.start < item.end and item.start < other.end):
        return False
    return any(
        _address(a) == address and (a.get("status") or {}).get("response") == "accepted"
        for a in _resources(other)
    )
