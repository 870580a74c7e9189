"""A booking store beside the Google Calendar emulator, for the Google connector's tests.

Shared by ``conftest.py`` and the tests (test directories have no ``__init__``; this module's
name is unique on purpose). Calendars are real emulator users' primary calendars, linked with a
domain-wide-delegated service account acting as that user, through ``add_google_calendar`` and
``open_provider`` — the code paths the CLI uses. What a *person* does on a calendar goes through
the real client library over HTTP (:meth:`GoogleWorld.person`), except creating an event as
somebody else (``seed_events`` with a principal: the emulator's own insert, so ``creator`` is
that person) and the odd server-side oddity no API call can produce (:meth:`poke`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from calbridge.domain.remote import CalendarProvider
from calbridge.providers.google.provider import GoogleProvider
from calbridge.providers.retry import RetryPolicy
from calbridge.store.db import Store
from calbridge.store.models import Calendar, Event, Link
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_google_calendar
from calbridge.sync.engine import sync_calendar
from calbridge.sync.providers import open_provider
from calbridge.sync.report import SyncReport
from calbridge_emulators.google.testing import EmulatorHandle
from worlds import NOW

FAST_RETRY = {"attempts": 4, "base": 0.001, "cap": 0.05}  # Calendar.settings["retry"]
_names = itertools.count()

Factory = Callable[[Calendar], CalendarProvider]


def timed(start: datetime, end: datetime, zone: str = "Europe/London") -> dict[str, Any]:
    """Event times as a calendar client sends them: wall-clock time plus an IANA zone."""
    return {
        "start": {"dateTime": start.isoformat(), "timeZone": zone},
        "end": {"dateTime": end.isoformat(), "timeZone": zone},
    }


def all_day(first: date, end: date) -> dict[str, Any]:
    return {"start": {"date": first.isoformat()}, "end": {"date": end.isoformat()}}


def soon(days: int = 1, hour: int = 9) -> datetime:
    """A wall-clock time ``days`` from today: inside the engine's sync window."""
    today = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=days, hours=hour)


@dataclass
class GoogleWorld:
    store: Store
    gcal: EmulatorHandle
    box: SecretBox
    calendars: dict[str, str] = field(default_factory=dict)  # our name -> Google calendar id
    sleeps: list[float] = field(default_factory=list)  # waits the providers asked for

    # ----------------------------------------------------------- setup
    def add_calendar(
        self, name: str, *, user: str | None = None, zone: str = "Europe/London", **options: Any
    ) -> str:
        """Link the primary calendar of ``user`` (a new one by default), checked."""
        email = user or f"{name}-{next(_names)}@harbour.example"
        calendar_id = self.gcal.add_user(email, time_zone=zone)
        with self.store.session() as session:
            calendar = add_google_calendar(
                session,
                self.box,
                name,
                calendar_id,
                service_account_info=self.gcal.service_account_info(),
                subject=email,
                api_base=self.gcal.base_url,
                **options,
            )
            calendar.settings = {**calendar.settings, "retry": FAST_RETRY}
        self.calendars[name] = calendar_id
        return calendar_id

    def factory(self, policy: RetryPolicy | None = None) -> Factory:
        """Providers as the engine gets them; their waits are recorded, not slept."""

        def make(calendar: Calendar) -> CalendarProvider:
            provider = open_provider(calendar, self.box)
            if isinstance(provider, GoogleProvider):
                chosen = policy or provider.retry_policy
                provider.retry_policy = RetryPolicy(
                    attempts=chosen.attempts,
                    base=chosen.base,
                    cap=chosen.cap,
                    jitter=chosen.jitter,
                    sleep=self.sleeps.append,
                )
            return provider

        return make

    def provider(self, name: str) -> GoogleProvider:
        with self.store.session() as session:
            calendar = self.calendar_row(session, name)
            provider = self.factory()(calendar)
        assert isinstance(provider, GoogleProvider)
        return provider

    def calendar_row(self, session: Any, name: str) -> Calendar:
        return session.scalars(select(Calendar).where(Calendar.name == name)).one()

    def sync(self, name: str, **options: Any) -> SyncReport:
        factory = options.pop("factory", None) or self.factory()
        with self.store.session() as session:
            calendar_id = self.calendar_row(session, name).id
        options.setdefault("now", NOW)
        return sync_calendar(self.store, calendar_id, factory, **options)

    # ----------------------------------------------------------- the calendar side
    def person(self, name: str) -> Any:
        """The calendar's owner, editing through the real client library over HTTP."""
        owner = self.calendars[name]
        return self.gcal.build_service(self.gcal.service_account_credentials(subject=owner))

    def insert(self, name: str, body: dict[str, Any], *, creator: str | None = None) -> str:
        """An event created on the calendar by ``creator`` (the owner by default)."""
        calendar_id = self.calendars[name]
        return self.gcal.seed_events(calendar_id, [body], principal=creator or calendar_id)[0]

    def patch(self, name: str, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
        events = self.person(name).events()
        result: dict[str, Any] = events.patch(
            calendarId=self.calendars[name], eventId=event_id, body=body
        ).execute()
        return result

    def remove(self, name: str, event_id: str) -> None:
        events = self.person(name).events()
        events.delete(calendarId=self.calendars[name], eventId=event_id).execute()

    def event(self, name: str, event_id: str) -> dict[str, Any]:
        return self.gcal.emulator.event(self.calendars[name], event_id)

    def stored(self, name: str) -> list[dict[str, Any]]:
        """Every event on the calendar as stored (exceptions included, cancelled ones too)."""
        calendar = self.gcal.emulator.calendar(self.calendars[name])
        with self.gcal.emulator.store.lock:
            return [dict(e.data, id=e.id) for e in calendar.events.values()]

    def live(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.stored(name) if e.get("status") != "cancelled"]

    def poke(self, name: str, event_id: str, change: Callable[[Any], None]) -> None:
        """Change a stored event behind the API's back (data no API call can produce) and
        record it as a change, so it shows up in the next incremental listing."""
        emulator = self.gcal.emulator
        with emulator.store.lock:
            calendar = emulator.calendar(self.calendars[name])
            stored = calendar.events[event_id]
            change(stored)
            emulator.store.touch(calendar, stored)

    # ----------------------------------------------------------- the booking side
    def bookings(self) -> list[Event]:
        with self.store.session() as session:
            return list(session.scalars(select(Event).order_by(Event.id)))

    def booking(self, name: str) -> Event:
        with self.store.session() as session:
            return session.scalars(select(Event).where(Event.name == name)).one()

    def links(self) -> list[Link]:
        with self.store.session() as session:
            return list(session.scalars(select(Link).order_by(Link.recurrence_id, Link.id)))
