"""iCalendar a person's client writes, and reading a CalDAV provider's listing: shared by the
CalDAV provider tests (tests/contract/ on every server, tests/integration/caldav/ on Radicale's
extras)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from calbridge.domain.event import make_times
from calbridge.domain.remote import ChangePage, EventFields, RemoteItem, Window
from calbridge.providers.caldav.provider import CalDAVProvider
from calbridge.store.db import Store
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_caldav_calendar
from calbridge.sync.engine import sync_calendar
from calbridge.sync.providers import open_provider
from calbridge.sync.report import SyncReport

WINDOW = Window(datetime(2027, 1, 1), datetime(2028, 1, 1))


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


@dataclass
class Linked:
    """A SQLite store (the example directory) with one CalDAV calendar linked, "front"."""

    store: Store
    box: SecretBox
    cal_id: int

    def sync(self, **options: Any) -> SyncReport:
        """An engine sync of "front" (``options``: handover…)."""
        return sync_calendar(
            self.store, self.cal_id, lambda c: open_provider(c, self.box), **options
        )


@contextmanager
def linked(url: str, folder: Path, password: str = "ann-secret") -> Iterator[Linked]:
    """:class:`Linked` to the calendar at ``url`` (user ann), its store in ``folder``."""
    from worlds import example_store

    box = SecretBox(SecretBox.generate_key())
    with example_store(folder) as store:
        with store.session() as session:
            cal_id = add_caldav_calendar(
                session, box, "front", url, "ann", password, check=False
            ).id
        yield Linked(store, box, cal_id)
