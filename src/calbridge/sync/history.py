"""The history a sync leaves on the bookings it changes (table ``history``, read by
:mod:`calbridge.ops.history` and shown on a booking's page and in the API).

The actor is the calendar (``calendar:NAME``), so "who moved this booking?" has an answer
when the answer is "somebody in Outlook": ``created`` (the event arrived from the calendar:
which calendar, its remote id, the booker's address), ``updated`` (each field the calendar
changed, old and new value), ``cancelled`` (its event was deleted on the calendar, or a held
cancellation was confirmed). Rows go into the sync's own transaction: a change and its
record stand or fall together. Arrivals are recorded with one bulk INSERT per page.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from calbridge.store.db import insert_rows
from calbridge.store.events import utcnow
from calbridge.store.models import HistoryEntry


def calendar_actor(name: str) -> str:
    """Who a calendar-side change is recorded as."""
    return f"calendar:{name}"[:200]


def _row(
    calendar: str, event_id: int, action: str, details: dict[str, Any], at: datetime
) -> dict[str, Any]:
    return {
        "at": at,
        "actor": calendar_actor(calendar),
        "subject": "booking",
        "subject_id": str(event_id),
        "action": action,
        "details": {"calendar": calendar, **details},
    }


def record_arrivals(
    session: Session, calendar: str, arrivals: Iterable[tuple[int, str, str | None]]
) -> None:
    """``created`` for each new booking: (booking id, remote id, booker's address)."""
    now = utcnow()
    rows = [
        _row(calendar, event_id, "created", {"event": remote_id, "booker": booker}, now)
        for event_id, remote_id, booker in arrivals
    ]
    insert_rows(session, cast(Table, HistoryEntry.__table__), rows)


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """Each snapshot field whose value differs, as the history shows it everywhere (the
    ``changes`` of an update made through :mod:`calbridge.ops`): ``{field: [old, new]}``,
    the times as one "start – end" text."""
    return {
        key: [_shown(key, before.get(key)), _shown(key, after.get(key))]
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


def _shown(key: str, value: Any) -> Any:
    if key != "when" or not isinstance(value, dict):
        return value
    text = f"{value.get('start')} – {value.get('end')}"
    zone = value.get("timezone")
    return f"{text} (all day)" if value.get("all_day") else f"{text} {zone}" if zone else text


def record_change(
    session: Session, calendar: str, event_id: int, action: str, details: dict[str, Any]
) -> None:
    """One ``updated`` or ``cancelled`` row for a booking the calendar changed."""
    session.execute(
        insert(cast(Table, HistoryEntry.__table__)),
        [_row(calendar, event_id, action, details, utcnow())],
    )
