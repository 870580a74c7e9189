"""Series expansion (domain/recurrence.py): one booking per occurrence within the window.

Property tests check the rules on random series, and compare the expansion with an independent
implementation — ``recurring-ical-events`` over the same series written as iCalendar.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import icalendar
import pytest
import recurring_ical_events
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from calbridge.domain.event import EventTimes, make_times, to_utc
from calbridge.domain.recurrence import Series, expand, parse_recurrence_id, recurrence_id
from calbridge.domain.remote import EventFields, Window
from calbridge.errors import BadRemoteEvent

YEAR_2027 = Window(datetime(2027, 1, 1), datetime(2028, 1, 1))


def timed(start: datetime, minutes: int = 60, zone: str | None = "Europe/Berlin") -> EventFields:
    end = start + timedelta(minutes=minutes)
    return EventFields("Stand-up", make_times(start, end, all_day=False, timezone=zone))


def all_day(start: date, days: int = 1) -> EventFields:
    times = make_times(start, start + timedelta(days=days), all_day=True, timezone=None)
    return EventFields("Holiday", times)


def ids(occurrences: list) -> list[str]:
    return [o.recurrence_id for o in occurrences]


def test_recurrence_ids_have_the_documented_forms() -> None:
    assert recurrence_id(datetime(2027, 3, 5, 9), "Europe/Berlin") == "20270305T080000Z"
    assert recurrence_id(datetime(2027, 3, 5, 9), "UTC") == "20270305T090000Z"
    assert recurrence_id(datetime(2027, 3, 5, 9), None) == "20270305T090000"
    assert recurrence_id(date(2027, 3, 5), None) == "20270305"


def test_recurrence_id_parses_back_to_the_series_wall_clock() -> None:
    assert parse_recurrence_id("20270305T080000Z", "Europe/Berlin") == datetime(2027, 3, 5, 9)
    assert parse_recurrence_id("20270305T090000", None) == datetime(2027, 3, 5, 9)
    assert parse_recurrence_id("20270305", None) == date(2027, 3, 5)


def test_a_daily_series_keeps_its_wall_clock_time_across_dst() -> None:
    series = Series(timed(datetime(2027, 3, 25, 9, 30)), rules=("FREQ=DAILY;COUNT=5",))
    found = expand(series, YEAR_2027)
    assert [o.fields.times.start.hour for o in found] == [9] * 5
    assert ids(found) == [
        "20270325T083000Z",
        "20270326T083000Z",
        "20270327T083000Z",
        "20270328T073000Z",  # summer time from 28 March: same wall clock, one hour earlier UTC
        "20270329T073000Z",
    ]


def test_exdated_occurrences_are_absent() -> None:
    series = Series(
        timed(datetime(2027, 3, 1, 9)),
        rules=("FREQ=DAILY;COUNT=3",),
        exdates=frozenset({"20270302T080000Z"}),
    )
    assert ids(expand(series, YEAR_2027)) == ["20270301T080000Z", "20270303T080000Z"]


def test_a_moved_occurrence_keeps_its_original_id_and_takes_the_override_fields() -> None:
    moved = replace(timed(datetime(2027, 3, 2, 15)), name="Moved stand-up")
    series = Series(
        timed(datetime(2027, 3, 1, 9)),
        rules=("FREQ=DAILY;COUNT=3",),
        overrides={"20270302T080000Z": moved},
    )
    found = {o.recurrence_id: o.fields for o in expand(series, YEAR_2027)}
    assert found["20270302T080000Z"] == moved
    assert found["20270301T080000Z"].name == "Stand-up"


def test_a_cancelled_override_gives_a_cancelled_occurrence() -> None:
    cancelled = replace(timed(datetime(2027, 3, 2, 9)), status="cancelled")
    series = Series(
        timed(datetime(2027, 3, 1, 9)),
        rules=("FREQ=DAILY;COUNT=3",),
        overrides={"20270302T080000Z": cancelled},
    )
    statuses = {o.recurrence_id: o.fields.status for o in expand(series, YEAR_2027)}
    assert statuses == {
        "20270301T080000Z": "confirmed",
        "20270302T080000Z": "cancelled",
        "20270303T080000Z": "confirmed",
    }


def test_an_occurrence_moved_out_of_the_window_leaves_it() -> None:
    series = Series(
        timed(datetime(2027, 12, 30, 9)),
        rules=("FREQ=DAILY;COUNT=2",),
        overrides={"20271231T080000Z": timed(datetime(2028, 1, 5, 9))},
    )
    assert ids(expand(series, YEAR_2027)) == ["20271230T080000Z"]


def test_only_occurrences_starting_inside_the_window_are_expanded() -> None:
    series = Series(timed(datetime(2026, 12, 30, 9)), rules=("FREQ=DAILY",))
    found = expand(series, Window(datetime(2027, 1, 1), datetime(2027, 1, 4)))
    assert ids(found) == ["20270101T080000Z", "20270102T080000Z", "20270103T080000Z"]


def test_until_in_utc_ends_a_zoned_series_on_its_last_local_occurrence() -> None:
    rule = "FREQ=DAILY;UNTIL=20270303T080000Z"  # 09:00 Berlin on 3 March, inclusive
    found = expand(Series(timed(datetime(2027, 3, 1, 9)), rules=(rule,)), YEAR_2027)
    assert ids(found)[-1] == "20270303T080000Z" and len(found) == 3


def test_all_day_series_repeat_by_date_with_date_ids() -> None:
    series = Series(all_day(date(2027, 5, 1), days=2), rules=("FREQ=WEEKLY;COUNT=3",))
    found = expand(series, YEAR_2027)
    assert ids(found) == ["20270501", "20270508", "20270515"]
    assert found[1].fields.times == EventTimes(date(2027, 5, 8), date(2027, 5, 10), True, None)


def test_floating_series_have_floating_ids() -> None:
    series = Series(timed(datetime(2027, 5, 1, 9), zone=None), rules=("FREQ=DAILY;COUNT=2",))
    assert ids(expand(series, YEAR_2027)) == ["20270501T090000", "20270502T090000"]


def test_rdates_add_occurrences() -> None:
    series = Series(timed(datetime(2027, 5, 1, 9)), rdates=(datetime(2027, 6, 1, 9),))
    assert ids(expand(series, YEAR_2027)) == ["20270501T070000Z", "20270601T070000Z"]


def test_an_invalid_rule_is_a_bad_remote_event() -> None:
    with pytest.raises(BadRemoteEvent, match="recurrence rule is not valid"):
        expand(Series(timed(datetime(2027, 5, 1, 9)), rules=("FREQ=SOMETIMES",)), YEAR_2027)


def test_a_series_with_too_many_occurrences_in_the_window_is_rejected() -> None:
    series = Series(timed(datetime(2027, 1, 1, 0), minutes=1), rules=("FREQ=HOURLY",))
    with pytest.raises(BadRemoteEvent, match="occurrences within the sync window"):
        expand(series, YEAR_2027, max_occurrences=1000)


def test_a_series_too_dense_to_reach_the_window_is_rejected() -> None:
    series = Series(timed(datetime(2000, 1, 1, 0), minutes=1), rules=("FREQ=MINUTELY",))
    with pytest.raises(BadRemoteEvent, match="too dense"):
        expand(series, YEAR_2027, max_steps=10_000)


def test_a_daily_series_from_long_ago_is_walked_once_per_start() -> None:
    """No timing here (benchmarks measure time): 38 years of a daily rule reach a 2027 window
    within 14,000 steps, one per start, so the expansion's work is bounded by the starts."""
    series = Series(timed(datetime(1990, 1, 1, 9)), rules=("FREQ=DAILY",))
    assert len(expand(series, YEAR_2027, max_steps=14_000)) == 365


