"""EWS-specific behaviours: sync states (invalid -> full resync, 512-change pages), throttling
(ErrorServerBusy back-off, 503), a crash between CreateItem and its commit, legacy-DN
organizers, and that exchangelib parses every emulator response as-is (no fallback)."""

from __future__ import annotations

import logging
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from calbridge.domain.remote import Window
from calbridge.providers.retry import RetryPolicy
from calbridge.store.models import Event, Link
from calbridge.sync.engine import sync_calendar
from calbridge.sync.providers import open_provider
from calbridge_emulators.ews.store import Organizer, Pattern
from worlds import book

World = Any  # conftest.EwsWorld
WINDOW = Window(datetime(2026, 12, 1), datetime(2028, 2, 1))


def test_invalid_sync_state_resyncs_in_full_without_duplicates_or_cancellations(
    world: World,
) -> None:
    world.add_calendar("front")
    keep = world.create("Keep", "2027-03-01T09:00:00", "2027-03-01T10:00:00")
    world.create("Also", "2027-03-02T09:00:00", "2027-03-02T10:00:00")
    assert world.sync("front").created == 2
    gone = world.create("Short-lived", "2027-03-03T09:00:00", "2027-03-03T10:00:00")
    assert world.sync("front").created == 1
    world.org.external_delete(world.mailbox, gone)
    world.org.external_update(world.mailbox, keep, subject="Keep (renamed)")
    world.org.mailbox(world.mailbox).forget_sync_states()  # e.g. the mailbox was moved
    report = world.sync("front")
    assert report.ok, report.error
    assert report.full_resync
    assert report.created == 0
    assert report.cancelled == 1  # only the one deleted meanwhile
    statuses = {e.name: e.status for e in world.bookings()}
    assert statuses == {
        "Keep (renamed)": "confirmed",
        "Also": "confirmed",
        "Short-lived": "cancelled",
    }
    assert world.sync("front").requests == 1


def test_many_changes_come_in_pages_of_at_most_512(world: World) -> None:
    world.add_calendar("front")
    start = datetime(2027, 3, 1, 8, tzinfo=UTC)
    for i in range(600):
        at = start + timedelta(hours=i)
        world.org.external_create(world.mailbox, f"Slot {i}", at, at + timedelta(minutes=30))
    provider = world.provider("front")
    pages = list(provider.list_changes(None, WINDOW))
    assert [len(p.items) for p in pages] == [512, 88]
    assert [p.done for p in pages] == [False, True]
    assert pages[0].token is None and pages[1].token
    assert set(world.org.max_changes_seen) == {512}
    report = world.sync("front")
    assert report.created == 600


def test_server_busy_is_retried_after_the_back_off_it_asks_for(world: World) -> None:
    world.add_calendar("front")
    world.create("Busy day", "2027-03-01T09:00:00", "2027-03-01T10:00:00")
    waits: list[float] = []
    provider = world.provider("front", retry=RetryPolicy(attempts=4, sleep=waits.append))
    world.org.inject("SyncFolderItems", "busy", times=2, back_off_ms=1500)
    world.org.inject("GetItem", "503")
    [page] = list(provider.list_changes(None, WINDOW))
    assert [i.occurrences[0].fields.name for i in page.items] == ["Busy day"]  # type: ignore[union-attr]
    assert waits[:2] == [1.5, 1.5]
    assert len(waits) == 3  # and one exponential back-off for the 503


def test_server_busy_that_does_not_end_fails_the_sync_with_one_line(world: World) -> None:
    world.add_calendar("front")
    world.org.inject("SyncFolderItems", "busy", times=10, back_off_ms=1)
    report = world.sync("front")
    assert not report.ok
    assert "Exchange is busy (ErrorServerBusy)" in (report.error or "")
    assert "\n" not in (report.error or "")


class Crash(BaseException):
    """The process dies (no exception handler of the engine runs)."""


