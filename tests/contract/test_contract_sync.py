"""The two-way sync engine's CalDAV extras, against every CalDAV server (SPEC §3; issue 9):
an event without organizer, owner bookings as iCalendar, tokens (an unknown one means a full
resync without duplicates), rejections, series with overrides and EXDATEs, floating and UTC
times. The behaviours every API shares run here too, in test_contract_engine.py."""

from __future__ import annotations

from datetime import datetime, timedelta

from contract_world import World
from sqlalchemy import func, select
from test_contract_pull import UNKNOWN_TOKENS

from calbridge.demo.seed import vevent
from calbridge.domain.event import make_times
from calbridge.store.events import ManualAssignment, create_event, update_event
from calbridge.store.models import Event, Link, Rejection
from worlds import NOW

BASE = datetime(2027, 3, 1, 9, 0)


def at(day: int, hour: int = 9) -> datetime:
    return BASE + timedelta(days=day, hours=hour - 9)


def events(world: World) -> list[Event]:
    return world.events()


def by_name(world: World, name: str) -> Event:
    return world.by_name(name)


def test_event_without_organizer_is_booked_by_calendar_owner(world: World) -> None:
    world.add_calendar("toms", owner="u-tom")
    world.put("toms", "h.ics", vevent("h", "Maintenance hold", at(1), at(1, 12)))
    assert world.sync("toms").ok
    event = by_name(world, "Maintenance hold")
    assert event.booked_by_id == "u-tom"
    assert "owner" in event.trace[0]["outcome"]


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
