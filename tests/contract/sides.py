"""The calendar side of the contract suite, once per calendar API: what a *person* does on a
calendar (creates, edits, removes an event in their own client) and what the calendar then
holds, read without calbridge code.

Every side links calendars the way the CLI does (``add_caldav_calendar`` /
``add_google_calendar`` / ``add_graph_calendar``, connection checked) and speaks to its server
in that API's own terms: iCalendar objects PUT to a CalDAV server (Radicale, Xandikos,
DAViCal), the Google Calendar emulator driven through the real google-api-python-client, the
Graph emulator over https as Outlook would change it, the EWS emulator (Exchange Server,
driven through real exchangelib by the connector) changed as Outlook would change a mailbox's
calendar. Times are wall-clock in Europe/London (Graph and Exchange receive the Windows name,
"GMT Standard Time", as Outlook sends it).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from icalendar import Calendar as ICalendar
from sqlalchemy import select

from calbridge.demo.seed import vevent
from calbridge.domain.windows_zones import iana_to_windows
from calbridge.store.db import Store
from calbridge.store.events import update_event
from calbridge.store.models import Calendar, Event
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import (
    add_caldav_calendar,
    add_ews_calendar,
    add_google_calendar,
    add_graph_calendar,
)
from calbridge.sync.engine import sync_calendar
from calbridge.sync.providers import open_provider
from calbridge.sync.report import SyncReport
from calbridge_emulators.caldav_servers import CalDAVTestServer
from calbridge_emulators.ews.server import EwsServer
from calbridge_emulators.ews.store import Organizer
from calbridge_emulators.google.testing import EmulatorHandle
from calbridge_emulators.graph.testing import GraphEmulatorHandle
from worlds import GRAPH_MAILBOX, NOW

ZONE = "Europe/London"
USERS = {"staff": "staff-pw", "tom": "tom-pw"}
FAST_RETRY = {"attempts": 4, "base": 0.001, "cap": 0.05}  # Calendar.settings["retry"]
_names = itertools.count(1)


@dataclass(frozen=True)
class Seen:
    """One event as the calendar holds it."""

    title: str
    location: str | None = None
    notes: str | None = None


class Side(Protocol):
    """A calendar API as the contract scenarios use it (see the module docstring)."""

    kind: str
    quiet_requests: int  # what a sync with nothing changed may cost at most

    def link(self, store: Store, box: SecretBox, name: str, **options: Any) -> None: ...

    def create(
        self,
        calendar: str,
        title: str,
        start: datetime,
        end: datetime,
        *,
        organizer: str | None = None,
        location: str | None = None,
    ) -> str: ...

    def edit(self, calendar: str, handle: str, **changes: Any) -> None: ...

    def remove(self, calendar: str, handle: str) -> None: ...

    def read(self, calendar: str, handle: str) -> Seen: ...

    def live(self, calendar: str) -> list[Seen]: ...


# ------------------------------------------------------------------------------- CalDAV


@dataclass
class CalDAVSide:
    """A CalDAV server; a person's client PUTs whole iCalendar objects."""

    server: CalDAVTestServer
    kind: str
    quiet_requests: int = 1  # one sync-collection REPORT
    urls: dict[str, str] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    made: dict[str, dict[str, Any]] = field(default_factory=dict)  # handle -> what was PUT

    def link(self, store: Store, box: SecretBox, name: str, **options: Any) -> None:
        user = options.pop("user", "staff")
        url = self.server.make_calendar(user, f"contract{next(_names)}")
        with store.session() as session:
            add_caldav_calendar(session, box, name, url, user, USERS[user], **options)
        self.urls[name], self.users[name] = url, user

    def create(
        self,
        calendar: str,
        title: str,
        start: datetime,
        end: datetime,
        *,
        organizer: str | None = None,
        location: str | None = None,
    ) -> str:
        handle = f"e{next(_names)}"
        self.made[handle] = {
            "summary": title,
            "start": start,
            "end": end,
            "organizer": organizer,
            "location": location,
        }
        self._put(calendar, handle)
        return handle

    def edit(self, calendar: str, handle: str, **changes: Any) -> None:
        renamed = {"title": "summary"}
        self.made[handle].update({renamed.get(k, k): v for k, v in changes.items()})
        self._put(calendar, handle)

    def _put(self, calendar: str, handle: str) -> None:
        made = dict(self.made[handle])
        ics = vevent(handle, made.pop("summary"), made.pop("start"), made.pop("end"), **made)
        self.server.put_ics(f"{self.urls[calendar]}{handle}.ics", ics)

    def remove(self, calendar: str, handle: str) -> None:
        self.server.delete(f"{self.urls[calendar]}{handle}.ics")

    def read(self, calendar: str, handle: str) -> Seen:
        text = self.server.get_ics(f"{self.urls[calendar]}{handle}.ics")
        assert text is not None, f"{handle} is not on the calendar"
        return _seen_in_ics(text)

    def live(self, calendar: str) -> list[Seen]:
        from contract_world import objects_at

        return [
            _seen_in_ics(text)
            for text in objects_at(self.server, self.users[calendar], self.urls[calendar])
        ]


