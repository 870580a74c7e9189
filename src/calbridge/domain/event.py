"""Event values and their validation, shared by the CLI and the sync engine.

Times: a timed event keeps its *wall-clock* start/end and the IANA zone they are in, so that a
calendar's ``DTSTART;TZID=Europe/Berlin:20270305T090000`` round-trips exactly. ``timezone`` is
``None`` for a floating time (iCalendar's "local time wherever you are"); such events are
ordered as if they were UTC. All-day events hold dates with an *exclusive* end date, as in
iCalendar: 2027-03-05 → 2027-03-06 is one day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calbridge.errors import BadEvent

Status = Literal["tentative", "confirmed", "cancelled"]
STATUSES: tuple[Status, ...] = ("tentative", "confirmed", "cancelled")

MAX_NAME = 1_000
MAX_LOCATION = 1_000
MAX_NOTES = 256 * 1024


@dataclass(frozen=True)
class EventTimes:
    """When an event happens. ``start``/``end`` are dates when ``all_day`` else naive
    wall-clock datetimes in ``timezone`` (``None`` = floating)."""

    start: datetime | date
    end: datetime | date
    all_day: bool
    timezone: str | None

    def utc_range(self) -> tuple[datetime, datetime]:
        """Naive-UTC instants for ordering and horizon checks (worked out once: a pulled
        event's are asked for by validation, its booking row, its rooms and its snapshot)."""
        found: tuple[datetime, datetime] | None = self.__dict__.get("_utc")
        if found is None:
            found = (to_utc(self.start, self.timezone), to_utc(self.end, self.timezone))
            object.__setattr__(self, "_utc", found)
        return found

    def iso(self) -> tuple[str, str]:
        return self.start.isoformat(), self.end.isoformat()


def zone(name: str) -> ZoneInfo:
    """The IANA zone called ``name``, or BadEvent naming the unknown zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Europe", too long
        raise BadEvent(f"unknown time zone '{name}' (use an IANA name like Europe/Berlin)") from exc


def is_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this machine knows."""
    try:
        zone(name)
    except BadEvent:
        return False
    return True


def utcnow() -> datetime:
    """Now as the store keeps every timestamp: naive UTC, to the second."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def to_utc(value: datetime | date, timezone: str | None) -> datetime:
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    if timezone is None or timezone == "UTC":
        return value.replace(tzinfo=None)
    return value.replace(tzinfo=zone(timezone)).astimezone(UTC).replace(tzinfo=None)


def make_times(
    start: str | datetime | date,
    end: str | datetime | date,
    *,
    all_day: bool,
    timezone: str | None,
) -> EventTimes:
    """Parse and validate event times; raise BadEvent with a one-line reason."""
    if all_day:
        s, e = _as_date(start, "start"), _as_date(end, "end")
        if e <= s:
            raise BadEvent(
                f"all-day end {e} must be after start {s} (the end date is exclusive: "
                f"a one-day event on {s} ends on {s + timedelta(days=1)})"
            )
        return EventTimes(s, e, True, None)
    s_dt, s_zone = _as_datetime(start, "start")
    e_dt, e_zone = _as_datetime(end, "end")
    tz = timezone or s_zone or e_zone
    if tz is not None:
        zone(tz)
        s_dt = _in_zone(s_dt, s_zone, tz)
        e_dt = _in_zone(e_dt, e_zone, tz)
    times = EventTimes(s_dt, e_dt, False, tz)
    start_utc, end_utc = times.utc_range()
    if end_utc < start_utc:
        raise BadEvent(f"end {e_dt.isoformat()} is before start {s_dt.isoformat()}")
    return times


def _as_date(value: str | datetime | date, what: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise BadEvent(f"{what} '{value}' is not a date (YYYY-MM-DD) for an all-day event") from exc


def _as_datetime(value: str | datetime | date, what: str) -> tuple[datetime, str | None]:
    """A naive wall-clock datetime and the zone it was given in (offsets become UTC)."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date) or _is_date(value):
        raise BadEvent(f"{what} {value} is a date: pass --all-day, or give a time")
    else:
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise BadEvent(
                f"{what} '{value}' is not an ISO date-time (like 2027-03-05T09:00)"
            ) from exc
    if dt.tzinfo is None:
        return dt, None
    key = getattr(dt.tzinfo, "key", None)
    if isinstance(key, str):
        return dt.replace(tzinfo=None), key
    return dt.astimezone(UTC).replace(tzinfo=None), "UTC"


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value.strip())
    except ValueError:
        return False
    return True


def _in_zone(value: datetime, given: str | None, target: str) -> datetime:
    if given is None or given == target:
        return value
    source = UTC if given == "UTC" else zone(given)
    return value.replace(tzinfo=source).astimezone(zone(target)).replace(tzinfo=None)


def check_text(name: str, location: str | None, notes: str | None) -> None:
    """Reject empty names, oversized fields and NUL characters (which PostgreSQL cannot store)
    before anything is written."""
    if not name or not name.strip():
        raise BadEvent("an event needs a name")
    if len(name) > MAX_NAME:
        raise BadEvent(f"name is {len(name):,} characters; the limit is {MAX_NAME:,}")
    if location is not None and len(location) > MAX_LOCATION:
        raise BadEvent(f"location is {len(location):,} characters; the limit is {MAX_LOCATION:,}")
    if notes is not None and len(notes) > MAX_NOTES:
        raise BadEvent(
            f"notes are {len(notes):,} characters; the limit is {MAX_NOTES:,} "
            "(attach large documents elsewhere and link them)"
        )
    for what, value in (("name", name), ("location", location), ("notes", notes)):
        if value is not None and "\x00" in value:
            raise BadEvent(f"{what} contains a NUL character, which no calendar can store")
