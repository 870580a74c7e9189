"""Google push through the running service: a watch channel per calendar, ``/hooks/google``,
booking-side changes pushed by the booking watcher, channel renewal before expiry.

One ``calbridge serve`` subprocess and one Google emulator serve the module; each test makes
its own change and waits (with a deadline) for its effect.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from push_service import (
    CALBRIDGE,
    Service,
    finished_runs,
    running_service,
    runs,
    shared_box,
    wait_until,
)
from sqlalchemy import select

from calbridge.providers.google.notify import open_channel
from calbridge.providers.google.provider import GoogleProvider
from calbridge.store.db import Store, open_store
from calbridge.store.directory import import_directory
from calbridge.store.models import Calendar, Event, Link
from calbridge.sync.calendars import add_google_calendar
from calbridge.sync.providers import open_provider
from calbridge_emulators.google.testing import EmulatorHandle, running_emulator
from postgres_server import fresh_database
from worlds import EXAMPLE, example_store

TTL_SECONDS = 12  # channels live 12 s here: renewed when 4 s are left


@dataclass
class GoogleService:
    service: Service
    store: Store
    gcal: EmulatorHandle
    calendar_id: int  # ours
    google_id: str  # the Google calendar's id (its owner's address)
    event_id: str  # an event seeded before the start

    def watch(self) -> dict[str, Any]:
        with self.store.session() as session:
            calendar = session.get(Calendar, self.calendar_id)
            assert calendar is not None
            return dict((calendar.settings or {}).get("watch") or {})

    def booking(self) -> Event | None:
        with self.store.session() as session:
            return session.scalars(
                select(Event)
                .join(Link, Link.event_id == Event.id)
                .where(Link.calendar_id == self.calendar_id, Link.remote_id == self.event_id)
            ).first()

    def person(self) -> Any:
        credentials = self.gcal.service_account_credentials(subject=self.google_id)
        return self.gcal.build_service(credentials).events()


def _soon(days: int, hour: int) -> dict[str, Any]:
    start = datetime.now().replace(minute=0, second=0, microsecond=0) + timedelta(days=days)
    start = start.replace(hour=hour)
    return {
        "start": {"dateTime": start.isoformat(), "timeZone": "Europe/London"},
        "end": {"dateTime": (start + timedelta(hours=2)).isoformat(), "timeZone": "Europe/London"},
    }


@contextmanager
def booking_store(
    request: pytest.FixtureRequest, folder: Path, database: str
) -> Iterator[tuple[Store, str]]:
    """The example directory in SQLite, or in a fresh PostgreSQL database."""
    if database == "sqlite":
        with example_store(folder) as store:
            yield store, f"sqlite:///{folder / 'calbridge.db'}"
        return
    with fresh_database(request.getfixturevalue("postgres_admin")) as url:
        store = open_store(url)
        with store.session() as session:
            import_directory(session, EXAMPLE.read_text(encoding="utf-8"))
        try:
            yield store, url
        finally:
            store.dispose()


@pytest.fixture(scope="module")
def google_service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GoogleService]:
    """The service on SQLite (in-process queue)."""
    with _google_service(request, tmp_path_factory, "sqlite") as world:
        yield world


@pytest.fixture(scope="module")
def google_service_pg(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GoogleService]:
    """The service on PostgreSQL (procrastinate, an in-process worker)."""
    with _google_service(request, tmp_path_factory, "postgresql") as world:
        yield world


@contextmanager
def _google_service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, database: str
) -> Iterator[GoogleService]:
    folder = tmp_path_factory.mktemp("push-google")
    with running_emulator() as gcal, booking_store(request, folder, database) as (store, url):
        google_id = gcal.add_user("front-desk@harbour.example", time_zone="Europe/London")
        (event_id,) = gcal.seed_events(
            google_id,
            [{"summary": "Acme launch", **_soon(5, 18)}],
            principal="ann.lee@acme.example",
        )
        with store.session() as session:
            calendar = add_google_calendar(
                session,
                shared_box(),
                "front",
                google_id,
                service_account_info=gcal.service_account_info(),
                subject=google_id,
                api_base=gcal.base_url,
            )
            calendar_id = calendar.id
        env = {
            "CALBRIDGE_PUSH_GOOGLE_TTL_SECONDS": str(TTL_SECONDS),
            "CALBRIDGE_PUSH_STRAY_STOP_SECONDS": "1",
        }
        with running_service(folder, url, **env) as service:
            world = GoogleService(service, store, gcal, calendar_id, google_id, event_id)
            wait_until(world.watch, 30, f"a watch channel\n{service.output()}")
            wait_until(world.booking, 30, f"the first poll's import\n{service.output()}")
            yield world


def test_google_edit_becomes_a_booking_change_through_the_watch_notification(
    google_service: GoogleService,
) -> None:
    world = google_service
    world.person().patch(
        calendarId=world.google_id, eventId=world.event_id, body={"summary": "Acme gala"}
    ).execute()

    booking = wait_until(
        lambda: (b := world.booking()) is not None and b.name == "Acme gala" and b,
        30,
        f"the edit to reach the booking\n{world.service.output()}",
    )
    assert booking.name == "Acme gala"
    assert any(run.trigger == "push" for run in runs(world.store, world.calendar_id))


def test_forged_google_notifications_are_refused_and_sync_nothing(
    google_service: GoogleService,
) -> None:
    world = google_service
    watch = world.watch()
    before = len(runs(world.store, world.calendar_id))
    forged = world.service.post(
        "/hooks/google",
        headers={
            "X-Goog-Channel-ID": watch["channel_id"],
            "X-Goog-Channel-Token": "not-the-token",
            "X-Goog-Resource-ID": watch["resource_id"],
            "X-Goog-Resource-State": "exists",
            "X-Goog-Message-Number": "7",
        },
    )
    unknown = world.service.post(
        "/hooks/google",
        headers={
            "X-Goog-Channel-ID": "calbridge-nobody",
            "X-Goog-Channel-Token": "x",
            "X-Goog-Resource-ID": "nothing",
            "X-Goog-Resource-State": "exists",
        },
    )

    assert forged.status_code == 403
    assert unknown.status_code == 404
    metrics = httpx.get(world.service.url + "/metrics").text
    assert 'calbridge_push_notifications_refused_total{provider="google",reason="forged"}' in (
        metrics
    )
    with pytest.raises(AssertionError):  # the enqueue would have happened before the answer
        wait_until(lambda: len(runs(world.store, world.calendar_id)) > before, 2, "no run")


def test_booking_changed_with_the_cli_reaches_the_google_calendar_without_a_sync(
    google_service: GoogleService,
) -> None:
    world = google_service
    booking = wait_until(world.booking, 10, "the booking")
    done = subprocess.run(
        [CALBRIDGE, "events", "update", str(booking.id), "--location", "Sea Lounge"],
        env=world.service.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr

    def on_google() -> bool:
        return bool(world.gcal.emulator.event(world.google_id, world.event_id).get("location"))

    wait_until(on_google, 30, f"the new location on Google\n{world.service.output()}")
    assert world.gcal.emulator.event(world.google_id, world.event_id)["location"] == "Sea Lounge"
    assert any(run.trigger == "booking_change" for run in runs(world.store, world.calendar_id))


def test_a_channel_no_calendar_uses_gets_404_and_is_stopped(
    google_service: GoogleService,
) -> None:
    world = google_service
    with world.store.session() as session:
        calendar = session.get(Calendar, world.calendar_id)
        assert calendar is not None
        provider = open_provider(calendar, shared_box())
    assert isinstance(provider, GoogleProvider)
    stray = open_channel(provider, world.service.url + "/hooks/google")  # left over, say

    world.person().patch(
        calendarId=world.google_id, eventId=world.event_id, body={"description": "stray test"}
    ).execute()

    channels = world.gcal.emulator.store.channels
    wait_until(
        lambda: channels[stray.id].stopped, 20, f"the stray stopped\n{world.service.output()}"
    )
    statuses = [
        d.get("status")
        for d in world.gcal.emulator.notifier.deliveries
        if d["channel_id"] == stray.id
    ]
    assert 404 in statuses
    assert not channels[world.watch()["channel_id"]].stopped


def test_watch_channel_is_renewed_before_it_expires_and_the_old_one_stopped(
    google_service: GoogleService,
) -> None:
    world = google_service
    first = world.watch()
    renewed = wait_until(
        lambda: (w := world.watch()).get("channel_id") != first["channel_id"] and w,
        TTL_SECONDS * 2,
        "a renewed channel",
    )
    assert datetime.fromisoformat(renewed["expiration"]) > datetime.fromisoformat(
        first["expiration"]
    )
    channels = world.gcal.emulator.store.channels
    wait_until(lambda: channels[first["channel_id"]].stopped, 10, "the old channel stopped")
    assert not channels[renewed["channel_id"]].stopped
    assert finished_runs(world.store, world.calendar_id)


@pytest.mark.postgres
def test_on_postgresql_push_and_cli_changes_arrive_through_procrastinate(
    google_service_pg: GoogleService,
) -> None:
    test_google_edit_becomes_a_booking_change_through_the_watch_notification(google_service_pg)
    test_booking_changed_with_the_cli_reaches_the_google_calendar_without_a_sync(google_service_pg)
