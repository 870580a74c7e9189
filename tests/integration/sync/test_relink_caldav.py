"""Issue 9 §2 on a real Radicale: a calendar is linked once, updated in place, and removing
then adding it again adopts what both sides hold — nothing is created twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sync_helpers import USERS, objects

from calbridge.demo.seed import vevent
from calbridge.domain.event import make_times
from calbridge.errors import ConfigError, ProviderAuthError
from calbridge.store.events import ManualAssignment, create_event, update_event
from calbridge.store.models import Calendar, Event, Link
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import (
    CalendarUpdate,
    add_caldav_calendar,
    link_event,
    remove_calendar,
    update_calendar,
)
from calbridge.sync.relink import normalize_url
from worlds import NOW

START = NOW.replace(hour=9) + timedelta(days=3)  # the sync tests' clock (worlds.NOW)


def _count(world, model) -> int:  # type: ignore[no-untyped-def]
    with world.store.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _seed_both_sides(world) -> None:  # type: ignore[no-untyped-def]
    """Two events made on the calendar, one booking pushed to it."""
    for i in range(2):
        world.put(
            "front",
            f"c{i}.ics",
            vevent(f"c{i}", f"From calendar {i}", START, START + timedelta(hours=1)),
        )
    with world.store.session() as session:
        event = create_event(
            session,
            name="From bookings",
            times=make_times(START, START + timedelta(hours=2), all_day=False, timezone="UTC"),
            manual=ManualAssignment("co-acme", None, "u-tom", "u-tom"),
        )
        calendar = session.scalars(select(Calendar).where(Calendar.name == "front")).one()
        link_event(session, event, calendar)
    report = world.sync("front")
    assert (report.created, report.pushed_created) == (2, 1), report


def _readd(world, name: str = "front") -> None:  # type: ignore[no-untyped-def]
    with world.store.session() as session:
        add_caldav_calendar(session, world.box, name, world.urls["front"], "staff", USERS["staff"])


def test_remove_then_add_again_adopts_both_sides_without_duplicates(world) -> None:  # type: ignore[no-untyped-def]
    world.add_calendar("front")
    _seed_both_sides(world)
    with world.store.session() as session:
        assert remove_calendar(session, "front") == 3
    _readd(world)
    report = world.sync("front")
    assert report.ok, report.error
    assert (report.created, report.pushed_created) == (0, 0)
    assert _count(world, Event) == 3
    assert len(objects(world, "front")) == 3
    again = world.sync("front")
    assert (again.created, again.pushed_created, again.pushed_updated) == (0, 0, 0)


def test_changes_made_while_unlinked_are_merged_after_re_adding(world) -> None:  # type: ignore[no-untyped-def]
    world.add_calendar("front")
    _seed_both_sides(world)
    with world.store.session() as session:
        remove_calendar(session, "front")
        booking = session.scalars(select(Event).where(Event.name == "From bookings")).one()
        update_event(session, booking, {"name": "Renamed while unlinked"})
    world.put(
        "front", "c0.ics", vevent("c0", "Edited while unlinked", START, START + timedelta(hours=1))
    )
    _readd(world)
    report = world.sync("front")
    assert (report.created, report.pushed_created, report.updated, report.pushed_updated) == (
        0,
        0,
        1,
        1,
    )
    names = {
        e.split("SUMMARY:")[1].split("\r\n")[0].split("\n")[0] for e in objects(world, "front")
    }
    assert names == {"Edited while unlinked", "From calendar 1", "Renamed while unlinked"}
    assert _count(world, Event) == 3


def test_the_same_collection_cannot_be_linked_twice(world) -> None:  # type: ignore[no-untyped-def]
    url = world.add_calendar("front")

    variant = url.rstrip("/")  # the same collection written without its trailing slash
    with world.store.session() as session, pytest.raises(ConfigError) as error:
        add_caldav_calendar(session, world.box, "again", variant, "tom", USERS["tom"], check=False)
    message = str(error.value)
    assert f"the CalDAV collection {variant} is linked already, as calendar 'front'" in message
    assert "`calbridge calendars update front …`" in message


def test_url_normalization_names_one_collection_one_way() -> None:
    same = {
        normalize_url("HTTP://Cal.Example:80/dav/staff/front"),
        normalize_url("http://cal.example/dav//staff/front/"),
        normalize_url("http://user@cal.example/dav/%73taff/front/"),
    }
    assert same == {"http://cal.example/dav/staff/front/"}
    assert normalize_url("https://cal.example:8443/a/") != normalize_url("https://cal.example/a/")


def test_update_changes_credentials_and_settings_keeping_links_and_token(world) -> None:  # type: ignore[no-untyped-def]
    world.add_calendar("front")
    _seed_both_sides(world)
    with world.store.session() as session:
        before = session.scalars(select(Calendar).where(Calendar.name == "front")).one()
        token, prefix = before.sync_token, before.key_prefix
        assert token
    with world.store.session() as session, pytest.raises(ProviderAuthError):
        update_calendar(
            session, world.box, "front", CalendarUpdate(connection={"password": "wrong"})
        )
    with world.store.session() as session:
        update_calendar(
            session,
            world.box,
            "front",
            CalendarUpdate(
                connection={"password": USERS["staff"]}, policy="calendar-wins", horizon_days=30
            ),
        )
    with world.store.session() as session:
        after = session.scalars(select(Calendar).where(Calendar.name == "front")).one()
        assert (after.sync_token, after.key_prefix, after.policy, after.horizon_days) == (
            token,
            prefix,
            "calendar-wins",
            30,
        )
        assert session.scalar(select(func.count()).select_from(Link)) == 3
    report = world.sync("front")
    assert report.ok and not report.full_resync  # the kept token: an incremental sync
    assert (report.created, report.pushed_created) == (0, 0)


def test_update_refuses_options_of_another_kind_and_a_bad_policy(world) -> None:  # type: ignore[no-untyped-def]
    world.add_calendar("front")
    with world.store.session() as session, pytest.raises(ConfigError) as error:
        update_calendar(
            session, world.box, "front", CalendarUpdate(connection={"tenant": "contoso"})
        )
    assert str(error.value) == (
        "calendar 'front' is a CalDAV calendar; --tenant does not apply to it"
    )
    with world.store.session() as session, pytest.raises(ConfigError, match="--policy must be"):
        update_calendar(session, world.box, "front", CalendarUpdate(policy="loudest-wins"))


def test_a_refused_password_at_sync_names_the_update_command(world) -> None:  # type: ignore[no-untyped-def]
    url = world.radicale.make_calendar("staff", "pw-changed")
    with world.store.session() as session:
        add_caldav_calendar(session, world.box, "front", url, "staff", "old-pw", check=False)
    report = world.sync("front")
    assert not report.ok
    assert "the server refused the username or password for " in (report.error or "")
    assert (report.error or "").endswith(
        "check them and run `calbridge calendars update front --password-env VAR` "
        "(with --username USER if the user changed)"
    )


def test_after_the_secret_key_changed_update_gives_the_calendar_its_password_again(world) -> None:  # type: ignore[no-untyped-def]
    world.add_calendar("front")
    _seed_both_sides(world)
    world.box = SecretBox(SecretBox.generate_key())  # CALBRIDGE_SECRET_KEY was replaced
    failed = world.sync("front")
    assert not failed.ok
    assert (failed.error or "").endswith(
        "give it its credentials again: `calbridge calendars update front --password-env VAR`"
    )
    with world.store.session() as session, pytest.raises(ConfigError, match="cannot be decrypted"):
        update_calendar(session, world.box, "front", CalendarUpdate(policy="calendar-wins"))
    with world.store.session() as session:
        update_calendar(
            session, world.box, "front", CalendarUpdate(connection={"password": USERS["staff"]})
        )
    report = world.sync("front")
    assert report.ok, report.error
    assert (report.created, report.pushed_created, _count(world, Link)) == (0, 0, 3)
