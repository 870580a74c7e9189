"""Event bodies: validation of create/PATCH payloads and rendering in Graph's v1.0 shape.

Emulated: the property set of ``microsoft.graph.event`` (unknown properties -> 400
``RequestBodyRead`` as OData does; read-only properties in a body are ignored), enum checks,
``dateTimeTimeZone`` with Windows/IANA zones (unknown zone -> 400
``TimeZoneNotSupportedException``), ``originalStartTimeZone``/``originalEndTimeZone`` keeping the
zone names sent by the client, all-day events (midnight-to-midnight, floating dates), text bodies
stored as text and returned as HTML unless ``Prefer: outlook.body-content-type="text"``,
``transactionId`` (only returned when set), single-value extended properties (returned only via
``$expand``), ``changeKey``/``@odata.etag`` (``W/"<changeKey>"``).

Simplification: ``organizer`` is always the mailbox owner (app-only creation); attendees are
stored but no meeting requests are sent; ``multiValueExtendedProperties`` are not supported.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from typing import Any

from calbridge.domain.windows_zones import resolve_zone

from . import recurrence as rec
from .render import OutputOptions, removed, render
from .store import ExceptionInstance, Item
from .util import GraphError, new_change_key, new_item_id, parse_iso

__all__ = ["OutputOptions", "new_item", "patch_instance", "patch_item", "removed", "render"]

WRITABLE = {
    "subject",
    "body",
    "location",
    "locations",
    "categories",
    "importance",
    "sensitivity",
    "showAs",
    "isReminderOn",
    "reminderMinutesBeforeStart",
    "attendees",
    "responseRequested",
    "allowNewTimeProposals",
    "hideAttendees",
    "isOnlineMeeting",
    "onlineMeetingProvider",
}
SPECIAL = {
    "start",
    "end",
    "isAllDay",
    "recurrence",
    "transactionId",
    "singleValueExtendedProperties",
}
READ_ONLY = {
    "@odata.type",
    "@odata.etag",
    "@odata.context",
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "iCalUId",
    "type",
    "seriesMasterId",
    "webLink",
    "isOrganizer",
    "responseStatus",
    "bodyPreview",
    "hasAttachments",
    "originalStart",
    "originalStartTimeZone",
    "originalEndTimeZone",
    "organizer",
    "onlineMeeting",
    "onlineMeetingUrl",
    "isDraft",
    "isCancelled",
    "cancelledOccurrences",
    "exceptionOccurrences",
    "instances",
    "attachments",
    "calendar",
    "extensions",
    "multiValueExtendedProperties",
}
ENUMS = {
    "importance": ("importance", ("low", "normal", "high")),
    "sensitivity": ("sensitivity", ("normal", "personal", "private", "confidential")),
    "showAs": (
        "freeBusyStatus",
        ("unknown", "free", "tentative", "busy", "oof", "workingElsewhere"),
    ),
    "onlineMeetingProvider": (
        "onlineMeetingProviderType",
        ("unknown", "skypeForBusiness", "skypeForConsumer", "teamsForBusiness"),
    ),
}
DEFAULTS: dict[str, Any] = {
    "subject": "",
    "body": {"contentType": "html", "content": ""},
    "categories": [],
    "importance": "normal",
    "sensitivity": "normal",
    "showAs": "busy",
    "isReminderOn": True,
    "reminderMinutesBeforeStart": 15,
    "attendees": [],
    "responseRequested": True,
    "allowNewTimeProposals": True,
    "hideAttendees": False,
    "isOnlineMeeting": False,
    "onlineMeetingProvider": "unknown",
    "location": None,
}
_EXT_ID = re.compile(
    r"^(Binary|Boolean|Currency|CLSID|Double|Float|Integer|Long|Object|Short|String|SystemTime)"
    r"(Array)? (\{[0-9a-fA-F-]{36}\} (Name \S.*|Id 0x[0-9a-fA-F]+)|0x[0-9a-fA-F]{4})$"
)


_NEVER = "0001-01-01T00:00:00Z"  # Graph's "no response yet" time


def _read_error(message: str) -> GraphError:
    return GraphError(400, "RequestBodyRead", message)


def check_properties(body: dict[str, Any]) -> None:
    for key in body:
        if key in WRITABLE or key in SPECIAL or key in READ_ONLY:
            continue
        if key.startswith("@") or "@odata." in key:
            continue
        raise _read_error(
            f"The property '{key}' does not exist on type 'microsoft.graph.event'. Make sure to "
            "only use property names that are defined by the type or mark the type as open type."
        )


def _normalize_location(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _read_error("Cannot read the value of property 'location'.")
    out = {k: v for k, v in value.items() if not k.startswith("@")}
    out["displayName"] = str(value.get("displayName") or "")
    return out if out["displayName"] or len(out) > 1 else None


def apply_writable(target: dict[str, Any], body: dict[str, Any]) -> None:
    """Validate and copy the plain writable properties of ``body`` into ``target``."""
    # ``locations`` first: its first entry is the location unless ``location`` is given too
    for key in sorted(WRITABLE & body.keys(), key=lambda k: (k == "location", k)):
        value = body[key]
        if key in ENUMS and value is not None:
            type_name, allowed = ENUMS[key]
            if value not in allowed:
                raise _read_error(
                    f"Cannot convert the literal '{value}' to the expected type "
                    f"'microsoft.graph.{type_name}'."
                )
        if key == "body":
            if not isinstance(value, dict):
                raise _read_error("Cannot read the value of property 'body'.")
            ctype = str(value.get("contentType") or "text")
            if ctype.lower() not in ("text", "html"):
                raise _read_error(
                    f"Cannot convert the literal '{ctype}' to the expected type "
                    "'microsoft.graph.bodyType'."
                )
            value = {"contentType": ctype.lower(), "content": str(value.get("content") or "")}
        elif key == "location":
            value = _normalize_location(value)
            if "locations" not in body:  # a new location alone replaces the list
                target["locations"] = None
        elif key == "locations":
            value = [loc for loc in (_normalize_location(v) for v in value or []) if loc]
            target["location"] = value[0] if value else None
        elif key == "attendees":
            value = [
                {
                    "type": a.get("type") or "required",
                    "status": a.get("status") or {"response": "none", "time": _NEVER},
                    "emailAddress": {
                        "name": (a.get("emailAddress") or {}).get("name")
                        or (a.get("emailAddress") or {}).get("address", ""),
                        "address": (a.get("emailAddress") or {}).get("address", ""),
                    },
                }
                for a in value or []
            ]
        elif key == "categories":
            value = [str(c) for c in value or []]
        elif key == "reminderMinutesBeforeStart" and not isinstance(value, int):
            raise _read_error("Cannot convert the literal to the expected type 'Edm.Int32'.")
        target[key] = value


def parse_dttz(value: Any, name: str) -> tuple[datetime, str, datetime]:
    """Parse a ``dateTimeTimeZone``; returns (UTC instant, zone name, naive wall time)."""
    if not isinstance(value, dict) or not value.get("dateTime"):
        raise GraphError(400, "ErrorInvalidRequest", f"The '{name}' property is required.")
    tz_name = str(value.get("timeZone") or "UTC")
    try:
        zone = resolve_zone(tz_name)
    except KeyError as exc:
        raise GraphError(
            400,
            "TimeZoneNotSupportedException",
            "A valid TimeZone value must be specified. The following TimeZone value is not "
            f"supported: '{tz_name}'.",
        ) from exc
    try:
        wall, had_offset = parse_iso(str(value["dateTime"]))
    except ValueError as exc:
        raise _read_error(f"Cannot convert the literal '{value['dateTime']}'.") from exc
    if had_offset:
        instant = wall.astimezone(UTC)
        wall = instant.astimezone(zone).replace(tzinfo=None)
    else:
        instant = wall.replace(tzinfo=zone).astimezone(UTC)
    return instant, tz_name, wall


def parse_times(
    body: dict[str, Any], current: tuple[datetime, datetime, str, str, bool] | None
) -> tuple[datetime, datetime, str, str, bool]:
    """Resolve start/end/isAllDay of a create or PATCH body against the current values."""
    all_day = bool(body.get("isAllDay", current[4] if current else False))
    if current is None or "start" in body or "end" in body or "isAllDay" in body:
        if current is None and ("start" not in body or "end" not in body):
            raise GraphError(
                400,
                "ErrorInvalidRequest",
                "Your request can't be completed. Start and end are required.",
            )
        if "start" in body:
            start, start_tz, start_wall = parse_dttz(body["start"], "start")
        else:
            assert current is not None
            start, start_tz = current[0], current[2]
            start_wall = start.astimezone(resolve_zone(start_tz)).replace(tzinfo=None)
        if "end" in body:
            end, end_tz, end_wall = parse_dttz(body["end"], "end")
        else:
            assert current is not None
            end, end_tz = current[1], current[3]
            end_wall = end.astimezone(resolve_zone(end_tz)).replace(tzinfo=None)
        if all_day:
            if start_wall.time() != time(0) or end_wall.time() != time(0):
                raise GraphError(
                    400,
                    "ErrorInvalidRequest",
                    "Your request can't be completed. An all-day event must start and end at "
                    "midnight.",
                )
            start = start_wall.replace(tzinfo=UTC)
            end = end_wall.replace(tzinfo=UTC)
        if end < start:
            raise GraphError(
                400,
                "ErrorInvalidRequest",
                "Your request can't be completed. The end date for the event can't be before "
                "the start date.",
            )
        if all_day and end == start:
            raise GraphError(
                400, "ErrorInvalidRequest", "An all-day event must last at least one day."
            )
        return start, end, start_tz, end_tz, all_day
    return current


def apply_ext(target: dict[str, list[str]], value: Any) -> None:
    if not isinstance(value, list):
        raise _read_error("Cannot read the value of property 'singleValueExtendedProperties'.")
    for prop in value:
        pid = str((prop or {}).get("id") or "")
        if not _EXT_ID.match(pid):
            raise GraphError(400, "ErrorInvalidProperty", f"The property ID '{pid}' is not valid.")
        target[pid.lower()] = [pid, str(prop.get("value") if prop.get("value") is not None else "")]


def new_item(
    body: dict[str, Any], calendar_id: str, organizer: dict[str, Any], now: datetime
) -> Item:
    check_properties(body)
    props = dict(DEFAULTS)
    apply_writable(props, body)
    start, end, start_tz, end_tz, all_day = parse_times(body, None)
    item = Item(
        id=new_item_id(),
        calendar_id=calendar_id,
        props=props,
        start=start,
        end=end,
        start_tz=start_tz,
        end_tz=end_tz,
        is_all_day=all_day,
        created=now,
        modified=now,
        change_key=new_change_key(),
        goid=rec.new_goid(now),
        organizer=organizer,
        transaction_id=body.get("transactionId") or None,
    )
    if body.get("recurrence") is not None:
        item.recurrence = rec.normalize(body["recurrence"])
    if "singleValueExtendedProperties" in body:
        apply_ext(item.ext, body["singleValueExtendedProperties"])
    return item


def patch_item(item: Item, body: dict[str, Any], now: datetime) -> None:
    """PATCH a single instance or series master. Changing the series' pattern or times drops
    its exceptions and cancellations (Exchange does the same)."""
    check_properties(body)
    if body.get("transactionId") and body["transactionId"] != item.transaction_id:
        raise GraphError(400, "ErrorInvalidRequest", "The transactionId can't be changed once set.")
    apply_writable(item.props, body)
    times = parse_times(body, (item.start, item.end, item.start_tz, item.end_tz, item.is_all_day))
    old_times = (item.start, item.end, item.is_all_day)
    item.start, item.end, item.start_tz, item.end_tz, item.is_all_day = times
    old_rec = item.recurrence
    if "recurrence" in body:
        item.recurrence = rec.normalize(body["recurrence"]) if body["recurrence"] else None
    if item.recurrence != old_rec or (item.recurrence and old_times != times[:2] + times[4:]):
        item.exceptions.clear()
        item.cancelled.clear()
    if "singleValueExtendedProperties" in body:
        apply_ext(item.ext, body["singleValueExtendedProperties"])
    item.touch(now)


def patch_instance(master: Item, key: str, body: dict[str, Any], now: datetime) -> None:
    """PATCH an occurrence (turning it into an exception) or an existing exception."""
    check_properties(body)
    if "recurrence" in body and body["recurrence"] is not None:
        raise GraphError(
            400, "ErrorInvalidRequest", "An occurrence of a series can't have a recurrence."
        )
    exc = master.exceptions.get(key)
    if exc is None:
        orig = rec.key_to_dt(key)
        exc = ExceptionInstance(
            key=key,
            overrides={},
            start=orig,
            end=orig + (master.end - master.start),
            created=now,
            modified=now,
            change_key=new_change_key(),
        )
    apply_writable(exc.overrides, body)
    times = parse_times(
        body, (exc.start, exc.end, master.start_tz, master.end_tz, master.is_all_day)
    )
    exc.start, exc.end = times[0], times[1]
    if "singleValueExtendedProperties" in body:
        apply_ext(exc.ext, body["singleValueExtendedProperties"])
    exc.modified = now
    exc.change_key = new_change_key()
    master.exceptions[key] = exc
    master.touch(now)
