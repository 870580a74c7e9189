"""Recurring series: ``patternedRecurrence`` validation/expansion and occurrence ids.

Emulated behaviour (Graph v1.0 ``patternedRecurrence``):

* pattern types ``daily``, ``weekly``, ``absoluteMonthly``, ``relativeMonthly``,
  ``absoluteYearly``, ``relativeYearly``; range types ``endDate``, ``noEnd``, ``numbered``.
* Occurrences are expanded in the series' wall-clock zone (``range.recurrenceTimeZone`` or the
  start zone), so they keep their local time across DST changes, as Exchange does.
* The first occurrence is the first date on/after ``range.startDate`` that fits the pattern
  (Graph: "the first occurrence of the meeting may not occur on this date if it doesn't fit").
* Occurrence/exception ids are stable and derived from the master id and the original start,
  like Exchange's.  ``iCalUId`` of an instance is the master's GlobalObjectId with the instance
  date embedded (bytes 16-19), which is how Exchange derives per-occurrence UIDs.

Simplification: ``dayOfMonth`` beyond a month's length skips that month (dateutil semantics)
where Outlook would use the last day.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil import rrule

from calbridge.domain.windows_zones import resolve_zone

from .store import Item
from .util import GraphError, b64url, b64url_decode

_DAYS = {
    "sunday": rrule.SU,
    "monday": rrule.MO,
    "tuesday": rrule.TU,
    "wednesday": rrule.WE,
    "thursday": rrule.TH,
    "friday": rrule.FR,
    "saturday": rrule.SA,
}
_INDEX = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
_FREQUENCY = {
    "daily": rrule.DAILY,
    "weekly": rrule.WEEKLY,
    "absoluteMonthly": rrule.MONTHLY,
    "relativeMonthly": rrule.MONTHLY,
    "absoluteYearly": rrule.YEARLY,
    "relativeYearly": rrule.YEARLY,
}
PATTERN_TYPES = tuple(_FREQUENCY)
RANGE_TYPES = ("endDate", "noEnd", "numbered")
_KEY_FMT = "%Y%m%dT%H%M%SZ"
_OCC_PREFIX = "AAMkAI"
_GOID_CLASS = "040000008200E00074C5B7101A82E008"


def _bad(message: str) -> GraphError:
    return GraphError(400, "ErrorInvalidRecurrence", message)


def normalize(rec: Any) -> dict[str, Any]:
    """Validate a ``patternedRecurrence`` body and return it in Graph's output shape."""
    if not isinstance(rec, dict) or not isinstance(rec.get("pattern"), dict):
        raise _bad("The recurrence pattern is missing or invalid.")
    pat, rng = rec["pattern"], rec.get("range")
    if not isinstance(rng, dict):
        raise _bad("The recurrence range is missing or invalid.")
    ptype = pat.get("type")
    if ptype not in PATTERN_TYPES:
        raise _bad(f"Recurrence pattern type '{ptype}' is not supported.")
    interval = pat.get("interval", 1)
    if not isinstance(interval, int) or interval < 1 or interval > 999:
        raise _bad("The recurrence pattern interval must be between 1 and 999.")
    days = [d.lower() for d in pat.get("daysOfWeek") or []]
    if any(d not in _DAYS for d in days):
        raise _bad("daysOfWeek contains an invalid value.")
    if ptype in ("weekly", "relativeMonthly", "relativeYearly") and not days:
        raise _bad(f"daysOfWeek is required for a {ptype} pattern.")
    day_of_month = pat.get("dayOfMonth") or 0
    if ptype in ("absoluteMonthly", "absoluteYearly") and not 1 <= day_of_month <= 31:
        raise _bad(f"dayOfMonth is required for a {ptype} pattern.")
    month = pat.get("month") or 0
    if ptype in ("absoluteYearly", "relativeYearly") and not 1 <= month <= 12:
        raise _bad(f"month is required for a {ptype} pattern.")
    index = pat.get("index") or "first"
    if index not in _INDEX:
        raise _bad("index is invalid.")
    rtype = rng.get("type")
    if rtype not in RANGE_TYPES:
        raise _bad(f"Recurrence range type '{rtype}' is not supported.")
    try:
        start_date = date.fromisoformat(str(rng.get("startDate")))
        end_date = date.fromisoformat(str(rng["endDate"])) if rtype == "endDate" else None
    except (KeyError, ValueError) as exc:
        raise _bad("The recurrence range dates are invalid.") from exc
    count = rng.get("numberOfOccurrences") or 0
    if rtype == "numbered" and (not isinstance(count, int) or count < 1):
        raise _bad("numberOfOccurrences must be a positive number.")
    if end_date is not None and end_date < start_date:
        raise _bad("The recurrence end date is before its start date.")
    first_day = (pat.get("firstDayOfWeek") or "sunday").lower()
    return {
        "pattern": {
            "type": ptype,
            "interval": interval,
            "month": month,
            "dayOfMonth": day_of_month,
            "daysOfWeek": days,
            "firstDayOfWeek": first_day,
            "index": index,
        },
        "range": {
            "type": rtype,
            "startDate": start_date.isoformat(),
            "endDate": end_date.isoformat() if end_date else "0001-01-01",
            "recurrenceTimeZone": rng.get("recurrenceTimeZone") or "",
            "numberOfOccurrences": count if rtype == "numbered" else 0,
        },
    }


