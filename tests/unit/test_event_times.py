"""Event times and fields: all-day dates with an exclusive end, zones, offsets, floating times,
and the bad events the booking system refuses (with a one-line reason)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from calbridge.domain.event import (
    MAX_LOCATION,
    MAX_NAME,
    MAX_NOTES,
    EventTimes,
    check_text,
    make_times,
)
from calbridge.errors import BadEvent


def one_line_bad_event(*args: object, **kwargs: object) -> str:
    with pytest.raises(BadEvent) as info:
        make_times(*args, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert message and "\n" not in message
    return message


# --- all-day --------------------------------------------------------------------------------


def test_all_day_end_date_is_exclusive_so_next_day_end_is_one_day() -> None:
    t = make_times("2027-03-05", "2027-03-06", all_day=True, timezone=None)
    assert t == EventTimes(date(2027, 3, 5), date(2027, 3, 6), True, None)
    start, end = t.utc_range()
    assert (end - start).days == 1
    assert t.iso() == ("2027-03-05", "2027-03-06")


def test_all_day_end_equal_to_start_is_rejected_explaining_the_exclusive_end() -> None:
    message = one_line_bad_event("2027-03-05", "2027-03-05", all_day=True, timezone=None)
    assert "exclusive" in message
    assert "ends on 2027-03-06" in message


def test_all_day_end_before_start_is_rejected() -> None:
    one_line_bad_event("2027-03-05", "2027-03-01", all_day=True, timezone=None)


def test_all_day_event_has_no_time_zone() -> None:
    t = make_times("2027-03-05", "2027-03-08", all_day=True, timezone="Europe/Berlin")
    assert t.timezone is None


def test_all_day_with_a_time_is_rejected() -> None:
    message = one_line_bad_event("2027-03-05T09:00", "2027-03-06", all_day=True, timezone=None)
    assert "is not a date" in message


def test_timed_event_given_only_dates_is_rejected_asking_for_all_day() -> None:
    message = one_line_bad_event("2027-03-05", "2027-03-06", all_day=False, timezone=None)
    assert "--all-day" in message


# --- timed: zones, offsets, floating --------------------------------------------------------


def test_time_in_a_named_zone_keeps_its_wall_clock() -> None:
    t = make_times("2027-03-05T09:00", "2027-03-05T10:30", all_day=False, timezone="Europe/Berlin")
    assert t.iso() == ("2027-03-05T09:00:00", "2027-03-05T10:30:00")
    assert t.timezone == "Europe/Berlin"
    assert t.utc_range() == (datetime(2027, 3, 5, 8, 0), datetime(2027, 3, 5, 9, 30))


def test_summer_time_is_applied_by_the_zone() -> None:
    t = make_times("2027-07-05T09:00", "2027-07-05T10:00", all_day=False, timezone="Europe/Berlin")
    assert t.utc_range()[0] == datetime(2027, 7, 5, 7, 0)


def test_offset_without_zone_is_stored_as_utc() -> None:
    t = make_times("2027-03-05T09:00+01:00", "2027-03-05T10:00+01:00", all_day=False, timezone=None)
    assert t.timezone == "UTC"
    assert t.start == datetime(2027, 3, 5, 8, 0)


def test_z_suffix_means_utc() -> None:
    t = make_times("2027-03-05T09:00Z", "2027-03-05T10:00Z", all_day=False, timezone=None)
    assert (t.start, t.timezone) == (datetime(2027, 3, 5, 9, 0), "UTC")


def test_offset_times_are_converted_to_the_given_zone() -> None:
    t = make_times(
        "2027-03-05T08:00Z", "2027-03-05T09:00+00:00", all_day=False, timezone="America/New_York"
    )
    assert t.timezone == "America/New_York"
    assert t.start == datetime(2027, 3, 5, 3, 0)


def test_floating_time_has_no_zone_and_orders_as_utc() -> None:
    t = make_times("2027-03-05T09:00", "2027-03-05T10:00", all_day=False, timezone=None)
    assert t.timezone is None
    assert t.utc_range() == (datetime(2027, 3, 5, 9, 0), datetime(2027, 3, 5, 10, 0))


def test_timed_end_before_start_is_rejected() -> None:
    message = one_line_bad_event(
        "2027-03-05T10:00", "2027-03-05T09:00", all_day=False, timezone="Europe/Berlin"
    )
    assert "before start" in message


def test_end_before_start_is_judged_on_the_instants_not_the_written_times() -> None:
    # 09:30+02:00 is 07:30 UTC: before a 09:00 UTC start although "09:30" > "09:00".
    one_line_bad_event(
        "2027-03-05T09:00+00:00", "2027-03-05T09:30+02:00", all_day=False, timezone=None
    )
    t = make_times("2027-03-05T09:00+01:00", "2027-03-05T08:30Z", all_day=False, timezone=None)
    assert t.utc_range() == (datetime(2027, 3, 5, 8, 0), datetime(2027, 3, 5, 8, 30))


@pytest.mark.parametrize(
    "name",
    [
        "Mars/Olympus",
        "europe/berlin",
        "Europe",
        "Europe/",
        "../etc/passwd",
        "/etc/localtime",
        "x" * 300,
        "Europe/Berlin\x00",
    ],
)
def test_unknown_time_zone_is_rejected_naming_it(name: str) -> None:
    message = one_line_bad_event(
        "2027-03-05T09:00", "2027-03-05T10:00", all_day=False, timezone=name
    )
    assert "unknown time zone" in message


@pytest.mark.parametrize("value", ["tomorrow", "2027-13-01T09:00", "2027-03-05T25:00", ""])
def test_malformed_date_time_is_rejected(value: str) -> None:
    message = one_line_bad_event(value, "2027-03-05T10:00", all_day=False, timezone=None)
    assert "start" in message


# --- text fields ----------------------------------------------------------------------------


def test_fields_at_their_limits_are_accepted() -> None:
    check_text("n" * MAX_NAME, "l" * MAX_LOCATION, "x" * MAX_NOTES)


@pytest.mark.parametrize(
    ("name", "location", "notes", "what"),
    [
        ("", None, None, "needs a name"),
        ("   ", None, None, "needs a name"),
        ("n" * (MAX_NAME + 1), None, None, "name is 1,001 characters"),
        ("ok", "l" * (MAX_LOCATION + 1), None, "location is 1,001 characters"),
        ("ok", None, "x" * (MAX_NOTES + 1), "notes are 262,145 characters"),
        ("ok", None, "x" * 10 * 1024 * 1024, "notes are 10,485,760 characters"),
        ("Gala\x00", None, None, "NUL"),
        ("ok", None, "a\x00b", "NUL"),
    ],
)
def test_oversized_or_empty_fields_are_rejected(
    name: str, location: str | None, notes: str | None, what: str
) -> None:
    with pytest.raises(BadEvent, match=what) as info:
        check_text(name, location, notes)
    assert "\n" not in str(info.value)
