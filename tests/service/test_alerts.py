"""Email alerts: a calendar entering error, auth_expired or needs_confirmation emails its owner
and the admins once per state change, and once more when it recovers.

A real SMTP server (aiosmtpd) receives the mail; calendar states come from real sync runs
against the Google emulator (injected outages, calendar-side deletions) through the service's
job body.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from push_service import Inbox

from calbridge.service.alerts import Alerter, AlertSettings
from calbridge.service.jobs import JobContext
from calbridge.service.runs import run_sync_job
from calbridge.store.db import Store
from calbridge.store.models import Calendar
from calbridge.store.secrets import SecretBox
from calbridge.sync.calendars import add_google_calendar
from calbridge.sync.providers import open_provider
from calbridge.web.models import AdminUser
from calbridge_emulators.google.testing import EmulatorHandle, running_emulator
from worlds import example_store

FAST_RETRY = {"attempts": 1, "base": 0.001, "cap": 0.01}


@pytest.fixture(scope="module")
def gcal() -> Iterator[EmulatorHandle]:
    with running_emulator() as handle:
        yield handle


def _calendar(store: Store, box: SecretBox, gcal: EmulatorHandle, events: int) -> tuple[int, Any]:
    gcal.reset()
    google_id = gcal.add_user("desk@harbour.example", time_zone="UTC")
    start = datetime.now().replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
    bodies = [
        {
            "summary": f"Booking <{n}>",
            "start": {"dateTime": (start + timedelta(hours=n)).isoformat(), "timeZone": "UTC"},
            "end": {
                "dateTime": (start + timedelta(hours=n, minutes=30)).isoformat(),
                "timeZone": "UTC",
            },
        }
        for n in range(events)
    ]
    ids = gcal.seed_events(google_id, bodies, principal="tom@harbour.example")
    with store.session() as session:
        calendar = add_google_calendar(
            session,
            box,
            "front",
            google_id,
            service_account_info=gcal.service_account_info(),
            subject=google_id,
            api_base=gcal.base_url,
            owner="u-mia",
        )
        calendar.settings = {**calendar.settings, "retry": FAST_RETRY}
        session.add(
            AdminUser(
                email="admin@harbour.example",
                password_hash="x",
                role="admin",
                created_at=datetime.now(),
            )
        )
        session.flush()
        calendar_id = calendar.id
    events_api = gcal.build_service(gcal.service_account_credentials(subject=google_id)).events()

    def delete(count: int) -> None:
        for event_id in ids[:count]:
            events_api.delete(calendarId=google_id, eventId=event_id).execute()

    return calendar_id, delete


def _state(store: Store, calendar_id: int) -> str:
    with store.session() as session:
        calendar = session.get(Calendar, calendar_id)
        assert calendar is not None
        return calendar.state


def test_calendar_in_error_emails_owner_and_admins_once_and_once_on_recovery(
    smtp: tuple[Inbox, int], gcal: EmulatorHandle, tmp_path: Path
) -> None:
    inbox, port = smtp
    settings = AlertSettings(
        smtp_host="127.0.0.1", smtp_port=port, alert_emails="ops@harbour.example"
    )
    with example_store(tmp_path) as store:
        box = SecretBox(SecretBox.generate_key())
        calendar_id, _ = _calendar(store, box, gcal, 2)
        ctx = JobContext(store, lambda c: open_provider(c, box))
        alerter = Alerter(store, settings)
        assert run_sync_job(ctx, calendar_id, "poll").result == "ok"
        assert alerter.run_once() == []

        gcal.emulator.inject_fault(503, count=None)
        run_sync_job(ctx, calendar_id, "poll")
        assert _state(store, calendar_id) == "error"
        alerter.run_once()
        run_sync_job(ctx, calendar_id, "poll")  # error → syncing → error: the same trouble
        alerter.run_once()

        assert len(inbox.messages) == 1
        to, message = inbox.messages[0]
        assert sorted(to) == ["admin@harbour.example", "mia@harbour.example", "ops@harbour.example"]
        assert message["Subject"] == "calbridge: calendar 'front' cannot sync"
        assert "State: error" in message.get_payload()

        gcal.emulator.clear_faults()
        assert run_sync_job(ctx, calendar_id, "poll").result == "ok"
        alerter.run_once()
        alerter.run_once()

        assert len(inbox.messages) == 2
        assert inbox.messages[1][1]["Subject"] == "calbridge: calendar 'front' is syncing again"


def test_held_cancellations_email_lists_what_would_be_cancelled(
    smtp: tuple[Inbox, int], gcal: EmulatorHandle, tmp_path: Path
) -> None:
    inbox, port = smtp
    settings = AlertSettings(smtp_host="127.0.0.1", smtp_port=port)
    with example_store(tmp_path) as store:
        box = SecretBox(SecretBox.generate_key())
        calendar_id, delete = _calendar(store, box, gcal, 30)
        ctx = JobContext(store, lambda c: open_provider(c, box))
        assert run_sync_job(ctx, calendar_id, "poll").result == "ok"
        delete(12)

        assert run_sync_job(ctx, calendar_id, "push").result == "needs_confirmation"
        sent = Alerter(store, settings).run_once()

        assert [alert.state for alert in sent] == ["needs_confirmation"]
        _, message = inbox.messages[0]
        body = message.get_payload()
        assert "waits for you to confirm cancellations" in message["Subject"]
        assert "The sync would cancel these 12 bookings:" in body
        assert "Booking <0>" in body  # plain text: titles as they are
        assert "calbridge calendars confirm front" in body


def test_no_smtp_host_means_no_alerts_and_nothing_marked(tmp_path: Path) -> None:
    with example_store(tmp_path) as store:
        assert Alerter(store, AlertSettings(smtp_host=None)).run_once() == []
