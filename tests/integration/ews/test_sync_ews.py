"""The two-way sync engine against Exchange over EWS (the emulator over HTTP, real
exchangelib): the engine's behaviours, then the EWS-specific ones."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from calbridge.domain.event import make_times
from calbridge.store.events import ManualAssignment, create_event, update_event
from calbridge.store.models import ConflictRecord, Rejection
from calbridge.sync.engine import sync_calendar
from calbridge.sync.providers import open_provider
from calbridge_emulators.ews.store import Organizer, Pattern

World = Any  # conftest.EwsWorld


def change(world: World, booking: str, **changes: Any) -> None:
    with world.store.session() as session:
        from calbridge.store.models import Event

        event = session.scalars(select(Event).where(Event.name == booking)).one()
        update_event(session, event, changes)


def owner_booking(world: World, name: str, start: str, end: str, **kw: Any) -> None:
    with world.store.session() as session:
        create_event(
            session,
            name=name,
            times=make_times(
                start, end, all_day=kw.pop("all_day", False), timezone=kw.pop("tz", None)
            ),
            manual=ManualAssignment("co-acme", "ct-ann", "u-tom", "u-tom"),
            **kw,
        )


def test_new_calendar_event_becomes_booking_assigned_from_organizer(world: World) -> None:
    world.add_calendar("front")
    world.create(
        "Acme offsite",
        "2027-03-01T09:00:00",
        "2027-03-01T17:00:00",
        "Europe/London",
        organizer=Organizer("Ann", "ANN@acme-events.example"),
    )
    report = world.sync("front")
    assert report.ok, report.error
    assert report.created == 1
    event = world.booking("Acme offsite")
    assert (event.client_id, event.client_contact_id, event.booked_by_id) == (
        "co-acme",
        "ct-ann",
        "u-va",
    )
    assert (event.timezone, event.start) == ("Europe/London", "2027-03-01T09:00:00")


def test_mailbox_owner_as_organizer_resolves_to_the_staff_user(world: World) -> None:
    world.add_calendar("front")
    world.create("House tour", "2027-03-02T10:00:00", "2027-03-02T11:00:00")
    assert world.sync("front").created == 1
    event = world.booking("House tour")
    assert (event.booked_by_id, event.client_contact_id) == ("u-mia", "ct-mia")


def test_no_change_sync_is_one_request(world: World) -> None:
    world.add_calendar("front")
    for i in range(5):
        world.create(f"Event {i}", f"2027-03-0{i + 1}T09:00:00", f"2027-03-0{i + 1}T10:00:00")
    assert world.sync("front").created == 5
    again = world.sync("front")
    assert (again.created, again.updated, again.pushed_created, again.pushed_updated) == (0,) * 4
    assert again.requests == 1
    assert world.org.calls[-1][0] == "SyncFolderItems"


def test_calendar_edit_updates_fields_but_never_reassigns(world: World) -> None:
    world.add_calendar("front")
    item_id = world.create(
        "Offsite",
        "2027-03-01T09:00:00",
        "2027-03-01T17:00:00",
        organizer=Organizer("Ann", "ann@acme-events.example"),
    )
    world.sync("front")
    start = datetime(2027, 3, 1, 10, tzinfo=__import__("datetime").UTC)
    world.org.external_update(
        world.mailbox,
        item_id,
        subject="Offsite (moved)",
        start=start,
        end=start + timedelta(hours=8),
    )
    report = world.sync("front")
    assert report.updated == 1 and report.created == 0
    event = world.booking("Offsite (moved)")
    assert event.start == "2027-03-01T10:00:00"
    assert event.client_id == "co-acme"


def test_booking_change_is_pushed_and_its_echo_is_not_reapplied(world: World) -> None:
    world.add_calendar("front")
    world.create("Tasting", "2027-03-01T09:00:00", "2027-03-01T10:00:00")
    world.sync("front")
    change(world, "Tasting", name="Tasting (wine)", location="Cellar", notes="Six wines\nCheese")
    pushed = world.sync("front")
    assert pushed.pushed_updated == 1, pushed.error
    [stored] = world.items()
    assert (stored.subject, stored.location, stored.body) == (
        "Tasting (wine)",
        "Cellar",
        "Six wines\nCheese",
    )
    echo = world.sync("front")
    assert (echo.updated, echo.pushed_updated, echo.conflicts) == (0, 0, 0)
    assert world.sync("front").requests == 1


def test_deleted_on_calendar_cancels_booking(world: World) -> None:
    world.add_calendar("front")
    gone = world.create("Gone", "2027-03-01T09:00:00", "2027-03-01T10:00:00")
    off = world.create("Called off", "2027-03-02T09:00:00", "2027-03-02T10:00:00")
    world.sync("front")
    world.org.external_delete(world.mailbox, gone)
    world.org.external_update(world.mailbox, off, is_cancelled=True)
    report = world.sync("front")
    assert report.cancelled == 2, report
    assert {e.status for e in world.bookings()} == {"cancelled"}


def test_cancelled_booking_deletes_item_without_meeting_cancellations(world: World) -> None:
    world.add_calendar("front")
    world.create("Keep", "2027-03-01T09:00:00", "2027-03-01T10:00:00")
    world.create("Drop", "2027-03-02T09:00:00", "2027-03-02T10:00:00")
    world.sync("front")
    change(world, "Drop", status="cancelled")
    assert world.sync("front").pushed_deleted == 1
    assert [i.subject for i in world.items()] == ["Keep"]
    assert world.org.mailbox(world.mailbox).cancellations_sent == []
    assert world.sync("front").cancelled == 0


def test_calendar_that_asks_for_cancellations_sends_them(world: World) -> None:
    world.add_calendar("front", cancellations=True)
    world.create("Drop", "2027-03-02T09:00:00", "2027-03-02T10:00:00")
    world.sync("front")
    change(world, "Drop", status="cancelled")
    assert world.sync("front").pushed_deleted == 1
    assert len(world.org.mailbox(world.mailbox).cancellations_sent) == 1


def test_field_changed_on_both_sides_is_decided_by_policy_and_recorded(world: World) -> None:
    world.add_calendar("front")  # booking-wins
    item_id = world.create(
        "Dinner", "2027-03-01T19:00:00", "2027-03-01T22:00:00", location="Sea Lounge"
    )
    world.sync("front")
    change(world, "Dinner", name="Dinner (booking)")
    world.org.external_update(
        world.mailbox, item_id, subject="Dinner (calendar)", location="Terrace"
    )
    report = world.sync("front")
    assert report.conflicts == 1
    assert world.booking("Dinner (booking)").location == "Terrace"
    with world.store.session() as session:
        conflict = session.scalars(select(ConflictRecord)).one()
        assert (conflict.field, conflict.winner) == ("name", "booking")
    [stored] = world.items()
    assert (stored.subject, stored.location) == ("Dinner (booking)", "Terrace")


def test_owner_bookings_are_pushed_in_few_requests(world: World) -> None:
    world.add_calendar("mine", owner="u-tom")
    for i in range(30):
        owner_booking(
            world,
            f"Tour {i}",
            f"2027-04-{i % 28 + 1:02d}T09:00:00",
            f"2027-04-{i % 28 + 1:02d}T10:00:00",
        )
    report = world.sync("mine")
    assert report.pushed_created == 30, report.error
    assert report.requests <= 4  # SyncFolderItems, FindItem, CreateItem (+ the version learnt)
    assert len(world.items()) == 30
    echo = world.sync("mine")  # our own creates come back once, as changes to nothing
    assert (echo.created, echo.updated, echo.pushed_updated) == (0, 0, 0)
    assert world.sync("mine").requests == 1


def test_all_day_event_round_trips(world: World) -> None:
    world.add_calendar("front")
    world.create(
        "Fair", "2027-05-03T00:00:00", "2027-05-05T00:00:00", "Europe/Berlin", all_day=True
    )
    world.sync("front")
    fair = world.booking("Fair")
    assert (fair.all_day, fair.start, fair.end) == (True, "2027-05-03", "2027-05-05")
    change(world, "Fair", name="Fair (3 days)", end=date(2027, 5, 6).isoformat())
    assert world.sync("front").pushed_updated == 1
    stored = world.item("Fair (3 days)")
    assert stored.all_day
    assert world.sync("front").updated == 0


def test_windows_zone_becomes_iana_and_pushes_keep_the_zone(world: World) -> None:
    world.add_calendar("mine", owner="u-tom")
    world.create("Tokyo call", "2027-03-01T09:00:00", "2027-03-01T10:00:00", "Asia/Tokyo")
    owner_booking(
        world,
        "Amsterdam lunch",
        "2027-03-02T12:00:00",
        "2027-03-02T13:00:00",
        tz="Europe/Amsterdam",
    )
    world.sync("mine")
    tokyo = world.booking("Tokyo call")
    assert (tokyo.timezone, tokyo.start) == ("Asia/Tokyo", "2027-03-01T09:00:00")
    lunch = world.item("Amsterdam lunch")
    assert lunch.start_zone == "W. Europe Standard Time"
    assert lunch.start == datetime(2027, 3, 2, 11, tzinfo=__import__("datetime").UTC)
    again = world.sync("mine")
    assert (again.updated, again.conflicts) == (0, 0)
    assert world.booking("Amsterdam lunch").timezone == "Europe/Amsterdam"


def test_recurring_master_with_modified_and_deleted_occurrences(world: World) -> None:
    world.add_calendar("front")
    master = world.series(
        "Standup",
        "2027-03-01T09:00:00",
        "2027-03-01T09:15:00",
        Pattern("Weekly", 1, ("Monday", "Wednesday"), count=6),
        "Europe/Berlin",
    )
    first = datetime(2027, 3, 1, 8, tzinfo=__import__("datetime").UTC)
    world.org.external_modify_occurrence(
        world.mailbox,
        master,
        first + timedelta(days=2),
        subject="Standup (long)",
        end=first + timedelta(days=2, minutes=45),
    )
    world.org.external_delete_occurrence(world.mailbox, master, first + timedelta(days=7))
    report = world.sync("front")
    assert report.created == 5, report.error
    names = sorted(e.name for e in world.bookings())
    assert names == ["Standup"] * 4 + ["Standup (long)"]
    # editing one occurrence's booking writes that occurrence only
    with world.store.session() as session:
        from calbridge.store.models import Event

        target = session.scalars(
            select(Event).where(Event.name == "Standup").order_by(Event.start)
        ).all()[-1]
        update_event(session, target, {"name": "Standup (last)"})
    pushed = world.sync("front")
    assert pushed.pushed_updated == 1, pushed.error
    stored = world.item("Standup")
    assert sorted(e.subject for e in stored.exceptions.values()) == [
        "Standup (last)",
        "Standup (long)",
    ]
    again = world.sync("front")
    assert (again.updated, again.created, again.conflicts) == (0, 0, 0), again


def test_change_key_conflict_is_re_read_and_merged(world: World) -> None:
    world.add_calendar("front")
    item_id = world.create("Gala", "2027-03-01T19:00:00", "2027-03-01T23:00:00")
    world.sync("front")
    change(world, "Gala", location="Ballroom")

    def edited_in_outlook_meanwhile(calendar: Any) -> Any:
        provider = open_provider(calendar, world.box)
        real = provider.write_many

        def write_many(ops: Any) -> Any:  # after the pull, before the push
            world.org.external_update(world.mailbox, item_id, body="Dress code: black tie")
            provider.write_many = real
            return real(ops)

        provider.write_many = write_many
        return provider

    before = len(world.org.calls)
    report = sync_calendar(
        world.store, world.calendar_id("front"), edited_in_outlook_meanwhile, now=world.now
    )
    assert report.ok, report.error
    assert report.pushed_updated == 1
    stored = world.item("Gala")
    assert (stored.location, stored.body) == ("Ballroom", "Dress code: black tie")
    assert world.booking("Gala").notes == "Dress code: black tie"
    ops = [op for op, _ in world.org.calls[before:]]
    # refused (stale ChangeKey), refused again on the single retry, re-read, merged, written
    assert ops.count("UpdateItem") == 3 and ops.count("GetItem") >= 1


def test_bad_item_is_rejected_with_a_reason_while_the_rest_syncs(world: World) -> None:
    world.add_calendar("front")
    world.create("Good", "2027-03-01T09:00:00", "2027-03-01T10:00:00")
    world.create("Minutes", "2027-03-02T09:00:00", "2027-03-02T10:00:00", body="x" * 300_000)
    broken = world.create("Broken", "2027-03-03T09:00:00", "2027-03-03T10:00:00")
    world.org.mailbox(world.mailbox).items[broken].invalid = "ErrorItemCorrupt"
    report = world.sync("front")
    assert report.created == 1
    assert [e.name for e in world.bookings()] == ["Good"]
    with world.store.session() as session:
        reasons = sorted(r.reason for r in session.scalars(select(Rejection)))
    assert len(reasons) == 2
    assert any("Minutes" in r and "notes" in r for r in reasons), reasons
    assert any("ErrorItemCorrupt" in r for r in reasons), reasons


def test_series_occurrences_coming_into_range_arrive_without_duplicates(world: World) -> None:
    world.add_calendar("front", horizon_days=90)
    first = datetime(2027, 1, 1)  # window 2026-12-02 .. 2027-04-01: 13 Mondays from Jan 4
    world.series(
        "Stand-up",
        "2027-01-04T08:00:00",
        "2027-01-04T08:30:00",
        Pattern("Weekly", 1, ("Monday",), count=26),
    )
    assert world.sync("front", now=first).created == 13
    nudged = world.sync("front", now=first + timedelta(days=10))  # within the token's slack
    assert not nudged.full_resync and nudged.requests == 1
    moved = world.sync("front", now=first + timedelta(days=30))  # Mondays up to Apr 26 now
    assert moved.ok and moved.full_resync, moved.error
    assert (moved.created, moved.cancelled) == (4, 0)
    with world.store.session() as session:
        from calbridge.store.models import Link

        keys = session.execute(select(Link.remote_id, Link.recurrence_id)).all()
    assert len(keys) == len(set(keys)) == 17
    assert {e.status for e in world.bookings()} == {"confirmed"}


def test_booking_side_cancel_of_one_occurrence_deletes_that_occurrence_only(world: World) -> None:
    world.add_calendar("front")
    master = world.series(
        "Yoga",
        "2027-03-01T07:00:00",
        "2027-03-01T08:00:00",
        Pattern("Daily", 1, count=4),
        "Europe/London",
    )
    assert world.sync("front").created == 4
    with world.store.session() as session:
        from calbridge.store.models import Event

        second = session.scalars(select(Event).order_by(Event.start)).all()[1]
        update_event(session, second, {"status": "cancelled"})
    report = world.sync("front")
    assert report.pushed_deleted == 1, report.error
    stored = world.org.mailbox(world.mailbox).items[master]
    assert [d.isoformat() for d in stored.deleted_occurrences] == ["2027-03-02T07:00:00+00:00"]
    assert world.org.mailbox(world.mailbox).cancellations_sent == []
    again = world.sync("front")
    assert (again.cancelled, again.created, again.updated) == (0, 0, 0), again
    world.org.external_delete(world.mailbox, master)  # the whole series deleted in Outlook
    gone = world.sync("front")
    assert gone.cancelled == 3
    assert {e.status for e in world.bookings()} == {"cancelled"}


def test_pull_only_calendar_never_writes(world: World) -> None:
    world.add_calendar("front", direction="pull")
    world.create("Seen", "2027-03-01T09:00:00", "2027-03-01T10:00:00")
    world.sync("front")
    change(world, "Seen", name="Renamed here")
    report = world.sync("front")
    assert report.pushed_updated == 0
    assert world.item("Seen").subject == "Seen"
    writes = {"CreateItem", "UpdateItem", "DeleteItem"}
    assert not writes & {op for op, _ in world.org.calls}


def test_calendar_wins_policy_takes_the_calendar_value(world: World) -> None:
    world.add_calendar("front", policy="calendar-wins")
    item_id = world.create("Brunch", "2027-03-01T10:00:00", "2027-03-01T12:00:00")
    world.sync("front")
    change(world, "Brunch", name="Brunch (booking)")
    world.org.external_update(world.mailbox, item_id, subject="Brunch (calendar)")
    report = world.sync("front")
    assert report.conflicts == 1
    assert [e.name for e in world.bookings()] == ["Brunch (calendar)"]
    assert world.item("Brunch (calendar)").subject == "Brunch (calendar)"
