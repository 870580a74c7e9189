"""Writing to every CalDAV server (the provider contract, issue 9): conditional creates,
updates and deletes (etags, 412), time zones and all-day events, series overrides."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest
from contract_world import RemoteCalendar

from calbridge.domain.event import make_times
from calbridge.domain.remote import EventFields, RemoteEvent, RemoteItem, RemoteRef
from calbridge.errors import Conflict
from caldav_samples import WINDOW, fields, meeting, pull, vevent


def test_create_writes_at_the_key_href_and_round_trips(calendar: RemoteCalendar) -> None:
    provider = calendar.provider()
    booking = fields()
    written = provider.create(RemoteEvent(booking, "bk-1"))
    assert written.ref.id == calendar.href("bk-1.ics") and not written.adopted
    assert written.uid == "bk-1@calbridge" and written.ref.etag
    got = provider.get(written.ref.id, WINDOW)
    assert isinstance(got, RemoteItem)
    assert got.occurrences[0].fields == booking and got.key == "bk-1"
    assert got.ref.etag == written.ref.etag


@pytest.mark.parametrize(
    "booking",
    [
        EventFields(
            "Zoned",
            make_times(
                datetime(2027, 10, 31, 1, 30),
                datetime(2027, 10, 31, 4),
                all_day=False,
                timezone="Europe/Berlin",
            ),
        ),
        EventFields(
            "UTC",
            make_times(
                datetime(2027, 3, 5, 9), datetime(2027, 3, 5, 9), all_day=False, timezone="UTC"
            ),
        ),
        EventFields(
            "Floating",
            make_times(
                datetime(2027, 3, 5, 9), datetime(2027, 3, 5, 17), all_day=False, timezone=None
            ),
        ),
        EventFields(
            "All day",
            make_times(date(2027, 12, 24), date(2027, 12, 27), all_day=True, timezone=None),
        ),
    ],
    ids=["zoned-over-dst", "utc", "floating", "all-day"],
)
def test_time_zones_and_all_day_events_round_trip_through_the_server(
    calendar: RemoteCalendar, booking: EventFields
) -> None:
    provider = calendar.provider()
    written = provider.create(RemoteEvent(booking, "rt"))
    _, found = pull(provider, None)
    item = found[written.ref.id]
    assert isinstance(item, RemoteItem) and item.occurrences[0].fields == booking


def test_a_key_that_is_not_a_plain_name_gets_a_stable_hashed_href(calendar: RemoteCalendar) -> None:
    provider = calendar.provider()
    first = provider.create(RemoteEvent(fields(), "booking 17/3 ünïcode"))
    assert first.ref.id.startswith(calendar.href("cb-")) and first.ref.id.endswith(".ics")
    again = provider.create(RemoteEvent(fields(), "booking 17/3 ünïcode"))
    assert again.adopted and again.ref.id == first.ref.id


def test_a_create_whose_uid_is_taken_elsewhere_is_a_conflict(
    calendar: RemoteCalendar, server_kind: str
) -> None:
    """DAViCal's quirk: it stores a second object with a UID the calendar already has."""
    calendar.put("other.ics", meeting("taken-uid"))
    if server_kind == "davical":
        written = calendar.provider().create(RemoteEvent(fields(), "bk-10", uid="taken-uid"))
        assert not written.adopted and len(calendar.objects()) == 2
        return
    with pytest.raises(Conflict, match="another object probably uses UID taken-uid"):
        calendar.provider().create(RemoteEvent(fields(), "bk-10", uid="taken-uid"))


def test_a_retried_create_is_adopted_without_a_duplicate(calendar: RemoteCalendar) -> None:
    provider = calendar.provider()
    first = provider.create(RemoteEvent(fields(), "bk-2"))
    again = provider.create(RemoteEvent(fields(), "bk-2"))
    assert again.adopted and again.ref == first.ref and again.uid == first.uid
    _, found = pull(provider, None)
    assert list(found) == [first.ref.id]


def test_create_over_an_object_calbridge_did_not_make_is_a_conflict(
    calendar: RemoteCalendar,
) -> None:
    calendar.put("bk-3.ics", meeting("someone-elses"))
    with pytest.raises(Conflict, match="calbridge did not create"):
        calendar.provider().create(RemoteEvent(fields(), "bk-3"))


def test_update_with_a_stale_etag_is_a_conflict(calendar: RemoteCalendar) -> None:
    provider = calendar.provider()
    written = provider.create(RemoteEvent(fields(), "bk-5"))
    provider.update(written.ref, RemoteEvent(fields("Renamed"), "bk-5"))
    with pytest.raises(Conflict, match="changed on the calendar"):
        provider.update(written.ref, RemoteEvent(fields("Stale"), "bk-5"))


