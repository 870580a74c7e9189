"""Event write semantics: insert / update (PUT) / patch / delete / get, instances and etags.

Emulated documented behaviour:

* client-supplied ids must use base32hex characters (``a-v``, ``0-9``) and be 5-1024 long,
  otherwise 400 ``invalid``; an id that exists in the calendar - even as a deleted
  (``cancelled``) event - is 409 ``duplicate``; without an id one is generated;
* read-only fields (``kind``, ``etag``, ``created``, ``updated``, ``creator``, ``organizer``,
  ``htmlLink``, ``recurringEventId``, ``originalStartTime``...) are ignored on input;
  ``organizer`` is the calendar (``organizer.email`` = calendar id, as on Google where it can only
  be changed by ``move``), ``creator`` the authenticated principal;
* every change produces a new ``etag`` (a quoted string); ``If-Match`` mismatches give 412
  ``conditionNotMet``; ``If-None-Match`` on get answers 304;
* ``sequence`` starts at 0 and is bumped when start/end/recurrence change (a lower supplied value
  is a 400);
* updating/patching/deleting an instance id (``<masterId>_<suffix>``) of a recurring event
  creates an exception (a separate event carrying ``recurringEventId`` and
  ``originalStartTime``); deleting creates a cancelled exception;
* delete of an already deleted event answers 410 ``deleted``; get always returns deleted events
  (``status: "cancelled"``).

Deliberate simplifications: PATCH merges nested objects (``null`` clears) but replaces
``start``/``end`` as a whole; exceptions are snapshots - later changes to the series master
(its rule, times or other fields) do not flow into existing exceptions.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from .errors import ApiError, bad_request, condition_not_met, deleted, duplicate, invalid
from .model import Calendar, StoredEvent
from .recurrence import Recurrence
from .resources import (
    VirtualInstance,
    duration_of,
    etag_matches,
    etag_of,
    lookup,
    new_event_id,
)
from .schema import SchemaError, prune
from .store import Store
from .timeutil import EventTime, format_rfc3339_ms, parse_event_time

ID_RE = re.compile(r"^[a-v0-9]{5,1024}$")
READ_ONLY = frozenset(
    {
        "kind",
        "etag",
        "id",
        "htmlLink",
        "created",
        "updated",
        "creator",
        "organizer",
        "recurringEventId",
        "originalStartTime",
        "iCalUID",
        "hangoutLink",
        "privateCopy",
        "locked",
    }
)
SYSTEM_KEEP = ("created", "creator", "organizer", "iCalUID")
STATUSES = ("confirmed", "tentative", "cancelled")
WHOLE = ("start", "end")  # replaced as a whole by PATCH


# -- building ----------------------------------------------------------------------------------
def _prune_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "parseError", "Parse Error")
    try:
        pruned: dict[str, Any] = prune(body, "Event")
    except SchemaError as exc:
        raise invalid(f"Invalid value for: {exc}") from exc
    return pruned


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def merge_patch(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict) and key not in WHOLE:
            merge_patch(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _build(
    fields: dict[str, Any], *, exception: bool
) -> tuple[dict[str, Any], EventTime, EventTime]:
    """Validate writable fields; returns ``(data, start, end)``."""
    data = _drop_nulls({k: v for k, v in fields.items() if k not in READ_ONLY})
    start_raw = data.pop("start", None)
    end_raw = data.pop("end", None)
    if exception or not data.get("recurrence"):
        data.pop("recurrence", None)
    recurring = "recurrence" in data
    start = parse_event_time(start_raw, "start", need_zone=recurring)
    end = parse_event_time(end_raw, "end", need_zone=recurring)
    if start.all_day != end.all_day:
        raise bad_request("Start and end times must either both be date or both be dateTime.")
    if (start.day is not None and end.day is not None and end.day <= start.day) or (
        start.instant is not None and end.instant is not None and end.instant < start.instant
    ):
        raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
    if recurring:
        Recurrence(data["recurrence"], start)
    status = data.setdefault("status", "confirmed")
    if status not in STATUSES:
        raise invalid("Invalid value for: status")
    data.setdefault("reminders", {"useDefault": True})
    data.setdefault("eventType", "default")
    for attendee in data.get("attendees", []):
        if isinstance(attendee, dict):
            attendee.setdefault("responseStatus", "needsAction")
    return data, start, end


def _person(email: str, *, self_: bool, display_name: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"email": email}
    if display_name:
        out["displayName"] = display_name
    if self_:
        out["self"] = True
    return out


def _organizer(store: Store, cal: Calendar) -> dict[str, Any]:
    if cal.primary:
        user = store.users.get(cal.id)
        return _person(cal.id, self_=True, display_name=user.display_name if user else None)
    return _person(cal.id, self_=True, display_name=cal.summary)


def _writable_view(ev: StoredEvent) -> dict[str, Any]:
    out = {k: copy.deepcopy(v) for k, v in ev.data.items() if k not in READ_ONLY}
    out["start"] = ev.start.canonical()
    out["end"] = ev.end.canonical()
    return out


def _virtual_view(inst: VirtualInstance) -> dict[str, Any]:
    out = _writable_view(inst.master)
    out.pop("recurrence", None)
    out["start"] = inst.original.canonical()
    out["end"] = inst.original.shifted(duration_of(inst.master)).canonical()
    return out


def _next_sequence(old: int, supplied: Any, changed: bool) -> int:
    if supplied is None:
        return old + 1 if changed else old
    if not isinstance(supplied, int) or supplied < old:
        raise invalid(
            "Invalid sequence value. The specified sequence number is below the current "
            "sequence number of the resource."
        )
    return max(supplied, old + 1) if changed and supplied == old else supplied


# -- operations --------------------------------------------------------------------------------
def insert_event(store: Store, cal: Calendar, principal: str, body: Any) -> StoredEvent:
    body = _prune_body(body)
    eid = body.get("id")
    if eid is not None:
        if not isinstance(eid, str) or not ID_RE.match(eid):
            raise invalid("Invalid resource id value.")
        if eid in cal.events:
            raise duplicate()
    else:
        eid = new_event_id()
    data, start, end = _build(body, exception=False)
    now = format_rfc3339_ms(store.clock.now())
    seq_value = body.get("sequence")
    data["sequence"] = seq_value if isinstance(seq_value, int) and seq_value >= 0 else 0
    data["created"] = now
    data["updated"] = now
    data["creator"] = _person(principal, self_=principal == cal.id)
    data["organizer"] = _organizer(store, cal)
    data["iCalUID"] = body.get("iCalUID") or f"{eid}@google.com"
    ev = StoredEvent(id=eid, data=data, seq=0, create_seq=0, start=start, end=end)
    store.touch(cal, ev, new=True)
    return ev


def update_event(
    store: Store,
    cal: Calendar,
    principal: str,
    event_id: str,
    body: Any,
    *,
    patch: bool,
    if_match: str | None,
) -> StoredEvent:
    target = lookup(cal, event_id)
    if if_match and not etag_matches(if_match, etag_of(target)):
        raise condition_not_met()
    body = _prune_body(body)
    virtual = isinstance(target, VirtualInstance)
    base = _virtual_view(target) if isinstance(target, VirtualInstance) else _writable_view(target)
    old_status = base.get("status", "confirmed")
    if patch:
        fields = merge_patch(copy.deepcopy(base), body)
    else:
        fields = dict(body)
        if old_status == "cancelled" and "status" not in fields:
            fields["status"] = "cancelled"
    is_exception = virtual or (isinstance(target, StoredEvent) and target.master_id is not None)
    data, start, end = _build(fields, exception=is_exception)
    source = target.master if isinstance(target, VirtualInstance) else target
    for key in SYSTEM_KEEP:
        if key in source.data:
            data[key] = copy.deepcopy(source.data[key])
    changed = (
        start != (target.original if isinstance(target, VirtualInstance) else target.start)
        or data.get("recurrence") != base.get("recurrence")
        or (not virtual and isinstance(target, StoredEvent) and end != target.end)
    )
    data["sequence"] = _next_sequence(
        source.data.get("sequence", 0), body.get("sequence"), bool(changed)
    )
    data["updated"] = format_rfc3339_ms(store.clock.now())
    if isinstance(target, VirtualInstance):
        data["recurringEventId"] = target.master.id
        return _store_exception(store, cal, target, data, start, end)
    if target.master_id is not None:
        data["recurringEventId"] = target.master_id
    target.data = data
    target.start = start
    target.end = end
    store.touch(cal, target)
    return target


def _store_exception(
    store: Store,
    cal: Calendar,
    instance: VirtualInstance,
    data: dict[str, Any],
    start: EventTime,
    end: EventTime,
) -> StoredEvent:
    """A written (or cancelled) occurrence of a series, stored as the series' exception."""
    ev = StoredEvent(
        id=instance.id,
        data=data,
        seq=0,
        create_seq=0,
        start=start,
        end=end,
        original_start=instance.original,
        master_id=instance.master.id,
    )
    store.touch(cal, ev, new=True)
    return ev


def delete_event(store: Store, cal: Calendar, event_id: str, *, if_match: str | None) -> None:
    target = lookup(cal, event_id)
    if isinstance(target, VirtualInstance):
        if target.master.cancelled:
            raise deleted()
        if if_match and not etag_matches(if_match, etag_of(target)):
            raise condition_not_met()
        data, start, end = _build(_virtual_view(target), exception=True)
        for key in SYSTEM_KEEP:
            if key in target.master.data:
                data[key] = copy.deepcopy(target.master.data[key])
        data["sequence"] = target.master.data.get("sequence", 0)
        data["status"] = "cancelled"
        data["recurringEventId"] = target.master.id
        data["updated"] = format_rfc3339_ms(store.clock.now())
        _store_exception(store, cal, target, data, start, end)
        return
    if target.cancelled:
        raise deleted()
    if if_match and not etag_matches(if_match, etag_of(target)):
        raise condition_not_met()
    target.data["status"] = "cancelled"
    target.data["updated"] = format_rfc3339_ms(store.clock.now())
    store.touch(cal, target)
