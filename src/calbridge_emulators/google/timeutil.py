"""Time handling: an adjustable clock, RFC 3339 helpers and ``EventDateTime`` parsing.

Emulated documented behaviour:

* ``created`` / ``updated`` are RFC 3339 UTC timestamps with milliseconds (``...T10:00:00.123Z``).
* ``EventDateTime``: either ``date`` (all-day, ``yyyy-mm-dd``) or ``dateTime`` (RFC 3339); a
  ``dateTime`` without offset needs ``timeZone``; ``timeZone`` must be an IANA name.
* Responses render ``dateTime`` in the event's own ``timeZone`` when it has one, otherwise in
  the ``timeZone`` request parameter or the calendar's time zone (as Google does), so clients
  must compare instants, not strings.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ApiError, invalid, required

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Clock:
    """Wall clock plus an adjustable offset, so tests can make tokens and channels expire."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), tz=UTC)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    @property
    def offset(self) -> float:
        return self._offset


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """Return the IANA zone ``name``; raises ``KeyError`` for unknown names."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise KeyError(name) from exc


def is_valid_zone(name: str) -> bool:
    try:
        zone(name)
    except KeyError:
        return False
    return True


def format_rfc3339_ms(dt: datetime) -> str:
    """UTC RFC 3339 with milliseconds, as Google formats ``created``/``updated``."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 timestamp that must carry an offset; raises ``ValueError``."""
    if "T" not in value and "t" not in value:
        raise ValueError(value)
    dt = datetime.fromisoformat(value.replace("z", "Z"))
    if dt.tzinfo is None:
        raise ValueError(f"missing offset: {value}")
    return dt.astimezone(UTC)


def format_local(dt: datetime, tz_name: str) -> str:
    """Render an instant in ``tz_name`` as ``YYYY-MM-DDTHH:MM:SS±HH:MM`` (``Z`` for +00:00)."""
    local = dt.astimezone(zone(tz_name))
    text = local.isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def to_timestamp(dt: datetime) -> float:
    return dt.timestamp()


@dataclass(frozen=True)
class EventTime:
    """A parsed ``EventDateTime``: an all-day ``date`` or an absolute ``instant`` (+ zone)."""

    day: date | None = None
    instant: datetime | None = None
    tz: str | None = None

    @property
    def all_day(self) -> bool:
        return self.day is not None

    def canonical(self) -> dict[str, Any]:
        """Stored form: ``{"date": ...}`` or ``{"dateTime": <UTC Z>, "timeZone"?: ...}``."""
        if self.day is not None:
            return {"date": self.day.isoformat()}
        assert self.instant is not None
        out: dict[str, Any] = {"dateTime": format_local(self.instant, "UTC")}
        if self.tz:
            out["timeZone"] = self.tz
        return out

    def render(self, display_tz: str) -> dict[str, Any]:
        if self.day is not None:
            return {"date": self.day.isoformat()}
        assert self.instant is not None
        out: dict[str, Any] = {"dateTime": format_local(self.instant, self.tz or display_tz)}
        if self.tz:
            out["timeZone"] = self.tz
        return out

    def timestamp(self, calendar_tz: str) -> float:
        """Instant as POSIX seconds; all-day dates start at midnight in the calendar's zone."""
        if self.day is not None:
            start = datetime(self.day.year, self.day.month, self.day.day, tzinfo=zone(calendar_tz))
            return start.timestamp()
        assert self.instant is not None
        return self.instant.timestamp()

    def local(self) -> datetime:
        """Instant in the event's own zone (UTC when none), for recurrence expansion."""
        assert self.instant is not None
        return self.instant.astimezone(zone(self.tz or "UTC"))

    def shifted(self, delta: timedelta) -> EventTime:
        if self.day is not None:
            return EventTime(day=self.day + delta)
        assert self.instant is not None
        return EventTime(instant=self.instant + delta, tz=self.tz)


def parse_event_time(value: Any, field: str, *, need_zone: bool = False) -> EventTime:
    """Validate and parse an ``EventDateTime`` object from a request body.

    ``need_zone`` is set for recurring events: Google requires ``timeZone`` there ("specifies
    the time zone in which the recurrence is expanded").
    """
    if not isinstance(value, dict):
        raise required(f"Missing {field} time.")
    raw_date = value.get("date")
    raw_dt = value.get("dateTime")
    tz_name = value.get("timeZone")
    if tz_name is not None and (not isinstance(tz_name, str) or not is_valid_zone(tz_name)):
        raise invalid(f"Invalid time zone definition for {field} time.")
    if raw_date is not None and raw_dt is not None:
        raise bad_time(field)
    if raw_date is not None:
        if not isinstance(raw_date, str):
            raise bad_time(field)
        try:
            return EventTime(day=date.fromisoformat(raw_date))
        except ValueError as exc:
            raise bad_time(field) from exc
    if raw_dt is None:
        raise required(f"Missing {field} time.")
    if not isinstance(raw_dt, str) or "T" not in raw_dt:
        raise bad_time(field)
    try:
        parsed = datetime.fromisoformat(raw_dt.replace("z", "Z"))
    except ValueError as exc:
        raise bad_time(field) from exc
    if parsed.tzinfo is None:
        if not tz_name:
            raise required(f"Missing time zone definition for {field} time.")
        parsed = parsed.replace(tzinfo=zone(tz_name))
    elif need_zone and not tz_name:
        raise required(f"Missing time zone definition for {field} time.")
    return EventTime(instant=parsed.astimezone(UTC), tz=tz_name or None)


def bad_time(field: str) -> ApiError:
    return ApiError(400, "invalid", f"Invalid {field} time.")


def event_time_from_canonical(value: dict[str, Any]) -> EventTime:
    """Inverse of :meth:`EventTime.canonical` (for stored / persisted data)."""
    if "date" in value:
        return EventTime(day=date.fromisoformat(value["date"]))
    return EventTime(instant=parse_rfc3339(value["dateTime"]), tz=value.get("timeZone"))
