"""Jobs: "sync this calendar" and "push this booking", whatever carries them.

The contract every front end (REST API, admin UI, push endpoints, scheduler, CLI) uses is
:class:`Jobs`:

- ``sync_calendar(calendar_id, trigger=..., full=False)`` enqueues a sync of one calendar.
  Triggers: ``poll``, ``push``, ``manual``, ``booking_change``, ``resync``. One sync per
  calendar runs at a time and at most one more waits: enqueueing a calendar that already has a
  waiting job changes nothing (a burst of 50 notifications becomes one re-run); ``full=True``
  on a waiting job upgrades it to a full resync.
- ``push_booking(event_id)`` enqueues a sync of every calendar linked to or carrying that
  booking (its links, and the calendars owned by its event manager), so a booking written in
  the booking system reaches the calendars in seconds rather than at the next poll.

Two transports implement it: :class:`calbridge.service.queue_local.LocalJobs` (an in-process
queue for the one-process SQLite service) and :class:`calbridge.service.queue_pg.PgJobs`
(procrastinate on PostgreSQL, ``lock`` and ``queueing_lock`` = calendar id). Both run the same
job body, :func:`calbridge.service.runs.run_sync_job`: only the transport differs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from calbridge.errors import CalbridgeError
from calbridge.service.settings import ServiceSettings
from calbridge.store.db import Store
from calbridge.store.models import Calendar, Event, Link
from calbridge.sync.engine import ProviderFactory

if TYPE_CHECKING:
    from calbridge.service.metrics import ServiceMetrics

TRIGGERS = ("poll", "push", "manual", "booking_change", "resync")


class UnknownTrigger(CalbridgeError):
    """A job was enqueued with a trigger the service does not know (a programming error)."""


def check_trigger(trigger: str) -> str:
    if trigger not in TRIGGERS:
        raise UnknownTrigger(f"unknown sync trigger '{trigger}': use one of {', '.join(TRIGGERS)}")
    return trigger


@runtime_checkable
class Jobs(Protocol):
    """The job queue front shared by the API, the UI, the push endpoints and the scheduler."""

    def sync_calendar(self, calendar_id: int, *, trigger: str, full: bool = False) -> None:
        """Enqueue a sync of one calendar (one running + at most one waiting per calendar)."""
        ...

    def push_booking(self, event_id: int, *, trigger: str = "booking_change") -> None:
        """Enqueue a push of one booking to every calendar linked to or carrying it."""
        ...


def now_utc() -> datetime:
    """Naive UTC with microseconds (run history orders runs finer than the second)."""
    return datetime.now(UTC).replace(tzinfo=None)


MAILBOX_LIMIT = 4


class MailboxGate:
    """Per-mailbox politeness: at most ``MAILBOX_LIMIT`` (4, Graph's limit) syncs of calendars
    in one Microsoft mailbox (Graph, or Exchange Server over EWS) run at once — a sync has one
    request in flight at a time, so that is at most 4 concurrent requests to the mailbox. Within
    a process a semaphore per mailbox; on PostgreSQL, across every worker, 4 advisory-lock slots
    per mailbox."""

    def __init__(self, limit: int = MAILBOX_LIMIT) -> None:
        self.limit = limit
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    @contextmanager
    def hold(self, store: Store, mailbox: str, timeout: float) -> Iterator[bool]:
        """Yield True once a slot is held (released on exit), False if none freed in time."""
        key = mailbox.strip().lower()
        with self._lock:
            semaphore = self._semaphores.setdefault(key, threading.BoundedSemaphore(self.limit))
        if not semaphore.acquire(timeout=timeout):
            yield False
            return
        try:
            if store.engine.dialect.name != "postgresql":
                yield True
                return
            with self._pg_slot(store, key, timeout) as held:
                yield held
        finally:
            semaphore.release()

    @contextmanager
    def _pg_slot(self, store: Store, key: str, timeout: float) -> Iterator[bool]:
        deadline = time.monotonic() + timeout
        with store.engine.connect() as conn:
            while True:
                for slot in range(self.limit):
                    got = conn.execute(
                        text("SELECT pg_try_advisory_lock(hashtext(:key), :slot)"),
                        {"key": f"calbridge-mailbox:{key}", "slot": slot},
                    ).scalar()
                    conn.commit()
                    if got:
                        try:
                            yield True
                        finally:
                            conn.execute(
                                text("SELECT pg_advisory_unlock(hashtext(:key), :slot)"),
                                {"key": f"calbridge-mailbox:{key}", "slot": slot},
                            )
                            conn.commit()
                        return
                if time.monotonic() > deadline:
                    yield False
                    return
                time.sleep(0.2)  # a slot frees when another sync of this mailbox ends


@dataclass
class JobContext:
    """What a job body needs: the store, how to open a calendar's provider, the settings,
    the clock (injected so tests and the scheduler agree on "now") and the metrics."""

    store: Store
    provider_factory: ProviderFactory
    settings: ServiceSettings = field(default_factory=ServiceSettings)
    clock: Callable[[], datetime] = now_utc
    metrics: ServiceMetrics | None = None
    mailboxes: MailboxGate = field(default_factory=MailboxGate)


def calendars_for_booking(session: Session, event_id: int) -> list[int]:
    """Ids of the calendars a booking is on or should be on (links + owner's calendars)."""
    ids = set(session.scalars(select(Link.calendar_id).where(Link.event_id == event_id)))
    event = session.get(Event, event_id)
    if event is not None and event.event_manager_id:
        ids.update(
            session.scalars(
                select(Calendar.id).where(Calendar.owner_user_id == event.event_manager_id)
            )
        )
    return sorted(ids)
