"""Graph ``event`` JSON <-> the neutral values of ``domain/remote.py``.

Reading: every instance Graph lists (``singleInstance``, ``occurrence``, ``exception``) is its
own :class:`RemoteItem` — on Graph each occurrence is an object with its own id, so
``recurrence_id`` stays None and series members carry ``is_series`` and the series' id as
``uid``. Times are requested in UTC (``Prefer: outlook.timezone="UTC"``) and turned back into
wall-clock time in the zone the event was made in (``originalStartTimeZone``, a Windows or IANA
name), so 09:00 "W. Europe Standard Time" is 09:00 Europe/Berlin, whatever the season.

Writing: a zone is sent as its Windows name when that name maps back to the same IANA zone
(Europe/Berlin <-> "W. Europe Standard Time"), else as the IANA name (Europe/Amsterdam), so an
event keeps exactly the zone it had. All-day events are midnight-to-midnight with ``isAllDay``
and an exclusive end date, as in the booking system.

Our creates carry a ``transactionId`` derived from the booking's key (Graph de-duplicates a
retried POST with it) and a single-value extended property holding the key. Delta listings
cannot ``$expand`` extended properties, so the key is read back from the ``transactionId``, or
from the property when it was expanded (single reads).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calbridge.domain.email import normalize_email
from calbridge.domain.event import EventTimes, Status, check_text, make_times
from calbridge.domain.remote import (
    EventFields,
    RemoteEvent,
    RemoteItem,
    RemoteOccurrence,
    RemoteRef,
    RemoteRejection,
)
from calbridge.domain.rooms import RoomAttendee, merge_room_attendees
from calbridge.domain.windows_zones import IANA_ALIASES, iana_to_windows, windows_to_iana
from calbridge.errors import BadEmail, BadEvent

KEY_PROPERTY = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name calbridgeKey"
TRANSACTION_PREFIX = "calbridge-"
NO_TITLE = "(no title)"
SERIES_TYPES = ("occurrence", "exception")
_UTC_NAMES = {
    "utc",
    "etc/utc",
    "gmt",
    "etc/gmt",
    "z",
    "tzone://microsoft/utc",
    "coordinated universal time",
}
# CLDR still names some zones by their old IANA ids (Asia/Calcutta); people use the new ones.
_MODERN = {old: new for new, old in IANA_ALIASES.items() if not old.startswith("Etc/")}
_FRACTION = re.compile(r"\.(\d+)")


def transaction_id(key: str) -> str:
    return TRANSACTION_PREFIX + key


def iana_zone(graph_name: str | None) -> str | None:
    """The IANA zone for a Graph time-zone name (Windows or IANA), or None if unknown."""
    name = (graph_name or "").strip()
    if not name:
        return None
    if name.lower() in _UTC_NAMES:
        return "UTC"
    from_windows = windows_to_iana(name)
    if from_windows is not None:
        return _MODERN.get(from_windows, from_windows)
    if name.startswith(("/", ".")) or ".." in name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    return name


def graph_zone(iana: str | None) -> str:
    """The name to send for an IANA zone: Windows when it round-trips, else the IANA name.
    Floating times (no zone) have no Graph equivalent and are written as UTC."""
    if iana is None or iana == "UTC":
        return "UTC"
    windows = iana_to_windows(iana)
    if windows is not None and iana_zone(windows) == iana:
        return windows
    return iana


# ------------------------------------------------------------------ reading


def item_of(raw: dict[str, Any]) -> RemoteItem | RemoteRejection:
    """One Graph event instance as a RemoteItem, or a rejection with the reason."""
    ref = RemoteRef(str(raw.get("id") or ""), raw.get("@odata.etag") or _etag(raw))
    series = raw.get("type") in SERIES_TYPES
    uid = str((raw.get("seriesMasterId") if series else None) or raw.get("iCalUId") or ref.id)
    try:
        fields = fields_of(raw)
        organizer = organizer_of(raw)
    except (BadEvent, BadEmail) as exc:
        return RemoteRejection(ref.id, uid, f"{_title(raw)}: {exc}")
    return RemoteItem(
        ref=ref,
        uid=uid,
        organizer=organizer,
        occurrences=(RemoteOccurrence(None, fields),),
        key=key_of(raw),
        is_series=series,
        updated=_instant(raw.get("lastModifiedDateTime")),
        rooms=rooms_of(raw),
    )


#: Graph's ``responseType`` → the neutral answer (domain/rooms.py)
_ANSWERS = {"accepted": "accepted", "declined": "declined", "tentativelyAccepted": "tentative"}


def rooms_of(raw: dict[str, Any]) -> tuple[RoomAttendee, ...]:
    """The room mailboxes among the attendees (``type: resource``), with their answer (a room
    mailbox declines when it is busy)."""
    rooms = []
    for attendee in raw.get("attendees") or []:
        if not isinstance(attendee, dict) or attendee.get("type") != "resource":
            continue
        email = attendee.get("emailAddress") or {}
        address = str(email.get("address") or "").strip() if isinstance(email, dict) else ""
        if not address:
            continue
        status = attendee.get("status") or {}
        answer = _ANSWERS.get(str(status.get("response")), "needs-action")
        name = email.get("name") if isinstance(email.get("name"), str) else None
        rooms.append(RoomAttendee(address, name, answer))
    return tuple(rooms)


def rooms_body(
    rooms: tuple[RoomAttendee, ...],
    location: str | None,
    current: dict[str, Any] | None = None,
    managed: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Room mailboxes as resource attendees and as ``locations`` (the location text stays).
    ``current``: the event as it is — Graph replaces the whole attendee list on a PATCH, so
    its attendees and locations we did not put there (guests, other resources) are kept and
    only the rooms we manage change (:func:`calbridge.domain.rooms.merge_room_attendees`)."""
    now = current or {}
    attendees = merge_room_attendees(
        [a for a in now.get("attendees") or [] if isinstance(a, dict)],
        rooms,
        managed,
        _attendee_address,
        lambda r: {
            "type": "resource",
            "emailAddress": {"address": r.address, "name": r.name or r.address},
        },
    )
    places = merge_room_attendees(
        [
            p
            for p in now.get("locations") or []
            if isinstance(p, dict) and p.get("locationEmailAddress")
        ],
        rooms,
        managed,
        lambda p: str(p.get("locationEmailAddress") or ""),
        lambda r: {
            "displayName": r.name or r.address,
            "locationEmailAddress": r.address,
            "locationType": "conferenceRoom",
        },
    )
    return {
        "attendees": attendees,
        "locations": places,
        "location": {"displayName": location or ""},
    }


