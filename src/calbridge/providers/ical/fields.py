"""From iCalendar values to :class:`EventFields`: the rules both readers share.

``ical.parse`` (icalendar-based, handles everything) and ``ical.fast`` (a line reader for the common
single event) extract raw values differently but must agree exactly, so the decisions live here
once: which TZID names which IANA zone, how DTEND/DURATION/all-day defaults give the end, what
an empty SUMMARY becomes, which STATUS values count, when an organizer is malformed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from calbridge.domain.email import normalize_email
from calbridge.domain.event import EventTimes, Status, check_text, make_times
from calbridge.domain.remote import EventFields
from calbridge.errors import BadEmail, BadRemoteEvent

KEY_PROPERTY = "X-CALBRIDGE-KEY"
PRODID = "-//calbridge//calbridge//EN"
NO_TITLE = "(no title)"
STATUS_IN: dict[str, Status] = {"TENTATIVE": "tentative", "CANCELLED": "cancelled"}
STATUS_OUT = {"tentative": "TENTATIVE", "confirmed": "CONFIRMED", "cancelled": "CANCELLED"}

Moment = tuple[datetime | date, str | None]  # wall-clock value (or date) and its IANA zone


def fields_from(
    summary: str | None,
    location: str | None,
    notes: str | None,
    status: str | None,
    times: EventTimes,
) -> EventFields:
    """The shared fields; BadEvent with the reason when they cannot be a booking."""
    name = summary if summary and summary.strip() else NO_TITLE
    check_text(name, location or None, notes or None)
    state = STATUS_IN.get((status or "").strip().upper(), "confirmed")
    return EventFields(name, times, location or None, notes or None, state)


def times_from(start: Moment | None, end: Moment | None, duration: timedelta | None) -> EventTimes:
    """Event times from DTSTART and DTEND or DURATION (RFC 5545 defaults when both are absent:
    one day for a date, zero length for a date-time)."""
    if start is None:
        raise BadRemoteEvent("the event has no start (DTSTART)")
    all_day = not isinstance(start[0], datetime)
    if end is None:
        end = _end_after(start, duration, all_day)
    if all_day:
        first = start[0]
        last = end[0].date() if isinstance(end[0], datetime) else end[0]
        if last == first:
            last = first + timedelta(days=1)  # DTEND = DTSTART on a date: a one-day event
        return make_times(first, last, all_day=True, timezone=None)
    return make_times(
        _aware(start), _aware(end, floating=start[1] is None), all_day=False, timezone=start[1]
    )


def _end_after(start: Moment, duration: timedelta | None, all_day: bool) -> Moment:
    value, tz = start
    if duration is None:
        return (value + timedelta(days=1), None) if all_day else start
    if all_day or not isinstance(value, datetime) or tz in (None, "UTC"):
        return value + duration, tz
    days = timedelta(days=duration.days)
    exact = duration - days  # the days are nominal, the rest exact time (RFC 5545 §3.3.6)
    wall = (value + days).replace(tzinfo=ZoneInfo(tz))
    moved = (wall.astimezone(UTC) + exact).astimezone(ZoneInfo(tz))
    return moved.replace(tzinfo=None), tz


def _aware(moment: Moment, *, floating: bool = False) -> datetime:
    value, tz = moment
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if floating or tz is None:
        return value.replace(tzinfo=None)
    return value.replace(tzinfo=ZoneInfo(tz))


def zone_named(tzid: str, locations: Mapping[str, str] | None = None) -> str:
    """The IANA zone for a TZID parameter, or the rejection reason when there is none."""
    name = iana_zone(tzid, locations)
    if name is None:
        raise BadRemoteEvent(
            f"unknown time zone '{tzid}' (not an IANA name, and no VTIMEZONE maps it to one)"
        )
    return name


def iana_zone(tzid: str, locations: Mapping[str, str] | None = None) -> str | None:
    """The IANA name a TZID denotes: itself, a Windows name's zone, the zone at the end of a
    vendor-prefixed id, or its VTIMEZONE's X-LIC-LOCATION (``locations``); None otherwise."""
    tzid = tzid.strip().strip('"')
    if is_iana(tzid):
        return tzid
    # icalendar's Windows table, loaded only for a TZID that is not an IANA name already
    from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

    candidates = [WINDOWS_TO_OLSON.get(tzid, "")]
    parts = [p for p in tzid.split("/") if p]
    candidates += ["/".join(parts[-n:]) for n in (3, 2, 1)]
    candidates.append((locations or {}).get(tzid, ""))
    for name in candidates:
        if name and is_iana(name):
            return name
    return None


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def is_iana(name: str) -> bool:
    return name in _known_zones()


def organizer_from(raw: str | None) -> str | None:
    """The raw ORGANIZER value (``mailto:`` kept; the engine normalises), validated here so a
    malformed one is a rejection rather than a wrong assignment. Empty counts as none."""
    value = (raw or "").strip()
    if not value or value.lower() == "mailto:":
        return None
    try:
        normalize_email(value)
    except BadEmail as exc:
        raise BadRemoteEvent(f"the organizer is malformed: {exc}") from exc
    return value
