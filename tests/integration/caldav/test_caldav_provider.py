"""The CalDAV provider against a real Radicale (SPEC §3, issue 4).

Changes "made by a person" are plain PUT/DELETE on Radicale through the emulator's helpers;
faults come from a real proxy in front of Radicale (conftest.FaultProxy).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from calbridge.domain.event import make_times
from calbridge.domain.remote import (
    ChangePage,
    EventFields,
    RemoteEvent,
    RemoteItem,
    RemoteRef,
    RemoteRejection,
    Window,
)
from calbridge.emulators.radicale import RadicaleServer
from calbridge.errors import (
    ConfigError,
    Conflict,
    ProviderAuthError,
    ProviderError,
    RateLimited,
    TokenExpired,
)
from calbridge.providers.caldav import CalDAVProvider
from calbridge.providers.retry import RetryPolicy

if TYPE_CHECKING:  # fixtures' types; conftest is not imported at run time (pytest owns it)
    from conftest import Calendar, FaultProxy

WINDOW = Window(datetime(2027, 1, 1), datetime(2028, 1, 1))
ANN_PASSWORD = "ann-secret"


def vevent(uid: str, *lines: str, start: str = "20270305T090000Z") -> str:
    body = "\r\n".join(
        (
            "BEGIN:VEVENT",
            f"UID:{uid}",
            "DTSTAMP:20270101T000000Z",
            *([f"DTSTART:{start}"] if start else []),
            *lines,
            "END:VEVENT",
        )
    )
    return (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//A person//EN\r\n{body}\r\nEND:VCALENDAR\r\n"
    )


def meeting(uid: str, summary: str = "Client meeting", hour: int = 9) -> str:
    return vevent(
        uid,
        f"DTEND:20270305T{hour + 1:02d}0000Z",
        f"SUMMARY:{summary}",
        "ORGANIZER;CN=Ann:mailto:ann@example.com",
        start=f"20270305T{hour:02d}0000Z",
    )


def fields(name: str = "Booking", start: datetime = datetime(2027, 4, 1, 10)) -> EventFields:
    times = make_times(start, start + timedelta(hours=2), all_day=False, timezone="Europe/Berlin")
    return EventFields(name, times, "Hall A", "Catering for 40")


def pull(provider: CalDAVProvider, token: str | None) -> tuple[list[ChangePage], dict[str, object]]:
    pages = list(provider.list_changes(token, WINDOW))
    by_href: dict[str, object] = {}
    for page in pages:
        for entry in page.items:
            by_href[entry.ref.id if isinstance(entry, RemoteItem) else entry.ref_id] = entry
    return pages, by_href


def names(by_href: dict[str, object]) -> dict[str, str]:
    return {
        href: item.occurrences[0].fields.name
        for href, item in by_href.items()
        if isinstance(item, RemoteItem)
    }


# ----------------------------------------------------------------- check()


def test_check_accepts_a_calendar_and_detects_sync_collection(calendar: Calendar) -> None:
    provider = calendar.provider()
    provider.check()
    assert provider.supports_sync is True
    assert provider.requests == 1


def test_check_with_a_wrong_password_is_an_auth_error_naming_the_calendar(
    calendar: Calendar,
) -> None:
    provider = CalDAVProvider(calendar.url, "ann", "wrong", name="front desk")
    with pytest.raises(ProviderAuthError) as error:
        provider.check()
    message = str(error.value)
    assert "calendar 'front desk' (CalDAV)" in message
    assert "refused the username or password" in message
    assert "`calbridge calendars update front desk --password-env VAR`" in message


def test_check_on_another_users_calendar_is_an_auth_error(radicale: RadicaleServer) -> None:
    url = radicale.make_calendar("bob", "private")
    with pytest.raises(ProviderAuthError, match="user 'ann' may not access"):
        CalDAVProvider(url, "ann", ANN_PASSWORD, name="bob's").check()


def test_check_on_a_collection_that_is_not_a_calendar_is_a_config_error(
    radicale: RadicaleServer,
) -> None:
    for url in (radicale.url + "/ann/", radicale.make_address_book("ann", "contacts")):
        with pytest.raises(ConfigError, match="is not a calendar collection"):
            CalDAVProvider(url, "ann", ANN_PASSWORD, name="home").check()


def test_check_on_a_missing_collection_is_a_config_error(radicale: RadicaleServer) -> None:
    with pytest.raises(ConfigError, match="there is no collection at"):
        CalDAVProvider(radicale.url + "/ann/nothing/", "ann", ANN_PASSWORD).check()


def test_check_on_an_unreachable_server_names_host_and_port(unused_port: int) -> None:
    provider = CalDAVProvider(
        f"http://127.0.0.1:{unused_port}/ann/work/",
        "ann",
        "pw",
        name="work",
        retry=RetryPolicy(attempts=2, base=0.001),
    )
    with pytest.raises(ProviderError, match=f"cannot reach the server at 127.0.0.1:{unused_port}"):
        provider.check()
    assert provider.requests == 2  # retried once


# ------------------------------------------------------------------ pulling


@pytest.fixture(params=[True, False], ids=["sync-collection", "etag-listing"])
def mode(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def test_initial_listing_returns_every_event_as_a_full_listing(
    calendar: Calendar, mode: bool
) -> None:
    for n in range(5):
        calendar.put(f"m{n}.ics", meeting(f"m{n}", f"Meeting {n}"))
    pages, found = pull(calendar.provider(sync_collection=mode), None)
    assert names(found) == {calendar.href(f"m{n}.ics"): f"Meeting {n}" for n in range(5)}
    assert all(page.full for page in pages)
    assert pages[-1].done and pages[-1].token
    assert [p.token for p in pages[:-1]] == [None] * (len(pages) - 1)
    first = found[calendar.href("m0.ics")]
    assert isinstance(first, RemoteItem)
    assert first.organizer == "mailto:ann@example.com" and first.ref.etag


def test_incremental_pull_sees_creates_changes_and_deletes_made_on_the_server(
    calendar: Calendar, mode: bool
) -> None:
    calendar.put("keep.ics", meeting("keep", "Unchanged"))
    calendar.put("edit.ics", meeting("edit", "Before"))
    calendar.put("drop.ics", meeting("drop", "Doomed"))
    provider = calendar.provider(sync_collection=mode)
    token = pull(provider, None)[0][-1].token

    calendar.put("edit.ics", meeting("edit", "After"))
    calendar.put("new.ics", meeting("new", "Fresh"))
    calendar.server.delete(calendar.url + "drop.ics")
    pages, found = pull(provider, token)

    assert names(found) == {calendar.href("edit.ics"): "After", calendar.href("new.ics"): "Fresh"}
    assert [href for page in pages for href in page.deleted] == [calendar.href("drop.ics")]
    assert not any(page.full for page in pages)
    assert pages[-1].token != token


def test_nothing_changed_costs_exactly_one_request(calendar: Calendar, mode: bool) -> None:
    for n in range(3):
        calendar.put(f"m{n}.ics", meeting(f"m{n}"))
    token = pull(calendar.provider(sync_collection=mode), None)[0][-1].token
    fresh = calendar.provider(sync_collection=None)  # a new process knows only the token
    pages, found = pull(fresh, token)
    assert fresh.requests == 1
    assert found == {} and pages[-1].done and pages[-1].token


def test_changes_come_in_batches_with_the_token_on_the_last_page_only(calendar: Calendar) -> None:
    for n in range(7):
        calendar.put(f"m{n}.ics", meeting(f"m{n}"))
    provider = calendar.provider(batch_size=3)
    provider.check()
    before = provider.requests
    pages, found = pull(provider, None)
    assert [len(page.items) for page in pages] == [3, 3, 1]
    assert [page.done for page in pages] == [False, False, True]
    assert len(found) == 7
    assert provider.requests - before == 1 + 3  # one sync report, one multiget per batch


def test_a_one_percent_change_costs_requests_for_the_change_only(calendar: Calendar) -> None:
    for n in range(40):
        calendar.put(f"m{n}.ics", meeting(f"m{n}"))
    provider = calendar.provider(batch_size=100)
    token = pull(provider, None)[0][-1].token
    calendar.put("m7.ics", meeting("m7", "Changed"))
    before = provider.requests
    _, found = pull(provider, token)
    assert names(found) == {calendar.href("m7.ics"): "Changed"}
    assert provider.requests - before == 2


def test_an_invalid_sync_token_raises_token_expired(calendar: Calendar) -> None:
    calendar.put("m.ics", meeting("m"))
    provider = calendar.provider()
    with pytest.raises(TokenExpired, match="full resync"):
        pull(provider, "http://radicale.org/ns/sync/0000000000000000")
    with pytest.raises(TokenExpired):
        pull(calendar.provider(sync_collection=False), "not-an-etag-listing")


def test_a_token_of_the_other_mode_raises_token_expired(calendar: Calendar) -> None:
    calendar.put("m.ics", meeting("m"))
    sync_token = pull(calendar.provider(), None)[0][-1].token
    etag_token = pull(calendar.provider(sync_collection=False), None)[0][-1].token
    with pytest.raises(TokenExpired):
        pull(calendar.provider(sync_collection=False), sync_token)
    with pytest.raises(TokenExpired):
        pull(calendar.provider(sync_collection=True), etag_token)


def test_bad_objects_are_rejections_while_good_ones_still_come_through(
    calendar: Calendar, mode: bool
) -> None:
    bad = {
        "backwards.ics": (vevent("b1", "DTEND:20270305T080000Z"), "is before start"),
        "mars.ics": (
            vevent("b2", "DTSTART;TZID=Mars/Olympus:20270305T090000", start=""),
            "unknown time zone",
        ),
        "organizer.ics": (vevent("b3", "ORGANIZER:mailto:not an address"), "organizer"),
        "huge.ics": (vevent("b4", "DESCRIPTION:" + "x" * 300_000), "notes are 300,000"),
        "task.ics": (vevent("b5", start="").replace("VEVENT", "VTODO"), "no VEVENT"),
    }
    for name, (ics, _) in bad.items():
        calendar.put(name, ics)
    calendar.put("good.ics", meeting("good", "Good one"))
    _, found = pull(calendar.provider(sync_collection=mode), None)
    assert names(found) == {calendar.href("good.ics"): "Good one"}
    for name, (_, reason) in bad.items():
        rejection = found[calendar.href(name)]
        assert isinstance(rejection, RemoteRejection) and reason in rejection.reason, name


def test_a_seeded_calendar_lists_every_object_at_its_uid(calendar: Calendar) -> None:
    """The emulator's one-request seeding (for benchmarks) leaves a normal calendar behind."""
    zoned = vevent("z1", "DTEND;TZID=Europe/Berlin:20270305T100000", "SUMMARY:Zoned", start="")
    zoned = zoned.replace("DTEND", "DTSTART;TZID=Europe/Berlin:20270305T090000\r\nDTEND")
    seeds = [meeting("s1", "First"), meeting("s2", "Second"), zoned]
    calendar.server.put_collection(calendar.url, seeds, "Seeded")
    provider = calendar.provider()
    provider.check()
    pages, found = pull(provider, None)
    assert names(found) == {
        calendar.href("s1.ics"): "First",
        calendar.href("s2.ics"): "Second",
        calendar.href("z1.ics"): "Zoned",
    }
    calendar.put("s3.ics", meeting("s3", "Later"))
    assert names(pull(provider, pages[-1].token)[1]) == {calendar.href("s3.ics"): "Later"}


