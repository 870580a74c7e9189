"""The two-way sync engine's contract (SPEC §3), the same on every calendar API: each scenario
runs on Radicale, Xandikos, DAViCal, Google, Microsoft Graph and Exchange Server over EWS
(``any_world``, conftest.py).

Imports and assignment from the organizer, a sync with nothing changed, edits on the calendar
that never reassign, pushes and their echoes, deletions both ways, a field changed on both
sides (booking-wins and calendar-wins). What only one API has — its own formats, series and
exceptions, tokens, faults, rejections of what only that API can send — is in that API's
extras: test_contract_sync.py (CalDAV), tests/integration/google/test_sync_google.py,
tests/integration/graph/test_sync_graph.py, tests/integration/ews/.
"""

from __future__ import annotations

from datetime import datetime

from sides import AnyWorld, Seen
from sqlalchemy import select

from calbridge.store.models import ConflictRecord


def test_new_calendar_event_becomes_booking_assigned_from_organizer(any_world: AnyWorld) -> None:
    world = any_world
    world.add_calendar("front")
    world.side.create(
        "front",
        "Acme offsite",
        datetime(2027, 3, 1, 9),
        datetime(2027, 3, 1, 17),
        organizer="ANN@acme-events.example",
    )
    report = world.sync("front")
    assert report.ok, report.error
    assert report.created == 1
    event = world.booking("Acme offsite")
    assert (event.client_id, event.client_contact_id) == ("co-acme", "ct-ann")
    assert event.booked_by_id == "u-va"
    assert event.trace[0]["step"] == 0 and "ann@acme-events.example" in event.trace[0]["outcome"]
    assert (event.timezone, event.start) == ("Europe/London", "2027-03-01T09:00:00")


def test_second_sync_with_nothing_changed_writes_nothing(any_world: AnyWorld) -> None:
    world = any_world
    world.add_calendar("front")
    for i in range(5):
        world.side.create(
            "front",
            f"Event {i}",
            datetime(2027, 3, 1 + i, 9),
            datetime(2027, 3, 1 + i, 10),
            organizer="mia@harbour.example",
        )
    assert world.sync("front").created == 5
    again = world.sync("front")
    figures = (again.created, again.updated, again.pushed_created, again.pushed_updated)
    assert figures == (0, 0, 0, 0)
    assert again.pulled == 0  # nothing fetched
    assert again.requests <= world.side.quiet_requests
    assert world.token("front")  # never stored empty


def test_calendar_edit_updates_fields_but_never_reassigns(any_world: AnyWorld) -> None:
    world = any_world
    world.add_calendar("front")
    handle = world.side.create(
        "front",
        "Offsite",
        datetime(2027, 3, 1, 9),
        datetime(2027, 3, 1, 17),
        organizer="ann@acme-events.example",
    )
    world.sync("front")
    world.side.edit(
        "front",
        handle,
        title="Offsite (moved)",
        start=datetime(2027, 3, 1, 10),
        end=datetime(2027, 3, 1, 18),
    )
    report = world.sync("front")
    assert (report.updated, report.created) == (1, 0)
    event = world.booking("Offsite (moved)")
    assert (event.start, event.end) == ("2027-03-01T10:00:00", "2027-03-01T18:00:00")
    assert event.client_id == "co-acme"  # the assignment is made once, on import


def test_booking_change_is_pushed_and_its_echo_is_not_reapplied(any_world: AnyWorld) -> None:
    world = any_world
    world.add_calendar("front")
    handle = world.side.create(
        "front",
        "Tasting",
        datetime(2027, 3, 1, 9),
        datetime(2027, 3, 1, 10),
        organizer="tom@harbour.example",
    )
    world.sync("front")
    world.change("Tasting", name="Tasting (wine)", location="Cellar", notes="Six wines\nCheese")
    pushed = world.sync("front")
    assert pushed.pushed_updated == 1 and pushed.ok, pushed.error
    assert world.side.read("front", handle) == Seen("Tasting (wine)", "Cellar", "Six wines\nCheese")
    echo = world.sync("front")
    assert (echo.updated, echo.pushed_updated, echo.conflicts) == (0, 0, 0)
    assert world.sync("front").requests <= 2


def test_deleted_on_calendar_cancels_booking_and_cancel_in_booking_deletes(
    any_world: AnyWorld,
) -> None:
    world = any_world
    world.add_calendar("front")
    gone = world.side.create("front", "Gone", datetime(2027, 3, 1, 9), datetime(2027, 3, 1, 10))
    world.side.create("front", "Called off", datetime(2027, 3, 2, 9), datetime(2027, 3, 2, 10))
    world.sync("front")
    world.side.remove("front", gone)
    report = world.sync("front")
    assert report.cancelled == 1
    assert world.booking("Gone").status == "cancelled"
    world.change("Called off", status="cancelled")
    assert world.sync("front").pushed_deleted == 1
    assert world.side.live("front") == []
    assert len(world.bookings()) == 2  # never hard-deleted
    assert world.booking("Called off").status == "cancelled"
    echo = world.sync("front")  # the deletion's echo changes nothing
    assert (echo.cancelled, echo.updated, echo.created) == (0, 0, 0)


def test_field_changed_on_both_sides_is_decided_by_policy_and_recorded(
    any_world: AnyWorld,
) -> None:
    world = any_world
    world.add_calendar("front")  # booking-wins by default
    handle = world.side.create(
        "front",
        "Dinner",
        datetime(2027, 3, 1, 19),
        datetime(2027, 3, 1, 22),
        location="Sea Lounge",
    )
    world.sync("front")
    world.change("Dinner", name="Dinner (booking)")
    world.side.edit("front", handle, title="Dinner (calendar)", location="Terrace")
    report = world.sync("front")
    assert report.conflicts == 1
    assert world.booking("Dinner (booking)").location == "Terrace"  # one side only: merged
    with world.store.session() as session:
        conflict = session.scalars(select(ConflictRecord)).one()
    assert (conflict.field, conflict.winner, conflict.calendar_value) == (
        "name",
        "booking",
        "Dinner (calendar)",
    )
    seen = world.side.read("front", handle)
    assert (seen.title, seen.location) == ("Dinner (booking)", "Terrace")


def test_calendar_wins_policy_takes_the_calendar_value(any_world: AnyWorld) -> None:
    world = any_world
    world.add_calendar("front", policy="calendar-wins")
    handle = world.side.create(
        "front", "Dinner", datetime(2027, 3, 1, 19), datetime(2027, 3, 1, 22)
    )
    world.sync("front")
    world.change("Dinner", name="Dinner (booking)")
    world.side.edit("front", handle, title="Dinner (calendar)")
    assert world.sync("front").conflicts == 1
    assert world.booking("Dinner (calendar)").status == "confirmed"
    assert [seen.title for seen in world.side.live("front")] == ["Dinner (calendar)"]
