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

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sqlalchemy import select
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


@dataclass
class JobContext:
    """What a job body needs: the store, how to open a calendar's provider, the settings,
    the clock (injected so tests and the scheduler agree on "now") and the metrics."""

    store: Store
    provider_factory: ProviderFactory
    settings: ServiceSettings = field(default_factory=ServiceSettings)
    clock: Callable[[], datetime] = now_utc
    metrics: ServiceMetrics | None = None


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