def test_get_reads_one_object_or_none(calendar: Calendar) -> None:
    calendar.put("m.ics", meeting("m", "Read me"))
    provider = calendar.provider()
    got = provider.get(calendar.href("m.ics"), WINDOW)
    assert isinstance(got, RemoteItem) and got.occurrences[0].fields.name == "Read me"
    assert provider.get(calendar.href("missing.ics"), WINDOW) is None


def test_a_person_made_series_arrives_expanded_with_exdates_and_overrides(
    calendar: Calendar,
) -> None:
    series = vevent(
        "weekly",
        "DTEND;TZID=Europe/Berlin:20270301T100000",
        "SUMMARY:Weekly planning",
        "RRULE:FREQ=WEEKLY;COUNT=4",
        "EXDATE;TZID=Europe/Berlin:20270315T090000",
        start="",
    ).replace("DTEND", "DTSTART;TZID=Europe/Berlin:20270301T090000\r\nDTEND")
    override = (
        "BEGIN:VEVENT\r\nUID:weekly\r\nDTSTAMP:20270101T000000Z\r\n"
        "RECURRENCE-ID;TZID=Europe/Berlin:20270308T090000\r\n"
        "DTSTART;TZID=Europe/Berlin:20270308T140000\r\nDTEND;TZID=Europe/Berlin:20270308T150000\r\n"
        "SUMMARY:Planning (moved)\r\nEND:VEVENT\r\n"
    )
    calendar.put("weekly.ics", series.replace("END:VCALENDAR", override + "END:VCALENDAR"))
    _, found = pull(calendar.provider(), None)
    item = found[calendar.href("weekly.ics")]
    assert isinstance(item, RemoteItem) and item.is_series
    assert [(o.recurrence_id, o.fields.name) for o in item.occurrences] == [
        ("20270301T080000Z", "Weekly planning"),
        ("20270308T080000Z", "Planning (moved)"),
        ("20270322T080000Z", "Weekly planning"),
    ]


