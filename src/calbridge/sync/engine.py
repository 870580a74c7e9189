"""The sync engine: for each calendar, pull then push, each in small committed steps.

``sync_calendar`` never raises for a calendar's own trouble (server down, credentials revoked):
it records the error on the calendar and in the report, so the other calendars still sync.
A calendar whose cancellations the mass-cancellation guard held back (:mod:`.guard`) does not
sync until they are confirmed; its report's ``failure`` is a ``NeedsConfirmation``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from calbridge.domain.remote import CalendarProvider, Window
from calbridge.errors import CalbridgeError, TokenExpired
from calbridge.store.db import Store
from calbridge.store.events import utcnow
from calbridge.store.models import Calendar
from calbridge.sync.guard import check_not_held
from calbridge.sync.pull import mark_generation, pull_pages
from calbridge.sync.push import Pusher
from calbridge.sync.report import SyncReport

log = logging.getLogger(__name__)

PAST_DAYS = 30
ProviderFactory = Callable[[Calendar], CalendarProvider]
Progress = Callable[[int], None]


def window_for(calendar: Calendar, now: datetime) -> Window:
    """Series are expanded from a month back to the calendar's horizon ahead."""
    return Window(now - timedelta(days=PAST_DAYS), now + timedelta(days=calendar.horizon_days))


def sync_calendar(
    store: Store,
    calendar_id: int,
    provider_factory: ProviderFactory,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> SyncReport:
    started = time.perf_counter()
    tick: Progress = progress or (lambda _n: None)
    with store.session() as session:
        calendar = session.get(Calendar, calendar_id)
        assert calendar is not None
        report = SyncReport(calendar.name)
        window = window_for(calendar, now or utcnow())
        direction = calendar.direction
        provider: CalendarProvider | None = None
        try:
            check_not_held(session, calendar)  # the guard: a person must confirm first
            provider = provider_factory(calendar)
        except CalbridgeError as exc:
            report.ok, report.error, report.failure = False, str(exc), exc
    if provider is not None:
        try:
            if direction in ("both", "pull"):
                _pull(store, calendar_id, provider, window, report, tick)
            if direction in ("both", "push"):
                Pusher(store, calendar_id, provider, window, report).run(tick)
        except CalbridgeError as exc:
            report.ok, report.error, report.failure = False, str(exc), exc
            log.warning("sync failed", extra={"calendar": report.calendar, "error": str(exc)})
        report.requests = provider.requests
        close = getattr(provider, "close", None)
        if callable(close):
            close()
    report.seconds = round(time.perf_counter() - started, 3)
    with store.session() as session:
        calendar = session.get(Calendar, calendar_id)
        if calendar is not None:
            calendar.last_sync_at = utcnow()
            calendar.last_error = report.error
            calendar.last_report = report.as_dict()
    return report


def _pull(
    store: Store,
    calendar_id: int,
    provider: CalendarProvider,
    window: Window,
    report: SyncReport,
    tick: Progress,
) -> None:
    with store.session() as session:
        calendar = session.get(Calendar, calendar_id)
        assert calendar is not None
        token = calendar.sync_token
        gen = mark_generation(session, calendar) if token is None else None
    try:
        pull_pages(
            store, calendar_id, provider.list_changes(token, window), window, report, gen, tick
        )
    except TokenExpired:
        log.info("sync token expired: full resync", extra={"calendar": report.calendar})
        report.full_resync = True
        with store.session() as session:
            calendar = session.get(Calendar, calendar_id)
            assert calendar is not None
            calendar.sync_token = None
            gen = mark_generation(session, calendar)
        pull_pages(
            store, calendar_id, provider.list_changes(None, window), window, report, gen, tick
        )
