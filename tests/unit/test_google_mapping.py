"""Google ``Event`` JSON ⇄ neutral values (providers/google/mapping.py): no network."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

import pytest

from calbridge.domain.event import EventTimes, make_times
from calbridge.domain.remote import EventFields, RemoteEvent, Window
from calbridge.errors import BadEvent, BadRemoteEvent
from calbridge.providers.google.mapping import (
    booker_of,
    event_body,
    event_id_for,
    insert_body,
    series_etag,
    series_item,
    single_item,
    times_of,
)

WINDOW = Window(datetime(2027, 1, 1), datetime(2028, 1, 1))


def berlin(day: int, hour: int = 9) -> dict[str, str]:
    return {"dateTime": f"2027-03-{day:02d}T{hour:02d}:00:00+01:00", "timeZone": "Europe/Berlin"}


def master(*lines: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": "m1",
        "etag": '"1"',
        "iCalUID": "m1@google.com",
        "summary": "Class",
        "start": berlin(1),
        "end": berlin(1, 10),
        "recurrence": list(lines),
        "creator": {"email": "mia@harbour.example"},
        **extra,
    }


def exception(rid: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"m1_{rid}",
        "etag": '"2"',
        "recurringEventId": "m1",
        "originalStartTime": {"dateTime": _utc(rid), "timeZone": "Europe/Berlin"},
        "summary": "Class",
        "start": berlin(int(rid[6:8])),
        "end": berlin(int(rid[6:8]), 10),
        **extra,
    }


def _utc(rid: str) -> str:
    return f"{rid[:4]}-{rid[4:6]}-{rid[6:8]}T{rid[9:11]}:{rid[11:13]}:00Z"


def rids(item: Any) -> list[str]:
    return [o.recurrence_id for o in item.occurrences]


def test_engine_keys_are_used_as_event_ids_and_other_keys_are_digested() -> None:
    assert event_id_for("cb0a1b2c3de42") == "cb0a1b2c3de42"
    other = event_id_for("Key_With-Capitals/and more")
    assert re.fullmatch(r"[a-v0-9]{5,1024}", other) and other == event_id_for(
        "Key_With-Capitals/and more"
    )


def test_date_time_is_read_as_an_instant_in_the_events_zone() -> None:
    rendered_in_utc = {"dateTime": "2027-03-01T08:00:00Z", "timeZone": "Europe/Berlin"}
    times = times_of(rendered_in_utc, berlin(1, 10), "UTC")
    assert (times.start, times.timezone) == (datetime(2027, 3, 1, 9), "Europe/Berlin")


def test_offset_only_times_take_the_calendars_zone() -> None:
    times = times_of(
        {"dateTime": "2027-03-01T09:00:00+01:00"}, {"dateTime": "2027-03-01T10:00:00+01:00"}, "UTC"
    )
    assert (times.start, times.timezone) == (datetime(2027, 3, 1, 8), "UTC")


@pytest.mark.parametrize(
    ("start", "end", "reason"),
    [
        ({"dateTime": "2027-03-01T09:00:00", "timeZone": "Mars/Olympus"}, berlin(1), "time zone"),
        (berlin(1, 10), berlin(1, 9), "before start"),
        ({"date": "2027-03-01"}, berlin(1), "both be dates"),
        ({}, berlin(1), "no start"),
    ],
)
def test_unusable_times_are_rejected_with_a_reason(
    start: dict[str, str], end: dict[str, str], reason: str
) -> None:
    with pytest.raises(BadEvent, match=reason):
        times_of(start, end, "UTC")


def test_booker_is_the_creator_else_the_organizer_and_never_a_malformed_address() -> None:
    assert booker_of(
        {"creator": {"email": "a@b.example"}, "organizer": {"email": "c@d.example"}}
    ) == ("a@b.example")
    assert booker_of({"creator": {}, "organizer": {"email": "c@d.example"}}) == "c@d.example"
    assert booker_of({}) is None
    with pytest.raises(BadRemoteEvent, match="organizer address is malformed"):
        booker_of({"organizer": {"email": "no at sign"}})


def test_huge_description_is_rejected() -> None:
    event = {"id": "e1", "start": berlin(1), "end": berlin(1, 10), "description": "x" * 300_000}
    with pytest.raises(BadEvent, match="notes are 300,000 characters"):
        single_item(event, "UTC")


def test_series_applies_exdates_in_every_form_and_cancelled_and_moved_exceptions() -> None:
    item = series_item(
        "m1",
        master(
            "RRULE:FREQ=DAILY;COUNT=6",
            "EXDATE;TZID=Europe/Berlin:20270302T090000",
            "EXDATE:20270303T080000Z",
            "RDATE;TZID=Europe/Berlin:20270310T090000",
        ),
        [
            exception("20270304T080000Z", status="cancelled"),
            exception("20270305T080000Z", summary="Moved", start=berlin(5, 14), end=berlin(5, 15)),
        ],
        WINDOW,
        "UTC",
    )
    assert rids(item) == [
        "20270301T080000Z",
        "20270305T080000Z",
        "20270306T080000Z",
        "20270310T080000Z",
    ]
    moved = item.occurrences[1].fields
    assert (moved.name, moved.times.start) == ("Moved", datetime(2027, 3, 5, 14))
    assert item.is_series and item.ref.id == "m1" and item.organizer == "mia@harbour.example"


def test_all_day_series_uses_date_recurrence_ids() -> None:
    body = master("RRULE:FREQ=WEEKLY;COUNT=3", "EXDATE;VALUE=DATE:20270308")
    body.update(start={"date": "2027-03-01"}, end={"date": "2027-03-02"})
    assert rids(series_item("m1", body, [], WINDOW, "UTC")) == ["20270301", "20270315"]


def test_unsupported_recurrence_lines_are_rejected() -> None:
    with pytest.raises(BadRemoteEvent, match="not supported"):
        series_item("m1", master("EXRULE:FREQ=DAILY"), [], WINDOW, "UTC")


def test_occurrences_of_a_series_without_its_master_stand_alone() -> None:
    item = series_item("m1", None, [exception("20270305T080000Z")], WINDOW, "UTC")
    assert rids(item) == ["20270305T080000Z"] and item.ref.id == "m1"


def test_series_etag_changes_when_only_an_exception_changes() -> None:
    body = master("RRULE:FREQ=DAILY;COUNT=3")
    before = series_etag(body, [exception("20270302T080000Z")])
    after = series_etag(body, [exception("20270302T080000Z", etag='"3"')])
    assert before != after and series_etag(body, []) != before


def test_bodies_carry_our_key_and_patches_clear_what_the_booking_emptied() -> None:
    times = make_times("2027-03-01T09:00", "2027-03-01T10:00", all_day=False, timezone=None)
    fields = EventFields("Call", times)
    body = insert_body(RemoteEvent(fields, key="cb0a1b2c3de7"), "Europe/Lisbon")
    assert body["id"] == "cb0a1b2c3de7"
    assert body["extendedProperties"] == {"private": {"calbridgeKey": "cb0a1b2c3de7"}}
    assert body["start"] == {"dateTime": "2027-03-01T09:00:00", "timeZone": "Europe/Lisbon"}
    assert "location" not in body
    day = EventFields("Fair", EventTimes(date(2027, 3, 1), date(2027, 3, 2), True, None))
    patch = event_body(day, "UTC", patch=True)
    assert patch["start"] == {"date": "2027-03-01", "dateTime": None, "timeZone": None}
    assert patch["location"] is None and patch["description"] is None