# ------------------------------------------------------------------ writing


def test_create_writes_at_the_key_href_and_round_trips(calendar: Calendar) -> None:
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
def test_time_zones_and_all_day_events_round_trip_through_radicale(
    calendar: Calendar, booking: EventFields
) -> None:
    provider = calendar.provider()
    written = provider.create(RemoteEvent(booking, "rt"))
    _, found = pull(provider, None)
    item = found[written.ref.id]
    assert isinstance(item, RemoteItem) and item.occurrences[0].fields == booking


def test_a_key_that_is_not_a_plain_name_gets_a_stable_hashed_href(calendar: Calendar) -> None:
    provider = calendar.provider()
    first = provider.create(RemoteEvent(fields(), "booking 17/3 ünïcode"))
    assert first.ref.id.startswith(calendar.href("cb-")) and first.ref.id.endswith(".ics")
    again = provider.create(RemoteEvent(fields(), "booking 17/3 ünïcode"))
    assert again.adopted and again.ref.id == first.ref.id


def test_a_create_whose_uid_is_taken_elsewhere_is_a_conflict(calendar: Calendar) -> None:
    calendar.put("other.ics", meeting("taken-uid"))
    with pytest.raises(Conflict, match="another object probably uses UID taken-uid"):
        calendar.provider().create(RemoteEvent(fields(), "bk-10", uid="taken-uid"))