def _attendee_address(attendee: dict[str, Any]) -> str:
    email = attendee.get("emailAddress")
    return str(email.get("address") or "") if isinstance(email, dict) else ""


def _etag(raw: dict[str, Any]) -> str | None:
    change_key = raw.get("changeKey")
    return f'W/"{change_key}"' if change_key else None


def _title(raw: dict[str, Any]) -> str:
    subject = str(raw.get("subject") or "").strip() or NO_TITLE
    return f"event '{subject[:80]}'"


def key_of(raw: dict[str, Any]) -> str | None:
    for prop in raw.get("singleValueExtendedProperties") or []:
        if str(prop.get("id", "")).lower() == KEY_PROPERTY.lower() and prop.get("value"):
            return str(prop["value"])
    txn = raw.get("transactionId")
    if isinstance(txn, str) and txn.startswith(TRANSACTION_PREFIX):
        return txn[len(TRANSACTION_PREFIX) :]
    return None


def organizer_of(raw: dict[str, Any]) -> str | None:
    """``organizer.emailAddress.address``; BadEmail when present but not an address."""
    organizer = raw.get("organizer")
    if organizer is None:
        return None
    if not isinstance(organizer, dict) or not isinstance(organizer.get("emailAddress"), dict):
        raise BadEmail("the organizer is malformed (no emailAddress)")
    address = str(organizer["emailAddress"].get("address") or "").strip()
    if not address:
        return None
    try:
        normalize_email(address)
    except BadEmail as exc:
        raise BadEmail(f"the organizer is malformed: {exc}") from exc
    return address


def fields_of(raw: dict[str, Any]) -> EventFields:
    name = str(raw.get("subject") or "")
    name = name if name.strip() else NO_TITLE
    location = str((raw.get("location") or {}).get("displayName") or "") or None
    notes = _notes(raw.get("body"))
    check_text(name, location, notes)
    return EventFields(name, times_of(raw), location, notes, status_of(raw))


