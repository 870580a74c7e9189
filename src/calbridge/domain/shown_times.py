"""Times as a person types them, and times as they are shown and serialized.

The one place that turns stored :class:`~calbridge.domain.event.EventTimes` into what people and
programs read — the CLI, the JSON output, the future REST API and admin UI all use it:

- :func:`times_json`: a timed event's ``start``/``end`` are RFC 3339 timestamps *with their UTC
  offset* (the wall-clock time in the event's zone), plus the IANA ``timezone``; a floating
  event has offset-less local times and ``"floating": true``; an all-day event has dates (the
  end exclusive) and ``"all_day": true``. A consumer never combines two fields for an instant.
- :func:`shown`: one time for people, e.g. ``2027-03-05 09:00+01:00 Europe/Berlin``.

And the other way, :func:`typed_times` reads what a person typed (``events create/update``):
a time without an offset is wall-clock time in ``--timezone``, else in the venue's zone (the
directory setting ``venue_timezone``), else floating. A time with an offset is kept as that
instant and expressed in the same zone. A wall-clock time that does not exist there (the hour
skipped when daylight saving time starts) is refused; one that happens twice (the hour repeated
when it ends) needs an explicit offset to say which.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from calbridge.domain.event import EventTimes, make_times, zone
from calbridge.errors import BadEvent


def _zone(name: str) -> tzinfo:
    return UTC if name == "UTC" else zone(name)


def aware(value: datetime, timezone: str) -> datetime:
    """A stored wall-clock time in ``timezone`` as an aware datetime (its offset included)."""
    return value.replace(tzinfo=_zone(timezone))


def rfc3339(value: datetime | date, timezone: str | None) -> str:
    """One stored start or end as serialized: with its offset when it has a zone."""
    if not isinstance(value, datetime):
        return value.isoformat()
    if timezone is None:
        return value.isoformat()
    return aware(value, timezone).isoformat()


def times_json(times: EventTimes) -> dict[str, Any]:
    """``start``, ``end``, ``timezone``, ``all_day`` and ``floating`` of one event."""
    floating = not times.all_day and times.timezone is None
    return {
        "start": rfc3339(times.start, times.timezone),
        "end": rfc3339(times.end, times.timezone),
        "timezone": times.timezone,
        "all_day": times.all_day,
        "floating": floating,
    }


def shown(value: datetime | date, times: EventTimes, *, end: bool = False) -> str:
    """One start or end for people: the date (all-day; an end says it is exclusive), or the
    wall-clock time with its offset and zone, or ``(floating)``."""
    if not isinstance(value, datetime):
        return f"{value.isoformat()} (exclusive)" if end else value.isoformat()
    text = value.strftime("%Y-%m-%d %H:%M")
    if times.timezone is None:
        return f"{text} (floating)"
    offset = aware(value, times.timezone).strftime("%z")
    return f"{text}{offset[:3]}:{offset[3:]} {times.timezone}"


def shown_range(serialized: Mapping[str, Any]) -> tuple[str, str]:
    """Start and end for people, from an event serialized by :func:`times_json`."""
    if serialized["all_day"]:
        first, last = date.fromisoformat(serialized["start"]), date.fromisoformat(serialized["end"])
        times = EventTimes(first, last, True, None)
        return shown(first, times), shown(last, times, end=True)
    timezone = serialized["timezone"]
    start, end = (datetime.fromisoformat(serialized[key]) for key in ("start", "end"))
    if timezone is not None:
        where = _zone(timezone)
        start, end = (v.astimezone(where).replace(tzinfo=None) for v in (start, end))
    times = EventTimes(start, end, False, timezone)
    return shown(start, times), shown(end, times, end=True)


def typed_times(
    start: str | datetime | date,
    end: str | datetime | date,
    *,
    all_day: bool,
    timezone: str | None,
    default_zone: str | None,
) -> EventTimes:
    """Event times from what a person typed (see the module docstring for the rules)."""
    if all_day:
        return make_times(start, end, all_day=True, timezone=None)
    target = timezone or default_zone
    if target is None:
        return make_times(start, end, all_day=False, timezone=None)
    where = _zone(target)
    start_dt, end_dt = _parse(start, "start"), _parse(end, "end")
    walls = [
        _wall(value, what, raw, target, where)
        for what, raw, value in (("start", start, start_dt), ("end", end, end_dt))
    ]
    if any(wall.fold for wall in walls):
        # the second of a repeated hour: a zone name alone cannot say which one (neither can
        # iCalendar's TZID), so the event keeps the instant the person typed, in UTC
        instants = [wall.replace(tzinfo=where).astimezone(UTC) for wall in walls]
        return make_times(
            instants[0].replace(tzinfo=None),
            instants[1].replace(tzinfo=None),
            all_day=False,
            timezone="UTC",
        )
    return make_times(walls[0], walls[1], all_day=False, timezone=target)


def _parse(value: str | datetime | date, what: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        raise BadEvent(f"{what} {value} is a date: pass --all-day, or give a time")
    try:
        date.fromisoformat(value.strip())
    except ValueError:
        pass
    else:
        raise BadEvent(f"{what} {value} is a date: pass --all-day, or give a time")
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadEvent(
            f"{what} '{value}' is not an ISO date-time (like 2027-03-05T09:00 or "
            "2027-03-05T09:00+01:00)"
        ) from exc


def _typed(raw: object) -> str:
    return raw.isoformat(timespec="minutes") if isinstance(raw, datetime) else str(raw).strip()


def _wall(value: datetime, what: str, raw: object, name: str, where: tzinfo) -> datetime:
    """``value`` as a naive wall-clock time in zone ``name`` (``fold`` set for the second
    of a repeated hour when the typed offset says so)."""
    if value.tzinfo is not None:
        return value.astimezone(where).replace(tzinfo=None)
    if isinstance(where, ZoneInfo):
        first = value.replace(tzinfo=where, fold=0)
        second = value.replace(tzinfo=where, fold=1)
        back = first.astimezone(UTC).astimezone(where).replace(tzinfo=None)
        if back != value:
            suggestion = first.astimezone(UTC).astimezone(where).isoformat(timespec="minutes")
            raise BadEvent(
                f"{what} {_typed(raw)} does not exist in {name}: the clocks skip that hour when "
                f"daylight saving time starts; give another time, or an explicit offset (e.g. "
                f"{suggestion})"
            )
        if first.utcoffset() != second.utcoffset():
            raise BadEvent(
                f"{what} {_typed(raw)} happens twice in {name} (the clocks go back that night); "
                f"give an explicit offset: {first.isoformat(timespec='minutes')} for the first "
                f"or {second.isoformat(timespec='minutes')} for the second"
            )
    return value