def _seen_in_ics(text: str) -> Seen:
    [event] = ICalendar.from_ical(text).walk("VEVENT")
    location, notes = event.get("LOCATION"), event.get("DESCRIPTION")
    return Seen(
        str(event.get("SUMMARY")),
        None if location is None else str(location),
        None if notes is None else str(notes),
    )


# ------------------------------------------------------------------------------- Google


@dataclass
class GoogleSide:
    """The Google Calendar emulator; a person edits through the real client library."""

    gcal: EmulatorHandle
    kind: str = "google"
    quiet_requests: int = 2  # a token and one events.list
    ids: dict[str, str] = field(default_factory=dict)  # our name -> Google calendar id

    def link(self, store: Store, box: SecretBox, name: str, **options: Any) -> None:
        email = f"{name}-{next(_names)}@harbour.example"
        calendar_id = self.gcal.add_user(email, time_zone=ZONE)
        with store.session() as session:
            calendar = add_google_calendar(
                session,
                box,
                name,
                calendar_id,
                service_account_info=self.gcal.service_account_info(),
                subject=email,
                api_base=self.gcal.base_url,
                **options,
            )
            calendar.settings = {**calendar.settings, "retry": FAST_RETRY}
        self.ids[name] = calendar_id

    def _events(self, calendar: str) -> Any:
        credentials = self.gcal.service_account_credentials(subject=self.ids[calendar])
        return self.gcal.build_service(credentials).events()

    def create(
        self,
        calendar: str,
        title: str,
        start: datetime,
        end: datetime,
        *,
        organizer: str | None = None,
        location: str | None = None,
    ) -> str:
        body: dict[str, Any] = {"summary": title, **_google_times(start, end)}
        if location is not None:
            body["location"] = location
        calendar_id = self.ids[calendar]
        # created by ``organizer`` (its creator), as an invitation from that person would be
        return self.gcal.seed_events(calendar_id, [body], principal=organizer or calendar_id)[0]

    def edit(self, calendar: str, handle: str, **changes: Any) -> None:
        body: dict[str, Any] = {}
        if "title" in changes:
            body["summary"] = changes["title"]
        if "location" in changes:
            body["location"] = changes["location"]
        if "start" in changes:
            body |= _google_times(changes["start"], changes["end"])
        self._events(calendar).patch(
            calendarId=self.ids[calendar], eventId=handle, body=body
        ).execute()

    def remove(self, calendar: str, handle: str) -> None:
        self._events(calendar).delete(calendarId=self.ids[calendar], eventId=handle).execute()

    def read(self, calendar: str, handle: str) -> Seen:
        return _seen_in_google(self.gcal.emulator.event(self.ids[calendar], handle))

    def live(self, calendar: str) -> list[Seen]:
        stored = self.gcal.emulator.calendar(self.ids[calendar])
        with self.gcal.emulator.store.lock:
            events = [dict(e.data) for e in stored.events.values()]
        return [_seen_in_google(e) for e in events if e.get("status") != "cancelled"]


