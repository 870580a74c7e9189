"""Running the sync job, and its history (``sync_runs``).

:func:`run_sync_job` is the one job body every transport calls (the in-process queue on
SQLite, procrastinate on PostgreSQL): it decides whether the calendar should run at all
(removed, paused, credentials refused and not changed since), records a ``sync_runs`` row,
runs the engine, and turns the outcome into the calendar's run state:

- ``ok``: ``last_success_at`` set, error cleared;
- transient failure (5xx, 429, timeouts, unreachable server): state ``error`` and a retry
  after an exponential backoff with jitter, never sooner than the server's Retry-After, up to
  ``retry_attempts`` times (then the next poll tries again);
- credentials refused or revoked: state ``auth_expired`` and no retry until the calendar's
  sealed credentials change (re-authorised, updated): no retry storm;
- anything else a person must fix (4xx about the calendar, settings): state ``error``;
- the mass-cancellation guard held the run's cancellations (:mod:`calbridge.sync.guard`):
  state ``needs_confirmation``, and the calendar is skipped until they are confirmed.

Every run ends with one structured log line (``calbridge.service.runs``). A run interrupted
by shutdown stops at the engine's next committed step and is recorded as ``interrupted``; a
run whose worker was killed is closed as ``interrupted`` by the next run of that calendar.
History older than ``runs_keep_days`` (30) is deleted by :func:`prune_runs`.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from calbridge.errors import (
    CalendarBusy,
    NotFound,
    ProviderAuthError,
    ProviderError,
    RateLimited,
)
from calbridge.providers.registry import KINDS, kind_of
from calbridge.service.jobs import JobContext, check_trigger
from calbridge.service.metrics import count_sync
from calbridge.store.models import Calendar, SyncRun
from calbridge.sync.engine import sync_calendar
from calbridge.sync.guard import NEEDS_CONFIRMATION, NeedsConfirmation, confirm_hint
from calbridge.sync.report import SyncReport

log = logging.getLogger(__name__)

MAILBOX_WAIT = 30.0  # seconds a Graph sync waits for a free mailbox slot before retrying
STATES = ("ok", "syncing", "error", "auth_expired", "paused", "needs_confirmation")


class Interrupted(BaseException):
    """Raised at the engine's next committed step when the worker is shutting down (a
    BaseException, so the engine's catch-all for one calendar's bugs lets it through)."""


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended: ``result`` as recorded; ``retry_in`` seconds when it should run again
    (a transient failure); ``run_id`` the ``sync_runs`` row (None when skipped)."""

    result: str
    retry_in: float | None = None
    run_id: int | None = None


def secret_digest(secret: str | None) -> str:
    return hashlib.sha256((secret or "").encode()).hexdigest()


