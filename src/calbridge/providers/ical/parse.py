"""Reading iCalendar objects into the neutral values of ``domain/remote.py``.

:func:`parse_item` never raises for a bad object: anything the booking system cannot store
becomes a :class:`RemoteRejection` whose reason a person can act on, so the rest of the calendar
still syncs (SPEC §3). A plain single event goes through the fast line reader (``ical.fast``);
series, custom time zones and anything unusual through icalendar here. Writing is
``ical.write``; the rules both readers share are ``ical.fields``.

Time zones: a ``TZID`` is kept as the IANA name it denotes, with wall-clock times, so
``DTSTART;TZID=Europe/Berlin:20270305T090000`` round-trips exactly. Vendor-prefixed ids
(``/mozilla.org/…/Europe/Berlin``), Windows names (``W. Europe Standard Time``) and a VTIMEZONE's
``X-LIC-LOCATION`` are mapped to IANA names; a TZID none of these explain is a rejection.
iCalendar text cannot carry a carriage return: CR and CRLF in text come back as LF.

What icalendar forgives is not imported: an object cut short (not ending with END:VCALENDAR,
BEGIN/END unpaired) and a line that is no property — a long line folded without its leading
space, which would silently cut a SUMMARY short — are rejections (:func:`check_structure`).

Not modelled (kept untouched, but not interpreted): ``RANGE=THISANDFUTURE`` overrides (treated
as single-occurrence overrides), RDATE periods' own durations (the series' length is used), an
EXDATE given as a DATE on a timed series (it matches no occurrence).
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from calbridge.domain.event import EventTimes
from calbridge.domain.recurrence import Series, expand, parse_recurrence_id, recurrence_id
from calbridge.domain.remote import (
    EventFields,
    RemoteItem,
    RemoteOccurrence,
    RemoteRef,
    RemoteRejection,
    Window,
)
from calbridge.domain.rooms import RoomAttendee
from calbridge.errors import BadEmail, BadEvent, BadRemoteEvent
from calbridge.providers.ical.fast import read_simple
from calbridge.providers.ical.fields import (
    KEY_PROPERTY,
    Moment,
    fields_from,
    is_iana,
    organizer_from,
    times_from,
    zone_named,
)

if TYPE_CHECKING:  # icalendar itself is imported when an object needs it (not by ical.fast)
    from icalendar import Calendar, Component

logger = logging.getLogger(__name__)
Zones = dict[str, str]  # TZID of each VTIMEZONE → its X-LIC-LOCATION ("" when none)

_VTIMEZONE = re.compile(r"^BEGIN:VTIMEZONE\r?\n.*?^END:VTIMEZONE\r?\n", re.M | re.S)
_TZID_LINE = re.compile(r"^TZID:([^\r\n]*)\r?\n(?![ \t])", re.M)
_UNFOLD = re.compile(r"\r?\n[ \t]")
_UID_LINE = re.compile(r"^UID:([^\r\n]{0,1024})", re.M)
_CONTENT_LINE = re.compile(r"([A-Za-z0-9-]+)(?:;[^:]*)?:")


# ---------------------------------------------------------------- reading


def parse_item(ref: RemoteRef, data: str | bytes, window: Window) -> RemoteItem | RemoteRejection:
    """One calendar object as a :class:`RemoteItem`, or the reason it cannot be imported.
    The common single event is read by ``ical.fast``; everything else by icalendar."""
    simple = read_simple(ref, data, window)
    return simple if simple is not None else parse_full(ref, data, window)


def parse_full(ref: RemoteRef, data: str | bytes, window: Window) -> RemoteItem | RemoteRejection:
    """:func:`parse_item` by icalendar alone, for any object (and to check ``ical.fast``)."""
    uid: str | None = None
    try:
        text = _without_iana_zones(data)
        found = _UID_LINE.search(text)
        uid = found.group(1).strip() or None if found else None
        check_structure(text)
        calendar = load(text)
        events = events_of(calendar)
        uid = str(events[0].get("UID", "")).strip() or None
        return _item(ref, uid, events, zones_of(calendar), window)
    except (BadEvent, BadEmail) as exc:
        return RemoteRejection(ref.id, uid, str(exc))
    except Exception as exc:  # a last resort: one odd object must not stop the calendar's sync
        logger.warning("unreadable calendar object", extra={"href": ref.id}, exc_info=True)
        return RemoteRejection(
            ref.id, uid, f"the calendar object could not be read ({type(exc).__name__}: {exc})"
        )


def check_structure(text: str) -> None:
    """What icalendar forgives but must not be imported: an object cut short (its last line is
    not ``END:VCALENDAR``, or BEGIN/END do not pair up) and a line that is not a property — a
    long line folded without the leading space, which would silently cut a SUMMARY short."""
    stack: list[str] = []
    closed = False
    # only CRLF/LF end a content line (str.splitlines would also split at U+2028 and the like)
    for number, line in enumerate(_UNFOLD.sub("", text).split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip(" \t"):
            continue
        if closed:
            raise BadRemoteEvent(f"the calendar object goes on after END:VCALENDAR (line {number})")
        if not stack and line.strip().upper() != "BEGIN:VCALENDAR":
            raise BadRemoteEvent(
                f"the calendar object is not valid iCalendar (it begins with '{line[:40]}', "
                "not BEGIN:VCALENDAR)"
            )
        match = _CONTENT_LINE.match(line)
        if match is None:
            raise BadRemoteEvent(
                f"line {number} of the calendar object is not an iCalendar property "
                f"('{line[:40]}'): a long line folded without its leading space? Importing it "
                "would cut the text before it short"
            )
        name = match.group(1).upper()
        if name in ("BEGIN", "END"):
            component = line[match.end() :].strip().upper()
            if name == "BEGIN":
                stack.append(component)
            elif not stack or stack.pop() != component:
                raise BadRemoteEvent(
                    f"END:{component[:40]} on line {number} closes no open component; "
                    "the calendar object is cut or damaged"
                )
            closed = not stack
    if not closed:
        raise BadRemoteEvent("the calendar object is cut short: it does not end with END:VCALENDAR")


def load(data: str | bytes) -> Calendar:
    """Parse iCalendar text; BadRemoteEvent when it is not iCalendar at all."""
    from icalendar import Calendar

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            calendar = Calendar.from_ical(data)
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise BadRemoteEvent(f"the calendar object is not valid iCalendar ({exc})") from exc
    if not isinstance(calendar, Calendar) or calendar.name != "VCALENDAR":
        raise BadRemoteEvent("the calendar object is not a VCALENDAR")
    return calendar


def _without_iana_zones(data: str | bytes) -> str:
    """``data`` minus the VTIMEZONEs of IANA-named zones: the tz database defines those, and
    parsing their rules is most of icalendar's work on a typical object (reading only)."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    if "BEGIN:VTIMEZONE" not in text:
        return text

    def keep(match: re.Match[str]) -> str:
        tzid = _TZID_LINE.search(match.group(0))
        return "" if tzid and is_iana(tzid.group(1).strip()) else match.group(0)

    return _VTIMEZONE.sub(keep, text)


