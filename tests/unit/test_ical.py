"""iCalendar ⇄ neutral fields (providers/ical/parse.py, providers/ical/write.py).

SPEC §3: time zones and all-day events round-trip exactly; a bad event is a rejection with a
clear reason and never an exception.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from calbridge.domain.event import MAX_NOTES, EventTimes, make_times
from calbridge.domain.remote import (
    EventFields,
    RemoteEvent,
    RemoteItem,
    RemoteRef,
    RemoteRejection,
    Window,
)
from calbridge.errors import BadEvent
from calbridge.providers.ical.fast import read_simple
from calbridge.providers.ical.fields import iana_zone
from calbridge.providers.ical.parse import parse_full, parse_item
from calbridge.providers.ical.write import apply_event, exclude_occurrence, new_object

WINDOW = Window(datetime(2027, 1, 1), datetime(2028, 1, 1))
REF = RemoteRef("/cal/x.ics", '"1"')
NOW = datetime(2027, 1, 10, 12, tzinfo=UTC)


def ics(*lines: str, extra: str = "") -> str:
    event = "\r\n".join(("BEGIN:VEVENT", *lines, "END:VEVENT"))
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\n{extra}{event}\r\nEND:VCALENDAR\r\n"


def event(*lines: str, extra: str = "") -> str:
    return ics("UID:u1", "DTSTAMP:20270101T000000Z", *lines, extra=extra)


SAMPLES: list[str | bytes] = []  # every object parsed here; the fast reader is checked on them


def parse(data: str | bytes) -> RemoteItem | RemoteRejection:
    SAMPLES.append(data)
    return parse_item(REF, data, WINDOW)


def item(data: str | bytes) -> RemoteItem:
    parsed = parse(data)
    assert isinstance(parsed, RemoteItem), parsed
    return parsed


def single(data: str | bytes) -> EventFields:
    parsed = item(data)
    assert not parsed.is_series and len(parsed.occurrences) == 1
    return parsed.occurrences[0].fields


def rejection(data: str | bytes) -> str:
    parsed = parse(data)
    assert isinstance(parsed, RemoteRejection), parsed
    return parsed.reason


# ----------------------------------------------------------------- reading


def test_a_zoned_event_keeps_its_wall_clock_time_and_iana_zone() -> None:
    fields = single(
        event(
            "DTSTART;TZID=Europe/Berlin:20270305T090000",
            "DTEND;TZID=Europe/Berlin:20270305T103000",
            "SUMMARY:Board meeting",
        )
    )
    assert fields.times == EventTimes(
        datetime(2027, 3, 5, 9), datetime(2027, 3, 5, 10, 30), False, "Europe/Berlin"
    )
    assert fields.name == "Board meeting"


def test_utc_times_have_zone_utc_and_floating_times_none() -> None:
    utc = single(event("DTSTART:20270305T090000Z", "DTEND:20270305T100000Z"))
    floating = single(event("DTSTART:20270305T090000", "DTEND:20270305T100000"))
    assert (utc.times.timezone, utc.times.start) == ("UTC", datetime(2027, 3, 5, 9))
    assert (floating.times.timezone, floating.times.start) == (None, datetime(2027, 3, 5, 9))


def test_an_all_day_event_has_an_exclusive_end_date() -> None:
    fields = single(event("DTSTART;VALUE=DATE:20270305", "DTEND;VALUE=DATE:20270307"))
    assert fields.times == EventTimes(date(2027, 3, 5), date(2027, 3, 7), True, None)


def test_an_all_day_event_without_dtend_lasts_one_day() -> None:
    fields = single(event("DTSTART;VALUE=DATE:20270305"))
    assert fields.times == EventTimes(date(2027, 3, 5), date(2027, 3, 6), True, None)


def test_duration_gives_the_end() -> None:
    fields = single(event("DTSTART;TZID=Europe/Berlin:20270305T090000", "DURATION:PT90M"))
    assert fields.times.end == datetime(2027, 3, 5, 10, 30)


def test_an_end_in_another_zone_is_converted_to_the_start_zone() -> None:
    fields = single(
        event(
            "DTSTART;TZID=Europe/Berlin:20270305T090000", "DTEND;TZID=Europe/London:20270305T090000"
        )
    )
    assert fields.times.end == datetime(2027, 3, 5, 10) and fields.times.timezone == "Europe/Berlin"


WINDOWS_ZONE = (
    "BEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\nBEGIN:STANDARD\r\n"
    "DTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
    "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\n"
    "DTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
    "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n"
)


def test_a_windows_zone_name_is_mapped_to_its_iana_zone() -> None:
    fields = single(
        event("DTSTART;TZID=W. Europe Standard Time:20270305T090000", extra=WINDOWS_ZONE)
    )
    assert fields.times.timezone == "Europe/Berlin"
    assert fields.times.start == datetime(2027, 3, 5, 9)


def test_a_vtimezone_x_lic_location_maps_a_custom_tzid() -> None:
    zone = (
        "BEGIN:VTIMEZONE\r\nTZID:Office time\r\nX-LIC-LOCATION:America/New_York\r\n"
        "BEGIN:STANDARD\r\nDTSTART:19701101T020000\r\nTZOFFSETFROM:-0400\r\n"
        "TZOFFSETTO:-0500\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
    )
    fields = single(event("DTSTART;TZID=Office time:20270305T090000", extra=zone))
    assert fields.times.timezone == "America/New_York"


def test_vendor_prefixed_tzids_are_mapped() -> None:
    assert iana_zone("/mozilla.org/20050126_1/Europe/Berlin") == "Europe/Berlin"
    assert iana_zone("/citadel.org/20190914_1/America/Argentina/Buenos_Aires") == (
        "America/Argentina/Buenos_Aires"
    )
    assert iana_zone("Mars/Olympus_Mons") is None


def test_status_summary_location_notes_are_read() -> None:
    fields = single(
        event(
            "DTSTART:20270305T090000Z",
            "SUMMARY:",
            "LOCATION:Room 4\\, first floor",
            "DESCRIPTION:Bring the contract\\nand the keys",
            "STATUS:TENTATIVE",
        )
    )
    assert fields.name == "(no title)"
    assert fields.location == "Room 4, first floor"
    assert fields.notes == "Bring the contract\nand the keys"
    assert fields.status == "tentative"
    assert single(event("DTSTART:20270305T090000Z", "STATUS:CANCELLED")).status == "cancelled"
    assert single(event("DTSTART:20270305T090000Z", "STATUS:CONFIRMED")).status == "confirmed"


def test_item_carries_uid_raw_organizer_key_and_last_modified() -> None:
    parsed = item(
        event(
            "DTSTART:20270305T090000Z",
            "ORGANIZER;CN=Ann:mailto:Ann@Example.com",
            "X-CALBRIDGE-KEY:bk-17",
            "LAST-MODIFIED:20270102T030405Z",
        )
    )
    assert parsed.uid == "u1" and parsed.key == "bk-17"
    assert parsed.organizer == "mailto:Ann@Example.com"
    assert parsed.updated == datetime(2027, 1, 2, 3, 4, 5)
    assert parsed.ref == REF


def test_updated_falls_back_to_dtstamp() -> None:
    assert item(event("DTSTART:20270305T090000Z")).updated == datetime(2027, 1, 1)


# --------------------------------------------------------------- rejections


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (event("SUMMARY:no start"), "no start (DTSTART)"),
        (
            event("DTSTART:20270305T100000Z", "DTEND:20270305T090000Z"),
            "is before start",
        ),
        (
            event("DTSTART;VALUE=DATE:20270305", "DTEND;VALUE=DATE:20270301"),
            "must be after start",
        ),
        (event("DTSTART;TZID=Mars/Olympus:20270305T090000"), "unknown time zone 'Mars/Olympus'"),
        (event("DTSTART:2027030"), "DTSTART '2027030' is not a date"),
        ("this is not iCalendar", "not valid iCalendar"),
        (
            event("DTSTART:20270305T090000Z", "DESCRIPTION:" + "x" * (MAX_NOTES + 1)),
            "the limit is 262,144",
        ),
        (event("DTSTART:20270305T090000Z", "ORGANIZER:mailto:not an address"), "organizer"),
        (
            ics("UID:t1", "DTSTAMP:20270101T000000Z", "SUMMARY:todo").replace("VEVENT", "VTODO"),
            "no VEVENT (it holds VTODO)",
        ),
        (event("DTSTART:20270305T090000Z", "RRULE:FREQ=SOMETIMES"), "recurrence rule"),
        (ics("DTSTART:20270305T090000Z"), "no UID"),
    ],
)
def test_bad_events_are_rejections_with_a_reason(data: str, reason: str) -> None:
    assert reason in rejection(data)


def test_a_rejection_names_the_uid() -> None:
    parsed = parse_item(REF, event("SUMMARY:no start"), WINDOW)
    assert isinstance(parsed, RemoteRejection) and parsed.uid == "u1" and parsed.ref_id == REF.id


def test_a_ten_megabyte_description_is_rejected_not_loaded_into_a_booking() -> None:
    huge = event("DTSTART:20270305T090000Z", "DESCRIPTION:" + "y" * (10 * 1024 * 1024))
    assert "notes are 10,485,760 characters" in rejection(huge)


# ------------------------------------------------------------------- series


SERIES = event(
    "DTSTART;TZID=Europe/Berlin:20270301T090000",
    "DTEND;TZID=Europe/Berlin:20270301T100000",
    "SUMMARY:Stand-up",
    "RRULE:FREQ=DAILY;COUNT=5",
    "EXDATE;TZID=Europe/Berlin:20270303T090000",
) + "".join([])


def with_override(data: str, *lines: str) -> str:
    override = "\r\n".join(
        ("BEGIN:VEVENT", "UID:u1", "DTSTAMP:20270101T000000Z", *lines, "END:VEVENT")
    )
    return data.replace("END:VCALENDAR", override + "\r\nEND:VCALENDAR")


def test_a_series_expands_with_exdates_and_overrides() -> None:
    data = with_override(
        SERIES,
        "RECURRENCE-ID;TZID=Europe/Berlin:20270302T090000",
        "DTSTART;TZID=Europe/Berlin:20270302T140000",
        "DTEND;TZID=Europe/Berlin:20270302T150000",
        "SUMMARY:Moved stand-up",
    )
    data = with_override(
        data,
        "RECURRENCE-ID:20270304T080000Z",  # the same occurrence may be named in UTC
        "DTSTART;TZID=Europe/Berlin:20270304T090000",
        "SUMMARY:Stand-up",
        "STATUS:CANCELLED",
    )
    parsed = item(data)
    assert parsed.is_series
    found = {o.recurrence_id: o.fields for o in parsed.occurrences}
    assert sorted(found) == [
        "20270301T080000Z",
        "20270302T080000Z",
        "20270304T080000Z",
        "20270305T080000Z",
    ]
    assert found["20270302T080000Z"].name == "Moved stand-up"
    assert found["20270302T080000Z"].times.start == datetime(2027, 3, 2, 14)
    assert found["20270304T080000Z"].status == "cancelled"


def test_a_bad_override_rejects_the_series_naming_the_occurrence() -> None:
    data = with_override(
        SERIES,
        "RECURRENCE-ID;TZID=Europe/Berlin:20270302T090000",
        "DTSTART;TZID=Europe/Berlin:20270302T140000",
        "DTEND;TZID=Europe/Berlin:20270302T130000",
    )
    assert "occurrence 20270302T080000Z" in rejection(data)


def test_overrides_without_a_master_are_occurrences_of_their_own() -> None:
    data = ics(
        "UID:u1",
        "RECURRENCE-ID:20270302T080000Z",
        "DTSTART:20270302T090000Z",
        "SUMMARY:Invited to one",
    )
    parsed = item(data)
    assert parsed.is_series
    assert [o.recurrence_id for o in parsed.occurrences] == ["20270302T080000Z"]


# ------------------------------------------------------------------ writing


def fields_at(
    start: datetime, zone: str | None = "Europe/Berlin", **changes: object
) -> EventFields:
    times = make_times(start, start + timedelta(hours=1), all_day=False, timezone=zone)
    return replace(EventFields("Offsite", times, "Main hall", "Agenda"), **changes)  # type: ignore[arg-type]


def test_new_objects_carry_uid_key_vtimezone_and_sequence() -> None:
    data = new_object(
        RemoteEvent(fields_at(datetime(2027, 3, 5, 9)), "bk-1"), "bk-1@calbridge", NOW
    )
    text = data.decode()
    assert "BEGIN:VTIMEZONE" in text and "TZID:Europe/Berlin" in text
    assert "X-CALBRIDGE-KEY:bk-1" in text and "SEQUENCE:0" in text
    parsed = item(data)
    assert (parsed.uid, parsed.key) == ("bk-1@calbridge", "bk-1")


def test_update_keeps_what_calbridge_does_not_model() -> None:
    original = event(
        "DTSTART;TZID=W. Europe Standard Time:20270305T090000",
        "DTEND;TZID=W. Europe Standard Time:20270305T100000",
        "SUMMARY;LANGUAGE=de:Besprechung",
        "ATTENDEE;CN=Bob:mailto:bob@example.com",
        "X-MOZ-GENERATION:3",
        "SEQUENCE:4",
        extra=WINDOWS_ZONE,
    ).replace(
        "END:VEVENT", "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT"
    )
    before = single(original)
    changed = replace(before, location="Room 7")
    text = apply_event(original, RemoteEvent(changed, "k"), NOW).decode()
    assert "ATTENDEE;CN=Bob:mailto:bob@example.com" in text
    assert "X-MOZ-GENERATION:3" in text and "BEGIN:VALARM" in text
    assert "SUMMARY;LANGUAGE=de:Besprechung" in text  # unchanged fields are not rewritten
    assert "DTSTART;TZID=W. Europe Standard Time:20270305T090000" in text
    assert "SEQUENCE:5" in text
    assert single(text) == changed


def test_updating_an_occurrence_writes_an_override_into_the_series() -> None:
    moved = replace(fields_at(datetime(2027, 3, 2, 15)), name="Moved")
    text = apply_event(SERIES, RemoteEvent(moved, "k", recurrence_id="20270302T080000Z"), NOW)
    assert text.decode().count("BEGIN:VEVENT") == 2
    assert "RECURRENCE-ID;TZID=Europe/Berlin:20270302T090000" in text.decode()
    found = {o.recurrence_id: o.fields for o in item(text).occurrences}
    assert found["20270302T080000Z"] == moved
    assert len(found) == 4  # still one series: 5 minus the EXDATE


def test_cancelling_an_occurrence_writes_a_cancelled_override() -> None:
    current = {o.recurrence_id: o.fields for o in item(SERIES).occurrences}
    cancelled = replace(current["20270304T080000Z"], status="cancelled")
    text = apply_event(SERIES, RemoteEvent(cancelled, "k", recurrence_id="20270304T080000Z"), NOW)
    found = {o.recurrence_id: o.fields for o in item(text).occurrences}
    assert found["20270304T080000Z"] == cancelled


def test_excluding_an_occurrence_adds_an_exdate_and_drops_its_override() -> None:
    moved = replace(fields_at(datetime(2027, 3, 2, 15)), name="Moved")
    with_moved = apply_event(SERIES, RemoteEvent(moved, "k", recurrence_id="20270302T080000Z"), NOW)
    text = exclude_occurrence(with_moved, "20270302T080000Z", NOW)
    assert text is not None
    assert "EXDATE;TZID=Europe/Berlin:20270302T090000" in text.decode()
    assert text.decode().count("BEGIN:VEVENT") == 1
    assert [o.recurrence_id for o in item(text).occurrences] == [
        "20270301T080000Z",
        "20270304T080000Z",
        "20270305T080000Z",
    ]
    assert exclude_occurrence(text, "20270302T080000Z", NOW) is None  # already excluded


# -------------------------------------------------------------- round trips

ZONES = st.sampled_from(
    [
        "Europe/Berlin",
        "America/New_York",
        "America/Argentina/Buenos_Aires",
        "Asia/Kathmandu",
        "Australia/Lord_Howe",
        "Etc/UTC",
        "UTC",
        None,
    ]
)
TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"))
    | st.sampled_from(["\\", "N", "n", ";", ",", ":", "\n", "\t", " ", '"']),
    min_size=1,
    max_size=60,
)  # no CR: iCalendar text cannot carry one (CR and CRLF come back as LF)


@st.composite
def event_fields(draw: st.DrawFn) -> EventFields:
    name = draw(TEXT.filter(lambda s: s.strip() != ""))
    if draw(st.booleans()):
        first = draw(st.dates(date(1990, 1, 1), date(2090, 1, 1)))
        times = make_times(
            first, first + timedelta(days=draw(st.integers(1, 40))), all_day=True, timezone=None
        )
    else:
        start = draw(st.datetimes(datetime(1990, 1, 1), datetime(2090, 1, 1))).replace(
            microsecond=0
        )
        end = start + timedelta(minutes=draw(st.integers(0, 3000)))
        try:
            times = make_times(start, end, all_day=False, timezone=draw(ZONES))
        except BadEvent:
            assume(False)  # an end inside a DST gap that lands before the start
    return EventFields(
        name=name,
        times=times,
        location=draw(st.none() | TEXT),
        notes=draw(st.none() | TEXT),
        status=draw(st.sampled_from(["tentative", "confirmed", "cancelled"])),
    )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_fields())
def test_fields_round_trip_exactly_through_a_new_object(fields: EventFields) -> None:
    data = new_object(RemoteEvent(fields, "bk"), "bk@calbridge", NOW)
    assert single(data) == fields


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_fields(), event_fields())
def test_fields_round_trip_exactly_through_an_update(
    before: EventFields, after: EventFields
) -> None:
    data = new_object(RemoteEvent(before, "bk"), "bk@calbridge", NOW)
    updated = apply_event(data, RemoteEvent(after, "bk"), NOW)
    assert single(updated) == after


# ------------------------------------------------- the fast reader agrees


def assert_readers_agree(data: str | bytes) -> None:
    for fast in (read_simple(REF, data), read_simple(REF, data, WINDOW)):
        if fast is not None:
            assert fast == parse_full(REF, data, WINDOW)


def test_the_fast_reader_agrees_with_icalendar_on_every_sample() -> None:
    """Runs last in this module: SAMPLES holds every object the tests above parsed."""
    assert len(SAMPLES) > 30
    taken = 0
    for data in SAMPLES:
        assert_readers_agree(data)
        taken += read_simple(REF, data) is not None
    assert taken > 10  # the fast path is actually used


def test_the_fast_reader_leaves_unusual_objects_to_icalendar() -> None:
    assert read_simple(REF, SERIES) is None
    assert (
        read_simple(
            REF, event("DTSTART;TZID=W. Europe Standard Time:20270305T090000", extra=WINDOWS_ZONE)
        )
        is None
    )
    assert read_simple(REF, "garbage") is None
    assert read_simple(REF, event("DTSTART:2027030")) is None


PLAIN_RULES = [
    "FREQ=WEEKLY;COUNT=8",
    "FREQ=DAILY;INTERVAL=3",
    "FREQ=WEEKLY;COUNT=5;INTERVAL=2;BYDAY=MO,TH",
    "FREQ=MONTHLY",
    "FREQ=MONTHLY;COUNT=2;INTERVAL=2",
]


@pytest.mark.parametrize("rule", PLAIN_RULES)
@pytest.mark.parametrize(
    "start",
    [
        "DTSTART;TZID=Europe/Berlin:20270305T090000",
        "DTSTART;VALUE=DATE:20270305",
        "DTSTART:20270305T090000Z",
        "DTSTART:20270305T090000",
    ],
)
def test_a_plain_series_is_read_fast_and_expands_as_icalendar_does(rule: str, start: str) -> None:
    data = event(start, f"RRULE:{rule}", "SUMMARY:Weekly review")
    fast = read_simple(REF, data, WINDOW)
    assert isinstance(fast, RemoteItem) and fast.is_series and len(fast.occurrences) > 1
    assert fast == parse_full(REF, data, WINDOW)
    assert read_simple(REF, data) is None  # without the window: left to icalendar


def test_a_series_with_exceptions_or_an_unusual_rule_is_left_to_icalendar() -> None:
    start = "DTSTART;TZID=Europe/Berlin:20270305T090000"
    for lines in (
        ("RRULE:FREQ=WEEKLY;COUNT=8", "EXDATE;TZID=Europe/Berlin:20270312T090000"),
        ("RRULE:FREQ=WEEKLY;UNTIL=20270401T000000Z",),
        ("RRULE:FREQ=WEEKLY;BYMONTH=3",),
        ("RRULE:COUNT=3;FREQ=WEEKLY",),  # not the order icalendar writes
        ("RRULE:FREQ=WEEKLY", "RRULE:FREQ=DAILY;COUNT=2"),
        ("RRULE:FREQ=SECONDLY",),
    ):
        data = event(start, *lines)
        assert read_simple(REF, data, WINDOW) is None, lines
        assert_readers_agree(data)


@given(
    st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]),
    st.none() | st.integers(1, 9999),
    st.none() | st.integers(1, 999),
    st.lists(st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU"]), max_size=7),
)
def test_a_plain_rule_is_text_icalendar_writes_back_unchanged(
    freq: str, count: int | None, interval: int | None, days: list[str]
) -> None:
    """The fast reader hands the RRULE text to the expansion as it is; the full reader hands
    icalendar's rendering of it. For the plain forms the fast reader accepts they are equal."""
    from icalendar.prop import vRecur

    from calbridge.providers.ical.fast import _PLAIN_RULE

    rule = f"FREQ={freq}"
    rule += f";COUNT={count}" if count else ""
    rule += f";INTERVAL={interval}" if interval else ""
    rule += f";BYDAY={','.join(days)}" if days else ""
    assert _PLAIN_RULE.fullmatch(rule)
    assert vRecur.from_ical(rule).to_ical().decode() == rule