def test_a_crash_between_create_item_and_its_commit_is_adopted_next_run(world: World) -> None:
    world.add_calendar("mine", owner="u-tom")
    with world.store.session() as session:
        book(session, "Launch party", "2027-03-10T18:00", "2027-03-10T23:00")

    def crashing(calendar: Any) -> Any:
        provider = open_provider(calendar, world.box)
        real = provider.write_many

        def write_then_die(ops: Any) -> Any:
            real(ops)  # the items are created on Exchange...
            raise Crash  # ...and the process dies before the links are committed

        provider.write_many = write_then_die
        return provider

    with pytest.raises(Crash):
        sync_calendar(world.store, world.calendar_id("mine"), crashing, now=world.now)
    assert [i.subject for i in world.items()] == ["Launch party"]
    with world.store.session() as session:
        assert session.scalars(select(Link.state)).one() == "creating"
    report = world.sync("mine")
    assert report.ok, report.error
    assert [i.subject for i in world.items()] == ["Launch party"]  # adopted, not duplicated
    with world.store.session() as session:
        link = session.scalars(select(Link)).one()
        assert (link.state, link.remote_id) == ("ok", world.items()[0].id)
        assert session.scalar(select(func.count()).select_from(Event)) == 1
    assert "FindItem" in [op for op, _ in world.org.calls]


def test_legacy_dn_organizer_is_resolved_to_smtp(world: World) -> None:
    tom = world.org.add_mailbox("tom@harbour.example", "Tom Hardy")
    world.add_calendar("front")
    world.create(
        "Staff meeting",
        "2027-03-01T09:00:00",
        "2027-03-01T10:00:00",
        organizer=Organizer("Tom Hardy", tom.legacy_dn, "EX"),
    )
    world.create(
        "Staff meeting 2",
        "2027-03-02T09:00:00",
        "2027-03-02T10:00:00",
        organizer=Organizer("Tom Hardy", tom.legacy_dn, "EX"),
    )
    report = world.sync("front")
    assert report.created == 2, report.error
    assert {e.booked_by_id for e in world.bookings()} == {"u-tom"}
    assert [op for op, _ in world.org.calls].count("ResolveNames") == 1  # cached


def test_exchangelib_parses_every_response_without_fallback(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Every operation the connector uses, against responses written through the schema
    models: no exchangelib warning (it logs one when it falls back on a value it cannot
    parse), and the parsed values are the stored ones."""
    world.org.add_mailbox("tom@harbour.example", "Tom Hardy")
    tom = world.org.mailbox("tom@harbour.example")
    world.add_calendar("mine", owner="u-tom")
    world.create(
        "Quarterly", "2027-03-01T09:00:00", "2027-03-01T10:30:00", "Europe/Berlin",
        organizer=Organizer("Tom Hardy", tom.legacy_dn, "EX"), location="Hall", body="Agenda",
    )  # fmt: skip
    master = world.series(
        "Yoga",
        "2027-03-02T07:00:00",
        "2027-03-02T08:00:00",
        Pattern("Daily", 2, end_date=datetime(2027, 3, 20).date()),
        "America/New_York",
    )
    first = datetime(2027, 3, 2, 12, tzinfo=UTC)
    world.org.external_modify_occurrence(
        world.mailbox, master, first + timedelta(days=2), subject="Yoga (outdoors)"
    )
    world.org.external_delete_occurrence(world.mailbox, master, first + timedelta(days=4))
    world.create(
        "Fair", "2027-05-03T00:00:00", "2027-05-05T00:00:00", "Europe/Berlin", all_day=True
    )
    with world.store.session() as session:
        book(session, "Pushed", "2027-03-12T18:00", "2027-03-12T19:00")
    caplog.set_level(logging.DEBUG, logger="exchangelib")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = world.sync("mine")
        assert report.ok, report.error
        provider = world.provider("mine")
        items = {
            i.occurrences[0].fields.name: i
            for p in provider.list_changes(None, WINDOW)
            for i in p.items
        }
    problems = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("exchangelib")
    ]
    assert problems == []
    quarterly = items["Quarterly"].occurrences[0].fields  # type: ignore[union-attr]
    assert (quarterly.times.timezone, str(quarterly.times.start)) == (
        "Europe/Berlin",
        "2027-03-01 09:00:00",
    )
    assert (quarterly.location, quarterly.notes) == ("Hall", "Agenda")
    assert items["Quarterly"].organizer == "tom@harbour.example"  # type: ignore[union-attr]
    yoga = items["Yoga"]
    assert yoga.is_series  # type: ignore[union-attr]
    names = [o.fields.name for o in yoga.occurrences]  # type: ignore[union-attr]
    assert len(names) == 9 and names.count("Yoga (outdoors)") == 1
    assert str(yoga.occurrences[0].fields.times.start) == "2027-03-02 07:00:00"  # type: ignore[union-attr]
    fair = items["Fair"].occurrences[0].fields.times  # type: ignore[union-attr]
    assert (fair.all_day, str(fair.start), str(fair.end)) == (True, "2027-05-03", "2027-05-05")
    assert items["Pushed"].key is not None  # type: ignore[union-attr]
