"""Booking-side changes made outside the service (the CLI, a script) reach the calendars in
seconds: the service notices them through the bookings' change counter.

Why this mechanism: every booking write, whoever makes it, raises ``events.change_seq`` from
one counter that only grows (:mod:`calbridge.store.events`), and the CLI may run on another
machine than the service, with SQLite or PostgreSQL alike. So the service's scheduler asks,
every tick (a second), "which bookings have a ``change_seq`` above the highest I have seen?" —
one indexed query (``ix_events_change_seq``) that finds nothing most of the time — and
enqueues ``jobs.push_booking(id)`` for those a calendar still has to receive: a calendar that
carries (or should carry: its owner is the event manager) the booking and has not written
this version (``links.synced_seq`` below the booking's ``change_seq``, or no link yet). A
booking just pulled from a calendar is already in sync with that calendar: nothing is
enqueued for it there. No trigger or NOTIFY is needed, and nothing is lost while the service
is down: the regular polls push what changed meanwhile.

The REST API and the admin UI call ``jobs.push_booking`` directly after their commit; the
watcher seeing the same change again merges into the job already waiting.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from sqlalchemy import func, select

from calbridge.service.jobs import Jobs
from calbridge.store.db import Store
from calbridge.store.models import Calendar, Event, Link

log = logging.getLogger(__name__)

BATCH = 500


class BookingWatcher:
    """Call :meth:`run_once` from the scheduler's tick; it returns the bookings enqueued."""

    def __init__(self, store: Store, jobs: Jobs, *, batch: int = BATCH) -> None:
        self.store = store
        self.jobs = jobs
        self.batch = batch
        self.seen: int | None = None

    def start(self) -> None:
        """Start from the counter as it is now: earlier changes go out with the polls."""
        with self.store.session() as session:
            self.seen = int(session.scalar(select(func.max(Event.change_seq))) or 0)

    def run_once(self) -> list[int]:
        if self.seen is None:
            self.start()
            return []
        with self.store.session() as session:
            changed = session.execute(
                select(Event.id, Event.change_seq, Event.event_manager_id)
                .where(Event.change_seq > self.seen)
                .order_by(Event.change_seq)
                .limit(self.batch)
            ).all()
            if not changed:
                return []
            ids = [row[0] for row in changed]
            synced: dict[int, dict[int, int]] = defaultdict(dict)
            for event_id, calendar_id, seq in session.execute(
                select(Link.event_id, Link.calendar_id, Link.synced_seq).where(
                    Link.event_id.in_(ids), Link.state != "gone"
                )
            ):
                synced[event_id][calendar_id] = seq
            owned: dict[str, set[int]] = defaultdict(set)
            for calendar_id, owner in session.execute(
                select(Calendar.id, Calendar.owner_user_id).where(
                    Calendar.owner_user_id.is_not(None), Calendar.direction != "pull"
                )
            ):
                owned[str(owner)].add(calendar_id)
        due = [
            event_id
            for event_id, seq, manager in changed
            if _needs_push(seq, synced.get(event_id, {}), owned.get(str(manager), set()))
        ]
        self.seen = int(changed[-1][1])
        for event_id in due:
            self.jobs.push_booking(event_id, trigger="booking_change")
        if due:
            log.info("booking changes noticed", extra={"bookings": len(due)})
        return due


def _needs_push(seq: int, synced: dict[int, int], owner_calendars: set[int]) -> bool:
    """A calendar that carries the booking has not written this version, or a calendar owned
    by its event manager does not carry it yet."""
    if any(done < seq for done in synced.values()):
        return True
    return bool(owner_calendars - synced.keys())
