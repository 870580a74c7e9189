"""The mass-cancellation guard: a sync that would cancel a large share of a calendar's bookings
stops and asks a person first.

A calendar that suddenly reports most of its events gone is far more often a mistake (the
wrong calendar linked, a mailbox emptied by a migration, an account switched) than a real wave
of cancellations. So the pull never cancels as it goes: every cancellation a sync decides on
(an event deleted on the calendar, an occurrence removed from a series, a booking the full
resync's listing no longer holds) is collected in :class:`PendingCancellations` and settled
once, in the transaction that stores the calendar's new sync token:

- at most ``MIN_COUNT`` bookings, or at most ``SHARE`` of the bookings the calendar carries:
  they are cancelled there and then (same transaction, so a crash loses nothing: the token was
  not stored either, and the next run re-reads the same deletions);
- more than both: nothing is cancelled; each would-be cancellation is kept as a
  :class:`~calbridge.store.models.HeldCancellation` row (the list a person reviews), the
  calendar's state becomes ``needs_confirmation`` and it does not sync again until
  :func:`confirm_cancellations` (``calbridge calendars confirm NAME``, the API, the admin UI)
  applies exactly that list.

A full resync cancels only in that final step, after its listing is complete, by
construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from calbridge.domain.remote import EventFields
from calbridge.errors import CalbridgeError
from calbridge.store.events import utcnow
from calbridge.store.models import Calendar, Event, HeldCancellation, Link
from calbridge.sync.appointments import apply_link_fields, link_fields
from calbridge.sync.history import record_change
from calbridge.sync.report import SyncReport

MIN_COUNT = 10
SHARE = 0.20
NEEDS_CONFIRMATION = "needs_confirmation"


class NeedsConfirmation(CalbridgeError):
    """A sync would cancel too many of a calendar's bookings; a person must confirm first."""

    exit_code = 4


def confirm_hint(name: str) -> str:
    return (
        f"review the list (`calbridge calendars confirm {name} --list`) and run "
        f"`calbridge calendars confirm {name}` to cancel them"
    )


def held_message(name: str, count: int, total: int) -> str:
    return (
        f"calendar '{name}': this sync would cancel {count} of its {total} bookings; "
        f"nothing was cancelled: {confirm_hint(name)}"
    )


@dataclass
class PendingCancellations:
    """The cancellations one sync decided on, by link id (a link is cancelled once)."""

    reasons: dict[int, str] = field(default_factory=dict)

    def add(self, link: Link, why: str) -> None:
        self.reasons.setdefault(link.id, why)

    def __len__(self) -> int:
        return len(self.reasons)


def carried_bookings(session: Session, calendar_id: int) -> int:
    """How many live bookings the calendar carries (its share's denominator)."""
    count = session.scalar(
        select(func.count(func.distinct(Link.event_id)))
        .join(Event, Event.id == Link.event_id)
        .where(
            Link.calendar_id == calendar_id,
            Link.state != "gone",
            Event.status != "cancelled",
        )
    )
    return int(count or 0)


def trips(count: int, total: int) -> bool:
    """The rule: more than ``MIN_COUNT`` and more than ``SHARE`` of the calendar's bookings."""
    return count > MIN_COUNT and count > SHARE * total


def settle(
    session: Session, calendar: Calendar, pending: PendingCancellations, report: SyncReport
) -> None:
    """Apply the sync's cancellations, or hold all of them and raise :class:`NeedsConfirmation`
    (the caller's transaction must still commit: the held list and the state are in it).
    Without cancellations there is nothing to count (a no-change sync reads no booking)."""
    if not pending.reasons:
        return
    links = _live_links(session, calendar.id, pending)
    events = {link.event_id for link, _ in links}
    total = carried_bookings(session, calendar.id)
    if not trips(len(events), total):
        for link, why in links:
            report.cancelled += cancel_link(session, link, why)
        pending.reasons.clear()
        return
    now = utcnow()
    session.execute(delete(HeldCancellation).where(HeldCancellation.calendar_id == calendar.id))
    for link, why in links:
        session.add(
            HeldCancellation(
                calendar_id=calendar.id,
                link_id=link.id,
                event_id=link.event_id,
                reason=why[:500],
                held_at=now,
            )
        )
    message = held_message(calendar.name, len(events), total)
    calendar.state = NEEDS_CONFIRMATION
    calendar.error_hint = confirm_hint(calendar.name)
    report.notes.append(message)
    raise NeedsConfirmation(message)