def key_of(data: str | bytes) -> str | None:
    """The idempotency key calbridge stamped on an object, if any (None if unreadable)."""
    try:
        events = events_of(load(data))
    except BadRemoteEvent:
        return None
    value = events[0].get(KEY_PROPERTY)
    return None if value is None else str(value)


def events_of(calendar: Calendar) -> list[Component]:
    events = [c for c in calendar.subcomponents if c.name == "VEVENT"]
    if not events:
        kinds = sorted({str(c.name) for c in calendar.subcomponents if c.name != "VTIMEZONE"})
        what = f" (it holds {', '.join(kinds)})" if kinds else ""
        raise BadRemoteEvent(f"the calendar object has no VEVENT{what}; only events are synced")
    return events


def zones_of(calendar: Calendar) -> Zones:
    return {
        str(c.get("TZID", "")): str(c.get("X-LIC-LOCATION", ""))
        for c in calendar.subcomponents
        if c.name == "VTIMEZONE"
    }


def _item(
    ref: RemoteRef,
    uid: str | None,
    events: list[Component],
    zones: Zones,
    window: Window,
) -> RemoteItem:
    if uid is None:
        raise BadRemoteEvent("the event has no UID")
    if any(str(e.get("UID", "")).strip() != uid for e in events):
        raise BadRemoteEvent("the calendar object holds events with different UIDs")
    masters = [e for e in events if "RECURRENCE-ID" not in e]
    overrides = [e for e in events if "RECURRENCE-ID" in e]
    if len(masters) > 1:
        raise BadRemoteEvent(
            f"the calendar object holds {len(masters)} events without RECURRENCE-ID; "
            "it must hold one event or one series"
        )
    principal = masters[0] if masters else overrides[0]
    organizer = organizer_from(_raw(principal.get("ORGANIZER")))
    key = principal.get(KEY_PROPERTY)
    updated = max((u for u in map(_updated, events) if u is not None), default=None)
    master = masters[0] if masters else None
    occurrences: tuple[RemoteOccurrence, ...]
    if master is not None and not overrides and not _repeats(master):
        occurrences = (RemoteOccurrence(None, fields_of(master, zones)),)
    else:
        occurrences = tuple(_occurrences(master, overrides, zones, window))
    return RemoteItem(
        ref=ref,
        uid=uid,
        organizer=organizer,
        occurrences=occurrences,
        key=None if key is None else str(key),
        is_series=master is None or _repeats(master) or bool(overrides),
        updated=updated,
        rooms=rooms_of(principal),
    )


