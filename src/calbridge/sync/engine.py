"""The sync engine: for each calendar, pull then push, each in small committed steps.

``sync_calendar`` never raises for a calendar's own trouble — server down, credentials revoked,
a reply no reader expected, another process syncing it (``locks.py``), or a plain bug: it
records the error on the calendar and in the report (one line naming the calendar; an
unexpected error's traceback goes to the log, ``logs.py``), so the other calendars still sync;
the report's ``failure`` keeps the exception (the service tells transient failures from
refused credentials by it). A calendar whose cancellations the mass-cancellation guard held
back (:mod:`.guard`) does not sync until they are confirmed; its ``failure`` is a
``NeedsConfirmation``. A ``BaseException`` raised by ``progress`` (the service's shutdown)
goes through, after the provider is closed and the lock released.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy import text

from calbridge.domain.remote import CalendarProvider, ChangePage, Window, sync_window
from calbridge.errors import CalbridgeError, NotFound, TokenExpired
from calbridge.logs import log_location
from calbridge.store.db import Store
from calbridge.store.events import utcnow
from calbridge.store.models import Calendar
from calbridge.sync.guard import check_not_held
from calbridge.sync.locks import calendar_lock
from calbridge.sync.pull import mark_generation, pull_pages
from calbridge.sync.push import Pusher, pending_links
from calbridge.sync.quick import REVISION_QUERY, Handover, quiet_mark
from calbridge.sync.report import SyncReport

log = logging.getLogger(__name__)

ProviderFactory = Callable[[Calendar], CalendarProvider]
Progress = Callable[[int], None]


def window_for(calendar: Calendar, now: datetime) -> Window:
    """Series are expanded from a month back to the calendar's horizon ahead."""
    return sync_window(now, calendar.horizon_days)


def sync_calendar(
    store: Store,
    calendar_id: int,
    provider_factory: ProviderFactory,
    now: datetime | None = None,
    progress: Progress | None = None,
    handover: Handover | None = None,
) -> SyncReport:
    """Sync one calendar under its lock (``locks.py``). Never raises for the calendar's own
    trouble: any failure — expected or not — is the report's ``error`` (and the calendar's
    ``last_error``); an unexpected one is logged with its traceback. ``handover``: the change
    listing ``calbridge sync`` started before the engine loaded (:mod:`.quick`), taken when
    it started from the calendar's stored token.

    A sync that ends ok with no write left to retry stores the calendar's quiet mark
    (:func:`calbridge.sync.quick.quiet_mark`, SQLite only; see :func:`_quiet`)."""
    started = time.perf_counter()
    with store.session() as session:
        calendar = session.get(Calendar, calendar_id)
        if calendar is None:
            raise NotFound(f"no calendar has id {calendar_id}")
        report = SyncReport(calendar.name)
    mark: str | None = None
    try:
        with calendar_lock(store, calendar_id):
            _locked_sync(store, calendar_id, provider_factory, now, progress, report, handover)
            mark = _quiet(store, calendar_id, report)
    except CalbridgeError as exc:
        _fail(report, str(exc), exc)
    except Exception as exc:  # one calendar's bug must not stop the others
        log.exception("unexpected error", extra={"calendar": report.calendar})
        _fail(report, unexpected(exc, f"calendar '{report.calendar}'"), exc)
    finally:
        if handover is not None:
            handover.close()
    report.seconds = round(time.perf_counter() - started, 3)
    try:
        with store.session() as session:
            calendar = session.get(Calendar, calendar_id)
            if calendar is not None:
                calendar.last_sync_at = utcnow()
                calendar.last_error = report.error
                calendar.last_report = report.as_dict()
                calendar.quiet_mark = mark
    except Exception:  # the report still reaches the caller
        log.exception("could not record the sync report", extra={"calendar": report.calendar})
    return report


def _quiet(store: Store, calendar_id: int, report: SyncReport) -> str | None:
    """The calendar's quiet mark after this sync, under its lock: the store revision at which
    a push scan (:func:`calbridge.sync.push.pending_links`) finds nothing to write, read in
    that scan's transaction — None when the sync did not end ok, left a write to retry, the
    scan finds work or changes anything, or the store is not SQLite."""
    if store.engine.dialect.name != "sqlite" or not report.ok or report.failed:
        return None
    with store.session() as session:
        before = session.execute(text(REVISION_QUERY)).scalar()
        calendar = session.get(Calendar, calendar_id)
        if before is None or calendar is None:
            return None
        if calendar.direction in ("both", "push") and pending_links(session, calendar_id):
            return None
        session.flush()
        if session.execute(text(REVISION_QUERY)).scalar() != before:
            return None
    return quiet_mark(str(before))


def unexpected(exc: BaseException, what: str) -> str:
    """The one line a person sees for a failure nobody planned for (the log has the rest)."""
    detail = " ".join(str(exc).split())[:200]
    return (
        f"{what}: the sync stopped on an unexpected error ({type(exc).__name__}"
        f"{': ' + detail if detail else ''}); the traceback is in {log_location()} — "
        "please report it; the other calendars were not affected"
    )


def _fail(report: SyncReport, message: str, failure: BaseException) -> None:
    report.ok, report.error, report.failure = False, message, failure
    log.warning("sync failed", extra={"calendar": report.calendar, "error": message})


def _locked_sync(
    store: Store,
    calendar_id: int,
    provider_factory: ProviderFactory,
    now: datetime | None,
    progress: Progress | None,
    report: SyncReport,
    handover: Handover | None = None,
) -> None:
    tick: Progress = progress or (lambda _n: None)
    with store.session() as session:
        calendar = session.get(Calendar, calendar_id)
        assert calendar is not None
        window = window_for(calendar, now or utcnow())
        direction = calendar.direction
        check_not_held(session, calendar)  # the guard: a person must confirm first
        provider = provider_factory(calendar)
    try:
        if direction in ("both", "pull"):
            _pull(store, calendar_id, provider, window, report, tick, handover)
        if direction in ("both", "push"):
            Pusher(store, calendar_id, provider, window, report).run(tick)
    finally:
        report.requests = provider.requests
        close = getattr(provider, "close", None)
        if callable(close):
            close()


def _pull(
    store: Store,
    calendar_id: int,
    provider: CalendarProvider,
    window: Window,
    report: SyncReport,
    tick: Progress,
    handover: Handover | None = None,
) -> None:
    with store.session() as session:
        calendar = session.get(Calendar, calendar_id)
        assert calendar is not None
        token = calendar.sync_token
        gen = mark_generation(session, calendar) if token is None else None
    started = handover.pages_for(token) if handover is not None else None
    try:
        pages: Iterable[ChangePage] = (
            started if started is not None else provider.list_changes(token, window)
        )
        pull_pages(store, calendar_id, pages, window, report, gen, tick)
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