def _google_times(start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "start": {"dateTime": start.isoformat(), "timeZone": ZONE},
        "end": {"dateTime": end.isoformat(), "timeZone": ZONE},
    }


def _seen_in_google(event: dict[str, Any]) -> Seen:
    return Seen(event.get("summary", ""), event.get("location"), event.get("description"))


# ------------------------------------------------------------------------------- Graph


@dataclass
class GraphSide:
    """The Graph emulator over https; a person changes events as Outlook would."""

    graph: GraphEmulatorHandle
    kind: str = "graph"
    quiet_requests: int = 2  # a token and one delta page
    ids: dict[str, str] = field(default_factory=dict)  # our name -> Graph calendar id

    def link(self, store: Store, box: SecretBox, name: str, **options: Any) -> None:
        cal = self.graph.add_calendar(GRAPH_MAILBOX, f"{name}-{next(_names)}")
        with store.session() as session:
            calendar = add_graph_calendar(
                session,
                box,
                name,
                GRAPH_MAILBOX,
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
        self.ids[name] = cal.id

    def create(
        self,
        calendar: str,
        title: str,
        start: datetime,
        end: datetime,
        *,
        organizer: str | None = None,
        location: str | None = None,
    ) -> str:
        body: dict[str, Any] = {"subject": title, **_graph_times(start, end)}
        if location is not None:
            body["location"] = {"displayName": location}
        made = self.graph.external_create(GRAPH_MAILBOX, body, self.ids[calendar])
        if organizer is not None:  # an invitation from that person
            user = self.graph.emulator.user(GRAPH_MAILBOX)
            item = user.calendars[self.ids[calendar]].items[made["id"]]
            item.organizer = {"name": organizer, "address": organizer}
        return str(made["id"])

    def edit(self, calendar: str, handle: str, **changes: Any) -> None:
        patch: dict[str, Any] = {}
        if "title" in changes:
            patch["subject"] = changes["title"]
        if "location" in changes:
            patch["location"] = {"displayName": changes["location"]}
        if "start" in changes:
            patch |= _graph_times(changes["start"], changes["end"])
        self.graph.external_update(GRAPH_MAILBOX, handle, patch)

    def remove(self, calendar: str, handle: str) -> None:
        self.graph.external_delete(GRAPH_MAILBOX, handle)

    def _get(self, path: str) -> Any:
        client = self.graph.graph_client(timeout=30)
        prefer = 'outlook.timezone="UTC", outlook.body-content-type="text"'
        response = client.get(path, params={"$top": "1000"}, headers={"Prefer": prefer})
        assert response.status_code == 200, response.text
        return response.json()

    def read(self, calendar: str, handle: str) -> Seen:
        return _seen_in_graph(self._get(f"/users/{GRAPH_MAILBOX}/events/{handle}"))

    def live(self, calendar: str) -> list[Seen]:
        found = self._get(f"/users/{GRAPH_MAILBOX}/calendars/{self.ids[calendar]}/events")
        return [_seen_in_graph(e) for e in found["value"] if not e.get("isCancelled")]


def _graph_times(start: datetime, end: datetime) -> dict[str, Any]:
    zone = iana_to_windows(ZONE)
    return {
        "start": {"dateTime": start.isoformat(), "timeZone": zone},
        "end": {"dateTime": end.isoformat(), "timeZone": zone},
    }


def _seen_in_graph(event: dict[str, Any]) -> Seen:
    location = (event.get("location") or {}).get("displayName") or None
    notes = (event.get("body") or {}).get("content") or None
    return Seen(event.get("subject", ""), location, notes)


# ------------------------------------------------------------------------------- Exchange (EWS)

EWS_ACCOUNT = ("svc-contract", "Contract!pw")


@dataclass
class EwsSide:
    """The EWS emulator; each linked calendar is the default calendar of a mailbox of its own
    (calbridge syncs a mailbox's default calendar), reached by a service account through
    impersonation; a person changes items as Outlook would."""

    server: EwsServer
    kind: str = "ews"
    quiet_requests: int = 1  # one SyncFolderItems
    mailboxes: dict[str, str] = field(default_factory=dict)  # our name -> SMTP address

    def link(self, store: Store, box: SecretBox, name: str, **options: Any) -> None:
        org = self.server.org
        smtp = f"contract{next(_names)}@harbour.example"
        org.add_mailbox(smtp, f"Contract {name}")
        account = org.account(EWS_ACCOUNT[0])
        if account is None:
            account = org.add_account(*EWS_ACCOUNT)
        account.impersonates.add(smtp)
        with store.session() as session:
            calendar = add_ews_calendar(
                session,
                box,
                name,
                smtp,
                username=f"HARBOUR\\{EWS_ACCOUNT[0]}",
                password=EWS_ACCOUNT[1],
                server=self.server.ews_url,
                auth="basic",
                impersonate=True,
                **options,
            )
            calendar.settings = {**calendar.settings, "retry": FAST_RETRY}
        self.mailboxes[name] = smtp

    def create(
        self,
        calendar: str,
        title: str,
        start: datetime,
        end: datetime,
        *,
        organizer: str | None = None,
        location: str | None = None,
    ) -> str:
        zone = ZoneInfo(ZONE)
        item = self.server.org.external_create(
            self.mailboxes[calendar],
            title,
            start.replace(tzinfo=zone),
            end.replace(tzinfo=zone),
            iana_to_windows(ZONE) or ZONE,
            organizer=Organizer(organizer, organizer) if organizer is not None else None,
            location=location or "",
        )
        return str(item.id)

    def edit(self, calendar: str, handle: str, **changes: Any) -> None:
        values: dict[str, Any] = {}
        if "title" in changes:
            values["subject"] = changes["title"]
        if "location" in changes:
            values["location"] = changes["location"]
        if "start" in changes:
            zone = ZoneInfo(ZONE)
            values["start"] = changes["start"].replace(tzinfo=zone).astimezone(UTC)
            values["end"] = changes["end"].replace(tzinfo=zone).astimezone(UTC)
        self.server.org.external_update(self.mailboxes[calendar], handle, **values)

    def remove(self, calendar: str, handle: str) -> None:
        self.server.org.external_delete(self.mailboxes[calendar], handle)

    def read(self, calendar: str, handle: str) -> Seen:
        box = self.server.org.mailbox(self.mailboxes[calendar])
        return _seen_in_ews(box.items[handle])

    def live(self, calendar: str) -> list[Seen]:
        box = self.server.org.mailbox(self.mailboxes[calendar])
        items = sorted(box.items.values(), key=lambda i: (i.start, i.id))
        return [_seen_in_ews(i) for i in items if not i.is_cancelled]


def _seen_in_ews(item: Any) -> Seen:
    return Seen(item.subject, item.location or None, item.body or None)


# ------------------------------------------------------------------------------- the world


@dataclass
class AnyWorld:
    """A booking store (the example directory) syncing with calendars on one ``side``."""

    side: Side
    store: Store
    box: SecretBox

    @property
    def kind(self) -> str:
        return self.side.kind

    def add_calendar(self, name: str, **options: Any) -> None:
        self.side.link(self.store, self.box, name, **options)

    def sync(self, name: str) -> SyncReport:
        with self.store.session() as session:
            calendar_id = session.scalars(select(Calendar.id).where(Calendar.name == name)).one()
        return sync_calendar(self.store, calendar_id, lambda c: open_provider(c, self.box), now=NOW)

    def token(self, name: str) -> str | None:
        with self.store.session() as session:
            calendar = session.scalars(select(Calendar).where(Calendar.name == name)).one()
            return calendar.sync_token

    def bookings(self) -> list[Event]:
        with self.store.session() as session:
            return list(session.scalars(select(Event).order_by(Event.id)))

    def booking(self, name: str) -> Event:
        with self.store.session() as session:
            return session.scalars(select(Event).where(Event.name == name)).one()

    def change(self, booking: str, **changes: Any) -> None:
        """The booking system changes a booking (as an admin's edit would)."""
        with self.store.session() as session:
            event = session.scalars(select(Event).where(Event.name == booking)).one()
            update_event(session, event, changes)
