"""Venue rooms in the store: the directory's ``locations`` and the lookups the room rules use.

Locations are imported with the directory (``calbridge directory import``: all-or-nothing
validation, upsert by id, never deleted — deactivate with ``"active": false``) and exported in
the same format. :class:`StoreRoomLookup` implements :class:`calbridge.domain.rooms.RoomLookup`
with one indexed query per step (resource address) or one small table read per sync page
(names and aliases: a venue has tens of rooms, not thousands).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from calbridge.domain.rooms import Room, room_key
from calbridge.errors import NotFound
from calbridge.store.models import Location, NotRoomText


def known_rooms(session: Session) -> tuple[dict[str, str], dict[str, str]]:
    """(room key of every name and alias → location id, resource address → location id)."""
    names: dict[str, str] = {}
    addresses: dict[str, str] = {}
    for loc in session.scalars(select(Location).order_by(Location.position, Location.id)):
        for text in (loc.name, *(loc.aliases or [])):
            names.setdefault(room_key(text), loc.id)
        if loc.resource_address:
            addresses.setdefault(loc.resource_address, loc.id)
    return names, addresses


def export_locations(session: Session) -> list[dict[str, Any]]:
    """The locations in the directory file's format, in the file's order."""
    return [
        {
            "id": loc.id,
            "name": loc.name,
            "capacity": loc.capacity,
            "active": bool(loc.active),
            "resource_address": loc.resource_display,
            "aliases": list(loc.aliases or []),
        }
        for loc in session.scalars(select(Location).order_by(Location.position, Location.id))
    ]


def list_locations(session: Session, *, include_inactive: bool = True) -> list[Location]:
    query = select(Location).order_by(Location.position, Location.id)
    if not include_inactive:
        query = query.where(Location.active.is_(True))
    return list(session.scalars(query))


def get_location(session: Session, location_id: str) -> Location:
    """The location with this id, or NotFound saying where the ids are."""
    loc = session.get(Location, location_id)
    if loc is None:
        raise NotFound(
            f"no location has id '{location_id}'; `calbridge locations list` shows the rooms "
            "(add one with `calbridge directory import`)"
        )
    return loc


def location_json(loc: Location) -> dict[str, Any]:
    return {
        "id": loc.id,
        "name": loc.name,
        "capacity": loc.capacity,
        "active": bool(loc.active),
        "resource_address": loc.resource_display,
        "aliases": list(loc.aliases or []),
    }


class StoreRoomLookup:
    """:class:`calbridge.domain.rooms.RoomLookup` over the store (inactive rooms included:
    a room booked on a calendar is where the event is, even if no longer offered)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._names: dict[str, str] | None = None
        self._not_rooms: set[str] | None = None
        self._addresses: set[str] | None = None

    def _room(self, loc: Location | None) -> Room | None:
        return None if loc is None else Room(loc.id, loc.name)

    def by_address(self, address: str) -> Room | None:
        loc = self.session.scalars(
            select(Location).where(Location.resource_address == address).order_by(Location.id)
        ).first()
        return self._room(loc)

    def by_id(self, location_id: str) -> Room | None:
        return self._room(self.session.get(Location, location_id))

    def by_name(self, key: str) -> Room | None:
        if self._names is None:
            self._names = known_rooms(self.session)[0]
        found = self._names.get(key)
        return None if found is None else self.by_id(found)

    def has_rooms(self) -> bool:
        if self._names is None:
            self._names = known_rooms(self.session)[0]
        return bool(self._names)

    def is_not_room(self, key: str) -> bool:
        if self._not_rooms is None:
            self._not_rooms = set(self.session.scalars(select(NotRoomText.key)))
        return key in self._not_rooms

    def is_address(self, address: str) -> bool:
        """Whether ``address`` (normalized) is a venue room's resource address (one read of
        the rooms per lookup)."""
        if self._addresses is None:
            self._addresses = set(known_rooms(self.session)[1])
        return address in self._addresses