def test_update_of_an_object_deleted_on_the_calendar_is_a_conflict(
    calendar: RemoteCalendar,
) -> None:
    provider = calendar.provider()
    written = provider.create(RemoteEvent(fields(), "bk-6"))
    calendar.delete("bk-6.ics")
    with pytest.raises(Conflict, match="deleted on the calendar"):
        provider.update(written.ref, RemoteEvent(fields("Renamed"), "bk-6"))


def test_update_changes_our_fields_and_keeps_a_persons_additions(calendar: RemoteCalendar) -> None:
    person_made = vevent(
        "pm",
        "DTEND:20270305T100000Z",
        "SUMMARY:Site visit",
        "ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED:mailto:bob@example.com",
        "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC",
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Soon\r\nTRIGGER:-PT30M\r\nEND:VALARM",
    )
    etag = calendar.put("pm.ics", person_made)
    provider = calendar.provider()
    current = provider.get(calendar.href("pm.ics"), WINDOW)
    assert isinstance(current, RemoteItem) and current.ref.etag == etag
    changed = replace(current.occurrences[0].fields, location="Warehouse 2")
    written = provider.update(current.ref, RemoteEvent(changed, "bk-pm"))
    assert written.uid == "pm" and written.ref.etag != etag
    text = calendar.text("pm.ics") or ""
    assert "ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED:mailto:bob@example.com" in text
    assert "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC" in text and "BEGIN:VALARM" in text
    assert "SEQUENCE:1" in text
    again = provider.get(calendar.href("pm.ics"), WINDOW)
    assert isinstance(again, RemoteItem) and again.occurrences[0].fields == changed


def make_series(calendar: RemoteCalendar) -> RemoteItem:
    calendar.put(
        "daily.ics",
        vevent(
            "daily",
            "DTSTART;TZID=Europe/Berlin:20270301T090000",
            "DTEND;TZID=Europe/Berlin:20270301T093000",
            "SUMMARY:Stand-up",
            "RRULE:FREQ=DAILY;COUNT=5",
            start="",
        ),
    )
    got = calendar.provider().get(calendar.href("daily.ics"), WINDOW)
    assert isinstance(got, RemoteItem) and len(got.occurrences) == 5
    return got


def test_editing_one_occurrence_writes_an_override_into_the_series(
    calendar: RemoteCalendar,
) -> None:
    series = make_series(calendar)
    provider = calendar.provider()
    moved = replace(
        series.occurrences[1].fields,
        name="Stand-up (moved)",
        times=make_times(
            datetime(2027, 3, 2, 11),
            datetime(2027, 3, 2, 11, 30),
            all_day=False,
            timezone="Europe/Berlin",
        ),
    )
    provider.update(series.ref, RemoteEvent(moved, "occ", recurrence_id="20270302T080000Z"))
    _, found = pull(provider, None)
    assert list(found) == [series.ref.id]  # still one object: no new series
    item = found[series.ref.id]
    assert isinstance(item, RemoteItem)
    by_id = {o.recurrence_id: o.fields for o in item.occurrences}
    assert len(by_id) == 5 and by_id["20270302T080000Z"] == moved
    assert "RECURRENCE-ID;TZID=Europe/Berlin:20270302T090000" in (calendar.text("daily.ics") or "")


def test_cancelling_one_occurrence_shows_it_cancelled(calendar: RemoteCalendar) -> None:
    series = make_series(calendar)
    provider = calendar.provider()
    cancelled = replace(series.occurrences[2].fields, status="cancelled")
    provider.update(series.ref, RemoteEvent(cancelled, "occ", recurrence_id="20270303T080000Z"))
    item = provider.get(series.ref.id, WINDOW)
    assert isinstance(item, RemoteItem)
    assert {o.recurrence_id: o.fields.status for o in item.occurrences}["20270303T080000Z"] == (
        "cancelled"
    )


def test_deleting_one_occurrence_adds_an_exdate(calendar: RemoteCalendar) -> None:
    series = make_series(calendar)
    provider = calendar.provider()
    provider.delete(series.ref, "20270304T080000Z")
    assert "EXDATE;TZID=Europe/Berlin:20270304T090000" in (calendar.text("daily.ics") or "")
    item = provider.get(series.ref.id, WINDOW)
    assert isinstance(item, RemoteItem)
    assert "20270304T080000Z" not in [o.recurrence_id for o in item.occurrences]
    assert len(item.occurrences) == 4
    assert provider.last_written is not None and provider.last_written.etag == item.ref.etag


def test_delete_is_conditional_and_an_already_gone_object_is_fine(calendar: RemoteCalendar) -> None:
    provider = calendar.provider()
    written = provider.create(RemoteEvent(fields(), "bk-7"))
    newer = provider.update(written.ref, RemoteEvent(fields("Renamed"), "bk-7"))
    with pytest.raises(Conflict):
        provider.delete(written.ref)
    provider.delete(newer.ref)
    assert calendar.text("bk-7.ics") is None
    provider.delete(newer.ref)  # already gone: not an error
    provider.delete(RemoteRef(newer.ref.id, None), "20270401T080000Z")


# ------------------------------------------------------------------ failures
