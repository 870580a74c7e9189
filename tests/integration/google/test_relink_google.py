"""Issue 9 §2 on the Google emulator: removing a Google calendar and adding it again adopts
the events on both sides; the same calendar id is never linked twice; a key is replaced in
place with ``update_calendar``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from google_world import FAST_RETRY, GoogleWorld, soon, timed

from calbridge.errors import ConfigError
from calbridge.sync.calendars import (
    CalendarUpdate,
    add_google_calendar,
    remove_calendar,
    update_calendar,
)
from worlds import book

EMAIL = "tom@harbour.example"


def _link(world: GoogleWorld, name: str, **options: object) -> None:
    with world.store.session() as session:
        calendar = add_google_calendar(
            session,
            world.box,
            name,
            world.calendars["toms"],
            service_account_info=world.gcal.service_account_info(),
            subject=EMAIL,
            api_base=world.gcal.base_url,
            **options,  # type: ignore[arg-type]
        )
        calendar.settings = {**calendar.settings, "retry": FAST_RETRY}


def _seed(world: GoogleWorld) -> None:
    world.add_calendar("toms", user=EMAIL, owner="u-tom")
    start = soon(3)
    world.insert("toms", {"summary": "Made in Google", **timed(start, start + timedelta(hours=1))})
    with world.store.session() as session:
        book(session, "Made in bookings", start, start + timedelta(hours=2))
    report = world.sync("toms")
    assert (report.created, report.pushed_created) == (1, 1), report


def test_remove_then_add_again_adopts_google_events_without_duplicates(
    world: GoogleWorld,
) -> None:
    _seed(world)
    with world.store.session() as session:
        assert remove_calendar(session, "toms") == 2
    _link(world, "toms", owner="u-tom")
    report = world.sync("toms")
    assert report.ok, report.error
    assert (report.created, report.pushed_created) == (0, 0)
    assert len(world.bookings()) == 2
    assert sorted(e["summary"] for e in world.live("toms")) == [
        "Made in Google",
        "Made in bookings",
    ]


def test_the_same_google_calendar_cannot_be_linked_twice(world: GoogleWorld) -> None:
    world.add_calendar("toms", user=EMAIL)
    with pytest.raises(ConfigError) as error:
        _link(world, "second")
    assert str(error.value).startswith(
        f"the Google calendar '{world.calendars['toms']}' is linked already, as calendar 'toms'"
    )


def test_update_gives_a_google_calendar_a_new_key_in_place(world: GoogleWorld) -> None:
    _seed(world)
    with world.store.session() as session:
        update_calendar(
            session,
            world.box,
            "toms",
            CalendarUpdate(connection={"service_account": world.gcal.service_account_info()}),
        )
    report = world.sync("toms")
    assert report.ok and not report.full_resync
    assert (report.created, report.pushed_created) == (0, 0)


def test_a_read_only_calendar_names_the_update_that_makes_it_pull_only(world: GoogleWorld) -> None:
    calendar_id = world.gcal.add_user("owner@harbour.example")
    world.gcal.add_user("reader@harbour.example")
    world.gcal.emulator.share_calendar(calendar_id, "reader@harbour.example", "reader")
    with world.store.session() as session:
        calendar = add_google_calendar(
            session,
            world.box,
            "shared",
            calendar_id,
            service_account_info=world.gcal.service_account_info(),
            subject="reader@harbour.example",
            api_base=world.gcal.base_url,
            owner="u-tom",
        )
        calendar.settings = {**calendar.settings, "retry": FAST_RETRY}
        start = soon(2)
        book(session, "Made in bookings", start, start + timedelta(hours=1))
    failed = world.sync("shared")
    assert not failed.ok
    assert "calendar 'shared' (Google): reader@harbour.example may not change calendar" in (
        failed.error or ""
    )
    assert (failed.error or "").endswith(
        "or only read it: `calbridge calendars update shared --direction pull`"
    )
    with world.store.session() as session:
        update_calendar(session, world.box, "shared", CalendarUpdate(direction="pull"))
    assert world.sync("shared").ok