def rooms_of(component: Component) -> tuple[RoomAttendee, ...]:
    """The rooms among an event's attendees (``ATTENDEE;CUTYPE=ROOM``), with their answer
    (``PARTSTAT``: a room that declined is busy)."""
    found = component.get("ATTENDEE")
    values = found if isinstance(found, list) else [] if found is None else [found]
    rooms = []
    for value in values:
        params = getattr(value, "params", {}) or {}
        if str(params.get("CUTYPE", "")).upper() != "ROOM":
            continue
        address = str(value).strip()
        if address.lower().startswith("mailto:"):
            address = address[7:]
        if not address:
            continue
        cn = params.get("CN")
        answer = str(params.get("PARTSTAT", "NEEDS-ACTION")).lower()
        rooms.append(RoomAttendee(address.strip(), str(cn) if cn else None, answer))
    return tuple(rooms)


def _repeats(master: Component) -> bool:
    return "RRULE" in master or "RDATE" in master


def _occurrences(
    master: Component | None,
    overrides: list[Component],
    zones: Zones,
    window: Window,
) -> list[RemoteOccurrence]:
    """Expand a series; without a master (an invitation to single occurrences) each override
    is its own occurrence."""
    if master is None:
        series_times = fields_of(overrides[0], zones).times
        changed = _overrides(overrides, zones, series_times)
        found = [RemoteOccurrence(rid, f) for rid, f in changed.items()]
        return [o for o in found if window.start <= o.fields.times.utc_range()[0] < window.end]
    fields = fields_of(master, zones)
    rules = tuple(str(rule.to_ical().decode()) for rule in _as_list(master.get("RRULE")))
    series = Series(
        fields=fields,
        rules=rules,
        rdates=tuple(_dates(master, "RDATE", zones, fields.times)),
        exdates=frozenset(
            occurrence_id_of(value, fields.times) for value in dates_of(master, "EXDATE", zones)
        ),
        overrides=_overrides(overrides, zones, fields.times),
    )
    return expand(series, window)


def _overrides(
    overrides: list[Component], zones: Zones, series: EventTimes
) -> dict[str, EventFields]:
    found: dict[str, EventFields] = {}
    for component in overrides:
        moment = moment_of(component, "RECURRENCE-ID", zones)
        assert moment is not None
        rid = occurrence_id_of(moment, series)
        try:
            found[rid] = fields_of(component, zones)
        except BadEvent as exc:
            raise BadRemoteEvent(f"occurrence {rid}: {exc}") from exc
    return found


