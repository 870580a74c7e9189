"""Recurrence expansion for ``Event.recurrence`` (RRULE / EXRULE / RDATE / EXDATE lines).

Emulated documented behaviour:

* ``recurrence`` holds RFC 5545 RRULE, EXRULE, RDATE and EXDATE lines; DTSTART/DTEND are not
  allowed (start/end come from the event) - anything else is a 400 ``invalid``.
* Timed series are expanded in the event's ``timeZone`` (wall-clock stable across DST), all-day
  series by date.
* An instance's id is ``<masterId>_<YYYYMMDDTHHMMSSZ>`` (original start in UTC) or
  ``<masterId>_<YYYYMMDD>`` for all-day series.

Deliberate simplification: a series without an end (no COUNT/UNTIL) is expanded lazily up to the
requested ``timeMax``; without ``timeMax`` at most :data:`EXPANSION_LIMIT` instances are produced.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from dateutil.rrule import rrule, rruleset, rrulestr

from .errors import ApiError
from .timeutil import EventTime, zone

EXPANSION_LIMIT = 1000


def invalid_recurrence(detail: str = "") -> ApiError:
    return ApiError(400, "invalid", "Invalid recurrence rule." + (f" {detail}" if detail else ""))


class Recurrence:
    """A parsed recurrence set anchored at the series' first start."""

    def __init__(self, lines: list[Any], start: EventTime) -> None:
        if not isinstance(lines, list) or not lines:
            raise invalid_recurrence()
        self.start = start
        self.all_day = start.all_day
        self.tz = start.tz or "UTC"
        if self.all_day:
            assert start.day is not None
            self.dtstart = datetime.combine(start.day, time())
        else:
            self.dtstart = start.local()
        self.rset = rruleset()
        has_rule = False
        for line in lines:
            if not isinstance(line, str) or ":" not in line:
                raise invalid_recurrence()
            head, _, value = line.strip().partition(":")
            name, *params = head.split(";")
            name = name.upper()
            try:
                if name in ("RRULE", "EXRULE"):
                    rule = rrulestr(self._fix_until(value), dtstart=self.dtstart)
                    if not isinstance(rule, rrule):
                        raise invalid_recurrence()
                    (self.rset.rrule if name == "RRULE" else self.rset.exrule)(rule)
                    has_rule = has_rule or name == "RRULE"
                elif name in ("RDATE", "EXDATE"):
                    for item in self._parse_dates(params, value):
                        (self.rset.rdate if name == "RDATE" else self.rset.exdate)(item)
                    has_rule = has_rule or name == "RDATE"
                else:
                    raise invalid_recurrence()
            except ApiError:
                raise
            except (ValueError, TypeError, KeyError) as exc:
                raise invalid_recurrence() from exc
        if not has_rule:
            raise invalid_recurrence()

    # -- parsing helpers -------------------------------------------------------------------
    def _fix_until(self, value: str) -> str:
        parts = []
        for part in value.split(";"):
            key, _, val = part.partition("=")
            if key.upper() == "UNTIL" and val:
                val = self._until_value(val)
            parts.append(f"{key}={val}" if _ else key)
        return ";".join(parts)

    def _until_value(self, val: str) -> str:
        val = val.strip().upper()
        if self.all_day:
            return val[:8] if "Z" in val else val
        if val.endswith("Z"):
            return val
        if len(val) == 8:  # a DATE: inclusive through the end of that local day
            day = datetime.strptime(val, "%Y%m%d")
            local = datetime.combine(day.date(), time(23, 59, 59), tzinfo=zone(self.tz))
        else:
            local = datetime.strptime(val, "%Y%m%dT%H%M%S").replace(tzinfo=zone(self.tz))
        return local.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    def _parse_dates(self, params: list[str], value: str) -> list[datetime]:
        tzid = None
        for param in params:
            key, _, val = param.partition("=")
            if key.upper() == "TZID":
                tzid = val.strip('"')
        out = []
        for raw in value.split(","):
            raw = raw.strip().upper()
            if not raw:
                continue
            if "/" in raw:  # PERIOD: only its start matters here
                raw = raw.split("/", 1)[0]
            if len(raw) == 8:
                day = datetime.strptime(raw, "%Y%m%d").date()
                if self.all_day:
                    out.append(datetime.combine(day, time()))
                else:
                    local_time = self.dtstart.timetz().replace(tzinfo=None)
                    out.append(datetime.combine(day, local_time, tzinfo=zone(self.tz)))
                continue
            naive = datetime.strptime(raw.rstrip("Z"), "%Y%m%dT%H%M%S")
            if self.all_day:
                out.append(datetime.combine(naive.date(), time()))
            elif raw.endswith("Z"):
                out.append(naive.replace(tzinfo=UTC))
            else:
                out.append(naive.replace(tzinfo=zone(tzid or self.tz)))
        return out

    # -- expansion -------------------------------------------------------------------------
    def _to_event_time(self, occ: datetime) -> EventTime:
        if self.all_day:
            return EventTime(day=occ.date())
        return EventTime(instant=occ.astimezone(UTC), tz=self.start.tz)

    def _bound(self, dt: datetime, calendar_tz: str) -> datetime:
        if self.all_day:
            return dt.astimezone(zone(calendar_tz)).replace(tzinfo=None)
        return dt

    def iter_starts(
        self,
        *,
        after: datetime | None = None,
        before: datetime | None = None,
        duration: timedelta = timedelta(0),
        calendar_tz: str = "UTC",
        limit: int = EXPANSION_LIMIT,
    ) -> Iterator[EventTime]:
        """Yield original starts of instances overlapping ``(after, before)``.

        An instance overlaps when ``start < before`` and ``start + duration > after`` (the
        Calendar ``timeMin``/``timeMax`` semantics).
        """
        if after is not None:
            # start + duration > after  <=>  start > after - duration
            lower = self._bound(after, calendar_tz) - duration
            source: Iterator[datetime] = self.rset.xafter(lower, inc=False)
        else:
            source = iter(self.rset)
        upper = self._bound(before, calendar_tz) if before is not None else None
        for count, occ in enumerate(source, start=1):
            if upper is not None and occ >= upper:
                return
            yield self._to_event_time(occ)
            if count >= limit:
                return

    def contains(self, original: EventTime) -> bool:
        if self.all_day:
            if original.day is None:
                return False
            probe = datetime.combine(original.day, time())
        else:
            if original.instant is None:
                return False
            probe = original.instant.astimezone(zone(self.tz))
        return bool(self.rset.between(probe, probe, inc=True))


def instance_suffix(original: EventTime) -> str:
    if original.day is not None:
        return original.day.strftime("%Y%m%d")
    assert original.instant is not None
    return original.instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def instance_id(master_id: str, original: EventTime) -> str:
    return f"{master_id}_{instance_suffix(original)}"


def parse_instance_suffix(suffix: str, template: EventTime) -> EventTime | None:
    """Parse an instance-id suffix into the original start (``None`` when malformed)."""
    try:
        if template.all_day:
            if len(suffix) != 8:
                return None
            return EventTime(day=date(int(suffix[:4]), int(suffix[4:6]), int(suffix[6:8])))
        if len(suffix) != 16 or not suffix.endswith("Z"):
            return None
        naive = datetime.strptime(suffix, "%Y%m%dT%H%M%SZ")
        return EventTime(instant=naive.replace(tzinfo=UTC), tz=template.tz)
    except ValueError:
        return None