def series_zone(item: Item) -> ZoneInfo:
    if item.is_all_day:
        return ZoneInfo("UTC")
    assert item.recurrence is not None
    name = item.recurrence["range"].get("recurrenceTimeZone") or item.start_tz
    try:
        return resolve_zone(name)
    except KeyError:
        return ZoneInfo("UTC")


def _rule(item: Item, zone: ZoneInfo) -> rrule.rrule:
    assert item.recurrence is not None
    pat, rng = item.recurrence["pattern"], item.recurrence["range"]
    local_start = item.start.astimezone(zone)
    dtstart = datetime.combine(date.fromisoformat(rng["startDate"]), local_start.time())
    kwargs: dict[str, Any] = {"dtstart": dtstart, "interval": pat["interval"]}
    days = [_DAYS[d] for d in pat["daysOfWeek"]]
    ptype = pat["type"]  # one of PATTERN_TYPES (validated)
    if ptype == "weekly":
        kwargs["byweekday"] = days
        kwargs["wkst"] = _DAYS[pat["firstDayOfWeek"]]
    if ptype.endswith("Yearly"):
        kwargs["bymonth"] = pat["month"]
    if ptype.startswith("absolute"):
        kwargs["bymonthday"] = pat["dayOfMonth"]
    elif ptype.startswith("relative"):
        kwargs["byweekday"] = days
        kwargs["bysetpos"] = _INDEX[pat["index"]]
    if rng["type"] == "endDate":
        kwargs["until"] = datetime.combine(date.fromisoformat(rng["endDate"]), time(23, 59, 59))
    elif rng["type"] == "numbered":
        kwargs["count"] = rng["numberOfOccurrences"]
    return rrule.rrule(_FREQUENCY[ptype], **kwargs)  # type: ignore[arg-type]


def _to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    return local.replace(tzinfo=zone).astimezone(UTC)


def occurrence_starts(item: Item, lo: datetime, hi: datetime) -> list[datetime]:
    """Original starts (UTC) of the series' pattern occurrences whose span overlaps [lo, hi).

    Cancelled occurrences are excluded; exceptions are *not* resolved here.
    """
    zone = series_zone(item)
    duration = item.end - item.start
    slack = timedelta(days=2)
    lo_local = (lo - duration - slack).astimezone(zone).replace(tzinfo=None)
    hi_local = (hi + slack).astimezone(zone).replace(tzinfo=None)
    cancelled = set(item.cancelled)
    out = []
    for local in _rule(item, zone).between(lo_local, hi_local, inc=True):
        start = _to_utc(local, zone)
        end = start + duration
        overlaps = start < hi and (end > lo or (start == end and start >= lo))
        if overlaps and occ_key(start) not in cancelled:
            out.append(start)
    return out


def is_occurrence(item: Item, start: datetime) -> bool:
    """True if ``start`` is a (not cancelled) original start of the series."""
    probe = occurrence_starts(item, start, start + timedelta(seconds=1))
    return start in probe


def occ_key(start: datetime) -> str:
    return start.astimezone(UTC).strftime(_KEY_FMT)


def key_to_dt(key: str) -> datetime:
    return datetime.strptime(key, _KEY_FMT).replace(tzinfo=UTC)


def occurrence_id(master_id: str, key: str) -> str:
    return _OCC_PREFIX + b64url(f"{master_id}|{key}".encode(), pad=True)


def parse_occurrence_id(event_id: str) -> tuple[str, str] | None:
    if not event_id.startswith(_OCC_PREFIX):
        return None
    try:
        master_id, key = b64url_decode(event_id[len(_OCC_PREFIX) :]).decode().split("|")
        key_to_dt(key)
    except (ValueError, UnicodeDecodeError):
        return None
    return master_id, key


def new_goid(created: datetime) -> str:
    """An Outlook GlobalObjectId (hex) as used in ``iCalUId``."""
    filetime = int((created - datetime(1601, 1, 1, tzinfo=UTC)).total_seconds() * 10**7)
    return (
        _GOID_CLASS
        + "00000000"
        + filetime.to_bytes(8, "little").hex().upper()
        + "0" * 16
        + "10000000"
        + os.urandom(16).hex().upper()
    )


def instance_goid(goid: str, original_start: datetime, zone: ZoneInfo) -> str:
    day = original_start.astimezone(zone).date()
    stamp = day.year.to_bytes(2, "big").hex() + f"{day.month:02X}{day.day:02X}"
    return goid[:32] + stamp.upper() + goid[40:]