def run_sync_job(
    ctx: JobContext,
    calendar_id: int,
    trigger: str,
    full: bool = False,
    *,
    attempt: int = 0,
    worker: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> JobOutcome:
    """Sync one calendar now (the caller holds the calendar's lock)."""
    check_trigger(trigger)
    started = ctx.clock()
    with ctx.store.session() as session:
        skip = _skip_reason(session, calendar_id)
        if skip is not None:
            log.info("sync skipped", extra={"calendar_id": calendar_id, "reason": skip})
            return JobOutcome("skipped")
        calendar = _calendar(session, calendar_id)
        _close_stale_runs(session, calendar_id, started)
        run = SyncRun(
            calendar_id=calendar_id,
            calendar_name=calendar.name,
            trigger=trigger,
            full=full,
            attempt=attempt,
            started_at=started,
            result="running",
            requests=0,
            worker=worker,
        )
        full = full or calendar.full_requested
        run.full = full
        session.add(run)
        calendar.state = "syncing"
        calendar.full_requested = False
        if full:
            calendar.sync_token = None
        session.flush()
        run_id, name, kind = run.id, calendar.name, calendar.kind
        # Microsoft's throttling budgets are per mailbox (Graph, and EWS with impersonation):
        # the registry names the setting holding it
        key = kind_of(kind).mailbox_key if kind in KINDS else None
        mailbox = str((calendar.settings or {}).get(key) or "") if key else ""

    def progress(_n: int) -> None:
        if should_stop():
            raise Interrupted

    clock_started = time.perf_counter()
    try:
        with ctx.mailboxes.hold(ctx.store, mailbox, MAILBOX_WAIT) if mailbox else _free() as held:
            if held:
                report = sync_calendar(
                    ctx.store, calendar_id, ctx.provider_factory, ctx.clock(), progress
                )
            else:
                report = SyncReport(name, ok=False, error=f"mailbox {mailbox} is busy")
                report.failure = RateLimited(
                    f"calendar '{name}': 4 syncs of mailbox {mailbox} already run", 5.0
                )
    except Interrupted:
        report = SyncReport(name, ok=False, error="interrupted by shutdown")
        result, retry_in = "interrupted", None
    except Exception as exc:  # a bug must not kill the worker; recorded and logged
        log.exception("sync crashed", extra={"calendar": name})
        report = SyncReport(name, ok=False, error=f"internal error: {exc.__class__.__name__}")
        result, retry_in = "error", None
    else:
        result, retry_in = _classify(ctx, report, attempt)
    seconds = time.perf_counter() - clock_started
    outcome = _finish(ctx, run_id, calendar_id, report, result, retry_in, attempt, kind, seconds)
    log.info(
        "sync run %s: %s",
        name,
        outcome.result,
        extra={
            "event": "sync_run",
            "calendar": name,
            "calendar_id": calendar_id,
            "trigger": trigger,
            "full": full,
            "attempt": attempt,
            "result": outcome.result,
            "seconds": round(seconds, 3),
            "requests": report.requests,
            "pulled": report.pulled,
            "pushed": report.pushed_created + report.pushed_updated + report.pushed_deleted,
            "error": report.error,
            "retry_in": outcome.retry_in,
        },
    )
    return outcome


@contextmanager
def _free() -> Iterator[bool]:
    yield True


def request_full(session: Session, calendar_id: int) -> None:
    """Remember that the next run of this calendar must be a full resync."""
    session.execute(update(Calendar).where(Calendar.id == calendar_id).values(full_requested=True))


def _calendar(session: Session, calendar_id: int) -> Calendar:
    calendar = session.get(Calendar, calendar_id)
    if calendar is None:
        raise NotFound(f"calendar #{calendar_id} does not exist (see `calbridge calendars list`)")
    return calendar


def _skip_reason(session: Session, calendar_id: int) -> str | None:
    calendar = session.get(Calendar, calendar_id)
    if calendar is None:
        return "removed"
    if calendar.paused:
        return "paused"
    if calendar.state == NEEDS_CONFIRMATION:
        return "waits for `calbridge calendars confirm` (mass-cancellation guard)"
    if calendar.state == "auth_expired" and calendar.auth_failed_secret == secret_digest(
        calendar.secret
    ):
        return "credentials refused and not changed since"
    return None


def _close_stale_runs(session: Session, calendar_id: int, now: datetime) -> None:
    """A run still 'running' when the next one starts lost its worker (killed)."""
    session.execute(
        update(SyncRun)
        .where(SyncRun.calendar_id == calendar_id, SyncRun.result == "running")
        .values(result="interrupted", finished_at=now, error="worker stopped during the run")
    )


def _classify(ctx: JobContext, report: SyncReport, attempt: int) -> tuple[str, float | None]:
    if report.ok:
        return "ok", None
    failure = report.failure
    if isinstance(failure, NeedsConfirmation):
        return NEEDS_CONFIRMATION, None
    if isinstance(failure, ProviderAuthError):
        return "auth_expired", None
    if isinstance(failure, CalendarBusy) and attempt < ctx.settings.retry_attempts:
        return "retry", retry_delay(ctx, attempt, None)  # another process syncs it right now
    if is_transient(failure) and attempt < ctx.settings.retry_attempts:
        return "retry", retry_delay(ctx, attempt, getattr(failure, "retry_after", None))
    return "error", None


def is_transient(failure: BaseException | None) -> bool:
    """5xx, 429, timeouts and unreachable servers: worth trying again shortly."""
    if not isinstance(failure, ProviderError) or isinstance(failure, ProviderAuthError):
        return False
    status = failure.status
    return status is None or status >= 500 or status in (408, 429)


def retry_delay(ctx: JobContext, attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with jitter (half fixed, half random), at least Retry-After."""
    growth: float = ctx.settings.retry_base_seconds * 2.0**attempt
    ceiling = min(ctx.settings.retry_max_seconds, growth)
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    return max(delay, float(retry_after or 0.0))


def _finish(
    ctx: JobContext,
    run_id: int,
    calendar_id: int,
    report: SyncReport,
    result: str,
    retry_in: float | None,
    attempt: int,
    kind: str,
    seconds: float,
) -> JobOutcome:
    """Record the run's end, the calendar's new state and the run in the totals of /metrics
    (one transaction)."""
    now = ctx.clock()
    with ctx.store.session() as session:
        count_sync(session, kind, result, seconds)
        run = session.get(SyncRun, run_id)
        if run is not None:
            run.finished_at = now
            run.result = result
            run.counts = _counts(report)
            run.requests = report.requests
            run.error = report.error
        calendar = session.get(Calendar, calendar_id)
        if calendar is not None:
            _apply_state(ctx, calendar, report, result, retry_in, now)
    return JobOutcome(result, retry_in, run_id)


def _apply_state(
    ctx: JobContext,
    calendar: Calendar,
    report: SyncReport,
    result: str,
    retry_in: float | None,
    now: datetime,
) -> None:
    if calendar.state == "needs_confirmation" and result == "ok":
        pass  # the mass-cancellation guard put it there during this run: a person decides
    elif result == "ok":
        calendar.state = "paused" if calendar.paused else "ok"
        calendar.last_success_at = now
        calendar.last_error = calendar.error_hint = calendar.auth_failed_secret = None
    elif result == NEEDS_CONFIRMATION:  # the mass-cancellation guard held cancellations
        calendar.state = NEEDS_CONFIRMATION
        calendar.last_error = report.error
        calendar.error_hint = confirm_hint(calendar.name)
    elif result == "interrupted":
        calendar.state = "paused" if calendar.paused else "ok"
    elif result == "auth_expired":
        calendar.state = "auth_expired"
        calendar.last_error = report.error
        calendar.auth_failed_secret = secret_digest(calendar.secret)
        calendar.error_hint = (
            f"update the credentials of calendar '{calendar.name}' "
            f"(`calbridge calendars update {calendar.name}` with new credentials, or "
            f"`calbridge calendars auth {calendar.name}` for Google OAuth); syncing resumes "
            "by itself once they change"
        )
    else:
        calendar.state = "error"
        calendar.last_error = report.error
        calendar.error_hint = (
            f"retrying in {retry_in:.0f} s" if retry_in is not None else _hint(calendar)
        )
    calendar.next_run_at = next_poll(ctx, calendar, report, now, retry_in, result)


def _hint(calendar: Calendar) -> str:
    return (
        f"check the server and the settings of calendar '{calendar.name}' "
        f"(`calbridge calendars show {calendar.name}`); it is tried again at the next poll"
    )


def next_poll(
    ctx: JobContext,
    calendar: Calendar,
    report: SyncReport,
    now: datetime,
    retry_in: float | None,
    result: str,
) -> datetime:
    """When the scheduler should poll this calendar next."""
    if result == "interrupted":
        return now
    if retry_in is not None:
        return now + timedelta(seconds=retry_in)
    interval = float(calendar.poll_seconds or ctx.settings.poll_interval(calendar.kind))
    changed = report.pulled + report.pushed_created + report.pushed_updated + report.pushed_deleted
    if ctx.settings.idle_backoff and result == "ok":
        calendar.idle_polls = 0 if changed else min(calendar.idle_polls + 1, 2)
        interval *= 2**calendar.idle_polls
    return now + timedelta(seconds=interval)


def _counts(report: SyncReport) -> dict[str, Any]:
    values = report.as_dict()
    for key in ("calendar", "ok", "error", "requests", "notes"):
        values.pop(key, None)
    return values


def list_runs(
    session: Session,
    calendar: str | int | None = None,
    since: datetime | None = None,
    cursor: int | None = None,
    limit: int = 50,
) -> list[SyncRun]:
    """Newest first; ``cursor`` is the id of the last row of the previous page."""
    query = select(SyncRun).order_by(SyncRun.id.desc()).limit(limit)
    if calendar is not None:
        if isinstance(calendar, int):
            query = query.where(SyncRun.calendar_id == calendar)
        else:
            cal = session.scalar(select(Calendar).where(Calendar.name == calendar))
            if cal is None:
                raise NotFound(f"no calendar named '{calendar}' (see `calbridge calendars list`)")
            query = query.where(SyncRun.calendar_id == cal.id)
    if since is not None:
        query = query.where(SyncRun.started_at >= since)
    if cursor is not None:
        query = query.where(SyncRun.id < cursor)
    return list(session.scalars(query))


def run_as_dict(run: SyncRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "calendar_id": run.calendar_id,
        "calendar": run.calendar_name,
        "trigger": run.trigger,
        "full": run.full,
        "attempt": run.attempt,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "result": run.result,
        "counts": run.counts or {},
        "requests": run.requests,
        "error": run.error,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


def prune_runs(session: Session, now: datetime, keep_days: int = 30) -> int:
    """Delete runs that started more than ``keep_days`` ago; returns how many went."""
    result = session.execute(
        delete(SyncRun).where(SyncRun.started_at < now - timedelta(days=keep_days))
    )
    return int(getattr(result, "rowcount", 0) or 0)
