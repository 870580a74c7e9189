"""Read models for the admin pages: a calendar's run state and the dashboard's counts.

The run state (``state``, ``last_success_at``, ``next_run_at``, ``paused``, the error's hint)
is kept on the calendar by the service (:mod:`calbridge.service`); a calendar synced only by
``calbridge sync`` has just ``last_sync_at`` / ``last_error``, and its state is derived from
those. Nothing here reads a secret: only the connection's public settings are shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from calbridge.ops.bookings import review_count
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
PUBLIC_SETTINGS = {
    "caldav": (("url", "URL"), ("username", "User name")),
    "google": (("calendar_id", "Google calendar"), ("subject", "Acting as"), ("auth", "Auth")),
    "graph": (("mailbox", "Mailbox"), ("tenant", "Tenant"), ("client_id", "App id")),
}
KIND_LABELS = {"caldav": "CalDAV", "google": "Google", "graph": "Microsoft 365", "ews": "EWS"}


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
        return KIND_LABELS.get(self.kind, self.kind)


def _derived_state(calendar: Calendar) -> str:
    if calendar.last_error:
        return "error"
    return "ok" if calendar.last_sync_at else "never"


def public_settings(calendar: Calendar) -> list[tuple[str, str]]:
    """The connection details safe to show (never the sealed secret)."""
    settings: dict[str, Any] = calendar.settings or {}
    return [
        (label, str(settings[key]))
        for key, label in PUBLIC_SETTINGS.get(calendar.kind, ())
        if settings.get(key) not in (None, "")
    ]


def push_expiry(calendar: Calendar) -> datetime | None:
    """When the calendar's Google watch channel or Graph subscription expires (naive UTC)."""
    settings: dict[str, Any] = calendar.settings or {}
    value = (settings.get("watch") or {}).get("expiration") or (
        settings.get("subscription") or {}
    ).get("expires")
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def calendar_status(calendar: Calendar) -> CalendarStatus:
    paused = bool(getattr(calendar, "paused", False))
    state = getattr(calendar, "state", None) or _derived_state(calendar)
    if state == "ok" and calendar.last_error and not getattr(calendar, "last_success_at", None):
        state = "error"  # synced by `calbridge sync` only: no service state yet
    if (
        state == "ok"
        and not calendar.last_sync_at
        and not getattr(calendar, "last_success_at", None)
    ):
        state = "never"
    if paused and state not in NEEDS_A_PERSON:
        state = "paused"
    hint = getattr(calendar, "error_hint", None)
    return CalendarStatus(
        id=calendar.id,
        name=calendar.name,
        kind=calendar.kind,
        state=state,
        paused=paused,
        last_success_at=getattr(calendar, "last_success_at", None) or calendar.last_sync_at,
        last_error=calendar.last_error,
        hint=hint,
        next_run_at=getattr(calendar, "next_run_at", None),
        push_expires_at=push_expiry(calendar),
        owner=calendar.owner_user_id,
        public=public_settings(calendar),
    )


def all_calendars(session: Session) -> list[CalendarStatus]:
    return [calendar_status(c) for c in session.scalars(select(Calendar).order_by(Calendar.name))]


@dataclass(frozen=True)
class Counts:
    review: int
    rejections: int
    conflicts: int


def counts(session: Session) -> Counts:
    return Counts(
        review=review_count(session),
        rejections=session.scalar(select(func.count()).select_from(Rejection)) or 0,
        conflicts=session.scalar(select(func.count()).select_from(ConflictRecord)) or 0,
    )