def status_of(raw: dict[str, Any]) -> Status:
    if raw.get("isCancelled"):
        return "cancelled"
    return "tentative" if raw.get("showAs") == "tentative" else "confirmed"


def _notes(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    content = str(body.get("content") or "")
    if str(body.get("contentType", "text")).lower() == "html":
        content = re.sub(r"(?is)<(script|style|head).*?</\1>", "", content)
        content = re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", content)
        content = html.unescape(re.sub(r"<[^>]+>", "", content)).strip()
    return content or None


def times_of(raw: dict[str, Any]) -> EventTimes:
    start, end = raw.get("start"), raw.get("end")
    if not isinstance(start, dict) or not start.get("dateTime"):
        raise BadEvent("the event has no start")
    if not isinstance(end, dict) or not end.get("dateTime"):
        raise BadEvent("the event has no end")
    if raw.get("isAllDay"):
        return make_times(
            _wall(start["dateTime"]).date(),
            _wall(end["dateTime"]).date(),
            all_day=True,
            timezone=None,
        )
    original = raw.get("originalStartTimeZone") or start.get("timeZone")
    zone = iana_zone(original)
    if zone is None:
        raise BadEvent(
            f"unknown time zone '{str(original)[:80]}' (not a Windows or IANA zone name); "
            "set the event's time zone in Outlook"
        )
    start_utc, end_utc = _utc(start), _utc(end)
    tz = ZoneInfo(zone)
    return make_times(
        start_utc.astimezone(tz).replace(tzinfo=None),
        end_utc.astimezone(tz).replace(tzinfo=None),
        all_day=False,
        timezone=zone,
    )


def _wall(text: str) -> datetime:
    """A ``dateTimeTimeZone.dateTime`` (7 fractional digits, no offset) as a naive datetime."""
    value = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), str(text).strip())
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadEvent(f"'{str(text)[:40]}' is not a date-time") from exc
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _utc(dttz: dict[str, Any]) -> datetime:
    wall = _wall(dttz["dateTime"])
    zone = iana_zone(dttz.get("timeZone") or "UTC")
    if zone is None:
        raise BadEvent(f"unknown time zone '{str(dttz.get('timeZone'))[:80]}'")
    return wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def _instant(text: Any) -> datetime | None:
    if not text:
        return None
    try:
        return _wall(str(text))
    except BadEvent:
        return None


# ------------------------------------------------------------------ writing


def event_body(fields: EventFields) -> dict[str, Any]:
    """The Graph properties calbridge owns (for POST and PATCH alike)."""
    times = fields.times
    zone = "UTC" if times.all_day else graph_zone(times.timezone)
    return {
        "subject": fields.name,
        "body": {"contentType": "text", "content": fields.notes or ""},
        "location": {"displayName": fields.location or ""},
        "isAllDay": times.all_day,
        "start": {"dateTime": _graph_time(times.start), "timeZone": zone},
        "end": {"dateTime": _graph_time(times.end), "timeZone": zone},
        "showAs": "tentative" if fields.status == "tentative" else "busy",
    }


def create_body(event: RemoteEvent) -> dict[str, Any]:
    return {
        **write_body(event),
        "transactionId": transaction_id(event.key),
        "singleValueExtendedProperties": [{"id": KEY_PROPERTY, "value": event.key}],
    }


def write_body(event: RemoteEvent, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """``event_body`` plus the rooms when the calendar sends rooms as resources (``current``:
    the event as it is now, for an update; see :func:`rooms_body`)."""
    body = event_body(event.fields)
    if event.rooms is not None:
        body.update(rooms_body(event.rooms, event.fields.location, current, event.managed_rooms))
    return body


def _graph_time(value: datetime | date) -> str:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value.strftime("%Y-%m-%dT%H:%M:%S")


def written_uid(raw: dict[str, Any]) -> str:
    if raw.get("type") in SERIES_TYPES and raw.get("seriesMasterId"):
        return str(raw["seriesMasterId"])
    return str(raw.get("iCalUId") or raw.get("id") or "")
