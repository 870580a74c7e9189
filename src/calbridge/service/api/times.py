"""Times as the REST API writes and reads them: RFC 3339 with the offset, plus the IANA zone.

- An instant the system recorded (created, updated, a run's start…) is stored as naive UTC and
  written with its offset: ``2026-12-01T14:05:00+00:00``.
- A booking's start and end come from :func:`calbridge.domain.shown_times.times_json` (the
  same as the CLI's JSON): wall-clock times in the booking's IANA zone written with that zone's
  offset at that moment (``2027-03-05T09:00:00+01:00``) next to ``"timezone"``; a floating
  time has no offset and says ``"floating": true``; all-day bookings give dates with an
  exclusive end. What a client sends is read by ``typed_times``: a time without an offset is
  wall-clock time in the given ``timezone``, else the venue's.
- Filters (``start_from``/``start_to``) take an RFC 3339 date-time with an offset, or a date
  (midnight UTC); a date-time without an offset is refused, because it names no instant.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from calbridge.errors import BadEvent


def instant(value: datetime | None) -> str | None:
    """A naive-UTC timestamp from the store, as RFC 3339 with its offset."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC).isoformat()


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
