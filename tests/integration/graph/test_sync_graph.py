"""The two-way sync engine against Microsoft Graph (the emulator over https, real MSAL): the
Graph extras. The behaviours every API shares run on Graph too in the contract suite
(tests/contract/test_contract_engine.py); these are the ones only Graph has or shows in its
own terms (Windows zones, batches, delta windows, change keys, throttling)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from calbridge.domain.event import make_times
from calbridge.domain.remote import WriteOp, WriteResult
from calbridge.store.events import ManualAssignment, create_event, update_event
from calbridge.store.models import Calendar, Event, Link, Rejection

WINDOW = ("2026-10-01T00:00:00Z", "2027-12-31T00:00:00Z")
World = Any  # conftest.GraphWorld (conftest modules are not imported by name)


def bookings(world: World) -> list[Event]:
    with world.store.session() as session:
        return list(session.scalars(select(Event).order_by(Event.id)))


def by_name(world: World, name: str) -> Event:
    with world.store.session() as session:
        event: Event = session.scalars(select(Event).where(Event.name == name)).one()
        return event


def change(world: World, booking: str, **changes: Any) -> None:
    with world.store.session() as session:
        event = session.scalars(select(Event).where(Event.name == booking)).one()
        update_event(session, event, changes)


def subjects(world: World, calendar: str) -> list[str]:
    return sorted(e["subject"] for e in world.events(calendar))


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


# --------------------------------------------------------------------- SPEC §3, Graph's own


def test_mailbox_owner_as_organizer_resolves_to_the_staff_user(world: World) -> None:
    world.add_calendar("front")
    world.create("front", "House tour", "2027-03-02T10:00:00", "2027-03-02T11:00:00")
    assert world.sync("front").created == 1
    event = by_name(world, "House tour")
    assert (event.booked_by_id, event.client_contact_id) == ("u-mia", "ct-mia")


def test_an_event_its_organizer_cancelled_cancels_the_booking(world: World) -> None:
    world.add_calendar("front")
    world.create("front", "Kept", "2027-03-01T09:00:00", "2027-03-01T10:00:00")
    off = world.create("front", "Called off", "2027-03-02T09:00:00", "2027-03-02T10:00:00")
    world.sync("front")
    world.graph.external_update(world.mailbox, off, {}, is_cancelled=True)  # organizer cancelled it
    report = world.sync("front")
    assert report.cancelled == 1, report
    assert [(e.name, e.status) for e in bookings(world)] == [
        ("Kept", "confirmed"),
        ("Called off", "cancelled"),  # never hard-deleted
    ]


def test_owner_bookings_are_created_once_in_one_batch(world: World) -> None:
    world.add_calendar("toms", owner="u-tom")
    owner_booking(world, "Board dinner", "2027-03-05T19:00", "2027-03-05T22:00", tz="Europe/Berlin")
    owner_booking(world, "Conference", "2027-03-08", "2027-03-10", all_day=True)
    owner_booking(
        world,
        "Call",
        "2027-03-09T15:00",
        "2027-03-09T16:00",
        tz="America/New_York",
        status="tentative",
    )
    world.graph.reset_counters()
    report = world.sync("toms")
    assert report.pushed_created == 3, report.error
    assert world.graph.counters()["routes"].get("POST /$batch") == 1
    stored = {e["subject"]: e for e in world.events("toms", zone="W. Europe Standard Time")}
    dinner = stored["Board dinner"]
    assert dinner["originalStartTimeZone"] == "W. Europe Standard Time"
    assert dinner["start"]["dateTime"].startswith("2027-03-05T19:00:00")
    conference = stored["Conference"]
    assert conference["isAllDay"] and conference["start"]["dateTime"].startswith("2027-03-08T00")
    assert conference["end"]["dateTime"].startswith("2027-03-10T00")
    assert stored["Call"]["originalStartTimeZone"] == "Eastern Standard Time"
    assert stored["Call"]["showAs"] == "tentative"
    again = world.sync("toms")
    assert (again.created, again.pushed_created, again.updated) == (0, 0, 0)
    assert len(bookings(world)) == 3 and len(world.events("toms")) == 3


def test_bad_events_are_rejected_with_reasons_and_the_rest_syncs(world: World) -> None:
    world.add_calendar("front")
    backwards = world.create("front", "Backwards", "2027-03-01T12:00:00", "2027-03-01T13:00:00")
    item = world.stored("front", backwards)
    item.end = item.start - timedelta(hours=2)
    odd_zone = world.create("front", "Odd zone", "2027-03-02T09:00:00", "2027-03-02T10:00:00")
    world.stored("front", odd_zone).start_tz = "Customized Time Zone"
    world.create(
        "front",
        "Huge",
        "2027-03-03T09:00:00",
        "2027-03-03T10:00:00",
        body={"contentType": "text", "content": "x" * 300_000},
    )
    world.create(
        "front",
        "Bad organizer",
        "2027-03-04T09:00:00",
        "2027-03-04T10:00:00",
        organizer="not an address",
    )
    world.create("front", "Fine", "2027-03-05T09:00:00", "2027-03-05T10:00:00")
    report = world.sync("front")
    assert report.ok and report.created == 1 and report.rejected == 4, report
    with world.store.session() as session:
        reasons = {r.remote_id: r.reason for r in session.scalars(select(Rejection))}
    assert "before start" in reasons[backwards]
    assert "unknown time zone 'Customized Time Zone'" in reasons[odd_zone]
    assert any("notes are 300,000 characters" in r for r in reasons.values())
    assert any("organizer is malformed" in r for r in reasons.values())
    world.graph.external_update(
        world.mailbox,
        odd_zone,
        {"start": world.dttz("2027-03-02T09:00:00"), "end": world.dttz("2027-03-02T10:00:00")},
    )
    world.stored("front", odd_zone).start_tz = "UTC"
    fixed = world.sync("front")
    assert fixed.created == 1
    with world.store.session() as session:
        assert session.scalar(select(func.count()).select_from(Rejection)) == 3


def test_failing_server_is_reported_and_other_calendars_sync(world: World) -> None:
    world.add_calendar("down")
    world.add_calendar("front")
    world.create("front", "Still syncs", "2027-03-01T09:00:00", "2027-03-01T10:00:00")
    world.graph.fail_next(100, status=503, path=world.calendars["down"], retry_after=0)
    down = world.sync("down")
    assert not down.ok and "503" in (down.error or "") and "calendar 'down'" in (down.error or "")
    assert world.sync("front").created == 1
    with world.store.session() as session:
        calendar = session.scalars(select(Calendar).where(Calendar.name == "down")).one()
        assert calendar.last_error == down.error


def test_recurring_series_one_booking_per_occurrence_both_ways(world: World) -> None:
    world.add_calendar("front")
    first = (world.now + timedelta(days=2)).date()
    weekly = {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [first.strftime("%A").lower()]},
        "range": {"type": "numbered", "startDate": first.isoformat(), "numberOfOccurrences": 4},
    }
    world.create(
        "front",
        "Stand-up",
        f"{first}T08:00:00",
        f"{first}T08:30:00",
        "W. Europe Standard Time",
        recurrence=weekly,
    )
    assert world.sync("front").created == 4
    with world.store.session() as session:
        links = session.scalars(select(Link).order_by(Link.event_id)).all()
        assert len({link.remote_id for link in links}) == 4  # on Graph each occurrence is an object
        assert all(link.is_series for link in links) and len({link.uid for link in links}) == 1
        second = session.get(Event, links[1].event_id)
        assert second is not None
        update_event(session, second, {"name": "Stand-up (with Acme)"})
        third = session.get(Event, links[2].event_id)
        assert third is not None and third.start.endswith("T08:00:00")
    pushed = world.sync("front")
    assert pushed.pushed_updated == 1 and pushed.ok, pushed.error
    shown = world.instances("front", *WINDOW)
    assert sorted((i["type"], i["subject"]) for i in shown) == [
        ("exception", "Stand-up (with Acme)"),
        ("occurrence", "Stand-up"),
        ("occurrence", "Stand-up"),
        ("occurrence", "Stand-up"),
    ]
    assert len(world.events("front")) == 1  # still one series, not a new event
    again = world.sync("front")
    assert (again.created, again.updated, again.pushed_updated) == (0, 0, 0)
    last = max(shown, key=lambda i: i["start"]["dateTime"])
    world.graph.external_delete(world.mailbox, last["id"])  # one occurrence cancelled in Outlook
    assert world.sync("front").cancelled == 1
    change(world, "Stand-up (with Acme)", status="cancelled")  # and one in the booking system
    assert world.sync("front").pushed_deleted == 1
    assert len(world.instances("front", *WINDOW)) == 2
    assert [e.status for e in bookings(world)].count("cancelled") == 2 and len(bookings(world)) == 4


# --------------------------------------------------------------------- Graph specifics


def test_expired_delta_link_means_full_resync_without_duplicates(world: World) -> None:
    world.add_calendar("front")
    ids = [
        world.create(
            "front", f"Event {i}", f"2027-03-0{i + 1}T09:00:00", f"2027-03-0{i + 1}T10:00:00"
        )
        for i in range(3)
    ]
    world.sync("front")
    world.graph.invalidate_delta_tokens(world.mailbox, world.calendars["front"])
    world.graph.external_delete(world.mailbox, ids[0])
    report = world.sync("front")
    assert report.full_resync and report.ok, report.error
    assert (report.created, report.cancelled) == (0, 1)
    assert len(bookings(world)) == 3
    assert world.sync("front").requests <= 2


def test_event_moved_out_of_the_window_is_updated_not_cancelled(world: World) -> None:
    world.add_calendar("front", horizon_days=200)
    event_id = world.create("front", "Gala", "2027-03-01T19:00:00", "2027-03-01T23:00:00")
    world.sync("front")
    world.graph.external_update(
        world.mailbox,
        event_id,
        {"start": world.dttz("2028-09-01T19:00:00"), "end": world.dttz("2028-09-01T23:00:00")},
    )
    report = world.sync("front")  # Graph says "@removed": it left the window, it was not deleted
    assert report.cancelled == 0 and report.updated == 1, report
    gala = by_name(world, "Gala")
    assert gala.status == "confirmed" and gala.start == "2028-09-01T19:00:00"


def test_event_beyond_the_window_arrives_once_the_window_has_moved_on(world: World) -> None:
    world.add_calendar("front", horizon_days=90)
    first = datetime(2027, 1, 1)  # window 2026-12-02 .. 2027-04-01
    world.create("front", "December gala", "2026-12-10T19:00:00", "2026-12-10T23:00:00")
    world.create("front", "January fair", "2027-01-10T09:00:00", "2027-01-10T17:00:00")
    world.create("front", "April launch", "2027-04-20T09:00:00", "2027-04-20T12:00:00")
    assert world.sync("front", now=first).created == 2
    nudged = world.sync("front", now=first + timedelta(days=10))  # within the delta's slack
    assert not nudged.full_resync and nudged.created == 0
    moved = world.sync("front", now=first + timedelta(days=30))  # window now ends 2027-05-01
    assert moved.ok and moved.full_resync, moved.error
    assert (moved.created, moved.updated, moved.cancelled) == (1, 0, 0)
    assert [(e.name, e.status) for e in bookings(world)] == [
        ("December gala", "confirmed"),  # out of the window now: left alone, not cancelled
        ("January fair", "confirmed"),
        ("April launch", "confirmed"),
    ]
    again = world.sync("front", now=first + timedelta(days=30))
    assert not again.full_resync and again.created == 0 and again.requests <= 2
    assert len(world.events("front")) == 3


def test_series_occurrences_coming_into_range_arrive_without_duplicates(world: World) -> None:
    world.add_calendar("front", horizon_days=90)
    first = datetime(2027, 1, 1)  # window 2026-12-02 .. 2027-04-01: 13 Mondays from Jan 4
    mondays = {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
        "range": {"type": "numbered", "startDate": "2027-01-04", "numberOfOccurrences": 26},
    }
    world.create(
        "front", "Stand-up", "2027-01-04T08:00:00", "2027-01-04T08:30:00", recurrence=mondays
    )
    assert world.sync("front", now=first).created == 13
    moved = world.sync("front", now=first + timedelta(days=30))  # Mondays up to Apr 26 now
    assert moved.ok and moved.full_resync and (moved.created, moved.cancelled) == (4, 0)
    with world.store.session() as session:
        keys = session.execute(select(Link.remote_id, Link.recurrence_id)).all()
    assert len(keys) == len(set(keys)) == 17
    assert {e.status for e in bookings(world)} == {"confirmed"} and len(bookings(world)) == 17


def test_delta_link_stored_without_its_window_is_resynced_once(world: World) -> None:
    world.add_calendar("front")
    world.create("front", "Gala", "2027-03-01T19:00:00", "2027-03-01T23:00:00")
    world.sync("front")
    with world.store.session() as session:
        calendar = session.scalars(select(Calendar).where(Calendar.name == "front")).one()
        assert calendar.sync_token is not None
        calendar.sync_token = calendar.sync_token.partition("|")[2]  # as earlier versions kept it
    report = world.sync("front")
    assert report.ok and report.full_resync, report.error
    assert (report.created, report.cancelled, len(bookings(world))) == (0, 0, 1)
    again = world.sync("front")
    assert not again.full_resync and again.requests <= 2


def test_provider_connections_are_closed_after_each_sync(world: World) -> None:
    world.add_calendar("front")
    world.create("front", "Gala", "2027-03-01T19:00:00", "2027-03-01T23:00:00")
    provider = world.provider("front")
    assert world.sync("front", factory=lambda c: provider).created == 1
    assert provider.http.client.is_closed


def test_create_retried_after_lost_answer_is_not_duplicated(world: World) -> None:
    world.add_calendar("toms", owner="u-tom")
    owner_booking(world, "Board dinner", "2027-03-05T19:00", "2027-03-05T22:00", tz="Europe/Berlin")
    lossy = LoseFirstAnswer("POST", verify=world.graph.ssl_context)
    report = world.sync("toms", factory=lambda c: world.provider("toms", transport=lossy))
    assert report.ok and report.pushed_created == 1, report.error
    assert lossy.lost == 1  # the first batch was applied, its answer lost, the batch resent
    assert subjects(world, "toms") == ["Board dinner"]
    [event] = world.events("toms")
    assert event["transactionId"].startswith("calbridge-")
    again = world.sync("toms")
    assert (again.created, again.pushed_created) == (0, 0) and len(world.events("toms")) == 1


def test_precondition_failed_is_answered_by_repull_and_merge(world: World) -> None:
    world.add_calendar("front")
    event_id = world.create("front", "Dinner", "2027-03-01T19:00:00", "2027-03-01T22:00:00")
    world.sync("front")
    change(world, "Dinner", name="Dinner for 12")

    def outlook_edit() -> None:  # someone saves in Outlook between our pull and our push
        world.graph.external_update(
            world.mailbox, event_id, {"location": {"displayName": "Terrace"}}
        )

    world.graph.reset_counters()
    report = world.sync(
        "front", factory=lambda c: RacingProvider(world.provider("front"), outlook_edit)
    )
    assert report.ok and report.pushed_updated == 1, report.error
    assert world.graph.counters()["status"].get("412", 0) >= 1
    [stored] = world.events("front")
    assert (stored["subject"], stored["location"]["displayName"]) == ("Dinner for 12", "Terrace")
    assert by_name(world, "Dinner for 12").location == "Terrace"


def test_throttling_with_retry_after_is_honoured(world: World) -> None:
    world.add_calendar("front")
    world.create("front", "Busy day", "2027-03-01T09:00:00", "2027-03-01T10:00:00")
    world.graph.fail_next(2, status=429, path="calendarView/delta", retry_after=1)
    report = world.sync("front")
    assert report.ok and report.created == 1, report.error
    assert world.graph.counters()["faulted"] >= 2


def test_partial_batch_failure_keeps_the_successes_and_retries_the_rest(world: World) -> None:
    world.add_calendar("front")
    for name in ("A", "B", "C"):
        world.create("front", name, "2027-03-01T09:00:00", "2027-03-01T10:00:00")
    world.sync("front")
    for name in ("A", "B", "C"):
        change(world, name, name=f"{name} (changed)")
    b_id = next(e["id"] for e in world.events("front") if e["subject"] == "B")
    world.graph.fail_next(4, status=500, method="PATCH", path=b_id, scope="inner")
    seen: dict[str, str] = {}
    report = world.sync("front", factory=lambda c: RecordingProvider(world.provider("front"), seen))
    assert report.ok and report.pushed_updated == 3, report.error
    assert seen == {
        "A (changed)": "Written",
        "B (changed)": "ProviderError",
        "C (changed)": "Written",
    }
    assert subjects(world, "front") == ["A (changed)", "B (changed)", "C (changed)"]


def test_windows_time_zones_round_trip(world: World) -> None:
    world.add_calendar("front")
    event_id = world.create(
        "front",
        "Summer fair",
        "2027-07-01T09:00:00",
        "2027-07-01T12:00:00",
        "W. Europe Standard Time",
    )
    world.create(
        "front", "Delhi call", "2027-03-01T18:30:00", "2027-03-01T19:00:00", "India Standard Time"
    )
    world.sync("front")
    fair = by_name(world, "Summer fair")
    assert (fair.timezone, fair.start, fair.end) == (
        "Europe/Berlin",
        "2027-07-01T09:00:00",
        "2027-07-01T12:00:00",
    )
    assert by_name(world, "Delhi call").timezone == "Asia/Kolkata"
    change(world, "Summer fair", name="Summer fair (open air)")
    change(
        world,
        "Delhi call",
        name="Delhi call (moved)",
        start="2027-03-01T19:30:00",
        end="2027-03-01T20:00:00",
    )
    assert world.sync("front").pushed_updated == 2
    stored = {e["subject"]: e for e in world.events("front", zone="W. Europe Standard Time")}
    fair_now = stored["Summer fair (open air)"]
    assert fair_now["id"] == event_id
    assert fair_now["originalStartTimeZone"] == "W. Europe Standard Time"
    assert fair_now["start"]["dateTime"].startswith("2027-07-01T09:00:00")  # summer time kept
    assert stored["Delhi call (moved)"]["originalStartTimeZone"] == "India Standard Time"
    [delhi] = [e for e in world.events("front") if e["subject"].startswith("Delhi")]
    assert delhi["start"]["dateTime"].startswith("2027-03-01T14:00:00")  # 19:30 IST in UTC
    assert world.sync("front").updated == 0


# --------------------------------------------------------------------- test doubles


class LoseFirstAnswer(httpx.HTTPTransport):
    """Delivers the first ``method`` request, then drops its answer (a timeout): the write
    happened, the client does not know."""

    def __init__(self, method: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.method, self.lost = method, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == self.method and self.lost == 0:
            response.read()
            self.lost += 1
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response


class RacingProvider:
    """The real provider, with someone editing the calendar right before our writes."""

    def __init__(self, inner: Any, before_write: Any) -> None:
        self.inner, self.before_write, self.raced = inner, before_write, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write_many(self, ops: list[WriteOp]) -> list[WriteResult]:
        if not self.raced:
            self.raced = True
            self.before_write()
        return list(self.inner.write_many(ops))


class RecordingProvider:
    """The real provider, noting what each batched write of a booking returned."""

    def __init__(self, inner: Any, seen: dict[str, str]) -> None:
        self.inner, self.seen = inner, seen

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write_many(self, ops: list[WriteOp]) -> list[WriteResult]:
        results = list(self.inner.write_many(ops))
        for op, result in zip(ops, results, strict=True):
            assert op.event is not None
            self.seen[op.event.fields.name] = type(result).__name__
        return results


def test_full_resync_keeps_bookings_that_aged_out_of_the_window(world: World) -> None:
    world.add_calendar("front")
    world.create("front", "Last month", "2027-03-01T09:00:00", "2027-03-01T10:00:00")
    world.sync("front", now=datetime(2027, 2, 20))
    world.graph.invalidate_delta_tokens(world.mailbox, world.calendars["front"])
    report = world.sync("front", now=datetime(2027, 4, 20))  # the event is 50 days back now
    assert report.full_resync and report.cancelled == 0
    assert by_name(world, "Last month").status == "confirmed"
