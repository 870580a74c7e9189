"""Times as the REST API writes and reads them: RFC 3339 with the offset, plus the IANA zone.

- An instant the system recorded (created, updated, a run's start…) is stored as naive UTC and
  written with its offset: ``2026-12-01T14:05:00+00:00``.
- A booking's start and end are wall-clock times in the booking's IANA zone; they are written
  with the offset that zone has at that moment (``2027-03-05T09:00:00+01:00``) next to
  ``"timezone": "Europe/Berlin"``, so a client can show the time where the event happens and
  still order instants. A *floating* time (no zone, iCalendar's "local time wherever you are")
  has no offset to give: it is written without one and the booking says ``"floating": true``.
  All-day bookings give dates (``2027-03-05``) with an exclusive end, as in iCalendar.
- Filters (``start_from``/``start_to``) take an RFC 3339 date-time with an offset, or a date
  (midnight UTC); a date-time without an offset is refused, because it names no instant.

(Branch relink-times is writing a shared "times as shown/serialized" module; once it is on
main, these helpers call it.)
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from calbridge.errors import BadEvent


def instant(value: datetime | None) -> str | None:
    """A naive-UTC timestamp from the store, as RFC 3339 with its offset."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC).isoformat()


def wall(value: date | datetime, timezone: str | None) -> str:
    """A booking time: a date (all-day), a date-time with the zone's offset, or a floating
    date-time without one."""
    if not isinstance(value, datetime):
        return value.isoformat()
    if timezone is None:
        return value.isoformat()
    tz = UTC if timezone == "UTC" else ZoneInfo(timezone)
    return value.replace(tzinfo=tz).isoformat()


def parse_instant(text: str, what: str) -> datetime:
    """An RFC 3339 date-time with an offset (or a date: midnight UTC) as naive UTC."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime(day.year, day.month, day.day)
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise BadEvent(
            f"{what} '{text}' is not an RFC 3339 date-time (like 2027-03-05T09:00:00+01:00) "
            "or a date (2027-03-05)"
        ) from exc
    if value.tzinfo is None:
        raise BadEvent(
            f"{what} '{text}' has no offset; add one (like 2027-03-05T09:00:00+01:00 or …Z)"
        )
    return value.astimezone(UTC).replace(tzinfo=None)
