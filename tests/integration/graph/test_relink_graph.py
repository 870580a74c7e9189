"""Issue 9 §2 on the Graph emulator: removing a Microsoft 365 calendar and adding it again
adopts the events on both sides; the same mailbox calendar is never linked twice; a refused
secret names the `calendars update` command that replaces it in place."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from calbridge.errors import ConfigError
from calbridge.store.models import Event
from calbridge.sync.calendars import (
    CalendarUpdate,
    add_graph_calendar,
    remove_calendar,
    update_calendar,
)
from worlds import book

GraphWorld = Any  # conftest.GraphWorld (conftest modules are not imported by name)
MAILBOX = "bookings@harbour.example"
FAST_RETRY = {"attempts": 4, "base": 0.001, "cap": 0.05}


def _link(world: GraphWorld, name: str, secret: str | None = None, **options: object) -> None:
    with world.store.session() as session:
        calendar = add_graph_calendar(
            session,
            world.box,
            name,
            MAILBOX.upper(),  # the same mailbox, written another way
            tenant=world.graph.tenant_id,
            client_id=world.graph.client_id,
            client_secret=secret or world.graph.client_secret,
            calendar_id=world.calendars["front"],
            api_base=world.graph.graph_url,
            login_base=world.graph.login_base,
            ca_file=str(world.graph.ca_cert_path),
            **options,  # type: ignore[arg-type]
        )
        calendar.settings = {**calendar.settings, "retry": FAST_RETRY}


def _seed(world: GraphWorld) -> None:
    world.add_calendar("front", owner="u-tom")
    world.create("front", "Made in Outlook", "2027-04-01T09:00:00", "2027-04-01T10:00:00")
    with world.store.session() as session:
        book(session, "Made in bookings", "2027-04-02T09:00", "2027-04-02T11:00")
    report = world.sync("front")
    assert (report.created, report.pushed_created) == (1, 1), report


def _bookings(world: GraphWorld) -> int:
    with world.store.session() as session:
        return int(session.scalar(select(func.count()).select_from(Event)) or 0)


def test_remove_then_add_again_adopts_graph_events_without_duplicates(world: GraphWorld) -> None:
    _seed(world)
    with world.store.session() as session:
        assert remove_calendar(session, "front") == 2
    _link(world, "front", owner="u-tom")
    report = world.sync("front")
    assert report.ok, report.error
    assert (report.created, report.pushed_created) == (0, 0)
    assert _bookings(world) == 2
    assert sorted(e["subject"] for e in world.events("front")) == [
        "Made in Outlook",
        "Made in bookings",
    ]


def test_the_same_mailbox_calendar_cannot_be_linked_twice(world: GraphWorld) -> None:
    world.add_calendar("front")
    with pytest.raises(ConfigError) as error:
        _link(world, "second")
    assert f"of the Microsoft 365 mailbox '{MAILBOX.upper()}' is linked already, as " in str(
        error.value
    )
    assert "calendar 'front'" in str(error.value)


def test_a_refused_secret_names_update_and_update_replaces_it(world: GraphWorld) -> None:
    _seed(world)
    with world.store.session() as session:
        update_calendar(
            session,
            world.box,
            "front",
            CalendarUpdate(connection={"client_secret": "revoked"}),
            check=False,
        )
    failed = world.sync("front")
    assert not failed.ok
    assert (failed.error or "").endswith(
        "then run `calbridge calendars update front --client-secret-env VAR`"
    )
    with world.store.session() as session:
        update_calendar(
            session,
            world.box,
            "front",
            CalendarUpdate(connection={"client_secret": world.graph.client_secret}),
        )
    report = world.sync("front")
    assert report.ok, report.error
    assert (report.created, report.pushed_created) == (0, 0)


def test_the_default_calendar_linked_by_id_is_the_same_calendar(world: GraphWorld) -> None:
    mailbox = "venue-default@harbour.example"
    world.graph.add_user(world.graph.tenant_id, mailbox, "Venue")
    with world.store.session() as session:
        first = add_graph_calendar(
            session,
            world.box,
            "default",
            mailbox,
            tenant=world.graph.tenant_id,
            client_id=world.graph.client_id,
            client_secret=world.graph.client_secret,
            api_base=world.graph.graph_url,
            login_base=world.graph.login_base,
            ca_file=str(world.graph.ca_cert_path),
        )
        default_id = first.settings["default_calendar_id"]
    with world.store.session() as session, pytest.raises(ConfigError) as error:
        add_graph_calendar(
            session,
            world.box,
            "by-id",
            mailbox,
            tenant=world.graph.tenant_id,
            client_id=world.graph.client_id,
            client_secret=world.graph.client_secret,
            calendar_id=default_id,
            api_base=world.graph.graph_url,
            login_base=world.graph.login_base,
            ca_file=str(world.graph.ca_cert_path),
        )
    assert str(error.value).startswith(
        f"calendar '{default_id}' of the Microsoft 365 mailbox '{mailbox}' is linked already, "
        "as calendar 'default'"
    )
