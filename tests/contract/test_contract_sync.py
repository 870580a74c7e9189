"""The two-way sync engine against every CalDAV server (SPEC §3; the contract of issue 9):
imports and assignment, pushes and their echoes, deletes both ways, conflicts, tokens (an
unknown one means a full resync without duplicates), series, time zones — and a sync with
nothing changed costs one request and pulls nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

from contract_world import World
from sqlalchemy import func, select
from test_contract_pull import UNKNOWN_TOKENS

from calbridge.demo.seed import vevent
from calbridge.domain.event import make_times
from calbridge.store.events import ManualAssignment, create_event, update_event
from calbridge.store.models import ConflictRecord, Event, Link, Rejection
from worlds import NOW

BASE = datetime(2027, 3, 1, 9, 0)


def at(day: int, hour: int = 9) -> datetime:
    return BASE + timedelta(days=day, hours=hour - 9)


def events(world: World) -> list[Event]:
    return world.events()


def by_name(world: World, name: str) -> Event:
    return world.by_name(name)


def test_new_calendar_event_becomes_booking_assigned_from_organizer(world: World) -> None:
    world.add_calendar("front")
    world.put(
        "front",
        "a.ics",
        vevent("a", "Acme offsite", at(0), at(0, 17), organizer="ANN@acme-events.example"),
    )
    report = world.sync("front")
    assert report.ok, report.error
    assert report.created == 1
    event = by_name(world, "Acme offsite")
    assert event.client_id == "co-acme" and event.client_contact_id == "ct-ann"
    assert event.booked_by_id == "u-va"
    assert event.trace[0]["step"] == 0 and "ann@acme-events.example" in event.trace[0]["outcome"]
    assert event.timezone == "Europe/London" and event.start == "2027-03-01T09:00:00"


def test_event_without_organizer_is_booked_by_calendar_owner(world: World) -> None:
    world.add_calendar("toms", owner="u-tom")
    world.put("toms", "h.ics", vevent("h", "Maintenance hold", at(1), at(1, 12)))
    assert world.sync("toms").ok
    event = by_name(world, "Maintenance hold")
    assert event.booked_by_id == "u-tom"
    assert "owner" in event.trace[0]["outcome"]


def test_second_sync_with_nothing_changed_writes_nothing(world: World) -> None:
    world.add_calendar("front")
    for i in range(5):
        world.put(
            "front",
            f"e{i}.ics",
            vevent(f"e{i}", f"Event {i}", at(i), at(i, 10), organizer="mia@harbour.example"),
        )
    assert world.sync("front").created == 5
    again = world.sync("front")
    assert (again.created, again.updated, again.pushed_created, again.pushed_updated) == (
        0,
        0,
        0,
        0,
    )
    assert (again.requests, again.pulled) == (1, 0)  # one sync report, no object fetched
    assert world.token("front")  # never stored empty


def test_calendar_edit_updates_fields_but_never_reassigns(world: World) -> None:
    world.add_calendar("front")
    world.put(
        "front",
        "a.ics",
        vevent("a", "Offsite", at(0), at(0, 17), organizer="ann@acme-events.example"),
    )
    world.sync("front")
    world.put(
        "front",
        "a.ics",
        vevent("a", "Offsite (moved)", at(0, 10), at(0, 18), organizer="mia@harbour.example"),
    )
    report = world.sync("front")
    assert report.updated == 1
    event = by_name(world, "Offsite (moved)")
    assert event.start == "2027-03-01T10:00:00"
    assert event.client_id == "co-acme"  # assignment made once, on import


def test_booking_change_is_pushed_and_its_echo_is_not_reapplied(world: World) -> None:
    world.add_calendar("front")
    world.put(
        "front", "a.ics", vevent("a", "Tasting", at(0), at(0, 10), organizer="tom@harbour.example")
    )
    world.sync("front")
    with world.store.session() as session:
        event = session.scalars(select(Event)).one()
        update_event(session, event, {"name": "Tasting (wine)", "location": "Cellar"})
    pushed = world.sync("front")
    assert pushed.pushed_updated == 1
    assert any("SUMMARY:Tasting (wine)" in o for o in world.objects("front"))
    echo = world.sync("front")
    assert (echo.updated, echo.pushed_updated, echo.conflicts) == (0, 0, 0)
    assert world.sync("front").requests <= 2


def test_deleted_on_calendar_cancels_booking_and_cancel_in_booking_deletes(world: World) -> None:
    world.add_calendar("front")
    world.put("front", "a.ics", vevent("a", "Gone", at(0), at(0, 10)))
    world.put("front", "b.ics", vevent("b", "Called off", at(1), at(1, 10)))
    world.sync("front")
    world.delete("front", "a.ics")
    report = world.sync("front")
    assert report.cancelled == 1
    assert by_name(world, "Gone").status == "cancelled"
    with world.store.session() as session:
        event = session.scalars(select(Event).where(Event.name == "Called off")).one()
        update_event(session, event, {"status": "cancelled"})
    assert world.sync("front").pushed_deleted == 1
    assert world.objects("front") == []
    assert len(events(world)) == 2  # never hard-deleted


def test_field_changed_on_both_sides_is_decided_by_policy_and_recorded(world: World) -> None:
    world.add_calendar("front")  # booking-wins by default
    world.put("front", "a.ics", vevent("a", "Dinner", at(0, 19), at(0, 22), location="Sea Lounge"))
    world.sync("front")
    with world.store.session() as session:
        event = session.scalars(select(Event)).one()
        update_event(session, event, {"name": "Dinner (booking)"})
    world.put(
        "front", "a.ics", vevent("a", "Dinner (calendar)", at(0, 19), at(0, 22), location="Terrace")
    )
    report = world.sync("front")
    assert report.conflicts == 1
    event = by_name(world, "Dinner (booking)")
    assert event.location == "Terrace"  # changed on one side only: merged
    with world.store.session() as session:
        conflict = session.scalars(select(ConflictRecord)).one()
    assert (conflict.field, conflict.winner) == ("name", "booking")
    assert conflict.calendar_value == "Dinner (calendar)"
    assert any("SUMMARY:Dinner (booking)" in o and "Terrace" in o for o in world.objects("front"))


def test_calendar_wins_policy_takes_the_calendar_value(world: World) -> None:
    world.add_calendar("front", policy="calendar-wins")
    world.put("front", "a.ics", vevent("a", "Dinner", at(0, 19), at(0, 22)))
    world.sync("front")
    with world.store.session() as session:
        update_event(session, session.scalars(select(Event)).one(), {"name": "Dinner (booking)"})
    world.put("front", "a.ics", vevent("a", "Dinner (calendar)", at(0, 19), at(0, 22)))
    assert world.sync("front").conflicts == 1
    assert by_name(world, "Dinner (calendar)").status == "confirmed"


def test_owner_bookings_are_created_on_calendar_once(world: World) -> None:
    world.add_calendar("toms", user="tom", owner="u-tom")
    with world.store.session() as session:
        create_event(
            session,
            name="Board dinner",
            times=make_times(
                "2027-03-05T19:00", "2027-03-05T22:00", all_day=False, timezone="Europe/Berlin"
            ),
            manual=ManualAssignment("co-acme", "ct-ann", "u-tom", "u-tom"),
        )
        create_event(
            session,
            name="Conference",
            times=make_times("2027-03-08", "2027-03-10", all_day=True, timezone=None),
            manual=ManualAssignment("co-acme", None, "u-tom", "u-tom"),
        )
    report = world.sync("toms")
    assert report.pushed_created == 2
    stored = world.objects("toms")
    assert any("DTSTART;TZID=Europe/Berlin:20270305T190000" in o for o in stored)
    assert any(
        "DTSTART;VALUE=DATE:20270308" in o and "DTEND;VALUE=DATE:20270310" in o for o in stored
    )
    again = world.sync("toms")
    assert (again.created, again.pushed_created) == (0, 0)  # our own objects: no new bookings
    assert len(events(world)) == 2 and len(world.objects("toms")) == 2


def test_an_unknown_token_means_a_full_resync_without_duplicates(
    world: World, server_kind: str
) -> None:
    """On DAViCal (quirk: an unknown token is answered with every member, no error) nothing
    is duplicated either, but a deletion made meanwhile is only seen once it is reported."""
    world.add_calendar("front")
    for i in range(3):
        world.put("front", f"e{i}.ics", vevent(f"e{i}", f"Event {i}", at(i), at(i, 10)))
    world.sync("front")
    world.set_token("front", UNKNOWN_TOKENS[server_kind])
    world.delete("front", "e0.ics")
    report = world.sync("front")
    assert report.ok, report.error
    assert report.created == 0 and len(events(world)) == 3
    if server_kind == "davical":
        assert not report.full_resync and report.cancelled == 0
    else:
        assert report.full_resync and report.cancelled == 1
        assert by_name(world, "Event 0").status == "cancelled"
    again = world.sync("front")
    assert (again.requests, again.pulled, again.created) == (1, 0, 0)


def test_bad_event_is_rejected_with_reason_and_rest_syncs(world: World) -> None:
    world.add_calendar("front")
    world.put("front", "bad.ics", vevent("bad", "Backwards", at(0, 12), at(0, 10)))
    world.put("front", "ok.ics", vevent("ok", "Fine", at(1), at(1, 10)))
    report = world.sync("front")
    assert report.ok and report.created == 1 and report.rejected == 1
    with world.store.session() as session:
        rejection = session.scalars(select(Rejection)).one()
    assert rejection.uid == "bad" and "before" in rejection.reason
    world.put("front", "bad.ics", vevent("bad", "Backwards fixed", at(0, 10), at(0, 12)))
    fixed = world.sync("front")
    assert fixed.created == 1
    with world.store.session() as session:
        assert session.scalar(select(func.count()).select_from(Rejection)) == 0


def test_recurring_series_becomes_one_booking_per_occurrence(world: World) -> None:
    world.add_calendar("front", horizon_days=3650)
    start = NOW.replace(hour=8) + timedelta(days=1)
    world.put(
        "front",
        "s.ics",
        vevent("s", "Stand-up", start, start + timedelta(minutes=30), rrule="FREQ=WEEKLY;COUNT=4"),
    )
    report = world.sync("front")
    assert report.created == 4
    with world.store.session() as session:
        links = session.scalars(select(Link).order_by(Link.recurrence_id)).all()
        assert len({link.remote_id for link in links}) == 1 and all(
            link.is_series for link in links
        )
        second = session.get(Event, links[1].event_id)
        update_event(session, second, {"name": "Stand-up (with Acme)"})
    pushed = world.sync("front")
    assert pushed.pushed_updated == 1 and pushed.ok, pushed.error
    stored = world.objects("front")
    assert len(stored) == 1 and "RECURRENCE-ID" in stored[0] and "Stand-up (with Acme)" in stored[0]
    again = world.sync("front")
    assert (again.created, again.updated) == (0, 0)
    assert len(events(world)) == 4


def test_cancelled_occurrence_follows_both_ways(world: World) -> None:
    world.add_calendar("front", horizon_days=3650)
    start = NOW.replace(hour=8) + timedelta(days=2)
    series = vevent("s", "Yoga", start, start + timedelta(hours=1), rrule="FREQ=DAILY;COUNT=5")
    world.put("front", "s.ics", series)
    assert world.sync("front").created == 5
    with world.store.session() as session:
        links = session.scalars(select(Link).order_by(Link.recurrence_id)).all()
        third = session.get(Event, links[2].event_id)
        update_event(session, third, {"status": "cancelled"})
        third_rid = links[2].recurrence_id
    pushed = world.sync("front")
    assert pushed.ok and pushed.pushed_deleted == 1, pushed.error
    [stored] = world.objects("front")
    assert third_rid[:8] in stored  # written as an EXDATE / cancelled override of that day
    assert world.sync("front").created == 0
    # on the calendar, someone drops the fifth occurrence with an EXDATE
    fifth = start + timedelta(days=4)
    with_exdate = series.replace(
        "RRULE:FREQ=DAILY;COUNT=5",
        f"RRULE:FREQ=DAILY;COUNT=5\r\nEXDATE;TZID=Europe/London:{fifth:%Y%m%dT%H%M%S}",
    )
    world.put("front", "s.ics", with_exdate)
    report = world.sync("front")
    assert report.cancelled == 1
    statuses = [e.status for e in events(world)]
    assert statuses.count("cancelled") == 2 and len(statuses) == 5


def test_floating_and_utc_times_round_trip_exactly(world: World) -> None:
    world.add_calendar("front")
    world.put("front", "f.ics", vevent("f", "Floating", at(0), at(0, 10), tz=None))
    utc = (
        vevent("u", "In UTC", at(1), at(1, 10), tz=None)
        .replace("DTSTART:20270302T090000", "DTSTART:20270302T090000Z")
        .replace("DTEND:20270302T100000", "DTEND:20270302T100000Z")
    )
    world.put("front", "u.ics", utc)
    world.sync("front")
    floating, in_utc = by_name(world, "Floating"), by_name(world, "In UTC")
    assert (floating.timezone, floating.start) == (None, "2027-03-01T09:00:00")
    assert (in_utc.timezone, in_utc.start) == ("UTC", "2027-03-02T09:00:00")
    with world.store.session() as session:
        for name in ("Floating", "In UTC"):
            event = session.scalars(select(Event).where(Event.name == name)).one()
            update_event(session, event, {"location": "Room 2"})
    assert world.sync("front").pushed_updated == 2
    stored = "\n".join(world.objects("front"))
    assert "DTSTART:20270301T090000\r" in stored or "DTSTART:20270301T090000\n" in stored
    assert "DTSTART:20270302T090000Z" in stored
