"""The neutral vocabulary between calendar providers and the sync engine.

A provider turns its API into these values and back; the engine never sees a provider's own
types and never branches on which provider it talks to (STYLE.md).

* :class:`EventFields` — the fields a booking and a calendar event share. Their JSON form
  (:meth:`EventFields.snapshot`) is the *last-synced snapshot* kept per link, the base of the
  three-way merge.
* :class:`RemoteItem` — one calendar object as the server stores it: a single event, or a
  recurring series (master + overrides) already expanded into :class:`RemoteOccurrence` values
  within the sync window. ``ref`` addresses it (CalDAV href, Google/Graph event id) with its
  ``etag``.
* Recurrence ids are compact strings of an occurrence's *original* start: ``20270305T080000Z``
  (UTC) for timed series with a zone, ``20270305T090000`` for floating series, ``20270305`` for
  all-day series — the same form Google uses in instance ids.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal, Protocol

from calbridge.domain.event import EventTimes, Status
from calbridge.domain.rooms import RoomAttendee

MERGE_FIELDS = ("name", "when", "location", "notes", "status")


@dataclass(frozen=True)
class EventFields:
    """What both sides share. ``when`` (start, end, all-day, zone) merges as one field so a
    merge can never pair one side's start with the other side's end."""

    name: str
    times: EventTimes
    location: str | None = None
    notes: str | None = None
    status: Status = "confirmed"

    def snapshot(self) -> dict[str, Any]:
        start, end = self.times.iso()
        return {
            "name": self.name,
            "when": {
                "start": start,
                "end": end,
                "all_day": self.times.all_day,
                "timezone": self.times.timezone,
            },
            "location": self.location or None,
            "notes": self.notes or None,
            "status": self.status,
        }

    def content_hash(self) -> str:
        return snapshot_hash(self.snapshot())

    @staticmethod
    def from_snapshot(data: dict[str, Any]) -> EventFields:
        when = data["when"]
        all_day = bool(when["all_day"])
        start: date | datetime
        end: date | datetime
        if all_day:
            start, end = date.fromisoformat(when["start"]), date.fromisoformat(when["end"])
        else:
            start, end = datetime.fromisoformat(when["start"]), datetime.fromisoformat(when["end"])
        return EventFields(
            name=data["name"],
            times=EventTimes(start, end, all_day, when["timezone"]),
            location=data.get("location"),
            notes=data.get("notes"),
            status=data.get("status", "confirmed"),
        )


def snapshot_hash(snapshot: dict[str, Any]) -> str:
    blob = json.dumps(snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class RemoteRef:
    """Where an item lives on the calendar, and the version we know of it."""

    id: str
    etag: str | None = None


@dataclass(frozen=True)
class RemoteOccurrence:
    """One bookable occurrence: the item itself (``recurrence_id`` None) or one of a series."""

    recurrence_id: str | None
    fields: EventFields


@dataclass(frozen=True)
class RemoteItem:
    """A calendar object as read from the server."""

    ref: RemoteRef
    uid: str
    organizer: str | None
    occurrences: tuple[RemoteOccurrence, ...]
    key: str | None = None  # the idempotency key we stamped on it, if we created it
    is_series: bool = False
    updated: datetime | None = None  # the server's last-modified time (naive UTC), if known
    rooms: tuple[RoomAttendee, ...] = ()  # room resources among its attendees


@dataclass(frozen=True)
class RemoteRejection:
    """A calendar object that cannot be imported, with the reason a person can act on."""

    ref_id: str
    uid: str | None
    reason: str


@dataclass
class ChangePage:
    """A slice of what changed. ``token`` is set on the last page only (``done``)."""

    items: list[RemoteItem | RemoteRejection] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    token: str | None = None
    done: bool = False
    full: bool = False  # True when this listing is everything (a full resync)


#: what a :class:`DeferredPage` runs to read its items: the items and the ids found gone
PageReader = Callable[[], tuple[list[RemoteItem | RemoteRejection], list[str]]]


class DeferredPage(ChangePage):
    """A :class:`ChangePage` whose items are read by ``read`` when first asked for: a provider
    that fetches ahead on a thread (``calbridge.sync.readahead``) hands over the raw answer,
    and the thread that applies the page parses it. Parsing is CPU work: on the fetching
    thread it only takes turns with the applying thread for the interpreter lock, and each
    turn costs more than the overlap gains. ``read`` returns the items and the ids it found
    gone, added to ``deleted``; it runs once (an exception it raises is raised again)."""

    def __init__(
        self,
        read: PageReader,
        deleted: list[str],
        token: str | None = None,
        done: bool = False,
        full: bool = False,
    ) -> None:
        self._read: PageReader | None = read
        super().__init__([], deleted, token, done, full)

    def _resolve(self) -> None:
        read = self._read
        if read is not None:
            items, gone = read()
            self._read = None
            self._items.extend(items)
            self._deleted.extend(gone)

    @property
    def items(self) -> list[RemoteItem | RemoteRejection]:
        self._resolve()
        return self._items

    @items.setter
    def items(self, value: list[RemoteItem | RemoteRejection]) -> None:
        self._items = value

    @property
    def deleted(self) -> list[str]:
        self._resolve()
        return self._deleted

    @deleted.setter
    def deleted(self, value: list[str]) -> None:
        self._deleted = value


@dataclass(frozen=True)
class RemoteEvent:
    """What the engine asks a provider to write. ``key`` is our idempotency key; ``rooms``
    the room resources the appointment should invite (a calendar that sends rooms as
    resources), or None: leave its attendees as they are; writing rooms changes only the room
    attendees we manage (:func:`calbridge.domain.rooms.merge_room_attendees`)."""

    fields: EventFields
    key: str
    uid: str | None = None
    recurrence_id: str | None = None
    rooms: tuple[RoomAttendee, ...] | None = None
    #: the room addresses the appointment held at the last sync: with ``rooms``, the only
    #: attendees a write may remove (guests added on the calendar stay)
    managed_rooms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Written:
    ref: RemoteRef
    uid: str
    adopted: bool = False  # it already existed (a retried create): adopted, not duplicated


@dataclass(frozen=True)
class Window:
    """The span of time within which series are expanded into bookings (naive UTC)."""

    start: datetime
    end: datetime


#: Series are expanded from this many days back to the calendar's horizon ahead.
PAST_DAYS = 30


def sync_window(now: datetime, horizon_days: int) -> Window:
    """The window of one sync started at ``now`` (naive UTC) on a calendar of that horizon."""
    return Window(now - timedelta(days=PAST_DAYS), now + timedelta(days=horizon_days))


@dataclass(frozen=True)
class WriteOp:
    """One write of a batch (``BatchingProvider.write_many``): ``create`` needs ``event``;
    ``update`` needs ``ref`` and ``event``; ``delete`` needs ``ref`` (and ``recurrence_id`` for
    one occurrence of a series)."""

    kind: Literal["create", "update", "delete"]
    event: RemoteEvent | None = None
    ref: RemoteRef | None = None
    recurrence_id: str | None = None


# What write_many returns per op, in order: Written for create/update, None for a delete,
# or the ProviderError (Conflict, RateLimited, ...) that this one op failed with.
WriteResult = Written | None | Exception


class CalendarProvider(Protocol):
    """One calendar, as the engine sees it (DESIGN.md). Errors raised are ``ProviderError``
    subclasses: ``TokenExpired`` (full resync needed), ``Conflict`` (etag/exists),
    ``ProviderAuthError``, ``RateLimited``; retries happen inside the provider."""

    requests: int  # HTTP requests made so far (for reports and benchmarks)

    def check(self) -> None: ...

    def list_changes(self, token: str | None, window: Window) -> Iterator[ChangePage]: ...

    def get(self, ref_id: str, window: Window) -> RemoteItem | RemoteRejection | None: ...

    def create(self, event: RemoteEvent) -> Written: ...

    def update(self, ref: RemoteRef, event: RemoteEvent) -> Written: ...

    def delete(self, ref: RemoteRef, recurrence_id: str | None = None) -> None: ...


class BatchingProvider(CalendarProvider, Protocol):
    """A provider that can send many writes in one request (Google batch, Graph ``$batch``).
    ``max_batch`` is how many ops one call accepts; the engine chunks accordingly. Every op must
    stay idempotent on its own: a batch is retried op by op, never as a whole."""

    max_batch: int

    def write_many(self, ops: list[WriteOp]) -> list[WriteResult]: ...
