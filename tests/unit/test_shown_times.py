"""Times as typed, shown and serialized (issue 9 §3): domain.shown_times, no I/O."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from calbridge.domain.event import EventTimes, make_times
from calbridge.domain.shown_times import shown, shown_range, times_json, typed_times
from calbridge.errors import BadEvent


def typed(
    start: str, end: str, timezone: str | None = None, venue: str | None = None
) -> EventTimes:
    return typed_times(start, end, all_day=False, timezone=timezone, default_zone=venue)


def test_timed_event_json_carries_the_offset_and_the_zone() -> None:
    times = make_times(
        "2027-03-05T09:00", "2027-07-05T10:00", all_day=False, timezone="Europe/Berlin"
    )
    assert times_json(times) == {
        "start": "2027-03-05T09:00:00+01:00",
        "end": "2027-07-05T10:00:00+02:00",
        "timezone": "Europe/Berlin",
        "all_day": False,
        "floating": False,
    }
    instant = datetime.fromisoformat(times_json(times)["start"])
    assert instant.utcoffset() is not None  # one field is enough for the instant


def test_floating_and_all_day_events_are_marked_as_such() -> None:
    floating = make_times("2027-03-05T09:00", "2027-03-05T10:00", all_day=False, timezone=None)
    assert times_json(floating) == {
        "start": "2027-03-05T09:00:00",
        "end": "2027-03-05T10:00:00",
        "timezone": None,
        "all_day": False,
        "floating": True,
    }
    day = make_times("2027-03-05", "2027-03-06", all_day=True, timezone=None)
    assert times_json(day) == {
        "start": "2027-03-05",
        "end": "2027-03-06",
        "timezone": None,
        "all_day": True,
        "floating": False,
    }


def test_an_explicit_offset_is_kept_as_that_instant_in_the_venue_zone() -> None:
    times = typed("2026-05-01T10:00+01:00", "2026-05-01T11:00+01:00", venue="Europe/Berlin")
    assert (times.timezone, times.start) == ("Europe/Berlin", datetime(2026, 5, 1, 11, 0))
    assert times_json(times)["start"] == "2026-05-01T11:00:00+02:00"
    assert times.utc_range()[0] == datetime(2026, 5, 1, 9, 0)


def test_a_time_without_offset_is_in_the_given_zone_else_the_venue_else_floating() -> None:
    assert typed(
        "2027-03-05T09:00", "2027-03-05T10:00", "Asia/Tokyo", "Europe/London"
    ).timezone == ("Asia/Tokyo")
    assert typed("2027-03-05T09:00", "2027-03-05T10:00", None, "Europe/London").timezone == (
        "Europe/London"
    )
    assert typed("2027-03-05T09:00", "2027-03-05T10:00").timezone is None


def test_a_time_in_the_spring_forward_gap_is_refused() -> None:
    with pytest.raises(BadEvent) as error:
        typed("2027-03-28T02:30", "2027-03-28T04:00", "Europe/Berlin")
    assert str(error.value) == (
        "start 2027-03-28T02:30 does not exist in Europe/Berlin: the clocks skip that hour when "
        "daylight saving time starts; give another time, or an explicit offset (e.g. "
        "2027-03-28T03:30+02:00)"
    )


def test_a_time_in_the_fall_back_hour_needs_an_offset() -> None:
    with pytest.raises(BadEvent) as error:
        typed("2027-10-31T02:30", "2027-10-31T04:00", None, "Europe/Berlin")
    assert str(error.value) == (
        "start 2027-10-31T02:30 happens twice in Europe/Berlin (the clocks go back that night); "
        "give an explicit offset: 2027-10-31T02:30+02:00 for the first or "
        "2027-10-31T02:30+01:00 for the second"
    )
    first = typed("2027-10-31T02:30+02:00", "2027-10-31T04:00", None, "Europe/Berlin")
    assert (first.timezone, first.utc_range()[0]) == (
        "Europe/Berlin",
        datetime(2027, 10, 31, 0, 30),
    )
    second = typed("2027-10-31T02:30+01:00", "2027-10-31T04:00", None, "Europe/Berlin")
    assert second.utc_range()[0] == datetime(2027, 10, 31, 1, 30)  # the instant typed
    assert times_json(second)["start"] == "2027-10-31T01:30:00+00:00"


def test_times_are_shown_with_offset_and_zone() -> None:
    times = make_times(
        "2027-03-05T09:00", "2027-03-05T10:30", all_day=False, timezone="Europe/Berlin"
    )
    assert shown(times.start, times) == "2027-03-05 09:00+01:00 Europe/Berlin"
    assert shown_range(times_json(times)) == (
        "2027-03-05 09:00+01:00 Europe/Berlin",
        "2027-03-05 10:30+01:00 Europe/Berlin",
    )
    floating = make_times("2027-03-05T09:00", "2027-03-05T10:00", all_day=False, timezone=None)
    assert shown_range(times_json(floating))[0] == "2027-03-05 09:00 (floating)"
    day = EventTimes(date(2027, 3, 5), date(2027, 3, 6), True, None)
    assert shown_range(times_json(day)) == ("2027-03-05", "2027-03-06 (exclusive)")
