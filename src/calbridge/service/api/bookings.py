"""``/api/bookings``: list (filters, cursor pagination), get (assignment trace, per-calendar
link state, history), create, update, cancel, reassign, accept a review.

Every write goes through :mod:`calbridge.ops.bookings` (the same functions as the CLI and the
admin UI) with the token's name as the actor, commits, and then asks the job queue to push the
booking to its calendars.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from calbridge.domain.shown_times import times_json
from calbridge.errors import BadEvent
from calbridge.ops import bookings as ops
from calbridge.ops.history import history_of
from calbridge.service.api import pagination
from calbridge.service.api.deps import Caller, Writer, push_booking, transaction
from calbridge.service.api.times import instant, parse_instant
from calbridge.service.problems import ProblemRoute
from calbridge.store.booked import (
    BookedPrefetch,
    PlaceRequest,
    rooms_json,
)
from calbridge.store.events import event_times, typed_event_times
from calbridge.store.lookup import account_ref, hold_people, user_ref
from calbridge.store.models import Calendar, Contact, Event, Link

router = APIRouter(route_class=ProblemRoute, prefix="/bookings", tags=["bookings"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlaceIn(_Body):
    """A booked location: a room (location id, name or alias) or free text, with its own
    times (both or neither: the booking's)."""

    location: str = Field(min_length=1, max_length=1000)
    start: str | None = None
    end: str | None = None
    timezone: str | None = None


class BookingCreate(_Body):
    """A new booking: its fields, and either ``booker`` (assigned by the rules, as an event
    arriving from a calendar) or ``client`` + ``booked_by`` + ``event_manager`` (and optionally
    ``contact``) given explicitly."""

    name: str = Field(min_length=1, max_length=1000)
    start: str = Field(
        description="RFC 3339 date-time; without an offset: wall-clock time in `timezone`, "
        "else in the venue's zone (or a date when all_day)"
    )
    end: str = Field(description="RFC 3339 date-time (or the exclusive end date when all_day)")
    all_day: bool = False
    timezone: str | None = Field(None, description="IANA zone, e.g. Europe/Berlin")
    location: str | None = Field(None, max_length=1000)
    notes: str | None = None
    status: Literal["tentative", "confirmed"] = "confirmed"
    booker: str | None = Field(None, description="The booker's email: assign by the rules")
    client: str | None = None
    contact: str | None = None
    booked_by: str | None = None
    event_manager: str | None = None
    calendars: list[str] = Field(default_factory=list, description="Also put it on these")
    locations: list[PlaceIn] = Field(
        default_factory=list,
        description="Booked locations (instead of `location`): rooms or free text, each with "
        "its own times or the booking's",
    )


class BookingUpdate(_Body):
    """Fields to change; absent fields keep their value. Client and users change only by
    re-assignment, cancelling by ``POST …/cancel``."""

    name: str | None = Field(None, min_length=1, max_length=1000)
    start: str | None = None
    end: str | None = None
    all_day: bool | None = None
    timezone: str | None = None
    location: str | None = Field(None, max_length=1000)
    notes: str | None = None
    status: Literal["tentative", "confirmed"] | None = None


class Reassign(_Body):
    """Empty: re-run the rules on the address the booking was assigned from. ``booker``: run
    them on this address. Or choose any of ``client``/``contact``/``booked_by``/
    ``event_manager`` by hand (the rest stays)."""

    booker: str | None = None
    client: str | None = None
    contact: str | None = None
    booked_by: str | None = None
    event_manager: str | None = None


def _ref(ref: Any) -> dict[str, str] | None:
    return None if ref is None else {"id": ref.id, "name": ref.name}


def booking_json(
    session: Session,
    event: Event,
    *,
    detail: bool = False,
    pre: BookedPrefetch | None = None,
    reasons: list[str] | None = None,
) -> dict[str, Any]:
    """A booking as the API shows it; a listing passes what it read for the whole page
    (``pre``, ``reasons``) so a page costs a few queries, not several per booking."""
    times = event_times(event)
    client = account_ref(session, event.client_id) if event.client_id else None
    contact = session.get(Contact, event.client_contact_id) if event.client_contact_id else None
    if reasons is None:
        reasons = ops.review_reasons(session, event)
    data: dict[str, Any] = {
        "id": event.id,
        "name": event.name,
        "status": event.status,
        **times_json(times),
        "location": event.location,
        "client": None
        if client is None
        else {"id": client.id, "name": client.name, "kind": client.kind},
        "client_contact": _ref(contact),
        "booked_by": _ref(user_ref(session, event.booked_by_id)),
        "event_manager": _ref(user_ref(session, event.event_manager_id)),
        "booker_email": event.booker_email,
        "ambiguous": event.ambiguous,
        "needs_review": bool(reasons),
        "review_reasons": reasons,
        **rooms_json(session, event.id, pre),
        "created_at": instant(event.created_at),
        "updated_at": instant(event.updated_at),
    }
    if detail:
        data["notes"] = event.notes
        data["trace"] = event.trace or []
        data["reasons"] = event.assignment_reasons or {}
        data["links"] = _links(session, event)
        data["history"] = [
            {"at": instant(c.at), "actor": c.actor, "action": c.action, "details": c.details}
            for c in history_of(session, "booking", event.id)
        ]
    return data


def _links(session: Session, event: Event) -> list[dict[str, Any]]:
    """Each calendar carrying the booking: the link's state and whether the calendar has the
    booking's latest version."""
    rows = session.execute(
        select(Link, Calendar.name, Calendar.kind)
        .join(Calendar, Calendar.id == Link.calendar_id)
        .where(Link.event_id == event.id)
        .order_by(Calendar.name)
    ).all()
    return [
        {
            "calendar": name,
            "kind": kind,
            "state": link.state,
            "in_sync": link.state == "ok" and link.synced_seq >= event.change_seq,
            "remote_id": link.remote_id,
            "recurrence_id": link.recurrence_id or None,
            "origin": link.origin,
        }
        for link, name, kind in rows
    ]


@router.get("", summary="List bookings")
def list_bookings(
    request: Request,
    response: Response,
    _: Caller,
    calendar: Annotated[str | None, Query(description="Only bookings on this calendar")] = None,
    status: Annotated[
        Literal["tentative", "confirmed", "cancelled"] | None, Query(description="Only this")
    ] = None,
    client: Annotated[str | None, Query(description="Company or contact id")] = None,
    start_from: Annotated[
        str | None, Query(description="Ends after this (RFC 3339 with offset, or a date)")
    ] = None,
    start_to: Annotated[str | None, Query(description="Starts before this")] = None,
    needs_review: Annotated[bool | None, Query(description="In the review queue or not")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Name contains")] = None,
    limit: int = pagination.LimitQuery,
    cursor: str | None = pagination.CursorQuery,
) -> dict[str, Any]:
    position = pagination.decode(cursor, "bookings", 2)
    after = None
    if position is not None:
        try:
            after = (datetime.fromisoformat(position[0]), int(position[1]))
        except (ValueError, TypeError) as exc:
            raise pagination.bad_cursor(cursor) from exc
    filters = ops.BookingFilters(
        calendar=calendar,
        status=status,
        client=client,
        start_from=parse_instant(start_from, "start_from") if start_from else None,
        start_to=parse_instant(start_to, "start_to") if start_to else None,
        needs_review=needs_review,
        text=q,
    )
    with transaction(request) as session:
        found = ops.list_bookings(session, filters, after=after, limit=limit)
        pre = BookedPrefetch(session, [e.id for e in found.items])
        reasons = ops.reasons_for_many(session, found.items, pre)
        held = hold_people(session, found.items)
        items = [booking_json(session, e, pre=pre, reasons=reasons[e.id]) for e in found.items]
        del held
    next_cursor = None
    if found.next_after is not None:
        start, last_id = found.next_after
        next_cursor = pagination.encode("bookings", [start.isoformat(), last_id])
    return pagination.page(request, response, items, next_cursor)


@router.get("/{booking_id}", summary="One booking with its trace, links and history")
def get_booking(request: Request, booking_id: int, _: Caller) -> dict[str, Any]:
    with transaction(request) as session:
        return booking_json(session, ops.get_booking(session, booking_id), detail=True)


@router.post("", status_code=201, summary="Create a booking")
def create_booking(
    request: Request, response: Response, body: BookingCreate, who: Writer
) -> dict[str, Any]:
    explicit = (body.client, body.contact, body.booked_by, body.event_manager)
    manual = None
    if body.booker is not None:
        if any(v is not None for v in explicit):
            raise BadEvent("give either booker, or client/booked_by/event_manager, not both")
    elif body.client is None or body.booked_by is None or body.event_manager is None:
        raise BadEvent("give booker (an email address), or client, booked_by and event_manager")
    else:
        manual = ops.ManualAssignment(body.client, body.contact, body.booked_by, body.event_manager)
    with transaction(request) as session:
        new = ops.NewBooking(
            name=body.name,
            start=body.start,
            end=body.end,
            all_day=body.all_day,
            timezone=body.timezone,
            location=body.location,
            notes=body.notes,
            status=body.status,
            places=tuple(_place(session, p, body.all_day, body.timezone) for p in body.locations),
        )
        event = ops.create_booking(
            session,
            new,
            actor=who.name,
            booker=body.booker,
            manual=manual,
            calendars=body.calendars,
        )
        data = booking_json(session, event, detail=True)
    push_booking(request, data["id"])
    response.headers["Location"] = f"{request.url.path}/{data['id']}"
    return data


@router.patch("/{booking_id}", summary="Change a booking's fields")
def update_booking(
    request: Request, booking_id: int, body: BookingUpdate, who: Writer
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    for key in ("name", "start", "end", "all_day", "status"):
        if key in changes and changes[key] is None:
            raise BadEvent(f"{key} cannot be null; leave it out to keep its value")
    with transaction(request) as session:
        event = ops.update_booking(session, booking_id, changes, actor=who.name, typed=True)
        data = booking_json(session, event, detail=True)
    push_booking(request, booking_id)
    return data


@router.post("/{booking_id}/cancel", summary="Cancel a booking (it is kept)")
def cancel_booking(request: Request, booking_id: int, who: Writer) -> dict[str, Any]:
    with transaction(request) as session:
        event = ops.cancel_booking(session, booking_id, actor=who.name)
        data = booking_json(session, event, detail=True)
    push_booking(request, booking_id)
    return data


@router.post("/{booking_id}/reassign", summary="Re-assign client and users")
def reassign_booking(
    request: Request, booking_id: int, who: Writer, body: Reassign | None = None
) -> dict[str, Any]:
    body = body or Reassign()
    chosen = ops.Reassignment(body.client, body.contact, body.booked_by, body.event_manager)
    with transaction(request) as session:
        event = ops.reassign_booking(
            session, booking_id, actor=who.name, booker=body.booker, chosen=chosen
        )
        data = booking_json(session, event, detail=True)
    push_booking(request, booking_id)
    return data


def _place(session: Session, place: PlaceIn, all_day: bool, timezone: str | None) -> PlaceRequest:
    if (place.start is None) != (place.end is None):
        raise BadEvent("a booked location needs both start and end, or neither")
    if place.start is None or place.end is None:
        return PlaceRequest(place.location, None)
    times = typed_event_times(
        session, place.start, place.end, all_day=all_day, timezone=place.timezone or timezone
    )
    return PlaceRequest(place.location, times)


@router.post("/{booking_id}/locations", status_code=201, summary="Book one more location")
def book_location(request: Request, booking_id: int, body: PlaceIn, who: Writer) -> dict[str, Any]:
    with transaction(request) as session:
        event = ops.get_booking(session, booking_id)
        place = _place(session, body, event.all_day, body.timezone or event.timezone)
        event = ops.book_location(session, booking_id, place, actor=who.name)
        data = booking_json(session, event, detail=True)
    push_booking(request, booking_id)
    return data


@router.post(
    "/{booking_id}/locations/{booked_id}/cancel",
    summary="Cancel one booked location (the booking too when none is left)",
)
def unbook_location(
    request: Request, booking_id: int, booked_id: int, who: Writer
) -> dict[str, Any]:
    with transaction(request) as session:
        event = ops.unbook_location(session, booking_id, actor=who.name, booked_id=booked_id)
        data = booking_json(session, event, detail=True)
    push_booking(request, booking_id)
    return data


@router.post("/{booking_id}/accept", summary="Accept the assignment (leave the review queue)")
def accept_review(request: Request, booking_id: int, who: Writer) -> dict[str, Any]:
    with transaction(request) as session:
        event = ops.accept_review(session, booking_id, actor=who.name)
        return booking_json(session, event, detail=True)
