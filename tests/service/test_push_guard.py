"""The mass-cancellation guard: a sync that would cancel more than 20 % of a calendar's
bookings (and more than 10) cancels nothing, puts the calendar in ``needs_confirmation`` with
the list, and goes on only after ``calbridge calendars confirm NAME``; a full resync cancels
nothing before its listing is complete.

Real parts: the Google emulator over HTTP with the real client library, the service's job
body (:func:`calbridge.service.runs.run_sync_job`) and the real CLI (in-process).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from calbridge.domain.remote import CalendarProvider
from calbridge.errors import ProviderError
from calbridge.service.jobs import JobContext
from calbridge.service.runs import run_sync_job
from calbridge.store.db import Store
from calbridge.store.models import Calendar, Event, HeldCancellation, Link
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_google_calendar
from calbridge.sync.engine import sync_calendar
from calbridge.sync.providers import open_provider
from calbridge_cli import make_inprocess_cli
from calbridge_emulators.google.testing import EmulatorHandle, running_emulator
from worlds import example_store

FAST_RETRY = {"attempts": 2, "base": 0.001, "cap": 0.01}


@pytest.fixture(scope="module")
def gcal() -> Iterator[EmulatorHandle]:
    with running_emulator() as handle:
        yield handle


@dataclass
class World:
    store: Store
    gcal: EmulatorHandle
    box: SecretBox
    folder: Path
    calendar_id: int = 0
    google_id: str = ""
    event_ids: tuple[str, ...] = ()

    def ctx(self) -> JobContext:
        return JobContext(self.store, lambda c: open_provider(c, self.box))

    def delete_on_google(self, count: int) -> None:
        credentials = self.gcal.service_account_credentials(subject=self.google_id)
        events = self.gcal.build_service(credentials).events()
        for event_id in self.event_ids[:count]:
            events.delete(calendarId=self.google_id, eventId=event_id).execute()

    def cancelled(self) -> int:
        with self.store.session() as session:
            return len(session.scalars(select(Event).where(Event.status == "cancelled")).all())

    def calendar(self) -> Calendar:
        with self.store.session() as session:
            calendar = session.get(Calendar, self.calendar_id)
            assert calendar is not None
            session.expunge(calendar)
            return calendar


def _world(gcal: EmulatorHandle, folder: Path, store: Store, bookings: int) -> World:
    gcal.reset()
    world = World(store, gcal, SecretBox(SecretBox.generate_key()), folder)
    world.google_id = gcal.add_user(f"desk-{bookings}@harbour.example", time_zone="UTC")
    start = datetime.now().replace(minute=0, second=0, microsecond=0) + timedelta(days=3)
    bodies = [
        {
            "summary": f"Booking {n}",
            "start": {"dateTime": (start + timedelta(hours=n)).isoformat(), "timeZone": "UTC"},
            "end": {
                "dateTime": (start + timedelta(hours=n, minutes=30)).isoformat(),
                "timeZone": "UTC",
            },
        }
        for n in range(bookings)
    ]
    world.event_ids = tuple(
        gcal.seed_events(world.google_id, bodies, principal="tom@harbour.example")
    )
    with store.session() as session:
        calendar = add_google_calendar(
            session,
            world.box,
            "front",
            world.google_id,
            service_account_info=gcal.service_account_info(),
            subject=world.google_id,
            api_base=gcal.base_url,
            page_size=10,
        )
        calendar.settings = {**calendar.settings, "retry": FAST_RETRY}
        session.flush()
        world.calendar_id = calendar.id
    first = run_sync_job(world.ctx(), world.calendar_id, "poll")
    assert first.result == "ok"
    return world


@pytest.fixture
def world_of(gcal: EmulatorHandle, tmp_path: Path) -> Iterator[Any]:
    with example_store(tmp_path) as store:
        yield lambda bookings: _world(gcal, tmp_path, store, bookings)


def test_sync_that_would_cancel_more_than_a_fifth_cancels_nothing_and_waits_for_confirm(
    world_of: Any,
) -> None:
    world: World = world_of(30)
    world.delete_on_google(12)

    outcome = run_sync_job(world.ctx(), world.calendar_id, "push")

    assert outcome.result == "needs_confirmation"
    assert world.cancelled() == 0
    calendar = world.calendar()
    assert calendar.state == "needs_confirmation"
    assert "would cancel 12 of its 30 bookings" in (calendar.last_error or "")
    assert "calbridge calendars confirm front" in (calendar.error_hint or "")
    with world.store.session() as session:
        held = session.scalars(select(HeldCancellation)).all()
        assert len(held) == 12
    assert run_sync_job(world.ctx(), world.calendar_id, "poll").result == "skipped"

    cli = make_inprocess_cli(world.folder / "data", f"sqlite:///{world.folder / 'calbridge.db'}")
    listed = cli("calendars", "confirm", "front", "--list", "--json")
    assert listed.code == 0, listed.err
    shown = listed.json()
    assert isinstance(shown, dict) and len(shown["would_cancel"]) == 12
    assert world.cancelled() == 0

    confirmed = cli("calendars", "confirm", "front")
    assert confirmed.code == 0, confirmed.err
    assert "12 bookings cancelled" in confirmed.out
    assert world.cancelled() == 12
    assert world.calendar().state == "ok"
    after = run_sync_job(world.ctx(), world.calendar_id, "manual")
    assert after.result == "ok"
    assert world.cancelled() == 12
    assert len(world.gcal.emulator.calendar(world.google_id).events) == 30  # none re-created


@pytest.mark.parametrize(
    ("bookings", "deleted"),
    [(30, 10), (60, 11)],
    ids=["ten-is-not-more-than-ten", "eleven-of-sixty-is-under-a-fifth"],
)
def test_cancellations_under_the_threshold_go_through_at_once(
    world_of: Any, bookings: int, deleted: int
) -> None:
    world: World = world_of(bookings)
    world.delete_on_google(deleted)

    outcome = run_sync_job(world.ctx(), world.calendar_id, "push")

    assert outcome.result == "ok"
    assert world.cancelled() == deleted
    assert world.calendar().state == "ok"


def test_confirm_of_a_calendar_that_waits_for_nothing_is_a_clear_error(world_of: Any) -> None:
    world: World = world_of(3)
    cli = make_inprocess_cli(world.folder / "data", f"sqlite:///{world.folder / 'calbridge.db'}")

    result = cli("calendars", "confirm", "front")

    assert result.code != 0
    assert "calendar 'front' has no cancellations waiting for confirmation" in result.err
    assert "Traceback" not in result.err
    unknown = cli("calendars", "confirm", "nowhere")
    assert unknown.code != 0 and "no calendar is called 'nowhere'" in unknown.err


class _BreaksAfterFirstPage:
    """The real provider whose listing connection breaks after its first page."""

    def __init__(self, provider: CalendarProvider) -> None:
        self.provider = provider

    def __getattr__(self, name: str) -> Any:
        return getattr(self.provider, name)

    def list_changes(self, token: Any, window: Any) -> Iterator[Any]:
        pages = self.provider.list_changes(token, window)
        yield next(iter(pages))
        raise ProviderError("connection reset while listing (test)")


def test_full_resync_cancels_nothing_before_its_listing_is_complete(world_of: Any) -> None:
    world: World = world_of(30)
    world.delete_on_google(2)
    world.gcal.emulator.expire_sync_tokens(world.google_id)  # the next sync is a full resync

    broken = sync_calendar(
        world.store,
        world.calendar_id,
        lambda c: _BreaksAfterFirstPage(open_provider(c, world.box)),  # type: ignore[arg-type,return-value]
    )

    assert not broken.ok and broken.full_resync
    assert world.cancelled() == 0
    with world.store.session() as session:
        assert all(link.state == "ok" for link in session.scalars(select(Link)))
    complete = sync_calendar(world.store, world.calendar_id, lambda c: open_provider(c, world.box))
    assert complete.ok, complete.error
    assert world.cancelled() == 2
