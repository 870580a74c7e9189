"""Handles the contract tests talk through (see conftest.py): a calendar on a server, and a
booking store syncing with calendars on that server."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select

from calbridge.providers.caldav.provider import CalDAVProvider
from calbridge.providers.retry import RetryPolicy
from calbridge.store.db import Store
from calbridge.store.models import Calendar, Event
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_caldav_calendar
from calbridge.sync.engine import sync_calendar
from calbridge.sync.providers import open_provider
from calbridge.sync.report import SyncReport
from calbridge_emulators.caldav_servers import CalDAVTestServer
from worlds import NOW

USERS = {"staff": "staff-pw", "tom": "tom-pw"}
FAST_RETRY = RetryPolicy(attempts=4, base=0.001, cap=0.05, jitter=0.5)
_names = itertools.count(1)

# A token each server could have issued, but never did.
UNKNOWN_TOKENS = {
    "radicale": "http://radicale.org/ns/sync/" + "0" * 16,
    "xandikos": "0" * 40,  # a git commit id
    "davical": "data:,999999999",
}

_QUERY = (
    '<?xml version="1.0"?><C:calendar-query xmlns:D="DAV:" '
    'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data/></D:prop>'
    '<C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>'
)


def objects_at(server: CalDAVTestServer, user: str, url: str) -> list[str]:
    """The calendar's objects as the server holds them (one REPORT, no calbridge code)."""
    response = server.client(user).request(
        "REPORT", url, content=_QUERY, headers={"Depth": "1", "Content-Type": "application/xml"}
    )
    response.raise_for_status()
    return [part.split("</")[0] for part in response.text.split("calendar-data>")[1::2]]


@dataclass
class RemoteCalendar:
    """One calendar collection of ``user``; changes through it are "made by a person"."""

    server: CalDAVTestServer
    kind: str
    user: str
    url: str

    @classmethod
    def fresh(cls, server: CalDAVTestServer, kind: str, user: str) -> RemoteCalendar:
        return cls(server, kind, user, server.make_calendar(user, f"cal{next(_names)}"))

    def provider(self, **options: Any) -> CalDAVProvider:
        options.setdefault("retry", FAST_RETRY)
        options.setdefault("name", "work")
        return CalDAVProvider(self.url, self.user, USERS[self.user], **options)

    def href(self, name: str) -> str:
        return httpx.URL(self.url).path + name

    def put(self, name: str, ics: str | bytes) -> str | None:
        return self.server.put_ics(self.url + name, ics)

    def text(self, name: str) -> str | None:
        return self.server.get_ics(self.url + name)

    def delete(self, name: str) -> None:
        self.server.delete(self.url + name)

    def objects(self) -> list[str]:
        return objects_at(self.server, self.user, self.url)


@dataclass
class World:
    """A booking store with the example directory, and calendars (by name) on one server."""

    kind: str
    server: CalDAVTestServer
    store: Store
    box: SecretBox
    calendars: dict[str, RemoteCalendar] = field(default_factory=dict)

    def add_calendar(self, name: str, user: str = "staff", **options: Any) -> RemoteCalendar:
        remote = RemoteCalendar.fresh(self.server, self.kind, user)
        with self.store.session() as session:
            add_caldav_calendar(session, self.box, name, remote.url, user, USERS[user], **options)
        self.calendars[name] = remote
        return remote

    def put(self, calendar: str, file_name: str, ics: str) -> None:
        self.calendars[calendar].put(file_name, ics)

    def delete(self, calendar: str, file_name: str) -> None:
        self.calendars[calendar].delete(file_name)

    def objects(self, calendar: str) -> list[str]:
        return self.calendars[calendar].objects()

    def calendar_id(self, name: str) -> int:
        with self.store.session() as session:
            return session.scalars(select(Calendar.id).where(Calendar.name == name)).one()

    def sync(self, name: str) -> SyncReport:
        return sync_calendar(
            self.store, self.calendar_id(name), lambda c: open_provider(c, self.box), now=NOW
        )

    def token(self, name: str) -> str | None:
        with self.store.session() as session:
            calendar = session.get(Calendar, self.calendar_id(name))
            assert calendar is not None
            return calendar.sync_token

    def set_token(self, name: str, token: str | None) -> None:
        with self.store.session() as session:
            calendar = session.get(Calendar, self.calendar_id(name))
            assert calendar is not None
            calendar.sync_token = token

    def events(self) -> list[Event]:
        with self.store.session() as session:
            return list(session.scalars(select(Event).order_by(Event.id)))

    def by_name(self, name: str) -> Event:
        with self.store.session() as session:
            return session.scalars(select(Event).where(Event.name == name)).one()