# ------------------------------------------------------------------ properties

ZONES = st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC", None])
RULES = st.sampled_from(
    [
        "FREQ=DAILY;COUNT=40",
        "FREQ=DAILY;INTERVAL=3",
        "FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=30",
        "FREQ=WEEKLY;INTERVAL=2;UNTIL=20271001T000000Z",
        "FREQ=MONTHLY;BYMONTHDAY=1,15",
        "FREQ=MONTHLY;BYDAY=-1FR",
        "FREQ=YEARLY;COUNT=3",
    ]
)
STARTS = st.datetimes(datetime(2026, 10, 1), datetime(2027, 12, 1)).map(
    lambda d: d.replace(second=0, microsecond=0, minute=d.minute - d.minute % 15)
)


@st.composite
def series_and_window(draw: st.DrawFn) -> tuple[Series, Window]:
    zone = draw(ZONES)
    is_all_day = draw(st.booleans())
    start = draw(STARTS)
    fields = all_day(start.date(), draw(st.integers(1, 3))) if is_all_day else None
    if fields is None:
        fields = timed(start, draw(st.integers(0, 600)), zone)
    rule = draw(RULES)
    assume("UNTIL" not in rule or start < datetime(2027, 9, 30))  # else a rejection, tested below
    base = Series(fields, rules=(rule,))
    everything = Window(datetime(2026, 1, 1), datetime(2029, 6, 1))
    generated = [o.recurrence_id for o in expand(base, everything, max_occurrences=10**6)]
    chosen = (
        draw(st.lists(st.sampled_from(generated), max_size=6, unique=True)) if generated else []
    )
    split = draw(st.integers(0, len(chosen)))
    exdates = frozenset(chosen[:split])
    overrides = {}
    for rid in chosen[split:]:
        original = parse_recurrence_id(rid, fields.times.timezone)
        shift = timedelta(hours=draw(st.integers(-30, 30)))
        if is_all_day:
            assert isinstance(original, date)
            day = original + timedelta(days=shift.days)
            overrides[rid] = replace(all_day(day), name=f"moved {rid}")
        else:
            assert isinstance(original, datetime)
            overrides[rid] = replace(timed(original + shift, 30, zone), name=f"moved {rid}")
    lo = draw(st.datetimes(datetime(2026, 9, 1), datetime(2027, 12, 1)))
    hi = lo + timedelta(days=draw(st.integers(1, 400)))
    return replace(base, exdates=exdates, overrides=overrides), Window(lo, hi)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(series_and_window())
