"""The demo's Google, Microsoft 365 and Exchange Server calendars, on the project's local API
emulators.

The real client libraries (google-api-python-client, MSAL, exchangelib) talk to the emulators
over HTTP, exactly as they would talk to Google, Microsoft and an on-premises Exchange; only the
base URLs differ.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

from calbridge.store.db import Store
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_ews_calendar, add_google_calendar, add_graph_calendar

GOOGLE_CALENDAR = "events@harbour.example"
GRAPH_MAILBOX = "bookings@harbour.example"  # Mia's second address in the example directory
EWS_MAILBOX = "tom@harbour.example"  # Tom's mailbox on the venue's own Exchange server


def _at(today: date, day: int, hour: int) -> datetime:
    start = today + timedelta(days=7 + day)
    return datetime(start.year, start.month, start.day, hour)


@contextmanager
def google_calendar(store: Store, box: SecretBox, today: date) -> Iterator[Any]:
    """A Google calendar whose events were created by a contact and by a staff member."""
    from calbridge_emulators.google.testing import running_emulator

    def timed(day: int, hour: int, hours: int) -> dict[str, Any]:
        start = _at(today, day, hour)
        return {
            "start": {"dateTime": start.isoformat(), "timeZone": "Europe/London"},
            "end": {
                "dateTime": (start + timedelta(hours=hours)).isoformat(),
                "timeZone": "Europe/London",
            },
        }

    with running_emulator() as google:
        calendar_id = google.add_user(GOOGLE_CALENDAR, time_zone="Europe/London")
        google.seed_events(
            calendar_id,
            [{"summary": "Acme product launch", "location": "Harbour Room", **timed(4, 18, 3)}],
            principal="ann.lee@acme.example",
        )
        google.seed_events(
            calendar_id,
            [{"summary": "Staff training", **timed(5, 9, 2)}],
            principal="tom@harbour.example",
        )
        with store.session() as session:
            add_google_calendar(
                session,
                box,
                "google-events",
                calendar_id,
                service_account_info=google.service_account_info(),
                subject=calendar_id,
                api_base=google.base_url,
            )
        yield google


@contextmanager
def graph_calendar(store: Store, box: SecretBox, today: date) -> Iterator[Any]:
    """A Microsoft 365 mailbox calendar with a booking made in Outlook by Raj."""
    from calbridge_emulators.graph.testing import running_emulator

    with running_emulator(tls=True) as graph:
        graph.add_user(graph.tenant_id, GRAPH_MAILBOX, "Harbour Bookings")
        calendar = graph.add_calendar(GRAPH_MAILBOX, "Bookings")
        start = _at(today, 6, 12)
        made = graph.external_create(
            GRAPH_MAILBOX,
            {
                "subject": "Patel family lunch",
                "start": {"dateTime": start.isoformat(), "timeZone": "GMT Standard Time"},
                "end": {
                    "dateTime": (start + timedelta(hours=2)).isoformat(),
                    "timeZone": "GMT Standard Time",
                },
                "location": {"displayName": "Sea Lounge"},
            },
            calendar.id,
        )
        stored = graph.emulator.user(GRAPH_MAILBOX).calendars[calendar.id].items[made["id"]]
        stored.organizer = {"name": "Raj Patel", "address": "raj.patel@mail.example"}
        with store.session() as session:
            add_graph_calendar(
                session,
                box,
                "m365-bookings",
                GRAPH_MAILBOX,
                calendar_id=calendar.id,
                **graph.link_options(),
            )
        yield graph


@contextmanager
def ews_calendar(store: Store, box: SecretBox, today: date) -> Iterator[Any]:
    """Tom's calendar on the venue's Exchange Server (EWS, NTLM, a service account
    impersonating his mailbox): a dinner Ann booked, and a meeting Mia organized (stored with
    her legacy Exchange DN, which calbridge resolves to her address)."""
    from zoneinfo import ZoneInfo

    from calbridge_emulators.ews.server import running_emulator
    from calbridge_emulators.ews.store import Organizer

    london = ZoneInfo("Europe/London")
    with running_emulator() as server:
        org = server.org
        org.add_mailbox(EWS_MAILBOX, "Tom Hardy")
        mia = org.add_mailbox("mia@harbour.example", "Mia Stone")
        org.add_account("svc-calbridge", "demo-password", impersonates=(EWS_MAILBOX,))
        dinner = _at(today, 8, 19).replace(tzinfo=london)
        org.external_create(
            EWS_MAILBOX,
            "Acme board dinner",
            dinner,
            dinner + timedelta(hours=3),
            "GMT Standard Time",
            organizer=Organizer("Ann Lee", "ann@acme-events.example"),
            location="Harbour Room",
        )
        walk = _at(today, 9, 10).replace(tzinfo=london)
        org.external_create(
            EWS_MAILBOX,
            "Venue walk-through",
            walk,
            walk + timedelta(hours=1),
            "GMT Standard Time",
            organizer=Organizer("Mia Stone", mia.legacy_dn, "EX"),
        )
        with store.session() as session:
            add_ews_calendar(
                session,
                box,
                "exchange-bookings",
                EWS_MAILBOX,
                username="HARBOUR\\svc-calbridge",
                password="demo-password",
                server=server.ews_url,
                auth="ntlm",
                impersonate=True,
            )
        yield server
