"""Google Calendar ``Event`` resources ⇄ the neutral values of ``domain/remote.py``.

Pure functions over the JSON the API returns; no I/O.
:mod:`calbridge.providers.google.provider` does the talking.

Reading never trusts the server: anything the booking system cannot store raises
:class:`BadRemoteEvent` (the provider turns it into a :class:`RemoteRejection`).

* Times: ``date`` (all-day, exclusive end) or ``dateTime`` + ``timeZone``. The API renders a
  ``dateTime`` with an offset, in whatever zone it likes (the event's own, or the calendar's), so
  it is read as an *instant* and turned into wall-clock time in the event's ``timeZone`` (the
  start's, else the end's, else the calendar's). Compare instants, never strings.
* Booker: ``creator.email``, falling back to ``organizer.email`` (SPEC §2); a malformed one is a
  rejection, not a wrong assignment.
* Series: a master (``recurrence`` lines) plus its exceptions (events carrying
  ``recurringEventId`` + ``originalStartTime``) become one :class:`RemoteItem` through the same
  expansion CalDAV uses (:func:`calbridge.domain.recurrence.expand`). A cancelled exception is an
  excluded occurrence (like EXDATE); the others are overrides.
* A series' etag is a digest of the master's etag and every exception's (id, etag): on Google an
  exception changes without touching the master's etag, and the engine treats an unchanged etag
  as "nothing new here".
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any

from calbridge.domain.email import normalize_email
from calbridge.domain.event import EventTimes, Status, check_text, make_times
from calbridge.domain.recurrence import Series, expand, parse_recurrence_id, recurrence_id
from calbridge.domain.remote import (
    EventFields,
    RemoteEvent,
    RemoteItem,
    RemoteOccurrence,
    RemoteRef,
    Window,
)
from calbridge.domain.rooms import RoomAttendee
from calbridge.errors import BadEmail, BadEvent, BadRemoteEvent

KEY_PROPERTY = "calbridgeKey"  # in extendedProperties.private: "calbridge created this event"
NO_TITLE = "(no title)"
_EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
_COMPACT = re.compile(r"^(\d{8})(T\d{6})?(Z)?$")

Json = dict[str, Any]


# ---------------------------------------------------------------- ids and keys


def event_id_for(key: str) -> str:
    """The client-chosen event id for our idempotency ``key`` (base32hex: ``a-v0-9``, 5–1024
    chars). The engine's keys already qualify and are used as they are; any other key maps to
    a digest, so a retried insert always asks for the same id."""
    if _EVENT_ID.match(key):
        return key
    return "cbh" + hashlib.sha256(key.encode()).hexdigest()


def key_of(event: Json) -> str | None:
    private = (event.get("extendedProperties") or {}).get("private") or {}
    value = private.get(KEY_PROPERTY) if isinstance(private, dict) else None
    return str(value) if value else None


def is_cancelled(event: Json) -> bool:
    return event.get("status") == "cancelled"


def master_id_of(event: Json) -> str | None:
    value = event.get("recurringEventId")
    return str(value) if value else None


def is_master(event: Json) -> bool:
    return bool(event.get("recurrence")) and master_id_of(event) is None


def series_etag(master: Json | None, exceptions: Iterable[Json]) -> str:
    parts = [str((master or {}).get("etag", ""))]
    parts += sorted(f"{e.get('id')}={e.get('etag', '')}" for e in exceptions)
    return '"s' + hashlib.sha256("|".join(parts).encode()).hexdigest()[:30] + '"'


# ---------------------------------------------------------------- reading


def times_of(start: Any, end: Any, calendar_zone: str) -> EventTimes:
    if not isinstance(start, dict) or not (start.get("date") or start.get("dateTime")):
        raise BadRemoteEvent("the event has no start")
    if not isinstance(end, dict) or not (end.get("date") or end.get("dateTime")):
        raise BadRemoteEvent("the event has no end")
    if start.get("date") or end.get("date"):
        if not (start.get("date") and end.get("date")):
            raise BadRemoteEvent("start and end must both be dates or both be date-times")
        return make_times(str(start["date"]), str(end["date"]), all_day=True, timezone=None)
    zone_name = start.get("timeZone") or end.get("timeZone") or calendar_zone
    return make_times(
        _moment(start["dateTime"], "start"),
        _moment(end["dateTime"], "end"),
        all_day=False,
        timezone=str(zone_name),
    )


def _moment(value: Any, what: str) -> datetime:
    """An RFC 3339 ``dateTime``: an instant when it has an offset (Google always sends one),
    else wall-clock time in the event's zone."""
    try:
        return datetime.fromisoformat(str(value).replace("z", "Z").replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRemoteEvent(f"{what} '{str(value)[:40]}' is not an RFC 3339 date-time") from exc


def fields_of(event: Json, calendar_zone: str) -> EventFields:
    name = str(event.get("summary") or "")
    name = name if name.strip() else NO_TITLE
    location = str(event["location"]) if event.get("location") else None
    notes = str(event["description"]) if event.get("description") else None
    check_text(name, location, notes)
    status: Status = "tentative" if event.get("status") == "tentative" else "confirmed"
    times = times_of(event.get("start"), event.get("end"), calendar_zone)
    return EventFields(name, times, location, notes, status)


def booker_of(event: Json) -> str | None:
    """``creator.email``, else ``organizer.email``; BadRemoteEvent when malformed."""
    for role in ("creator", "organizer"):
        person = event.get(role)
        if person is None:
            continue
        if not isinstance(person, dict):
            raise BadRemoteEvent(f"the event's {role} is malformed")
        raw = person.get("email")
        if raw is None or not str(raw).strip():
            continue
        try:
            normalize_email(str(raw))
        except BadEmail as exc:
            raise BadRemoteEvent(f"the event's {role} address is malformed: {exc}") from exc
        return str(raw).strip()
    return None


def _updated(events: Iterable[Json]) -> datetime | None:
    found: list[datetime] = []
    for event in events:
        try:
            moment = datetime.fromisoformat(str(event.get("updated", "")).replace("Z", "+00:00"))
        except ValueError:
            continue
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        found.append(moment)
    return max(found, default=None)


def single_item(event: Json, calendar_zone: str) -> RemoteItem:
    """A non-recurring event; raises BadRemoteEvent / BadEvent when it cannot be a booking."""
    return RemoteItem(
        ref=RemoteRef(str(event["id"]), event.get("etag")),
        uid=str(event.get("iCalUID") or event["id"]),
        organizer=booker_of(event),
        occurrences=(RemoteOccurrence(None, fields_of(event, calendar_zone)),),
        key=key_of(event),
        updated=_updated([event]),
        rooms=rooms_of(event),
    )


#: Google's responseStatus → the neutral answer (domain/rooms.py)
_ANSWERS = {"accepted": "accepted", "declined": "declined", "tentative": "tentative"}


def rooms_of(event: Json) -> tuple[RoomAttendee, ...]:
    """The room resources among the attendees (``resource: true``), with their answer: a
    Workspace room declines an invitation when it is busy."""
    rooms = []
    for attendee in event.get("attendees") or []:
        if not isinstance(attendee, dict) or not attendee.get("resource"):
            continue
        email = attendee.get("email")
        if isinstance(email, str) and email.strip():
            answer = _ANSWERS.get(str(attendee.get("responseStatus")), "needs-action")
            name = attendee.get("displayName")
            rooms.append(
                RoomAttendee(email.strip(), name if isinstance(name, str) else None, answer)
            )
    return tuple(rooms)


def attendees_body(rooms: tuple[RoomAttendee, ...]) -> list[Json]:
    """Room resources as Google attendees (``resource: true``)."""
    out: list[Json] = []
    for room in rooms:
        attendee: Json = {"email": room.address, "resource": True}
        if room.name:
            attendee["displayName"] = room.name
        out.append(attendee)
    return out


def series_item(
    master_id: str,
    master: Json | None,
    exceptions: list[Json],
    window: Window,
    calendar_zone: str,
) -> RemoteItem:
    """A whole series: every occurrence within ``window``. Without a master (one occurrence of
    someone else's series was shared with this calendar) each exception is its own
    occurrence."""
    principal = master if master is not None else exceptions[0]
    if master is not None:
        occurrences = expand(_series(master, exceptions, calendar_zone), window)
    else:
        occurrences = _orphans(exceptions, window, calendar_zone)
    return RemoteItem(
        ref=RemoteRef(master_id, series_etag(master, exceptions)),
        uid=str(principal.get("iCalUID") or master_id),
        organizer=booker_of(principal),
        occurrences=tuple(occurrences),
        key=key_of(principal),
        is_series=True,
        updated=_updated([principal, *exceptions]),
        rooms=rooms_of(principal),
    )


def _series(master: Json, exceptions: list[Json], calendar_zone: str) -> Series:
    fields = fields_of(master, calendar_zone)
    times = fields.times
    rules: list[str] = []
    rdates: list[datetime | date] = []
    exdates: set[str] = set()
    for line in master.get("recurrence") or []:
        name, params, values = _split_line(str(line))
        if name == "RRULE":
            rules.append(values)
        elif name in ("RDATE", "EXDATE"):
            ids = [_value_id(v, params, times) for v in values.split(",") if v.strip()]
            if name == "EXDATE":
                exdates.update(ids)
            else:
                rdates.extend(parse_recurrence_id(rid, times.timezone) for rid in ids)
        else:
            raise BadRemoteEvent(
                f"the recurrence line '{str(line)[:60]}' is not supported "
                "(only RRULE, RDATE and EXDATE lines are)"
            )
    overrides: dict[str, EventFields] = {}
    for exception in exceptions:
        rid = original_id(exception, times)
        if is_cancelled(exception):
            exdates.add(rid)
            continue
        try:
            overrides[rid] = fields_of(exception, calendar_zone)
        except BadEvent as exc:
            raise BadRemoteEvent(f"occurrence {rid}: {exc}") from exc
    return Series(fields, tuple(rules), tuple(rdates), frozenset(exdates), overrides)


def _orphans(exceptions: list[Json], window: Window, zone: str) -> list[RemoteOccurrence]:
    found = []
    for exception in exceptions:
        if is_cancelled(exception):
            continue
        fields = fields_of(exception, zone)
        rid = original_id(exception, fields.times)
        if window.start <= fields.times.utc_range()[0] < window.end:
            found.append(RemoteOccurrence(rid, fields))
    return found


def original_id(exception: Json, series: EventTimes) -> str:
    """The recurrence id of an exception from its ``originalStartTime`` (or its id's suffix,
    ``<masterId>_<recurrenceId>``), in the series' form."""
    original = exception.get("originalStartTime") or {}
    if isinstance(original, dict) and original.get("date"):
        value: str = str(original["date"]).replace("-", "")
    elif isinstance(original, dict) and original.get("dateTime"):
        moment = _moment(original["dateTime"], "originalStartTime")
        if moment.tzinfo is None:
            zone_name = original.get("timeZone") or series.timezone or "UTC"
            return recurrence_id(moment, str(zone_name))
        value = moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    else:
        value = str(exception.get("id", "")).rsplit("_", 1)[-1]
    return _value_id(value, {}, series)


def _split_line(line: str) -> tuple[str, dict[str, str], str]:
    head, sep, values = line.strip().partition(":")
    if not sep:
        raise BadRemoteEvent(f"the recurrence line '{line[:60]}' is malformed")
    name, *raw = head.split(";")
    params = {}
    for item in raw:
        key, _, value = item.partition("=")
        params[key.strip().upper()] = value.strip().strip('"')
    return name.strip().upper(), params, values.strip()


def _value_id(value: str, params: dict[str, str], series: EventTimes) -> str:
    """An EXDATE/RDATE value or original start, as the series' recurrence id."""
    match = _COMPACT.match(value.strip().upper().split("/", 1)[0])
    if match is None:
        raise BadRemoteEvent(f"'{value[:40]}' is not an iCalendar date or date-time")
    day, clock, utc = match.groups()
    try:
        if series.all_day:
            return day
        if clock is None:  # a date in a timed series: the series' own time of day
            assert isinstance(series.start, datetime)
            wall = datetime.strptime(day, "%Y%m%d").replace(
                hour=series.start.hour, minute=series.start.minute, second=series.start.second
            )
            return recurrence_id(wall, series.timezone)
        moment = datetime.strptime(day + clock, "%Y%m%dT%H%M%S")
        if utc:
            return recurrence_id(moment, "UTC")
        return recurrence_id(moment, params.get("TZID") or series.timezone)
    except ValueError as exc:
        raise BadRemoteEvent(f"'{value[:40]}' is not a valid date or date-time") from exc


# ---------------------------------------------------------------- writing


def event_body(fields: EventFields, calendar_zone: str, *, patch: bool = False) -> Json:
    """The fields calbridge owns, as an ``Event`` body. With ``patch`` an empty location or
    description is sent as ``null`` (clears it) and the unused half of start/end is nulled, so
    switching between all-day and timed works on a PATCH."""
    times = fields.times
    body: Json = {
        "summary": fields.name,
        "location": fields.location or None,
        "description": fields.notes or None,
        "status": fields.status,
        "start": _time_body(times.start, times, calendar_zone, patch),
        "end": _time_body(times.end, times, calendar_zone, patch),
    }
    if not patch:
        body = {k: v for k, v in body.items() if v is not None}
    return body


def _time_body(value: datetime | date, times: EventTimes, zone: str, patch: bool) -> Json:
    if times.all_day:
        out: Json = {"date": value.isoformat(), "dateTime": None, "timeZone": None}
    else:
        # A floating time (no zone: iCalendar's "wherever you are") has no Google form; it is
        # written in the calendar's zone, which is what a person looking at it expects.
        out = {"dateTime": value.isoformat(), "timeZone": times.timezone or zone, "date": None}
    return out if patch else {k: v for k, v in out.items() if v is not None}


def insert_body(event: RemoteEvent, calendar_zone: str) -> Json:
    body = event_body(event.fields, calendar_zone)
    body["id"] = event_id_for(event.key)
    body["extendedProperties"] = {"private": {KEY_PROPERTY: event.key}}
    if event.uid:
        body["iCalUID"] = event.uid
    if event.rooms:
        body["attendees"] = attendees_body(event.rooms)
    return body
