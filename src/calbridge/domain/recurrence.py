"""Recurring series → the occurrences that become bookings (SPEC §3: one booking per occurrence
within a horizon, linked to the series).

A :class:`Series` is neutral data — the master's fields, its RRULE values, extra RDATEs, the
recurrence ids that are excluded (EXDATE) and the overridden occurrences (RECURRENCE-ID) — so the
same expansion serves CalDAV today and any provider that hands out RRULE lines later.

Rules of the expansion, matching RFC 5545:

* Timed series repeat in *wall-clock* time of their zone (a 09:00 Berlin meeting stays at 09:00
  across DST); a nonexistent wall-clock time (in a DST gap) is placed with the offset before the
  gap, as zoneinfo's ``fold=0`` does.
* An occurrence is identified by its *original* start (:func:`recurrence_id`), never by where an
  override moved it, so moving an occurrence does not change which booking it is.
* An occurrence is in the window when its *actual* start (after overrides) is in
  ``[window.start, window.end)``, compared in naive UTC (floating and all-day times as if UTC, as
  :meth:`EventTimes.utc_range` does).
* EXDATE wins over an override with the same recurrence id; an override whose recurrence id the
  rules do not generate still counts (RFC 5545 lets a RECURRENCE-ID add an instance).

Guards, because a calendar is untrusted input: a series generating more than ``max_steps``
starts before reaching the end of the window, or more than ``max_occurrences`` inside it, is a
:class:`BadRemoteEvent` (recorded as a rejection), not a hang. Each rule is checked *before*
expansion (:func:`check_rule`, microseconds): FREQ must be known, INTERVAL and COUNT positive
whole numbers (dateutil loops forever on ``INTERVAL=0``), UNTIL not before DTSTART (a series that
ends before it begins is an error to report, not an empty series to drop silently), and the
number of periods dateutil would walk through to reach the window's end — ``FREQ=SECONDLY``
over a year is 31 million — must stay within ``max_steps``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

from calbridge.domain.event import EventTimes, to_utc, zone
from calbridge.domain.remote import EventFields, RemoteOccurrence, Window
from calbridge.errors import BadEvent, BadRemoteEvent

MAX_OCCURRENCES = 5_000
MAX_STEPS = 200_000
# Wall-clock offsets from UTC lie within -12 h … +14 h; a day on each side covers them.
_MARGIN = timedelta(days=1)
_UNTIL = re.compile(r"UNTIL=([0-9]{8})(T[0-9]{6})?(Z)?", re.IGNORECASE)
_PERIOD = {
    "SECONDLY": timedelta(seconds=1),
    "MINUTELY": timedelta(minutes=1),
    "HOURLY": timedelta(hours=1),
    "DAILY": timedelta(days=1),
    "WEEKLY": timedelta(weeks=1),
    "MONTHLY": timedelta(days=28),
    "YEARLY": timedelta(days=365),
}
# BY-parts finer than the frequency multiply the starts of each period (RFC 5545 "expand").
_EXPANDS = {"BYSECOND": 1, "BYMINUTE": 60, "BYHOUR": 3600}


@dataclass(frozen=True)
class Series:
    """A recurring series. ``fields.times`` is the master's first occurrence (DTSTART/DTEND);
    ``rdates`` are extra starts in the series' wall-clock time (dates for all-day series);
    ``exdates`` and the keys of ``overrides`` are recurrence ids (:func:`recurrence_id`)."""

    fields: EventFields
    rules: tuple[str, ...] = ()
    rdates: tuple[datetime | date, ...] = ()
    exdates: frozenset[str] = frozenset()
    overrides: Mapping[str, EventFields] = field(default_factory=dict)


def recurrence_id(start: datetime | date, timezone: str | None) -> str:
    """The compact id of an occurrence from its original start (remote.py's format):
    ``20270305`` all-day, ``20270305T090000`` floating, ``20270305T080000Z`` zoned (in UTC)."""
    if not isinstance(start, datetime):
        return start.strftime("%Y%m%d")
    if timezone is None:
        return start.strftime("%Y%m%dT%H%M%S")
    return to_utc(start, timezone).strftime("%Y%m%dT%H%M%SZ")


def parse_recurrence_id(rid: str, timezone: str | None) -> datetime | date:
    """The original start of occurrence ``rid`` as the series writes it: a date, a floating
    wall-clock time, or the wall-clock time in ``timezone``. Raises BadEvent if malformed."""
    try:
        if len(rid) == 8:
            return datetime.strptime(rid, "%Y%m%d").date()
        if rid.endswith("Z"):
            utc = datetime.strptime(rid, "%Y%m%dT%H%M%SZ")
            if timezone is None or timezone == "UTC":
                return utc
            return utc.replace(tzinfo=UTC).astimezone(zone(timezone)).replace(tzinfo=None)
        return datetime.strptime(rid, "%Y%m%dT%H%M%S")
    except ValueError as exc:
        raise BadEvent(f"'{rid}' is not a recurrence id") from exc


def expand(
    series: Series,
    window: Window,
    *,
    max_occurrences: int = MAX_OCCURRENCES,
    max_steps: int = MAX_STEPS,
) -> list[RemoteOccurrence]:
    """Every occurrence of ``series`` whose actual start lies in ``window``, ordered by start,
    overrides applied and EXDATEs left out."""
    times = series.fields.times
    found: list[tuple[datetime, RemoteOccurrence]] = []
    for start in _starts(series, window, max_steps, max_occurrences):
        rid = recurrence_id(start, times.timezone)
        if rid in series.exdates or rid in series.overrides:
            continue
        occurrence_times = _shifted(times, start)
        begins = occurrence_times.utc_range()[0]
        if window.start <= begins < window.end:
            fields = replace(series.fields, times=occurrence_times)
            found.append((begins, RemoteOccurrence(rid, fields)))
    for rid, fields in series.overrides.items():
        if rid in series.exdates:
            continue
        begins = fields.times.utc_range()[0]
        if window.start <= begins < window.end:
            found.append((begins, RemoteOccurrence(rid, fields)))
    if len(found) > max_occurrences:
        raise BadRemoteEvent(
            f"the series has {len(found):,} occurrences within the sync window; the limit is "
            f"{max_occurrences:,} (shorten the window or the series)"
        )
    found.sort(key=lambda pair: (pair[0], pair[1].recurrence_id or ""))
    return [occurrence for _, occurrence in found]


def _starts(
    series: Series, window: Window, max_steps: int, max_occurrences: int = MAX_OCCURRENCES
) -> Iterable[datetime | date]:
    """Original starts (wall-clock, or dates) the rules and RDATEs generate up to the window's
    end. Starts before the window are produced too (cheaply) and filtered by the caller."""
    from dateutil.rrule import rrule, rruleset, rrulestr  # a series to expand (not on import)

    times = series.fields.times
    anchor = _naive(times.start)
    rules = rruleset()
    ends: list[datetime | None] = []
    try:
        for text in series.rules:
            check_rule(text, anchor, window, max_steps, max_occurrences)
            wall_clock = _until_as_wall_clock(text, times)
            rule = rrulestr(wall_clock, dtstart=anchor)
            if not isinstance(rule, rrule):
                raise ValueError(f"'{text}' is not a single rule")
            rules.rrule(rule)
            until = _until(wall_clock)
            if until is not None and until < anchor:
                raise BadRemoteEvent(
                    f"the recurrence rule '{_shown(text)}' ends (UNTIL) before the series starts "
                    f"(DTSTART {anchor:%Y-%m-%d %H:%M}); correct UNTIL or DTSTART in the calendar"
                )
            ends.append(until)
    except (ValueError, TypeError, OverflowError) as exc:
        raise BadRemoteEvent(f"the recurrence rule is not valid ({exc})") from exc
    if not ends or None in ends or anchor <= max(e for e in ends if e is not None):
        # DTSTART is the first instance (RFC 5545 §3.8.5.3) — unless every rule ended before
        # it, where clients (and recurring-ical-events) show nothing.
        rules.rdate(anchor)
    for extra in series.rdates:
        rules.rdate(_naive(extra))
    last = window.end + _MARGIN
    for steps, start in enumerate(rules, start=1):
        if start > last:
            break
        if steps > max_steps:
            raise BadRemoteEvent(
                f"the series repeats more than {max_steps:,} times before the end of the sync "
                "window; it is too dense to import"
            )
        yield start.date() if times.all_day else start


def check_rule(
    text: str,
    start: datetime,
    window: Window,
    max_steps: int = MAX_STEPS,
    max_occurrences: int = MAX_OCCURRENCES,
) -> None:
    """Refuse, before any expansion, a rule that is malformed, would walk through more than
    ``max_steps`` periods between ``start`` (the series' first start) and the window's end, or
    would certainly put more than ``max_occurrences`` inside the window."""
    parts: dict[str, str] = {}
    for part in text.strip().split(";"):
        name, _, value = part.partition("=")
        parts[name.strip().upper()] = value.strip()
    shown = _shown(text)
    freq = parts.get("FREQ", "").upper()
    if freq not in _PERIOD:
        raise BadRemoteEvent(
            f"the recurrence rule is not valid ('{shown}': FREQ must be one of SECONDLY … YEARLY)"
        )
    numbers = {}
    for name in ("INTERVAL", "COUNT"):
        if name in parts:
            value = parts[name]
            if not value.isdigit() or int(value) < 1 or len(value) > 9:
                raise BadRemoteEvent(
                    f"the recurrence rule is not valid ('{shown}': {name} must be a whole "
                    "number from 1 up)"
                )
            numbers[name] = int(value)
    interval = numbers.get("INTERVAL", 1)
    end = window.end + _MARGIN
    until = _until(text)
    if until is not None:
        end = min(end, until + _MARGIN)
    periods = max(0.0, (end - start) / (_PERIOD[freq] * interval))
    expand = 1
    for name, seconds in _EXPANDS.items():
        if name in parts and _PERIOD[freq] > timedelta(seconds=seconds):
            expand *= max(1, len(parts[name].split(",")))
    filtered = any(n.startswith("BY") and n not in _EXPANDS for n in parts)  # may thin out
    count = numbers.get("COUNT")
    if count is not None and not filtered:
        periods = min(periods, count / expand)
    if periods * expand > max_steps:
        raise BadRemoteEvent(
            f"the recurrence rule '{shown}' repeats about {periods * expand:,.0f} times before "
            f"the end of the sync window; the limit is {max_steps:,}: the series is too dense to "
            f"import (a {freq.lower()} rule is for reminders, not bookings)"
        )
    inside = max(0.0, (end - _MARGIN - max(start, window.start)) / (_PERIOD[freq] * interval))
    inside *= expand
    if count is not None:
        inside = min(inside, count)
    if not filtered and inside > max_occurrences * 1.1:  # a margin: the estimate is rough
        raise BadRemoteEvent(
            f"the series has about {inside:,.0f} occurrences within the sync window "
            f"(rule '{shown}'); the limit is {max_occurrences:,} (shorten the window or the "
            "series)"
        )


def _shown(text: str) -> str:
    return text if len(text) <= 80 else text[:80] + "…"


def _naive(value: datetime | date) -> datetime:
    """dateutil works on naive wall-clock datetimes; an all-day date becomes its midnight."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime(value.year, value.month, value.day)


def _until_as_wall_clock(rule: str, times: EventTimes) -> str:
    """RFC 5545 writes UNTIL in UTC for zoned series and as a date for all-day ones; dateutil
    needs it in the same (naive, wall-clock) form as DTSTART, so convert it."""

    def convert(match: re.Match[str]) -> str:
        day, clock, utc = match.group(1), match.group(2), match.group(3)
        if clock is None:
            return f"UNTIL={day}" if times.all_day else f"UNTIL={day}T235959"
        moment = datetime.strptime(day + clock, "%Y%m%dT%H%M%S")
        if utc and times.timezone not in (None, "UTC") and not times.all_day:
            tz = zone(times.timezone or "UTC")
            moment = moment.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None)
        return "UNTIL=" + moment.strftime("%Y%m%dT%H%M%S")

    return _UNTIL.sub(convert, rule)


def _until(rule: str) -> datetime | None:
    match = _UNTIL.search(rule)
    if match is None:
        return None
    return datetime.strptime(match.group(1) + (match.group(2) or "T000000"), "%Y%m%dT%H%M%S")


def _shifted(times: EventTimes, start: datetime | date) -> EventTimes:
    """The master's times moved to ``start``, keeping its (wall-clock) length."""
    length = _naive(times.end) - _naive(times.start)
    if isinstance(start, datetime):
        return EventTimes(start, start + length, False, times.timezone)
    return EventTimes(start, start + timedelta(days=length.days), True, None)
