"""Event resources as the API shows them: etags, ``htmlLink``, instances and rendering.

* every stored change gets a new ``etag`` (a quoted number derived from the change sequence);
  unmodified instances of a series carry an etag derived from the master's;
* an instance of a recurring event that was never modified is not stored: it is a
  :class:`VirtualInstance` (master + original start), rendered with ``recurringEventId``,
  ``originalStartTime`` and the shifted ``start``/``end``, without ``recurrence``;
* list items that are cancelled can be rendered minimal (``id``, ``status``, ``etag`` and for
  instances ``recurringEventId``/``originalStartTime``): the documented guarantee.
"""

from __future__ import annotations

import base64
import uuid
import zlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .errors import not_found
from .model import Calendar, StoredEvent
from .recurrence import instance_id, instance_suffix, parse_instance_suffix
from .timeutil import EventTime

ETAG_BASE = 3_400_000_000_000_000


@dataclass
class VirtualInstance:
    """An unmodified occurrence of a recurring event (not stored, computed from the master)."""

    master: StoredEvent
    original: EventTime

    @property
    def id(self) -> str:
        return instance_id(self.master.id, self.original)


Target = StoredEvent | VirtualInstance


def make_etag(seq: int, salt: int = 0) -> str:
    return f'"{ETAG_BASE + seq * 1000 + salt}"'


def etag_of(target: Target) -> str:
    if isinstance(target, VirtualInstance):
        salt = zlib.crc32(instance_suffix(target.original).encode()) % 1000
        return make_etag(target.master.seq, salt)
    return make_etag(target.seq)


def etag_matches(header: str, current: str) -> bool:
    """RFC 7232 list matching; ``*`` matches anything, weak prefixes are ignored."""
    for item in header.split(","):
        item = item.strip()
        if item.startswith("W/"):
            item = item[2:]
        if item == "*" or item == current or f'"{item}"' == current:
            return True
    return False


def new_event_id() -> str:
    """A 26-character base32hex id, like the server-generated ids of Google Calendar."""
    return base64.b32hexencode(uuid.uuid4().bytes).decode().lower().rstrip("=")


def html_link(event_id: str, calendar_id: str) -> str:
    eid = base64.urlsafe_b64encode(f"{event_id} {calendar_id}".encode()).decode().rstrip("=")
    return f"https://www.google.com/calendar/event?eid={eid}"


def duration_of(ev: StoredEvent) -> timedelta:
    if ev.start.day is not None and ev.end.day is not None:
        return ev.end.day - ev.start.day
    assert ev.start.instant is not None and ev.end.instant is not None
    return ev.end.instant - ev.start.instant


# -- rendering -------------------------------------------------------------------------------
def render(cal: Calendar, ev: StoredEvent, tz: str, *, minimal: bool = False) -> dict[str, Any]:
    """The ``Event`` resource for a stored event; cancelled ones minimal when ``minimal``."""
    if minimal and ev.cancelled:
        out: dict[str, Any] = {
            "kind": "calendar#event",
            "etag": make_etag(ev.seq),
            "id": ev.id,
            "status": "cancelled",
        }
        if ev.master_id is not None and ev.original_start is not None:
            out["recurringEventId"] = ev.master_id
            out["originalStartTime"] = ev.original_start.render(tz)
        return out
    out = {
        "kind": "calendar#event",
        "etag": make_etag(ev.seq),
        "id": ev.id,
        "htmlLink": html_link(ev.id, cal.id),
    }
    out.update(ev.data)
    out["start"] = ev.start.render(tz)
    out["end"] = ev.end.render(tz)
    if ev.original_start is not None:
        out["originalStartTime"] = ev.original_start.render(tz)
    return out


def render_virtual(
    cal: Calendar, inst: VirtualInstance, tz: str, *, minimal: bool = False
) -> dict[str, Any]:
    master = inst.master
    iid = inst.id
    if minimal and master.cancelled:
        return {
            "kind": "calendar#event",
            "etag": etag_of(inst),
            "id": iid,
            "status": "cancelled",
            "recurringEventId": master.id,
            "originalStartTime": inst.original.render(tz),
        }
    out = render(cal, master, tz)
    out.pop("recurrence", None)
    out["id"] = iid
    out["etag"] = etag_of(inst)
    out["htmlLink"] = html_link(iid, cal.id)
    out["start"] = inst.original.render(tz)
    out["end"] = inst.original.shifted(duration_of(master)).render(tz)
    out["recurringEventId"] = master.id
    out["originalStartTime"] = inst.original.render(tz)
    return out


def render_target(
    cal: Calendar, target: Target, tz: str, *, minimal: bool = False
) -> dict[str, Any]:
    if isinstance(target, VirtualInstance):
        return render_virtual(cal, target, tz, minimal=minimal)
    return render(cal, target, tz, minimal=minimal)


# -- lookup ------------------------------------------------------------------------------------
def lookup(cal: Calendar, event_id: str) -> Target:
    ev = cal.events.get(event_id)
    if ev is not None:
        return ev
    if "_" in event_id:
        master_id, suffix = event_id.rsplit("_", 1)
        master = cal.events.get(master_id)
        if master is not None and master.recurring:
            original = parse_instance_suffix(suffix, master.start)
            if original is not None and master.recurrence().contains(original):
                return VirtualInstance(master, original)
    raise not_found()
