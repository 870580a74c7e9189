"""Bookings as the sync engine sees them: fields in and out, and assignment of new arrivals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from calbridge.domain.assignment import Assignment, AssignmentSettings, TraceStep, assign
from calbridge.domain.email import normalize_email
from calbridge.domain.remote import EventFields
from calbridge.domain.rooms import RoomChoice, RoomDecision
from calbridge.errors import BadEmail
from calbridge.store.booked import follow_event
from calbridge.store.db import insert_rows
from calbridge.store.events import (
    event_times,
    next_change_seq,
    set_times,
    times_columns,
    touch,
    utcnow,
)
from calbridge.store.lookup import StoreLookup
from calbridge.store.models import BookedLocation, Calendar, Event, UserEmail


def booking_fields(event: Event) -> EventFields:
    status: Any = event.status
    return EventFields(event.name, event_times(event), event.location, event.notes, status)


def apply_fields(session: Session, event: Event, fields: EventFields) -> bool:
    """Write ``fields`` into the booking; bump its change counter when anything changed."""
    if booking_fields(event).snapshot() == fields.snapshot():
        return False
    before, was = event_times(event), event.location
    event.name = fields.name
    set_times(event, fields.times)
    event.location, event.notes, event.status = fields.location, fields.notes, fields.status
    moved = (fields.location or None) != (was or None)
    follow_event(session, event, before, fields.times, (moved, fields.location), strict=False)
    touch(session, event)
    return True


def booking_row(session: Session, fields: EventFields, assigned: dict[str, Any]) -> dict[str, Any]:
    """The ``events`` row of a booking for an event first seen on a calendar, with the columns
    ``assigned`` (:func:`~calbridge.store.events.assignment_columns`) of its booker: the pull
    inserts a page's rows in one statement (no ORM object per booking)."""
    now = utcnow()
    return {
        "name": fields.name,
        "location": fields.location,
        "notes": fields.notes,
        "status": fields.status,
        **times_columns(fields.times),
        **assigned,
        "created_at": now,
        "updated_at": now,
        "change_seq": next_change_seq(session),
    }


def owner_address(session: Session, user_id: str) -> str | None:
    rows = session.execute(
        select(UserEmail.address, UserEmail.is_primary)
        .where(UserEmail.user_id == user_id)
        .order_by(UserEmail.is_primary.desc(), UserEmail.position)
    ).first()
    return None if rows is None else str(rows[0])


def assign_arrival(
    session: Session,
    calendar: Calendar,
    organizer: str | None,
    settings: AssignmentSettings,
    source: str,
) -> Assignment:
    """SPEC §2 for an event first seen on ``calendar``; raises BadEmail for a bad organizer.

    The first trace entry (step 0) records which address was used and why.
    """
    if organizer is not None and organizer.strip():
        email = normalize_email(organizer)
        why = f"{source} organizer {organizer.strip()[:200]}"
    elif calendar.owner_user_id is not None:
        address = owner_address(session, calendar.owner_user_id)
        if address is None:
            raise BadEmail(
                f"the event has no organizer and the calendar's owner "
                f"'{calendar.owner_user_id}' has no email account"
            )
        email = address
        why = f"no organizer: the address of calendar '{calendar.name}''s owner"
    else:
        result = _no_booker(settings, calendar.name)
        return result
    result = assign(email, StoreLookup(session), settings)
    first = TraceStep(0, "Booker address", f"{email} ({why})")
    return replace(result, trace=(first, *result.trace))


def _no_booker(settings: AssignmentSettings, calendar: str) -> Assignment:
    reason = f"no organizer, and calendar '{calendar}' has no owner"
    manager = settings.default_event_manager or settings.virtual_assistant
    return Assignment(
        email="",
        client=settings.default_account,
        client_contact=None,
        booked_by=settings.virtual_assistant,
        event_manager=manager,
        ambiguous=False,
        trace=(
            TraceStep(0, "Booker address", reason),
            TraceStep(5, "Otherwise the client is the Default Account", "no address to search"),
        ),
        booked_by_reason="no user matched: the Virtual Assistant user",
        event_manager_reason="no user matched: "
        + ("the Default Event Manager" if settings.default_event_manager else "the VA"),
    )


def insert_booked_locations(
    session: Session,
    rows: Sequence[dict[str, Any]],
    ids: Sequence[int],
    rooms: Sequence[RoomDecision] = (),
) -> None:
    """The booked locations of the bookings a page brought in (their ``events`` rows and new
    ids), in one statement: one per room the rules found
    (:func:`calbridge.domain.rooms.match_rooms`), with the booking's times."""
    out = []
    decisions: list[RoomDecision | None] = [*rooms] or [None] * len(rows)
    for row, event_id, decision in zip(rows, ids, decisions, strict=True):
        choices = decision.choices if decision is not None else ()
        fallback = [RoomChoice(None, "given", row.get("location"))]
        for position, choice in enumerate(choices or fallback):
            out.append(
                {
                    "event_id": event_id,
                    "location_id": choice.room.id if choice.room is not None else None,
                    "location_text": choice.text
                    if choice.match in ("text", "none", "given", "not_room")
                    else None,
                    **{k: row[k] for k in ("start", "end", "all_day", "timezone")},
                    **{k: row[k] for k in ("start_utc", "end_utc")},
                    "status": "cancelled" if row.get("status") == "cancelled" else "confirmed",
                    "match": choice.match,
                    "position": position,
                }
            )
    # not the ORM's bulk insert: that splits the rows into a statement per run of rows with
    # the same None values (hundreds of statements a page)
    insert_rows(session, cast(Table, BookedLocation.__table__), out)


def room_trace(decision: RoomDecision) -> list[dict[str, Any]]:
    """The room steps, as entries of the booking's assignment trace."""
    return [{"step": "room", "rule": rule, "outcome": outcome} for rule, outcome in decision.trace]
