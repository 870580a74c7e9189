"""Read models for the admin pages: a calendar's run state and the dashboard's counts.

The run state (``state``, ``last_success_at``, ``next_run_at``, ``paused``, ``error_hint``)
is kept on the calendar by the service (:mod:`calbridge.service.runs`); a calendar synced only
by ``calbridge sync`` has just ``last_sync_at`` / ``last_error``, which are shown then.
Nothing here reads a secret: only the connection's public settings are shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from calbridge.ops.bookings import review_count
from calbridge.providers.registry import KINDS, kind_of, known_kind
from calbridge.store.models import Calendar, ConflictRecord, Rejection

NEEDS_A_PERSON = ("error", "auth_expired", "needs_confirmation")
STATE_LABELS = {
    "ok": "OK",
    "syncing": "Syncing…",
    "error": "Error",
    "auth_expired": "Sign-in expired",
    "paused": "Paused",
    "needs_confirmation": "Needs confirmation",
    "never": "Not synced yet",
}


def kind_labels() -> dict[str, str]:
    """Every registered kind's name as a person reads it (the registry's ``label``)."""
    return {name: kind_of(name).label for name in KINDS}


@dataclass(frozen=True)
class CalendarStatus:
    id: int
    name: str
    kind: str
    state: str
    paused: bool
    last_success_at: datetime | None
    last_error: str | None
    hint: str | None
    next_run_at: datetime | None
    push_expires_at: datetime | None
    owner: str | None
    public: list[tuple[str, str]]

    @property
    def needs_a_person(self) -> bool:
        return self.state in NEEDS_A_PERSON

    @property
    def state_label(self) -> str:
        return STATE_LABELS.get(self.state, self.state)

    @property
    def kind_label(self) -> str:
        entry = known_kind(self.kind)
        return entry.label if entry is not None else self.kind


def public_settings(calendar: Any) -> list[tuple[str, str]]:
    """The connection details safe to show (never the sealed secret)."""
    settings: dict[str, Any] = calendar.settings or {}
    entry = known_kind(calendar.kind)
    return [
        (label, str(settings[key]))
        for key, label in (entry.shown if entry is not None else ())
        if settings.get(key) not in (None, "")
    ]


def push_expiry(calendar: Any) -> datetime | None:
    """When the calendar's push channel expires (naive UTC), if its kind's channel does."""
    entry = known_kind(calendar.kind)
    channel = entry.channel if entry is not None else None
    value = channel.expiry(calendar.settings) if channel is not None else None
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def calendar_status(calendar: Any) -> CalendarStatus:
    """From a :class:`Calendar` or a row of :data:`SHOWN_COLUMNS`."""
    state = calendar.state or "ok"
    if state == "ok" and calendar.last_error and not calendar.last_success_at:
        state = "error"  # synced by `calbridge sync` only: the service has not run it yet
    elif state == "ok" and not (calendar.last_sync_at or calendar.last_success_at):
        state = "never"
    if calendar.paused and state not in NEEDS_A_PERSON:
        state = "paused"
    return CalendarStatus(
        id=calendar.id,
        name=calendar.name,
        kind=calendar.kind,
        state=state,
        paused=bool(calendar.paused),
        # ``last_sync_at`` is set by failed runs too: it is a success only without an error
        last_success_at=calendar.last_success_at
        or (None if calendar.last_error else calendar.last_sync_at),
        last_error=calendar.last_error,
        hint=calendar.error_hint,
        next_run_at=calendar.next_run_at,
        push_expires_at=push_expiry(calendar),
        owner=calendar.owner_user_id,
        public=public_settings(calendar),
    )


#: what the pages read of a calendar (never ``secret``, nor the bulky sync token / report)
SHOWN_COLUMNS = (
    Calendar.id,
    Calendar.name,
    Calendar.kind,
    Calendar.settings,
    Calendar.owner_user_id,
    Calendar.state,
    Calendar.paused,
    Calendar.last_sync_at,
    Calendar.last_success_at,
    Calendar.last_error,
    Calendar.error_hint,
    Calendar.next_run_at,
)


@dataclass(frozen=True)
class CalendarPage:
    rows: list[CalendarStatus]  # this page, needing a person first, then syncing, then by name
    matching: int  # calendars whose name matches the filter
    total: int
    attention: list[CalendarStatus]  # every calendar that needs a person (for the roll-up)


def calendar_page(session: Session, text: str, page: int, size: int) -> CalendarPage:
    """One page of the dashboard's calendars, ordered and filtered in SQL so that a venue
    with a thousand calendars costs one page of rows, not a thousand."""
    urgency = case(
        (Calendar.state.in_(NEEDS_A_PERSON), 0), (Calendar.state == "syncing", 1), else_=2
    )
    query = select(*SHOWN_COLUMNS)
    counted = select(func.count()).select_from(Calendar)
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(Calendar.name.ilike(pattern, escape="\\"))
        counted = counted.where(Calendar.name.ilike(pattern, escape="\\"))
    rows = session.execute(
        query.order_by(urgency, Calendar.name).offset((page - 1) * size).limit(size)
    )
    attention = session.execute(
        select(*SHOWN_COLUMNS).where(Calendar.state.in_(NEEDS_A_PERSON)).order_by(Calendar.name)
    )
    return CalendarPage(
        rows=[calendar_status(row) for row in rows],
        matching=session.scalar(counted) or 0,
        total=session.scalar(select(func.count()).select_from(Calendar)) or 0,
        attention=[calendar_status(row) for row in attention],
    )


def all_calendars(session: Session) -> list[CalendarStatus]:
    rows = session.execute(select(*SHOWN_COLUMNS).order_by(Calendar.name))
    return [calendar_status(row) for row in rows]


@dataclass(frozen=True)
class Counts:
    review: int  # bookings the review page lists one by one
    rejections: int
    conflicts: int
    unmatched: int = 0  # bookings waiting only for their location text to be matched to a room


def counts(session: Session) -> Counts:
    """The dashboard's counts, as the review page shows them: the bookings it lists, and apart
    the bookings whose only question is a location text no room matches (grouped by text)."""
    listed = review_count(session, rooms=False)
    return Counts(
        review=listed,
        unmatched=review_count(session) - listed,
        rejections=session.scalar(select(func.count()).select_from(Rejection)) or 0,
        conflicts=session.scalar(select(func.count()).select_from(ConflictRecord)) or 0,
    )