def test_every_occurrence_starts_within_the_window(case: tuple[Series, Window]) -> None:
    series, window = case
    for occurrence in expand(series, window):
        assert window.start <= occurrence.fields.times.utc_range()[0] < window.end


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(series_and_window())
def test_exdates_are_absent_and_overrides_applied(case: tuple[Series, Window]) -> None:
    series, window = case
    found = expand(series, window)
    assert not {o.recurrence_id for o in found} & series.exdates
    for occurrence in found:
        if occurrence.recurrence_id in series.overrides:
            assert occurrence.fields == series.overrides[occurrence.recurrence_id]
        else:
            assert occurrence.fields.name == series.fields.name
    assert len({o.recurrence_id for o in found}) == len(found)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(series_and_window())
def test_expansion_agrees_with_recurring_ical_events(case: tuple[Series, Window]) -> None:
    series, window = case
    ours = {(o.recurrence_id, o.fields.times.start) for o in expand(series, window)}
    theirs = set()
    calendar = _as_icalendar(series)
    for component in recurring_ical_events.of(calendar).between((2025, 1, 1), (2030, 1, 1)):
        start, tz = _wall(component["DTSTART"].dt)
        original, original_tz = _wall(component["RECURRENCE-ID"].dt)
        if series.fields.times.all_day:
            start, original = start.date() if isinstance(start, datetime) else start, original
            rid = recurrence_id(
                original if not isinstance(original, datetime) else original.date(), None
            )
        else:
            rid = recurrence_id(original, original_tz)
        if window.start <= to_utc(start, tz) < window.end:
            theirs.add((rid, start))
    assert ours == theirs


def _wall(value: date | datetime) -> tuple[date | datetime, str | None]:
    if not isinstance(value, datetime) or value.tzinfo is None:
        return value, None
    key = getattr(value.tzinfo, "key", None) or "UTC"
    return value.replace(tzinfo=None), key


def _as_icalendar(series: Series) -> icalendar.Calendar:
    from zoneinfo import ZoneInfo

    def value(v: date | datetime, zone: str | None) -> date | datetime:
        if isinstance(v, datetime) and zone is not None:
            return v.replace(tzinfo=ZoneInfo(zone))
        return v

    calendar = icalendar.Calendar()
    times = series.fields.times
    master = icalendar.Event()
    master.add("UID", "series")
    master.add("SUMMARY", series.fields.name)
    master.add("DTSTART", value(times.start, times.timezone))
    master.add("DTEND", value(times.end, times.timezone))
    master.add("RRULE", icalendar.vRecur.from_ical(series.rules[0]))
    for rid in sorted(series.exdates):
        master.add("EXDATE", value(parse_recurrence_id(rid, times.timezone), times.timezone))
    calendar.add_component(master)
    for rid, fields in series.overrides.items():
        override = icalendar.Event()
        override.add("UID", "series")
        override.add("SUMMARY", fields.name)
        override.add(
            "RECURRENCE-ID", value(parse_recurrence_id(rid, times.timezone), times.timezone)
        )
        override.add("DTSTART", value(fields.times.start, fields.times.timezone))
        override.add("DTEND", value(fields.times.end, fields.times.timezone))
        calendar.add_component(override)
    return calendar
