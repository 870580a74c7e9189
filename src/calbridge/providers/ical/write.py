"""Writing calbridge's changes into iCalendar objects.

Why edit in place rather than regenerate: a calendar event carries much that calbridge does not
model — attendees, alarms, other clients' X- properties, a language parameter on SUMMARY, a
Windows-named VTIMEZONE. :func:`apply_event` rewrites only the properties whose neutral value
actually changed, so everything else survives a round trip through the booking system.

Occurrences of a series are written inside the series' own object (SPEC §3: editing one
occurrence's booking writes an override, never a new series): an update with a recurrence id
writes a RECURRENCE-ID override (a copy of the master, so attendees and alarms carry over);
cancelling an occurrence is an override with ``STATUS:CANCELLED`` — it stays visible as
cancelled, and reads back as exactly what was written, so the engine sees its own echo.
Deleting an occurrence (:func:`exclude_occurrence`) adds an EXDATE and drops any override.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from icalendar import Calendar, Component, Event
from icalendar.prop import vCalAddress, vText

from calbridge.domain.event import EventTimes
from calbridge.domain.recurrence import parse_recurrence_id
from calbridge.domain.remote import EventFields, RemoteEvent
from calbridge.domain.rooms import RoomAttendee
from calbridge.errors import BadEvent, BadRemoteEvent
from calbridge.providers.ical.fields import KEY_PROPERTY, PRODID, STATUS_OUT
from calbridge.providers.ical.parse import (
    dates_of,
    events_of,
    fields_of,
    load,
    moment_of,
    occurrence_id_of,
    zones_of,
)

_SERIES_ONLY = ("RRULE", "RDATE", "EXDATE", "EXRULE")


def new_object(event: RemoteEvent, uid: str, now: datetime) -> bytes:
    """A fresh VCALENDAR for a booking, stamped with our idempotency key."""
    if event.recurrence_id is not None:
        raise ValueError("an occurrence is written into its series with update(), not created")
    calendar = Calendar()
    calendar.add("PRODID", PRODID)
    calendar.add("VERSION", "2.0")
    component = Event()
    component.add("UID", uid)
    component.add("DTSTAMP", now)
    component.add("CREATED", now)
    component.add("LAST-MODIFIED", now)
    component.add("SEQUENCE", 0)
    component.add(KEY_PROPERTY, event.key)
    write_fields(component, event.fields, current=None)
    write_rooms(component, event.rooms)
    calendar.add_component(component)
    _add_zones(calendar, event.fields.times)
    return bytes(calendar.to_ical())


def apply_event(data: str | bytes, event: RemoteEvent, now: datetime) -> bytes:
    """``data`` with ``event``'s fields written into the event (or into the override of
    ``event.recurrence_id``, made if missing), SEQUENCE bumped, all else kept."""
    calendar = load(data)
    zones = zones_of(calendar)
    events = events_of(calendar)
    if event.recurrence_id is None:
        target = _master(events) or events[0]
    else:
        target = _override(calendar, events, event.recurrence_id)
    try:
        current: EventFields | None = fields_of(target, zones)
    except BadEvent:
        current = None  # unreadable before: write every field
    write_fields(target, event.fields, current)
    write_rooms(target, event.rooms)
    _touch(target, now)
    _add_zones(calendar, event.fields.times)
    return bytes(calendar.to_ical())


def exclude_occurrence(data: str | bytes, rid: str, now: datetime) -> bytes | None:
    """``data`` with occurrence ``rid`` removed: an EXDATE on the master, its override dropped.
    None when it is already excluded; ``b""`` when nothing would be left (delete the object)."""
    calendar = load(data)
    zones = zones_of(calendar)
    events = events_of(calendar)
    master = _master(events)
    dropped = [e for e in events if _rid_of(e, master, zones) == rid]
    for component in dropped:
        calendar.subcomponents.remove(component)
    if master is None:
        remaining = [c for c in calendar.subcomponents if c.name == "VEVENT"]
        return (bytes(calendar.to_ical()) if remaining else b"") if dropped else None
    series = fields_of(master, zones).times
    excluded = {occurrence_id_of(m, series) for m in dates_of(master, "EXDATE", zones)}
    if rid in excluded and not dropped:
        return None
    if rid not in excluded:
        value, params = _series_value(master, rid, series)
        master.add("EXDATE", value, parameters=params)
    _touch(master, now)
    return bytes(calendar.to_ical())


def write_rooms(component: Component, rooms: tuple[RoomAttendee, ...] | None) -> None:
    """Make the event's room attendees (``ATTENDEE;CUTYPE=ROOM``) exactly ``rooms``, keeping a
    room's answer (``PARTSTAT``) and every other attendee; None leaves the attendees alone."""
    if rooms is None:
        return
    found = component.get("ATTENDEE")
    values = found if isinstance(found, list) else [] if found is None else [found]
    wanted = {room.address.lower(): room for room in rooms}
    kept = []
    for value in values:
        params = getattr(value, "params", {}) or {}
        address = str(value).strip().lower().removeprefix("mailto:")
        if str(params.get("CUTYPE", "")).upper() == "ROOM":
            if address not in wanted:
                continue
            wanted.pop(address)
        kept.append(value)
    component.pop("ATTENDEE", None)
    for value in kept:
        component.add("ATTENDEE", value, encode=False)
    for room in wanted.values():
        params = {"CUTYPE": "ROOM", "ROLE": "NON-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION"}
        if room.name:
            params["CN"] = room.name
        component.add("ATTENDEE", vCalAddress(f"mailto:{room.address}"), parameters=params)


