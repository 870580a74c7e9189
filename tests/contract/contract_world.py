"""Handles the contract tests talk through (see conftest.py): a calendar on a server, and a
booking store syncing with calendars on that server."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from calbridge.domain.event import make_times
from calbridge.domain.remote import ChangePage, EventFields, RemoteItem, Window
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
WINDOW = Window(datetime(2027, 1, 1), datetime(2028, 1, 1))
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


# ------------------------------------------------------------------ content


def vevent(uid: str, *lines: str, start: str = "20270305T090000Z") -> str:
    """An iCalendar object as a person's client would write it (CRLF, one VEVENT)."""
    body = "\r\n".join(
        (
            "BEGIN:VEVENT",
            f"UID:{uid}",
            "DTSTAMP:20270101T000000Z",
            *([f"DTSTART:{start}"] if start else []),
            *lines,
            "END:VEVENT",
        )
    )
    return (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//A person//EN\r\n{body}\r\nEND:VCALENDAR\r\n"
    )


def meeting(uid: str, summary: str = "Client meeting", hour: int = 9) -> str:
    return vevent(
        uid,
        f"DTEND:20270305T{hour + 1:02d}0000Z",
        f"SUMMARY:{summary}",
        "ORGANIZER;CN=Ann:mailto:ann@example.com",
        start=f"20270305T{hour:02d}0000Z",
    )


def fields(name: str = "Booking", start: datetime = datetime(2027, 4, 1, 10)) -> EventFields:
    times = make_times(start, start + timedelta(hours=2), all_day=False, timezone="Europe/Berlin")
    return EventFields(name, times, "Hall A", "Catering for 40")


def all_day(name: str, first: date, last_exclusive: date) -> EventFields:
    return EventFields(name, make_times(first, last_exclusive, all_day=True, timezone=None))


def pull(provider: CalDAVProvider, token: str | None) -> tuple[list[ChangePage], dict[str, object]]:
    """Every page of one listing, and its items by href."""
    pages = list(provider.list_changes(token, WINDOW))
    by_href: dict[str, object] = {}
    for page in pages:
        for entry in page.items:
            by_href[entry.ref.id if isinstance(entry, RemoteItem) else entry.ref_id] = entry
    return pages, by_href


def names(by_href: dict[str, object]) -> dict[str, str]:
    return {
        href: item.occurrences[0].fields.name
        for href, item in by_href.items()
        if isinstance(item, RemoteItem)
    }
