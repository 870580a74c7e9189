"""Field-level three-way merge (SPEC §3): one side's change merges, both sides' is a conflict."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

from calbridge.domain.merge import merge
from calbridge.domain.remote import MERGE_FIELDS

BASE = {
    "name": "Dinner",
    "when": {
        "start": "2027-03-05T19:00:00",
        "end": "2027-03-05T22:00:00",
        "all_day": False,
        "timezone": "Europe/London",
    },
    "location": "Sea Lounge",
    "notes": None,
    "status": "confirmed",
}


def test_field_changed_on_calendar_only_takes_calendar_value() -> None:
    result = merge(BASE, {**BASE, "location": "Terrace"}, BASE)
    assert result.merged["location"] == "Terrace"
    assert result.booking_changed and not result.calendar_changed and not result.conflicts


def test_field_changed_in_booking_only_takes_booking_value() -> None:
    result = merge({**BASE, "name": "Dinner for 12"}, BASE, BASE)
    assert result.merged["name"] == "Dinner for 12"
    assert result.calendar_changed and not result.booking_changed


def test_different_fields_changed_on_each_side_both_survive() -> None:
    result = merge({**BASE, "name": "Gala"}, {**BASE, "location": "Terrace"}, BASE)
    assert (result.merged["name"], result.merged["location"]) == ("Gala", "Terrace")
    assert not result.conflicts


def test_same_field_changed_on_both_sides_booking_wins_by_default() -> None:
    result = merge({**BASE, "name": "B"}, {**BASE, "name": "C"}, BASE)
    assert result.merged["name"] == "B"
    assert [(c.field, c.booking_value, c.calendar_value, c.winner) for c in result.conflicts] == [
        ("name", "B", "C", "booking")
    ]


def test_calendar_wins_policy() -> None:
    result = merge({**BASE, "name": "B"}, {**BASE, "name": "C"}, BASE, policy="calendar-wins")
    assert result.merged["name"] == "C" and result.conflicts[0].winner == "calendar"


def test_latest_wins_policy_compares_modification_times() -> None:
    early, late = datetime(2027, 1, 1), datetime(2027, 1, 2)
    newer_calendar = merge(
        {**BASE, "name": "B"},
        {**BASE, "name": "C"},
        BASE,
        "latest-wins",
        booking_updated=early,
        calendar_updated=late,
    )
    newer_booking = merge(
        {**BASE, "name": "B"},
        {**BASE, "name": "C"},
        BASE,
        "latest-wins",
        booking_updated=late,
        calendar_updated=early,
    )
    assert newer_calendar.merged["name"] == "C" and newer_booking.merged["name"] == "B"


def test_same_change_on_both_sides_is_not_a_conflict() -> None:
    result = merge({**BASE, "name": "Same"}, {**BASE, "name": "Same"}, BASE)
    assert not result.conflicts and not result.booking_changed and not result.calendar_changed


def test_start_and_end_merge_as_one_field() -> None:
    moved_booking = {**BASE, "when": {**BASE["when"], "start": "2027-03-05T18:00:00"}}
    moved_calendar = {**BASE, "when": {**BASE["when"], "end": "2027-03-05T23:00:00"}}
    result = merge(moved_booking, moved_calendar, BASE)
    assert result.merged["when"] == moved_booking["when"]  # never a mix of both
    assert [c.field for c in result.conflicts] == ["when"]


values = st.sampled_from(["a", "b", "c", None])
snapshots = st.fixed_dictionaries({name: values for name in MERGE_FIELDS})


@given(snapshots, snapshots, snapshots, st.sampled_from(["booking-wins", "calendar-wins"]))
def test_merge_properties(booking, calendar, base, policy) -> None:  # type: ignore[no-untyped-def]
    result = merge(booking, calendar, base, policy=policy)
    for name in MERGE_FIELDS:
        # every merged value comes from one of the two sides
        assert result.merged[name] in (booking[name], calendar[name])
        # a side that did not touch a field never overrides the side that did
        if calendar[name] == base[name]:
            assert result.merged[name] == booking[name]
        if booking[name] == base[name]:
            assert result.merged[name] == calendar[name]
    conflicted = {c.field for c in result.conflicts}
    expected = {
        n
        for n in MERGE_FIELDS
        if booking[n] != base[n] and calendar[n] != base[n] and booking[n] != calendar[n]
    }
    assert conflicted == expected


@given(snapshots, snapshots)
def test_merging_with_identical_sides_changes_nothing(side, base) -> None:  # type: ignore[no-untyped-def]
    result = merge(side, side, base)
    assert result.merged == side and not result.booking_changed and not result.calendar_changed