def write_fields(component: Component, fields: EventFields, current: EventFields | None) -> None:
    """Set the properties whose value differs from ``current`` (all when it is None)."""
    if current is None or current.name != fields.name:
        _replace(component, "SUMMARY", fields.name)
    if current is None or current.times != fields.times:
        for name in ("DTSTART", "DTEND", "DURATION"):
            component.pop(name, None)
        _add_time(component, "DTSTART", fields.times.start, fields.times)
        _add_time(component, "DTEND", fields.times.end, fields.times)
    if current is None or current.location != fields.location:
        _replace(component, "LOCATION", fields.location or None)
    if current is None or current.notes != fields.notes:
        _replace(component, "DESCRIPTION", fields.notes or None)
    if current is None or current.status != fields.status:
        _replace(component, "STATUS", STATUS_OUT[fields.status])


def _add_zones(calendar: Calendar, times: EventTimes) -> None:
    """VTIMEZONEs for the zones used, covering a few years around the event rather than
    icalendar's default 1970–2038 (70 years of transitions make every read slower)."""
    year = times.start.year
    calendar.add_missing_timezones(date(max(1, year - 1), 1, 1), date(min(9999, year + 3), 1, 1))


class ExactText(vText):
    """TEXT escaped exactly as RFC 5545 §3.3.11 says. icalendar's own escaping turns a literal
    backslash-N into a line break, so a booking's notes would not round-trip."""

    def to_ical(self) -> bytes:
        text = str(self).replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
        return text.encode("utf-8")


def _replace(component: Component, name: str, value: str | None) -> None:
    component.pop(name, None)
    if value is not None:
        component.add(name, ExactText(value) if name != "STATUS" else value)


def _add_time(component: Component, name: str, value: date | datetime, times: EventTimes) -> None:
    if times.all_day or times.timezone is None:
        component.add(name, value)
    elif times.timezone == "UTC" and isinstance(value, datetime):
        component.add(name, value.replace(tzinfo=UTC))
    else:
        component.add(name, value, parameters={"TZID": times.timezone})


def _touch(component: Component, now: datetime) -> None:
    sequence = int(str(component.get("SEQUENCE", 0)) or 0)
    for name, value in (("SEQUENCE", sequence + 1), ("LAST-MODIFIED", now), ("DTSTAMP", now)):
        component.pop(name, None)
        component.add(name, value)


def _master(events: list[Component]) -> Component | None:
    return next((e for e in events if "RECURRENCE-ID" not in e), None)


def _rid_of(component: Component, master: Component | None, zones: dict[str, Any]) -> str | None:
    moment = moment_of(component, "RECURRENCE-ID", zones)
    if moment is None:
        return None
    series = fields_of(master or component, zones).times
    return occurrence_id_of(moment, series)


def _override(calendar: Calendar, events: list[Component], rid: str) -> Component:
    """The override for ``rid``, or a new one copied from the master."""
    zones = zones_of(calendar)
    master = _master(events)
    for component in events:
        if _rid_of(component, master, zones) == rid:
            return component
    if master is None:
        raise BadRemoteEvent(f"the series has no master event to add occurrence {rid} to")
    series = fields_of(master, zones).times
    override = Event.from_ical(master.to_ical())
    for name in (*_SERIES_ONLY, "RECURRENCE-ID"):
        override.pop(name, None)
    value, params = _series_value(master, rid, series)
    override.add("RECURRENCE-ID", value, parameters=params)
    calendar.add_component(override)
    return override


def _series_value(
    master: Component, rid: str, series: EventTimes
) -> tuple[date | datetime, dict[str, str]]:
    """Occurrence ``rid``'s original start written the way the master writes DTSTART (same
    value type, same TZID string, so it resolves through the same VTIMEZONE)."""
    value = parse_recurrence_id(rid, None if series.all_day else series.timezone)
    if series.all_day:
        return (value.date() if isinstance(value, datetime) else value), {}
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if series.timezone is None:
        return value, {}
    if series.timezone == "UTC" and "TZID" not in master["DTSTART"].params:
        return value.replace(tzinfo=UTC), {}
    return value, {"TZID": str(master["DTSTART"].params.get("TZID", series.timezone))}