def occurrence_id_of(moment: Moment, series: EventTimes) -> str:
    """The recurrence id of an EXDATE/RECURRENCE-ID value, in the series' form."""
    value, tz = moment
    if series.all_day:
        return recurrence_id(value if not isinstance(value, datetime) else value.date(), None)
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if series.timezone is None:
        return recurrence_id(value, None)
    return recurrence_id(value, tz or series.timezone)


def _dates(
    master: Component, name: str, zones: Zones, series: EventTimes
) -> Iterator[datetime | date]:
    """RDATE values as starts in the series' own wall-clock time (or dates)."""
    for moment in dates_of(master, name, zones):
        rid = occurrence_id_of(moment, series)
        yield parse_recurrence_id(rid, series.timezone)


def dates_of(master: Component, name: str, zones: Zones) -> Iterator[Moment]:
    for prop in _as_list(master.get(name)):
        tzid = prop.params.get("TZID")
        for item in _attr(prop, "dts") or ():
            value = item.dt[0] if isinstance(item.dt, tuple) else item.dt
            yield _resolve(value, tzid, zones)


def _attr(prop: Any, name: str) -> Any:
    """``prop.dt`` / ``prop.dts``, or None when icalendar kept the value as a broken one."""
    from icalendar.error import BrokenCalendarProperty

    try:
        return getattr(prop, name, None)
    except BrokenCalendarProperty:
        return None


def _as_list(value: Any) -> list[Any]:
    """icalendar gives one property object, or a list when the property repeats."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def fields_of(component: Component, zones: Zones) -> EventFields:
    """The shared fields of one VEVENT; BadEvent with the reason when it cannot be a booking."""
    times = times_from(
        moment_of(component, "DTSTART", zones),
        moment_of(component, "DTEND", zones),
        _duration(component),
    )
    return fields_from(
        _text(component, "SUMMARY"),
        _text(component, "LOCATION"),
        _text(component, "DESCRIPTION"),
        _text(component, "STATUS"),
        times,
    )


def _text(component: Component, name: str) -> str | None:
    value = component.get(name)
    if isinstance(value, list):
        value = value[0]
    return None if value is None else str(value)


def _raw(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0]
    return None if value is None else str(value)


def _duration(component: Component) -> timedelta | None:
    prop = component.get("DURATION")
    if prop is None:
        return None
    duration = _attr(prop, "dt")
    if not isinstance(duration, timedelta):
        raise BadRemoteEvent(f"DURATION '{prop.to_ical().decode()[:40]}' is not a duration")
    return duration


def moment_of(component: Component, name: str, zones: Zones) -> Moment | None:
    prop = component.get(name)
    if prop is None:
        return None
    if isinstance(prop, list):
        prop = prop[0]
    value = _attr(prop, "dt")
    if not isinstance(value, date):
        raw = prop.to_ical().decode(errors="replace")[:40] if hasattr(prop, "to_ical") else ""
        raise BadRemoteEvent(f"{name} '{raw}' is not a date or date-time")
    return _resolve(value, prop.params.get("TZID"), zones)


def _resolve(value: datetime | date, tzid: str | None, zones: Zones) -> Moment:
    """Wall-clock value and IANA zone for a parsed DATE/DATE-TIME and its TZID parameter."""
    if not isinstance(value, datetime):
        return value, None
    wall = value.replace(tzinfo=None)
    if tzid:
        return wall, zone_named(str(tzid), zones)
    if value.tzinfo is None:
        return wall, None
    if value.utcoffset() == timedelta(0):
        return value.astimezone(UTC).replace(tzinfo=None), "UTC"
    key = getattr(value.tzinfo, "key", None)
    if isinstance(key, str) and is_iana(key):
        return wall, key
    return value.astimezone(UTC).replace(tzinfo=None), "UTC"


def _updated(component: Component) -> datetime | None:
    for name in ("LAST-MODIFIED", "DTSTAMP"):
        value = _attr(component.get(name), "dt")
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                value = value.astimezone(UTC).replace(tzinfo=None)
            return value
    return None
