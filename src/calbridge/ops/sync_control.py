"""Controlling a calendar's sync: sync now, full resync, pause, resume (and confirm).

The CLI, the REST API and the admin UI call these same functions with a session, the jobs
front (:class:`calbridge.service.jobs.Jobs`) where work is enqueued, the calendar's name and
the ``actor`` (API token name, admin email, or ``"cli"``) recorded in the history.

- :func:`sync_now` enqueues an incremental sync (trigger ``manual``); a paused calendar is
  refused with the command that resumes it.
- :func:`full_resync` enqueues a full resync (trigger ``resync``): the calendar is listed
  again from scratch; nothing is duplicated and nothing is cancelled before the listing is
  complete.
- :func:`pause` stops polling and refuses manual syncs (a sync already running finishes);
  :func:`resume` puts the calendar back in the poll rotation at once. Resuming an
  ``auth_expired`` calendar keeps that state: only new credentials clear it.
- :func:`confirm` lets a calendar held by the mass-cancellation guard go on; the guard's
  logic lives in :mod:`calbridge.sync.guard` (service-push) and is called from here.

Enqueue after the caller's commit where it matters: the job reads the calendar afresh.
"""

from __future__ import annotations

import importlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from calbridge.errors import CalbridgeError, NotFound
from calbridge.service.jobs import Jobs, now_utc
from calbridge.store.models import Calendar


class CalendarPaused(CalbridgeError):
    """A manual sync of a paused calendar."""


class NothingToConfirm(CalbridgeError):
    """``confirm`` on a calendar the mass-cancellation guard did not hold."""


def find(session: Session, name: str) -> Calendar:
    calendar = session.scalars(select(Calendar).where(Calendar.name == name)).first()
    if calendar is None:
        raise NotFound(f"no calendar is called '{name}' (see `calbridge calendars list`)")
    return calendar


def _record(session: Session, actor: str, calendar: Calendar, action: str) -> None:
    """A history row when the history module is there (``calbridge.ops.history``)."""
    try:
        history: Any = importlib.import_module("calbridge.ops.history")
    except ModuleNotFoundError:
        return
    history.record(
        session,
        actor=actor,
        subject="calendar",
        subject_id=calendar.id,
        action=action,
        details={"name": calendar.name},
    )


def _refuse_paused(calendar: Calendar) -> None:
    if calendar.paused:
        raise CalendarPaused(
            f"calendar '{calendar.name}' is paused; resume it first "
            f"(`calbridge calendars resume {calendar.name}`)"
        )


def sync_now(session: Session, jobs: Jobs, name: str, *, actor: str) -> Calendar:
    """Enqueue an incremental sync of calendar ``name`` now."""
    calendar = find(session, name)
    _refuse_paused(calendar)
    _record(session, actor, calendar, "sync_requested")
    jobs.sync_calendar(calendar.id, trigger="manual")
    return calendar


def full_resync(session: Session, jobs: Jobs, name: str, *, actor: str) -> Calendar:
    """Enqueue a full resync of calendar ``name``."""
    calendar = find(session, name)
    _refuse_paused(calendar)
    _record(session, actor, calendar, "resync_requested")
    jobs.sync_calendar(calendar.id, trigger="resync", full=True)
    return calendar


def pause(session: Session, name: str, *, actor: str) -> Calendar:
    """Stop polling calendar ``name`` (idempotent)."""
    calendar = find(session, name)
    if not calendar.paused:
        calendar.paused = True
        if calendar.state in ("ok", "error"):
            calendar.state = "paused"
        _record(session, actor, calendar, "paused")
    return calendar


def resume(session: Session, name: str, *, actor: str) -> Calendar:
    """Put calendar ``name`` back in the poll rotation, due at once (idempotent)."""
    calendar = find(session, name)
    if calendar.paused:
        calendar.paused = False
        if calendar.state == "paused":
            calendar.state = "ok"
        calendar.next_run_at = now_utc()
        _record(session, actor, calendar, "resumed")
    return calendar


def confirm(session: Session, jobs: Jobs | None, name: str, *, actor: str) -> Calendar:
    """Let a calendar held by the mass-cancellation guard go on: cancel exactly the bookings
    it listed (:func:`calbridge.sync.guard.confirm_cancellations`), then sync it. A calendar
    with nothing waiting is refused with a clear message."""
    from calbridge.sync.guard import NEEDS_CONFIRMATION, confirm_cancellations, held_cancellations

    calendar = find(session, name)
    held = held_cancellations(session, calendar.id)
    if not held and calendar.state != NEEDS_CONFIRMATION:
        raise NothingToConfirm(
            f"calendar '{name}' has no cancellations waiting for confirmation "
            f"(state {calendar.state}); nothing to do"
        )
    confirm_cancellations(session, calendar)
    calendar.next_run_at = now_utc()
    _record(session, actor, calendar, "confirmed")
    if jobs is not None and not calendar.paused:
        jobs.sync_calendar(calendar.id, trigger="manual")
    return calendar
