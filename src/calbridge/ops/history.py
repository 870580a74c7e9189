"""Who changed what, and when: the history every admin write leaves behind.

One row per change made through :mod:`calbridge.ops` (from the CLI, the REST API or the admin
UI): the ``actor`` (an API token's name, an admin's email, or ``"cli"``), the time, the
``subject`` (``booking``, ``directory``, ``settings``, ``token``…) with its id, the ``action``
(``created``, ``updated``, ``cancelled``, ``reassigned``, ``review_accepted``, ``imported``…)
and ``details`` (for an update, each changed field's old and new value). Rows are written in
the same transaction as the change they describe, so a change and its record stand or fall
together; they are never edited.

Changes a sync makes to a booking are recorded too, by the engine, with the actor
``calendar:NAME`` (:func:`calbridge.sync.history.calendar_actor`): created from a calendar,
updated from it (each field's old and new value), cancelled because its event was deleted.

Nothing secret is ever put into ``details`` (callers pass field values of bookings and
settings, never credentials).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from calbridge.store.models import HistoryEntry

SUBJECTS = ("booking", "directory", "settings", "token", "calendar")

__all__ = ["SUBJECTS", "Change", "HistoryEntry", "history_of", "now_utc", "recent", "record"]


@dataclass(frozen=True)
class Change:
    """A recorded change as the front ends show it (``at`` is naive UTC)."""

    id: int
    at: datetime
    actor: str
    subject: str
    subject_id: str | None
    action: str
    details: dict[str, Any]


def now_utc() -> datetime:
    """Naive UTC to the second, like every timestamp in the store."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def record(
    session: Session,
    *,
    actor: str,
    subject: str,
    subject_id: str | int | None,
    action: str,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> HistoryEntry:
    """Add one history row to the current transaction."""
    if not actor or not actor.strip():
        raise ValueError("a change needs an actor (token name, admin email or 'cli')")
    entry = HistoryEntry(
        at=at or now_utc(),
        actor=actor.strip()[:200],
        subject=subject,
        subject_id=None if subject_id is None else str(subject_id),
        action=action,
        details=details or None,
    )
    session.add(entry)
    return entry


def _change(row: HistoryEntry) -> Change:
    return Change(
        row.id, row.at, row.actor, row.subject, row.subject_id, row.action, row.details or {}
    )


def history_of(session: Session, subject: str, subject_id: str | int) -> list[Change]:
    """Every change to one object, oldest first."""
    rows = session.scalars(
        select(HistoryEntry)
        .where(HistoryEntry.subject == subject, HistoryEntry.subject_id == str(subject_id))
        .order_by(HistoryEntry.id)
    )
    return [_change(row) for row in rows]


def recent(
    session: Session, *, subject: str | None = None, before_id: int | None = None, limit: int = 50
) -> list[Change]:
    """The newest changes first (optionally of one kind of subject), ``limit`` at a time;
    pass the last id seen as ``before_id`` for the next page."""
    query = select(HistoryEntry).order_by(HistoryEntry.id.desc()).limit(limit)
    if subject is not None:
        query = query.where(HistoryEntry.subject == subject)
    if before_id is not None:
        query = query.where(HistoryEntry.id < before_id)
    return [_change(row) for row in session.scalars(query)]