def test_a_retried_create_is_adopted_without_a_duplicate(calendar: Calendar) -> None:
    provider = calendar.provider()
    first = provider.create(RemoteEvent(fields(), "bk-2"))
    again = provider.create(RemoteEvent(fields(), "bk-2"))
    assert again.adopted and again.ref == first.ref and again.uid == first.uid
    _, found = pull(provider, None)
    assert list(found) == [first.ref.id]


def test_create_over_an_object_calbridge_did_not_make_is_a_conflict(calendar: Calendar) -> None:
    calendar.put("bk-3.ics", meeting("someone-elses"))
    with pytest.raises(Conflict, match="calbridge did not create"):
        calendar.provider().create(RemoteEvent(fields(), "bk-3"))


def test_a_create_whose_answer_was_lost_is_adopted_on_retry(
    proxied: Calendar, proxy: FaultProxy
) -> None:
    provider = proxied.provider()
    proxy.inject("drop-after", method="PUT")  # Radicale stores it; the answer never arrives
    written = provider.create(RemoteEvent(fields(), "bk-4"))
    assert written.adopted
    assert [status for method, _, status in proxy.log if method == "PUT"] == [None, 412]
    _, found = pull(provider, None)
    assert list(found) == [written.ref.id]


def test_update_with_a_stale_etag_is_a_conflict(calendar: Calendar) -> None:
    provider = calendar.provider()
    written = provider.create(RemoteEvent(fields(), "bk-5"))
    provider.update(written.ref, RemoteEvent(fields("Renamed"), "bk-5"))
    with pytest.raises(Conflict, match="changed on the calendar"):
        provider.update(written.ref, RemoteEvent(fields("Stale"), "bk-5"))


def test_update_of_an_object_deleted_on_the_calendar_is_a_conflict(calendar: Calendar) -> None:
    provider = calendar.provider()
    written = provider.create(RemoteEvent(fields(), "bk-6"))
    calendar.server.delete(calendar.url + "bk-6.ics")
    with pytest.raises(Conflict, match="deleted on the calendar"):
        provider.update(written.ref, RemoteEvent(fields("Renamed"), "bk-6"))