EXTRAS = st.lists(
    st.sampled_from(
        [
            'ATTENDEE;CN="Bob, the builder";PARTSTAT=ACCEPTED:mailto:bob@example.com',
            "ORGANIZER;CN=Ann:mailto:Ann@Example.com",
            "ORGANIZER:mailto:broken address",
            "X-MICROSOFT-CDO-BUSYSTATUS:BUSY",
            "CATEGORIES:a,b\\,c",
            'DESCRIPTION;ALTREP="cid:part1":Long notes\\, with escapes\\n and more',
            "URL:https://example.com/a;b",
            "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT10M\r\nDESCRIPTION:x\r\nEND:VALARM",
            "LAST-MODIFIED:20270203T040506Z",
            "DURATION:PT45M",
            "STATUS:tentative",
            "SUMMARY;LANGUAGE=de:Besprechung",
            "LOCATION:" + "Folded line that is much longer than seventy-five octets " * 3,
        ]
    ),
    max_size=5,
    unique_by=lambda extra: extra.split(":", 1)[0].split(";", 1)[0],
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_fields(), EXTRAS)
def test_the_fast_reader_agrees_with_icalendar_on_generated_objects(
    fields: EventFields, extras: list[str]
) -> None:
    # unfolded first: dropping a property below must drop its continuation lines too
    text = new_object(RemoteEvent(fields, "bk"), "bk@calbridge", NOW).decode().replace("\r\n ", "")
    for extra in extras:
        name = extra.split(":", 1)[0].split(";", 1)[0]
        if name in ("DESCRIPTION", "SUMMARY", "LOCATION", "STATUS", "DURATION") or (
            name == "LAST-MODIFIED"
        ):
            text = "\r\n".join(line for line in text.split("\r\n") if not line.startswith(name))
            if name == "DURATION":
                text = "\r\n".join(x for x in text.split("\r\n") if not x.startswith("DTEND"))
        text = text.replace("END:VEVENT", extra + "\r\nEND:VEVENT")
    folded = "\r\n".join(_fold(line) for line in text.split("\r\n"))
    assert_readers_agree(folded)
    assert read_simple(REF, folded) is not None


def _fold(line: str) -> str:
    return "\r\n ".join(line[i : i + 60] for i in range(0, len(line), 60)) if line else line
