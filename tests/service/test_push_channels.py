"""Push channels kept by several service processes, re-pointed calendars and removed ones.

The channel keeper runs in-process here (one keeper per would-be ``calbridge serve`` process)
against the Google emulator; the booking store is SQLite or a real PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from push_service import shared_box
from test_push_google import booking_store

from calbridge.ops.calendars import unlink_calendar
from calbridge.service.channels import ChannelKeeper
from calbridge.store.db import Store
from calbridge.store.models import Calendar
from calbridge.sync.calendars import CalendarUpdate, add_google_calendar, update_calendar
from calbridge.sync.locks import calendar_lock
from calbridge.sync.providers import open_provider
from calbridge_emulators.google.testing import EmulatorHandle, running_emulator

PUBLIC_URL = "http://127.0.0.1:9"  # nobody answers there: delivery fails quietly, as it may


@dataclass
class World:
    store: Store
    gcal: EmulatorHandle
    calendar_id: int
    google_ids: tuple[str, str]

    def keeper(self) -> ChannelKeeper:
        box = shared_box()
        return ChannelKeeper(
            self.store, box, PUBLIC_URL, provider_factory=lambda c: open_provider(c, box)
        )

    def live_channels(self) -> list[Any]:
        channels = self.gcal.emulator.store.channels.values()
        return [c for c in channels if not c.stopped]

    def watch(self) -> dict[str, Any]:
        with self.store.session() as session:
            calendar = session.get(Calendar, self.calendar_id)
            assert calendar is not None
            return dict((calendar.settings or {}).get("watch") or {})


@pytest.fixture(params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    with running_emulator() as gcal, booking_store(request, tmp_path, request.param) as (store, _):
        first = gcal.add_user("front-desk@harbour.example", time_zone="Europe/London")
        second = gcal.add_user("ballroom@harbour.example", time_zone="Europe/London")
        with store.session() as session:
            calendar = add_google_calendar(
                session,
                shared_box(),
                "front",
                first,
                service_account_info=gcal.service_account_info(),
                subject=first,
                api_base=gcal.base_url,
            )
            calendar_id = calendar.id
        yield World(store, gcal, calendar_id, (first, second))


def test_two_service_processes_open_one_channel_per_calendar(world: World) -> None:
    keepers = [world.keeper() for _ in range(4)]
    start = threading.Barrier(len(keepers))
    reports: list[Any] = []

    def run(keeper: ChannelKeeper) -> None:
        start.wait()
        reports.append(keeper.run_once())

    threads = [threading.Thread(target=run, args=(k,)) for k in keepers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(world.live_channels()) == 1, world.live_channels()
    assert sum(len(r.opened) for r in reports) == 1, reports
    assert not any(r.failed for r in reports), reports
    assert world.watch()["channel_id"] == world.live_channels()[0].id


def test_a_calendar_being_synced_elsewhere_is_left_to_the_next_pass(world: World) -> None:
    keeper = world.keeper()
    with calendar_lock(world.store, world.calendar_id):
        held = keeper.run_once()
    assert (held.busy, held.opened, held.failed) == (["front"], [], {})
    assert world.live_channels() == []
    after = keeper.run_once()
    assert after.opened == ["front"]
    assert world.keeper().run_once().opened == []  # another process sees the channel: none more


def test_a_calendar_pointed_elsewhere_gets_a_channel_there_and_the_old_one_stops(
    world: World,
) -> None:
    keeper = world.keeper()
    assert keeper.run_once().opened == ["front"]
    (old,) = world.live_channels()
    assert old.calendar_id == world.google_ids[0]
    with world.store.session() as session:
        second = world.google_ids[1]
        change = CalendarUpdate(connection={"google": second, "subject": second})
        update_calendar(session, shared_box(), "front", change)
    assert keeper.run_once().opened == ["front"]
    (new,) = world.live_channels()
    assert new.calendar_id == world.google_ids[1]
    assert world.gcal.emulator.store.channels[old.id].stopped
    assert keeper.run_once().opened == []  # and it stays put


def test_removing_a_calendar_stops_its_channel(world: World) -> None:
    world.keeper().run_once()
    (channel,) = world.live_channels()
    done = unlink_calendar(world.store, shared_box(), "front", actor="test")
    assert (done.channel_note, world.live_channels()) == (None, [])
    assert world.gcal.emulator.store.channels[channel.id].stopped


def test_a_channel_that_cannot_be_stopped_does_not_block_the_removal(world: World) -> None:
    world.keeper().run_once()
    with world.store.session() as session:
        change = CalendarUpdate(connection={"api_base": "http://127.0.0.1:9/calendar/v3"})
        update_calendar(session, shared_box(), "front", change, check=False)
    done = unlink_calendar(world.store, shared_box(), "front", actor="test")
    assert done.channel_note is not None
    assert "ends by itself at its expiry" in done.channel_note
    with world.store.session() as session:
        assert session.get(Calendar, world.calendar_id) is None
