"""The two-way sync engine on Google calendars (SPEC §3, issue 4's behaviours), driving the
real google-api-python-client against the emulator over HTTP: the Google extras. The
behaviours every API shares run on Google too in the contract suite
(tests/contract/test_contract_engine.py); these are the ones only Google has or shows in its
own terms (creator and organizer, instances and exceptions, JSON time zones, faults)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from google_world import GoogleWorld, all_day, soon, timed
from sqlalchemy import func, select

from calbridge.domain.event import make_times
from calbridge.domain.remote import Window
from calbridge.store.events import ManualAssignment, create_event, update_event
from calbridge.store.models import Event, Link, Rejection
from worlds import NOW


def window_of_links(world: GoogleWorld) -> Window:
    return Window(NOW - timedelta(days=30), NOW + timedelta(days=365))


def instant(value: dict[str, str]) -> datetime:
    """A Google ``dateTime`` as an aware instant (the emulator renders it in any zone)."""
    return datetime.fromisoformat(value["dateTime"].replace("Z", "+00:00"))


def at(wall: datetime, zone: str) -> datetime:
    return wall.replace(tzinfo=ZoneInfo(zone))


def test_event_without_creator_address_is_booked_by_its_organizer(world: GoogleWorld) -> None:
    world.add_calendar("toms", user="tom@harbour.example")
    start = datetime(2027, 3, 2, 9)
    event_id = world.insert("toms", {"summary": "Hold", **timed(start, start + timedelta(hours=1))})
    world.poke("toms", event_id, lambda stored: stored.data.pop("creator"))
    assert world.sync("toms").created == 1
    event = world.booking("Hold")
    assert event.booked_by_id == "u-tom"  # organizer.email: the calendar, Tom's
    assert "tom@harbour.example" in event.trace[0]["outcome"]


def test_nothing_changed_with_a_series_costs_the_requests_the_emulator_counted(
    world: GoogleWorld,
) -> None:
    world.add_calendar("front")
    for i in range(5):
        start = datetime(2027, 3, 1 + i, 9)
        world.insert("front", {"summary": f"Event {i}", **timed(start, start + timedelta(hours=1))})
    series_start = soon()
    world.insert(
        "front",
        {
            "summary": "Stand-up",
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
            **timed(series_start, series_start + timedelta(minutes=15)),
        },
    )
    assert world.sync("front").created == 8
    before = world.gcal.request_counts()["http_requests"]
    again = world.sync("front")
    figures = (again.created, again.updated, again.pushed_created, again.pushed_updated)
    assert figures == (0, 0, 0, 0)
    assert again.requests <= 2  # a token and one events.list
    assert world.gcal.request_counts()["http_requests"] - before == again.requests


def test_owner_bookings_are_created_on_the_calendar_once(world: GoogleWorld) -> None:
    world.add_calendar("toms", user="tom@harbour.example", owner="u-tom")
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
    assert report.pushed_created == 2 and report.ok, report.error
    by_name = {e["summary"]: e for e in world.live("toms")}
    dinner = world.event("toms", by_name["Board dinner"]["id"])
    assert dinner["start"]["timeZone"] == "Europe/Berlin"
    assert instant(dinner["start"]) == at(datetime(2027, 3, 5, 19), "Europe/Berlin")
    assert dinner["extendedProperties"]["private"]["calbridgeKey"] == dinner["id"]
    conference = world.event("toms", by_name["Conference"]["id"])
    assert (conference["start"], conference["end"]) == (
        {"date": "2027-03-08"},
        {"date": "2027-03-10"},
    )
    again = world.sync("toms")
    assert (again.created, again.pushed_created) == (0, 0)  # our own events: no new bookings
    assert len(world.bookings()) == 2 and len(world.live("toms")) == 2


def test_bad_events_are_rejected_with_a_reason_and_the_rest_syncs(world: GoogleWorld) -> None:
    world.add_calendar("front")
    start = datetime(2027, 3, 1, 9)
    one_hour = timed(start, start + timedelta(hours=1))
    huge = world.insert("front", {"summary": "Huge", "description": "x" * 300_000, **one_hour})
    odd = world.insert("front", {"summary": "Odd creator", **one_hour})
    world.poke("front", odd, lambda e: e.data.update(creator={"email": "not an address"}))
    backwards = world.insert("front", {"summary": "Backwards", **one_hour})
    world.poke(
        "front", backwards, lambda e: setattr(e, "end", e.start.shifted(-timedelta(hours=2)))
    )
    world.insert("front", {"summary": "Fine", **one_hour})
    report = world.sync("front")
    assert report.ok and report.created == 1 and report.rejected == 3
    with world.store.session() as session:
        reasons = {r.remote_id: r.reason for r in session.scalars(select(Rejection))}
    assert "notes are 300,000 characters" in reasons[huge]
    assert "creator address is malformed" in reasons[odd]
    assert "before start" in reasons[backwards]
    world.patch("front", huge, {"description": "A short brief"})
    fixed = world.sync("front")
    assert fixed.created == 1
    with world.store.session() as session:
        assert session.scalar(select(func.count()).select_from(Rejection)) == 2


def test_failing_server_is_reported_and_other_calendars_sync(world: GoogleWorld) -> None:
    down = world.add_calendar("down")
    world.add_calendar("front")
    start = datetime(2027, 3, 1, 9)
    world.insert("front", {"summary": "Still syncs", **timed(start, start.replace(hour=10))})
    world.gcal.emulator.inject_fault(503, count=None, path=down.replace("@", "%40"))
    failed = world.sync("down")
    assert not failed.ok
    assert "calendar 'down' (Google)" in (failed.error or "") and "503" in (failed.error or "")
    assert world.sync("front").created == 1
    with world.store.session() as session:
        unreachable = world.calendar_row(session, "down")
        unreachable.settings = {**unreachable.settings, "api_base": "http://127.0.0.1:9"}
    refused = world.sync("down")
    assert not refused.ok and "cannot reach http://127.0.0.1:9" in (refused.error or "")


def test_recurring_series_becomes_one_booking_per_occurrence(world: GoogleWorld) -> None:
    world.add_calendar("front")
    start = soon(hour=9)
    master = world.insert(
        "front",
        {
            "summary": "Stand-up",
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4"],
            **timed(start, start + timedelta(minutes=30), "Europe/Berlin"),
        },
    )
    report = world.sync("front")
    assert report.created == 4
    links = world.links()
    assert {link.remote_id for link in links} == {master} and all(link.is_series for link in links)
    second = links[1]
    assert second.recurrence_id == (
        at(start + timedelta(days=7), "Europe/Berlin").astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    )
    with world.store.session() as session:
        update_event(session, session.get(Event, second.event_id), {"name": "Stand-up (Acme)"})
    pushed = world.sync("front")
    assert pushed.pushed_updated == 1 and pushed.ok, pushed.error
    exception = world.event("front", f"{master}_{second.recurrence_id}")
    assert exception["summary"] == "Stand-up (Acme)" and exception["recurringEventId"] == master
    assert world.event("front", master)["summary"] == "Stand-up"
    assert len([e for e in world.stored("front") if e.get("recurrence")]) == 1  # no new series
    series = world.provider("front").get(master, window_of_links(world))
    assert {link.etag for link in world.links()} == {series.ref.etag}  # type: ignore[union-attr]
    again = world.sync("front")
    assert (again.created, again.updated, again.cancelled, again.pushed_updated) == (0, 0, 0, 0)
    assert len(world.bookings()) == 4


def test_moved_and_cancelled_instances_follow_and_the_rest_of_the_series_stays(
    world: GoogleWorld,
) -> None:
    world.add_calendar("front")
    start = soon(hour=9)
    master = world.insert(
        "front",
        {
            "summary": "Class",
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
            **timed(start, start + timedelta(hours=1), "Europe/Berlin"),
        },
    )
    world.sync("front")
    first, second, third = [link.recurrence_id for link in world.links()]
    moved = start + timedelta(days=1, hours=2)
    world.patch(
        "front", f"{master}_{second}", timed(moved, moved + timedelta(hours=1), "Europe/Berlin")
    )
    world.remove("front", f"{master}_{third}")  # only the exception changed: not the master
    report = world.sync("front")
    assert (report.updated, report.cancelled, report.created) == (1, 1, 0)
    with world.store.session() as session:
        by_rid = {
            link.recurrence_id: session.get(Event, link.event_id)
            for link in session.scalars(select(Link))
        }
        assert by_rid[second].start == moved.isoformat()
        assert by_rid[third].status == "cancelled"
        assert by_rid[first].status == "confirmed" and by_rid[first].start == start.isoformat()


def test_cancelled_occurrence_booking_cancels_only_that_instance(world: GoogleWorld) -> None:
    world.add_calendar("front")
    start = soon(hour=8)
    master = world.insert(
        "front",
        {
            "summary": "Yoga",
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
            **timed(start, start + timedelta(hours=1), "UTC"),
        },
    )
    world.sync("front")
    link = world.links()[0]
    with world.store.session() as session:
        update_event(session, session.get(Event, link.event_id), {"status": "cancelled"})
    report = world.sync("front")
    assert report.pushed_deleted == 1 and report.ok, report.error
    assert world.event("front", f"{master}_{link.recurrence_id}")["status"] == "cancelled"
    assert world.event("front", master)["status"] == "confirmed"
    again = world.sync("front")
    assert (again.cancelled, again.updated, again.created) == (0, 0, 0)
    assert [e.status for e in world.bookings()].count("cancelled") == 1


def test_time_zones_and_all_day_events_round_trip_exactly(world: GoogleWorld) -> None:
    world.add_calendar("front", zone="America/New_York")
    cases = {
        "Kolkata": timed(datetime(2027, 3, 1, 9, 30), datetime(2027, 3, 1, 11), "Asia/Kolkata"),
        "New York": timed(
            datetime(2027, 3, 14, 1, 30), datetime(2027, 3, 14, 3, 30), "America/New_York"
        ),
        "In UTC": timed(datetime(2027, 3, 2, 23), datetime(2027, 3, 3, 1), "UTC"),
        "Festival": all_day(date(2027, 3, 5), date(2027, 3, 8)),
    }
    ids = {name: world.insert("front", {"summary": name, **body}) for name, body in cases.items()}
    offset_only = world.insert(
        "front",
        {
            "summary": "Offset only",
            "start": {"dateTime": "2027-03-03T09:00:00+01:00"},
            "end": {"dateTime": "2027-03-03T10:00:00+01:00"},
        },
    )
    assert world.sync("front").created == 5
    kolkata = world.booking("Kolkata")
    assert (kolkata.start, kolkata.end, kolkata.timezone) == (
        "2027-03-01T09:30:00",
        "2027-03-01T11:00:00",
        "Asia/Kolkata",
    )
    new_york = world.booking("New York")  # across the DST change of that night
    assert (new_york.start, new_york.end) == ("2027-03-14T01:30:00", "2027-03-14T03:30:00")
    festival = world.booking("Festival")
    assert (festival.all_day, festival.start, festival.end) == (True, "2027-03-05", "2027-03-08")
    offset = world.booking("Offset only")  # no zone: the calendar's, same instant
    assert (offset.timezone, offset.start) == ("America/New_York", "2027-03-03T03:00:00")
    with world.store.session() as session:
        for name in cases:
            booking = session.scalars(select(Event).where(Event.name == name)).one()
            update_event(session, booking, {"notes": "pushed back"})
    report = world.sync("front")
    assert report.pushed_updated == 4 and report.ok, report.error
    for name, body in cases.items():
        stored = world.event("front", ids[name])
        if "date" in body["start"]:
            assert (stored["start"], stored["end"]) == (body["start"], body["end"])
        else:
            zone = body["start"]["timeZone"]
            assert stored["start"]["timeZone"] == zone
            assert instant(stored["start"]) == at(
                datetime.fromisoformat(body["start"]["dateTime"]), zone
            )
            assert instant(stored["end"]) == at(
                datetime.fromisoformat(body["end"]["dateTime"]), zone
            )
    assert instant(world.event("front", offset_only)["start"]) == datetime(
        2027, 3, 3, 8, tzinfo=UTC
    )
    again = world.sync("front")
    assert (again.updated, again.pushed_updated, again.conflicts) == (0, 0, 0)
