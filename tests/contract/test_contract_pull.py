"""Pulling from every CalDAV server (the provider contract, issue 9): listings, tokens,
incremental changes, request counts, rejections, series. Changes "made by a person" are plain
PUT/DELETE through the test server's helpers."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from contract_world import UNKNOWN_TOKENS, RemoteCalendar

from calbridge.domain.remote import RemoteItem, RemoteRejection
from calbridge.errors import TokenExpired
from caldav_samples import WINDOW, meeting, names, pull, vevent


def test_check_accepts_a_calendar_and_detects_sync_collection(calendar: RemoteCalendar) -> None:
    provider = calendar.provider()
    provider.check()
    assert provider.supports_sync is True
    assert provider.requests == 1


@pytest.fixture(params=[True, False], ids=["sync-collection", "etag-listing"])
def mode(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def test_initial_listing_returns_every_event_as_a_full_listing(
    calendar: RemoteCalendar, mode: bool
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
    calendar: RemoteCalendar, mode: bool
) -> None:
    calendar.put("keep.ics", meeting("keep", "Unchanged"))
    calendar.put("edit.ics", meeting("edit", "Before"))
    calendar.put("drop.ics", meeting("drop", "Doomed"))
    provider = calendar.provider(sync_collection=mode)
    token = pull(provider, None)[0][-1].token

    calendar.put("edit.ics", meeting("edit", "After"))
    calendar.put("new.ics", meeting("new", "Fresh"))
    calendar.delete("drop.ics")
    pages, found = pull(provider, token)

    assert names(found) == {calendar.href("edit.ics"): "After", calendar.href("new.ics"): "Fresh"}
    assert [href for page in pages for href in page.deleted] == [calendar.href("drop.ics")]
    assert not any(page.full for page in pages)
    assert pages[-1].token != token


def test_nothing_changed_costs_exactly_one_request(calendar: RemoteCalendar, mode: bool) -> None:
    for n in range(3):
        calendar.put(f"m{n}.ics", meeting(f"m{n}"))
    token = pull(calendar.provider(sync_collection=mode), None)[0][-1].token
    fresh = calendar.provider(sync_collection=None)  # a new process knows only the token
    pages, found = pull(fresh, token)
    assert fresh.requests == 1
    assert found == {} and pages[-1].done and pages[-1].token


def test_a_full_listing_reads_the_token_then_the_objects_in_one_query(
    calendar: RemoteCalendar,
) -> None:
    """The first pull reads the collection's token (a property), then every object with one
    calendar-query (pages of the batch size): two requests, however large the calendar."""
    for n in range(7):
        calendar.put(f"m{n}.ics", meeting(f"m{n}"))
    provider = calendar.provider(batch_size=3)
    provider.check()
    before = provider.requests
    pages, found = pull(provider, None)
    assert [len(page.items) for page in pages] == [3, 3, 1, 0]
    assert [page.done for page in pages] == [False, False, False, True]
    assert [page.token is not None for page in pages] == [False, False, False, True]
    assert all(page.full for page in pages) and not any(page.deleted for page in pages)
    assert len(found) == 7
    assert provider.requests - before == 2  # the token, one calendar-query


def test_a_first_pull_probes_for_sync_collection_before_it_reads(
    calendar: RemoteCalendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider that does not know yet whether the server has sync-collection (a new
    process) asks before it reads: here the query is not sent until the probe has started (a
    pull that probed after the query would wait forever). Three requests in all — the probe,
    the token, the query — and the token is the server's."""
    for n in range(3):
        calendar.put(f"m{n}.ics", meeting(f"m{n}"))
    provider = calendar.provider(sync_collection=None)
    probing = threading.Event()
    probe, query = provider.check, provider._pull._query_all

    def probed() -> None:
        probing.set()
        probe()

    def after_the_probe_started() -> list[bytes] | None:
        assert probing.wait(10), "the query waited for a probe that never started"
        return query()

    monkeypatch.setattr(provider, "check", probed)
    monkeypatch.setattr(provider._pull, "_query_all", after_the_probe_started)
    pages, found = pull(provider, None)
    assert provider.requests == 3 and len(found) == 3
    token = pages[-1].token
    assert token and not token.startswith("etag:")


