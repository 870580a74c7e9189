"""The Graph emulator over https (MSAL needs it) and a fresh booking store per test.

One emulator serves the whole session; every test gets its own calendar in the venue's
bookings mailbox, so delta state, faults and counters of one test never leak into another.
The mailbox is ``bookings@harbour.example`` — Mia's second address in the example directory —
so an event its owner organizes is booked by Mia; tests that need another organizer set it
on the emulator's stored event, as an invitation from that person would.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from calbridge.domain.remote import CalendarProvider
from calbridge.providers.graph.provider import open_graph
from calbridge.store.db import Store
from calbridge.store.models import Calendar
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_graph_calendar
from calbridge.sync.engine import sync_calendar
from calbridge.sync.providers import open_provider
from calbridge.sync.report import SyncReport
from calbridge_emulators.graph.testing import GraphEmulatorHandle
from worlds import GRAPH_MAILBOX, NOW, example_store

MAILBOX = GRAPH_MAILBOX
FAST_RETRY = {"attempts": 4, "base": 0.001, "cap": 0.05}  # Calendar.settings["retry"]
_names = itertools.count()

Factory = Callable[[Calendar], CalendarProvider]


@pytest.fixture(scope="session")
def graph(graph_server: GraphEmulatorHandle) -> GraphEmulatorHandle:
    """The session's Graph emulator (``graph_server``, tests/conftest.py)."""
    return graph_server


def dttz(value: str, zone: str = "UTC") -> dict[str, str]:
    return {"dateTime": value, "timeZone": zone}


@dataclass
class GraphWorld:
    store: Store
    graph: GraphEmulatorHandle
    box: SecretBox

    mailbox = MAILBOX
    now = NOW
    dttz = staticmethod(dttz)

    def __post_init__(self) -> None:
        self.calendars: dict[str, str] = {}  # our name -> Graph calendar id

    # ----------------------------------------------------------- setup
    def add_calendar(self, name: str, **options: Any) -> str:
        cal = self.graph.add_calendar(MAILBOX, f"{name}-{next(_names)}")
        with self.store.session() as session:
            calendar = add_graph_calendar(
                session,
                self.box,
                name,
                MAILBOX,
                tenant=self.graph.tenant_id,
                client_id=self.graph.client_id,
                client_secret=self.graph.client_secret,
                calendar_id=cal.id,
                api_base=self.graph.graph_url,
                login_base=self.graph.login_base,
                ca_file=str(self.graph.ca_cert_path),
                **options,
            )
            calendar.settings = {**calendar.settings, "retry": FAST_RETRY}
        self.calendars[name] = cal.id
        return cal.id

    def calendar_id(self, name: str) -> int:
        with self.store.session() as session:
            return session.scalars(select(Calendar.id).where(Calendar.name == name)).one()

    # ----------------------------------------------------------- the calendar side
    def create(
        self,
        calendar: str,
        subject: str,
        start: str,
        end: str,
        zone: str = "UTC",
        *,
        organizer: str | None = None,
        **extra: Any,
    ) -> str:
        """An event made in Outlook; returns its Graph id."""
        body = {"subject": subject, "start": dttz(start, zone), "end": dttz(end, zone), **extra}
        made = self.graph.external_create(MAILBOX, body, self.calendars[calendar])
        if organizer is not None:
            self.stored(calendar, made["id"]).organizer = {"name": organizer, "address": organizer}
        return str(made["id"])

    def stored(self, calendar: str, event_id: str) -> Any:
        """The emulator's own record of an event (to shape what Exchange would hold)."""
        user = self.graph.emulator.user(MAILBOX)
        return user.calendars[self.calendars[calendar]].items[event_id]

    def server(self) -> httpx.Client:
        return self.graph.graph_client(timeout=30)

    def instances(self, calendar: str, start: str, end: str) -> list[dict[str, Any]]:
        """What the calendar shows, read with plain HTTP (no calbridge code)."""
        client = self.server()
        url = f"/users/{MAILBOX}/calendars/{self.calendars[calendar]}/calendarView"
        params = {"startDateTime": start, "endDateTime": end, "$top": "1000"}
        response = client.get(url, params=params, headers={"Prefer": 'outlook.timezone="UTC"'})
        assert response.status_code == 200, response.text
        return list(response.json()["value"])

    def events(self, calendar: str, zone: str = "UTC") -> list[dict[str, Any]]:
        """The stored events (single events and series masters), read with plain HTTP."""
        client = self.server()
        url = f"/users/{MAILBOX}/calendars/{self.calendars[calendar]}/events"
        prefer = f'outlook.timezone="{zone}", outlook.body-content-type="text"'
        response = client.get(url, params={"$top": "1000"}, headers={"Prefer": prefer})
        assert response.status_code == 200, response.text
        return list(response.json()["value"])

    # ----------------------------------------------------------- syncing
    def provider(self, name: str, **kwargs: Any) -> Any:
        with self.store.session() as session:
            calendar = session.scalars(select(Calendar).where(Calendar.name == name)).one()
            secret = self.box.open(calendar.secret or "", name)
            return open_graph(name, dict(calendar.settings), secret, **kwargs)

    def sync(
        self, name: str, factory: Factory | None = None, now: datetime | None = None
    ) -> SyncReport:
        return sync_calendar(
            self.store,
            self.calendar_id(name),
            factory or (lambda c: open_provider(c, self.box)),
            now=now or self.now,
        )


@pytest.fixture
def world(graph: GraphEmulatorHandle, tmp_path: Path) -> Iterator[GraphWorld]:
    with example_store(tmp_path) as store:
        try:
            yield GraphWorld(store, graph, SecretBox(SecretBox.generate_key()))
        finally:
            graph.clear_faults()
