"""Rejections (calendar events that could not be imported, with *Retry* once the event is
fixed) and conflicts (a field changed on both sides: both values, the winner, *Apply the other
side*). Applying the other side is a booking update through :mod:`calbridge.ops.bookings`
(recorded with the admin's email); the calendars then follow through ``jobs.push_booking``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import delete, select

from calbridge.errors import CalbridgeError, NotFound
from calbridge.ops.bookings import cancel_booking, update_booking
from calbridge.ops.history import record
from calbridge.store.models import Calendar, ConflictRecord, Event, Rejection
from calbridge.web.auth import SignedIn
from calbridge.web.core import done, reader, render, store_of, writer

router = APIRouter()
LIMIT = 200


@router.get("/rejections", response_class=HTMLResponse)
def rejections(request: Request, who: Annotated[SignedIn, Depends(reader)]) -> Response:
    with store_of(request).session() as s:
        rows = s.execute(
            select(Rejection, Calendar.name)
            .join(Calendar, Calendar.id == Rejection.calendar_id)
            .order_by(Rejection.at.desc(), Rejection.id.desc())
            .limit(LIMIT)
        ).all()
    return render(request, "rejections.html", {"page": "rejections", "rows": rows})


@router.post("/rejections/{rejection_id}/retry")
def retry_rejection(
    request: Request, rejection_id: int, who: Annotated[SignedIn, Depends(writer)]
) -> Response:
    """Read the calendar again in full, so the (fixed) event is imported and its rejection
    cleared; nothing is deleted here."""
    jobs = getattr(request.app.state, "jobs", None)
    with store_of(request).session() as s:
        row = s.get(Rejection, rejection_id)
        if row is None:
            return done(
                request, "/rejections", f"rejection {rejection_id} is gone already", "error"
            )
        calendar = s.get(Calendar, row.calendar_id)
        name = calendar.name if calendar else "?"
        if jobs is None:
            return done(request, "/rejections", "no job queue: start `calbridge serve`", "error")
        record(
            s,
            actor=who.email,
            subject="calendar",
            subject_id=row.calendar_id,
            action="rejection_retry",
            details={"uid": row.uid, "remote_id": row.remote_id},
        )
        calendar_id = row.calendar_id
    jobs.sync_calendar(calendar_id, trigger="resync", full=True)
    return done(
        request,
        "/rejections",
        f"Full resync of '{name}' queued: the event is read again, and its rejection goes "
        "once it imports.",
    )


def shown(value: Any) -> str:
    """A conflict's value as a person reads it."""
    if isinstance(value, dict) and "start" in value:
        zone = value.get("timezone") or ("all day" if value.get("all_day") else "floating")
        return f"{value['start']} → {value['end']} ({zone})"
    return "—" if value in (None, "") else str(value)


@router.get("/conflicts", response_class=HTMLResponse)
def conflicts(request: Request, who: Annotated[SignedIn, Depends(reader)]) -> Response:
    with store_of(request).session() as s:
        rows = s.execute(
            select(ConflictRecord, Calendar.name, Event.name)
            .join(Calendar, Calendar.id == ConflictRecord.calendar_id)
            .join(Event, Event.id == ConflictRecord.event_id)
            .order_by(ConflictRecord.at.desc(), ConflictRecord.id.desc())
            .limit(LIMIT)
        ).all()
    return render(request, "conflicts.html", {"page": "conflicts", "rows": rows, "shown": shown})


def _changes(field: str, value: Any) -> dict[str, Any]:
    if field == "when":
        return {k: value[k] for k in ("start", "end", "all_day", "timezone")}
    return {field: value}


@router.post("/conflicts/{conflict_id}/apply-other")
def apply_other_side(
    request: Request, conflict_id: int, who: Annotated[SignedIn, Depends(writer)]
) -> Response:
    try:
        with store_of(request).session() as s:
            c = s.get(ConflictRecord, conflict_id)
            if c is None:
                raise NotFound(f"conflict {conflict_id} is gone already")
            loser = c.calendar_value if c.winner == "booking" else c.booking_value
            event_id = c.event_id
            if c.field == "status" and loser == "cancelled":
                cancel_booking(s, event_id, actor=who.email)
            else:
                update_booking(s, event_id, _changes(c.field, loser), actor=who.email)
            record(
                s,
                actor=who.email,
                subject="booking",
                subject_id=event_id,
                action="conflict_applied",
                details={"field": c.field, "applied": loser, "was_winner": c.winner},
            )
            s.execute(delete(ConflictRecord).where(ConflictRecord.id == conflict_id))
    except CalbridgeError as exc:
        return done(request, "/conflicts", f"Not applied: {exc}", "error")
    jobs = getattr(request.app.state, "jobs", None)
    if jobs is not None:
        jobs.push_booking(event_id)
    return done(
        request,
        "/conflicts",
        f"Applied the other side to booking {event_id}; the calendars follow at the next push.",
    )