def test_a_server_the_probe_finds_without_sync_collection_is_listed_by_etags(
    calendar: RemoteCalendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the probe finds no sync-collection, the objects are read by query and the
    listing is the PROPFIND of etags (our own ``etag:`` token), with no token asked for and
    no sync report sent."""
    for n in range(3):
        calendar.put(f"m{n}.ics", meeting(f"m{n}"))
    provider = calendar.provider(sync_collection=None)

    def without_sync() -> None:
        provider._supports_sync = False  # what the probe finds on such a server

    monkeypatch.setattr(provider, "check", without_sync)
    pages, found = pull(provider, None)
    assert len(found) == 3 and provider.requests == 2  # the query, the PROPFIND
    token = pages[-1].token
    assert token and token.startswith("etag:")
    _pages, nothing = pull(provider, token)
    assert nothing == {} and provider.requests == 3


def test_changes_come_in_batches_with_the_token_on_the_last_page_only(
    calendar: RemoteCalendar,
) -> None:
    provider = calendar.provider(batch_size=3)
    token = pull(provider, None)[0][-1].token
    for n in range(7):
        calendar.put(f"m{n}.ics", meeting(f"m{n}"))
    before = provider.requests
    pages, found = pull(provider, token)
    assert [len(page.items) for page in pages] == [3, 3, 1]
    assert [page.done for page in pages] == [False, False, True]
    assert len(found) == 7
    assert provider.requests - before == 1 + 3  # one sync report, one multiget per batch


def test_a_full_listing_read_after_its_token_is_complete_and_the_next_pull_replays_the_rest(
    calendar: RemoteCalendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full listing asks for the collection's token first (a PROPFIND of DAV:sync-token,
    two requests with the query: no listing), then reads the objects. Objects changed,
    created and removed between the two are read as they are now; the next pull, from the
    token, reports them again — the same objects, so applying them again changes nothing —
    and nothing is lost."""
    for name in ("a", "b", "c"):
        calendar.put(f"{name}.ics", meeting(name))
    provider = calendar.provider(batch_size=2)
    provider.check()
    puller = provider._pull
    query = puller._query_all

    def meanwhile() -> Any:
        calendar.put("a.ics", meeting("a", "Changed"))
        calendar.put("d.ics", meeting("d", "New"))
        calendar.delete("c.ics")
        return query()

    monkeypatch.setattr(puller, "_query_all", meanwhile)
    before = provider.requests
    pages, found = pull(provider, None)
    assert provider.requests - before == 2  # the token, the query
    assert names(found) == {
        calendar.href("a.ics"): "Changed",
        calendar.href("b.ics"): "Client meeting",
        calendar.href("d.ics"): "New",
    }
    assert not [h for page in pages for h in page.deleted]
    monkeypatch.setattr(puller, "_query_all", query)
    again, replayed = pull(provider, pages[-1].token)
    assert names(replayed) == {calendar.href("a.ics"): "Changed", calendar.href("d.ics"): "New"}
    assert [h for page in again for h in page.deleted] == [calendar.href("c.ics")]
    _pages, nothing = pull(provider, again[-1].token)
    assert nothing == {}


def test_a_full_listing_without_a_token_property_settles_what_changed_while_it_read(
    calendar: RemoteCalendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that gives no DAV:sync-token property: the query reads the objects and the
    listing gives the token. Objects changed, created and removed between the two: the
    listing's etags settle each (a multiget, a deletion), so what was pulled is the calendar
    as of the token, and nothing is reported twice."""
    for name in ("a", "b", "c"):
        calendar.put(f"{name}.ics", meeting(name))
    provider = calendar.provider(batch_size=2)
    puller = provider._pull
    monkeypatch.setattr(puller, "_token_now", lambda: "")
    listed = puller._full_listing

    def meanwhile(syncs: Any = None) -> Any:
        calendar.put("a.ics", meeting("a", "Changed"))
        calendar.put("d.ics", meeting("d", "New"))
        calendar.delete("c.ics")
        return listed(syncs)

    monkeypatch.setattr(puller, "_full_listing", meanwhile)
    pages, found = pull(provider, None)
    assert names(found)[calendar.href("a.ics")] == "Changed"  # read again after the listing
    assert names(found)[calendar.href("d.ics")] == "New"
    assert [h for page in pages for h in page.deleted] == [calendar.href("c.ics")]
    monkeypatch.setattr(puller, "_full_listing", listed)
    again, nothing = pull(provider, pages[-1].token)
    assert nothing == {} and not any(page.deleted for page in again)


def test_a_one_percent_change_costs_requests_for_the_change_only(calendar: RemoteCalendar) -> None:
    for n in range(40):
        calendar.put(f"m{n}.ics", meeting(f"m{n}"))
    provider = calendar.provider(batch_size=100)
    token = pull(provider, None)[0][-1].token
    calendar.put("m7.ics", meeting("m7", "Changed"))
    before = provider.requests
    _, found = pull(provider, token)
    assert names(found) == {calendar.href("m7.ics"): "Changed"}
    assert provider.requests - before == 2


def test_an_unknown_sync_token_raises_token_expired(
    calendar: RemoteCalendar, server_kind: str
) -> None:
    """Radicale answers 403, Xandikos 412, both with DAV:valid-sync-token. DAViCal's quirk:
    it answers a token it does not know with every member as a change (no error), so the
    listing is complete but deletions made meanwhile are not reported."""
    calendar.put("m.ics", meeting("m"))
    provider = calendar.provider()
    unknown = UNKNOWN_TOKENS[server_kind]
    if server_kind == "davical":
        pages, found = pull(provider, unknown)
        assert list(found) == [calendar.href("m.ics")]
        assert pages[-1].token and pages[-1].token != unknown
    else:
        with pytest.raises(TokenExpired, match="full resync"):
            pull(provider, unknown)
    with pytest.raises(TokenExpired):
        pull(calendar.provider(sync_collection=False), "not-an-etag-listing")


def test_a_token_of_the_other_mode_raises_token_expired(calendar: RemoteCalendar) -> None:
    calendar.put("m.ics", meeting("m"))
    sync_token = pull(calendar.provider(), None)[0][-1].token
    etag_token = pull(calendar.provider(sync_collection=False), None)[0][-1].token
    with pytest.raises(TokenExpired):
        pull(calendar.provider(sync_collection=False), sync_token)
    with pytest.raises(TokenExpired):
        pull(calendar.provider(sync_collection=True), etag_token)


def test_bad_objects_are_rejections_while_good_ones_still_come_through(
    calendar: RemoteCalendar, mode: bool
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


def test_get_reads_one_object_or_none(calendar: RemoteCalendar) -> None:
    calendar.put("m.ics", meeting("m", "Read me"))
    provider = calendar.provider()
    got = provider.get(calendar.href("m.ics"), WINDOW)
    assert isinstance(got, RemoteItem) and got.occurrences[0].fields.name == "Read me"
    assert provider.get(calendar.href("missing.ics"), WINDOW) is None


def test_a_person_made_series_arrives_expanded_with_exdates_and_overrides(
    calendar: RemoteCalendar,
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
