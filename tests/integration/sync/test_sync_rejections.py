"""Objects that cannot be imported as they are become rejections with a reason, through the real
provider and engine — never silent drops, never two bookings for one event (issue 12 §1)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from calbridge.demo.seed import vevent
from calbridge.store.models import Calendar, Event, Link, Rejection
from calbridge.sync.calendars import add_caldav_calendar
from calbridge.sync.engine import sync_calendar
from calbridge.sync.providers import open_provider
from fake_caldav import Collection, FakeCalDAV, running_fake_caldav

SOON = datetime.now().replace(microsecond=0, second=0, minute=0) + timedelta(days=3)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeCalDAV]:
    with running_fake_caldav() as server:
        yield server


def _ics(uid: str, name: str, day: int = 1) -> bytes:
    start = SOON + timedelta(days=day)
    return vevent(
        uid, name, start, start + timedelta(hours=1), organizer="ann@acme-events.example"
    ).encode()


def test_two_objects_with_one_uid_import_once_and_the_second_is_rejected_naming_the_first(
    world, fake: FakeCalDAV
) -> None:  # type: ignore[no-untyped-def]
    collection = Collection(
        objects={
            "first.ics": _ics("same-uid", "Gala dinner"),
            "second.ics": _ics("same-uid", "Gala dinner (copy)", day=2),
            "other.ics": _ics("other-uid", "Board meeting"),
        }
    )
    url = fake.serve("dup-uid", collection)
    with world.store.session() as session:
        cal = add_caldav_calendar(session, world.box, "dup", url, "staff", "pw", check=False)
        cal_id = cal.id
    report = sync_calendar(world.store, cal_id, lambda c: open_provider(c, world.box))
    assert report.ok and report.created == 2 and report.rejected == 1
    with world.store.session() as session:
        names = sorted(session.scalars(select(Event.name)))
        assert names == ["Board meeting", "Gala dinner"]
        rejection = session.scalars(select(Rejection)).one()
        assert rejection.remote_id == "/dup-uid/second.ics" and rejection.uid == "same-uid"
        assert "UID same-uid is already used by /dup-uid/first.ics" in rejection.reason
        assert "delete the duplicate or give it a new UID" in rejection.reason
    # the next run (the server lists everything again) changes nothing
    again = sync_calendar(world.store, cal_id, lambda c: open_provider(c, world.box))
    assert again.ok and again.created == 0 and again.rejected == 1
    # a new UID on the copy imports it
    collection.objects["second.ics"] = _ics("new-uid", "Gala dinner (copy)", day=2)
    third = sync_calendar(world.store, cal_id, lambda c: open_provider(c, world.box))
    assert third.ok and third.created == 1 and third.rejected == 0
    with world.store.session() as session:
        assert session.scalars(select(Rejection)).all() == []
        assert len(session.scalars(select(Link).where(Link.calendar_id == cal_id)).all()) == 3
        assert session.get(Calendar, cal_id) is not None
