"""In-memory data model: principals, calendars, events and watch channels.

Design for scale (the benchmark puts 5k-20k events in one calendar):

* one global, monotonically increasing change sequence; every event mutation takes the next
  value (``StoredEvent.seq``) and appends ``(seq, id)`` to its calendar's change log, so an
  incremental sync is a bisect into the log plus a scan of only what changed;
* events are indexed by id, and ``order_seqs``/``order_ids`` keep creation order (always sorted,
  append-only) so listing pages are resumed by bisecting to the last key, not by offset.
Deleted events are kept as ``status: "cancelled"`` tombstones (Google keeps them too, which is
also why re-inserting a deleted id is a 409).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

from .recurrence import Recurrence
from .timeutil import EventTime, event_time_from_canonical


@dataclass
class User:
    email: str
    display_name: str | None = None
    time_zone: str = "UTC"


@dataclass
class ServiceAccount:
    """A registered service account; ``keys`` maps ``private_key_id`` to a public key PEM."""

    email: str
    client_id: str
    keys: dict[str, str] = field(default_factory=dict)
    delegation: bool = True
    delegation_scopes: list[str] | None = None


@dataclass
class OAuthClient:
    client_id: str
    client_secret: str


@dataclass
class RefreshGrant:
    token: str
    client_id: str
    principal: str
    scopes: list[str]


@dataclass
class Consent:
    """How a person answers Google's consent page: Allow (``granted``) or Cancel. ``scopes``,
    when set, is what their grant ends up holding instead of what the app asked for."""

    email: str
    granted: bool = True
    scopes: list[str] | None = None


@dataclass
class AuthCode:
    """An authorization code: single use, short-lived, bound to its client, redirect URI and
    PKCE challenge."""

    code: str
    client_id: str
    principal: str
    scopes: list[str]
    redirect_uri: str
    expires_at: float
    challenge: str | None = None
    challenge_method: str | None = None
    used: bool = False


@dataclass
class AccessToken:
    token: str
    principal: str
    scopes: list[str]
    expires_at: float


@dataclass
class Channel:
    """An ``api#channel`` watching one calendar's events collection."""

    id: str
    resource_id: str
    resource_uri: str
    calendar_id: str
    address: str
    expiration_ms: int
    principal: str
    token: str | None = None
    params: dict[str, str] | None = None
    message_number: int = 0
    stopped: bool = False


@dataclass
class StoredEvent:
    """One stored event: a single event, a recurring master or an exception (instance)."""

    id: str
    data: dict[str, Any]
    seq: int
    create_seq: int
    start: EventTime
    end: EventTime
    original_start: EventTime | None = None
    master_id: str | None = None
    start_ts: float = 0.0
    end_ts: float = 0.0
    _recurrence: Recurrence | None = field(default=None, repr=False)

    @property
    def status(self) -> str:
        status: str = self.data.get("status", "confirmed")
        return status

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"

    @property
    def recurring(self) -> bool:
        return bool(self.data.get("recurrence")) and self.master_id is None

    def recurrence(self) -> Recurrence:
        if self._recurrence is None:
            self._recurrence = Recurrence(self.data["recurrence"], self.start)
        return self._recurrence

    def refresh_times(self, calendar_tz: str) -> None:
        self._recurrence = None
        self.start_ts = self.start.timestamp(calendar_tz)
        self.end_ts = self.end.timestamp(calendar_tz)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "data": self.data,
            "seq": self.seq,
            "create_seq": self.create_seq,
            "start": self.start.canonical(),
            "end": self.end.canonical(),
        }
        if self.original_start is not None:
            out["original_start"] = self.original_start.canonical()
            out["master_id"] = self.master_id
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> StoredEvent:
        orig = raw.get("original_start")
        return cls(
            id=raw["id"],
            data=raw["data"],
            seq=raw["seq"],
            create_seq=raw["create_seq"],
            start=event_time_from_canonical(raw["start"]),
            end=event_time_from_canonical(raw["end"]),
            original_start=event_time_from_canonical(orig) if orig else None,
            master_id=raw.get("master_id"),
        )


@dataclass
class Calendar:
    id: str
    owner: str
    summary: str
    time_zone: str = "UTC"
    description: str | None = None
    primary: bool = False
    acl: dict[str, str] = field(default_factory=dict)
    sync_epoch: int = 0
    updated: float = 0.0
    meta_seq: int = 0
    events: dict[str, StoredEvent] = field(default_factory=dict)
    order_seqs: list[int] = field(default_factory=list)
    order_ids: list[str] = field(default_factory=list)
    log_seqs: list[int] = field(default_factory=list)
    log_ids: list[str] = field(default_factory=list)
    exceptions: dict[str, set[str]] = field(default_factory=dict)
    last_seq: int = 0
    expansion_cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    def role_for(self, principal: str) -> str | None:
        if principal == self.owner:
            return "owner"
        return self.acl.get(principal)

    def add_event(self, ev: StoredEvent) -> None:
        self.events[ev.id] = ev
        self.order_seqs.append(ev.create_seq)
        self.order_ids.append(ev.id)
        if ev.master_id is not None:
            self.exceptions.setdefault(ev.master_id, set()).add(ev.id)
        self.log_change(ev)

    def log_change(self, ev: StoredEvent) -> None:
        self.log_seqs.append(ev.seq)
        self.log_ids.append(ev.id)
        self.last_seq = max(self.last_seq, ev.seq)
        self.expansion_cache.clear()

    def changed_since(self, seq: int) -> list[StoredEvent]:
        """Events whose latest change is after ``seq``, in change order (deduplicated)."""
        out = []
        start = bisect.bisect_right(self.log_seqs, seq)
        for i in range(start, len(self.log_seqs)):
            ev = self.events.get(self.log_ids[i])
            if ev is not None and ev.seq == self.log_seqs[i]:
                out.append(ev)
        return out

    def rebuild_indexes(self) -> None:
        """Recreate order/log indexes from ``events`` (after loading persisted state)."""
        evs = sorted(self.events.values(), key=lambda e: e.create_seq)
        self.order_seqs = [e.create_seq for e in evs]
        self.order_ids = [e.id for e in evs]
        by_seq = sorted(self.events.values(), key=lambda e: e.seq)
        self.log_seqs = [e.seq for e in by_seq]
        self.log_ids = [e.id for e in by_seq]
        self.last_seq = max([self.meta_seq, *self.log_seqs]) if by_seq else self.meta_seq
        self.exceptions = {}
        for e in evs:
            if e.master_id is not None:
                self.exceptions.setdefault(e.master_id, set()).add(e.id)
            e.refresh_times(self.time_zone)
        self.expansion_cache.clear()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "owner": self.owner,
            "summary": self.summary,
            "time_zone": self.time_zone,
            "description": self.description,
            "primary": self.primary,
            "acl": self.acl,
            "sync_epoch": self.sync_epoch,
            "updated": self.updated,
            "meta_seq": self.meta_seq,
            "events": [e.to_json() for e in self.events.values()],
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Calendar:
        cal = cls(
            id=raw["id"],
            owner=raw["owner"],
            summary=raw["summary"],
            time_zone=raw.get("time_zone", "UTC"),
            description=raw.get("description"),
            primary=raw.get("primary", False),
            acl=dict(raw.get("acl", {})),
            sync_epoch=raw.get("sync_epoch", 0),
            updated=raw.get("updated", 0.0),
            meta_seq=raw.get("meta_seq", 0),
        )
        for item in raw.get("events", []):
            ev = StoredEvent.from_json(item)
            cal.events[ev.id] = ev
        cal.rebuild_indexes()
        return cal