def test_update_changes_our_fields_and_keeps_a_persons_additions(calendar: Calendar) -> None:
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


def make_series(calendar: Calendar) -> RemoteItem:
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


def test_editing_one_occurrence_writes_an_override_into_the_series(calendar: Calendar) -> None:
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


def test_cancelling_one_occurrence_shows_it_cancelled(calendar: Calendar) -> None:
    series = make_series(calendar)
    provider = calendar.provider()
    cancelled = replace(series.occurrences[2].fields, status="cancelled")
    provider.update(series.ref, RemoteEvent(cancelled, "occ", recurrence_id="20270303T080000Z"))
    item = provider.get(series.ref.id, WINDOW)
    assert isinstance(item, RemoteItem)
    assert {o.recurrence_id: o.fields.status for o in item.occurrences}["20270303T080000Z"] == (
        "cancelled"
    )


def test_deleting_one_occurrence_adds_an_exdate(calendar: Calendar) -> None:
    series = make_series(calendar)
    provider = calendar.provider()
    provider.delete(series.ref, "20270304T080000Z")
    assert "EXDATE;TZID=Europe/Berlin:20270304T090000" in (calendar.text("daily.ics") or "")
    item = provider.get(series.ref.id, WINDOW)
    assert isinstance(item, RemoteItem)
    assert "20270304T080000Z" not in [o.recurrence_id for o in item.occurrences]
    assert len(item.occurrences) == 4
    assert provider.last_written is not None and provider.last_written.etag == item.ref.etag


def test_delete_is_conditional_and_an_already_gone_object_is_fine(calendar: Calendar) -> None:
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


def test_server_errors_and_rate_limits_are_retried(proxied: Calendar, proxy: FaultProxy) -> None:
    proxied.put("m.ics", meeting("m", "Survivor"))
    provider = proxied.provider()
    proxy.inject("500", "429:0", "drop", method="REPORT")
    proxy.inject("503", method="PUT")
    _, found = pull(provider, None)
    assert names(found) == {proxied.href("m.ics"): "Survivor"}
    written = provider.create(RemoteEvent(fields(), "bk-8"))
    assert not written.adopted
    statuses = [status for _, _, status in proxy.log]
    assert statuses.count(500) == 1 and statuses.count(429) == 1 and statuses.count(503) == 1


def test_retries_back_off_exponentially_and_honour_retry_after(
    proxied: Calendar, proxy: FaultProxy
) -> None:
    waits: list[float] = []
    policy = RetryPolicy(attempts=4, base=0.5, cap=30, jitter=0.5, sleep=waits.append)
    provider = proxied.provider(retry=policy)
    proxy.inject("500", "503", "429:7")
    provider.check()
    assert 0.5 <= waits[0] <= 0.75 and 1.0 <= waits[1] <= 1.5  # base·2ⁿ plus jitter
    assert waits[2] == 7  # the server's Retry-After
    assert provider.requests == 4


def test_a_put_answer_without_etag_is_completed_by_asking_for_it(
    proxied: Calendar, proxy: FaultProxy
) -> None:
    provider = proxied.provider()
    proxy.inject("no-etag", method="PUT")
    written = provider.create(RemoteEvent(fields(), "bk-9"))
    got = provider.get(written.ref.id, WINDOW)
    assert isinstance(got, RemoteItem) and written.ref.etag == got.ref.etag is not None
    assert [m for m, _, _ in proxy.log] == ["PUT", "PROPFIND", "GET"]


def test_a_server_that_keeps_failing_is_a_provider_error_naming_it(
    proxied: Calendar, proxy: FaultProxy
) -> None:
    provider = proxied.provider()
    proxy.inject(*["502"] * 4)
    with pytest.raises(ProviderError, match=r"failed with 502 .* after 4 attempts") as error:
        provider.check()
    assert "calendar 'work' (CalDAV)" in str(error.value)
    assert provider.requests == 4


def test_a_server_that_keeps_rate_limiting_is_rate_limited(
    proxied: Calendar, proxy: FaultProxy
) -> None:
    proxy.inject(*["429:0"] * 4)
    with pytest.raises(RateLimited) as error:
        proxied.provider().check()
    assert error.value.retry_after == 0
