"""The EWS emulator over real HTTP, driven by real exchangelib, and a fresh booking store per
test.

One emulator serves the session; every test starts from an empty organisation
(``Organisation.reset``) with the venue's bookings mailbox — Mia's second address in the example
directory, so an item its owner organizes is booked by Mia — a service account that may
impersonate it, and the mailbox's own account. Calendar-side changes are made on the emulator's
store, as a person in Outlook would make them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from calbridge.providers.ews import open_ews
from calbridge.store.db import Store
from calbridge.store.models import Calendar, Event
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_ews_calendar
from calbridge.sync.engine import sync_calendar
from calbridge.sync.providers import open_provider
from calbridge.sync.report import SyncReport
from calbridge_emulators.ews.server import EwsServer, running_emulator
from calbridge_emulators.ews.store import Item, Organizer, Pattern
from worlds import NOW, example_store

MAILBOX = "bookings@harbour.example"
SERVICE = ("svc-calbridge", "S3rvice!pw")
OWNER = ("bookings", "B00kings!pw")
FAST_RETRY = {"attempts": 4, "base": 0.001, "cap": 0.05}
_names = itertools.count()


@pytest.fixture(scope="session")
def ews_server() -> Iterator[EwsServer]:
    with running_emulator() as server:
        yield server


def at(value: str, zone: str = "UTC") -> datetime:
    """An aware instant from wall-clock ``value`` in IANA ``zone``."""
    return datetime.fromisoformat(value).replace(tzinfo=ZoneInfo(zone))


@dataclass
class EwsWorld:
    store: Store
    server: EwsServer
    box: SecretBox

    mailbox = MAILBOX
    now = NOW

    @property
    def org(self) -> Any:
        return self.server.org

    # ----------------------------------------------------------- setup
    def add_calendar(
        self,
        name: str,
        *,
        impersonate: bool = True,
        auth: str = "basic",
        mailbox: str = MAILBOX,
        **options: Any,
    ) -> None:
        username, password = SERVICE if impersonate else OWNER
        with self.store.session() as session:
            calendar = add_ews_calendar(
                session,
                self.box,
                name,
                mailbox,
                username=f"HARBOUR\\{username}",
                password=password,
                server=self.server.ews_url,
                auth=auth,
                impersonate=impersonate,
                **options,
            )
            calendar.settings = {**calendar.settings, "retry": FAST_RETRY}

    def calendar_id(self, name: str) -> int:
        with self.store.session() as session:
            return session.scalars(select(Calendar.id).where(Calendar.name == name)).one()

    # ----------------------------------------------------------- the calendar side
    def create(
        self,
        subject: str,
        start: str,
        end: str,
        zone: str = "UTC",
        *,
        windows_zone: str | None = None,
        organizer: Organizer | None = None,
        **extra: Any,
    ) -> str:
        """An item made in Outlook (wall-clock times in IANA ``zone``); returns its id."""
        item = self.org.external_create(
            self.mailbox,
            subject,
            at(start, zone),
            at(end, zone),
            windows_zone or _windows(zone),
            organizer=organizer,
            **extra,
        )
        return str(item.id)

    def series(
        self, subject: str, start: str, end: str, pattern: Pattern, zone: str = "UTC"
    ) -> str:
        return self.create(subject, start, end, zone, pattern=pattern)

    def items(self) -> list[Item]:
        """What the mailbox's calendar holds (singles and masters), oldest first."""
        box = self.org.mailbox(self.mailbox)
        return sorted(box.items.values(), key=lambda i: (i.start, i.id))

    def item(self, subject: str) -> Item:
        [found] = [i for i in self.items() if i.subject == subject]
        return found

    # ----------------------------------------------------------- syncing
    def provider(self, name: str, **kwargs: Any) -> Any:
        with self.store.session() as session:
            calendar = session.scalars(select(Calendar).where(Calendar.name == name)).one()
            secret = self.box.open(calendar.secret or "", name)
            return open_ews(name, dict(calendar.settings), secret, **kwargs)

    def sync(self, name: str, now: datetime | None = None) -> SyncReport:
        return sync_calendar(
            self.store,
            self.calendar_id(name),
            lambda c: open_provider(c, self.box),
            now=now or self.now,
        )

    def bookings(self) -> list[Event]:
        with self.store.session() as session:
            return list(session.scalars(select(Event).order_by(Event.id)))

    def booking(self, name: str) -> Event:
        with self.store.session() as session:
            event: Event = session.scalars(select(Event).where(Event.name == name)).one()
            return event


def _windows(zone: str) -> str:
    from calbridge.domain.windows_zones import iana_to_windows

    return "UTC" if zone == "UTC" else (iana_to_windows(zone) or zone)


@pytest.fixture
def world(ews_server: EwsServer, tmp_path: Path) -> Iterator[EwsWorld]:
    org = ews_server.org
    org.reset()
    org.add_mailbox(MAILBOX, "Harbour Bookings")
    org.add_account(SERVICE[0], SERVICE[1], impersonates=(MAILBOX,))
    org.add_account(OWNER[0], OWNER[1], mailbox=MAILBOX)
    with example_store(tmp_path) as store:
        yield EwsWorld(store, ews_server, SecretBox(SecretBox.generate_key()))


def utc(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)
