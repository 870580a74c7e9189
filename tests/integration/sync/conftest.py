"""A real Radicale server and a fresh booking store per test, for the sync engine's tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select
from sync_helpers import USERS

from calbridge.domain.remote import CalendarProvider
from calbridge.store.db import Store
from calbridge.store.models import Calendar
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_caldav_calendar
from calbridge.sync.engine import sync_calendar
from calbridge.sync.providers import open_provider
from calbridge.sync.report import SyncReport
from calbridge_emulators.radicale import RadicaleServer, running_radicale
from worlds import NOW, example_store

_names = itertools.count()


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    with running_radicale(tmp_path_factory.mktemp("radicale"), USERS) as server:
        yield server


@dataclass
class World:
    store: Store
    radicale: RadicaleServer
    box: SecretBox
    urls: dict[str, str] = field(default_factory=dict)
    providers: dict[str, CalendarProvider] = field(default_factory=dict)

    def add_calendar(self, name: str, user: str = "staff", **options: object) -> str:
        url = self.radicale.make_calendar(user, f"{name}-{next(_names)}")
        with self.store.session() as session:
            add_caldav_calendar(session, self.box, name, url, user, USERS[user], **options)  # type: ignore[arg-type]
        self.urls[name] = url
        return url

    def put(self, calendar: str, file_name: str, ics: str) -> None:
        self.radicale.put_ics(self.urls[calendar] + file_name, ics)

    def sync(self, name: str) -> SyncReport:
        with self.store.session() as session:
            cal_id = session.scalars(select(Calendar.id).where(Calendar.name == name)).one()
        return sync_calendar(self.store, cal_id, lambda c: open_provider(c, self.box), now=NOW)


@pytest.fixture
def world(radicale: RadicaleServer, tmp_path: Path) -> Iterator[World]:
    with example_store(tmp_path) as store:
        yield World(store, radicale, SecretBox(SecretBox.generate_key()))