def _live_links(
    session: Session, calendar_id: int, pending: PendingCancellations
) -> list[tuple[Link, str]]:
    out: list[tuple[Link, str]] = []
    for link_id, why in sorted(pending.reasons.items()):
        link = session.get(Link, link_id)
        if link is not None and link.calendar_id == calendar_id and link.state != "gone":
            out.append((link, why))
    return out


def cancel_link(session: Session, link: Link, why: str = "the calendar event was deleted") -> int:
    """The calendar no longer has this link's object: the link is gone and its booking
    cancelled (kept, status ``cancelled``; recorded in its history with ``why``). Returns 1
    when a booking was cancelled."""
    link.state = "gone"
    event = session.get(Event, link.event_id)
    calendar = session.get(Calendar, link.calendar_id)
    if event is None or calendar is None or event.status == "cancelled":
        return 0
    fields = link_fields(session, calendar, event, link)
    cancelled = EventFields(fields.name, fields.times, fields.location, fields.notes, "cancelled")
    apply_link_fields(session, calendar, event, link, cancelled)
    link.synced_seq = event.change_seq
    if event.status != "cancelled":
        return 0  # one booked location of several: cancelled, the booking goes on
    record_change(
        session, calendar.name, event.id, "cancelled", {"event": link.remote_id, "why": why}
    )
    return 1


def check_not_held(session: Session, calendar: Calendar) -> None:
    """Refuse to sync a calendar whose cancellations wait for a person."""
    held = session.scalar(
        select(func.count())
        .select_from(HeldCancellation)
        .where(HeldCancellation.calendar_id == calendar.id)
    )
    if held:
        raise NeedsConfirmation(
            f"calendar '{calendar.name}' waits for confirmation of {held} cancellations; "
            f"{confirm_hint(calendar.name)}"
        )


@dataclass(frozen=True)
class HeldItem:
    """One held cancellation as shown to a person."""

    event_id: int
    name: str
    start: str
    reason: str
    held_at: datetime


def held_cancellations(session: Session, calendar_id: int) -> list[HeldItem]:
    rows = session.execute(
        select(HeldCancellation, Event)
        .join(Event, Event.id == HeldCancellation.event_id)
        .where(HeldCancellation.calendar_id == calendar_id)
        .order_by(Event.start_utc, Event.id)
    ).all()
    seen: set[int] = set()
    items: list[HeldItem] = []
    for held, event in rows:
        if event.id in seen:
            continue
        seen.add(event.id)
        items.append(HeldItem(event.id, event.name, event.start, held.reason, held.held_at))
    return items


def confirm_cancellations(session: Session, calendar: Calendar) -> int:
    """Apply the held list (exactly what was shown), clear it and let the calendar sync
    again. Returns the number of bookings cancelled (0 when nothing was held)."""
    held = session.scalars(
        select(HeldCancellation).where(HeldCancellation.calendar_id == calendar.id)
    ).all()
    cancelled = 0
    for row in held:
        link = session.get(Link, row.link_id)
        if link is not None and link.state != "gone":
            cancelled += cancel_link(session, link, f"confirmed: {row.reason}")
        session.delete(row)
    if calendar.state == NEEDS_CONFIRMATION:
        calendar.state = "ok"
        calendar.error_hint = None
    return cancelled
